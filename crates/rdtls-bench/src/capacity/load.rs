//! The clients of the capacity figure: our tokio client, many at once, on their own runtime
//! threads (named `cap-client`, so their CPU time is never counted as the server's).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdtls::proto::Config;
use rdtls::tokio::Connection;

/// A handshake that takes longer than this counts as failed.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Load {
    rt: tokio::runtime::Runtime,
    config: Arc<Config>,
    server_name: Option<&'static str>,
}

/// What a closed-loop run left behind: the handshakes completed so far and the failures.
#[derive(Clone, Default)]
pub(crate) struct Counters {
    pub(crate) done: Arc<AtomicU64>,
    pub(crate) failed: Arc<AtomicU64>,
}

impl Load {
    pub(crate) fn new(config: Arc<Config>, server_name: Option<&'static str>, threads: usize) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("cap-client")
            .enable_all()
            .build()
            .expect("client runtime");
        Self { rt, config, server_name }
    }

    /// One handshake to `server`, then close_notify; false if the handshake failed.
    async fn handshake(server: SocketAddr, config: Arc<Config>, name: Option<&'static str>) -> bool {
        let timeout = Some(HANDSHAKE_TIMEOUT);
        let conn = match name {
            Some(name) => Connection::connect_with_name(server, name, config, timeout).await,
            None => Connection::connect(server, config, timeout).await,
        };
        match conn {
            Ok(mut c) => {
                let _ = c.close().await;
                true
            }
            Err(_) => false,
        }
    }

    /// Starts `concurrency` clients that each handshake again as soon as the last handshake is
    /// done, until `stop`.
    pub(crate) fn closed_loop(&self, server: SocketAddr, concurrency: usize, stop: &Arc<AtomicBool>) -> Counters {
        let counters = Counters::default();
        for _ in 0..concurrency {
            let (config, name, stop, c) = (self.config.clone(), self.server_name, stop.clone(), counters.clone());
            self.rt.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let ok = Self::handshake(server, config.clone(), name).await;
                    (if ok { &c.done } else { &c.failed }).fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        counters
    }

    /// Waits until the clients of a closed loop stopped (at most a handshake timeout).
    pub(crate) fn settle(&self) {
        self.rt.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT + Duration::from_secs(1);
        while self.rt.metrics().num_alive_tasks() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts handshakes at `rate` per second for `window` (open loop: a new one is due on
    /// schedule however many are still in flight) and returns each one's latency in ms, measured
    /// from when it was due; a failed handshake counts as the time it took to fail.
    pub(crate) fn open_loop(&self, server: SocketAddr, rate: f64, window: Duration) -> Vec<f64> {
        let latencies = Arc::new(Mutex::new(Vec::with_capacity((rate * window.as_secs_f64()) as usize + 16)));
        let (config, name) = (self.config.clone(), self.server_name);
        let lat = latencies.clone();
        self.rt.block_on(async move {
            let start = tokio::time::Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut started = 0u64;
            let mut tasks = tokio::task::JoinSet::new();
            loop {
                tick.tick().await;
                let elapsed = start.elapsed().min(window);
                let due = (elapsed.as_secs_f64() * rate) as u64;
                while started < due {
                    // When this handshake was due, so a late start counts against the latency.
                    let due_at = start + Duration::from_secs_f64(started as f64 / rate);
                    let (config, lat) = (config.clone(), lat.clone());
                    tasks.spawn(async move {
                        Self::handshake(server, config, name).await;
                        let ms = due_at.elapsed().as_secs_f64() * 1e3;
                        lat.lock().expect("latencies").push(ms);
                    });
                    started += 1;
                }
                if elapsed >= window {
                    break;
                }
            }
            while tasks.join_next().await.is_some() {}
        });
        let mut v = std::mem::take(&mut *latencies.lock().expect("latencies"));
        v.sort_by(f64::total_cmp);
        v
    }
}
