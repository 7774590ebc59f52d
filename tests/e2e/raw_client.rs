//! A keep-alive HTTP/1.1 client that never retries: one request on one connection, and a
//! failure is a failure. It reconnects only when the server said `Connection: close`. This
//! is how a POST-sending client sees a proxy: a connection closed under a request it just
//! sent loses that request.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawClient {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    /// New connections opened (the first one included).
    pub connects: usize,
}

/// What one request got.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub close: bool,
    pub body: Vec<u8>,
}

impl RawClient {
    pub fn new(addr: SocketAddr) -> Self {
        RawClient {
            addr,
            stream: None,
            connects: 0,
        }
    }

    /// Sends one request; `Err` when the connection failed or closed before a whole
    /// response came back.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<RawResponse, String> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            self.stream = Some(stream);
            self.connects += 1;
        }
        let result =
            tokio::time::timeout(Duration::from_secs(10), self.exchange(method, path, body))
                .await
                .unwrap_or_else(|_| Err("timed out".to_string()));
        match &result {
            Ok(r) if !r.close => {}
            _ => self.stream = None,
        }
        result
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<RawResponse, String> {
        let stream = self.stream.as_mut().ok_or("no connection")?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: test.local\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream
            .write_all(&[head.as_bytes(), body].concat())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::with_capacity(1024);
        loop {
            let mut chunk = [0u8; 4096];
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err(format!(
                    "connection closed after {} bytes of response",
                    buf.len()
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            let Ok(httparse::Status::Complete(head_len)) = response.parse(&buf) else {
                continue;
            };
            let header = |name: &str| {
                response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
            };
            let length: usize = header("content-length")
                .and_then(|v| v.trim().parse().ok())
                .ok_or("no content-length")?;
            let close = header("connection").is_some_and(|v| v.contains("close"));
            let status = response.code.ok_or("no status")?;
            while buf.len() < head_len + length {
                let n = stream
                    .read(&mut chunk)
                    .await
                    .map_err(|e| format!("read body: {e}"))?;
                if n == 0 {
                    return Err("connection closed in the body".to_string());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(RawResponse {
                status,
                close,
                body: buf[head_len..head_len + length].to_vec(),
            });
        }
    }
}
