//! The listener's thread: it owns the listening socket, answers unverified ClientHellos
//! statelessly, runs every handshake under the limits, hands established connections to
//! `accept`, delivers their datagrams, and runs their timers.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rdtls_proto::cid::{datagram_cid, shard_of};
use rdtls_proto::enums::ContentType;
use rdtls_proto::record::Records;
use rdtls_proto::{Config, Connection as Proto, ConnectionHandle, DatagramEvent, Endpoint, HandshakeState};

use super::half_open::{Ages, Deadlines};
use super::workers::Mail;
use super::{Inner, ListenerOptions};
use crate::connection::Connection;
use crate::observe::Observed;
use crate::shared::Shared;
use crate::udp::{Fd, RecvBatch, Socket};
use crate::{is_timeout, lock, MAX_DATAGRAM};

struct Handshaking {
    conn: Proto,
    /// Application data the handshake's last datagram brought (DTLS 1.3: data that overtook
    /// the client's Finished), for the application once the connection is accepted.
    early: Vec<Vec<u8>>,
    peer: SocketAddr,
    /// The local address the peer reached (a wildcard listener answers from it).
    local: Option<IpAddr>,
    started: Instant,
    /// The deadline queued for it in [`Serving::deadlines`].
    armed: Option<Instant>,
}

/// The thread that owns the listening socket: it serves handshakes, demultiplexes datagrams
/// and runs timers.
pub(super) struct Serving {
    inner: Arc<Inner>,
    endpoint: Endpoint,
    handshaking: HashMap<ConnectionHandle, Handshaking>,
    /// The half-open handshakes' timers, earliest first.
    deadlines: Deadlines,
    /// The half-open handshakes, oldest first (the first evicted when the listener is full).
    ages: Ages,
    per_ip: HashMap<IpAddr, usize>,
    established: HashMap<ConnectionHandle, Weak<Shared>>,
    tx: Vec<u8>,
    last_sweep: Instant,
    /// No established connection can be stale before then.
    no_stale_before: Option<Instant>,
    /// Connections with sockets of their own, promoted but not yet handed to `accept`: the
    /// listening socket is drained first, since what the peer sent before its connection's
    /// socket existed may still be queued there (DTLS 1.3 clients send right after their
    /// Finished). It then reaches the connection's inbox before the application can take the
    /// connection, or hand it over.
    held: Vec<Connection>,
    /// A worker of [`bind_workers`](super::Listener::bind_workers) that routes by connection
    /// ID: what the other workers hand to it, and where it hands theirs.
    mail: Option<Mail>,
    /// The length of our connection IDs, if they carry a shard (2 bytes or more).
    sharded_cid_len: Option<usize>,
    /// Connections queued for `accept` since its callers were last woken: they are woken once
    /// per pass over a batch of datagrams, not once per connection.
    unannounced: usize,
}

/// Datagrams the driver takes from its socket per system call (`recvmmsg`).
const DRIVER_BATCH: usize = 32;

impl Serving {
    pub(super) fn new(inner: Arc<Inner>, endpoint: Endpoint, mail: Option<Mail>) -> Self {
        let sharded_cid_len = inner.config.connection_id_len().filter(|&n| n >= 2);
        Self {
            inner,
            endpoint,
            handshaking: HashMap::new(),
            deadlines: Deadlines::default(),
            ages: Ages::default(),
            per_ip: HashMap::new(),
            established: HashMap::new(),
            tx: Vec::with_capacity(2048),
            last_sweep: Instant::now(),
            no_stale_before: None,
            held: Vec::new(),
            mail,
            sharded_cid_len,
            unannounced: 0,
        }
    }

    pub(super) fn run(mut self) {
        let socket = self.inner.socket.clone();
        // Every datagram already queued comes in with one system call; slots take any datagram
        // whole (their pages are only touched as far as datagrams fill them).
        let mut batch = RecvBatch::new(DRIVER_BATCH, MAX_DATAGRAM);
        while !self.inner.stop.load(Ordering::Relaxed) {
            let moves = std::mem::take(&mut *lock(&self.inner.moves));
            for (from, to) in moves {
                self.migrate(from, to, None);
            }
            let handshaking = &self.handshaking;
            let timer = self.deadlines.next(|h| handshaking.get(&h).and_then(|hs| hs.armed));
            let wait = timer
                .map_or(Duration::from_millis(50), |t| t.saturating_duration_since(Instant::now()))
                .clamp(Duration::from_millis(1), Duration::from_millis(50));
            self.serve_mail();
            self.announce();
            match self.receive(&socket, &mut batch, wait) {
                Ok(n) => {
                    let mut bytes = 0;
                    for (datagram, from, local) in batch.datagrams_mut() {
                        bytes += datagram.len() as u64;
                        self.datagram(from, local, datagram);
                    }
                    self.inner.traffic.received(n as u64, bytes);
                }
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, "listener receive failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            self.timers();
            self.endpoint_events();
            self.release_held(&mut batch);
            if self.last_sweep.elapsed() >= Duration::from_millis(200) {
                self.sweep();
            }
        }
        self.shutdown();
    }

    /// Applies what accepted connections told the endpoint: a closed one is forgotten; one
    /// whose peer asked for more connection IDs (DTLS 1.3) gets them, routed to it, and offers
    /// them to the peer.
    fn endpoint_events(&mut self) {
        let events = std::mem::take(&mut *lock(&self.inner.traffic.endpoint_events));
        if events.is_empty() {
            return;
        }
        for (h, ev) in events {
            let closed = ev.is_closed();
            let ids = self.endpoint.handle_event(h, ev);
            if closed {
                self.established.remove(&h);
                continue;
            }
            if let (Some(ids), Some(shared)) = (ids, self.established.get(&h).and_then(Weak::upgrade)) {
                let mut proto = lock(&shared.proto);
                proto.handle_event(ids);
                let _ = shared.flush(&mut proto, &mut self.tx);
            }
        }
        self.update_counts();
    }

    /// Receives every datagram queued on the socket, waiting up to `wait` for the first; a
    /// worker routing by connection ID also wakes when another worker hands it datagrams
    /// (`Ok(0)`: [`serve_mail`](Self::serve_mail) takes them next).
    fn receive(&self, socket: &Socket, batch: &mut RecvBatch, wait: Duration) -> io::Result<usize> {
        #[cfg(unix)]
        if let Some(mail) = &self.mail {
            match socket.try_recv(Fd::Own, batch, batch.slots()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return r,
            }
            if !socket.wait_readable_or(mail.fd(), Some(Instant::now() + wait))? {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "receive timed out"));
            }
            return match socket.try_recv(Fd::Own, batch, batch.slots()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                r => r,
            };
        }
        socket.recv_many(batch, Some(wait))
    }

    /// Serves the datagrams other workers handed to this one.
    fn serve_mail(&mut self) {
        let Some(mail) = self.mail.take() else { return };
        let mut handed = mail.take();
        for h in &mut handed {
            self.serve(h.from, h.local, &mut h.datagram);
        }
        mail.recycle(handed.into_iter().map(|h| h.datagram));
        self.mail = Some(mail);
    }

    /// Hands the held connections to `accept`, once what was queued on the listening socket
    /// before their sockets existed has been read (a few batches at most: a flood does not hold
    /// them back for long).
    fn release_held(&mut self, batch: &mut RecvBatch) {
        if self.held.is_empty() {
            return;
        }
        let socket = self.inner.socket.clone();
        for _ in 0..4 {
            let Ok(n) = socket.try_recv(Fd::Own, batch, batch.slots()) else { break };
            let mut bytes = 0;
            for (datagram, from, local) in batch.datagrams_mut() {
                bytes += datagram.len() as u64;
                self.datagram(from, local, datagram);
            }
            self.inner.traffic.received(n as u64, bytes);
            if n < batch.slots() {
                break;
            }
        }
        let held = core::mem::take(&mut self.held);
        self.unannounced += held.len();
        lock(&self.inner.state).backlog.extend(held);
    }

    /// Wakes the threads and tasks waiting in `accept` for the connections queued since the
    /// last call, if any are waiting.
    fn announce(&mut self) {
        let n = std::mem::take(&mut self.unannounced);
        if n == 0 {
            return;
        }
        let waiting = lock(&self.inner.state).waiting;
        match waiting {
            0 => {}
            1 => self.inner.accepted.notify_one(),
            _ if n == 1 => self.inner.accepted.notify_one(),
            _ => self.inner.accepted.notify_all(),
        }
        #[cfg(feature = "tokio")]
        self.inner.accepted_async.notify_waiters();
    }

    /// Moves the connection with the peer at `from` to `to` (reached on `local`): the endpoint
    /// routes `to` to it, and it sends there through the listening socket.
    fn migrate(&mut self, from: SocketAddr, to: SocketAddr, local: Option<IpAddr>) {
        let Some(h) = self.endpoint.connection_at(from) else { return };
        if let Err(e) = self.endpoint.migrate(h, to) {
            tracing::debug!(%from, %to, error = %e, "cannot move the connection");
            return;
        }
        let local = local.filter(|_| self.inner.local.ip().is_unspecified());
        if let Some(hs) = self.handshaking.get_mut(&h) {
            hs.peer = to;
            hs.local = local;
        } else if let Some(shared) = self.established.get(&h).and_then(Weak::upgrade) {
            shared.move_to(self.inner.socket.clone(), to, local);
        }
    }

    /// Sends a datagram from the listening socket, without waiting (a full send buffer loses it,
    /// as the network could), from `local` on a wildcard socket.
    fn send(&self, datagram: &[u8], to: SocketAddr, local: Option<IpAddr>) {
        let src = local.filter(|_| self.inner.local.ip().is_unspecified());
        match self.inner.socket.try_send(Fd::Own, datagram, Some(to), src) {
            Ok(()) => self.inner.traffic.sent(1, datagram.len() as u64),
            Err(e) => tracing::debug!(peer = %to, error = %e, "listener send failed"),
        }
    }

    fn datagram(&mut self, from: SocketAddr, local: Option<IpAddr>, datagram: &mut [u8]) {
        // The observer sees every datagram the listening socket reads, the unverified ones too.
        if let Some(o) = &self.inner.options.socket.observer {
            o.see(&Observed::Received { peer: from, datagram });
        }
        if let (Some(mail), Some(len)) = (&self.mail, self.sharded_cid_len) {
            let shard = datagram_cid(datagram, len).and_then(shard_of);
            if let Some(shard) = shard.filter(|&s| s != mail.shard) {
                // Another worker's connection, whose peer's new address the kernel sent here.
                if mail.workers.hand(shard, datagram, from, local) {
                    lock(&self.inner.state).stats.handed_off += 1;
                    return;
                }
            }
        }
        self.serve(from, local, datagram);
    }

    /// Serves a datagram this worker read, or another handed to it.
    fn serve(&mut self, from: SocketAddr, local: Option<IpAddr>, datagram: &mut [u8]) {
        let now = Instant::now();
        // A dual-stack socket reports an IPv4 client's address reached as IPv4-mapped; a
        // certificate names it as IPv4.
        let reached = local.map(|ip| ip.to_canonical());
        match self.endpoint.handle_at(now, from, reached, datagram, &mut self.tx) {
            DatagramEvent::Respond => {
                self.inner.traffic.cookies_sent.fetch_add(1, Ordering::Relaxed);
                self.send(&self.tx, from, local);
            }
            DatagramEvent::Drop => {
                self.inner.traffic.dropped_unverified.fetch_add(1, Ordering::Relaxed);
            }
            DatagramEvent::Held => {
                self.inner.traffic.fragments_held.fetch_add(1, Ordering::Relaxed);
            }
            DatagramEvent::Incoming(incoming) => {
                let ip = from.ip();
                let o = &self.inner.options;
                if self.handshaking.len() >= o.max_half_open
                    || self.per_ip.get(&ip).copied().unwrap_or(0) >= o.max_half_open_per_ip
                {
                    self.inner.refused.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                if incoming.replaces().is_none() && self.handshaking.len() + self.established.len() >= o.max_connections
                {
                    // Full: the oldest half-open handshake makes room, or else the established
                    // connection idle longest past the stale threshold.
                    let handshaking = &self.handshaking;
                    let oldest = self.ages.oldest(|h| handshaking.get(&h).map(|hs| hs.started));
                    if let Some(h) = oldest {
                        tracing::debug!("connection cap reached: evicting the oldest half-open handshake");
                        self.forget(h, io::ErrorKind::ConnectionAborted);
                        lock(&self.inner.state).stats.evicted += 1;
                    } else if let Some(h) = self.stale(now) {
                        tracing::debug!("connection cap reached: evicting the connection idle longest");
                        // Closed as an idle timeout closes (with a close_notify, in case the
                        // peer is still there), and its owner's next call reports it.
                        if let Some(s) = self.established.remove(&h).and_then(|w| w.upgrade()) {
                            s.shutdown();
                        }
                        self.endpoint.remove(h);
                        lock(&self.inner.state).stats.evicted_stale += 1;
                    } else {
                        self.inner.refused.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
                if let Some(old) = incoming.replaces() {
                    // The client restarted: its old association ends.
                    self.forget(old, io::ErrorKind::ConnectionReset);
                }
                match self.endpoint.accept(incoming, now) {
                    Ok((h, conn)) => {
                        *self.per_ip.entry(ip).or_default() += 1;
                        let hs = Handshaking { conn, early: Vec::new(), peer: from, local, started: now, armed: None };
                        self.handshaking.insert(h, hs);
                        self.ages.push(h, now);
                        self.drive(h);
                    }
                    Err(e) => {
                        tracing::debug!(peer = %from, error = %e.error, "refused a client");
                        if !e.response.is_empty() {
                            self.send(&e.response, from, local);
                        }
                        lock(&self.inner.state).stats.failed += 1;
                        self.inner.traffic.failed(Some(&e.error));
                    }
                }
            }
            DatagramEvent::Connection(h) => {
                if let Some(hs) = self.handshaking.get_mut(&h) {
                    let observer = self.inner.options.socket.observer.as_ref();
                    let before = hs.conn.stats();
                    if let Ok(received) = hs.conn.handle_datagram(now, datagram) {
                        hs.early.extend(received.iter().map(<[u8]>::to_vec));
                        // Routed by its connection ID from elsewhere: the peer moved.
                        if from != hs.peer && self.endpoint.follow(h, from, datagram.len(), &mut hs.conn, now) {
                            tracing::debug!(was = %hs.peer, now = %from, "a handshaking peer's address changed");
                            // The half-open count per IP moves with it.
                            let was = std::mem::replace(&mut hs.peer, from);
                            hs.local = local;
                            if was.ip() != from.ip() {
                                if let Some(n) = self.per_ip.get_mut(&was.ip()) {
                                    *n = n.saturating_sub(1);
                                    if *n == 0 {
                                        self.per_ip.remove(&was.ip());
                                    }
                                }
                                *self.per_ip.entry(from.ip()).or_default() += 1;
                            }
                        }
                    }
                    self.inner.traffic.dropped(&before, &hs.conn.stats());
                    if let Some(o) = observer.filter(|_| hs.conn.handshake_state() == HandshakeState::InProgress) {
                        o.see(&Observed::Handshaking { peer: from });
                    }
                    self.drive(h);
                } else if let Some(shared) = self.established.get(&h).and_then(Weak::upgrade) {
                    let was = self.endpoint.remote(h);
                    if was != Some(from) {
                        // Routed by its connection ID from another address: decrypted here,
                        // since only the connection can tell whether its peer moved.
                        let wildcard = self.inner.local.ip().is_unspecified();
                        let to = (&self.inner.socket, from, local.filter(|_| wildcard));
                        let endpoint = &mut self.endpoint;
                        let len = datagram.len();
                        let follow = |c: &mut Proto| (endpoint.follow(h, from, len, c, now), endpoint.probe_target(h));
                        if shared.handle_from_elsewhere(datagram, to, &mut self.tx, follow) {
                            if let (Some(o), Some(was)) = (&self.inner.options.socket.observer, was) {
                                o.see(&Observed::Moved { from: was, to: from });
                            }
                            let was = was.map_or_else(|| "?".to_owned(), |a| a.to_string());
                            tracing::info!(%was, now = %from, "a peer's address changed: its connection follows");
                            lock(&self.inner.state).stats.moved += 1;
                        }
                    } else if handshake_only(datagram) {
                        // Our final flight was lost: answer now, not when the application reads.
                        shared.handle_handshake(datagram, &mut self.tx);
                    } else {
                        shared.deliver(datagram);
                    }
                }
            }
        }
    }

    /// Runs the half-open handshakes' timers that are due, taking them from the deadline
    /// queue: no pass looks at a handshake whose timer is not due.
    fn timers(&mut self) {
        let now = Instant::now();
        // Each handshake at most once per pass, whatever its timer does.
        for _ in 0..self.handshaking.len() {
            let handshaking = &self.handshaking;
            let Some(h) = self.deadlines.pop_due(now, |h| handshaking.get(&h).and_then(|hs| hs.armed)) else { break };
            if let Some(hs) = self.handshaking.get_mut(&h) {
                // Taken from the queue: `drive` queues the next deadline.
                hs.armed = None;
                let _ = hs.conn.handle_timeout(now);
            }
            self.drive(h);
        }
        let handshaking = &self.handshaking;
        self.deadlines.compact(handshaking.len(), |h| handshaking.get(&h).and_then(|hs| hs.armed));
        self.ages.compact(handshaking.len(), |h| handshaking.get(&h).map(|hs| hs.started));
    }

    /// Sends a handshaking connection's datagrams; promotes it once established, forgets it
    /// once failed.
    fn drive(&mut self, h: ConnectionHandle) {
        let Some(hs) = self.handshaking.get_mut(&h) else { return };
        let state = hs.conn.handshake_state();
        let closed = hs.conn.is_closed();
        if state != HandshakeState::Complete || closed {
            let (peer, local) = (hs.peer, hs.local);
            while hs.conn.poll_transmit(&mut self.tx).is_some() {
                let src = local.filter(|_| self.inner.local.ip().is_unspecified());
                match self.inner.socket.try_send(Fd::Own, &self.tx, Some(peer), src) {
                    Ok(()) => self.inner.traffic.sent(1, self.tx.len() as u64),
                    Err(e) => tracing::debug!(%peer, error = %e, "listener send failed"),
                }
            }
            while let Some(event) = hs.conn.poll_event() {
                if let Some(o) = &self.inner.options.socket.observer {
                    o.see(&Observed::Event { peer, event: &event });
                }
            }
            let next = hs.conn.poll_timeout();
            if next != hs.armed {
                hs.armed = next;
                if let Some(at) = next {
                    self.deadlines.arm(h, at);
                }
            }
        }
        // A completed handshake's final flight is sent by `promote`, from the connection's own
        // socket when it gets one: the client can only answer after that socket exists.
        if closed {
            let mut hs = self.handshaking.remove(&h).expect("present");
            self.release_ip(hs.peer.ip());
            while let Some(ev) = hs.conn.poll_endpoint_event() {
                let _ = self.endpoint.handle_event(h, ev);
            }
            lock(&self.inner.state).stats.failed += 1;
            self.inner.traffic.failed(hs.conn.last_error());
            tracing::debug!(peer = %hs.peer, error = ?hs.conn.last_error(), "handshake failed");
        } else if state == HandshakeState::Complete {
            let hs = self.handshaking.remove(&h).expect("present");
            self.release_ip(hs.peer.ip());
            self.promote(h, hs);
        }
        self.update_counts();
    }

    fn release_ip(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    /// Hands an established connection to `accept`.
    fn promote(&mut self, h: ConnectionHandle, hs: Handshaking) {
        let o = &self.inner.options;
        let (socket, connected) = if o.connection_sockets {
            match self.connection_socket(hs.peer, hs.local) {
                Ok(s) => (Arc::new(s), true),
                Err(e) => {
                    tracing::warn!(peer = %hs.peer, error = %e, "cannot create a per-connection socket");
                    (self.inner.socket.clone(), false)
                }
            }
        } else {
            (self.inner.socket.clone(), false)
        };
        let mut shared = Shared::new(hs.conn, hs.peer, socket, connected, o.inbox);
        shared.inbox.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).messages = hs.early.into();
        shared.observer = o.socket.observer.clone();
        shared.traffic = Some(self.inner.traffic.clone());
        shared.handle = Some(h);
        self.inner.traffic.handshakes.fetch_add(1, Ordering::Relaxed);
        if !connected {
            shared.local_ip = hs.local.filter(|_| self.inner.local.ip().is_unspecified());
        }
        let shared = Arc::new(shared);
        shared.heard();
        {
            let mut proto = lock(&shared.proto);
            let _ = shared.flush(&mut proto, &mut self.tx);
        }
        let conn = Connection::from_shared(shared.clone(), connected);
        let mut state = lock(&self.inner.state);
        if state.backlog.len() + self.held.len() >= o.backlog {
            drop(state);
            // Nobody accepts fast enough: refuse politely.
            shared.shutdown();
            self.endpoint.remove(h);
            self.inner.refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.established.insert(h, Arc::downgrade(&shared));
        // Counters are right before anyone can accept the connection.
        state.stats.half_open = self.handshaking.len();
        state.stats.established = self.established.len();
        if connected {
            // Handed to `accept` once the listening socket is drained (`release_held`).
            drop(state);
            self.held.push(conn);
            return;
        }
        state.backlog.push_back(conn);
        drop(state);
        self.unannounced += 1;
    }

    /// A socket of the connection's own: on the listener's port, bound to the address the peer
    /// reached (so that what it sends comes from there), connected to the peer.
    fn connection_socket(&self, peer: SocketAddr, local: Option<IpAddr>) -> io::Result<Socket> {
        let mut opts = self.inner.options.socket.clone();
        opts.reuse_port = true;
        let mut at = self.inner.local;
        if let Some(ip) = local.filter(|_| at.ip().is_unspecified()) {
            at.set_ip(ip);
        }
        let s = opts.bind(at)?;
        s.connect(peer)?;
        Socket::new(s)
    }

    /// Ends a connection the endpoint routed to.
    fn forget(&mut self, h: ConnectionHandle, kind: io::ErrorKind) {
        if let Some(hs) = self.handshaking.remove(&h) {
            self.release_ip(hs.peer.ip());
        }
        if let Some(shared) = self.established.remove(&h).and_then(|w| w.upgrade()) {
            shared.closed.store(true, Ordering::Relaxed);
            shared.close_inbox(kind);
        }
        self.endpoint.remove(h);
    }

    /// The established connection idle longest, if that is past the stale threshold. A search
    /// that finds none notes when the first one can be, so a full listener does not scan its
    /// table for every verified ClientHello.
    fn stale(&mut self, now: Instant) -> Option<ConnectionHandle> {
        let threshold = self.inner.options.stale_after?;
        if self.no_stale_before.is_some_and(|t| now < t) {
            return None;
        }
        let (h, idle) = self
            .established
            .iter()
            .filter_map(|(h, w)| w.upgrade().map(|s| (*h, s.silent_for())))
            .max_by_key(|(_, idle)| *idle)?;
        if idle >= threshold {
            self.no_stale_before = None;
            return Some(h);
        }
        self.no_stale_before = Some(now + (threshold - idle));
        None
    }

    /// Forgets connections their owners dropped or closed, and closes idle ones.
    fn sweep(&mut self) {
        self.last_sweep = Instant::now();
        let idle = self.inner.options.idle_timeout;
        let mut gone = Vec::new();
        for (h, w) in &self.established {
            match w.upgrade() {
                None => gone.push((*h, None)),
                Some(s) if s.closed.load(Ordering::Relaxed) => gone.push((*h, None)),
                Some(s) if idle.is_some_and(|i| s.idle_for() >= i) => gone.push((*h, Some(s))),
                // Timers run even if the application never reads (the final flight is freed).
                Some(s) => s.run_due_timers(&mut self.tx),
            }
        }
        for (h, idle_conn) in gone {
            if let Some(s) = idle_conn {
                tracing::debug!(peer = %s.peer(), "closing an idle connection");
                s.shutdown();
            }
            self.established.remove(&h);
            self.endpoint.remove(h);
        }
        self.update_counts();
    }

    fn update_counts(&self) {
        let mut state = lock(&self.inner.state);
        state.stats.half_open = self.handshaking.len();
        state.stats.established = self.established.len();
    }

    fn shutdown(&mut self) {
        let mut tx = std::mem::take(&mut self.tx);
        for (_, mut hs) in std::mem::take(&mut self.handshaking) {
            if hs.conn.shutdown().is_ok() {
                while hs.conn.poll_transmit(&mut tx).is_some() {
                    self.send(&tx, hs.peer, hs.local);
                }
            }
        }
        for (_, w) in self.established.drain() {
            if let Some(s) = w.upgrade() {
                s.shutdown();
            }
        }
        let mut state = lock(&self.inner.state);
        for c in state.backlog.drain(..) {
            drop(c); // its Drop sends close_notify
        }
        state.closed = true;
        state.stats.half_open = 0;
        state.stats.established = 0;
        drop(state);
        self.inner.accepted.notify_all();
        #[cfg(feature = "tokio")]
        self.inner.accepted_async.notify_waiters();
    }
}

/// The endpoint of a listener bound to `local`, started at `now` when the system clock read
/// `wall`: cookies keyed by the options' seed (if any) over the Unix time, so listeners sharing
/// a seed verify each other's cookies.
pub(super) fn new_endpoint(
    config: &Arc<Config>,
    options: &ListenerOptions,
    local: SocketAddr,
    now: Instant,
    wall: std::time::SystemTime,
) -> io::Result<Endpoint> {
    let mut endpoint = Endpoint::new(config.clone(), now)?;
    // The listener enforces the connection cap itself: half-open handshakes are evicted first,
    // then stale connections by their own activity (which the endpoint does not see for
    // connections with their own sockets).
    endpoint.set_max_connections(usize::MAX);
    endpoint.set_stale_after(None);
    if !local.ip().is_unspecified() {
        endpoint.set_local_ip(Some(local.ip()));
    }
    let since_epoch = wall.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    endpoint.verifier_mut().set_time_base(now, since_epoch);
    if let Some(seed) = options.cookie_secret {
        endpoint.verifier_mut().set_secret(now, seed);
    }
    endpoint.set_hello_pool_limit(options.hello_pool_bytes);
    Ok(endpoint)
}

/// Whether a datagram holds handshake or ChangeCipherSpec records and nothing else.
pub(super) fn handshake_only(datagram: &[u8]) -> bool {
    let mut any = false;
    for (header, _) in Records::new(datagram) {
        if !matches!(header.content_type, ContentType::HANDSHAKE | ContentType::CHANGE_CIPHER_SPEC) {
            return false;
        }
        any = true;
    }
    any
}
