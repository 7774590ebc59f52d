//! `X-Request-Id`: kept when the client sent a well-formed one (so a trace spans the
//! client, the proxy and the origin), otherwise made here.

use http::HeaderValue;

pub const HEADER: &str = "x-request-id";

/// The longest incoming id kept.
const MAX_LEN: usize = 128;

/// The request's id: `incoming` when well formed, else a new random one.
pub fn accept_or_make(incoming: Option<&HeaderValue>) -> HeaderValue {
    match incoming {
        Some(value) if is_well_formed(value.as_bytes()) => value.clone(),
        _ => make(),
    }
}

/// 1 to 128 characters of letters, digits and `-_.:+/=@`: enough for UUIDs, ULIDs, trace
/// ids and base64, and nothing that could break a log line or a header.
fn is_well_formed(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-_.:+/=@".contains(&b))
}

fn make() -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_id_is_kept() {
        let id = HeaderValue::from_static("abc-123_DEF.4");
        assert_eq!(accept_or_make(Some(&id)), id);
    }

    #[test]
    fn a_bad_or_missing_id_is_replaced_by_a_uuid() {
        for bad in ["has space", "", "quote\"", &"x".repeat(129)] {
            let value = HeaderValue::from_str(bad).expect("header value");
            let made = accept_or_make(Some(&value));
            assert_ne!(made, value);
            assert_eq!(made.len(), 36);
        }
        let a = accept_or_make(None);
        let b = accept_or_make(None);
        assert_ne!(a, b);
    }
}
