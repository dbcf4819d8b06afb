//! A DTLS server socket: cookie verification, concurrent handshakes and demultiplexing on a
//! driver thread; established connections handed out by `accept`.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdtls_proto::{CertifiedKey, Config, RootStore};

use crate::connection::Connection;
use crate::lock;
use crate::options::{socket_info, SocketInfo, SocketOptions};
use crate::shared::Traffic;
use crate::udp::Socket;

mod half_open;
mod serving;
mod workers;
use serving::{new_endpoint, Serving};
use workers::{Mail, Workers};

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
    /// Most memory for fragmented ClientHellos of peers not verified yet, held until whole for
    /// the cookie check (a DTLS 1.3 ClientHello with a post-quantum key share is fragmented);
    /// per worker. Default 256 KiB
    /// ([`Endpoint::set_hello_pool_limit`](rdtls_proto::Endpoint::set_hello_pool_limit)).
    pub hello_pool_bytes: usize,
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
            stale_after: Some(rdtls_proto::DEFAULT_STALE_AFTER),
            cookie_secret: None,
            connection_sockets: false,
            hello_pool_bytes: rdtls_proto::hello_pool::DEFAULT_HELLO_POOL_BYTES,
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
            .field("hello_pool_bytes", &self.hello_pool_bytes)
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

    /// Caps the memory of fragmented ClientHellos held for the cookie check.
    pub fn hello_pool_bytes(mut self, bytes: usize) -> Self {
        self.hello_pool_bytes = bytes;
        self
    }

    /// Sets the accept backlog.
    pub fn backlog(mut self, backlog: usize) -> Self {
        self.backlog = backlog;
        self
    }
}

/// Counters of a listener (and of a [`Server`](crate::Server)): connections, handshakes by
/// outcome, cookies, what was dropped and why, and the traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerStats {
    /// Handshakes in progress.
    pub half_open: usize,
    /// Established connections the listener still routes to.
    pub established: usize,
    /// Verified ClientHellos dropped by a limit (half-open caps, a full listener).
    pub refused: usize,
    /// Handshakes that failed or timed out (the sum of the four reasons below).
    pub failed: usize,
    /// Half-open handshakes evicted to make room under the connection cap.
    pub evicted: usize,
    /// Established connections evicted as stale to make room under the connection cap.
    pub evicted_stale: usize,
    /// Times an established connection followed its peer to a new address (Connection ID:
    /// a NAT rebinding, a move between networks).
    pub moved: usize,
    /// Datagrams this worker read and handed to the worker their connection ID names
    /// ([`Listener::bind_workers`]: the kernel sent them here by the peer's new address).
    pub handed_off: usize,
    /// Handshakes completed.
    pub handshakes: u64,
    /// Handshakes that failed: the handshake timeout passed.
    pub failed_timeout: u64,
    /// Handshakes that failed: the peer sent a fatal alert.
    pub failed_alert: u64,
    /// Handshakes that failed: the peer did not authenticate (its certificate or PSK identity
    /// was refused, or its Finished did not verify or decrypt: a wrong key).
    pub failed_verification: u64,
    /// Handshakes that failed: the peer broke the protocol or had nothing in common with us.
    pub failed_protocol: u64,
    /// HelloVerifyRequests sent (cookies asked for).
    pub cookies_sent: u64,
    /// Datagrams from unknown peers dropped before any state: garbage, bad or stale cookies.
    pub dropped_unverified: u64,
    /// Fragments of unknown peers' ClientHellos held until the rest came (a DTLS 1.3
    /// ClientHello with a post-quantum key share is fragmented; its cookie is checked once it
    /// is whole, [`Endpoint::set_hello_pool_limit`](crate::proto::Endpoint::set_hello_pool_limit)).
    pub fragments_held: u64,
    /// Records of known peers dropped as replays.
    pub dropped_replayed: u64,
    /// Records of known peers dropped because they failed authentication.
    pub dropped_bad_auth: u64,
    /// Records of known peers dropped as malformed or unexpected.
    pub dropped_malformed: u64,
    /// Datagrams received (on the listening socket and the connections' own sockets).
    pub datagrams_in: u64,
    /// Bytes of those datagrams.
    pub bytes_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Bytes of those datagrams.
    pub bytes_out: u64,
}

impl ListenerStats {
    /// Copies the counters of `t` into `self`.
    pub(crate) fn with_traffic(mut self, t: &Traffic) -> Self {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        self.handshakes = get(&t.handshakes);
        self.failed_timeout = get(&t.failed_timeout);
        self.failed_alert = get(&t.failed_alert);
        self.failed_verification = get(&t.failed_verification);
        self.failed_protocol = get(&t.failed_protocol);
        self.cookies_sent = get(&t.cookies_sent);
        self.dropped_unverified = get(&t.dropped_unverified);
        self.fragments_held = get(&t.fragments_held);
        self.dropped_replayed = get(&t.dropped_replayed);
        self.dropped_bad_auth = get(&t.dropped_bad_auth);
        self.dropped_malformed = get(&t.dropped_malformed);
        self.datagrams_in = get(&t.datagrams_in);
        self.bytes_in = get(&t.bytes_in);
        self.datagrams_out = get(&t.datagrams_out);
        self.bytes_out = get(&t.bytes_out);
        self
    }
}

#[derive(Debug, Default)]
struct State {
    backlog: VecDeque<Connection>,
    stats: ListenerStats,
    closed: bool,
    /// Threads blocked in `accept`: the serving thread wakes them only when there are any
    /// (a condition variable's notify is a system call even when nobody waits).
    waiting: usize,
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
    /// Address changes for the serving thread to apply (see [`Listener::migrate`]).
    moves: Mutex<Vec<(SocketAddr, SocketAddr)>>,
    /// Counters the serving thread and the connections update.
    traffic: Arc<Traffic>,
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
    /// cookie seed (and, as every listener, the Unix time as the cookies' time base) so any of
    /// them verifies a cookie another issued, across every rotation.
    ///
    /// With connection IDs of 2 bytes or more ([`ConfigBuilder::connection_id`]), each worker's
    /// IDs carry its index in their first byte
    /// ([`ShardedIds`](rdtls_proto::cid::ShardedIds)): when a peer's address changes (a NAT
    /// rebinding) and the kernel sends its datagrams to another worker, that worker hands them
    /// to the connection's own, in-process, and the connection follows its peer. At most 256
    /// workers then.
    ///
    /// [`ConfigBuilder::connection_id`]: rdtls_proto::ConfigBuilder::connection_id
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
        // With connection IDs, each worker's IDs carry its index, and a datagram that reaches
        // another worker (its peer's address changed) is handed to it.
        let mut mail: Vec<Option<Mail>> = match config.connection_id_len() {
            Some(len) if len >= 2 => Workers::start(workers)?.into_iter().map(Some).collect(),
            _ => (0..workers).map(|_| None).collect(),
        };
        let first = options.socket.bind(addr)?;
        let addr = first.local_addr()?;
        let mut out = vec![Self::start(first, config.clone(), options.clone(), mail[0].take())?];
        for m in &mut mail[1..] {
            let socket = options.socket.bind(addr)?;
            out.push(Self::start(socket, config.clone(), options.clone(), m.take())?);
        }
        Ok(out)
    }

    fn start(socket: UdpSocket, config: Arc<Config>, options: ListenerOptions, mail: Option<Mail>) -> io::Result<Self> {
        let local = socket.local_addr()?;
        let mut endpoint = new_endpoint(&config, &options, local, Instant::now(), std::time::SystemTime::now())?;
        if let Some(m) = &mail {
            endpoint.set_connection_id_generator(Arc::new(rdtls_proto::cid::ShardedIds::new(m.shard)));
        }
        let inner = Arc::new(Inner {
            socket: Arc::new(Socket::new(socket)?),
            local,
            config,
            options,
            state: Mutex::new(State::default()),
            accepted: Condvar::new(),
            #[cfg(feature = "tokio")]
            accepted_async: tokio::sync::Notify::new(),
            stop: AtomicBool::new(false),
            moves: Mutex::new(Vec::new()),
            traffic: Arc::default(),
            refused: AtomicUsize::new(0),
        });
        let driver_inner = inner.clone();
        let driver = std::thread::Builder::new()
            .name(format!("dtls-listener-{local}"))
            .spawn(move || Serving::new(driver_inner, endpoint, mail).run())?;
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

    /// Established connections the listener serves (handshakes in progress not counted): a
    /// connection that follows its peer to a new address stays one.
    pub fn connection_count(&self) -> usize {
        lock(&self.inner.state).stats.established
    }

    /// Counters.
    pub fn stats(&self) -> ListenerStats {
        let mut s = lock(&self.inner.state).stats;
        s.refused = self.inner.refused.load(Ordering::Relaxed);
        s.with_traffic(&self.inner.traffic)
    }

    /// Adds a certificate for an SNI name while serving (EdgerOS `addcert`). The configuration
    /// must have a certificate store (any `certificate` or `cert_resolver`).
    pub fn add_certificate(&self, name: &str, key: CertifiedKey) -> io::Result<()> {
        self.resolver()?.add(name, key);
        Ok(())
    }

    /// Adds a certificate for an SNI name with the CA certificates that verify the clients
    /// asking for that name (EdgerOS `addcert` with `ca`), instead of the configuration's trust
    /// anchors.
    pub fn add_certificate_with_ca(&self, name: &str, key: CertifiedKey, ca: RootStore) -> io::Result<()> {
        self.resolver()?.add_with_client_roots(name, key, ca);
        Ok(())
    }

    fn resolver(&self) -> io::Result<&Arc<rdtls_proto::CertResolver>> {
        self.inner
            .config
            .cert_resolver()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the configuration has no certificate store"))
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
            let left = match deadline {
                None => None,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "no connection within the timeout"));
                    }
                    Some(left)
                }
            };
            state.waiting += 1;
            state = match left {
                None => self.inner.accepted.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(left) => {
                    self.inner.accepted.wait_timeout(state, left).unwrap_or_else(std::sync::PoisonError::into_inner).0
                }
            };
            state.waiting -= 1;
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

    /// Moves the connection with the peer at `from` to the peer's new address `to` (a NAT
    /// rebinding, a move between networks), on the serving thread: its datagrams are taken
    /// from `to` from then on, and it sends there; a connection on a socket of its own falls
    /// back to the listener's (its socket is connected to `from`). Only an authenticated
    /// record may tell that a peer moved (Connection ID, RFC 9146 §6): that is its caller.
    #[allow(dead_code)]
    pub(crate) fn migrate(&self, from: SocketAddr, to: SocketAddr) {
        lock(&self.inner.moves).push((from, to));
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

#[cfg(test)]
mod tests {
    use rdtls_proto::{Connection as Proto, DatagramEvent, Endpoint};

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
                // Each ClientHello is two datagrams (a hybrid key share): the last one completes it.
                let hello: Vec<Vec<u8>> = std::iter::from_fn(|| {
                    let mut d = Vec::new();
                    client.poll_transmit(&mut d).map(|_| d)
                })
                .collect();
                let verdicts: Vec<_> = hello.iter().map(|d| workers[issuer].handle(t, peer, d, &mut resp)).collect();
                assert!(matches!(verdicts.last(), Some(DatagramEvent::Respond)));
                client.handle_datagram(t, &mut resp).unwrap();
                let hello: Vec<Vec<u8>> = std::iter::from_fn(|| {
                    let mut d = Vec::new();
                    client.poll_transmit(&mut d).map(|_| d)
                })
                .collect();
                for (v, w) in workers.iter_mut().enumerate() {
                    let got: Vec<_> =
                        hello.iter().map(|d| w.handle(t + Duration::from_secs(2), peer, d, &mut resp)).collect();
                    assert!(
                        matches!(got.last(), Some(DatagramEvent::Incoming(_))),
                        "{step}: {v} refused {issuer}'s cookie"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod migration_tests {
    use std::net::UdpSocket;

    use rdtls_proto::Connection as Proto;

    use super::*;

    const T: Duration = Duration::from_secs(10);

    /// Sends what `client` has queued to `to` from `socket`.
    fn flush(client: &mut Proto, socket: &UdpSocket, to: SocketAddr) {
        let mut out = Vec::new();
        while client.poll_transmit(&mut out).is_some() {
            socket.send_to(&out, to).unwrap();
        }
    }

    /// Runs `client`'s handshake with the listener at `to` over `socket`.
    pub(crate) fn handshake(client: &mut Proto, socket: &UdpSocket, to: SocketAddr) {
        let deadline = Instant::now() + T;
        let mut buf = vec![0u8; 65_535];
        socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        while !client.is_established() {
            assert!(Instant::now() < deadline, "no handshake");
            flush(client, socket, to);
            match socket.recv(&mut buf) {
                Ok(n) => {
                    client.handle_datagram(Instant::now(), &mut buf[..n]).unwrap();
                }
                Err(_) => client.handle_timeout(Instant::now()).unwrap(),
            }
        }
        flush(client, socket, to);
    }

    /// Sends `message` from `socket` until its echo comes back there (the listener applies a
    /// move on its next round; until then, records from an unknown address are dropped).
    pub(crate) fn echo(client: &mut Proto, socket: &UdpSocket, to: SocketAddr, message: &[u8]) {
        let mut buf = vec![0u8; 65_535];
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        for _ in 0..100 {
            let mut record = Vec::new();
            client.send(message, &mut record).unwrap();
            socket.send_to(&record, to).unwrap();
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                assert_eq!(from, to, "the answer comes from the listener's address");
                let received = client.handle_datagram(Instant::now(), &mut buf[..n]).unwrap();
                if received.iter().any(|m| m == message) {
                    return;
                }
            }
        }
        panic!("no echo of {message:?}");
    }

    /// A peer whose address changes (a NAT rebinding) keeps its connection once the listener
    /// moves it: the application's blocking receive, waiting on a socket of its own connected
    /// to the old address, falls back to the listener's socket; replies go to the new address.
    #[test]
    fn a_connection_follows_its_peer_to_a_new_address() {
        for own_sockets in [true, false] {
            let server_cfg =
                Arc::new(Config::builder().psk_server_key(b"key".to_vec()).cookie_verification(false).build().unwrap());
            let options = ListenerOptions::default().connection_sockets(own_sockets);
            let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server_cfg, options).unwrap();
            let addr = listener.local_addr().unwrap();
            let client_cfg = Arc::new(Config::builder().psk("id", b"key".to_vec()).build().unwrap());
            let mut client = Proto::client(client_cfg, Instant::now()).unwrap();
            let before = UdpSocket::bind("127.0.0.1:0").unwrap();
            handshake(&mut client, &before, addr);
            let mut server = listener.accept_timeout(T).unwrap();
            let echo_thread = std::thread::spawn(move || {
                let mut buf = [0u8; 256];
                let mut peers = Vec::new();
                while let Ok(n) = server.recv(&mut buf, Some(T)) {
                    peers.push(server.peer_addr().unwrap());
                    server.send(&buf[..n]).unwrap();
                    if &buf[..n] == b"last" {
                        break;
                    }
                }
                peers
            });
            echo(&mut client, &before, addr, b"before the move");

            let after = UdpSocket::bind("127.0.0.1:0").unwrap();
            listener.migrate(before.local_addr().unwrap(), after.local_addr().unwrap());
            echo(&mut client, &after, addr, b"after the move");
            echo(&mut client, &after, addr, b"last");
            let peers = echo_thread.join().unwrap();
            assert_eq!(peers.first(), Some(&before.local_addr().unwrap()), "own sockets: {own_sockets}");
            assert_eq!(peers.last(), Some(&after.local_addr().unwrap()), "own sockets: {own_sockets}");
            // Nothing more reaches the old address.
            before.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            let mut buf = [0u8; 2048];
            let mut stray = 0;
            while before.recv(&mut buf).is_ok() {
                stray += 1;
            }
            assert!(stray <= 1, "own sockets: {own_sockets}: {stray} datagrams to the old address");
        }
    }
}
