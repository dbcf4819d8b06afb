//! A DTLS server socket: cookie verification, concurrent handshakes and demultiplexing on a
//! driver thread; established connections handed out by `accept`.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dtls_proto::enums::ContentType;
use dtls_proto::record::Records;
use dtls_proto::{
    CertifiedKey, Config, Connection as Proto, ConnectionHandle, DatagramEvent, Endpoint, HandshakeState,
};

use crate::connection::Connection;
use crate::observe::Observed;
use crate::options::{socket_info, SocketInfo, SocketOptions};
use crate::shared::Shared;
use crate::udp::{Fd, RecvBatch, Socket};
use crate::{is_timeout, lock, MAX_DATAGRAM};

/// How a [`Listener`] serves its peers.
#[derive(Clone)]
#[non_exhaustive]
pub struct ListenerOptions {
    /// Options of the listening socket (and of per-connection sockets).
    pub socket: SocketOptions,
    /// Most connections (handshaking or established) at once.
    pub max_connections: usize,
    /// Most handshakes in progress at once (half-open connections).
    pub max_half_open: usize,
    /// Most handshakes in progress from one IP address.
    pub max_half_open_per_ip: usize,
    /// Established connections not yet accepted.
    pub backlog: usize,
    /// Datagrams queued per established connection before new ones are dropped.
    pub inbox: usize,
    /// Close connections idle for this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// When the connection cap is reached and no handshake is in progress to make room, a
    /// verified newcomer takes the place of the established connection whose peer has been
    /// silent longest (what we send does not count), once that is longer than this (default 30 minutes, what Eclipse
    /// Scandium uses; `None`: established connections are never evicted). Peers that vanish
    /// without a close_notify then cannot lock newcomers out for good.
    pub stale_after: Option<Duration>,
    /// The seed cookie keys are derived from. Servers given the same seed (the workers of one
    /// port, processes on several machines behind one address) verify each other's cookies;
    /// `None`: a random seed per listener (per group, for [`Listener::bind_workers`]).
    pub cookie_secret: Option<[u8; 32]>,
    /// Give each accepted connection its own UDP socket, bound to the listener's address and
    /// connected to the peer (EdgerOS `accept`). Needs `SO_REUSEPORT`, set automatically.
    pub connection_sockets: bool,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        Self {
            socket: SocketOptions::default(),
            max_connections: 10_000,
            max_half_open: 1_000,
            max_half_open_per_ip: 16,
            backlog: 128,
            inbox: 256,
            idle_timeout: None,
            stale_after: Some(dtls_proto::DEFAULT_STALE_AFTER),
            cookie_secret: None,
            connection_sockets: false,
        }
    }
}

impl std::fmt::Debug for ListenerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerOptions")
            .field("socket", &self.socket)
            .field("max_connections", &self.max_connections)
            .field("max_half_open", &self.max_half_open)
            .field("max_half_open_per_ip", &self.max_half_open_per_ip)
            .field("backlog", &self.backlog)
            .field("inbox", &self.inbox)
            .field("idle_timeout", &self.idle_timeout)
            .field("stale_after", &self.stale_after)
            // Anyone who reads it could make valid cookies.
            .field("cookie_secret", &self.cookie_secret.map(|_| "<redacted>"))
            .field("connection_sockets", &self.connection_sockets)
            .finish()
    }
}

impl ListenerOptions {
    /// Sets the socket options.
    pub fn socket(mut self, socket: SocketOptions) -> Self {
        self.socket = socket;
        self
    }

    /// Sets the connection limits.
    pub fn limits(mut self, max_connections: usize, max_half_open: usize, max_half_open_per_ip: usize) -> Self {
        self.max_connections = max_connections;
        self.max_half_open = max_half_open;
        self.max_half_open_per_ip = max_half_open_per_ip;
        self
    }

    /// Sets the idle timeout.
    pub fn idle_timeout(mut self, idle: Option<Duration>) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// Sets the idle time after which an established connection may be evicted for a
    /// newcomer when the listener is full (`None`: never).
    pub fn stale_after(mut self, idle: Option<Duration>) -> Self {
        self.stale_after = idle;
        self
    }

    /// Sets the seed cookie keys are derived from, shared by servers that must verify each
    /// other's cookies.
    pub fn cookie_secret(mut self, seed: [u8; 32]) -> Self {
        self.cookie_secret = Some(seed);
        self
    }

    /// Gives each accepted connection its own connected socket.
    pub fn connection_sockets(mut self, enabled: bool) -> Self {
        self.connection_sockets = enabled;
        self
    }

    /// Sets the accept backlog.
    pub fn backlog(mut self, backlog: usize) -> Self {
        self.backlog = backlog;
        self
    }
}

/// Counters of a listener.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerStats {
    /// Handshakes in progress.
    pub half_open: usize,
    /// Established connections the listener still routes to.
    pub established: usize,
    /// Handshakes refused by a limit.
    pub refused: usize,
    /// Handshakes that failed or timed out.
    pub failed: usize,
    /// Half-open handshakes evicted to make room under the connection cap.
    pub evicted: usize,
    /// Established connections evicted as stale to make room under the connection cap.
    pub evicted_stale: usize,
}

#[derive(Debug)]
struct State {
    backlog: VecDeque<Connection>,
    stats: ListenerStats,
    closed: bool,
}

#[derive(Debug)]
struct Inner {
    socket: Arc<Socket>,
    local: SocketAddr,
    config: Arc<Config>,
    options: ListenerOptions,
    state: Mutex<State>,
    accepted: Condvar,
    #[cfg(feature = "tokio")]
    accepted_async: tokio::sync::Notify,
    stop: AtomicBool,
    refused: AtomicUsize,
}

/// A DTLS server socket (EdgerOS `createServer`, Qt's server example).
///
/// A driver thread owns the socket: it answers unverified ClientHellos with stateless
/// HelloVerifyRequests, runs every handshake concurrently (a slow or stalled client delays
/// nobody), enforces the limits, and queues each established connection for
/// [`accept`](Self::accept). Accepted connections are `Send` and can be served from any thread.
///
/// The driver reads every queued datagram with one `recvmmsg`. For connections on its socket it
/// also answers a peer that retransmits its last flight (our final flight was lost) and runs
/// their timers, so a connection nobody has accepted or read yet still completes its
/// handshake and frees the state it no longer needs.
#[derive(Debug)]
pub struct Listener {
    inner: Arc<Inner>,
    driver: Option<JoinHandle<()>>,
}

impl Listener {
    /// Binds `addr` with default options.
    pub fn bind(addr: SocketAddr, config: Arc<Config>) -> io::Result<Self> {
        Self::bind_with(addr, config, ListenerOptions::default())
    }

    /// Binds `addr` with `options`.
    pub fn bind_with(addr: SocketAddr, config: Arc<Config>, mut options: ListenerOptions) -> io::Result<Self> {
        if options.connection_sockets {
            options.socket.reuse_port = true;
        }
        let socket = options.socket.bind(addr)?;
        Self::from_socket(socket, config, options)
    }

    /// Serves on a bound socket.
    pub fn from_socket(socket: UdpSocket, config: Arc<Config>, options: ListenerOptions) -> io::Result<Self> {
        Self::start(socket, config, options)
    }

    /// `workers` listeners on one address and port with `SO_REUSEPORT`: the kernel spreads
    /// clients across them by address, each has its own driver thread, and they share one
    /// cookie seed (and, as every listener, the Unix time as the cookies' time base) so any of
    /// them verifies a cookie another issued, across every rotation.
    pub fn bind_workers(
        addr: SocketAddr,
        config: Arc<Config>,
        mut options: ListenerOptions,
        workers: usize,
    ) -> io::Result<Vec<Self>> {
        if workers == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "at least one worker"));
        }
        options.socket.reuse_port = true;
        if options.cookie_secret.is_none() {
            let mut seed = [0u8; 32];
            config.provider().fill_random(&mut seed).map_err(|e| io::Error::other(e.to_string()))?;
            options.cookie_secret = Some(seed);
        }
        let first = options.socket.bind(addr)?;
        let addr = first.local_addr()?;
        let mut out = vec![Self::start(first, config.clone(), options.clone())?];
        for _ in 1..workers {
            let socket = options.socket.bind(addr)?;
            out.push(Self::start(socket, config.clone(), options.clone())?);
        }
        Ok(out)
    }

    fn start(socket: UdpSocket, config: Arc<Config>, options: ListenerOptions) -> io::Result<Self> {
        let local = socket.local_addr()?;
        let endpoint = new_endpoint(&config, &options, local, Instant::now(), std::time::SystemTime::now())?;
        let inner = Arc::new(Inner {
            socket: Arc::new(Socket::new(socket)?),
            local,
            config,
            options,
            state: Mutex::new(State { backlog: VecDeque::new(), stats: ListenerStats::default(), closed: false }),
            accepted: Condvar::new(),
            #[cfg(feature = "tokio")]
            accepted_async: tokio::sync::Notify::new(),
            stop: AtomicBool::new(false),
            refused: AtomicUsize::new(0),
        });
        let driver_inner = inner.clone();
        let driver = std::thread::Builder::new()
            .name(format!("dtls-listener-{local}"))
            .spawn(move || Driver::new(driver_inner, endpoint).run())?;
        Ok(Self { inner, driver: Some(driver) })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local)
    }

    /// The listening socket's options as the system reports them.
    pub fn socket_info(&self) -> io::Result<SocketInfo> {
        socket_info(&self.inner.socket)
    }

    /// Counters.
    pub fn stats(&self) -> ListenerStats {
        let mut s = lock(&self.inner.state).stats;
        s.refused = self.inner.refused.load(Ordering::Relaxed);
        s
    }

    /// Adds a certificate for an SNI name while serving (EdgerOS `addcert`). The configuration
    /// must have a certificate store (any `certificate` or `cert_resolver`).
    pub fn add_certificate(&self, name: &str, key: CertifiedKey) -> io::Result<()> {
        let resolver =
            self.inner.config.cert_resolver().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "the configuration has no certificate store")
            })?;
        resolver.add(name, key);
        Ok(())
    }

    /// Waits for the next established connection.
    pub fn accept(&self) -> io::Result<Connection> {
        self.accept_until(None)
    }

    /// Waits at most `timeout` for the next established connection (`TimedOut` otherwise).
    pub fn accept_timeout(&self, timeout: Duration) -> io::Result<Connection> {
        self.accept_until(Some(Instant::now() + timeout))
    }

    fn accept_until(&self, deadline: Option<Instant>) -> io::Result<Connection> {
        let mut state = lock(&self.inner.state);
        loop {
            if let Some(c) = state.backlog.pop_front() {
                return Ok(c);
            }
            if state.closed {
                return Err(io::Error::new(io::ErrorKind::NotConnected, "the listener is shut down"));
            }
            state = match deadline {
                None => self.inner.accepted.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "no connection within the timeout"));
                    }
                    self.inner.accepted.wait_timeout(state, left).unwrap_or_else(std::sync::PoisonError::into_inner).0
                }
            };
        }
    }

    /// Takes a queued connection without waiting (`Ok(None)`: none yet).
    pub fn try_accept(&self) -> io::Result<Option<Connection>> {
        let mut state = lock(&self.inner.state);
        match state.backlog.pop_front() {
            Some(c) => Ok(Some(c)),
            None if state.closed => Err(io::Error::new(io::ErrorKind::NotConnected, "the listener is shut down")),
            None => Ok(None),
        }
    }

    /// Waits (async) for the next established connection.
    #[cfg(feature = "tokio")]
    pub(crate) async fn accept_async(&self) -> io::Result<Connection> {
        loop {
            let notified = self.inner.accepted_async.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(c) = self.try_accept()? {
                return Ok(c);
            }
            notified.await;
        }
    }

    /// Stops serving: sends close_notify to every peer, handshaking or established (Qt's
    /// `shutdown()`), and wakes every waiting `accept` and `recv`.
    pub fn shutdown(&mut self) -> io::Result<()> {
        self.inner.stop.store(true, Ordering::Relaxed);
        if let Some(d) = self.driver.take() {
            d.join().map_err(|_| io::Error::other("the listener's driver thread panicked"))?;
        }
        Ok(())
    }
}

/// The listening socket (EdgerOS `sockFd`). The driver thread reads it: use it only to inspect
/// options, never to read.
#[cfg(unix)]
impl std::os::fd::AsFd for Listener {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.socket.as_fd()
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for Listener {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.inner.socket.as_raw_fd()
    }
}

impl Listener {
    /// Changes the listening socket's options (TTL, buffer sizes, device) while serving.
    pub fn set_socket_options(&self, options: &SocketOptions) -> io::Result<()> {
        options.apply(&self.inner.socket)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

struct Handshaking {
    conn: Proto,
    peer: SocketAddr,
    /// The local address the peer reached (a wildcard listener answers from it).
    local: Option<IpAddr>,
    started: Instant,
}

/// The thread that owns the listening socket.
struct Driver {
    inner: Arc<Inner>,
    endpoint: Endpoint,
    handshaking: HashMap<ConnectionHandle, Handshaking>,
    per_ip: HashMap<IpAddr, usize>,
    established: HashMap<ConnectionHandle, Weak<Shared>>,
    tx: Vec<u8>,
    last_sweep: Instant,
    /// No established connection can be stale before then.
    no_stale_before: Option<Instant>,
}

/// Datagrams the driver takes from its socket per system call (`recvmmsg`).
const DRIVER_BATCH: usize = 32;

impl Driver {
    fn new(inner: Arc<Inner>, endpoint: Endpoint) -> Self {
        Self {
            inner,
            endpoint,
            handshaking: HashMap::new(),
            per_ip: HashMap::new(),
            established: HashMap::new(),
            tx: Vec::with_capacity(2048),
            last_sweep: Instant::now(),
            no_stale_before: None,
        }
    }

    fn run(mut self) {
        let socket = self.inner.socket.clone();
        // Every datagram already queued comes in with one system call; slots take any datagram
        // whole (their pages are only touched as far as datagrams fill them).
        let mut batch = RecvBatch::new(DRIVER_BATCH, MAX_DATAGRAM);
        while !self.inner.stop.load(Ordering::Relaxed) {
            let timer = self.handshaking.values().filter_map(|h| h.conn.poll_timeout()).min();
            let wait = timer
                .map_or(Duration::from_millis(50), |t| t.saturating_duration_since(Instant::now()))
                .clamp(Duration::from_millis(1), Duration::from_millis(50));
            match socket.recv_many(&mut batch, Some(wait)) {
                Ok(_) => {
                    for (datagram, from, local) in batch.datagrams_mut() {
                        self.datagram(from, local, datagram);
                    }
                }
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, "listener receive failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            self.timers();
            if self.last_sweep.elapsed() >= Duration::from_millis(200) {
                self.sweep();
            }
        }
        self.shutdown();
    }

    /// Sends a datagram from the listening socket, without waiting (a full send buffer loses it,
    /// as the network could), from `local` on a wildcard socket.
    fn send(&self, datagram: &[u8], to: SocketAddr, local: Option<IpAddr>) {
        let src = local.filter(|_| self.inner.local.ip().is_unspecified());
        if let Err(e) = self.inner.socket.try_send(Fd::Own, datagram, Some(to), src) {
            tracing::debug!(peer = %to, error = %e, "listener send failed");
        }
    }

    fn datagram(&mut self, from: SocketAddr, local: Option<IpAddr>, datagram: &mut [u8]) {
        let now = Instant::now();
        // A dual-stack socket reports an IPv4 client's address reached as IPv4-mapped; a
        // certificate names it as IPv4.
        let reached = local.map(|ip| ip.to_canonical());
        match self.endpoint.handle_at(now, from, reached, datagram, &mut self.tx) {
            DatagramEvent::Respond => self.send(&self.tx, from, local),
            DatagramEvent::Drop => {}
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
                    let oldest = self.handshaking.iter().min_by_key(|(_, h)| h.started).map(|(h, _)| *h);
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
                        self.handshaking.insert(h, Handshaking { conn, peer: from, local, started: now });
                        self.drive(h);
                    }
                    Err(e) => {
                        tracing::debug!(peer = %from, error = %e.error, "refused a client");
                        if !e.response.is_empty() {
                            self.send(&e.response, from, local);
                        }
                    }
                }
            }
            DatagramEvent::Connection(h) => {
                if let Some(hs) = self.handshaking.get_mut(&h) {
                    let observer = self.inner.options.socket.observer.as_ref();
                    if let Some(o) = observer {
                        o.see(&Observed::Received { peer: from, datagram });
                    }
                    let _ = hs.conn.handle_datagram(now, datagram);
                    if let Some(o) = observer.filter(|_| hs.conn.handshake_state() == HandshakeState::InProgress) {
                        o.see(&Observed::Handshaking { peer: from });
                    }
                    self.drive(h);
                } else if let Some(shared) = self.established.get(&h).and_then(Weak::upgrade) {
                    if handshake_only(datagram) {
                        // Our final flight was lost: answer now, not when the application reads.
                        shared.handle_handshake(datagram, &mut self.tx);
                    } else {
                        shared.deliver(datagram);
                    }
                }
            }
        }
    }

    fn timers(&mut self) {
        let now = Instant::now();
        let due: Vec<_> = self
            .handshaking
            .iter()
            .filter(|(_, h)| h.conn.poll_timeout().is_some_and(|t| t <= now))
            .map(|(h, _)| *h)
            .collect();
        for h in due {
            if let Some(hs) = self.handshaking.get_mut(&h) {
                let _ = hs.conn.handle_timeout(now);
            }
            self.drive(h);
        }
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
                if let Err(e) = self.inner.socket.try_send(Fd::Own, &self.tx, Some(peer), src) {
                    tracing::debug!(%peer, error = %e, "listener send failed");
                }
            }
            while let Some(event) = hs.conn.poll_event() {
                if let Some(o) = &self.inner.options.socket.observer {
                    o.see(&Observed::Event { peer, event: &event });
                }
            }
        }
        // A completed handshake's final flight is sent by `promote`, from the connection's own
        // socket when it gets one: the client can only answer after that socket exists.
        if closed {
            let mut hs = self.handshaking.remove(&h).expect("present");
            self.release_ip(hs.peer.ip());
            while let Some(ev) = hs.conn.poll_endpoint_event() {
                self.endpoint.handle_event(h, ev);
            }
            lock(&self.inner.state).stats.failed += 1;
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
        shared.observer = o.socket.observer.clone();
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
        if state.backlog.len() >= o.backlog {
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
        state.backlog.push_back(conn);
        drop(state);
        self.inner.accepted.notify_one();
        #[cfg(feature = "tokio")]
        self.inner.accepted_async.notify_waiters();
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
                tracing::debug!(peer = %s.peer, "closing an idle connection");
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
fn new_endpoint(
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
    Ok(endpoint)
}

/// Whether a datagram holds handshake or ChangeCipherSpec records and nothing else.
fn handshake_only(datagram: &[u8]) -> bool {
    let mut any = false;
    for (header, _) in Records::new(datagram) {
        if !matches!(header.content_type, ContentType::HANDSHAKE | ContentType::CHANGE_CIPHER_SPEC) {
            return false;
        }
        any = true;
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Listeners sharing a cookie seed (the workers of `bind_workers`, or processes given the
    /// same `cookie_secret`) verify each other's cookies across rotations, even when started
    /// at different moments: their time base is the Unix time. Time is injected.
    #[test]
    fn workers_verify_each_others_cookies_across_rotations() {
        let config = Arc::new(Config::builder().psk_server_key(b"k".to_vec()).build().unwrap());
        let options = ListenerOptions::default().cookie_secret([9; 32]);
        let local: SocketAddr = "127.0.0.1:4433".parse().unwrap();
        let start = Instant::now();
        let wall = std::time::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        let mut workers: Vec<Endpoint> = (0..3u64)
            .map(|i| {
                let later = Duration::from_millis(1_700 * i);
                new_endpoint(&config, &options, local, start + later, wall + later).unwrap()
            })
            .collect();
        let client_cfg = Arc::new(Config::builder().psk("c", b"k".to_vec()).build().unwrap());
        let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let mut resp = Vec::new();
        // Every 100 s for 1,000 s: more than three rotation periods of 300 s.
        for step in 0..10u64 {
            let t = start + Duration::from_secs(10 + 100 * step);
            for issuer in 0..workers.len() {
                let mut client = Proto::client(client_cfg.clone(), t).unwrap();
                let mut hello = Vec::new();
                assert!(client.poll_transmit(&mut hello).is_some());
                assert!(matches!(workers[issuer].handle(t, peer, &hello, &mut resp), DatagramEvent::Respond));
                client.handle_datagram(t, &mut resp).unwrap();
                assert!(client.poll_transmit(&mut hello).is_some());
                for (v, w) in workers.iter_mut().enumerate() {
                    let got = w.handle(t + Duration::from_secs(2), peer, &hello, &mut resp);
                    assert!(matches!(got, DatagramEvent::Incoming(_)), "{step}: {v} refused {issuer}'s cookie");
                }
            }
        }
    }
}
