//! Header rewrites: a route's `request_headers` / `response_headers` (remove, then set,
//! then add), and the backend headers hidden from every response.

use crate::config::routes::HeaderRewriteSection;
use http::{HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;

/// A request or response head whose headers can be rewritten.
pub trait Headers {
    fn remove(&mut self, name: &HeaderName);
    fn set(&mut self, name: &HeaderName, value: &HeaderValue) -> Result<()>;
    fn add(&mut self, name: &HeaderName, value: &HeaderValue) -> Result<()>;
}

/// Request and response heads have the same header methods but no common trait.
macro_rules! impl_headers {
    ($($head:ty),*) => {$(
        impl Headers for $head {
            fn remove(&mut self, name: &HeaderName) {
                self.remove_header(name);
            }
            fn set(&mut self, name: &HeaderName, value: &HeaderValue) -> Result<()> {
                self.insert_header(name.clone(), value.clone())
            }
            fn add(&mut self, name: &HeaderName, value: &HeaderValue) -> Result<()> {
                self.append_header(name.clone(), value.clone()).map(|_| ())
            }
        }
    )*};
}

impl_headers!(RequestHeader, ResponseHeader);

/// One route's header changes for one direction.
#[derive(Debug, Clone, Default)]
pub struct HeaderRewrite {
    remove: Vec<HeaderName>,
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
}

impl HeaderRewrite {
    pub fn from_config(section: &HeaderRewriteSection) -> Self {
        // Names were checked when the file was validated; one that still fails is skipped.
        let pairs =
            |map: &std::collections::BTreeMap<String, crate::config::values::HeaderValue>| {
                map.iter()
                    .filter_map(|(k, v)| {
                        HeaderName::from_bytes(k.as_bytes())
                            .ok()
                            .map(|name| (name, v.0.clone()))
                    })
                    .collect()
            };
        HeaderRewrite {
            remove: section.remove.iter().map(|h| h.0.clone()).collect(),
            set: pairs(&section.set),
            add: pairs(&section.add),
        }
    }

    /// Hides the named headers (no set or add).
    pub fn removing(names: impl IntoIterator<Item = HeaderName>) -> Self {
        HeaderRewrite {
            remove: names.into_iter().collect(),
            ..Default::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    pub fn apply(&self, head: &mut impl Headers) -> Result<()> {
        for name in &self.remove {
            head.remove(name);
        }
        for (name, value) in &self.set {
            head.set(name, value)?;
        }
        for (name, value) in &self.add {
            head.add(name, value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(yaml: &str) -> HeaderRewrite {
        let section: HeaderRewriteSection = serde_yaml::from_str(yaml).expect("valid section");
        HeaderRewrite::from_config(&section)
    }

    #[test]
    fn remove_then_set_then_add() {
        let rw = rewrite("{ remove: [X-Debug], set: { X-Env: prod }, add: { Via: gatehouse } }");
        let mut req = RequestHeader::build("GET", b"/", None).expect("head");
        req.insert_header("X-Debug", "1").expect("insert");
        req.insert_header("X-Env", "dev").expect("insert");
        req.insert_header("Via", "1.1 cdn").expect("insert");
        rw.apply(&mut req).expect("apply");
        assert!(req.headers.get("x-debug").is_none());
        assert_eq!(
            req.headers.get("x-env").map(|v| v.as_bytes()),
            Some(&b"prod"[..])
        );
        let via: Vec<_> = req.headers.get_all("via").iter().collect();
        assert_eq!(via.len(), 2);
    }

    #[test]
    fn hidden_headers_are_removed_from_responses() {
        let rw = HeaderRewrite::removing([http::header::SERVER]);
        let mut resp = ResponseHeader::build(200, None).expect("head");
        resp.insert_header("Server", "Apache/2.4").expect("insert");
        rw.apply(&mut resp).expect("apply");
        assert!(resp.headers.get("server").is_none());
    }
}
