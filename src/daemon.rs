//! Closes a race in Pingora 0.9's `daemon_wait_for_ready`.
//!
//! The launching process forks the daemon and then waits for the daemon's SIGUSR1 ("I am
//! ready"). But it starts listening for that signal only after the fork, and SIGUSR1's
//! default action is to terminate: if the daemon is quick and the launcher slow (a loaded
//! machine), the launcher is killed by the very signal it waits for, and `gatehouse -d`
//! (or systemd's start or reload) reports a failure although the daemon runs.
//!
//! So, before Pingora forks, we catch SIGUSR1 ourselves and keep a watcher thread. Threads
//! do not survive a fork, so the watcher lives only in the launcher: when the signal
//! arrives, early or not, it ends the launcher with success, as Pingora would have.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Call in daemon mode, before the server runs.
pub fn catch_early_readiness_signal() {
    let ready = Arc::new(AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&ready)) {
        log::warn!("cannot watch for the daemon's readiness signal: {e}");
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("daemon-ready".into())
        .spawn(move || loop {
            if ready.load(Ordering::Relaxed) {
                log::info!("daemon signaled readiness, launcher exiting");
                std::process::exit(0);
            }
            std::thread::sleep(Duration::from_millis(10));
        });
    if let Err(e) = spawned {
        log::warn!("cannot watch for the daemon's readiness signal: {e}");
    }
}
