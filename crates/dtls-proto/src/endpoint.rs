//! A server endpoint: demultiplexes datagrams by peer address and admits new peers only after
//! a stateless cookie check.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::connection::Connection;
use crate::cookie::{client_hello_random, ClientVerifier, Verification};
use crate::error::Error;

/// Identifies a connection registered with an [`Endpoint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionHandle(pub u64);

/// What the endpoint made of a datagram.
#[derive(Debug)]
#[must_use]
pub enum DatagramEvent {
    /// The datagram belongs to this established or handshaking connection: pass it to its
    /// [`Connection::handle_datagram`].
    Connection(ConnectionHandle),
    /// A new peer passed the cookie check: accept, refuse or ignore it.
    Incoming(Incoming),
    /// Send the response buffer back to the peer (a HelloVerifyRequest).
    Respond,
    /// Nothing to do: the datagram was dropped.
    Drop,
}

/// A verified ClientHello from a new peer. Hand it to [`Endpoint::accept`] to start a
/// connection, or drop it to ignore the peer.
#[derive(Debug)]
pub struct Incoming {
    remote: SocketAddr,
    datagram: Vec<u8>,
    random: [u8; 32],
    replaces: Option<ConnectionHandle>,
}

impl Incoming {
    /// The peer's address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// A connection with the same address and port that this new handshake replaces: the
    /// client restarted (RFC 6347 §4.2.8) and proved with a cookie exchange (asked for even
    /// when cookie verification is off) that it receives at this address. Accepting the new one
    /// unregisters the old one; the application should then drop the old connection. A forged
    /// ClientHello never gets this far, so it cannot tear down an association.
    pub fn replaces(&self) -> Option<ConnectionHandle> {
        self.replaces
    }
}

/// A failed [`Endpoint::accept`]: the error, and the alert datagram owed to the peer.
#[derive(Debug)]
pub struct AcceptError {
    /// Why the handshake could not start.
    pub error: Error,
    /// A datagram to send to the peer (a fatal alert), possibly empty.
    pub response: Vec<u8>,
}

/// The server side of a UDP socket: cookie verification, demultiplexing, admission limits.
#[derive(Debug)]
pub struct Endpoint {
    config: Arc<Config>,
    verifier: ClientVerifier,
    /// Each registered peer's connection and the fingerprint of the ClientHello random that
    /// started it (8 bytes are as good as 32 to tell a restarted client, and smaller).
    peers: HashMap<SocketAddr, (ConnectionHandle, u64)>,
    addrs: HashMap<ConnectionHandle, SocketAddr>,
    next_handle: u64,
    max_connections: usize,
    refused_full: u64,
    local_ip: Option<std::net::IpAddr>,
}

/// Default cap on connections per endpoint.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

impl Endpoint {
    /// An endpoint for `config`, with a fresh cookie secret.
    pub fn new(config: Arc<Config>, now: Instant) -> Result<Self, Error> {
        let verifier = ClientVerifier::new(&config, now)?;
        Ok(Self {
            config,
            verifier,
            peers: HashMap::new(),
            addrs: HashMap::new(),
            next_handle: 0,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            refused_full: 0,
            local_ip: None,
        })
    }

    /// Caps the number of connections; new peers beyond it are dropped before any state is kept.
    pub fn set_max_connections(&mut self, max: usize) {
        self.max_connections = max;
    }

    /// The local address this endpoint's socket receives on, given to new connections to pick
    /// a certificate valid for it when a client sends no SNI (EdgerOS `ipcert`).
    pub fn set_local_ip(&mut self, ip: Option<std::net::IpAddr>) {
        self.local_ip = ip;
    }

    /// The cookie verifier (to share its secret between processes, for instance).
    pub fn verifier_mut(&mut self) -> &mut ClientVerifier {
        &mut self.verifier
    }

    /// Connections currently registered.
    pub fn connection_count(&self) -> usize {
        self.peers.len()
    }

    /// New peers dropped because the endpoint was full.
    pub fn refused_full(&self) -> u64 {
        self.refused_full
    }

    /// The address of a registered connection.
    pub fn remote(&self, handle: ConnectionHandle) -> Option<SocketAddr> {
        self.addrs.get(&handle).copied()
    }

    /// Classifies a datagram from `remote`. Never keeps state for an unverified peer; a
    /// response written to `response` is never larger than `datagram`.
    pub fn handle(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        datagram: &[u8],
        response: &mut Vec<u8>,
    ) -> DatagramEvent {
        response.clear();
        let mut replaces = None;
        if let Some(&(h, fingerprint)) = self.peers.get(&remote) {
            // A ClientHello with a new random from a known address and port: the client
            // restarted and reuses its port (RFC 6347 §4.2.8). It goes through the cookie check
            // like any new peer; everything else belongs to the existing connection.
            match client_hello_random(datagram) {
                Some(r) if random_fingerprint(&r) != fingerprint => replaces = Some(h),
                _ => return DatagramEvent::Connection(h),
            }
        }
        // The old association may end only once the new client has shown it receives at this
        // address (RFC 6347 §4.2.8): the cookie exchange proves it, statelessly, so it is asked
        // for even with cookie verification off. Otherwise anyone could spoof one ClientHello
        // from a peer's address and tear its association down; the HelloVerifyRequest such a
        // forgery draws goes to the real peer, which ignores it.
        if self.config.cookie_verification || replaces.is_some() {
            match self.verifier.verify(now, &remote, datagram, response) {
                Verification::Verified => {}
                Verification::SendHelloVerifyRequest => return DatagramEvent::Respond,
                Verification::Drop => return DatagramEvent::Drop,
            }
        }
        let Some(random) = client_hello_random(datagram) else {
            return DatagramEvent::Drop;
        };
        if replaces.is_none() && self.peers.len() >= self.max_connections {
            self.refused_full += 1;
            return DatagramEvent::Drop;
        }
        DatagramEvent::Incoming(Incoming { remote, datagram: datagram.to_vec(), random, replaces })
    }

    /// Starts a server connection for a verified peer and registers it. The connection's
    /// first flight is ready in its [`Connection::poll_transmit`].
    pub fn accept(&mut self, incoming: Incoming, now: Instant) -> Result<(ConnectionHandle, Connection), AcceptError> {
        let Incoming { remote, mut datagram, random, replaces } = incoming;
        let fail = |error: Error, conn: Option<&mut Connection>| {
            let mut response = Vec::new();
            if let Some(c) = conn {
                let _ = c.poll_transmit(&mut response);
            }
            AcceptError { error, response }
        };
        let mut conn = Connection::server(self.config.clone(), now).map_err(|e| fail(e, None))?;
        if let Some(ip) = self.local_ip {
            conn.set_local_ip(ip);
        }
        if let Err(e) = conn.handle_datagram(now, &mut datagram) {
            return Err(fail(e, Some(&mut conn)));
        }
        if let Some(old) = replaces {
            self.remove(old);
        }
        let handle = ConnectionHandle(self.next_handle);
        self.next_handle += 1;
        self.peers.insert(remote, (handle, random_fingerprint(&random)));
        self.addrs.insert(handle, remote);
        Ok((handle, conn))
    }

    /// Forgets a connection (closed, failed, or handed elsewhere).
    pub fn remove(&mut self, handle: ConnectionHandle) {
        if let Some(addr) = self.addrs.remove(&handle) {
            if self.peers.get(&addr).is_some_and(|(h, _)| *h == handle) {
                self.peers.remove(&addr);
            }
        }
    }
}

/// The last 8 bytes of a ClientHello random: random in every implementation (the first four
/// may be a clock), so two ClientHellos of different handshakes differ there.
fn random_fingerprint(random: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&random[24..]);
    u64::from_le_bytes(b)
}
