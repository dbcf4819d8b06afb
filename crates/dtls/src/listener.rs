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

use crate::connection::{Connection, Shared};
use crate::options::{socket_info, SocketInfo, SocketOptions};
use crate::udp::{self, RecvBatch};
use crate::{is_timeout, lock, ReadTimeout, MAX_DATAGRAM};

/// How a [`Listener`] serves its peers.
#[derive(Clone, Debug)]
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
            connection_sockets: false,
        }
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
}

#[derive(Debug)]
struct State {
    backlog: VecDeque<Connection>,
    stats: ListenerStats,
    closed: bool,
}

#[derive(Debug)]
struct Inner {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    config: Arc<Config>,
    options: ListenerOptions,
    state: Mutex<State>,
    accepted: Condvar,
    #[cfg(feature = "tokio")]
    accepted_async: tokio::sync::Notify,
    stop: AtomicBool,
    driver_cookie_secret: Mutex<Option<[u8; 32]>>,
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
        Self::start(socket, config, options, None)
    }

    /// `workers` listeners on one address and port with `SO_REUSEPORT`: the kernel spreads
    /// clients across them by address, each has its own driver thread, and they share one
    /// cookie secret so a client may be verified by any of them.
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
        let mut secret = [0u8; 32];
        config.provider().fill_random(&mut secret).map_err(|e| io::Error::other(e.to_string()))?;
        let first = options.socket.bind(addr)?;
        let addr = first.local_addr()?;
        let mut out = vec![Self::start(first, config.clone(), options.clone(), Some(secret))?];
        for _ in 1..workers {
            let socket = options.socket.bind(addr)?;
            out.push(Self::start(socket, config.clone(), options.clone(), Some(secret))?);
        }
        Ok(out)
    }

    fn start(
        socket: UdpSocket,
        config: Arc<Config>,
        options: ListenerOptions,
        secret: Option<[u8; 32]>,
    ) -> io::Result<Self> {
        let local = socket.local_addr()?;
        let mut endpoint = Endpoint::new(config.clone(), Instant::now())?;
        // The listener enforces the connection cap itself, evicting half-open handshakes first.
        endpoint.set_max_connections(usize::MAX);
        if !local.ip().is_unspecified() {
            endpoint.set_local_ip(Some(local.ip()));
        }
        if let Some(s) = secret {
            endpoint.verifier_mut().set_secret(Instant::now(), s);
        }
        let inner = Arc::new(Inner {
            socket: Arc::new(socket),
            local,
            config,
            options,
            state: Mutex::new(State { backlog: VecDeque::new(), stats: ListenerStats::default(), closed: false }),
            accepted: Condvar::new(),
            #[cfg(feature = "tokio")]
            accepted_async: tokio::sync::Notify::new(),
            stop: AtomicBool::new(false),
            driver_cookie_secret: Mutex::new(secret),
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
        }
    }

    fn run(mut self) {
        let socket = self.inner.socket.clone();
        let mut read_timeout = ReadTimeout::default();
        // Every datagram already queued comes in with one system call; slots take any datagram
        // whole (their pages are only touched as far as datagrams fill them).
        let mut batch = RecvBatch::new(DRIVER_BATCH, MAX_DATAGRAM);
        while !self.inner.stop.load(Ordering::Relaxed) {
            let timer = self.handshaking.values().filter_map(|h| h.conn.poll_timeout()).min();
            let wait = timer
                .map_or(Duration::from_millis(50), |t| t.saturating_duration_since(Instant::now()))
                .clamp(Duration::from_millis(1), Duration::from_millis(50));
            let _ = read_timeout.arm(&socket, Some(Instant::now() + wait));
            match udp::recv_many(&socket, &mut batch) {
                Ok(_) => {
                    for (datagram, from) in batch.datagrams_mut() {
                        self.datagram(from, datagram);
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

    fn datagram(&mut self, from: SocketAddr, datagram: &mut [u8]) {
        let now = Instant::now();
        match self.endpoint.handle(now, from, datagram, &mut self.tx) {
            DatagramEvent::Respond => {
                let _ = self.inner.socket.send_to(&self.tx, from);
            }
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
                    // Full: the oldest half-open handshake makes room; established connections
                    // are never evicted for a newcomer.
                    let oldest = self.handshaking.iter().min_by_key(|(_, h)| h.started).map(|(h, _)| *h);
                    match oldest {
                        Some(h) => {
                            tracing::debug!("connection cap reached: evicting the oldest half-open handshake");
                            self.forget(h, io::ErrorKind::ConnectionAborted);
                            lock(&self.inner.state).stats.evicted += 1;
                        }
                        None => {
                            self.inner.refused.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
                if let Some(old) = incoming.replaces() {
                    // The client restarted: its old association ends.
                    self.forget(old, io::ErrorKind::ConnectionReset);
                }
                match self.endpoint.accept(incoming, now) {
                    Ok((h, conn)) => {
                        *self.per_ip.entry(ip).or_default() += 1;
                        self.handshaking.insert(h, Handshaking { conn, peer: from, started: now });
                        self.drive(h);
                    }
                    Err(e) => {
                        tracing::debug!(peer = %from, error = %e.error, "refused a client");
                        if !e.response.is_empty() {
                            let _ = self.inner.socket.send_to(&e.response, from);
                        }
                    }
                }
            }
            DatagramEvent::Connection(h) => {
                if let Some(hs) = self.handshaking.get_mut(&h) {
                    let _ = hs.conn.handle_datagram(now, datagram);
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
            while hs.conn.poll_transmit(&mut self.tx).is_some() {
                let _ = self.inner.socket.send_to(&self.tx, hs.peer);
            }
            while hs.conn.poll_event().is_some() {}
        }
        // A completed handshake's final flight is sent by `promote`, from the connection's own
        // socket when it gets one: the client can only answer after that socket exists.
        if closed {
            let hs = self.handshaking.remove(&h).expect("present");
            self.release_ip(hs.peer.ip());
            self.endpoint.remove(h);
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
            match self.connection_socket(hs.peer) {
                Ok(s) => (Arc::new(s), true),
                Err(e) => {
                    tracing::warn!(peer = %hs.peer, error = %e, "cannot create a per-connection socket");
                    (self.inner.socket.clone(), false)
                }
            }
        } else {
            (self.inner.socket.clone(), false)
        };
        let shared = Arc::new(Shared::new(hs.conn, hs.peer, socket, connected, o.inbox));
        shared.touch();
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

    fn connection_socket(&self, peer: SocketAddr) -> io::Result<UdpSocket> {
        let mut opts = self.inner.options.socket.clone();
        opts.reuse_port = true;
        let s = opts.bind(self.inner.local)?;
        s.connect(peer)?;
        Ok(s)
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
        for (_, mut hs) in self.handshaking.drain() {
            if hs.conn.shutdown().is_ok() {
                while hs.conn.poll_transmit(&mut self.tx).is_some() {
                    let _ = self.inner.socket.send_to(&self.tx, hs.peer);
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
        let _ = &self.inner.driver_cookie_secret;
    }
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
