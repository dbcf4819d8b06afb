//! The same API for async code, on tokio (feature `tokio`).
//!
//! [`Listener`] keeps its driver thread (cookie checks, handshakes and demultiplexing never
//! wait on the runtime); [`Listener::accept`] and [`Connection::recv`] are woken by it. A
//! [`Connection`] that owns its socket (a client, or a per-connection socket) reads it through
//! tokio's reactor.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use dtls_proto::pki::{CertificateDer, ServerName};
use dtls_proto::{CertifiedKey, CipherSuite, Config, Connection as Proto, Protocol};

use crate::connection::Shared;
use crate::listener::{ListenerOptions, ListenerStats};
use crate::options::{socket_info, SocketInfo, SocketOptions};
use crate::{is_timeout, lock, MAX_DATAGRAM};

/// An async DTLS server socket. See [`crate::Listener`].
#[derive(Debug)]
pub struct Listener {
    inner: crate::Listener,
}

impl Listener {
    /// Binds `addr` with default options.
    pub fn bind(addr: SocketAddr, config: Arc<Config>) -> io::Result<Self> {
        Ok(Self { inner: crate::Listener::bind(addr, config)? })
    }

    /// Binds `addr` with `options`.
    pub fn bind_with(addr: SocketAddr, config: Arc<Config>, options: ListenerOptions) -> io::Result<Self> {
        Ok(Self { inner: crate::Listener::bind_with(addr, config, options)? })
    }

    /// `workers` listeners sharing one port with `SO_REUSEPORT` (see
    /// [`crate::Listener::bind_workers`]).
    pub fn bind_workers(
        addr: SocketAddr,
        config: Arc<Config>,
        options: ListenerOptions,
        workers: usize,
    ) -> io::Result<Vec<Self>> {
        Ok(crate::Listener::bind_workers(addr, config, options, workers)?
            .into_iter()
            .map(|inner| Self { inner })
            .collect())
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Counters.
    pub fn stats(&self) -> ListenerStats {
        self.inner.stats()
    }

    /// The listening socket's options.
    pub fn socket_info(&self) -> io::Result<SocketInfo> {
        self.inner.socket_info()
    }

    /// Adds an SNI certificate while serving (EdgerOS `addcert`).
    pub fn add_certificate(&self, name: &str, key: CertifiedKey) -> io::Result<()> {
        self.inner.add_certificate(name, key)
    }

    /// Waits for the next established connection. Cancel-safe: a connection is only taken
    /// when returned.
    pub async fn accept(&self) -> io::Result<Connection> {
        let conn = self.inner.accept_async().await?;
        Connection::from_blocking(conn)
    }

    /// Stops serving and sends close_notify to every peer.
    pub async fn shutdown(self) -> io::Result<()> {
        let mut inner = self.inner;
        tokio::task::spawn_blocking(move || inner.shutdown()).await.map_err(io::Error::other)?
    }
}

/// An async DTLS association. See [`crate::Connection`].
#[derive(Debug)]
pub struct Connection {
    shared: Arc<Shared>,
    /// Our own socket, registered with tokio (clients, per-connection sockets).
    own: Option<tokio::net::UdpSocket>,
    rx: Vec<u8>,
    tx: Vec<u8>,
    queued: VecDeque<Vec<u8>>,
    last_error: Option<io::Error>,
    /// Handed over: dropping does not close.
    detached: bool,
}

impl Connection {
    fn from_blocking(conn: crate::Connection) -> io::Result<Self> {
        // A blocking connection just accepted or resumed has not batched yet.
        let (shared, own, _batch) = conn.into_shared();
        let own = if own { Some(Self::register(&shared)?) } else { None };
        Ok(Self::new(shared, own))
    }

    fn new(shared: Arc<Shared>, own: Option<tokio::net::UdpSocket>) -> Self {
        Self {
            shared,
            own,
            rx: vec![0; MAX_DATAGRAM],
            tx: Vec::with_capacity(2048),
            queued: VecDeque::new(),
            last_error: None,
            detached: false,
        }
    }

    /// A tokio handle on the connection's own socket (a duplicate descriptor).
    fn register(shared: &Shared) -> io::Result<tokio::net::UdpSocket> {
        let dup = shared.socket.try_clone()?;
        dup.set_nonblocking(true)?;
        tokio::net::UdpSocket::from_std(dup)
    }

    /// Connects to `server` and completes the handshake within `timeout` (default: the
    /// configuration's handshake timeout).
    pub async fn connect(server: SocketAddr, config: Arc<Config>, timeout: Option<Duration>) -> io::Result<Self> {
        Self::connect_with(server, None, config, &SocketOptions::default(), timeout).await
    }

    /// Like [`connect`](Self::connect), checking the server's certificate against `server_name`.
    pub async fn connect_with_name(
        server: SocketAddr,
        server_name: &str,
        config: Arc<Config>,
        timeout: Option<Duration>,
    ) -> io::Result<Self> {
        Self::connect_with(server, Some(server_name), config, &SocketOptions::default(), timeout).await
    }

    /// Connects with socket options.
    pub async fn connect_with(
        server: SocketAddr,
        server_name: Option<&str>,
        config: Arc<Config>,
        options: &SocketOptions,
        timeout: Option<Duration>,
    ) -> io::Result<Self> {
        let local: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let socket = options.bind(local)?;
        socket.connect(server)?;
        let name = server_name
            .map(|n| {
                ServerName::try_from(n.to_owned())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid server name '{n}'")))
            })
            .transpose()?;
        let now = Instant::now();
        let deadline = now + timeout.unwrap_or_else(|| config.handshake_timeout());
        let proto = Proto::client_with_server_name(config, name, now)?;
        let shared = Arc::new(Shared::new(proto, server, Arc::new(socket), true, 0));
        let own = Self::register(&shared)?;
        let mut c = Self::new(shared, Some(own));
        loop {
            if c.shared.handshake_progress(&mut c.tx)? {
                break;
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "DTLS handshake timed out"));
            }
            c.fill_own(Some(deadline), &mut []).await?;
        }
        Ok(c)
    }

    // ===== hand-off =====

    /// Hands this connection to another task, thread or process (EdgerOS `flyAway`); see
    /// [`crate::Connection::fly_away`].
    #[cfg(unix)]
    pub fn fly_away(mut self) -> io::Result<(std::os::fd::OwnedFd, zeroize::Zeroizing<Vec<u8>>)> {
        if self.own.is_none() || !self.shared.connected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "only a connection with its own socket can be handed over (use per-connection sockets)",
            ));
        }
        let socket = self.shared.socket.try_clone()?;
        socket.set_nonblocking(false)?;
        let state = lock(&self.shared.proto).export_session()?;
        self.shared.closed.store(true, Ordering::Relaxed);
        self.detached = true;
        Ok((socket.into(), state))
    }

    /// Resumes a connection handed over with `fly_away` (EdgerOS `createByFd`).
    #[cfg(unix)]
    pub fn from_fd(fd: std::os::fd::OwnedFd, state: &[u8], config: Arc<Config>) -> io::Result<Self> {
        let blocking = crate::Connection::from_fd(fd, state, config)?;
        Self::from_blocking(blocking)
    }

    // ===== getters =====

    /// The protocol state, locked while the guard lives.
    pub fn connection(&self) -> MutexGuard<'_, Proto> {
        lock(&self.shared.proto)
    }

    /// The negotiated cipher suite.
    pub fn cipher_suite(&self) -> Option<&'static CipherSuite> {
        lock(&self.shared.proto).cipher_suite()
    }

    /// The negotiated protocol version.
    pub fn protocol(&self) -> Option<Protocol> {
        lock(&self.shared.proto).protocol()
    }

    /// The PSK identity the client used.
    pub fn psk_identity(&self) -> Option<Vec<u8>> {
        lock(&self.shared.proto).psk_identity().map(<[u8]>::to_vec)
    }

    /// The peer's certificate chain (empty for PSK).
    pub fn peer_certificates(&self) -> Vec<CertificateDer<'static>> {
        lock(&self.shared.proto).peer_certificates().to_vec()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.socket.local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.shared.peer)
    }

    /// The socket's options as the system reports them.
    pub fn socket_info(&self) -> io::Result<SocketInfo> {
        socket_info(&self.shared.socket)
    }

    /// Changes socket options (TTL, buffer sizes, device).
    pub fn set_socket_options(&self, options: &SocketOptions) -> io::Result<()> {
        options.apply(&self.shared.socket)
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed) || lock(&self.shared.proto).is_closed()
    }

    /// The last error, or the socket's pending error, and clears it.
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.last_error.take().or_else(|| self.shared.socket.take_error().ok().flatten())
    }

    // ===== data =====

    /// Sends `data` as one protected datagram.
    pub async fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        let r = self.send_inner(data).await;
        self.record(r)
    }

    async fn send_inner(&mut self, data: &[u8]) -> io::Result<usize> {
        {
            let mut proto = lock(&self.shared.proto);
            self.tx.clear();
            proto.send(data, &mut self.tx)?;
        }
        self.shared.touch();
        match &self.own {
            Some(s) => s.send(&self.tx).await?,
            None => match self.shared.socket.send_to(&self.tx, self.shared.peer) {
                Ok(n) => n,
                // The shared socket is blocking; a full send buffer is an error worth seeing.
                Err(e) => return Err(e),
            },
        };
        Ok(data.len())
    }

    /// Receives one whole message into `buf` (truncated if smaller).
    pub async fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.recv_until(buf, None).await;
        self.record(r)
    }

    /// Receives, waiting at most `timeout`: `TimedOut` otherwise, and nothing is lost.
    pub async fn recv_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let r = self.recv_until(buf, Some(Instant::now() + timeout)).await;
        self.record(r)
    }

    /// Bytes of the next message ready without waiting (EdgerOS `pending()`).
    pub async fn pending(&mut self) -> io::Result<usize> {
        if self.queued.is_empty() {
            let _ = self.fill(Some(Instant::now()), &mut []).await?;
        }
        Ok(self.queued.front().map_or(0, Vec::len))
    }

    /// Sends close_notify and closes the association.
    pub async fn close(&mut self) -> io::Result<()> {
        self.shared.close(&mut self.tx)
    }

    fn record<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            if e.kind() != io::ErrorKind::TimedOut {
                self.last_error = Some(io::Error::new(e.kind(), e.to_string()));
            }
        }
        r
    }

    fn closed_error(&self) -> io::Error {
        match lock(&self.shared.proto).last_error() {
            Some(e) => e.clone().into(),
            None => io::Error::new(io::ErrorKind::NotConnected, "the connection is closed"),
        }
    }

    async fn recv_until(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<usize> {
        loop {
            if let Some(msg) = self.queued.pop_front() {
                let n = msg.len().min(buf.len());
                buf[..n].copy_from_slice(&msg[..n]);
                return Ok(n);
            }
            if let Some(n) = self.fill(deadline, buf).await? {
                return Ok(n);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "receive timed out"));
            }
        }
    }

    async fn fill(&mut self, deadline: Option<Instant>, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        if self.own.is_some() {
            // Datagrams the listener still had queued for us when our own socket was made.
            let early = lock(&self.shared.inbox).datagrams.pop_front();
            if let Some(d) = early {
                return self.shared.process_queued(d, buf, &mut self.queued, &mut self.tx);
            }
            return self.fill_own(deadline, buf).await;
        }
        let shared = self.shared.clone();
        loop {
            let notified = shared.ready_async.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next = {
                let mut inbox = lock(&shared.inbox);
                match inbox.datagrams.pop_front() {
                    Some(d) => Some(Ok(d)),
                    None => inbox.closed.map(Err),
                }
            };
            match next {
                Some(Ok(d)) => return self.shared.process_queued(d, buf, &mut self.queued, &mut self.tx),
                Some(Err(kind)) => {
                    if self.is_closed() {
                        return Err(self.closed_error());
                    }
                    return Err(io::Error::new(kind, "the listener stopped serving this connection"));
                }
                None => {}
            }
            match deadline {
                None => notified.await,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                        return Ok(None);
                    }
                }
            }
        }
    }

    async fn fill_own(&mut self, deadline: Option<Instant>, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let timer = lock(&self.shared.proto).poll_timeout();
        let wake = crate::earliest(timer, deadline);
        let Some(sock) = &self.own else { return Ok(None) };
        let mut rx = std::mem::take(&mut self.rx);
        let got = match wake {
            None => Some(sock.recv(&mut rx).await),
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Some(sock.try_recv(&mut rx))
                } else {
                    tokio::time::timeout(left, sock.recv(&mut rx)).await.ok()
                }
            }
        };
        let result = match got {
            Some(Ok(n)) => self.process(&mut rx[..n], buf),
            Some(Err(e)) if is_timeout(&e) || e.kind() == io::ErrorKind::ConnectionRefused => self.on_timer(),
            Some(Err(e)) => Err(e),
            None => self.on_timer(),
        };
        self.rx = rx;
        result
    }

    fn on_timer(&mut self) -> io::Result<Option<usize>> {
        let mut proto = lock(&self.shared.proto);
        let r = proto.handle_timeout(Instant::now());
        self.shared.flush(&mut proto, &mut self.tx)?;
        r?;
        Ok(None)
    }

    fn process(&mut self, datagram: &mut [u8], buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.shared.process(datagram, buf, &mut self.queued, &mut self.tx)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        let mut proto = lock(&self.shared.proto);
        if !proto.is_closed() {
            let _ = proto.shutdown();
            let _ = self.shared.flush(&mut proto, &mut self.tx);
        }
        self.shared.closed.store(true, Ordering::Relaxed);
        drop(proto);
        self.shared.close_inbox(io::ErrorKind::NotConnected);
    }
}
