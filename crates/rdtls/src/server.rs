//! A blocking, single-threaded DTLS server: one UDP socket, many peers, as Qt's DTLS server
//! example serves them. Everything it does is reported as a [`ServerEvent`] from
//! [`Server::poll`] (a peer verified, connected, sending, closed, and why), and an
//! [`Observer`](crate::Observer) can watch each datagram before decryption.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls_proto::{Config, Connection, ConnectionHandle, DatagramEvent, Endpoint, EndpointEvent, Error, Event};

use crate::listener::ListenerStats;
use crate::observe::{Observed, Observer};
use crate::shared::Traffic;
use crate::{earliest, is_timeout, ReadTimeout, MAX_DATAGRAM};

/// What happened on a [`Server`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A new peer passed the cookie check (Qt's `QDtlsClientVerifier`); its handshake starts.
    /// `replaces`: the same address and port had a connection, and the client restarted (RFC
    /// 6347 §4.2.8): the old connection ends (a [`Closing`](Self::Closing) event precedes).
    Verified {
        /// The peer.
        peer: SocketAddr,
        /// The client restarted on the address of a connection that ends.
        replaces: bool,
    },
    /// A verified peer's handshake could not start (its alert was sent).
    Refused(SocketAddr, Error),
    /// A peer completed its handshake.
    Connected(SocketAddr),
    /// A peer sent a message.
    Message(SocketAddr, Vec<u8>),
    /// We are closing a peer's connection (with close_notify), for `reason`; `Closed` follows.
    Closing(SocketAddr, CloseReason),
    /// A peer's connection ended (`None`: closed by us).
    Closed(SocketAddr, Option<Error>),
    /// A peer's connection follows it to a new address (a NAT rebinding, a move between
    /// networks): with a Connection ID, its newest authenticated record came from there (RFC
    /// 9146 §6). Its events and our sends use the new address from now on.
    Moved {
        /// The address it had.
        from: SocketAddr,
        /// The address it has now.
        to: SocketAddr,
    },
}

/// Why a [`Server`] closes a connection itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Nothing came from the peer for the idle timeout ([`Server::set_idle_timeout`]).
    Idle(Duration),
    /// The server is full and this connection, silent longest past the stale threshold, makes
    /// room ([`Server::set_limits`]).
    Evicted,
    /// The client restarted on the same address and port.
    Restarted,
    /// [`Server::shutdown`].
    Shutdown,
}

/// A DTLS server on one UDP socket.
#[derive(Debug)]
pub struct Server {
    socket: UdpSocket,
    endpoint: Endpoint,
    conns: HashMap<ConnectionHandle, Peer>,
    events: VecDeque<ServerEvent>,
    rx: Vec<u8>,
    tx: Vec<u8>,
    read_timeout: ReadTimeout,
    idle_timeout: Option<Duration>,
    observer: Option<Observer>,
    traffic: Traffic,
    evicted_stale: usize,
}

/// A connection and when its peer last sent anything.
#[derive(Debug)]
struct Peer {
    conn: Connection,
    last_seen: Instant,
}

impl Server {
    /// Binds `addr` and serves with `config`.
    pub fn bind(addr: SocketAddr, config: Arc<Config>) -> io::Result<Self> {
        Self::from_socket(UdpSocket::bind(addr)?, config)
    }

    /// Serves on an already bound socket.
    pub fn from_socket(socket: UdpSocket, config: Arc<Config>) -> io::Result<Self> {
        let endpoint = Endpoint::new(config, Instant::now())?;
        Ok(Self {
            socket,
            endpoint,
            conns: HashMap::new(),
            events: VecDeque::new(),
            rx: vec![0; MAX_DATAGRAM],
            tx: Vec::with_capacity(2048),
            read_timeout: ReadTimeout::default(),
            idle_timeout: None,
            observer: None,
            traffic: Traffic::default(),
            evicted_stale: 0,
        })
    }

    /// Closes (with close_notify) connections whose peer sent nothing for `idle`.
    pub fn set_idle_timeout(&mut self, idle: Option<Duration>) {
        self.idle_timeout = idle;
    }

    /// Caps the connections; when full, the one silent longest past `stale_after` makes room
    /// for a new verified peer, else the newcomer is dropped.
    pub fn set_limits(&mut self, max_connections: usize, stale_after: Option<Duration>) {
        self.endpoint.set_max_connections(max_connections);
        self.endpoint.set_stale_after(stale_after);
    }

    /// Caps the memory of the pool where fragmented ClientHellos of peers not verified yet wait
    /// until whole for the cookie check (default 256 KiB;
    /// [`Endpoint::set_hello_pool_limit`](rdtls_proto::Endpoint::set_hello_pool_limit)).
    pub fn set_hello_pool_limit(&mut self, bytes: usize) {
        self.endpoint.set_hello_pool_limit(bytes);
    }

    /// Counters: connections, handshakes by outcome, cookies, drops by reason, traffic.
    pub fn stats(&self) -> ListenerStats {
        let established = self.conns.values().filter(|p| p.conn.is_established()).count();
        let t = &self.traffic;
        let failed = [&t.failed_timeout, &t.failed_alert, &t.failed_verification, &t.failed_protocol]
            .iter()
            .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
            .sum::<u64>();
        ListenerStats {
            half_open: self.conns.len() - established,
            established,
            refused: self.endpoint.refused_full() as usize,
            failed: failed as usize,
            evicted_stale: self.evicted_stale,
            ..ListenerStats::default()
        }
        .with_traffic(t)
    }

    /// Sends one datagram to `to`; a failure concerns that peer alone (its address unreachable,
    /// say) and is only logged.
    fn send_datagram(&self, datagram: &[u8], to: SocketAddr) {
        match self.socket.send_to(datagram, to) {
            Ok(_) => self.traffic.sent(1, datagram.len() as u64),
            Err(e) => tracing::debug!(peer = %to, error = %e, "sending a datagram failed"),
        }
    }

    /// Watches every connection: datagrams as they arrive, protocol events, handshake progress.
    pub fn set_observer(&mut self, observer: Option<Observer>) {
        self.observer = observer;
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Connections held (handshaking or established).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The connection with `peer`, if any.
    pub fn connection(&self, peer: SocketAddr) -> Option<&Connection> {
        let handle = self.handle_of(peer)?;
        self.conns.get(&handle).map(|p| &p.conn)
    }

    fn handle_of(&self, peer: SocketAddr) -> Option<ConnectionHandle> {
        self.conns.keys().copied().find(|h| self.endpoint.remote(*h) == Some(peer))
    }

    /// Waits up to `timeout` (`None`: forever) for the next event, serving handshakes and
    /// timers meanwhile. Returns `Ok(None)` on timeout.
    pub fn poll(&mut self, timeout: Option<Duration>) -> io::Result<Option<ServerEvent>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Ok(Some(ev));
            }
            let idle = self.idle_timeout.and_then(|i| self.conns.values().map(|p| p.last_seen + i).min());
            let timers = earliest(self.conns.values().filter_map(|p| p.conn.poll_timeout()).min(), idle);
            let wake = earliest(timers, deadline);
            let got = if self.read_timeout.arm(&self.socket, wake)? {
                match self.socket.recv_from(&mut self.rx) {
                    Ok((n, from)) => Some((n, from)),
                    Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::ConnectionReset => None,
                    Err(e) => return Err(e),
                }
            } else {
                None
            };
            let now = Instant::now();
            if let Some((n, from)) = got {
                self.traffic.received(1, n as u64);
                self.on_datagram(now, from, n)?;
            }
            self.on_timers(now)?;
            if self.events.is_empty() && deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
        }
    }

    /// Sends `data` to an established peer.
    pub fn send_to(&mut self, peer: SocketAddr, data: &[u8]) -> io::Result<usize> {
        let handle = self.handle_of(peer).ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no such peer"))?;
        let Some(peer_conn) = self.conns.get_mut(&handle) else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "no such peer"));
        };
        self.tx.clear();
        peer_conn.conn.send(data, &mut self.tx)?;
        // While the peer's new address is checked (RFC 9853), what goes there is limited.
        let to = self.endpoint.destination(handle, self.tx.len(), &peer_conn.conn).unwrap_or(peer);
        self.socket.send_to(&self.tx, to)?;
        // (Application data is never a challenge: it always has somewhere to go.)
        self.traffic.sent(1, self.tx.len() as u64);
        Ok(data.len())
    }

    /// Sends close_notify to every peer and forgets them all; returns how many were told.
    pub fn shutdown(&mut self) -> io::Result<usize> {
        let handles: Vec<_> = self.conns.keys().copied().collect();
        let mut told = 0;
        for h in handles {
            told += usize::from(self.close(h, CloseReason::Shutdown)?);
        }
        Ok(told)
    }

    /// Closes connection `h` with close_notify for `reason`, reporting `Closing` then `Closed`;
    /// returns whether the alert went out. A send failure concerns that peer alone (its
    /// address may be unreachable, as a stale or restarted peer's often is).
    fn close(&mut self, h: ConnectionHandle, reason: CloseReason) -> io::Result<bool> {
        let Some(peer) = self.endpoint.remote(h) else { return Ok(false) };
        Ok(self.close_at(h, peer, reason))
    }

    /// [`close`](Self::close) a connection whose peer address is `peer` (the endpoint may
    /// have forgotten it already).
    fn close_at(&mut self, h: ConnectionHandle, peer: SocketAddr, reason: CloseReason) -> bool {
        let Some(mut p) = self.conns.remove(&h) else { return false };
        self.events.push_back(ServerEvent::Closing(peer, reason));
        let mut told = false;
        // A restarted client is the one at that address now: the old association's alert
        // would only reach the new one.
        if reason != CloseReason::Restarted && p.conn.shutdown().is_ok() {
            while p.conn.poll_transmit(&mut self.tx).is_some() {
                match self.socket.send_to(&self.tx, peer) {
                    Ok(_) => {
                        told = true;
                        self.traffic.sent(1, self.tx.len() as u64);
                    }
                    Err(e) => tracing::debug!(%peer, error = %e, "close_notify not sent"),
                }
            }
        }
        self.events.push_back(ServerEvent::Closed(peer, None));
        if let Some(ev) = p.conn.poll_endpoint_event() {
            let _ = self.endpoint.handle_event(h, ev);
        }
        told
    }

    fn on_datagram(&mut self, now: Instant, from: SocketAddr, n: usize) -> io::Result<()> {
        match self.endpoint.handle(now, from, &self.rx[..n], &mut self.tx) {
            DatagramEvent::Respond => {
                self.traffic.cookies_sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.send_datagram(&self.tx, from);
            }
            DatagramEvent::Drop => {
                self.traffic.dropped_unverified.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(peer = %from, "dropped a datagram from an unverified peer");
            }
            DatagramEvent::Held => {
                self.traffic.fragments_held.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            DatagramEvent::Incoming(incoming) => {
                // A restarted client replaces its old association (RFC 6347 §4.2.8); when full,
                // the connection idle longest makes room. Both end when the newcomer is accepted.
                self.events.push_back(ServerEvent::Verified { peer: from, replaces: incoming.replaces().is_some() });
                let ending = [(incoming.replaces(), CloseReason::Restarted), (incoming.evicts(), CloseReason::Evicted)]
                    .map(|(h, reason)| h.and_then(|h| Some((h, self.endpoint.remote(h)?, reason))));
                self.accept(now, from, incoming, ending)?;
            }
            DatagramEvent::Connection(h) => {
                if let Some(p) = self.conns.get_mut(&h) {
                    p.last_seen = now;
                    if let Some(o) = &self.observer {
                        o.see(&Observed::Received { peer: from, datagram: &self.rx[..n] });
                    }
                    let before = p.conn.stats();
                    let was = self.endpoint.remote(h).unwrap_or(from);
                    let handled = p.conn.handle_datagram(now, &mut self.rx[..n]);
                    self.traffic.dropped(&before, &p.conn.stats());
                    match handled {
                        Ok(received) => {
                            // A datagram routed by its connection ID may come from elsewhere:
                            // the connection moves there only on its newest authentic record,
                            // and its messages are reported under its address either way.
                            let peer = if from != was && self.endpoint.follow(h, from, n, &mut p.conn, now) {
                                if let Some(o) = &self.observer {
                                    o.see(&Observed::Moved { from: was, to: from });
                                }
                                self.events.push_back(ServerEvent::Moved { from: was, to: from });
                                from
                            } else {
                                was
                            };
                            for data in received.iter() {
                                self.events.push_back(ServerEvent::Message(peer, data.to_vec()));
                            }
                        }
                        Err(e) => tracing::debug!(peer = %from, error = %e, "connection failed"),
                    }
                    if let Some(o) = &self.observer {
                        if p.conn.handshake_state() == rdtls_proto::HandshakeState::InProgress && !p.conn.is_closed() {
                            o.see(&Observed::Handshaking { peer: from });
                        }
                    }
                }
                self.drive(h)?;
            }
        }
        Ok(())
    }

    /// Starts a connection for a verified newcomer; `ending` are the connections it ends (a
    /// restarted client's old association; the one that makes room when the server is full),
    /// closed once the newcomer is accepted.
    fn accept(
        &mut self,
        now: Instant,
        from: SocketAddr,
        incoming: rdtls_proto::Incoming,
        ending: [Option<(ConnectionHandle, SocketAddr, CloseReason)>; 2],
    ) -> io::Result<()> {
        match self.endpoint.accept(incoming, now) {
            Ok((h, conn)) => {
                for (old, peer, reason) in ending.into_iter().flatten() {
                    self.evicted_stale += usize::from(reason == CloseReason::Evicted);
                    self.close_at(old, peer, reason);
                }
                self.conns.insert(h, Peer { conn, last_seen: now });
                self.drive(h)
            }
            Err(e) => {
                if !e.response.is_empty() {
                    self.send_datagram(&e.response, from);
                }
                self.traffic.failed(Some(&e.error));
                self.events.push_back(ServerEvent::Refused(from, e.error));
                Ok(())
            }
        }
    }

    fn on_timers(&mut self, now: Instant) -> io::Result<()> {
        if let Some(idle) = self.idle_timeout {
            let silent: Vec<_> = self
                .conns
                .iter()
                .filter(|(_, p)| now.saturating_duration_since(p.last_seen) >= idle)
                .map(|(h, _)| *h)
                .collect();
            for h in silent {
                self.close(h, CloseReason::Idle(idle))?;
            }
        }
        let due: Vec<_> = self
            .conns
            .iter()
            .filter(|(_, p)| p.conn.poll_timeout().is_some_and(|t| t <= now))
            .map(|(h, _)| *h)
            .collect();
        for h in due {
            if let Some(p) = self.conns.get_mut(&h) {
                let _ = p.conn.handle_timeout(now);
            }
            self.drive(h)?;
        }
        Ok(())
    }

    /// Sends what a connection has to send, turns its events into server events, and forgets
    /// it once closed.
    fn drive(&mut self, h: ConnectionHandle) -> io::Result<()> {
        let Some(peer) = self.endpoint.remote(h) else { return Ok(()) };
        let Some(p) = self.conns.get_mut(&h) else { return Ok(()) };
        // What the endpoint must know first: connection IDs the peer asked for come from it
        // (routable to this connection) and go out below; a closed connection is forgotten
        // once its last datagrams are out.
        let mut closed = None;
        while let Some(ev) = p.conn.poll_endpoint_event() {
            if ev.is_closed() {
                closed = Some(ev);
                break;
            }
            if let Some(ids) = self.endpoint.handle_event(h, ev) {
                p.conn.handle_event(ids);
            }
        }
        while p.conn.poll_transmit(&mut self.tx).is_some() {
            // A challenge over the amplification limit is not sent at all (`None`).
            let Some(to) = self.endpoint.destination(h, self.tx.len(), &p.conn) else { continue };
            // A failure is that peer's concern alone (its address unreachable, say).
            match self.socket.send_to(&self.tx, to) {
                Ok(_) => self.traffic.sent(1, self.tx.len() as u64),
                Err(e) => tracing::debug!(%peer, error = %e, "sending a datagram failed"),
            }
        }
        while let Some(ev) = p.conn.poll_event() {
            if let Some(o) = &self.observer {
                o.see(&Observed::Event { peer, event: &ev });
            }
            match ev {
                Event::Connected => {
                    self.traffic.handshakes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.events.push_back(ServerEvent::Connected(peer));
                }
                Event::PathValidationFailed => {
                    tracing::info!(%peer, "a new address of the peer did not answer its return routability check");
                }
                Event::Closed(e) => {
                    if p.conn.handshake_state() != rdtls_proto::HandshakeState::Complete {
                        self.traffic.failed(Some(&e));
                    }
                    self.events.push_back(ServerEvent::Closed(peer, Some(e)));
                }
                _ => {}
            }
        }
        // A closed connection tells the endpoint, which forgets it; so do we.
        if let Some(ev) = closed.or_else(|| p.conn.poll_endpoint_event().filter(EndpointEvent::is_closed)) {
            let _ = self.endpoint.handle_event(h, ev);
            self.conns.remove(&h);
        }
        Ok(())
    }
}
