//! Figure 5: handshake latency of real clients while spoofed ClientHellos flood the server.
//!
//! The server is a [`rdtls::Listener`] (stateless cookie check, every handshake on its driver
//! thread). Flood senders on 64 loopback addresses send ClientHellos that never answer the
//! HelloVerifyRequest, paced at a fixed rate; real PSK clients connect one after another and
//! each handshake is timed from the first ClientHello to the established connection.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rdtls::{Connection, Listener, ListenerOptions};

use crate::report::Row;
use crate::setup::{self, Credentials, Kind};
use crate::{median, Effort};

/// Flood rate, ClientHellos per second.
const FLOOD_RATE: u64 = 50_000;
/// Loopback source addresses the flood comes from.
const FLOOD_SOURCES: u8 = 64;

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// ClientHellos as our client sends them (each with its own random), without a cookie.
fn client_hellos(creds: &Credentials, n: usize) -> Vec<Vec<u8>> {
    let cfg = setup::ours_client(Kind::Psk, creds);
    let now = Instant::now();
    (0..n)
        .map(|_| {
            let mut c = rdtls_proto::Connection::client(cfg.clone(), now).expect("client");
            let mut d = Vec::new();
            c.poll_transmit(&mut d).expect("a ClientHello");
            d
        })
        .collect()
}

/// Sends spoofed ClientHellos to `target` at `FLOOD_RATE` until `stop`; counts them in `sent`.
fn flood(target: SocketAddr, hellos: Vec<Vec<u8>>, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let sockets: Vec<UdpSocket> = (1..=FLOOD_SOURCES)
        .map(|i| UdpSocket::bind(SocketAddr::from((Ipv4Addr::new(127, 0, 1, i), 0))).expect("flood socket"))
        .collect();
    pace(&sockets, &hellos, target, FLOOD_RATE, &stop, &sent);
}

/// Sends `datagrams` in turn, each from the next of `sockets`, to `target` at `rate` per second
/// until `stop`, counting them in `sent` as it goes. Returns how long it sent.
pub(crate) fn pace(
    sockets: &[UdpSocket],
    datagrams: &[Vec<u8>],
    target: SocketAddr,
    rate: u64,
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> Duration {
    let burst = 100u64;
    let period = Duration::from_secs_f64(burst as f64 / rate as f64);
    let start = Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..burst {
            let s = &sockets[(n % sockets.len() as u64) as usize];
            let d = &datagrams[(n % datagrams.len() as u64) as usize];
            // Drops under overload are part of a flood; errors are not interesting here.
            let _ = s.send_to(d, target);
            n += 1;
        }
        sent.store(n, Ordering::Relaxed);
        // Pace: the next burst is due at n / rate after the start.
        let due = start + period * (n / burst) as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
    start.elapsed()
}

/// Handshake latencies (ms) of `count` clients connecting one after another.
fn latencies(server: SocketAddr, creds: &Credentials, count: usize) -> Vec<f64> {
    let cfg = setup::ours_client(Kind::Psk, creds);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        let mut conn = Connection::connect(server, cfg.clone(), Some(Duration::from_secs(30))).expect("handshake");
        out.push(start.elapsed().as_secs_f64() * 1e3);
        let _ = conn.close();
    }
    out
}

/// A listener on loopback for `cfg` whose connections are accepted and dropped (the clients
/// close right after their handshake) until the flag is set; the thread that does it.
pub(crate) fn accepting_listener(cfg: Arc<rdtls::Config>) -> (Arc<Listener>, Arc<AtomicBool>, JoinHandle<()>) {
    let listener = Arc::new(
        Listener::bind_with("127.0.0.1:0".parse().expect("address"), cfg, ListenerOptions::default())
            .expect("listener"),
    );
    let done = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let (listener, done) = (listener.clone(), done.clone());
        thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Ok(conn) = listener.accept_timeout(Duration::from_millis(50)) {
                    drop(conn);
                }
            }
        })
    };
    (listener, done, acceptor)
}

pub(crate) fn run(effort: &Effort, creds: &Credentials, rows: &mut Vec<Row>) {
    let (listener, done, acceptor) = accepting_listener(setup::ours_server(Kind::Psk, creds, true));
    let addr = listener.local_addr().expect("address");
    let clients = effort.scale(400).max(50);

    // Without a flood, for reference.
    let mut quiet = latencies(addr, creds, clients / 2);
    quiet.sort_by(f64::total_cmp);

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flooder = {
        let (stop, sent) = (stop.clone(), sent.clone());
        let hellos = client_hellos(creds, 16);
        thread::spawn(move || flood(addr, hellos, stop, sent))
    };
    let started = Instant::now();
    let mut loaded = latencies(addr, creds, clients);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    flooder.join().expect("flood thread");
    let rate = sent.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64();
    loaded.sort_by(f64::total_cmp);
    done.store(true, Ordering::Relaxed);
    acceptor.join().expect("acceptor thread");

    rows.push(Row::new("handshake latency p50, PSK, no flood", "ms", median(&mut quiet), None));
    rows.push(Row::new(
        format!("handshake latency p50, PSK, flood of {:.0}k ClientHello/s", rate / 1e3),
        "ms",
        percentile(&loaded, 0.5),
        None,
    ));
    rows.push(Row::new(
        format!("handshake latency p99, PSK, flood of {:.0}k ClientHello/s", rate / 1e3),
        "ms",
        percentile(&loaded, 0.99),
        None,
    ));
}
