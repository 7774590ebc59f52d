//! Draining keep-alive connections without closing any under its client.
//!
//! When Pingora stops (graceful upgrade or SIGTERM), it stops accepting, answers requests
//! on open connections with `Connection: close`, and at once closes every keep-alive
//! connection that is idle, waiting for its next request. A client may be sending on such
//! a connection at that very moment, and a POST lost that way is not retried. This wrapper
//! holds that last step back for a drain period (most of the grace period): meanwhile each
//! connection's next request is answered and closed cleanly, and its client reconnects to
//! the new process.

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;

pub struct Draining<A> {
    inner: Arc<A>,
    drain: Duration,
}

impl<A> Draining<A> {
    pub fn new(inner: A, drain: Duration) -> Self {
        Draining {
            inner: Arc::new(inner),
            drain,
        }
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> HttpServerApp for Draining<A> {
    async fn process_new_http(
        self: &Arc<Self>,
        session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        self.inner.process_new_http(session, shutdown).await
    }

    fn h2_options(&self) -> Option<pingora::protocols::http::v2::server::H2Options> {
        self.inner.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.inner.server_options()
    }

    async fn http_cleanup(&self) {
        log::info!(
            "draining: idle keep-alive connections stay open {:?} for a last request",
            self.drain
        );
        tokio::time::sleep(self.drain).await;
        self.inner.http_cleanup().await;
    }
}
