//! Figure 6: server capacity with real sockets on loopback.
//!
//! Our server is a [`Listener`] (one driver thread), then `SO_REUSEPORT` workers (one listener per
//! core, [`Listener::bind_workers`]); OpenSSL's is `DTLSv1_listen` with one thread per
//! connection-multiplexing worker, first one thread, then one per core (see [`openssl`]). Both
//! verify cookies. Our tokio clients, as many at once as it takes to keep the server busy,
//! handshake (PSK, or ECDHE-ECDSA with X25519) and close, again and again.
//!
//! Reported: handshakes per second; server CPU per handshake, from the CPU time of the server's
//! own threads (read from `/proc/self/task`), so that the clients' load on the same machine does
//! not blur it; that figure against each stack's in-memory figure (figure 1); and handshake
//! latency, p50 and p99, with handshakes started on schedule at 50% and 90% of the capacity
//! each stack measured.

mod load;
mod openssl;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rdtls::{Listener, ListenerOptions};

use self::load::Load;
use crate::report::Row;
use crate::setup::{self, Credentials, Kind, SERVER_NAME};
use crate::{inmem, Effort};

/// Clients handshaking at once in the saturating runs.
const CONCURRENCY: usize = 64;
/// Threads whose CPU time is ours as a server: listener drivers and the threads that accept.
const OURS: &[&str] = &["dtls-listener", "cap-accept"];
/// OpenSSL's server threads.
const THEIRS: &[&str] = &["cap-openssl"];

/// CPU time used so far by this process's threads whose names start with one of `prefixes`.
fn threads_cpu(prefixes: &[&str]) -> Duration {
    let mut ns = 0u64;
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    for task in tasks.flatten() {
        let path = task.path();
        let Ok(name) = std::fs::read_to_string(path.join("comm")) else { continue };
        if !prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        // The first field of schedstat: nanoseconds on a CPU.
        if let Ok(stat) = std::fs::read_to_string(path.join("schedstat")) {
            ns += stat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

/// A server under test.
enum Server {
    Ours { addr: SocketAddr, listeners: Vec<Arc<Listener>>, stop: Arc<AtomicBool>, acceptors: Vec<JoinHandle<()>> },
    Theirs(openssl::Server),
}

impl Server {
    /// Our listeners: one, or `workers` in an `SO_REUSEPORT` group; each with a thread that
    /// accepts its connections and drops them (which sends close_notify).
    fn ours(kind: Kind, creds: &Credentials, workers: usize) -> Self {
        let cfg = setup::ours_server(kind, creds, true);
        // Every client comes from 127.0.0.1: lift the per-address half-open limit.
        let options = ListenerOptions::default().limits(100_000, 10_000, 10_000);
        let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let listeners: Vec<Arc<Listener>> = if workers == 1 {
            vec![Arc::new(Listener::bind_with(any, cfg, options).expect("listener"))]
        } else {
            Listener::bind_workers(any, cfg, options, workers).expect("workers").into_iter().map(Arc::new).collect()
        };
        let addr = listeners[0].local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let acceptors = listeners
            .iter()
            .map(|l| {
                let (l, stop) = (l.clone(), stop.clone());
                thread::Builder::new()
                    .name("cap-accept".into())
                    .spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            if let Ok(conn) = l.accept_timeout(Duration::from_millis(20)) {
                                drop(conn);
                            }
                        }
                    })
                    .expect("acceptor")
            })
            .collect();
        Self::Ours { addr, listeners, stop, acceptors }
    }

    fn theirs(kind: Kind, creds: &Credentials, threads: usize) -> Self {
        Self::Theirs(openssl::Server::start(&openssl::context(kind, creds), threads))
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Self::Ours { addr, .. } => *addr,
            Self::Theirs(s) => s.addr,
        }
    }

    fn threads(&self) -> &'static [&'static str] {
        match self {
            Self::Ours { .. } => OURS,
            Self::Theirs(_) => THEIRS,
        }
    }

    fn stop(self) {
        match self {
            Self::Ours { listeners, stop, acceptors, .. } => {
                stop.store(true, Ordering::Relaxed);
                for a in acceptors {
                    a.join().expect("acceptor");
                }
                drop(listeners);
            }
            Self::Theirs(s) => {
                s.stop();
            }
        }
    }
}

/// What a saturating run measured.
#[derive(Clone, Copy, Debug)]
struct Capacity {
    /// Handshakes per second.
    rate: f64,
    /// Server CPU per handshake, µs.
    cpu_us: f64,
}

/// Keeps `server` busy with `CONCURRENCY` clients and measures over `window` (after a warm-up).
fn saturate(load: &Load, server: &Server, window: Duration) -> Capacity {
    let stop = Arc::new(AtomicBool::new(false));
    let counters = load.closed_loop(server.addr(), CONCURRENCY, &stop);
    thread::sleep(window / 4);
    let (done0, cpu0, t0) = (counters.done.load(Ordering::Relaxed), threads_cpu(server.threads()), Instant::now());
    thread::sleep(window);
    let (done1, cpu1, t1) = (counters.done.load(Ordering::Relaxed), threads_cpu(server.threads()), Instant::now());
    stop.store(true, Ordering::Relaxed);
    load.settle();
    let done = (done1 - done0).max(1) as f64;
    Capacity { rate: done / (t1 - t0).as_secs_f64(), cpu_us: (cpu1 - cpu0).as_secs_f64() * 1e6 / done }
}

/// The `p` quantile of `sorted` (NaN, printed as null, if there is no sample).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn run(effort: &Effort, creds: &Credentials, rows: &mut Vec<Row>) {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let window = if effort.quick { Duration::from_millis(800) } else { Duration::from_secs(3) };
    for kind in [Kind::Psk, Kind::Ecdsa] {
        let k = kind.label();
        let name = (kind == Kind::Ecdsa).then_some(SERVER_NAME);
        let load = Load::new(setup::ours_client(kind, creds), name, cores);
        let measure = |server: Server| {
            let c = saturate(&load, &server, window);
            (c, server)
        };

        let (ours1, s) = measure(Server::ours(kind, creds, 1));
        s.stop();
        let (theirs1, s) = measure(Server::theirs(kind, creds, 1));
        s.stop();
        rows.push(Row::new(
            format!("capacity, {k}, one Listener / one OpenSSL thread"),
            "handshakes/s",
            ours1.rate,
            Some(theirs1.rate),
        ));
        rows.push(Row::new(
            format!("server CPU per handshake under load, {k}, one thread"),
            "us",
            ours1.cpu_us,
            Some(theirs1.cpu_us),
        ));

        // Each stack with one server per core, then its latency at 50% and 90% of what it did.
        let mut latency = Vec::new();
        let (oursn, s) = measure(Server::ours(kind, creds, cores));
        for load_factor in [0.5, 0.9] {
            latency.push(load.open_loop(s.addr(), oursn.rate * load_factor, window));
        }
        s.stop();
        let (theirsn, s) = measure(Server::theirs(kind, creds, cores));
        for load_factor in [0.5, 0.9] {
            latency.push(load.open_loop(s.addr(), theirsn.rate * load_factor, window));
        }
        s.stop();
        rows.push(Row::new(
            format!("capacity, {k}, {cores} SO_REUSEPORT workers / {cores} OpenSSL threads"),
            "handshakes/s",
            oursn.rate,
            Some(theirsn.rate),
        ));
        rows.push(Row::new(
            format!("server CPU per handshake under load, {k}, {cores} workers"),
            "us",
            oursn.cpu_us,
            Some(theirsn.cpu_us),
        ));
        rows.push(Row::new(
            format!("handshakes per server CPU-second, {k}, {cores} workers"),
            "handshakes/s",
            1e6 / oursn.cpu_us,
            Some(1e6 / theirsn.cpu_us),
        ));
        let (mem_ours, mem_theirs) = inmem::server_cpu(effort, creds, kind, true);
        rows.push(Row::new(
            format!("server CPU per handshake under load / in memory, {k}, {cores} workers"),
            "x",
            oursn.cpu_us / mem_ours,
            Some(theirsn.cpu_us / mem_theirs),
        ));
        for (i, (load_factor, p)) in [(50, 0.5), (50, 0.99), (90, 0.5), (90, 0.99)].into_iter().enumerate() {
            let (ours, theirs) = (&latency[i / 2], &latency[2 + i / 2]);
            rows.push(Row::new(
                format!("handshake latency p{:.0} at {load_factor}% of capacity, {k}, {cores} workers", p * 100.0),
                "ms",
                percentile(ours, p),
                Some(percentile(theirs, p)),
            ));
        }
    }
}
