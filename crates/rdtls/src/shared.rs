//! The state of one association that its connection handle and its listener share: the
//! protocol core, the socket, the inbox the listener fills, activity times and counters.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdtls_proto::{Connection as Proto, ConnectionHandle, EndpointEvent, Event, HandshakeState};

use crate::lock;
use crate::observe::{Observed, Observer};
use crate::udp::{Fd, Socket};

/// Most decrypted messages held when one datagram carried several.
pub(crate) const MAX_QUEUED: usize = 64;

/// ICMP port-unreachable reports after which a handshake gives up: the peer's host says nothing
/// listens there, and a second report confirms the first was not a stray.
const REFUSALS_BEFORE_FAILING: u32 = 2;

/// State shared between a [`Connection`] and the listener that accepted it.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) proto: Mutex<Proto>,
    /// The peer's address when the connection was made (see [`peer`](Self::peer)).
    peer: SocketAddr,
    /// The connection left its own socket for the listener's, after its peer moved (a NAT
    /// rebinding; Connection ID tells): it sends by `route` and receives through the inbox.
    pub(crate) moved: AtomicBool,
    /// Boxed: most connections never move, and this state is per connection.
    route: Mutex<Option<Box<Route>>>,
    pub(crate) socket: Arc<Socket>,
    /// The local address the peer reached us on, when the socket is bound to a wildcard
    /// address: our datagrams go out from it, or the peer would not take them.
    pub(crate) local_ip: Option<IpAddr>,
    /// How long a send waits for room in the send buffer (`None`: as long as it takes).
    /// In nanoseconds; `u64::MAX`: none.
    write_timeout: AtomicU64,
    /// Watches the connection (datagrams as they arrive, events, handshake progress).
    pub(crate) observer: Option<Observer>,
    /// Client: where its new session goes, and under which server name.
    pub(crate) session_store: Option<Box<SessionKeeping>>,
    /// The listener's traffic counters, for an accepted connection.
    pub(crate) traffic: Option<Arc<Traffic>>,
    /// An accepted connection's handle in its listener's endpoint, to which it passes what the
    /// endpoint must know ([`Traffic::endpoint_events`]).
    pub(crate) handle: Option<ConnectionHandle>,
    /// Whether `socket` is connected to the peer (else `send_to`).
    pub(crate) connected: bool,
    /// Datagrams the listener received for this peer (shared-socket mode).
    pub(crate) inbox: Mutex<Inbox>,
    pub(crate) ready: Condvar,
    /// Wakes an async receiver (one permit is kept if nobody waits).
    #[cfg(feature = "tokio")]
    pub(crate) ready_async: tokio::sync::Notify,
    pub(crate) closed: AtomicBool,
    /// Milliseconds since `epoch` of the last datagram received or sent.
    pub(crate) last_activity: AtomicU64,
    /// Milliseconds since `epoch` of the last datagram received (what tells a vanished peer:
    /// our own sends to it do not).
    pub(crate) last_heard: AtomicU64,
    /// ICMP port-unreachable reports (`ECONNREFUSED`) seen on a connected socket.
    pub(crate) refusals: AtomicU32,
    /// Protocol datagrams (handshake flights, alerts) are sent without waiting for room in the
    /// send buffer: the connection is served from async code, which must never block. A
    /// datagram that finds the buffer full is dropped, as the network could drop it; the
    /// protocol's timers recover a lost flight.
    pub(crate) no_wait: AtomicBool,
    pub(crate) epoch: Instant,
}

/// Traffic counters a listener shares with its connections: what went over the wire, and the
/// records of known peers the protocol dropped.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) datagrams_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) datagrams_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) dropped_replayed: AtomicU64,
    pub(crate) dropped_bad_auth: AtomicU64,
    pub(crate) dropped_malformed: AtomicU64,
    /// The listener's own: HelloVerifyRequests sent, datagrams of unknown peers dropped,
    /// handshakes completed, and failed by reason.
    pub(crate) cookies_sent: AtomicU64,
    pub(crate) dropped_unverified: AtomicU64,
    pub(crate) fragments_held: AtomicU64,
    pub(crate) handshakes: AtomicU64,
    pub(crate) failed_timeout: AtomicU64,
    pub(crate) failed_alert: AtomicU64,
    pub(crate) failed_verification: AtomicU64,
    pub(crate) failed_protocol: AtomicU64,
    /// What accepted connections tell the listener's endpoint (new connection IDs their peer
    /// asked for, their end), for the serving thread: the connections live on the
    /// application's threads.
    pub(crate) endpoint_events: Mutex<Vec<(ConnectionHandle, EndpointEvent)>>,
}

impl Traffic {
    pub(crate) fn received(&self, datagrams: u64, bytes: u64) {
        self.datagrams_in.fetch_add(datagrams, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn sent(&self, datagrams: u64, bytes: u64) {
        self.datagrams_out.fetch_add(datagrams, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts a handshake that failed with `error`, by reason.
    pub(crate) fn failed(&self, error: Option<&rdtls_proto::Error>) {
        use rdtls_proto::Error as E;
        let counter = match error {
            Some(E::HandshakeTimeout) => &self.failed_timeout,
            Some(E::AlertReceived(_)) => &self.failed_alert,
            Some(e) if e.is_authentication_failure() => &self.failed_verification,
            _ => &self.failed_protocol,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the records a connection dropped between two readings of its counters.
    pub(crate) fn dropped(&self, before: &rdtls_proto::Stats, after: &rdtls_proto::Stats) {
        let add = |c: &AtomicU64, a: u64, b: u64| {
            if b > a {
                c.fetch_add(b - a, Ordering::Relaxed);
            }
        };
        add(&self.dropped_replayed, before.dropped_replayed, after.dropped_replayed);
        add(&self.dropped_bad_auth, before.dropped_bad_auth, after.dropped_bad_auth);
        let malformed = |s: &rdtls_proto::Stats| s.dropped_malformed + s.dropped_epoch + s.dropped_unexpected;
        add(&self.dropped_malformed, malformed(before), malformed(after));
    }
}

/// Where a connection sends.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub(crate) socket: Arc<Socket>,
    pub(crate) peer: SocketAddr,
    /// `None`: the socket is connected to the peer.
    pub(crate) dest: Option<SocketAddr>,
    /// The local address to send from (a wildcard socket).
    pub(crate) local_ip: Option<IpAddr>,
}

#[derive(Debug, Default)]
pub(crate) struct Inbox {
    /// Application data the listener decrypted before the connection was handed over (DTLS
    /// 1.3: data that overtook the client's Finished, held until it came), oldest first: the
    /// connection's driver takes it when it is made.
    pub(crate) messages: VecDeque<Vec<u8>>,
    pub(crate) datagrams: VecDeque<Vec<u8>>,
    pub(crate) dropped: u64,
    pub(crate) capacity: usize,
    /// Buffers of processed datagrams, reused so the data path does not allocate.
    pub(crate) spare: Vec<Vec<u8>>,
    /// The listener stopped feeding this inbox (shut down, idle timeout).
    pub(crate) closed: Option<io::ErrorKind>,
}

impl Shared {
    pub(crate) fn new(proto: Proto, peer: SocketAddr, socket: Arc<Socket>, connected: bool, capacity: usize) -> Self {
        let epoch = Instant::now();
        Self {
            proto: Mutex::new(proto),
            peer,
            moved: AtomicBool::new(false),
            route: Mutex::new(None),
            socket,
            local_ip: None,
            write_timeout: AtomicU64::new(u64::MAX),
            observer: None,
            session_store: None,
            traffic: None,
            handle: None,
            connected,
            inbox: Mutex::new(Inbox { capacity, ..Inbox::default() }),
            ready: Condvar::new(),
            #[cfg(feature = "tokio")]
            ready_async: tokio::sync::Notify::new(),
            closed: AtomicBool::new(false),
            last_activity: AtomicU64::new(0),
            last_heard: AtomicU64::new(0),
            refusals: AtomicU32::new(0),
            no_wait: AtomicBool::new(false),
            epoch,
        }
    }

    pub(crate) fn touch(&self) {
        self.last_activity.store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// A datagram arrived from the peer.
    pub(crate) fn heard(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last_activity.store(now, Ordering::Relaxed);
        self.last_heard.store(now, Ordering::Relaxed);
    }

    /// Time since the last datagram either way.
    pub(crate) fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_activity.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    /// Time since the last datagram from the peer.
    pub(crate) fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_heard.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    /// Queues a datagram from the peer (listener side). Drops it when the inbox is full.
    pub(crate) fn deliver(&self, datagram: &[u8]) {
        let mut inbox = lock(&self.inbox);
        if inbox.datagrams.len() >= inbox.capacity {
            inbox.dropped += 1;
            return;
        }
        let mut buf = inbox.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(datagram);
        inbox.datagrams.push_back(buf);
        drop(inbox);
        self.heard();
        self.ready.notify_all();
        #[cfg(feature = "tokio")]
        self.ready_async.notify_one();
    }

    /// Handles, on the listener's thread, a datagram from the peer that holds only handshake
    /// records: the peer retransmitting its last flight because our final flight was lost.
    /// Answering it must not wait until the application reads; no application data can come
    /// out of such a datagram.
    pub(crate) fn handle_handshake(&self, datagram: &mut [u8], tx: &mut Vec<u8>) {
        self.heard();
        let mut proto = lock(&self.proto);
        // A fatal error closes the connection; the application sees it on its next call.
        let _ = proto.handle_datagram(Instant::now(), datagram);
        self.observe_progress(&proto);
        let _ = self.flush(&mut proto, tx);
    }

    /// Handles, on the listener's thread, a datagram its connection ID routed to this
    /// connection from `from`, which is not the peer's address: the peer may have moved (a NAT
    /// rebinding). Only the connection can tell, once the datagram is decrypted: it moves if the
    /// datagram carried its newest authenticated record (RFC 9146 §6), and `follow` (the
    /// listener's routing) agrees. Then it sends to `from` through the listener's `socket` and
    /// receives what the listener delivers. The messages go to the application through
    /// [`Inbox::messages`]. Returns whether the connection moved.
    pub(crate) fn handle_from_elsewhere(
        &self,
        datagram: &mut [u8],
        (socket, from, local_ip): (&Arc<Socket>, SocketAddr, Option<IpAddr>),
        tx: &mut Vec<u8>,
        follow: impl FnOnce(&mut Proto) -> (bool, Option<SocketAddr>),
    ) -> bool {
        let mut proto = lock(&self.proto);
        if let Some(o) = &self.observer {
            o.see(&Observed::Received { peer: from, datagram });
        }
        let before = self.traffic.as_ref().map(|_| proto.stats());
        let (mut moved, mut probing) = (false, None);
        if let Ok(received) = proto.handle_datagram(Instant::now(), datagram) {
            let mut inbox = lock(&self.inbox);
            for data in received.iter() {
                if inbox.messages.len() < MAX_QUEUED {
                    inbox.messages.push_back(data.to_vec());
                } else {
                    inbox.dropped += 1;
                }
            }
            drop(inbox);
            (moved, probing) = follow(&mut proto);
        }
        if let (Some(t), Some(before)) = (&self.traffic, before) {
            t.dropped(&before, &proto.stats());
        }
        if moved {
            self.heard();
            // Before anything is sent: answers go to the new address.
            self.move_to(socket.clone(), from, local_ip);
        } else {
            if probing == Some(from) {
                // A return routability check of `from` (RFC 9853): our challenge goes there,
                // alone; nothing else does until it is answered.
                while proto.poll_transmit(tx).is_some() {
                    let r = match proto.transmitted_path_challenge() {
                        true => self.send_via(socket, tx, Some(from), local_ip),
                        false => self.send_raw(tx),
                    };
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "a datagram was not sent");
                    }
                }
            }
            self.ready.notify_all();
            #[cfg(feature = "tokio")]
            self.ready_async.notify_one();
        }
        let _ = self.flush(&mut proto, tx);
        moved
    }

    /// Runs the protocol's timers if they are due (the final flight's hold), on the listener's
    /// thread, unless the application holds the connection at this moment.
    pub(crate) fn run_due_timers(&self, tx: &mut Vec<u8>) {
        let Ok(mut proto) = self.proto.try_lock() else { return };
        let now = Instant::now();
        if proto.poll_timeout().is_some_and(|t| t <= now) {
            let _ = proto.handle_timeout(now);
            let _ = self.flush(&mut proto, tx);
        }
    }

    /// Stops the inbox: the next receive fails with `kind` once queued datagrams are consumed.
    pub(crate) fn close_inbox(&self, kind: io::ErrorKind) {
        lock(&self.inbox).closed.get_or_insert(kind);
        self.ready.notify_all();
        #[cfg(feature = "tokio")]
        self.ready_async.notify_one();
    }

    /// How long a send waits for room in the send buffer (`None`: as long as it takes).
    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        match self.write_timeout.load(Ordering::Relaxed) {
            u64::MAX => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) {
        let n = timeout.map_or(u64::MAX, |t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX - 1));
        self.write_timeout.store(n, Ordering::Relaxed);
    }

    /// The peer's address: where it was when the connection was made, or where it moved to.
    pub(crate) fn peer(&self) -> SocketAddr {
        match self.moved_route() {
            Some(r) => r.peer,
            None => self.peer,
        }
    }

    /// Where the connection sends after it moved, if it did.
    pub(crate) fn moved_route(&self) -> Option<Route> {
        if !self.moved.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.route).as_deref().cloned()
    }

    /// Where the connection sends: the socket, the destination (`None`: the socket is connected
    /// to the peer) and the local address to send from.
    pub(crate) fn route(&self) -> Route {
        self.moved_route().unwrap_or_else(|| Route {
            socket: self.socket.clone(),
            peer: self.peer,
            dest: (!self.connected).then_some(self.peer),
            local_ip: self.local_ip,
        })
    }

    /// The peer now sends from `to` (a NAT rebinding, or a move between networks; Connection
    /// ID tells the listener): from now on the connection sends to it through the listener's
    /// `socket` (from `local_ip` on a wildcard socket) and receives what the listener delivers.
    /// A connection on a socket of its own falls back to the listener's: that socket is
    /// connected to the old address. A receive waiting on it is woken.
    pub(crate) fn move_to(&self, socket: Arc<Socket>, to: SocketAddr, local_ip: Option<IpAddr>) {
        *lock(&self.route) = Some(Box::new(Route { socket, peer: to, dest: Some(to), local_ip }));
        let first_move = !self.moved.swap(true, Ordering::AcqRel);
        let had_own = self.connected && first_move;
        if had_own {
            // Wakes a receive blocked on the old socket; its next step reads the inbox.
            if let Err(e) = socket2::SockRef::from(&**self.socket).shutdown(std::net::Shutdown::Read) {
                tracing::debug!(error = %e, "cannot wake the connection's reader");
            }
        }
        tracing::debug!(from = %self.peer, %to, "connection moved to a new peer address");
        self.ready.notify_all();
        #[cfg(feature = "tokio")]
        self.ready_async.notify_one();
    }

    /// Sends one datagram to the peer, waiting for room in the send buffer (up to the write
    /// timeout: `TimedOut`) unless [`no_wait`](Self::no_wait) (then `WouldBlock`).
    pub(crate) fn send_raw(&self, datagram: &[u8]) -> io::Result<()> {
        if let Some(r) = self.moved_route() {
            return self.send_via(&r.socket, datagram, r.dest, r.local_ip);
        }
        self.send_via(&self.socket, datagram, (!self.connected).then_some(self.peer), self.local_ip)
    }

    fn send_via(
        &self,
        socket: &Socket,
        datagram: &[u8],
        dest: Option<SocketAddr>,
        src: Option<IpAddr>,
    ) -> io::Result<()> {
        let mut deadline = None;
        loop {
            match socket.try_send(Fd::Own, datagram, dest, src) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !self.no_wait.load(Ordering::Relaxed) => {
                    let until = *deadline.get_or_insert_with(|| self.write_timeout().map(|t| Instant::now() + t));
                    if !socket.wait(false, until)? {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "send timed out"));
                    }
                }
                r => {
                    r?;
                    self.touch();
                    if let Some(t) = &self.traffic {
                        t.sent(1, datagram.len() as u64);
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Sends whatever the protocol has queued (handshake retransmissions, alerts).
    pub(crate) fn flush(&self, proto: &mut Proto, buf: &mut Vec<u8>) -> io::Result<()> {
        while proto.poll_transmit(buf).is_some() {
            match self.send_raw(buf) {
                Ok(()) => {}
                // An ICMP error for an earlier datagram; the datagram itself is gone.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => self.refused(),
                // No room, and no waiting (async): lost, as on the network.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.no_wait.load(Ordering::Relaxed) => {
                    tracing::debug!(peer = %self.peer(), "send buffer full: a protocol datagram was dropped");
                }
                Err(e) => return Err(e),
            }
        }
        if let (Some(h), Some(t)) = (self.handle, &self.traffic) {
            while let Some(ev) = proto.poll_endpoint_event() {
                lock(&t.endpoint_events).push((h, ev));
            }
        }
        while let Some(ev) = proto.poll_event() {
            if let Some(o) = &self.observer {
                o.see(&Observed::Event { peer: self.peer(), event: &ev });
            }
            if let Event::Closed(e) = &ev {
                tracing::debug!(peer = %self.peer(), error = %e, "connection closed");
                self.closed.store(true, Ordering::Relaxed);
            }
            if let Some(keeping) = &self.session_store {
                keeping.see(&ev, self.peer(), proto.session());
            }
        }
        Ok(())
    }

    /// Processes a datagram taken from the inbox, then keeps its buffer for reuse.
    pub(crate) fn process_queued(
        &self,
        mut datagram: Vec<u8>,
        buf: &mut [u8],
        queued: &mut VecDeque<Vec<u8>>,
        tx: &mut Vec<u8>,
    ) -> io::Result<Option<usize>> {
        // The listener showed its observer this datagram when it read it.
        let r = self.process_inner(&mut datagram, buf, queued, tx, false);
        let mut inbox = lock(&self.inbox);
        if inbox.spare.len() < inbox.capacity {
            inbox.spare.push(datagram);
        }
        r
    }

    /// Decrypts one datagram from the peer: the first message goes to `buf` (truncated to it),
    /// further ones to `queued` (bounded); whatever the protocol answers is sent.
    pub(crate) fn process(
        &self,
        datagram: &mut [u8],
        buf: &mut [u8],
        queued: &mut VecDeque<Vec<u8>>,
        tx: &mut Vec<u8>,
    ) -> io::Result<Option<usize>> {
        self.process_inner(datagram, buf, queued, tx, true)
    }

    fn process_inner(
        &self,
        datagram: &mut [u8],
        buf: &mut [u8],
        queued: &mut VecDeque<Vec<u8>>,
        tx: &mut Vec<u8>,
        observe: bool,
    ) -> io::Result<Option<usize>> {
        self.heard();
        let mut proto = lock(&self.proto);
        let mut first = None;
        if observe {
            self.observe_received(datagram);
        }
        let before = self.traffic.as_ref().map(|_| proto.stats());
        let result = match proto.handle_datagram(Instant::now(), datagram) {
            Ok(received) => {
                for data in received.iter() {
                    if first.is_none() && !buf.is_empty() {
                        let n = data.len().min(buf.len());
                        buf[..n].copy_from_slice(&data[..n]);
                        first = Some(n);
                    } else if queued.len() < MAX_QUEUED {
                        queued.push_back(data.to_vec());
                    }
                }
                Ok(first)
            }
            Err(e) => Err(e.into()),
        };
        self.observe_progress(&proto);
        if let (Some(t), Some(before)) = (&self.traffic, before) {
            t.dropped(&before, &proto.stats());
        }
        self.flush(&mut proto, tx)?;
        result
    }

    /// Sends what the client handshake has queued; `Ok(true)` once established. A paused peer
    /// verification is a failure here: a socket-level handshake has no one to ask.
    /// The peer's host said nothing listens on its port (ICMP port unreachable).
    pub(crate) fn refused(&self) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn handshake_progress(&self, tx: &mut Vec<u8>) -> io::Result<bool> {
        let mut proto = lock(&self.proto);
        self.flush(&mut proto, tx)?;
        // An ICMP report waits as the socket's pending error, which readiness-based receives
        // (tokio) do not see: read it here, once per step of the handshake.
        if self.connected && !proto.is_established() {
            if let Ok(Some(e)) = self.socket.take_error() {
                if e.kind() == io::ErrorKind::ConnectionRefused {
                    self.refused();
                }
            }
        }
        if !proto.is_established() && self.refusals.load(Ordering::Relaxed) >= REFUSALS_BEFORE_FAILING {
            // Fail fast rather than retransmit into a closed port until the handshake times
            // out; one report could be a stray ICMP message, two are the port's answer.
            let _ = proto.abort_handshake();
            self.closed.store(true, Ordering::Relaxed);
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("connection refused: nothing listens on {}", self.peer()),
            ));
        }
        if proto.handshake_state() == HandshakeState::PeerVerificationFailed {
            let errors = proto.peer_verification_errors().to_vec();
            let _ = proto.abort_handshake();
            self.flush(&mut proto, tx)?;
            return Err(rdtls_proto::Error::PeerVerification(errors).into());
        }
        if let Some(e) = proto.last_error() {
            return Err(e.clone().into());
        }
        Ok(proto.is_established())
    }

    /// Sends close_notify, once, and marks the connection closed.
    pub(crate) fn close(&self, tx: &mut Vec<u8>) -> io::Result<()> {
        let mut proto = lock(&self.proto);
        if !proto.is_closed() {
            proto.shutdown()?;
            self.flush(&mut proto, tx)?;
        }
        self.closed.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Sends close_notify (listener shutdown).
    pub(crate) fn shutdown(&self) {
        let mut proto = lock(&self.proto);
        if !proto.is_closed() {
            let _ = proto.shutdown();
            let mut buf = Vec::new();
            let _ = self.flush(&mut proto, &mut buf);
        }
        self.closed.store(true, Ordering::Relaxed);
        drop(proto);
        self.close_inbox(io::ErrorKind::ConnectionAborted);
    }
}

impl Shared {
    /// Shows the observer a datagram from the peer, before it is decrypted.
    pub(crate) fn observe_received(&self, datagram: &[u8]) {
        if let Some(o) = &self.observer {
            o.see(&Observed::Received { peer: self.peer(), datagram });
        }
    }

    /// Tells the observer the handshake goes on, after a datagram was handled.
    pub(crate) fn observe_progress(&self, proto: &Proto) {
        if let Some(o) = &self.observer {
            if proto.handshake_state() == HandshakeState::InProgress && !proto.is_closed() {
                o.see(&Observed::Handshaking { peer: self.peer() });
            }
        }
    }

    /// Blocks until the inbox holds a datagram or a message, the listener stops feeding it, or `until`
    /// passes (`None`: no limit). Takes nothing.
    pub(crate) fn wait_inbox(&self, until: Option<Instant>) {
        let mut inbox = lock(&self.inbox);
        while inbox.datagrams.is_empty() && inbox.messages.is_empty() && inbox.closed.is_none() {
            inbox = match until {
                None => self.ready.wait(inbox).unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return;
                    }
                    self.ready.wait_timeout(inbox, left).unwrap_or_else(std::sync::PoisonError::into_inner).0
                }
            };
        }
    }
}

/// A client's session store, the server name its sessions go under there, and whether the
/// handshake completed.
#[derive(Debug)]
pub(crate) struct SessionKeeping {
    pub(crate) store: Arc<rdtls_proto::resumption::SessionStore>,
    pub(crate) name: String,
    pub(crate) connected: AtomicBool,
}

impl SessionKeeping {
    /// Keeps a new session; forgets the stored one when the handshake that offered it fails,
    /// so that a session the server no longer takes is not offered again.
    fn see(&self, event: &Event, peer: SocketAddr, session: Option<&rdtls_proto::resumption::Session>) {
        match event {
            Event::Connected => self.connected.store(true, Ordering::Relaxed),
            Event::NewSession => {
                if let Some(session) = session {
                    self.store.insert(&self.name, peer, session.clone());
                }
            }
            Event::Closed(_) if !self.connected.load(Ordering::Relaxed) => self.store.remove(&self.name, peer),
            _ => {}
        }
    }
}
