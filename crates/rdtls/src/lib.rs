//! DTLS 1.2 and 1.3 over UDP sockets: clients, listeners and connections, blocking or on tokio.
//!
//! # Example: a pre-shared key
//!
//! A [`Listener`] verifies cookies and runs handshakes on its own thread; a client
//! [`Connection`] connects, and both move whole datagrams.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rdtls::{Config, Connection, Listener};
//!
//! let server_cfg = Arc::new(Config::builder().psk_server_key(b"secret".to_vec()).build()?);
//! let listener = Listener::bind("127.0.0.1:0".parse()?, server_cfg)?;
//! let addr = listener.local_addr()?;
//! let server = std::thread::spawn(move || -> std::io::Result<()> {
//!     let mut conn = listener.accept()?;
//!     let mut buf = [0u8; 2048];
//!     let n = conn.recv(&mut buf, Some(Duration::from_secs(10)))?;
//!     conn.send(&buf[..n])?; // echo
//!     Ok(())
//! });
//!
//! // The PSK identity the server sees is "client1".
//! let client_cfg = Arc::new(Config::builder().psk("client1", b"secret".to_vec()).build()?);
//! let mut client = Connection::connect(addr, client_cfg, Some(Duration::from_secs(10)))?;
//! client.send(b"hello")?;
//! let mut buf = [0u8; 2048];
//! let n = client.recv(&mut buf, Some(Duration::from_secs(10)))?;
//! assert_eq!(&buf[..n], b"hello");
//! client.close()?;
//! server.join().unwrap()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Example: certificates
//!
//! The server presents a chain and key (PEM or DER, as files hold them); the client trusts a CA
//! and checks that the certificate is valid for the name it asks for (also sent as SNI).
//!
//! ```
//! # use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
//! # let mut ca = CertificateParams::new(Vec::<String>::new())?;
//! # ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
//! # let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
//! # let key = KeyPair::generate()?;
//! # let cert = CertificateParams::new(vec!["server.example".to_owned()])?.signed_by(&key, &ca)?;
//! # let (ca_pem, cert_pem, key_pem) = (ca.pem(), cert.pem(), key.serialize_pem());
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rdtls::proto::crypto::default_provider;
//! use rdtls::{CertifiedKey, Config, Connection, Listener, RootStore};
//!
//! // The server: its certificate chain and private key.
//! let key = CertifiedKey::from_pem_or_der(&*default_provider(), cert_pem.as_bytes(), key_pem.as_bytes(), None)?;
//! let listener = Listener::bind("127.0.0.1:0".parse()?, Arc::new(Config::builder().certificate(key).build()?))?;
//! let addr = listener.local_addr()?;
//! let server = std::thread::spawn(move || -> std::io::Result<()> {
//!     let mut conn = listener.accept()?;
//!     conn.send(b"welcome")?;
//!     Ok(())
//! });
//!
//! // The client: the CA it trusts, and the name the certificate must be valid for.
//! let mut roots = RootStore::new();
//! roots.add_pem_or_der(ca_pem.as_bytes())?;
//! let client_cfg = Arc::new(Config::builder().root_store(roots).build()?);
//! let timeout = Some(Duration::from_secs(10));
//! let mut client = Connection::connect_with_name(addr, "server.example", client_cfg, timeout)?;
//! let mut buf = [0u8; 2048];
//! let n = client.recv(&mut buf, timeout)?;
//! assert_eq!(&buf[..n], b"welcome");
//! server.join().unwrap()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is here
//!
//! This crate drives the sans-IO core of [`rdtls_proto`] (re-exported as [`proto`]) over
//! `std::net::UdpSocket`:
//!
//! - [`Connection`]: one association, client or accepted: `send`/`recv` of whole datagrams with
//!   timeouts, `pending`, `take_error`, `close`, addresses, negotiated parameters and the peer's
//!   identity. `Send`: serve it from any thread.
//! - [`Listener`]: a server socket whose driver thread verifies cookies statelessly, runs every
//!   handshake concurrently under limits, and queues established connections for
//!   [`accept`](Listener::accept) (blocking or with a timeout). Connections share the
//!   listener's socket or, with [`ListenerOptions::connection_sockets`], get their own socket
//!   connected to the peer (EdgerOS `accept`). [`Listener::bind_workers`] shards one port across
//!   threads with `SO_REUSEPORT`; [`Listener::stats`] counts what happened.
//! - [`Server`]: a single-threaded, event-driven server on one socket (Qt's example pattern).
//! - [`SocketOptions`]: TTL, device, IPv6-only, buffer sizes, port reuse (EdgerOS options).
//! - [`udp`]: batched datagram I/O (`sendmmsg`/`recvmmsg`, UDP GSO and GRO on Linux), used by
//!   [`Connection::send_batch`] and [`Connection::recv_batch`] to move many records per system
//!   call, as [`Connection::set_batching`] chooses (the same on the async `tokio::Connection`).
//! - [`KeyLogFile`]: an NSS key log for Wireshark (it holds secrets: off unless asked for).
//!
//! With the `tokio` feature, `rdtls::tokio` has the same [`Listener`] and [`Connection`] for
//! async code.

#![warn(missing_docs, missing_debug_implementations)]

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

mod batch;
mod connection;
mod driver;
mod getters;
pub mod keylog;
mod listener;
mod observe;
mod options;
mod server;
mod shared;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod udp;

pub use batch::Messages;
pub use connection::Connection;
pub use keylog::KeyLogFile;
pub use listener::{Listener, ListenerOptions, ListenerStats};
pub use observe::{Observed, Observer};
pub use options::{socket_info, SocketInfo, SocketOptions, MAX_BUFFER_SIZE, MIN_BUFFER_SIZE};
pub use rdtls_proto::alpn::{AlpnChoice, AlpnSelector};
pub use rdtls_proto::srtp::{SrtpKeyingMaterial, SrtpProfile};
pub use rdtls_proto::{
    self as proto, CertResolver, CertificateError, CertifiedKey, CipherSuite, ClientAuth, Config, Error,
    HandshakeState, RootStore, VerifyPeer,
};
pub use server::{CloseReason, Server, ServerEvent};

/// A client association: a [`Connection`] that dialed out.
pub type Client = Connection;

use std::io;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The operating system's trusted root certificates (EdgerOS `loadDefaultCerts`), for
/// [`ConfigBuilder::root_store`](rdtls_proto::ConfigBuilder::root_store). Certificates the
/// system store holds but that cannot serve as trust anchors are skipped; an error is returned
/// only if none could be loaded.
pub fn system_roots() -> io::Result<RootStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootStore::new();
    for cert in &found.certs {
        // Some system stores carry certificates webpki cannot use as anchors; skip them.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        let why = found.errors.first().map_or_else(|| "no certificates found".to_owned(), ToString::to_string);
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("no system root certificates: {why}")));
    }
    Ok(roots)
}

/// Largest datagram we receive.
pub(crate) const MAX_DATAGRAM: usize = 65_535;

thread_local! {
    /// One receive buffer per thread for connections that read their own socket: a datagram is
    /// received, decrypted in place and handed out before the thread does anything else, so no
    /// connection keeps a 64 KiB buffer of its own.
    static RX: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's receive buffer of [`MAX_DATAGRAM`] bytes.
pub(crate) fn with_rx<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    RX.with(|cell| match cell.try_borrow_mut() {
        Ok(mut b) => {
            if b.len() < MAX_DATAGRAM {
                b.resize(MAX_DATAGRAM, 0);
            }
            f(&mut b)
        }
        // Only if `f` itself received again, which no caller does: a buffer of its own.
        Err(_) => f(&mut vec![0; MAX_DATAGRAM]),
    })
}

/// Locks a mutex, recovering from poisoning (a panicking holder cannot corrupt our state
/// beyond what the protocol core already tolerates).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The read timeout last set on a socket, so that steady-state receives, whose deadlines are
/// always about as far away, skip the `setsockopt`.
#[derive(Debug, Default)]
pub(crate) struct ReadTimeout {
    /// `None`: unknown (never set, or a set failed).
    armed: Option<Option<Duration>>,
}

impl ReadTimeout {
    /// Sets the socket's read timeout to the time left until `deadline` (`None`: block),
    /// unless it is already within 1% (at least 1 ms, at most 10 ms) of that. Returns `false`
    /// if the deadline already passed: receive without waiting.
    pub(crate) fn arm(&mut self, socket: &std::net::UdpSocket, deadline: Option<Instant>) -> io::Result<bool> {
        let want = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                Some(left.max(Duration::from_millis(1)))
            }
        };
        let close = |armed: Option<Duration>| match (armed, want) {
            (None, None) => true,
            (Some(a), Some(w)) => a.abs_diff(w) <= (w / 100).clamp(Duration::from_millis(1), Duration::from_millis(10)),
            _ => false,
        };
        if self.armed.is_some_and(close) {
            return Ok(true);
        }
        self.armed = None;
        socket.set_read_timeout(want)?;
        self.armed = Some(want);
        Ok(true)
    }
}

/// Whether an I/O error is a read timeout.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The name a client checks the server's certificate against: the one it was given, or else the
/// IP address it connects to. Never none: a client that verifies a chain without a name would
/// accept any certificate of any trusted CA.
pub(crate) fn name_or_address(
    name: Option<rdtls_proto::pki::ServerName<'static>>,
    server: std::net::SocketAddr,
) -> rdtls_proto::pki::ServerName<'static> {
    name.unwrap_or_else(|| rdtls_proto::pki::ServerName::IpAddress(server.ip().into()))
}

/// A client's socket: an ephemeral port of the server's address family, connected to `server`,
/// and the name to check the server's certificate against, parsed.
pub(crate) fn client_socket(
    server: std::net::SocketAddr,
    server_name: Option<&str>,
    options: &SocketOptions,
) -> io::Result<(std::net::UdpSocket, Option<rdtls_proto::pki::ServerName<'static>>)> {
    let name = server_name
        .map(|n| {
            rdtls_proto::pki::ServerName::try_from(n.to_owned())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid server name '{n}'")))
        })
        .transpose()?;
    let local: std::net::SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = options.bind(local)?;
    socket.connect(server)?;
    Ok((socket, name))
}
