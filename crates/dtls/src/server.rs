//! A blocking, single-threaded DTLS server: one UDP socket, many peers.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dtls_proto::{Config, Connection, ConnectionHandle, DatagramEvent, Endpoint, Error, Event};

use crate::{earliest, is_timeout, ReadTimeout, MAX_DATAGRAM};

/// What happened on a [`Server`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A peer completed its handshake.
    Connected(SocketAddr),
    /// A peer sent a message.
    Message(SocketAddr, Vec<u8>),
    /// A peer's connection ended (`None`: closed by us).
    Closed(SocketAddr, Option<Error>),
}

/// A DTLS server on one UDP socket.
#[derive(Debug)]
pub struct Server {
    socket: UdpSocket,
    endpoint: Endpoint,
    conns: HashMap<ConnectionHandle, Connection>,
    events: VecDeque<ServerEvent>,
    rx: Vec<u8>,
    tx: Vec<u8>,
    read_timeout: ReadTimeout,
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
        })
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
        self.conns.get(&handle)
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
            let timers = self.conns.values().filter_map(Connection::poll_timeout).min();
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
        let Some(conn) = self.conns.get_mut(&handle) else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "no such peer"));
        };
        self.tx.clear();
        conn.send(data, &mut self.tx)?;
        self.socket.send_to(&self.tx, peer)?;
        Ok(data.len())
    }

    /// Sends close_notify to every peer and forgets them all.
    pub fn shutdown(&mut self) -> io::Result<()> {
        let handles: Vec<_> = self.conns.keys().copied().collect();
        for h in handles {
            if let Some(mut conn) = self.conns.remove(&h) {
                let _ = conn.shutdown();
                if let Some(peer) = self.endpoint.remote(h) {
                    while conn.poll_transmit(&mut self.tx).is_some() {
                        self.socket.send_to(&self.tx, peer)?;
                    }
                    self.events.push_back(ServerEvent::Closed(peer, None));
                }
                while let Some(ev) = conn.poll_endpoint_event() {
                    self.endpoint.handle_event(h, ev);
                }
            }
        }
        Ok(())
    }

    fn on_datagram(&mut self, now: Instant, from: SocketAddr, n: usize) -> io::Result<()> {
        match self.endpoint.handle(now, from, &self.rx[..n], &mut self.tx) {
            DatagramEvent::Respond => {
                self.socket.send_to(&self.tx, from)?;
            }
            DatagramEvent::Drop => {}
            DatagramEvent::Incoming(incoming) => {
                // A restarted client replaces its old association (RFC 6347 §4.2.8); when full,
                // the connection idle longest makes room. Both end when the newcomer is accepted.
                let ending: Vec<_> = [(incoming.replaces(), false), (incoming.evicts(), true)]
                    .into_iter()
                    .filter_map(|(h, notify)| h.map(|h| (h, notify)))
                    .filter_map(|(h, notify)| Some((h, self.endpoint.remote(h)?, notify)))
                    .collect();
                self.accept(now, from, incoming, &ending)?;
            }
            DatagramEvent::Connection(h) => {
                if let Some(conn) = self.conns.get_mut(&h) {
                    match conn.handle_datagram(now, &mut self.rx[..n]) {
                        Ok(received) => {
                            for data in received.iter() {
                                self.events.push_back(ServerEvent::Message(from, data.to_vec()));
                            }
                        }
                        Err(e) => tracing::debug!(peer = %from, error = %e, "connection failed"),
                    }
                }
                self.drive(h)?;
            }
        }
        Ok(())
    }

    /// Starts a connection for a verified newcomer; `ending` are the connections it ends (a
    /// restart's old association; a stale connection making room, whose peer is notified in
    /// case it is still there), reported as closed.
    fn accept(
        &mut self,
        now: Instant,
        from: SocketAddr,
        incoming: dtls_proto::Incoming,
        ending: &[(ConnectionHandle, SocketAddr, bool)],
    ) -> io::Result<()> {
        match self.endpoint.accept(incoming, now) {
            Ok((h, conn)) => {
                self.conns.insert(h, conn);
                for &(old, peer, notify) in ending {
                    if let Some(mut c) = self.conns.remove(&old) {
                        // Best effort: the peer has likely gone, its address may be unreachable.
                        if notify && c.shutdown().is_ok() {
                            while c.poll_transmit(&mut self.tx).is_some() {
                                if let Err(e) = self.socket.send_to(&self.tx, peer) {
                                    tracing::debug!(%peer, error = %e, "close_notify not sent");
                                }
                            }
                        }
                        self.events.push_back(ServerEvent::Closed(peer, None));
                    }
                }
                self.drive(h)
            }
            Err(e) => {
                tracing::debug!(peer = %from, error = %e.error, "refused a client");
                if !e.response.is_empty() {
                    self.socket.send_to(&e.response, from)?;
                }
                Ok(())
            }
        }
    }

    fn on_timers(&mut self, now: Instant) -> io::Result<()> {
        let due: Vec<_> =
            self.conns.iter().filter(|(_, c)| c.poll_timeout().is_some_and(|t| t <= now)).map(|(h, _)| *h).collect();
        for h in due {
            if let Some(conn) = self.conns.get_mut(&h) {
                let _ = conn.handle_timeout(now);
            }
            self.drive(h)?;
        }
        Ok(())
    }

    /// Sends what a connection has to send, turns its events into server events, and forgets
    /// it once closed.
    fn drive(&mut self, h: ConnectionHandle) -> io::Result<()> {
        let Some(peer) = self.endpoint.remote(h) else { return Ok(()) };
        let Some(conn) = self.conns.get_mut(&h) else { return Ok(()) };
        while conn.poll_transmit(&mut self.tx).is_some() {
            self.socket.send_to(&self.tx, peer)?;
        }
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::Connected => self.events.push_back(ServerEvent::Connected(peer)),
                Event::Closed(e) => self.events.push_back(ServerEvent::Closed(peer, Some(e))),
                _ => {}
            }
        }
        // A closed connection tells the endpoint, which forgets it; so do we.
        if let Some(ev) = conn.poll_endpoint_event() {
            self.endpoint.handle_event(h, ev);
            self.conns.remove(&h);
        }
        Ok(())
    }
}
