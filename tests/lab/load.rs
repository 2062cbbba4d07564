//! A bounded loopback load: a few clients requesting one URL until a deadline.
//!
//! Invariants: at most `clients` threads, each pausing between requests, every request bounded by
//! the client's timeout, and the whole load stops by itself at its deadline or when dropped
//! (drop waits for the threads, so no request outlives the scenario).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::client;

/// Pause between two requests of one client.
const PAUSE: Duration = Duration::from_millis(100);

/// A running load; stops at its deadline or on drop.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `clients` clients (capped at 16) requesting `url` for at most `duration` (capped at 30 s).
    pub fn start(url: &str, clients: usize, duration: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + duration.min(Duration::from_secs(30));
        let threads = (0..clients.min(16))
            .map(|_| {
                let stop = Arc::clone(&stop);
                let url = url.to_owned();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                        let _ = client::get(&url);
                        std::thread::sleep(PAUSE);
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
