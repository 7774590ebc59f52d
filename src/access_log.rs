//! The access log: one line per request, as JSON or nginx's "combined" format, to a file or
//! stdout.
//!
//! Requests hand their line to a bounded channel and go on; one writer thread buffers the
//! lines and flushes them every 200ms, so no request waits on the disk. A
//! full channel drops the line and counts it rather than slow the proxy. SIGUSR1 makes the
//! writer reopen the file, for log rotation (`mv access.log access.log.1; kill -USR1`).

use crate::config::access_log::{AccessLogSection, LogFormat};
use serde_json::json;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Lines queued before new ones are dropped.
const QUEUE: usize = 65_536;

/// Buffered lines reach the file at least this often.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Bumped by SIGUSR1; writers reopen their file when it changes.
static REOPEN: AtomicU64 = AtomicU64::new(0);

/// Asks every access log writer to reopen its file.
pub fn request_reopen() {
    REOPEN.fetch_add(1, Relaxed);
}

/// One finished request.
#[derive(Debug)]
pub struct Entry<'a> {
    pub client: Option<IpAddr>,
    pub method: &'a str,
    /// Path and query as the client sent them.
    pub uri: &'a str,
    pub protocol: &'a str,
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: usize,
    pub duration: Duration,
    pub route: Option<&'a str>,
    pub upstream: Option<&'a str>,
    pub backend: Option<SocketAddr>,
    pub request_id: &'a str,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

pub struct AccessLog {
    pub section: AccessLogSection,
    /// The opened file, until the writer thread takes it.
    pending: Mutex<Option<Sink>>,
    /// Started on the first line: a daemon forks after the config is loaded, and a
    /// thread started before the fork would not exist in the daemon.
    sender: OnceLock<SyncSender<String>>,
    pub dropped: AtomicU64,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("section", &self.section)
            .finish()
    }
}

enum Sink {
    Stdout,
    File(BufWriter<File>),
}

impl Sink {
    fn open(path: &str) -> std::io::Result<Sink> {
        if path == "stdout" {
            return Ok(Sink::Stdout);
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Sink::File(BufWriter::with_capacity(64 * 1024, file)))
    }

    fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")
            }
            Sink::File(w) => {
                w.write_all(line.as_bytes())?;
                w.write_all(b"\n")
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stdout => std::io::stdout().flush(),
            Sink::File(w) => w.flush(),
        }
    }
}

impl AccessLog {
    /// Opens the file now, so that a bad path fails at startup or reload.
    pub fn open(section: &AccessLogSection) -> std::io::Result<AccessLog> {
        Ok(AccessLog {
            section: section.clone(),
            pending: Mutex::new(Some(Sink::open(&section.path)?)),
            sender: OnceLock::new(),
            dropped: AtomicU64::new(0),
        })
    }

    fn start_writer(&self) -> SyncSender<String> {
        let (sender, receiver) = sync_channel::<String>(QUEUE);
        let sink = match self.pending.lock() {
            Ok(mut pending) => pending.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let path = self.section.path.clone();
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut sink = match sink.map_or_else(|| Sink::open(&path), Ok) {
                    Ok(sink) => sink,
                    Err(e) => {
                        log::error!("access log {path}: {e}");
                        return;
                    }
                };
                let mut generation = REOPEN.load(Relaxed);
                let mut last_flush = Instant::now();
                loop {
                    match receiver.recv_timeout(FLUSH_EVERY) {
                        Ok(line) => {
                            if let Err(e) = sink.write_line(&line) {
                                log::error!("access log {path}: {e}");
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => {
                            let _ = sink.flush();
                            return;
                        }
                    }
                    if last_flush.elapsed() >= FLUSH_EVERY {
                        let _ = sink.flush();
                        last_flush = Instant::now();
                    }
                    let wanted = REOPEN.load(Relaxed);
                    if wanted != generation {
                        generation = wanted;
                        let _ = sink.flush();
                        match Sink::open(&path) {
                            Ok(fresh) => sink = fresh,
                            Err(e) => log::error!("access log {path}: cannot reopen: {e}"),
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            log::error!(
                "access log {}: cannot start its writer: {e}",
                self.section.path
            );
        }
        sender
    }

    pub fn write(&self, entry: &Entry<'_>) {
        let line = match self.section.format {
            LogFormat::Json => json_line(entry),
            LogFormat::Combined => combined_line(entry),
        };
        let sender = self.sender.get_or_init(|| self.start_writer());
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = sender.try_send(line) {
            self.dropped.fetch_add(1, Relaxed);
        }
    }
}

fn json_line(e: &Entry<'_>) -> String {
    json!({
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "client": e.client.map(|ip| ip.to_string()),
        "method": e.method,
        "path": e.uri,
        "protocol": e.protocol,
        "status": e.status,
        "bytes": e.bytes,
        "duration_ms": (e.duration.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        "route": e.route,
        "upstream": e.upstream,
        "backend": e.backend.map(|b| b.to_string()),
        "request_id": e.request_id,
        "user_agent": e.user_agent,
        "referer": e.referer,
    })
    .to_string()
}

/// nginx's `combined`, with the request id, route, upstream and duration appended:
/// `client - - [time] "request" status bytes "referer" "agent" id route upstream seconds`.
fn combined_line(e: &Entry<'_>) -> String {
    let quote = |v: Option<&str>| v.unwrap_or("-").replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "{} - - [{}] \"{} {} {}\" {} {} \"{}\" \"{}\" {} {} {} {:.3}",
        e.client
            .map_or_else(|| "-".to_string(), |ip| ip.to_string()),
        chrono::Local::now().format("%d/%b/%Y:%H:%M:%S %z"),
        e.method,
        quote(Some(e.uri)),
        e.protocol,
        e.status,
        e.bytes,
        quote(e.referer),
        quote(e.user_agent),
        e.request_id,
        e.route.unwrap_or("-"),
        e.upstream.unwrap_or("-"),
        e.duration.as_secs_f64(),
    )
}

/// Reopens access log files on SIGUSR1.
pub struct ReopenOnSignal;

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for ReopenOnSignal {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut usr1 = match signal(SignalKind::user_defined1()) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot listen for SIGUSR1; access logs will not be reopened: {e}");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                received = usr1.recv() => {
                    if received.is_none() {
                        return;
                    }
                    log::info!("SIGUSR1: reopening access logs");
                    request_reopen();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        Entry {
            client: Some("203.0.113.7".parse().expect("ip")),
            method: "GET",
            uri: "/a?b=\"c\"",
            protocol: "HTTP/1.1",
            status: 200,
            bytes: 512,
            duration: Duration::from_micros(1500),
            route: Some("api"),
            upstream: Some("app"),
            backend: Some("10.0.0.1:80".parse().expect("addr")),
            request_id: "abc",
            referer: None,
            user_agent: Some("curl/8"),
        }
    }

    #[test]
    fn json_lines_carry_every_field() {
        let line: serde_json::Value = serde_json::from_str(&json_line(&entry())).expect("json");
        assert_eq!(line["client"], "203.0.113.7");
        assert_eq!(line["status"], 200);
        assert_eq!(line["bytes"], 512);
        assert_eq!(line["duration_ms"], 1.5);
        assert_eq!(line["route"], "api");
        assert_eq!(line["backend"], "10.0.0.1:80");
        assert_eq!(line["request_id"], "abc");
        assert_eq!(line["path"], "/a?b=\"c\"");
    }

    #[test]
    fn combined_lines_look_like_nginx() {
        let line = combined_line(&entry());
        assert!(line.starts_with("203.0.113.7 - - ["), "{line}");
        assert!(
            line.contains(
                "] \"GET /a?b=\\\"c\\\" HTTP/1.1\" 200 512 \"-\" \"curl/8\" abc api app 0.002"
            ),
            "{line}"
        );
    }
}
