//! The end-to-end harness: origins written in Rust on ephemeral ports, the real
//! `gatehouse` binary started on a generated YAML file (killed when the guard drops), an
//! HTTP client, and waiting with a deadline instead of sleeping.

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

pub const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// Polls `check` until it returns true or `within` passes; panics with `what` on timeout.
pub async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One request as the origin saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct OriginState {
    connections: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    /// Status of `/healthz`.
    health: AtomicU16,
    /// Status of every other path.
    status: AtomicU16,
}

/// An HTTP/1.1 origin on `127.0.0.1:0`. Every answer's body is the origin's name; it sends
/// `Server` and `X-Powered-By` headers (which the proxy should hide). Paths:
/// `/healthz` answers the configured health status; `/slow/<ms>` waits that long first;
/// `/reflect` answers with the status, headers and body that its JSON body (or the
/// base64 JSON in an `X-Reflect` header) describes.
pub struct Origin {
    pub addr: SocketAddr,
    pub name: String,
    state: Arc<OriginState>,
    task: tokio::task::JoinHandle<()>,
}

impl Origin {
    pub async fn start(name: &str) -> Origin {
        Self::start_on(([127, 0, 0, 1], 0).into(), name).await
    }

    /// Starts on a given address (to bring a killed origin back on its port).
    pub async fn start_on(addr: SocketAddr, name: &str) -> Origin {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind origin");
        let addr = listener.local_addr().expect("origin address");
        let state = Arc::new(OriginState {
            health: AtomicU16::new(200),
            status: AtomicU16::new(200),
            ..Default::default()
        });
        let name_owned = name.to_string();
        let task_state = state.clone();
        let task = tokio::spawn(async move {
            // Connection tasks live in the set, so aborting this task closes them all.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                task_state.connections.fetch_add(1, SeqCst);
                let state = task_state.clone();
                let name = name_owned.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        let name = name.clone();
                        async move { Ok::<_, Infallible>(answer(&state, &name, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Origin {
            addr,
            name: name.to_string(),
            state,
            task,
        }
    }

    /// Stops listening and closes every open connection, as if the process died.
    pub fn kill(&self) {
        self.task.abort();
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(SeqCst)
    }

    /// Requests seen, health checks excluded.
    pub fn requests(&self) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|s| s.path != "/healthz")
            .cloned()
            .collect()
    }

    pub fn request_count(&self) -> usize {
        self.requests().len()
    }

    pub fn health_checks(&self) -> usize {
        let seen = self.state.seen.lock().expect("lock");
        seen.iter().filter(|s| s.path == "/healthz").count()
    }

    pub fn set_health(&self, status: u16) {
        self.state.health.store(status, SeqCst);
    }

    /// The status of every answer but `/healthz`.
    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, SeqCst);
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    state: &OriginState,
    name: &str,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    state.seen.lock().expect("lock").push(Seen {
        method: req.method().to_string(),
        path: path.clone(),
        headers: req.headers().clone(),
    });
    // Read the whole body, as a real application does: hyper closes a keep-alive
    // connection whose request body was left unread.
    let uri = req.uri().to_string();
    let spec_header = req.headers().get("x-reflect").and_then(|v| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_bytes())
            .ok()
    });
    let body = match http_body_util::BodyExt::collect(req.into_body()).await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if path == "/reflect" {
        return reflect(&uri, spec_header.as_deref().unwrap_or(&body));
    }
    let status = if path == "/healthz" {
        state.health.load(SeqCst)
    } else {
        state.status.load(SeqCst)
    };
    if let Some(ms) = path
        .strip_prefix("/slow/")
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    Response::builder()
        .status(status)
        .header("server", "origin-httpd/1.0")
        .header("x-powered-by", "origin-framework")
        .header("x-origin", name)
        .body(Full::new(Bytes::from(name.to_string())))
        .expect("response")
}

/// The admin API's `/metrics` text.
pub async fn metrics(admin_port: u16) -> String {
    client()
        .get(format!("http://127.0.0.1:{admin_port}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

/// `POST /reflect`: the response the JSON body describes, as the CRS test backend sends it.
fn reflect(uri: &str, body: &[u8]) -> Response<Full<Bytes>> {
    let (head, content) = gatehouse::waf::conformance::reflect_response(uri.as_bytes(), body);
    let mut response = Response::builder().status(head.status);
    for (k, v) in &head.headers {
        if !k.eq_ignore_ascii_case(b"content-length") {
            response = response.header(k.as_slice(), v.as_slice());
        }
    }
    response
        .body(Full::new(Bytes::from(content)))
        .expect("reflected response")
}

/// The real `gatehouse` binary on a generated config; killed when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
    /// The config file, and its `server:` and `listeners:` part.
    conf: PathBuf,
    preamble: String,
    dir: tempfile::TempDir,
}

impl Proxy {
    /// Starts Gatehouse with `body` (everything but `server` and `listeners`, which the
    /// harness adds: one listener on a free port, files in a temp dir) and waits until it
    /// accepts connections.
    pub async fn start(body: &str) -> Proxy {
        Self::start_with_server("", body).await
    }

    /// As [`Proxy::start`], with extra `server:` keys (`server_extra` is YAML lines
    /// indented two spaces).
    pub async fn start_with_server(server_extra: &str, body: &str) -> Proxy {
        Self::start_full(server_extra, body, &[]).await
    }

    /// As [`Proxy::start_with_server`], with environment variables for the process.
    pub async fn start_full(server_extra: &str, body: &str, env: &[(&str, &str)]) -> Proxy {
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let preamble = format!(
                "server:\n  threads: 2\n  pid_file: {dir}/gatehouse.pid\n  upgrade_sock: {dir}/upgrade.sock\n{server_extra}listeners:\n  - {{ name: test, address: \"{addr}\" }}\n",
                dir = dir.path().display()
            );
            let conf = dir.path().join("gatehouse.yaml");
            std::fs::write(&conf, format!("{preamble}{body}")).expect("write config");
            let log = dir.path().join("gatehouse.log");
            let log_file = std::fs::File::create(&log).expect("log file");
            let child = Command::new(BIN)
                .arg("-c")
                .arg(&conf)
                .envs(env.iter().copied())
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .expect("start gatehouse");
            let mut proxy = Proxy {
                addr,
                child,
                log,
                conf,
                preamble,
                dir,
            };
            if proxy.wait_ready(Duration::from_secs(15)).await {
                return proxy;
            }
            last_log = proxy.log();
        }
        panic!("gatehouse did not start; last log:\n{last_log}");
    }

    async fn wait_ready(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false; // exited, e.g. the port was taken meanwhile
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The config file the proxy runs on.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// The temp dir holding the config, log, pid file and upgrade socket.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Replaces the config body (the harness keeps `server:` and `listeners:`).
    pub fn rewrite_config(&self, body: &str) {
        std::fs::write(&self.conf, format!("{}{body}", self.preamble)).expect("rewrite config");
    }

    /// Sends a signal (`HUP`, `QUIT`, `USR1` ...) to the proxy process.
    pub fn signal(&self, name: &str) {
        signal(self.pid(), name);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- gatehouse log ---\n{}", self.log());
        }
    }
}

/// Kills, when dropped, every process started with this config file: the daemons a test
/// started, whether or not the test got as far as reading their pids.
pub struct DaemonGuard(pub PathBuf);

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .arg("-9")
            .arg("-f")
            .arg(self.0.display().to_string())
            .status();
    }
}

/// Sends signal `name` to `pid` with kill(1).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// A port that was free a moment ago (the proxy start retries if it is taken meanwhile).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// An HTTP client that never uses a proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// GET `path` through the proxy with extra headers; returns status, headers and body.
pub async fn get(
    client: &reqwest::Client,
    proxy: &Proxy,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = client.get(proxy.url(path));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.expect("request through the proxy");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body");
    (status, headers, body)
}

/// Runs `gatehouse -t -c FILE`; returns the exit code and everything it printed.
pub fn check_config(path: &Path) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("-t")
        .arg("-c")
        .arg(path)
        .output()
        .expect("run gatehouse -t");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A config body with one upstream `app` over `origins` (plus `upstream_extra` lines,
/// indented four spaces) and one route `all` to it, after `top` (top-level keys).
pub fn one_upstream(top: &str, origins: &[&Origin], upstream_extra: &str) -> String {
    format!(
        "{top}upstreams:\n  app:\n    backends:\n{}{upstream_extra}routes:\n  - {{ name: all, upstream: app }}\n",
        backends(origins)
    )
}

/// A YAML `backends:` list for these origins.
pub fn backends(origins: &[&Origin]) -> String {
    origins
        .iter()
        .map(|o| format!("      - {{ address: \"{}\" }}\n", o.addr))
        .collect()
}
