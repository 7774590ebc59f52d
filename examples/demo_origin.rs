//! A tiny HTTP origin for trying Gatehouse out (`make run` starts it): answers every
//! request with a line naming itself, and `/healthz` with 200.
//!
//! Usage: `cargo run --example demo_origin -- 127.0.0.1:9001 127.0.0.1:9002`

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;

async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("demo origin listening on http://{addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| async move {
                let body = if req.uri().path() == "/healthz" {
                    "ok\n".to_string()
                } else {
                    format!(
                        "hello from demo origin {addr}: {} {}\n",
                        req.method(),
                        req.uri()
                    )
                };
                Ok::<_, Infallible>(
                    Response::builder()
                        .header("content-type", "text/plain")
                        .header("server", "demo-origin")
                        .body(Full::new(Bytes::from(body)))
                        .unwrap_or_default(),
                )
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[tokio::main]
async fn main() {
    let addrs: Vec<SocketAddr> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let addrs = if addrs.is_empty() {
        vec![([127, 0, 0, 1], 9001).into(), ([127, 0, 0, 1], 9002).into()]
    } else {
        addrs
    };
    let servers = addrs.into_iter().map(|a| tokio::spawn(serve(a)));
    for server in futures::future::join_all(servers).await {
        if let Ok(Err(e)) = server {
            eprintln!("demo origin: {e}");
            std::process::exit(1);
        }
    }
}
