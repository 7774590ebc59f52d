//! Judging by outcome: the CRS regression requests sent over raw sockets through a
//! running Gatehouse (a WAF profile on the Core Rule Set) to a trivial origin, and each
//! answer's status read back. Blocked means 403, or 400 for the protocol tests (920,
//! 921) that a strict HTTP parser rightly refuses before any rule runs.

use super::{paranoia_of, Stage};
use crate::waf::ruleset::RuleSet;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An origin that answers every request 200 "ok" once it has read the whole request
/// (head, then the body by Content-Length or chunked framing). One thread per connection.
pub fn spawn_origin() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    Ok(addr)
}

fn serve(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            break end;
        }
        if !read_more(&mut stream, &mut buf) {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let body_start = head_end + 4;
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let body = &buf[body_start..];
        let complete = match (length, chunked) {
            (_, true) => memchr::memmem::find(body, b"0\r\n\r\n").is_some(),
            (Some(n), false) => body.len() >= n,
            (None, false) => true,
        };
        if complete || !read_more(&mut stream, &mut buf) {
            break;
        }
    }
    let _ =
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
}

fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16384];
    match stream.read(&mut chunk) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// A Gatehouse process serving one route through a CRS profile; killed on drop.
pub struct RunningProxy {
    child: Child,
    pub addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `binary` with a config for the CRS at `crs_dir` and `paranoia`, in front of
/// `origin`; waits (polling, with a deadline) until it accepts connections.
pub fn start_proxy(
    binary: &Path,
    crs_dir: &Path,
    paranoia: u8,
    origin: SocketAddr,
) -> Result<RunningProxy, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let dir =
        std::env::temp_dir().join(format!("gatehouse-waf-eval-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let conf = dir.join("eval.yaml");
    let text = format!(
        "server: {{ threads: 2 }}\nlisteners: [ {{ name: eval, address: \"{addr}\" }} ]\nwaf:\n  crs: {{ crs: \"{}\", paranoia: {paranoia} }}\nupstreams:\n  origin: {{ backends: [ {{ address: \"{origin}\" }} ] }}\nroutes:\n  - {{ name: all, upstream: origin, waf: crs }}\n",
        crs_dir.display()
    );
    std::fs::write(&conf, text).map_err(|e| e.to_string())?;
    let child = Command::new(binary)
        .arg("-c")
        .arg(&conf)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let proxy = RunningProxy { child, addr, dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            return Err("the proxy did not start listening within 30s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(proxy)
}

/// Sends raw request bytes and returns the response status (0: no answer, the
/// connection was closed).
pub fn send(addr: SocketAddr, raw: &[u8]) -> u16 {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if stream.write_all(raw).is_err() {
        return 0;
    }
    let mut buf = Vec::new();
    while memchr::memchr(b'\n', &buf).is_none() {
        if !read_more(&mut stream, &mut buf) {
            break;
        }
    }
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Whether a status counts as "blocked" for a stage of this rule file.
pub fn blocked(stage: &Stage, status: u16) -> bool {
    status == 403
        || (status == 400 && (stage.file.contains("-920-") || stage.file.contains("-921-")))
}

/// What (b) found: per rule file, attacks blocked of those sent; the attacks that got
/// through (with the status); the benign stages and which of them were blocked.
#[derive(Debug, Default)]
pub struct ProxyReport {
    pub per_file: BTreeMap<String, (usize, usize)>,
    pub missed: Vec<(String, u16)>,
    pub benign: usize,
    pub benign_blocked: Vec<String>,
}

impl ProxyReport {
    pub fn blocked(&self) -> (usize, usize) {
        self.per_file
            .values()
            .fold((0, 0), |(b, t), (b2, t2)| (b + b2, t + t2))
    }
}

/// Sends every request-side stage of a paranoia-1 rule's tests (the attacks) and every
/// stage where no rule may fire (the benign ones) through the proxy at `addr`; `pl1` is
/// the CRS loaded at paranoia 1 (for the rules' levels).
pub fn evaluate(addr: SocketAddr, stages: &[Stage], pl1: &RuleSet) -> ProxyReport {
    let mut report = ProxyReport::default();
    for stage in stages.iter().filter(|s| s.file.starts_with("REQUEST-")) {
        match stage.expect.kind() {
            "fire" if paranoia_of(pl1, stage.rule_id) == Some(1) => {
                let status = send(addr, &stage.raw);
                let cell = report.per_file.entry(stage.file.clone()).or_default();
                cell.1 += 1;
                if blocked(stage, status) {
                    cell.0 += 1;
                } else {
                    report.missed.push((stage.name(), status));
                }
            }
            "no-rule" => {
                report.benign += 1;
                let status = send(addr, &stage.raw);
                if blocked(stage, status) {
                    report.benign_blocked.push(stage.name());
                }
            }
            _ => {}
        }
    }
    report
}
