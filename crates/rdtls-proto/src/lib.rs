//! A sans-IO DTLS protocol core: DTLS 1.2 (RFC 6347) and DTLS 1.3 (RFC 9147).
//!
//! This crate never reads a clock, touches a socket or spawns a task: every entry point takes
//! the current time, and hands back datagrams to send, events and the next deadline. Socket
//! layers (the `rdtls` crate) and tests (on virtual time) drive it the same way.
//!
//! # Example: a PSK handshake between two connections, on virtual time
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use rdtls_proto::{Config, Connection, HandshakeState};
//!
//! let client_cfg = Arc::new(Config::builder().psk("client1", b"secret key".to_vec()).build()?);
//! let server_cfg = Arc::new(
//!     Config::builder().psk_server_key(b"secret key".to_vec()).cookie_verification(false).build()?,
//! );
//! let now = Instant::now();
//! let mut client = Connection::client(client_cfg, now)?;
//! let mut server = Connection::server(server_cfg, now)?;
//!
//! // Until both sides are done: in DTLS 1.3 (the default, with 1.2) the client completes
//! // first, and the server once the client's Finished reaches it.
//! let mut buf = Vec::new();
//! while client.handshake_state() != HandshakeState::Complete
//!     || server.handshake_state() != HandshakeState::Complete
//! {
//!     while let Some(_) = client.poll_transmit(&mut buf) {
//!         server.handle_datagram(now, &mut buf)?;
//!     }
//!     while let Some(_) = server.poll_transmit(&mut buf) {
//!         client.handle_datagram(now, &mut buf)?;
//!     }
//! }
//! assert_eq!(server.psk_identity(), Some(&b"client1"[..]));
//!
//! let mut record = Vec::new();
//! client.send(b"ping", &mut record)?;
//! let received = server.handle_datagram(now, &mut record)?;
//! assert_eq!(received.iter().next(), Some(&b"ping"[..]));
//! # Ok::<(), rdtls_proto::Error>(())
//! ```

//! # Example: certificates, on virtual time
//!
//! The server presents a chain and key (PEM or DER); the client trusts a CA and checks the
//! certificate against the name it asks for. The loop moves datagrams between the two, as a
//! socket layer would, and the server asks its client for a cookie first.
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
//! use std::time::Instant;
//! use rdtls_proto::crypto::default_provider;
//! use rdtls_proto::pki::{CertifiedKey, RootStore, ServerName};
//! use rdtls_proto::{Config, Connection, Event};
//!
//! let key = CertifiedKey::from_pem_or_der(&*default_provider(), cert_pem.as_bytes(), key_pem.as_bytes(), None)?;
//! let server_cfg = Arc::new(Config::builder().certificate(key).build()?);
//! let mut roots = RootStore::new();
//! roots.add_pem_or_der(ca_pem.as_bytes())?;
//! let client_cfg = Arc::new(Config::builder().root_store(roots).build()?);
//!
//! let now = Instant::now();
//! let name = ServerName::try_from("server.example".to_owned())?;
//! let mut client = Connection::client_with_server_name(client_cfg, Some(name), now)?;
//! let mut server = Connection::server(server_cfg, now)?;
//! let mut buf = Vec::new();
//! while !client.is_established() || !server.is_established() {
//!     while client.poll_transmit(&mut buf).is_some() {
//!         server.handle_datagram(now, &mut buf)?;
//!     }
//!     while server.poll_transmit(&mut buf).is_some() {
//!         client.handle_datagram(now, &mut buf)?;
//!     }
//! }
//! assert!(std::iter::from_fn(|| client.poll_event()).any(|e| matches!(e, Event::Connected)));
//! assert_eq!(client.peer_certificates().len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

//! # What is here
//!
//! - [`Connection`]: one association with one peer, client or server (Qt's `QDtls`).
//! - [`ClientVerifier`]: the stateless HelloVerifyRequest cookie check (Qt's
//!   `QDtlsClientVerifier`).
//! - [`Endpoint`]: a server's demultiplexer that admits new peers only after the cookie check.
//! - [`Config`]: protocol versions ([`ConfigBuilder::protocol_versions`]; DTLS 1.2 by
//!   default), cipher suites, PSK credentials and callbacks, timers, limits.
//! - [`crypto`]: the provider interface; the default provider uses `aws-lc-rs`.
//!
//! Invalid records are dropped silently and counted; every `Err` a connection returns is
//! fatal and has queued the alert it owes the peer.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

pub mod alpn;
pub mod cid;
pub mod codec;
pub mod config;
mod connection;
pub mod cookie;
pub mod crypto;
mod endpoint;
pub mod enums;
mod error;
mod handshake;
pub mod hello_pool;
pub mod messages;
pub mod record;
pub mod resumption;
mod short_bytes;
pub mod srtp;
pub mod suites;
#[cfg(test)]
mod tests;

pub use config::{
    key_log_line, ClientAuth, Config, ConfigBuilder, ExtendedMasterSecret, KeyLog, PskCredentials, VerifyPeer,
    DEFAULT_GROUPS, MAX_PSK_IDENTITY_LEN,
};
pub use connection::{
    Connection, ConnectionEvent, EndpointEvent, Event, HandshakeState, Received, Side, Stats, MAX_HELD_BYTES,
    MAX_HELD_RECORDS, MAX_ISSUED_CONNECTION_IDS, MAX_RECORDS_PER_DATAGRAM, MAX_SPARE_CONNECTION_IDS,
    PATH_VALIDATION_TIMEOUT,
};
pub use cookie::{ClientVerifier, Verification};
pub use endpoint::{
    AcceptError, ConnectionHandle, DatagramEvent, Endpoint, Incoming, AMPLIFICATION_FACTOR, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_STALE_AFTER,
};
pub use enums::Protocol;
pub use error::{Error, ErrorKind};
pub use pki::{CertResolver, CertificateError, CertifiedKey, RootStore};
pub use suites::CipherSuite;
pub mod pki;
