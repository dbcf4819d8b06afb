//! Qt's "DTLS server" example, on the sans-IO core.
//!
//! Qt's `DtlsServer` owns one `QUdpSocket`, a `QDtlsClientVerifier` and a list of `QDtls`
//! objects, one per client. Its `readyRead()` slot reads a datagram, finds the peer's `QDtls`
//! by address and port, and either decrypts the datagram (`decryptDatagram`), continues the
//! handshake (`doHandshake`), or, for an unknown peer, checks the ClientHello's cookie
//! (`verifyClient`) before creating a new `QDtls` for it. Each decrypted message is logged as
//! hex and plain text and answered with `to <peer>: ACK`; `shutdown()` sends every client a
//! close_notify alert.
//!
//! Here the same structure runs on [`rdtls_proto`] over one [`std::net::UdpSocket`]:
//!
//! | Qt                                       | here                                              |
//! |------------------------------------------|---------------------------------------------------|
//! | `QDtlsClientVerifier cookieSender`       | [`Endpoint`] (it holds a `ClientVerifier`)        |
//! | `knownClients` + `find_if(peer)`         | [`Endpoint::handle`] → `DatagramEvent::Connection` |
//! | `verifyClient` false → HelloVerifyRequest| `DatagramEvent::Respond`: send the response       |
//! | `verifyClient` true → `new QDtls`        | `DatagramEvent::Incoming` → [`Endpoint::accept`]  |
//! | `doHandshake(dtls, clientHello)`         | [`Connection::handle_datagram`] + `poll_transmit` |
//! | `pskRequired` slot                       | `ConfigBuilder::psk_server_callback`              |
//! | `decryptDatagram` / `writeDatagramEncrypted` | `handle_datagram` / [`Connection::send`]      |
//! | `dtlsError() == RemoteClosedConnectionError` | `Error::kind() == ErrorKind::RemoteClosedConnection` |
//! | `shutdown(&serverSocket)`                | [`Connection::shutdown`] + `poll_transmit`        |
//!
//! The core never touches the socket or the clock: the server reads datagrams, passes them in
//! with the current time, sends whatever `poll_transmit` returns, and wakes up for
//! `poll_timeout` to drive retransmissions and handshake timeouts (Qt's `handleTimeout`).
//! Unlike Qt's example, a client that restarts on the same port (RFC 6347 §4.2.8) gets a new
//! association once its new ClientHello passes the cookie check.
//!
//! # Running
//!
//! ```text
//! cargo run -p rdtls --example qt_server                    # self-contained scenario on loopback
//! cargo run -p rdtls --example qt_server -- 127.0.0.1:4433  # serve; type "quit" or Ctrl-D to stop
//! ```
//!
//! The scenario starts the server on an ephemeral loopback port, connects three clients (PSK
//! identities `alice`, `bob` and `carol`, the example's key `1a2b3c4d5e6f`) that each send three
//! pings and check the `ACK`s, then shuts the server down and checks that every client received
//! the close_notify alert. In server mode, talk to it with the `qt_client` example
//! (`cargo run -p rdtls --example qt_client -- 127.0.0.1:4433 alice bob`) or with
//! `dtls client --connect 127.0.0.1:4433 --psk-key 1a2b3c4d5e6f --name alice`.

use std::collections::HashMap;
use std::io::{self, BufRead, IsTerminal};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rdtls_proto::{
    Config, Connection, ConnectionHandle, DatagramEvent, Endpoint, ErrorKind, Event, HandshakeState, Incoming,
    PskCredentials,
};

/// The pre-shared key of Qt's examples.
const PSK: &[u8] = b"\x1a\x2b\x3c\x4d\x5e\x6f";
/// The identity hint of Qt's example server.
const IDENTITY_HINT: &str = "Qt DTLS example server";
/// Longest the server sleeps in `recv_from` before looking at its stop flag again.
const POLL: Duration = Duration::from_millis(100);

// ===== the log: Qt's errorMessage / warningMessage / infoMessage / datagramReceived =====

fn colored() -> bool {
    static COLOR: OnceLock<bool> = OnceLock::new();
    *COLOR.get_or_init(|| io::stdout().is_terminal())
}

fn emit(color: &str, message: &str) {
    if colored() {
        println!("\x1b[{color}m{message}\x1b[0m");
    } else {
        println!("{message}");
    }
}

/// Qt colors: DarkBlue, DarkOrange, Crimson, DarkMagenta.
fn info(message: &str) {
    emit("34", message);
}

fn warning(message: &str) {
    emit("33", &format!("warning: {message}"));
}

fn error(message: &str) {
    emit("31", &format!("error: {message}"));
}

fn datagram_received(peer_info: &str, cipher_text: &str, plain_text: &[u8]) {
    emit(
        "35",
        &format!(
            "---------------\nA message from {peer_info}\nDTLS datagram:\n {cipher_text}\nAs plain text:\n {}",
            String::from_utf8_lossy(plain_text)
        ),
    );
}

/// `QByteArray::toHex(' ')`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// Qt's `connection_info()`: the session cipher and protocol.
fn connection_info(conn: &Connection) -> String {
    let cipher = conn.cipher_suite().map_or("(none)", |s| s.name);
    let protocol = conn.protocol().map_or_else(|| "(none)".to_owned(), |p| p.to_string());
    format!("Session cipher: {cipher}; session protocol: {protocol}.")
}

// ===== the server =====

/// The server's configuration: PSK only, every identity gets the example's key.
fn server_config() -> Result<Arc<Config>, rdtls_proto::Error> {
    let config = Config::builder()
        .psk_identity_hint(IDENTITY_HINT)
        // Qt's pskRequired() slot: log the identity, answer with the key.
        .psk_server_callback(|identity| {
            info(&format!("PSK callback, received a client's identity: '{}'", String::from_utf8_lossy(identity)));
            Some(PSK.to_vec().into())
        })
        .build()?;
    Ok(Arc::new(config))
}

/// A known client: Qt's `QDtls` with its `setPeer` address.
struct Peer {
    addr: SocketAddr,
    conn: Connection,
}

/// What the server did, for the scenario's checks.
#[derive(Debug, Default, Clone, Copy)]
struct ServerStats {
    handshakes: usize,
    messages: usize,
    closed_by_clients: usize,
}

struct DtlsServer {
    socket: UdpSocket,
    /// Cookie verification (Qt's `QDtlsClientVerifier`) and the peer → connection table.
    endpoint: Endpoint,
    /// Qt's `knownClients`.
    known_clients: HashMap<ConnectionHandle, Peer>,
    rx: Vec<u8>,
    tx: Vec<u8>,
    stats: ServerStats,
}

impl DtlsServer {
    /// Qt's `listen()`: binds the socket.
    fn listen(addr: SocketAddr, config: Arc<Config>) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        let endpoint = Endpoint::new(config, Instant::now())?;
        Ok(Self {
            socket,
            endpoint,
            known_clients: HashMap::new(),
            rx: vec![0; 65_535],
            tx: Vec::with_capacity(2048),
            stats: ServerStats::default(),
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Serves until `stop` is set, then shuts down.
    fn serve(&mut self, stop: &AtomicBool) -> io::Result<ServerStats> {
        while !stop.load(Ordering::Relaxed) {
            self.ready_read()?;
            self.handle_timeouts();
        }
        self.shutdown();
        Ok(self.stats)
    }

    /// Qt's `readyRead()`: one datagram, or nothing before the next timer.
    fn ready_read(&mut self) -> io::Result<()> {
        let next_timer = self.known_clients.values().filter_map(|p| p.conn.poll_timeout()).min();
        let wait = next_timer
            .map_or(POLL, |t| t.saturating_duration_since(Instant::now()))
            .clamp(Duration::from_millis(1), POLL);
        self.socket.set_read_timeout(Some(wait))?;
        let (n, peer) = match self.socket.recv_from(&mut self.rx) {
            Ok(got) => got,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return Ok(()),
            Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused) => {
                warning(&format!("Failed to read a datagram: {e}"));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            warning("A spurious read notification");
            return Ok(());
        }
        let now = Instant::now();
        match self.endpoint.handle(now, peer, &self.rx[..n], &mut self.tx) {
            // An unknown peer without a valid cookie: `verifyClient` sent a HelloVerifyRequest.
            DatagramEvent::Respond => {
                if let Err(e) = self.socket.send_to(&self.tx, peer) {
                    warning(&format!("{peer}: cannot send HelloVerifyRequest: {e}"));
                }
            }
            // Garbage, a bad cookie, or a piece of a fragmented ClientHello the endpoint keeps.
            DatagramEvent::Drop | DatagramEvent::Held => {}
            DatagramEvent::Incoming(incoming) => self.handle_new_connection(now, incoming),
            DatagramEvent::Connection(h) => {
                let encrypted = self.known_clients.get(&h).is_some_and(|p| p.conn.is_established());
                if encrypted {
                    self.decrypt_datagram(now, h, n);
                } else {
                    self.do_handshake(now, h, n);
                }
            }
        }
        Ok(())
    }

    /// Qt's `handleNewConnection()` after `verifyClient()` returned true: a new `QDtls` in
    /// server mode, `setPeer`, then `doHandshake` with the verified ClientHello.
    fn handle_new_connection(&mut self, now: Instant, incoming: Incoming) {
        let addr = incoming.remote();
        info(&format!("{addr}: verified, starting a handshake"));
        let (replaces, evicts) = (incoming.replaces(), incoming.evicts());
        match self.endpoint.accept(incoming, now) {
            Ok((h, conn)) => {
                if let Some(old) = replaces {
                    info(&format!("{addr}: a new handshake from a known address; it replaces the old association"));
                    self.known_clients.remove(&old);
                }
                if let Some(mut stale) = evicts.and_then(|old| self.known_clients.remove(&old)) {
                    // The server is full and this one was idle longest: it makes room.
                    info(&format!("{}: idle longest, closed to make room", stale.addr));
                    if stale.conn.shutdown().is_ok() {
                        let mut out = Vec::new();
                        while stale.conn.poll_transmit(&mut out).is_some() {
                            let _ = self.socket.send_to(&out, stale.addr);
                        }
                    }
                }
                self.known_clients.insert(h, Peer { addr, conn });
                self.after_handshake_step(h);
            }
            Err(e) => {
                error(&format!("{addr}: {}", e.error));
                // The alert the failed handshake owes the peer.
                if !e.response.is_empty() {
                    let _ = self.socket.send_to(&e.response, addr);
                }
            }
        }
    }

    /// Qt's `doHandshake()`: continues the handshake with a datagram from the peer.
    fn do_handshake(&mut self, now: Instant, h: ConnectionHandle, n: usize) {
        let Some(peer) = self.known_clients.get_mut(&h) else { return };
        if let Err(e) = peer.conn.handle_datagram(now, &mut self.rx[..n]) {
            // Qt: `errorMessage(dtlsErrorString())`. The alert is queued; send it and forget.
            error(&format!("{}: {e}", peer.addr));
        }
        self.after_handshake_step(h);
    }

    /// Sends what the handshake produced and reports its state.
    fn after_handshake_step(&mut self, h: ConnectionHandle) {
        let Some(peer) = self.known_clients.get_mut(&h) else { return };
        transmit(&self.socket, &mut self.tx, peer);
        match peer.conn.handshake_state() {
            _ if peer.conn.is_closed() => self.forget(h),
            HandshakeState::InProgress => info(&format!("{}: handshake is in progress ...", peer.addr)),
            HandshakeState::Complete => {
                self.stats.handshakes += 1;
                info(&format!("Connection with {} encrypted. {}", peer.addr, connection_info(&peer.conn)));
            }
            state => warning(&format!("{}: unexpected handshake state {state:?}", peer.addr)),
        }
    }

    /// Qt's `decryptDatagram()`: logs each message and answers `to <peer>: ACK`.
    fn decrypt_datagram(&mut self, now: Instant, h: ConnectionHandle, n: usize) {
        let Some(peer) = self.known_clients.get_mut(&h) else { return };
        let peer_info = peer.addr.to_string();
        let cipher_text = hex(&self.rx[..n]);
        match peer.conn.handle_datagram(now, &mut self.rx[..n]) {
            Ok(received) if !received.is_empty() => {
                for plain_text in received.iter() {
                    self.stats.messages += 1;
                    datagram_received(&peer_info, &cipher_text, plain_text);
                    let reply = format!("to {peer_info}: ACK");
                    self.tx.clear();
                    let sent = peer.conn.send(reply.as_bytes(), &mut self.tx).map_err(io::Error::from);
                    if let Err(e) = sent.and_then(|()| self.socket.send_to(&self.tx, peer.addr)) {
                        error(&format!("{peer_info}: cannot reply: {e}"));
                    }
                }
            }
            Ok(_) if !peer.conn.is_closed() => {
                // A retransmitted Finished, a replayed or forged record, or a client that
                // restarted (its new ClientHello is handled by the endpoint).
                warning(&format!("{peer_info}: 0 byte dgram, could be a re-connect attempt?"));
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::RemoteClosedConnection => {
                info(&format!("{peer_info}: shutdown alert received, the client closed the connection"));
                self.stats.closed_by_clients += 1;
            }
            Err(e) => error(&format!("{peer_info}: {e}")),
        }
        let peer = self.known_clients.get_mut(&h).expect("still known");
        transmit(&self.socket, &mut self.tx, peer);
        if peer.conn.is_closed() {
            self.forget(h);
        }
    }

    /// Retransmissions and handshake timeouts (Qt's `handshakeTimeout` → `handleTimeout`).
    fn handle_timeouts(&mut self) {
        let now = Instant::now();
        let due: Vec<_> = self
            .known_clients
            .iter()
            .filter(|(_, p)| p.conn.poll_timeout().is_some_and(|t| t <= now))
            .map(|(h, _)| *h)
            .collect();
        for h in due {
            let Some(peer) = self.known_clients.get_mut(&h) else { continue };
            if let Err(e) = peer.conn.handle_timeout(now) {
                error(&format!("{}: {e}", peer.addr));
            }
            transmit(&self.socket, &mut self.tx, peer);
            if peer.conn.is_closed() {
                self.forget(h);
            }
        }
    }

    fn forget(&mut self, h: ConnectionHandle) {
        self.known_clients.remove(&h);
        self.endpoint.remove(h);
    }

    /// Qt's `shutdown()`: close_notify to every client, then close the socket.
    fn shutdown(&mut self) {
        for (h, mut peer) in std::mem::take(&mut self.known_clients) {
            if peer.conn.shutdown().is_ok() {
                transmit(&self.socket, &mut self.tx, &mut peer);
                info(&format!("{}: sent the shutdown alert", peer.addr));
            }
            self.endpoint.remove(h);
        }
    }
}

/// Sends every datagram the connection has queued (flights, retransmissions, alerts) and logs
/// its events.
fn transmit(socket: &UdpSocket, tx: &mut Vec<u8>, peer: &mut Peer) {
    while peer.conn.poll_transmit(tx).is_some() {
        if let Err(e) = socket.send_to(tx, peer.addr) {
            warning(&format!("{}: cannot send: {e}", peer.addr));
        }
    }
    while let Some(event) = peer.conn.poll_event() {
        match event {
            Event::Retransmitted => info(&format!("{}: handshake timeout, re-transmitting", peer.addr)),
            Event::WarningAlert(alert) => warning(&format!("{}: warning alert {alert}", peer.addr)),
            _ => {}
        }
    }
}

// ===== the scenario: three clients on loopback =====

/// One client, on the blocking socket layer: three pings, three ACKs, then the server's
/// shutdown alert.
fn client(server: SocketAddr, name: &'static str, pings: usize, done_pinging: mpsc::Sender<()>) -> Result<(), String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{name}: {what}: {e}");
    let config = Config::builder()
        .psk_callback(move |_hint| Some(PskCredentials::new(name, PSK)))
        .build()
        .map_err(|e| fail("configuration", &e))?;
    let t = Some(Duration::from_secs(10));
    let mut conn = rdtls::Connection::connect(server, Arc::new(config), t).map_err(|e| fail("handshake", &e))?;
    let me = conn.local_addr().map_err(|e| fail("local address", &e))?;
    println!("{name}: encrypted connection established from {me} ({})", conn.cipher_suite().map_or("?", |s| s.name));
    let mut buf = [0u8; 1500];
    for i in 1..=pings {
        conn.send(format!("I am {name}, please, accept our ping {i}").as_bytes()).map_err(|e| fail("send", &e))?;
        let n = conn.recv(&mut buf, t).map_err(|e| fail("receive", &e))?;
        let reply = String::from_utf8_lossy(&buf[..n]);
        if reply != format!("to {me}: ACK") {
            return Err(format!("{name}: unexpected reply '{reply}'"));
        }
    }
    let _ = done_pinging.send(());
    drop(done_pinging);
    // The server shuts down: close_notify is a remote close.
    match conn.recv(&mut buf, t) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
            println!("{name}: shutdown alert received");
            Ok(())
        }
        other => Err(format!("{name}: expected the server's shutdown alert, got {other:?}")),
    }
}

fn scenario() -> Result<(), Box<dyn std::error::Error>> {
    const PINGS: usize = 3;
    const NAMES: [&str; 3] = ["alice", "bob", "carol"];
    let mut server = DtlsServer::listen(([127, 0, 0, 1], 0).into(), server_config()?)?;
    let addr = server.local_addr()?;
    info(&format!("Server is listening on address {} and port {}", addr.ip(), addr.port()));
    let stop = Arc::new(AtomicBool::new(false));
    let server_thread = {
        let stop = stop.clone();
        thread::spawn(move || server.serve(&stop))
    };
    let (done_tx, done_rx) = mpsc::channel();
    let clients: Vec<_> = NAMES
        .iter()
        .map(|&name| {
            let done = done_tx.clone();
            thread::spawn(move || client(addr, name, PINGS, done))
        })
        .collect();
    drop(done_tx);
    // Once every client has its ACKs (or gave up), shut the server down.
    for _ in 0..NAMES.len() {
        if done_rx.recv_timeout(Duration::from_secs(15)).is_err() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let stats = server_thread.join().map_err(|_| "the server thread panicked")??;
    for c in clients {
        c.join().map_err(|_| "a client thread panicked")??;
    }
    println!("server: {stats:?}");
    if stats.handshakes != NAMES.len() || stats.messages != NAMES.len() * PINGS {
        return Err(
            format!("expected {} handshakes and {} messages: {stats:?}", NAMES.len(), NAMES.len() * PINGS).into()
        );
    }
    Ok(())
}

/// Server mode: serves until "quit" or end of input on stdin.
fn serve_forever(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let mut server = DtlsServer::listen(addr, server_config()?)?;
    let addr = server.local_addr()?;
    info(&format!("Server is listening on address {} and port {}", addr.ip(), addr.port()));
    info(&format!("PSK identity hint '{IDENTITY_HINT}', key {}; type quit or Ctrl-D to shut down", hex(PSK)));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
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
    let stats = server.serve(&stop)?;
    info(&format!("Server shut down: {stats:?}"));
    Ok(())
}

/// Runs the mode the arguments select.
fn run() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1) {
        None => scenario(),
        Some(a) if a == "-h" || a == "--help" => {
            println!("usage: qt_server [LISTEN_ADDR]   (no argument: run the loopback scenario)");
            Ok(())
        }
        Some(addr) => serve_forever(addr.parse()?),
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
