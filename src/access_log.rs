//! The access log: one line per request, as JSON or nginx's "combined" format, to a file or
//! stdout.
//!
//! Requests append their line to a shared buffer under a short lock and go on; a writer
//! thread takes the whole buffer every 200ms and writes it, so no request waits on the disk
//! or wakes a thread. Past 16 MiB unwritten, lines are dropped and counted rather than slow
//! the proxy. SIGUSR1 makes the writer reopen the file, for log rotation
//! (`mv access.log access.log.1; kill -USR1`).

use crate::config::access_log::{AccessLogSection, LogFormat};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Bytes buffered before new lines are dropped (the writer drains it every 200ms).
const MAX_BUFFERED: usize = 16 * 1024 * 1024;

/// How often the writer moves buffered lines to the file.
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
    shared: Arc<Shared>,
    /// The opened file, until the writer thread takes it.
    pending: Mutex<Option<Sink>>,
    /// Started on the first line: a daemon forks after the config is loaded, and a
    /// thread started before the fork would not exist in the daemon.
    writer: OnceLock<()>,
}

/// What requests and the writer share: lines are appended under a short lock, and the
/// writer takes them all at once; no request wakes the writer.
struct Shared {
    buffer: Mutex<Vec<u8>>,
    dropped: AtomicU64,
    closed: AtomicBool,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("section", &self.section)
            .finish()
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        // The writer flushes what is left and ends.
        self.shared.closed.store(true, Relaxed);
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

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout => std::io::stdout().lock().write_all(bytes),
            Sink::File(w) => w.write_all(bytes),
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
            shared: Arc::new(Shared {
                buffer: Mutex::new(Vec::with_capacity(64 * 1024)),
                dropped: AtomicU64::new(0),
                closed: AtomicBool::new(false),
            }),
            pending: Mutex::new(Some(Sink::open(&section.path)?)),
            writer: OnceLock::new(),
        })
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Relaxed)
    }

    fn start_writer(&self) {
        let sink = match self.pending.lock() {
            Ok(mut pending) => pending.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let shared = Arc::clone(&self.shared);
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
                let mut batch = Vec::with_capacity(64 * 1024);
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    let closed = shared.closed.load(Relaxed);
                    if let Ok(mut buffer) = shared.buffer.lock() {
                        std::mem::swap(&mut *buffer, &mut batch);
                    }
                    if !batch.is_empty() {
                        if let Err(e) = sink.write_all(&batch) {
                            log::error!("access log {path}: {e}");
                        }
                        batch.clear();
                    }
                    let _ = sink.flush();
                    if closed {
                        return;
                    }
                    let wanted = REOPEN.load(Relaxed);
                    if wanted != generation {
                        generation = wanted;
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
    }

    pub fn write(&self, entry: &Entry<'_>) {
        let line = match self.section.format {
            LogFormat::Json => json_line(entry),
            LogFormat::Combined => combined_line(entry),
        };
        self.writer.get_or_init(|| self.start_writer());
        let Ok(mut buffer) = self.shared.buffer.lock() else {
            return;
        };
        if buffer.len() + line.len() >= MAX_BUFFERED {
            drop(buffer);
            self.shared.dropped.fetch_add(1, Relaxed);
            return;
        }
        buffer.extend_from_slice(line.as_bytes());
        buffer.push(b'\n');
    }
}

/// Timestamps formatted once per second per thread: formatting a date (and, for local
/// time, looking up the zone) on every request would cost more than the rest of the line.
struct TimeCache {
    second: i64,
    iso: String,
    clf: String,
}

thread_local! {
    static TIME: std::cell::RefCell<TimeCache> = const {
        std::cell::RefCell::new(TimeCache { second: i64::MIN, iso: String::new(), clf: String::new() })
    };
}

/// Runs `f` on the cache, refreshed for the current second, and the current time.
fn with_time<T>(f: impl FnOnce(&TimeCache, chrono::DateTime<chrono::Utc>) -> T) -> T {
    let now = chrono::Utc::now();
    let second = now.timestamp();
    TIME.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.second != second {
            cache.second = second;
            cache.iso = now.format("%Y-%m-%dT%H:%M:%S").to_string();
            cache.clf = now
                .with_timezone(&chrono::Local)
                .format("%d/%b/%Y:%H:%M:%S %z")
                .to_string();
        }
        f(&cache, now)
    })
}

/// `2026-11-29T21:10:05.123Z`
fn iso_now() -> String {
    with_time(|c, now| format!("{}.{:03}Z", c.iso, now.timestamp_subsec_millis()))
}

/// `29/Nov/2026:21:10:05 +0000`
fn clf_now() -> String {
    with_time(|c, _| c.clf.clone())
}

/// The JSON line's fields, in order.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    time: String,
    client: Option<IpAddr>,
    method: &'a str,
    path: &'a str,
    protocol: &'a str,
    status: u16,
    bytes: usize,
    duration_ms: f64,
    route: Option<&'a str>,
    upstream: Option<&'a str>,
    backend: Option<SocketAddr>,
    request_id: &'a str,
    user_agent: Option<&'a str>,
    referer: Option<&'a str>,
}

fn json_line(e: &Entry<'_>) -> String {
    let line = JsonLine {
        time: iso_now(),
        client: e.client,
        method: e.method,
        path: e.uri,
        protocol: e.protocol,
        status: e.status,
        bytes: e.bytes,
        duration_ms: (e.duration.as_secs_f64() * 1_000_000.0).round() / 1000.0,
        route: e.route,
        upstream: e.upstream,
        backend: e.backend,
        request_id: e.request_id,
        user_agent: e.user_agent,
        referer: e.referer,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// A quoted field of the combined format: `-` when absent, `"` and `\` escaped.
fn quoted(value: Option<&str>) -> std::borrow::Cow<'_, str> {
    match value {
        None => "-".into(),
        Some(v) if v.contains(['"', '\\']) => v.replace('\\', "\\\\").replace('"', "\\\"").into(),
        Some(v) => v.into(),
    }
}

/// nginx's `combined`, with the request id, route, upstream and duration appended:
/// `client - - [time] "request" status bytes "referer" "agent" id route upstream seconds`.
fn combined_line(e: &Entry<'_>) -> String {
    use std::fmt::Write as _;
    let mut line = String::with_capacity(256);
    match e.client {
        Some(ip) => {
            let _ = write!(line, "{ip}");
        }
        None => line.push('-'),
    }
    let _ = write!(
        line,
        " - - [{}] \"{} {} {}\" {} {} \"{}\" \"{}\" {} {} {} {:.3}",
        clf_now(),
        e.method,
        quoted(Some(e.uri)),
        e.protocol,
        e.status,
        e.bytes,
        quoted(e.referer),
        quoted(e.user_agent),
        e.request_id,
        e.route.unwrap_or("-"),
        e.upstream.unwrap_or("-"),
        e.duration.as_secs_f64(),
    );
    line
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
