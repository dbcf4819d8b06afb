//! Qt's "DTLS client" example, on the blocking [`rdtls::Connection`].
//!
//! Qt's client runs several named `DtlsAssociation`s, to one or many servers. Each owns a
//! `QUdpSocket` connected to its server and a `QDtls` in client mode; its PSK identity is its
//! name (`pskRequired` slot). It starts the handshake with `doHandshake(&socket)`, feeds every
//! datagram to `doHandshake` until `isConnectionEncrypted()`, retransmits on
//! `handshakeTimeout` with `handleTimeout`, then sends `I am <name>, please, accept our ping
//! <n>` every 5 seconds with `writeDatagramEncrypted`, prints each response (hex of the
//! datagram and its plain text) and, when `decryptDatagram` reports
//! `RemoteClosedConnectionError`, says "shutdown alert received", closes the socket and stops
//! its ping timer.
//!
//! Here each association is a [`rdtls::Connection`] (its own connected socket, the handshake,
//! timers and retransmissions run by the library), on one thread; an [`Observer`] shows what
//! Qt's slots print: every datagram as it arrived (hex) and every retransmission. The
//! `qt_server` example shows the other way, the sans-IO core driven by hand.
//!
//! | Qt                                    | here                                                  |
//! |---------------------------------------|-------------------------------------------------------|
//! | `QDtls`, `doHandshake` until `isConnectionEncrypted()` | [`Connection::connect_with`] (blocking, with the handshake timeout) |
//! | `pskRequired`: identity = name        | `ConfigBuilder::psk_callback` → `PskCredentials`      |
//! | `handshakeTimeout` → `handleTimeout`  | done by the library; [`Observed::Event`] `Retransmitted` |
//! | `writeDatagramEncrypted(&socket, …)`  | [`Connection::send`]                                  |
//! | `decryptDatagram(&socket, dgram)`     | [`Connection::recv`]; [`Observed::Received`] for the hex |
//! | `dtlsError() == RemoteClosedConnectionError` | a receive error whose core error is `RemoteClosed` |
//! | `pingTimer` (5 s)                     | the receive timeout until the next ping               |
//!
//! # Running
//!
//! ```text
//! cargo run -p rdtls --example qt_client                               # loopback scenario
//! cargo run -p rdtls --example qt_client -- 127.0.0.1:4433 alice bob   # against a server
//! ```
//!
//! The scenario starts two example servers on ephemeral loopback ports (the blocking
//! [`rdtls::Server`], answering `to <peer>: ACK`), runs three associations (`alice` and `bob` to
//! the first, `carol` to the second) pinging every 150 ms, and has each server shut down with
//! close_notify once every one of its clients has been answered three times: each association
//! must see the shutdown alert. With a server address, the associations ping every 5 seconds
//! until the server shuts down or you type "quit" (or Ctrl-D), which closes them with
//! close_notify. Use it with the `qt_server` example or `dtls server --psk-key 1a2b3c4d5e6f`.

use std::collections::HashMap;
use std::io::{self, BufRead};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rdtls::proto::{Config, Error, Event, PskCredentials};
use rdtls::{Connection, Observed, Observer, Server, ServerEvent, SocketOptions};

/// The pre-shared key of Qt's examples.
const PSK: &[u8] = b"\x1a\x2b\x3c\x4d\x5e\x6f";

/// `QByteArray::toHex(' ')`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// How an association behaves.
#[derive(Clone, Debug)]
struct Plan {
    /// Qt's `pingTimer` interval (5 s in Qt's example).
    ping_interval: Duration,
    /// Give up if nothing was heard for this long.
    silence_limit: Duration,
    /// Set to close the association (close_notify) and return.
    stop: Arc<AtomicBool>,
}

/// What an association saw.
#[derive(Debug, Default)]
struct Report {
    name: String,
    pings: u32,
    responses: u32,
    shutdown_alert: bool,
    /// Why the association failed, if it did.
    error: Option<String>,
}

/// Qt's `DtlsAssociation`: constructor, `startHandshake()` and the slots, as one loop.
fn association(server: SocketAddr, name: &str, plan: &Plan) -> io::Result<Report> {
    let mut report = Report { name: name.to_owned(), ..Report::default() };
    let who = name.to_owned();
    let config = Config::builder()
        // Qt's pskRequired() slot.
        .psk_callback(move |hint| {
            let hint = hint.map(String::from_utf8_lossy).unwrap_or_default();
            println!("{who}: providing pre-shared key (server hint '{hint}') ...");
            Some(PskCredentials::new(who.as_bytes(), PSK))
        })
        .build()?;
    // What Qt's slots print about the datagrams: the last one as it arrived, retransmissions.
    let last_datagram = Arc::new(Mutex::new(String::new()));
    let (seen, who) = (last_datagram.clone(), name.to_owned());
    let observer = Observer::new(move |o| match o {
        Observed::Received { datagram, .. } => *seen.lock().unwrap() = hex(datagram),
        Observed::Handshaking { .. } => println!("{who}: continuing with handshake ..."),
        Observed::Event { event: Event::Retransmitted, .. } => {
            println!("{who}: handshake timeout, trying to re-transmit")
        }
        Observed::Event { event: Event::WarningAlert(a), .. } => println!("{who}: warning alert {a}"),
        _ => {}
    });
    println!("{name}: starting a handshake with {server}");
    let options = SocketOptions::default().observer(observer);
    let mut conn = Connection::connect_with(server, None, Arc::new(config), &options, None)?;
    let suite = conn.cipher_suite().map_or("?", |s| s.name);
    println!("{name}: encrypted connection established! ({suite})");
    // pingTimer.start(); pingTimeout();
    let mut next_ping = Instant::now();
    let mut last_heard = Instant::now();
    let mut buf = vec![0u8; 65_535];
    loop {
        if plan.stop.load(Ordering::Relaxed) {
            println!("{name}: closing");
            conn.close()?;
            return Ok(report);
        }
        let now = Instant::now();
        if now.duration_since(last_heard) > plan.silence_limit {
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("{name}: the server went silent")));
        }
        if next_ping <= now {
            // Qt's pingTimeout().
            let message = format!("I am {name}, please, accept our ping {}", report.pings);
            conn.send(message.as_bytes())?;
            report.pings += 1;
            next_ping = now + plan.ping_interval;
        }
        let wait = next_ping.saturating_duration_since(now).clamp(Duration::from_millis(1), Duration::from_millis(100));
        // Qt's readyRead() → decryptDatagram().
        match conn.recv(&mut buf, Some(wait)) {
            Ok(n) => {
                last_heard = Instant::now();
                report.responses += 1;
                // Qt's MainWindow::addServerResponse.
                println!(
                    "---------------\n{name} received a DTLS datagram:\n {}\nAs plain text:\n {}",
                    last_datagram.lock().unwrap(),
                    String::from_utf8_lossy(&buf[..n])
                );
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
            Err(e) => {
                let core = e.get_ref().and_then(|inner| inner.downcast_ref::<Error>());
                if matches!(core, Some(Error::RemoteClosed)) {
                    println!("{name}: shutdown alert received");
                    report.shutdown_alert = true;
                } else {
                    println!("{name}: connection closed: {e}");
                    report.error = Some(e.to_string());
                }
                // Qt closes the socket and stops the ping timer.
                return Ok(report);
            }
        }
    }
}

/// Runs one association on its own thread.
fn spawn_association(server: SocketAddr, name: &str, plan: Plan) -> thread::JoinHandle<io::Result<Report>> {
    let name = name.to_owned();
    thread::spawn(move || association(server, &name, &plan))
}

// ===== the scenario =====

/// The example server on the blocking [`rdtls::Server`]: answers `to <peer>: ACK` and, once
/// each of `peers` clients was answered `pings` times, shuts down (close_notify to all).
fn example_server(peers: usize, pings: usize) -> io::Result<(SocketAddr, thread::JoinHandle<io::Result<()>>)> {
    let config = Config::builder().psk_identity_hint("Qt DTLS example server").psk_server_key(PSK).build()?;
    let mut server = Server::bind(([127, 0, 0, 1], 0).into(), Arc::new(config))?;
    let addr = server.local_addr()?;
    let thread = thread::spawn(move || {
        let mut answered: HashMap<SocketAddr, usize> = HashMap::new();
        loop {
            let Some(event) = server.poll(Some(Duration::from_secs(10)))? else {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "server: no client activity"));
            };
            match event {
                ServerEvent::Message(peer, _) => {
                    server.send_to(peer, format!("to {peer}: ACK").as_bytes())?;
                    *answered.entry(peer).or_default() += 1;
                    if answered.len() == peers && answered.values().all(|&n| n >= pings) {
                        println!("server {addr}: every client was answered {pings} times; shutting down");
                        return server.shutdown().map(drop);
                    }
                }
                ServerEvent::Connected(peer) => println!("server {addr}: {peer} connected"),
                ServerEvent::Closed(peer, e) => println!("server {addr}: {peer} closed: {e:?}"),
                _ => {}
            }
        }
    });
    Ok((addr, thread))
}

fn scenario() -> Result<(), Box<dyn std::error::Error>> {
    const PINGS: usize = 3;
    let (first, first_server) = example_server(2, PINGS)?;
    let (second, second_server) = example_server(1, PINGS)?;
    let plan = Plan {
        ping_interval: Duration::from_millis(150),
        silence_limit: Duration::from_secs(10),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let associations = [("alice", first), ("bob", first), ("carol", second)]
        .into_iter()
        .map(|(name, server)| spawn_association(server, name, plan.clone()))
        .collect::<Vec<_>>();
    let mut reports = Vec::new();
    for a in associations {
        reports.push(a.join().map_err(|_| "an association panicked")??);
    }
    first_server.join().map_err(|_| "a server panicked")??;
    second_server.join().map_err(|_| "a server panicked")??;
    for r in &reports {
        println!("{}: {} pings, {} responses, shutdown alert: {}", r.name, r.pings, r.responses, r.shutdown_alert);
        if r.responses < PINGS as u32 || !r.shutdown_alert || r.error.is_some() {
            return Err(format!("{}: expected {PINGS} responses and the shutdown alert: {r:?}", r.name).into());
        }
    }
    Ok(())
}

/// Client mode: associations named on the command line, pinging every 5 seconds until the
/// server shuts down or "quit" / end of input on stdin.
fn run_clients(server: SocketAddr, names: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let plan = Plan {
        ping_interval: Duration::from_secs(5),
        silence_limit: Duration::from_secs(70),
        stop: Arc::new(AtomicBool::new(false)),
    };
    {
        let stop = plan.stop.clone();
        thread::spawn(move || {
            for line in io::stdin().lock().lines() {
                match line {
                    Ok(l) if l.trim() == "quit" => break,
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
    println!("type quit or Ctrl-D to close the associations");
    let names = if names.is_empty() { vec!["dtls-client".to_owned()] } else { names };
    let threads: Vec<_> = names.iter().map(|n| spawn_association(server, n, plan.clone())).collect();
    let mut failed = false;
    for t in threads {
        match t.join().map_err(|_| "an association panicked")? {
            Ok(Report { error: Some(e), name, .. }) => {
                println!("{name}: error: {e}");
                failed = true;
            }
            Ok(r) => println!("{}: {} pings, {} responses", r.name, r.pings, r.responses),
            Err(e) => {
                println!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err("some association failed".into());
    }
    Ok(())
}

/// Runs the mode the arguments select.
fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    match args.next() {
        None => scenario(),
        Some(a) if a == "-h" || a == "--help" => {
            println!("usage: qt_client [SERVER_ADDR [NAME...]]   (no argument: run the loopback scenario)");
            Ok(())
        }
        Some(server) => run_clients(server.parse()?, args.collect()),
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs() {
        super::scenario().unwrap();
    }
}
