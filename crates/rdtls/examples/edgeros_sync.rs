//! EdgerOS's `dtls` module in synchronous mode, on the blocking socket layer.
//!
//! An EdgerOS application creates a server with `Dtls.createServer(opt, sockaddr)` (`cert`,
//! `key`, `passwd`, `ca`, `ipcert`, `handshakeTimeout`), adds virtual-host certificates with
//! `dtls.addcert()`, and takes established connections with `dtls.accept(remoteAddr, timeout)`.
//! A client calls `Dtls.createClient(opt, sockaddr, timeout)` (`rejectUnauthorized`, `ca`,
//! `loadDefaultCerts`, `server`, `cert`/`key`/`passwd`). Both sides then use `send(data,
//! timeout)`, `recv(buffer, offset, length, timeout)`, `pending()`, `error()`, `close()`,
//! `sockName()`/`peerName()` and the socket options (`setTTL`, `setRecvBufferSize`, …).
//!
//! | EdgerOS                                   | here                                             |
//! |-------------------------------------------|--------------------------------------------------|
//! | `Dtls.createServer(opt, sockaddr)`        | [`Listener::bind_with`] with a [`Config`] (`create_server` below) |
//! | `addcert({name, cert, key, passwd})`      | [`Listener::add_certificate`]                     |
//! | `accept(remoteAddr, timeout)`             | [`Listener::accept_timeout`], then [`Connection::peer_addr`] |
//! | `Dtls.createClient(opt, sockaddr, timeout)` | [`Connection::connect_with`] (`create_client` below) |
//! | `rejectUnauthorized: false`               | [`VerifyPeer::Continue`] (our default verifies)   |
//! | `send(string, timeout)` / `send(buffer, offset, length, timeout)` | [`Connection::send_timeout`] on a slice |
//! | `recv(buffer, offset, length, timeout)`   | [`Connection::recv`] into `&mut buffer[offset..offset + length]` |
//! | `pending()`                               | [`Connection::pending`]                           |
//! | `error()`                                 | [`Connection::take_error`]                        |
//! | `close()`                                 | [`Connection::close`] (close_notify)              |
//! | `sockName()` / `peerName()`               | [`Connection::local_addr`] / [`Connection::peer_addr`] |
//! | `setTTL`, `set*BufferSize`, `bindToDevice` | [`Connection::set_socket_options`] with [`SocketOptions`] |
//! | `get*BufferSize`                          | [`Connection::socket_info`]                       |
//!
//! Errors are `io::Error`s instead of negative numbers and `sys.error()`; a receive timeout is
//! `ErrorKind::TimedOut` and loses nothing; a peer's close_notify is `ErrorKind::ConnectionReset`.
//!
//! # Running
//!
//! ```text
//! cargo run -p rdtls --example edgeros_sync                       # loopback scenario
//! dtls cert --out certs                                          # CA, server and client certificates
//! cargo run -p rdtls --example edgeros_sync -- server 127.0.0.1:2049 certs/server.pem certs/server.key [PASSWD]
//! cargo run -p rdtls --example edgeros_sync -- client 127.0.0.1:2049 [certs/ca.pem|system [SERVER_NAME]]
//! ```
//!
//! The scenario generates a CA and certificates, starts a server on an ephemeral loopback port
//! (client certificates optional, a 10 s handshake timeout, socket buffer sizes), adds an SNI
//! certificate for `demo.mysite.com` while it serves, and runs four clients: one verified with
//! a client certificate that exercises every call (send with offset and length, pending, recv
//! with offset, length and timeout, error, socket options, addresses, close); one that asks for
//! `demo.mysite.com` and gets the `addcert` certificate; one with `rejectUnauthorized: false`
//! and no CA, which the server closes after `Goodbye!`; and one checking a wrong host name,
//! which is refused. The server answers every message with `echo: <message>` from one thread
//! per connection. Without a CA the client mode behaves as EdgerOS's default
//! (`rejectUnauthorized: false`); `system` loads the system's trust store (`loadDefaultCerts`).

mod common;

use std::error::Error;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{Pki, SNI_NAME};
use rdtls::{ClientAuth, Config, Connection, Listener, ListenerOptions, RootStore, SocketOptions, VerifyPeer};

/// How long a session waits in `recv` before looking again (the listener's idle timeout ends
/// connections that stay silent).
const SESSION_POLL: Duration = Duration::from_secs(5);

// ===== Dtls.createServer and Dtls.createClient =====

/// `Dtls.createServer({cert, key, passwd, ca, ipcert: true, handshakeTimeout}, sockaddr)`.
fn create_server(
    addr: SocketAddr,
    cert: &[u8],
    key: &[u8],
    passwd: Option<&str>,
    ca: Option<&[u8]>,
    handshake_timeout: Duration,
) -> Result<Listener, Box<dyn Error>> {
    let mut builder =
        Config::builder().certificate(common::certified_key(cert, key, passwd)?).handshake_timeout(handshake_timeout);
    if let Some(ca) = ca {
        // A server `ca`: ask clients for a certificate and verify it against these anchors.
        builder = builder.root_store(common::roots(ca)?).client_auth(ClientAuth::Optional);
    }
    let config = Arc::new(builder.build()?);
    // `ipcert: true`: without SNI, pick the certificate valid for the address the client
    // reached (the listener knows it when bound to a specific address).
    if let Some(store) = config.cert_resolver() {
        store.set_ip_certificates(true);
    }
    let options = ListenerOptions::default()
        .socket(SocketOptions::default().recv_buffer_size(256 * 1024).send_buffer_size(256 * 1024))
        .idle_timeout(Some(Duration::from_secs(60)));
    Ok(Listener::bind_with(addr, config, options)?)
}

/// EdgerOS `createClient` options.
#[derive(Default)]
struct ClientOptions<'a> {
    reject_unauthorized: bool,
    load_default_certs: bool,
    ca: Option<&'a [u8]>,
    server: Option<&'a str>,
    handshake_timeout: Option<Duration>,
    /// `cert`, `key`, `passwd`.
    cert: Option<(&'a [u8], &'a [u8], Option<&'a str>)>,
}

/// `Dtls.createClient(opt, sockaddr, timeout)`: connects and completes the handshake.
fn create_client(
    opt: &ClientOptions<'_>,
    addr: SocketAddr,
    timeout: Option<Duration>,
) -> Result<Connection, Box<dyn Error>> {
    let mut roots = if opt.load_default_certs { rdtls::system_roots()? } else { RootStore::new() };
    if let Some(ca) = opt.ca {
        roots.add_pem_or_der(ca)?;
    }
    let verify = if opt.reject_unauthorized { VerifyPeer::Required } else { VerifyPeer::Continue };
    let mut builder = Config::builder().root_store(roots).verify_peer(verify);
    if let Some(t) = opt.handshake_timeout {
        builder = builder.handshake_timeout(t);
    }
    if let Some((cert, key, passwd)) = opt.cert {
        builder = builder.client_certificate(common::certified_key(cert, key, passwd)?);
    }
    let socket = SocketOptions::default().ttl(64);
    Ok(Connection::connect_with(addr, opt.server, Arc::new(builder.build()?), &socket, timeout)?)
}

// ===== the server side =====

/// `dtls.accept(remoteAddr, timeout)` in a loop until `stop` is set; each connection is served
/// by its own thread, whose handle is returned.
fn accept_loop(listener: &Listener, stop: &AtomicBool) -> std::io::Result<Vec<JoinHandle<usize>>> {
    let mut sessions = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept_timeout(Duration::from_millis(100)) {
            Ok(conn) => {
                println!("server: New remote connected: {}", conn.peer_addr()?);
                sessions.push(thread::spawn(move || session(conn)));
            }
            Err(e) if e.kind() == ErrorKind::TimedOut => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sessions)
}

/// Shuts the server down (close_notify to every client still connected, which ends their
/// sessions) and returns the number of messages the sessions served.
fn shut_down(mut listener: Listener, sessions: Vec<JoinHandle<usize>>) -> std::io::Result<usize> {
    println!("server: shutting down; {:?}", listener.stats());
    listener.shutdown()?;
    let mut messages = 0;
    for s in sessions {
        messages += s.join().map_err(|_| std::io::Error::other("a session thread panicked"))?;
    }
    Ok(messages)
}

/// One connection: answers every message with `echo: <message>`; closes after `Goodbye!`.
fn session(mut conn: Connection) -> usize {
    let peer = conn.peer_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let suite = conn.cipher_suite().map_or("?", |s| s.name);
    let client_cert =
        if conn.peer_certificates().is_empty() { "no client certificate" } else { "a client certificate" };
    println!("server: {peer}: {suite}, {client_cert}");
    let mut buf = [0u8; 4096];
    let mut messages = 0;
    loop {
        match conn.recv(&mut buf, Some(SESSION_POLL)) {
            Ok(n) => {
                messages += 1;
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                println!("server: Client: {peer} Say: {text}");
                if let Err(e) = conn.send(format!("echo: {text}").as_bytes()) {
                    println!("server: send to {peer} failed: {e}");
                }
                if text == "Goodbye!" {
                    println!("server: closing {peer}");
                    let _ = conn.close();
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::TimedOut => {}
            Err(e) => {
                println!("server: Client lost: {peer} ({e})");
                break;
            }
        }
    }
    messages
}

// ===== the scenario =====

/// Waits until `pending()` reports a message (it never blocks).
fn wait_pending(conn: &mut Connection, within: Duration) -> Result<usize, Box<dyn Error>> {
    let deadline = Instant::now() + within;
    loop {
        let n = conn.pending()?;
        if n > 0 {
            return Ok(n);
        }
        if Instant::now() >= deadline {
            return Err("nothing arrived".into());
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// The verified client with a client certificate: every call of the EdgerOS API.
fn full_client(pki: &Pki, addr: SocketAddr) -> Result<(), Box<dyn Error>> {
    let opt = ClientOptions {
        reject_unauthorized: true,
        ca: Some(pki.ca.as_bytes()),
        server: Some("localhost"),
        handshake_timeout: Some(Duration::from_secs(10)),
        cert: Some((pki.client_cert.as_bytes(), pki.client_key.as_bytes(), None)),
        ..ClientOptions::default()
    };
    let mut c = create_client(&opt, addr, Some(Duration::from_secs(5)))?;
    let suite = c.cipher_suite().map_or("?", |s| s.name);
    println!("client1: sockName {} peerName {} ({suite})", c.local_addr()?, c.peer_addr()?);
    // send(string)
    let n = c.send(b"Hello Packet!")?;
    println!("client1: send('Hello Packet!') = {n}");
    // send(buffer, offset, length, timeout)
    let buffer = *b"..Hello Buffer!..";
    let n = c.send_timeout(&buffer[2..15], Some(Duration::from_millis(500)))?;
    println!("client1: send(buffer, 2, 13, 500) = {n}");
    // pending(): bytes of the next message, without waiting.
    println!("client1: pending() = {}", wait_pending(&mut c, Duration::from_secs(5))?);
    // recv(buffer, offset, length, timeout)
    let mut rbuf = [0u8; 64];
    let n = c.recv(&mut rbuf[4..44], Some(Duration::from_secs(2)))?;
    let first = String::from_utf8_lossy(&rbuf[4..4 + n]).into_owned();
    println!("client1: recv(buffer, 4, 40, 2000) = {n}: {first}");
    let n = c.recv(&mut rbuf, Some(Duration::from_secs(2)))?;
    let second = String::from_utf8_lossy(&rbuf[..n]).into_owned();
    println!("client1: recv(buffer) = {n}: {second}");
    if first != "echo: Hello Packet!" || second != "echo: Hello Buffer!" {
        return Err(format!("client1: unexpected replies '{first}', '{second}'").into());
    }
    // recv with a timeout and nothing to read: TimedOut, which is not an error() either.
    match c.recv(&mut rbuf, Some(Duration::from_millis(100))) {
        Err(e) if e.kind() == ErrorKind::TimedOut => println!("client1: recv(buffer, 0, 64, 100): timed out"),
        other => return Err(format!("client1: expected a timeout, got {other:?}").into()),
    }
    println!("client1: error() = {:?}", c.take_error());
    // setTTL, setRecvBufferSize, setSendBufferSize, then the getters.
    c.set_socket_options(&SocketOptions::default().ttl(32).recv_buffer_size(128 * 1024).send_buffer_size(64 * 1024))?;
    let info = c.socket_info()?;
    println!(
        "client1: TTL {}, getRecvBufferSize() = {}, getSendBufferSize() = {} (Linux reports twice the size set)",
        info.ttl, info.recv_buffer_size, info.send_buffer_size
    );
    c.close()?;
    println!("client1: closed");
    Ok(())
}

/// A client asking for the virtual host added with `addcert`.
fn sni_client(pki: &Pki, addr: SocketAddr) -> Result<(), Box<dyn Error>> {
    let opt = ClientOptions {
        reject_unauthorized: true,
        ca: Some(pki.ca.as_bytes()),
        server: Some(SNI_NAME),
        ..ClientOptions::default()
    };
    let mut c = create_client(&opt, addr, Some(Duration::from_secs(5)))?;
    let expected = rdtls::proto::pki::parse_certificates(pki.sni_cert.as_bytes())?;
    if c.peer_certificates().first() != expected.first() {
        return Err("client2: the server did not present the addcert certificate".into());
    }
    println!("client2: the server presented the certificate added with addcert for {SNI_NAME}");
    c.send(b"Hello virtual host")?;
    let mut buf = [0u8; 64];
    let n = c.recv(&mut buf, Some(Duration::from_secs(2)))?;
    println!("client2: {}", String::from_utf8_lossy(&buf[..n]));
    c.close()?;
    Ok(())
}

/// EdgerOS's default client (`rejectUnauthorized: false`, no CA): connects, is told why the
/// server is not authenticated, says goodbye; the server closes the connection.
fn unverified_client(addr: SocketAddr) -> Result<(), Box<dyn Error>> {
    let mut c = create_client(&ClientOptions::default(), addr, None)?;
    let errors = c.connection().peer_verification_errors().to_vec();
    println!("client3: connected without verifying the server: {errors:?}");
    c.send(b"Goodbye!")?;
    let mut buf = [0u8; 64];
    let n = c.recv(&mut buf, Some(Duration::from_secs(2)))?;
    println!("client3: {}", String::from_utf8_lossy(&buf[..n]));
    match c.recv(&mut buf, Some(Duration::from_secs(2))) {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => println!("client3: the server closed the connection"),
        other => return Err(format!("client3: expected the server's close, got {other:?}").into()),
    }
    // error(): the last error, then cleared.
    println!("client3: error() = {:?}", c.take_error().map(|e| e.to_string()));
    if c.take_error().is_some() {
        return Err("client3: error() did not clear".into());
    }
    Ok(())
}

/// A verifying client that expects another host name: refused.
fn wrong_name_client(pki: &Pki, addr: SocketAddr) -> Result<(), Box<dyn Error>> {
    let opt = ClientOptions {
        reject_unauthorized: true,
        ca: Some(pki.ca.as_bytes()),
        server: Some("wrong.example"),
        ..ClientOptions::default()
    };
    match create_client(&opt, addr, Some(Duration::from_secs(5))) {
        Err(e) => {
            println!("client4: refused as expected: {e}");
            Ok(())
        }
        Ok(_) => Err("client4: a certificate for another name was accepted".into()),
    }
}

/// The four clients, one after the other; `addcert` first, while the server runs.
fn clients(pki: &Pki, listener: &Listener, addr: SocketAddr) -> Result<(), Box<dyn Error>> {
    listener
        .add_certificate(SNI_NAME, common::certified_key(pki.sni_cert.as_bytes(), pki.sni_key.as_bytes(), None)?)?;
    println!("server: addcert({SNI_NAME})");
    full_client(pki, addr)?;
    sni_client(pki, addr)?;
    unverified_client(addr)?;
    wrong_name_client(pki, addr)
}

fn scenario() -> Result<(), Box<dyn Error>> {
    let pki = Pki::generate()?;
    let listener = create_server(
        ([127, 0, 0, 1], 0).into(),
        pki.server_cert.as_bytes(),
        pki.server_key.as_bytes(),
        None,
        Some(pki.ca.as_bytes()),
        Duration::from_secs(10),
    )?;
    let addr = listener.local_addr()?;
    let info = listener.socket_info()?;
    println!(
        "server: listening on {addr} (receive buffer {}, send buffer {})",
        info.recv_buffer_size, info.send_buffer_size
    );
    let stop = AtomicBool::new(false);
    let (clients, sessions) = thread::scope(|s| {
        let acceptor = s.spawn(|| accept_loop(&listener, &stop));
        let clients = clients(&pki, &listener, addr);
        stop.store(true, Ordering::Relaxed);
        (clients, acceptor.join())
    });
    let sessions = sessions.map_err(|_| "the accept thread panicked")??;
    let messages = shut_down(listener, sessions)?;
    println!("server: {messages} messages served");
    clients?;
    if messages != 4 {
        return Err(format!("expected 4 messages, the server saw {messages}").into());
    }
    Ok(())
}

// ===== command-line modes =====

fn server_mode(args: &[String]) -> Result<(), Box<dyn Error>> {
    let [addr, cert, key, rest @ ..] = args else {
        return Err("usage: edgeros_sync server ADDR CERT KEY [PASSWD]".into());
    };
    let passwd = rest.first().map(String::as_str);
    let listener =
        create_server(addr.parse()?, &common::read(cert)?, &common::read(key)?, passwd, None, Duration::from_secs(60))?;
    println!("server: listening on {}", listener.local_addr()?);
    let stop = common::stop_on_quit();
    let sessions = accept_loop(&listener, &stop)?;
    let messages = shut_down(listener, sessions)?;
    println!("server: {messages} messages served");
    Ok(())
}

fn client_mode(args: &[String]) -> Result<(), Box<dyn Error>> {
    let Some(addr) = args.first() else {
        return Err("usage: edgeros_sync client ADDR [CA_FILE|system [SERVER_NAME]]".into());
    };
    let ca = match args.get(1).map(String::as_str) {
        None | Some("system") => None,
        Some(path) => Some(common::read(path)?),
    };
    let system = args.get(1).is_some_and(|a| a == "system");
    let opt = ClientOptions {
        reject_unauthorized: ca.is_some() || system,
        load_default_certs: system,
        ca: ca.as_deref(),
        server: args.get(2).map(String::as_str),
        ..ClientOptions::default()
    };
    if !opt.reject_unauthorized {
        println!("warning: no CA given: the server is not authenticated (rejectUnauthorized: false)");
    }
    let mut c = create_client(&opt, addr.parse()?, Some(Duration::from_secs(10)))?;
    println!("connected: {} -> {}", c.local_addr()?, c.peer_addr()?);
    let mut buf = [0u8; 4096];
    for msg in ["Hello Packet!", "Goodbye!"] {
        c.send(msg.as_bytes())?;
        // The first reply within 5 s, then whatever else follows within 300 ms.
        let mut wait = Duration::from_secs(5);
        loop {
            match c.recv(&mut buf, Some(wait)) {
                Ok(n) => println!("reply: {}", String::from_utf8_lossy(&buf[..n])),
                Err(e) if e.kind() == ErrorKind::TimedOut => break,
                Err(e) => {
                    println!("connection ended: {e}");
                    return Ok(());
                }
            }
            wait = Duration::from_millis(300);
        }
    }
    c.close()?;
    Ok(())
}

/// Runs the mode the arguments select.
fn run() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => scenario(),
        Some("server") => server_mode(&args[1..]),
        Some("client") => client_mode(&args[1..]),
        Some(_) => {
            Err("usage: edgeros_sync [server ADDR CERT KEY [PASSWD] | client ADDR [CA_FILE|system [NAME]]]".into())
        }
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
