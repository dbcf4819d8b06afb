//! A server endpoint: demultiplexes datagrams by connection ID (RFC 9146) and by peer address,
//! and admits new peers only after a stateless cookie check.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cid::{datagram_cid, ConnectionIdGenerator, OwnCid, RandomIds};
use crate::config::Config;
use crate::connection::lifecycle::EndpointEventKind;
use crate::connection::{Connection, ConnectionEvent, EndpointEvent};
use crate::cookie::{client_hello_random, ClientVerifier, Verification};
use crate::error::Error;
use crate::hello_pool::{self, HelloPool, Pooled};

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
    /// Send the response buffer back to the peer (a HelloVerifyRequest, or a DTLS 1.3
    /// HelloRetryRequest with a cookie).
    Respond,
    /// A fragment of a ClientHello from a peer not verified yet, held in the endpoint's bounded
    /// pool until the rest arrives ([`Endpoint::set_hello_pool_limit`]): nothing to do yet.
    Held,
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
    evicts: Option<ConnectionHandle>,
    /// The local address the ClientHello arrived on, if the caller knows it.
    local_ip: Option<std::net::IpAddr>,
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

    /// The connection that makes room for this one: the endpoint is full, and this is the one
    /// that went longest without a datagram, past the stale threshold
    /// ([`Endpoint::set_stale_after`]). Accepting the new connection unregisters it; the
    /// application should then drop it. Until then it lives on.
    pub fn evicts(&self) -> Option<ConnectionHandle> {
        self.evicts
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
    peers: HashMap<SocketAddr, Peer>,
    addrs: HashMap<ConnectionHandle, SocketAddr>,
    /// Our connection IDs (when the configuration asks for them). A connection's first ID is
    /// not taken out when the connection goes (there is no map back from connections to IDs,
    /// which would cost every connection another entry): an ID whose connection is gone routes
    /// nothing and may be drawn again, and a sweep clears such IDs once as many connections
    /// went as are left (see `remove`).
    cids: HashMap<OwnCid, ConnectionHandle>,
    /// Connections removed since the last sweep of `cids` (at least as many as the IDs left
    /// behind).
    gone_since_sweep: usize,
    /// DTLS 1.3: IDs a connection's peer asked for after the handshake (RFC 9147 §9).
    extra_cids: HashMap<ConnectionHandle, Vec<OwnCid>>,
    cid_generator: Arc<dyn ConnectionIdGenerator>,
    /// Return routability checks in progress (RFC 9853), by connection.
    probes: HashMap<ConnectionHandle, PathProbe>,
    next_handle: u64,
    max_connections: usize,
    refused_full: u64,
    evicted: u64,
    local_ip: Option<std::net::IpAddr>,
    stale_after: Option<Duration>,
    /// No registered connection can be stale before then (skips the search while full).
    no_stale_before: Option<Instant>,
    /// DTLS 1.3: fragmented ClientHellos of sources not verified yet, until whole.
    hellos: HelloPool,
    /// What `Peer::last_seen` counts from.
    started: Instant,
}

/// A registered peer.
#[derive(Debug)]
struct Peer {
    handle: ConnectionHandle,
    /// Fingerprint of the ClientHello random that started the connection (8 bytes are as good
    /// as 32 to tell a restarted client, and smaller).
    fingerprint: u64,
    /// When the last datagram from the peer arrived: milliseconds since the endpoint started
    /// (8 bytes where an `Instant` takes 16, in the one table with an entry per connection).
    last_seen: u64,
}

/// A return routability check in progress (RFC 9853): the address probed, and the bytes
/// received from it and sent to it since, for the anti-amplification limit.
#[derive(Debug)]
struct PathProbe {
    to: SocketAddr,
    received: u64,
    sent: u64,
}

/// What may be sent to an address not validated yet: three times what came from it (RFC 9853
/// §2, after RFC 9000 §8).
pub const AMPLIFICATION_FACTOR: u64 = 3;

/// Default cap on connections per endpoint.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Default idle time after which a connection may be evicted to make room for a new one
/// (Eclipse Scandium uses the same).
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(30 * 60);

impl Endpoint {
    /// An endpoint for `config`, with a fresh cookie secret.
    pub fn new(config: Arc<Config>, now: Instant) -> Result<Self, Error> {
        let verifier = ClientVerifier::new(&config, now)?;
        Ok(Self {
            config,
            verifier,
            peers: HashMap::new(),
            addrs: HashMap::new(),
            cids: HashMap::new(),
            gone_since_sweep: 0,
            extra_cids: HashMap::new(),
            cid_generator: Arc::new(RandomIds),
            probes: HashMap::new(),
            next_handle: 0,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            refused_full: 0,
            evicted: 0,
            local_ip: None,
            stale_after: Some(DEFAULT_STALE_AFTER),
            no_stale_before: None,
            hellos: HelloPool::default(),
            started: now,
        })
    }

    /// Replaces what makes the connection IDs of new connections (when the configuration asks
    /// for them, [`ConfigBuilder::connection_id`](crate::ConfigBuilder::connection_id)). The
    /// default is [`RandomIds`](crate::cid::RandomIds).
    pub fn set_connection_id_generator(&mut self, generator: Arc<dyn ConnectionIdGenerator>) {
        self.cid_generator = generator;
    }

    /// Caps the number of connections; new peers beyond it are dropped before any state is
    /// kept, unless a stale connection makes room ([`set_stale_after`](Self::set_stale_after)).
    pub fn set_max_connections(&mut self, max: usize) {
        self.max_connections = max;
    }

    /// When the endpoint is full, a verified new peer may take the place of the connection
    /// that has gone longest without a datagram, once that is longer than `idle` (default 30
    /// minutes; `None`: never). Peers that vanish without a close_notify (a device rebooting
    /// onto another port, a NAT rebinding, a crash) then cannot lock newcomers out for good.
    ///
    /// The endpoint learns of a peer's activity from [`handle`](Self::handle): route every
    /// datagram through it (or turn this off). An application that accepts an [`Incoming`]
    /// must drop the connection named by [`Incoming::evicts`], as it drops the one named by
    /// [`Incoming::replaces`].
    pub fn set_stale_after(&mut self, idle: Option<Duration>) {
        self.stale_after = idle;
        self.no_stale_before = None;
    }

    /// Connections evicted as stale to make room.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Caps the memory of the pool where fragmented ClientHellos from sources not verified
    /// yet are reassembled before their cookie check (default
    /// [`DEFAULT_HELLO_POOL_BYTES`](crate::hello_pool::DEFAULT_HELLO_POOL_BYTES), 256 KiB;
    /// the oldest message is evicted to make room for a new one). Used only when DTLS 1.3 is
    /// enabled and cookies are checked: a DTLS 1.3 ClientHello with a post-quantum key share
    /// is fragmented at common MTUs, and its cookie extension may be in any fragment. A cap
    /// below one message (about 2 KiB) turns fragmented ClientHellos away.
    pub fn set_hello_pool_limit(&mut self, bytes: usize) {
        self.hellos.set_cap(bytes);
    }

    /// Memory the pool of fragmented ClientHellos holds now, overhead included: never more
    /// than its cap ([`set_hello_pool_limit`](Self::set_hello_pool_limit)).
    pub fn hello_pool_bytes(&self) -> usize {
        self.hellos.bytes()
    }

    /// Fragmented ClientHellos being reassembled (at most one per source address).
    pub fn pending_hellos(&self) -> usize {
        self.hellos.len()
    }

    /// Fragmented ClientHellos evicted from the pool, unfinished, to make room for newer ones.
    pub fn hello_pool_evictions(&self) -> u64 {
        self.hellos.evicted()
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

    /// The connection registered at `remote`, if any.
    pub fn connection_at(&self, remote: SocketAddr) -> Option<ConnectionHandle> {
        self.peers.get(&remote).map(|p| p.handle)
    }

    /// Classifies a datagram from `remote`. Keeps no state for an unverified peer but the
    /// fragments of a ClientHello in the bounded pool ([`DatagramEvent::Held`]); a response
    /// written to `response` is never larger than what the peer sent for the ClientHello it
    /// answers (`datagram`, or the fragments of a fragmented ClientHello).
    pub fn handle(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        datagram: &[u8],
        response: &mut Vec<u8>,
    ) -> DatagramEvent {
        self.handle_at(now, remote, None, datagram, response)
    }

    /// [`handle`](Self::handle) a datagram that arrived on the local address `local_ip` (as
    /// `IP_PKTINFO` tells on a socket bound to a wildcard address): a connection it starts
    /// picks its certificate by that address when the client sends no SNI (EdgerOS `ipcert`).
    /// `None`: the address set with [`set_local_ip`](Self::set_local_ip).
    pub fn handle_at(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local_ip: Option<std::net::IpAddr>,
        datagram: &[u8],
        response: &mut Vec<u8>,
    ) -> DatagramEvent {
        response.clear();
        // A record with one of our connection IDs belongs to its connection, from whatever
        // address (the connection decides whether the peer moved: see `follow`).
        if let Some((handle, at)) = self.route_by_cid(datagram) {
            if let Some(peer) = self.peers.get_mut(&at) {
                peer.last_seen = since(self.started, now);
            }
            return DatagramEvent::Connection(handle);
        }
        let mut replaces = None;
        if let Some(peer) = self.peers.get_mut(&remote) {
            // A ClientHello with a new random from a known address and port: the client
            // restarted and reuses its port (RFC 6347 §4.2.8). It goes through the cookie check
            // like any new peer; everything else belongs to the existing connection.
            match client_hello_random(datagram) {
                Some(r) if random_fingerprint(&r) != peer.fingerprint => replaces = Some(peer.handle),
                // The rest of a restarted client's fragmented ClientHello.
                None if self.hellos.holds(&remote) && hello_pool::wants(datagram) => {
                    replaces = Some(peer.handle);
                }
                _ => {
                    peer.last_seen = since(self.started, now);
                    return DatagramEvent::Connection(peer.handle);
                }
            }
        }
        // The old association may end only once the new client has shown it receives at this
        // address (RFC 6347 §4.2.8): the cookie exchange proves it, statelessly, so it is asked
        // for even with cookie verification off. Otherwise anyone could spoof one ClientHello
        // from a peer's address and tear its association down; the HelloVerifyRequest such a
        // forgery draws goes to the real peer, which ignores it.
        let whole;
        let mut datagram = datagram;
        if self.config.cookie_verification || replaces.is_some() {
            // A fragmented ClientHello is checked once whole (DTLS 1.3 may put what the check
            // reads in any fragment); until then its fragments wait in the bounded pool.
            if self.config.enables(crate::Protocol::Dtls1_3) && hello_pool::wants(datagram) {
                match self.hellos.offer(now, remote, datagram) {
                    Pooled::Complete(message) => {
                        whole = message;
                        datagram = &whole;
                    }
                    Pooled::Held => return DatagramEvent::Held,
                    Pooled::Dropped => return DatagramEvent::Drop,
                }
            }
            match self.verifier.verify(now, &remote, datagram, response) {
                Verification::Verified => {}
                Verification::SendHelloVerifyRequest | Verification::SendHelloRetryRequest => {
                    return DatagramEvent::Respond
                }
                _ => return DatagramEvent::Drop,
            }
        }
        let Some(random) = client_hello_random(datagram) else {
            return DatagramEvent::Drop;
        };
        let mut evicts = None;
        if replaces.is_none() && self.peers.len() >= self.max_connections {
            evicts = self.stale(now);
            if evicts.is_none() {
                self.refused_full += 1;
                return DatagramEvent::Drop;
            }
        }
        DatagramEvent::Incoming(Incoming { remote, datagram: datagram.to_vec(), random, replaces, evicts, local_ip })
    }

    /// The connection idle longest, if that is past the stale threshold. The search runs only
    /// when one may exist: a search that finds none notes when the first one can, so a full
    /// endpoint under a stream of verified ClientHellos does not scan its table for each.
    fn stale(&mut self, now: Instant) -> Option<ConnectionHandle> {
        let idle = self.stale_after?;
        if self.no_stale_before.is_some_and(|t| now < t) {
            return None;
        }
        let oldest = self.peers.values().min_by_key(|p| p.last_seen)?;
        // The end of the millisecond it was last seen in: never stale before its time, at most
        // a millisecond after.
        let last_seen = self.started + Duration::from_millis(oldest.last_seen.saturating_add(1));
        if now.saturating_duration_since(last_seen) >= idle {
            self.no_stale_before = None;
            return Some(oldest.handle);
        }
        // A threshold past what an `Instant` can hold (`Duration::MAX`): look again in an hour.
        self.no_stale_before = last_seen.checked_add(idle).or_else(|| now.checked_add(Duration::from_secs(3600)));
        None
    }

    /// Starts a server connection for a verified peer and registers it. The connection's
    /// first flight is ready in its [`Connection::poll_transmit`].
    pub fn accept(&mut self, incoming: Incoming, now: Instant) -> Result<(ConnectionHandle, Connection), AcceptError> {
        let Incoming { remote, mut datagram, random, replaces, evicts, local_ip } = incoming;
        let fail = |error: Error, conn: Option<&mut Connection>| {
            let mut response = Vec::new();
            if let Some(c) = conn {
                let _ = c.poll_transmit(&mut response);
            }
            AcceptError { error, response }
        };
        let mut conn = Connection::server(self.config.clone(), now).map_err(|e| fail(e, None))?;
        // A connection ID no other connection of ours has, to route its records by.
        let cid = match self.config.connection_id_len().filter(|&n| n > 0) {
            Some(len) => {
                let cid = self.fresh_cid(len).map_err(|e| fail(e, None))?;
                conn.set_connection_id(&cid).map_err(|e| fail(e, None))?;
                Some(cid)
            }
            None => None,
        };
        if let Some(ip) = local_ip.or(self.local_ip) {
            conn.set_local_ip(ip);
        }
        if replaces.is_some() {
            // Its cookie was checked even with verification off (see `handle_at`).
            conn.cookie_verified();
        }
        if let Err(e) = conn.handle_datagram(now, &mut datagram) {
            return Err(fail(e, Some(&mut conn)));
        }
        if let Some(old) = replaces {
            self.remove(old);
        }
        if let Some(stale) = evicts {
            if self.addrs.contains_key(&stale) {
                self.evicted += 1;
            }
            self.remove(stale);
        }
        let handle = ConnectionHandle(self.next_handle);
        self.next_handle += 1;
        let peer = Peer { handle, fingerprint: random_fingerprint(&random), last_seen: since(self.started, now) };
        self.peers.insert(remote, peer);
        self.addrs.insert(handle, remote);
        if let Some(cid) = cid {
            self.cids.insert(cid, handle);
        }
        Ok((handle, conn))
    }

    /// A random connection ID of `len` bytes that no connection of ours has.
    fn fresh_cid(&self, len: usize) -> Result<OwnCid, Error> {
        let mut cid = OwnCid::zeroed(len).ok_or(Error::InvalidInput("connection ID too long"))?;
        // With short IDs and many connections a draw may be taken: a few more are cheap.
        let provider = &self.config.provider;
        for _ in 0..16 {
            self.cid_generator.generate(&mut cid, &mut |b| Ok(provider.fill_random(b)?))?;
            if self.cids.get(&cid).is_none_or(|h| !self.addrs.contains_key(h)) {
                return Ok(cid);
            }
        }
        Err(Error::InvalidOperation(
            "no free connection ID: the configured length is too short for this many connections",
        ))
    }

    /// The connection a `tls12_cid` record at the front of `datagram` names, if it is one of
    /// ours, and its peer's address.
    fn route_by_cid(&self, datagram: &[u8]) -> Option<(ConnectionHandle, SocketAddr)> {
        if self.cids.is_empty() {
            return None;
        }
        let id = datagram_cid(datagram, self.config.connection_id_len()?)?;
        let handle = *self.cids.get(&OwnCid::new(id)?)?;
        // `None` for the ID of a connection that is gone.
        Some((handle, *self.addrs.get(&handle)?))
    }

    /// After `conn` (registered as `handle`) handled a datagram of `datagram_len` bytes from
    /// `remote`: moves the connection to `remote` if that datagram carried its newest
    /// authenticated record (RFC 9146 §6; [`Connection::datagram_was_newest`]) and `remote` is
    /// not its address already. Returns whether it moved. A replayed or reordered record from
    /// another address moves nothing, and neither does a datagram that failed to authenticate.
    ///
    /// With return routability checks agreed ([`Connection::return_routability_check`], RFC
    /// 9853), such a datagram does not move the connection: it starts a check of `remote`
    /// ([`Connection::challenge_path`]; send what `conn` has to send to the address
    /// [`destination`](Self::destination) names). The connection moves when a datagram from
    /// `remote` finds the check answered; until then [`destination`](Self::destination) keeps
    /// what goes to `remote` under three times what came from it.
    pub fn follow(
        &mut self,
        handle: ConnectionHandle,
        remote: SocketAddr,
        datagram_len: usize,
        conn: &mut Connection,
        now: Instant,
    ) -> bool {
        if self.addrs.get(&handle) == Some(&remote) {
            return false;
        }
        if !conn.return_routability_check() {
            return conn.datagram_was_newest() && self.migrate(handle, remote).is_ok();
        }
        if let Some(p) = self.probes.get_mut(&handle).filter(|p| p.to == remote) {
            p.received = p.received.saturating_add(datagram_len as u64);
            // Answered, and this datagram from there is authentic and new (not a forgery that
            // only carries the ID, nor a replay).
            if conn.path_validated() && conn.datagram_was_newest() {
                self.probes.remove(&handle);
                return self.migrate(handle, remote).is_ok();
            }
            if conn.path_challenge_pending() || conn.path_validated() {
                return false;
            }
            // That check failed: the newest record from there starts another.
        }
        if conn.datagram_was_newest() && conn.challenge_path(now).is_ok() {
            // A probe of another address (the peer moved again) is replaced.
            self.probes.insert(handle, PathProbe { to: remote, received: datagram_len as u64, sent: 0 });
        }
        false
    }

    /// Where to send a datagram of `len` bytes that `conn` (the connection `handle`) just wrote:
    /// its address; while a return routability check runs (see [`follow`](Self::follow)), the
    /// address being checked, as long as what went there stays within three times what came
    /// from there, else the address it had. Our `path_challenge`
    /// ([`Connection::transmitted_path_challenge`]) goes only to the address being checked:
    /// `None` (do not send it) if it does not fit the limit. `None` for an unknown handle.
    pub fn destination(&mut self, handle: ConnectionHandle, len: usize, conn: &Connection) -> Option<SocketAddr> {
        let current = *self.addrs.get(&handle)?;
        if self.probes.is_empty() {
            // Every datagram of every connection asks: the common answer costs one lookup.
            return Some(current);
        }
        let Some(p) = self.probes.get_mut(&handle) else { return Some(current) };
        if !conn.path_challenge_pending() && !conn.path_validated() {
            // The check failed (or the connection forgot it): nothing more goes there.
            self.probes.remove(&handle);
            return Some(current);
        }
        let after = p.sent.saturating_add(len as u64);
        if after <= p.received.saturating_mul(AMPLIFICATION_FACTOR) {
            p.sent = after;
            return Some(p.to);
        }
        // Never redirected: at the old address it would be answered, and prove nothing.
        (!conn.transmitted_path_challenge()).then_some(current)
    }

    /// The address a return routability check of `handle` is checking, if one runs.
    pub fn probe_target(&self, handle: ConnectionHandle) -> Option<SocketAddr> {
        self.probes.get(&handle).map(|p| p.to)
    }

    /// Moves a registered connection to a new peer address: datagrams from `to` reach it from
    /// now on, and datagrams from its old address no longer do. For a peer whose address
    /// changed (a NAT rebinding, a move between networks) once the application has reason to
    /// believe it (with Connection ID, an authenticated record from the new address). Fails,
    /// changing nothing, if the handle is unknown or another connection has `to`.
    pub fn migrate(&mut self, handle: ConnectionHandle, to: SocketAddr) -> Result<(), Error> {
        let Some(&from) = self.addrs.get(&handle) else {
            return Err(Error::InvalidInput("no such connection"));
        };
        if from == to {
            return Ok(());
        }
        if self.peers.contains_key(&to) {
            return Err(Error::InvalidInput("another connection has this address"));
        }
        let Some(peer) = self.peers.remove(&from) else {
            return Err(Error::InvalidInput("no such connection"));
        };
        self.peers.insert(to, peer);
        self.addrs.insert(handle, to);
        Ok(())
    }

    /// Applies what a connection reported with [`Connection::poll_endpoint_event`]: a closed
    /// connection is forgotten ([`EndpointEvent::is_closed`]); a connection whose peer asked
    /// for more connection IDs (DTLS 1.3) gets new ones, made by the
    /// [generator](Self::set_connection_id_generator) and routed to it from now on: pass the
    /// returned event to its [`Connection::handle_event`].
    pub fn handle_event(&mut self, handle: ConnectionHandle, event: EndpointEvent) -> Option<ConnectionEvent> {
        match event.0 {
            EndpointEventKind::Closed => {
                self.remove(handle);
                None
            }
            EndpointEventKind::NeedConnectionIds(n) => {
                let len = self.config.connection_id_len().filter(|&l| l > 0)?;
                if !self.addrs.contains_key(&handle) {
                    return None;
                }
                // The connection asks for no more than it may hold; the endpoint checks too.
                let held = self.extra_cids.get(&handle).map_or(0, Vec::len);
                let n = usize::from(n).min(crate::connection::MAX_ISSUED_CONNECTION_IDS.saturating_sub(held));
                let mut ids = Vec::new();
                for _ in 0..n {
                    // An ID space too crowded to draw a free one: fewer IDs (RFC 9147 §9 allows it).
                    let Ok(id) = self.fresh_cid(len) else { break };
                    self.cids.insert(id, handle);
                    self.extra_cids.entry(handle).or_default().push(id);
                    ids.push(id.to_vec());
                }
                Some(ConnectionEvent(ids))
            }
        }
    }

    /// Forgets a connection that did not close (handed elsewhere, or dropped by the
    /// application); a closed one reports it with an [`EndpointEvent`].
    pub fn remove(&mut self, handle: ConnectionHandle) {
        // The rare tables are looked at only when they hold something: this runs for every
        // connection that ends.
        if !self.probes.is_empty() {
            self.probes.remove(&handle);
        }
        if !self.extra_cids.is_empty() {
            for cid in self.extra_cids.remove(&handle).unwrap_or_default() {
                self.cids.remove(&cid);
            }
        }
        let Some(addr) = self.addrs.remove(&handle) else { return };
        if self.peers.get(&addr).is_some_and(|p| p.handle == handle) {
            self.peers.remove(&addr);
        }
        if !self.cids.is_empty() {
            self.gone_since_sweep += 1;
            self.sweep_cids();
        }
    }

    /// Clears the IDs of connections that are gone, once as many connections went since the
    /// last sweep as are left (and a few): the table holds at most about twice the IDs in use,
    /// its capacity follows, and each removal pays for a constant share of a sweep.
    fn sweep_cids(&mut self) {
        if self.gone_since_sweep <= self.addrs.len() + CID_SWEEP_SLACK {
            return;
        }
        let live = &self.addrs;
        self.cids.retain(|_, handle| live.contains_key(handle));
        self.gone_since_sweep = 0;
        // A sweep reads the whole table, which keeps the size its busiest time gave it: when
        // most of that is gone, it shrinks, so that sweeps cost what is in use.
        let wanted = 2 * (self.cids.len() + CID_SWEEP_SLACK);
        if self.cids.capacity() > 2 * wanted {
            self.cids.shrink_to(wanted);
        }
    }

    /// Entries in the table of connection IDs (those of gone connections included), and its
    /// capacity.
    #[cfg(test)]
    pub(crate) fn cid_entries(&self) -> (usize, usize) {
        (self.cids.len(), self.cids.capacity())
    }
}

/// Removals that never start a sweep of the table of connection IDs by themselves.
pub(crate) const CID_SWEEP_SLACK: usize = 64;

/// Whole milliseconds from `start` to `now` (0 if `now` is earlier).
fn since(start: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(start).as_millis()).unwrap_or(u64::MAX)
}

/// The last 8 bytes of a ClientHello random: random in every implementation (the first four
/// may be a clock), so two ClientHellos of different handshakes differ there.
fn random_fingerprint(random: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&random[24..]);
    u64::from_le_bytes(b)
}
