//! DTLS 1.2 over UDP sockets.
//!
//! This crate drives the sans-IO core of [`dtls_proto`] over `std::net::UdpSocket`:
//!
//! - [`Client`]: one association over a connected socket: handshake with a timeout, then
//!   `send`/`recv` of whole datagrams;
//! - [`Server`]: one socket serving many peers, with stateless cookie verification before any
//!   per-peer state, demultiplexing by peer address, and `close_notify` to every peer on shutdown.
//!
//! Both are blocking and single-threaded.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use dtls::{Client, Config};
//!
//! let config = Arc::new(Config::builder().psk("client1", b"secret".to_vec()).build()?);
//! let mut client = Client::connect("127.0.0.1:4433".parse()?, config, Some(Duration::from_secs(10)))?;
//! client.send(b"hello")?;
//! let mut buf = [0u8; 2048];
//! let n = client.recv(&mut buf, Some(Duration::from_secs(5)))?;
//! println!("{}", String::from_utf8_lossy(&buf[..n]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs, missing_debug_implementations)]

mod client;
mod server;

pub use client::Client;
pub use dtls_proto::{
    self as proto, CertResolver, CertificateError, CertifiedKey, CipherSuite, ClientAuth, Config, Connection, Error,
    HandshakeState, RootStore, VerifyPeer,
};

/// The operating system's trusted root certificates (EdgerOS `loadDefaultCerts`), for
/// [`ConfigBuilder::root_store`](dtls_proto::ConfigBuilder::root_store). Certificates the
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
pub use server::{Server, ServerEvent};

use std::io;
use std::time::{Duration, Instant};

/// Largest datagram we receive.
pub(crate) const MAX_DATAGRAM: usize = 65_535;

/// Sets the socket's read timeout to the time left until `deadline` (`None`: block).
/// Returns `false` if the deadline already passed.
pub(crate) fn arm_read_timeout(socket: &std::net::UdpSocket, deadline: Option<Instant>) -> io::Result<bool> {
    match deadline {
        None => socket.set_read_timeout(None).map(|()| true),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            socket.set_read_timeout(Some(left.max(Duration::from_millis(1)))).map(|()| true)
        }
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
