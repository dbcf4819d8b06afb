//! Qt's "DTLS client" example, on the sans-IO core.
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
//! Here each association is a [`dtls_proto::Connection`] over its own connected
//! [`std::net::UdpSocket`], run by one thread (its event loop):
//!
//! | Qt                                    | here                                                  |
//! |---------------------------------------|-------------------------------------------------------|
//! | `QDtls crypto(QSslSocket::SslClientMode)`, `doHandshake(&socket)` | [`Connection::client`], then `poll_transmit` |
//! | `pskRequired`: identity = name        | `ConfigBuilder::psk_callback` → `PskCredentials`      |
//! | `doHandshake(&socket, dgram)`         | [`Connection::handle_datagram`] while not established |
//! | `handshakeTimeout` → `handleTimeout`  | wake at `poll_timeout`, [`Connection::handle_timeout`], `Event::Retransmitted` |
//! | `isConnectionEncrypted()`             | [`Connection::is_established`]                        |
//! | `writeDatagramEncrypted(&socket, …)`  | [`Connection::send`] into a buffer, then `socket.send` |
//! | `decryptDatagram(&socket, dgram)`     | [`Connection::handle_datagram`] → `Received`           |
//! | `dtlsError() == RemoteClosedConnectionError` | `ErrorKind::RemoteClosedConnection`            |
//! | `pingTimer` (5 s)                     | a deadline folded into the socket's read timeout       |
//!
//! # Running
//!
//! ```text
//! cargo run -p dtls --example qt_client                               # loopback scenario
//! cargo run -p dtls --example qt_client -- 127.0.0.1:4433 alice bob   # against a server
//! ```
//!
//! The scenario starts two example servers on ephemeral loopback ports (the blocking
//! [`dtls::Server`], answering `to <peer>: ACK`), runs three associations (`alice` and `bob` to
//! the first, `carol` to the second) pinging every 150 ms, and has each server shut down with
//! close_notify once every one of its clients has been answered three times: each association
//! must see the shutdown alert. With a server address, the associations ping every 5 seconds
//! until the server shuts down or you type "quit" (or Ctrl-D), which closes them with
//! close_notify. Use it with the `qt_server` example or `dtls server --psk-key 1a2b3c4d5e6f`.

use std::collections::HashMap;
use std::io::{self, BufRead};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use dtls::{Server, ServerEvent};
use dtls_proto::{Config, Connection, ErrorKind, Event, PskCredentials};

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
    /// Give up if the handshake has not completed or nothing was heard for this long.
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

/// Qt's `DtlsAssociation`.
struct DtlsAssociation {
    name: String,
    socket: UdpSocket,
    crypto: Connection,
    next_ping: Option<Instant>,
    last_heard: Instant,
    rx: Vec<u8>,
    tx: Vec<u8>,
    report: Report,
}

impl DtlsAssociation {
    /// Qt's constructor and `startHandshake()`: a UDP socket connected to the server (so only
    /// its datagrams arrive), a client configuration whose PSK identity is `name`, and the
    /// first flight.
    fn new(server: SocketAddr, name: &str) -> io::Result<Self> {
        let local: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let socket = UdpSocket::bind(local)?;
        socket.connect(server)?;
        let who = name.to_owned();
        let config = Config::builder()
            // Qt's pskRequired() slot.
            .psk_callback(move |hint| {
                let hint = hint.map(String::from_utf8_lossy).unwrap_or_default();
                println!("{who}: providing pre-shared key (server hint '{hint}') ...");
                Some(PskCredentials::new(who.as_bytes(), PSK))
            })
            .build()?;
        let crypto = Connection::client(Arc::new(config), Instant::now())?;
        println!("{name}: starting a handshake with {server}");
        Ok(Self {
            name: name.to_owned(),
            socket,
            crypto,
            next_ping: None,
            last_heard: Instant::now(),
            rx: vec![0; 65_535],
            tx: Vec::with_capacity(2048),
            report: Report { name: name.to_owned(), ..Report::default() },
        })
    }

    /// The association's event loop: datagrams, the handshake timer and the ping timer.
    fn run(mut self, plan: &Plan) -> io::Result<Report> {
        loop {
            self.transmit()?;
            if self.crypto.is_closed() {
                return Ok(self.report);
            }
            if plan.stop.load(Ordering::Relaxed) {
                println!("{}: closing", self.name);
                let _ = self.crypto.shutdown();
                self.transmit()?;
                return Ok(self.report);
            }
            let now = Instant::now();
            if now.duration_since(self.last_heard) > plan.silence_limit {
                return Err(io::Error::new(io::ErrorKind::TimedOut, format!("{}: the server went silent", self.name)));
            }
            if self.next_ping.is_some_and(|t| t <= now) {
                self.ping_timeout(plan)?;
            }
            let wake = [self.crypto.poll_timeout(), self.next_ping].into_iter().flatten().min();
            let wait = wake
                .map_or(Duration::from_millis(100), |t| t.saturating_duration_since(now))
                .clamp(Duration::from_millis(1), Duration::from_millis(100));
            self.socket.set_read_timeout(Some(wait))?;
            match self.socket.recv(&mut self.rx) {
                Ok(n) => self.ready_read(n),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    self.handshake_timeout();
                }
                // ICMP port unreachable for an earlier datagram: nobody listens (yet, or any more).
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    println!("{}: warning: the server's port is unreachable", self.name);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Qt's `readyRead()`.
    fn ready_read(&mut self, n: usize) {
        self.last_heard = Instant::now();
        if self.crypto.is_established() {
            let cipher_text = hex(&self.rx[..n]);
            match self.crypto.handle_datagram(Instant::now(), &mut self.rx[..n]) {
                Ok(received) if !received.is_empty() => {
                    for plain_text in received.iter() {
                        self.report.responses += 1;
                        // Qt's MainWindow::addServerResponse.
                        println!(
                            "---------------\n{} received a DTLS datagram:\n {cipher_text}\nAs plain text:\n {}",
                            self.name,
                            String::from_utf8_lossy(plain_text)
                        );
                    }
                }
                Ok(_) => println!("{}: warning: zero-length datagram received?", self.name),
                Err(e) if e.kind() == ErrorKind::RemoteClosedConnection => {
                    println!("{}: shutdown alert received", self.name);
                    self.report.shutdown_alert = true;
                    // Qt closes the socket and stops the ping timer; our loop returns.
                    self.next_ping = None;
                }
                Err(e) => println!("{}: error: {e}", self.name),
            }
            return;
        }
        // Qt's doHandshake(&socket, dgram).
        if let Err(e) = self.crypto.handle_datagram(Instant::now(), &mut self.rx[..n]) {
            println!("{}: handshake error - {e}", self.name);
            return;
        }
        if self.crypto.is_established() {
            let suite = self.crypto.cipher_suite().map_or("?", |s| s.name);
            println!("{}: encrypted connection established! ({suite})", self.name);
            // pingTimer.start(); pingTimeout();
            self.next_ping = Some(Instant::now());
        } else {
            println!("{}: continuing with handshake ...", self.name);
        }
    }

    /// Qt's `handshakeTimeout()` slot → `handleTimeout(&socket)`.
    fn handshake_timeout(&mut self) {
        if self.crypto.poll_timeout().is_some_and(|t| t <= Instant::now()) {
            if let Err(e) = self.crypto.handle_timeout(Instant::now()) {
                println!("{}: failed to re-transmit - {e}", self.name);
            }
        }
    }

    /// Qt's `pingTimeout()`.
    fn ping_timeout(&mut self, plan: &Plan) -> io::Result<()> {
        let message = format!("I am {}, please, accept our ping {}", self.name, self.report.pings);
        self.tx.clear();
        if let Err(e) = self.crypto.send(message.as_bytes(), &mut self.tx) {
            println!("{}: failed to send a ping - {e}", self.name);
            self.next_ping = None;
            return Ok(());
        }
        match self.socket.send(&self.tx) {
            Ok(_) => self.report.pings += 1,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                println!("{}: warning: the server's port is unreachable", self.name);
            }
            Err(e) => return Err(e),
        }
        self.next_ping = Some(Instant::now() + plan.ping_interval);
        Ok(())
    }

    /// Sends what the connection queued (flights, retransmissions, alerts); logs its events.
    fn transmit(&mut self) -> io::Result<()> {
        while self.crypto.poll_transmit(&mut self.tx).is_some() {
            match self.socket.send(&self.tx) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(e),
            }
        }
        while let Some(event) = self.crypto.poll_event() {
            match event {
                Event::Retransmitted => println!("{}: handshake timeout, trying to re-transmit", self.name),
                Event::WarningAlert(a) => println!("{}: warning alert {a}", self.name),
                Event::Closed(e) if e.kind() != ErrorKind::RemoteClosedConnection => {
                    println!("{}: connection closed: {e}", self.name);
                    self.report.error = Some(e.to_string());
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Runs one association on its own thread.
fn spawn_association(server: SocketAddr, name: &str, plan: Plan) -> thread::JoinHandle<io::Result<Report>> {
    let name = name.to_owned();
    thread::spawn(move || DtlsAssociation::new(server, &name)?.run(&plan))
}

// ===== the scenario =====

/// The example server on the blocking [`dtls::Server`]: answers `to <peer>: ACK` and, once
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
