//! The same API for async code, on tokio (feature `tokio`).
//!
//! [`Listener`] keeps its driver thread (cookie checks, handshakes and demultiplexing never
//! wait on the runtime); [`Listener::accept`] and [`Connection::recv`] are woken by it. A
//! [`Connection`] that owns its socket (a client, or a per-connection socket) reads it through
//! tokio's reactor.
//!
//! Batched I/O works as on the blocking [`crate::Connection`]:
//! [`set_batching`](Connection::set_batching), [`send_batch`](Connection::send_batch) and
//! [`recv_batch`](Connection::recv_batch), with `sendmmsg`/`recvmmsg` and UDP GSO/GRO
//! ([`crate::udp`]) on a socket of the connection's own. The system calls never wait: the
//! connection waits for tokio's readiness and tries again, so a batch never blocks the runtime.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use dtls::tokio::{Connection, Listener};
//! use dtls::udp::Batching;
//! use dtls::{Config, ListenerOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server_cfg = Arc::new(Config::builder().psk_server_key(b"secret".to_vec()).build()?);
//! let options = ListenerOptions::default().connection_sockets(true);
//! let listener = Listener::bind_with("127.0.0.1:0".parse()?, server_cfg, options)?;
//! let addr = listener.local_addr()?;
//! let client_cfg = Arc::new(Config::builder().psk("client1", b"secret".to_vec()).build()?);
//! let (client, server) = tokio::join!(Connection::connect(addr, client_cfg, None), listener.accept());
//! let (mut client, mut server) = (client?, server?);
//! client.set_batching(Batching::Offload);
//! server.set_batching(Batching::Offload);
//!
//! let payload = [7u8; 1_200];
//! assert_eq!(client.send_batch(&[&payload[..]; 32]).await?, 32);
//! let mut received = 0;
//! while received < 32 {
//!     // Everything already queued, decrypted in place: no copy per message.
//!     for message in server.recv_batch(Some(Duration::from_secs(10))).await? {
//!         assert_eq!(message, &payload[..]);
//!         received += 1;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use dtls_proto::pki::CertificateDer;
use dtls_proto::{CertifiedKey, CipherSuite, Config, Connection as Proto, Protocol};
use tokio::io::Interest;

use crate::batch::{nothing_received, Batcher, Messages};
use crate::connection::{Inbox, Shared};
use crate::listener::{ListenerOptions, ListenerStats};
use crate::options::{socket_info, SocketInfo, SocketOptions};
use crate::udp::{Batching, SocketRef};
use crate::{earliest, is_timeout, lock, with_rx};

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
    tx: Vec<u8>,
    queued: VecDeque<Vec<u8>>,
    last_error: Option<io::Error>,
    /// Handed over: dropping does not close.
    detached: bool,
    /// `send_batch` and `recv_batch`: policy, offloads, buffers.
    batch: Batcher,
}

impl Connection {
    fn from_blocking(conn: crate::Connection) -> io::Result<Self> {
        let (shared, own, batch) = conn.into_shared();
        let own = if own { Some(Self::register(&shared)?) } else { None };
        Ok(Self::new(shared, own, batch))
    }

    fn new(shared: Arc<Shared>, own: Option<tokio::net::UdpSocket>, batch: Batcher) -> Self {
        Self { shared, own, tx: Vec::new(), queued: VecDeque::new(), last_error: None, detached: false, batch }
    }

    /// A tokio handle on the connection's own socket (a duplicate descriptor).
    fn register(shared: &Shared) -> io::Result<tokio::net::UdpSocket> {
        let dup = shared.socket.try_clone()?;
        dup.set_nonblocking(true)?;
        tokio::net::UdpSocket::from_std(dup)
    }

    /// Connects to `server` and completes the handshake within `timeout` (default: the
    /// configuration's handshake timeout). A server certificate must be valid for `server`'s
    /// IP address; use [`connect_with_name`](Self::connect_with_name) for a host name. A port
    /// nothing listens on fails fast with `ConnectionRefused`, as the blocking `connect` does.
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
        let (socket, name) = crate::client_socket(server, server_name, options)?;
        let now = Instant::now();
        let deadline = now + timeout.unwrap_or_else(|| config.handshake_timeout());
        let proto = Proto::client_with_server_name(config, Some(crate::name_or_address(name, server)), now)?;
        let shared = Arc::new(Shared::new(proto, server, Arc::new(socket), true, 0));
        let own = Self::register(&shared)?;
        let mut c = Self::new(shared, Some(own), Batcher::default());
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
        // The next owner reads the socket with plain receives.
        self.batch.release_gro(&self.shared.socket)?;
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

    crate::getters::connection_getters!();

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

    // ===== batches =====

    /// Chooses how [`send_batch`](Self::send_batch) and [`recv_batch`](Self::recv_batch)
    /// batch datagrams (default [`Batching::Mmsg`]); see
    /// [`crate::Connection::set_batching`]. [`Batching::Offload`] probes UDP GSO and, on a
    /// socket of the connection's own, turns UDP GRO on; after that [`recv`](Self::recv) too
    /// splits what GRO coalesced.
    pub fn set_batching(&mut self, batching: Batching) {
        self.batch.set(batching, &self.shared.socket, self.own.is_some());
    }

    /// How datagrams are batched (see [`set_batching`](Self::set_batching)).
    pub fn batching(&self) -> Batching {
        self.batch.batching()
    }

    /// Sends each of `messages` as one protected datagram, many per system call, as
    /// [`crate::Connection::send_batch`] does: records are sealed back to back into one reused
    /// buffer, then sent up to 64 at a time with `sendmmsg`, or with one UDP GSO send per run
    /// of equal-size records ([`Batching::Offload`]), or one `send` each ([`Batching::Off`]).
    ///
    /// Returns how many messages were sent, in order: all of them, or fewer if an error
    /// stopped the batch after some went out (the error then shows on the next call), or the
    /// error if none did. A message that cannot be sent (larger than 16 KiB, connection
    /// closed) stops the batch the same way. When the socket's send buffer is full the
    /// records not sent yet wait for room, as they were sealed (each message is sealed once),
    /// without blocking the runtime.
    ///
    /// Not cancel-safe: if the future is dropped while it waits for room, the messages before
    /// that point were sent and the others never will be, and the caller cannot tell how many
    /// went out. Bound a whole exchange with a timeout rather than racing single sends.
    pub async fn send_batch(&mut self, messages: &[&[u8]]) -> io::Result<usize> {
        let r = self.send_batch_inner(messages).await;
        self.record(r)
    }

    async fn send_batch_inner(&mut self, messages: &[&[u8]]) -> io::Result<usize> {
        let mut sent = 0;
        for chunk in messages.chunks(crate::udp::MAX_BATCH) {
            let sealed = self.batch.seal(&self.shared, chunk);
            let count = self.batch.sealed();
            let n = match self.transmit().await {
                Ok(n) => n,
                Err(_) if sent > 0 => return Ok(sent),
                Err(e) => return Err(e),
            };
            sent += n;
            if n < count {
                return Ok(sent);
            }
            if let Err(e) = sealed {
                return if sent > 0 { Ok(sent) } else { Err(e.into()) };
            }
        }
        Ok(sent)
    }

    /// Sends the records [`Batcher::seal`] prepared; returns how many went out. On our own
    /// socket a send that would block waits for tokio's readiness and goes on with the records
    /// not sent yet; the listener's socket is written like [`send`](Self::send) does.
    async fn transmit(&mut self) -> io::Result<usize> {
        let count = self.batch.sealed();
        let dest = (!self.shared.connected).then_some(self.shared.peer);
        let batch = &mut self.batch;
        let sent = match &self.own {
            None => batch.transmit(SocketRef::Std(&self.shared.socket), dest, 0)?,
            Some(sock) => {
                let mut sent = 0;
                while sent < count {
                    let from = sent;
                    let attempt = || batch.transmit(SocketRef::Tokio(sock), dest, from);
                    match sock.async_io(Interest::WRITABLE, attempt).await {
                        Ok(0) => break,
                        Ok(n) => sent += n,
                        // An error after some records went out: the next call reports it.
                        Err(_) if sent > 0 => break,
                        Err(e) => return Err(e),
                    }
                }
                sent
            }
        };
        self.shared.touch();
        Ok(sent)
    }

    /// Receives every message that is ready, as [`crate::Connection::recv_batch`] does: waits
    /// at most `timeout` (`None`: forever) for the first, then takes every datagram already
    /// queued (up to 64 per system call, or 32 runs of coalesced datagrams with GRO; one
    /// datagram with [`Batching::Off`]), decrypts each in place and returns their messages in
    /// order, borrowed from the connection's receive buffers: nothing is copied. Messages that
    /// [`recv`](Self::recv) or [`pending`](Self::pending) already decrypted come first.
    ///
    /// The result holds at least one message; a timeout returns `ErrorKind::TimedOut` and
    /// loses nothing. Protocol timers, retransmission answers and alerts work as with `recv`.
    /// Cancel-safe: a receive dropped while it waits has taken nothing (datagrams are taken off
    /// the socket and decrypted in one step, without waiting in between).
    pub async fn recv_batch(&mut self, timeout: Option<Duration>) -> io::Result<Messages<'_>> {
        let r = self.recv_batch_inner(timeout).await;
        self.record(r)?;
        Ok(self.batch.messages())
    }

    async fn recv_batch_inner(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        self.batch.reset(&self.shared);
        // Messages `recv` already decrypted come first, without waiting.
        if self.batch.take_queued(&mut self.queued) {
            return Ok(());
        }
        loop {
            if self.is_closed() {
                return Err(self.closed_error());
            }
            if self.own.is_some() {
                self.batch_own(deadline).await?;
            } else if self.take_inbox(deadline).await? {
                self.batch.open_held(&self.shared, &mut self.tx, &mut self.last_error)?;
            }
            if self.batch.has_messages() {
                return Ok(());
            }
            // Nothing refers to what was taken: give the buffers back before going on.
            self.batch.reset(&self.shared);
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "receive timed out"));
            }
        }
    }

    /// One batched receive on our own socket (or a protocol timer).
    async fn batch_own(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        // Datagrams the listener still had queued for us when our own socket was made.
        let early = self.batch.take_inbox(&mut lock(&self.shared.inbox));
        if early {
            return self.batch.open_held(&self.shared, &mut self.tx, &mut self.last_error);
        }
        // Datagrams an earlier receive took in a batch and has not handed out yet come first.
        if !self.batch.has_pending() {
            match self.recv_own(deadline).await {
                Ok(true) => {}
                Ok(false) => return self.on_timer().map(drop),
                Err(e) if nothing_received(&e) => return self.on_timer().map(drop),
                Err(e) => return Err(e),
            }
        }
        self.batch.open_slots(&self.shared, &mut self.tx, &mut self.last_error)
    }

    /// One batched receive on our own socket into the batch's slots: waits for the socket to
    /// be readable until the protocol's next timer or `deadline`, then takes what is queued
    /// without waiting in the system call. `Ok(false)`: the time came first.
    async fn recv_own(&mut self, deadline: Option<Instant>) -> io::Result<bool> {
        let timer = lock(&self.shared.proto).poll_timeout();
        let left = earliest(timer, deadline).map(|t| t.saturating_duration_since(Instant::now()));
        let Some(sock) = &self.own else { return Ok(false) };
        let batch = &mut self.batch;
        let socket = SocketRef::Tokio(sock);
        let got = match left {
            // Due already: only what is there, even if tokio has not seen it arrive yet (the
            // system call does not wait).
            Some(left) if left.is_zero() => batch.recv(socket, false),
            None => sock.async_io(Interest::READABLE, || batch.recv(socket, false)).await,
            Some(left) => {
                let ready = sock.async_io(Interest::READABLE, || batch.recv(socket, false));
                match tokio::time::timeout(left, ready).await {
                    Ok(r) => r,
                    Err(_) => return Ok(false),
                }
            }
        };
        got.map(|_| true)
    }

    /// Moves up to 64 datagrams from the inbox to the batch, waiting until `deadline` for the
    /// first. Returns whether any came.
    async fn take_inbox(&mut self, deadline: Option<Instant>) -> io::Result<bool> {
        let batch = &mut self.batch;
        match wait_inbox(&self.shared, deadline, |inbox| batch.take_inbox(inbox).then_some(())).await {
            Ok(got) => Ok(got.is_some()),
            Err(kind) => Err(self.inbox_closed(kind)),
        }
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
        match wait_inbox(&self.shared, deadline, |inbox| inbox.datagrams.pop_front()).await {
            Ok(Some(d)) => self.shared.process_queued(d, buf, &mut self.queued, &mut self.tx),
            Ok(None) => Ok(None),
            Err(kind) => Err(self.inbox_closed(kind)),
        }
    }

    /// The error of a receive once the listener stopped feeding the inbox (`kind`).
    fn inbox_closed(&self, kind: io::ErrorKind) -> io::Error {
        if self.is_closed() {
            return self.closed_error();
        }
        io::Error::new(kind, "the listener stopped serving this connection")
    }

    async fn fill_own(&mut self, deadline: Option<Instant>, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // Datagrams an earlier batched receive took and has not handed out yet come first.
        if let Some(r) = self.batch.next_datagram(&self.shared, buf, &mut self.queued, &mut self.tx) {
            return r;
        }
        if self.batch.gro() {
            // GRO coalesces runs of datagrams: receive through the batch, which splits them.
            return match self.recv_own(deadline).await {
                Ok(true) => Ok(self
                    .batch
                    .next_datagram(&self.shared, buf, &mut self.queued, &mut self.tx)
                    .transpose()?
                    .flatten()),
                Ok(false) => self.on_timer(),
                Err(e) if nothing_received(&e) => {
                    if e.kind() == io::ErrorKind::ConnectionRefused {
                        self.shared.refused();
                    }
                    self.on_timer()
                }
                Err(e) => Err(e),
            };
        }
        let timer = lock(&self.shared.proto).poll_timeout();
        let wake = earliest(timer, deadline);
        let Some(sock) = &self.own else { return Ok(None) };
        // Wait for readiness without holding a buffer, then receive into the thread's receive
        // buffer and process the datagram before anything else can run on this thread.
        let ready = match wake {
            None => Some(sock.readable().await),
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Some(Ok(()))
                } else {
                    tokio::time::timeout(left, sock.readable()).await.ok()
                }
            }
        };
        let got = match ready {
            Some(Ok(())) => {
                let shared = &*self.shared;
                let (queued, tx) = (&mut self.queued, &mut self.tx);
                with_rx(|rx| {
                    let n = sock.try_recv(rx)?;
                    Ok(shared.process(&mut rx[..n], buf, queued, tx))
                })
            }
            Some(Err(e)) => Err(e),
            None => return self.on_timer(),
        };
        match got {
            Ok(r) => r,
            // Readiness that was not (another handle read it): wait again, unless due.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && wake.is_none_or(|t| Instant::now() < t) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                self.shared.refused();
                self.on_timer()
            }
            Err(e) if is_timeout(&e) => self.on_timer(),
            Err(e) => Err(e),
        }
    }

    fn on_timer(&mut self) -> io::Result<Option<usize>> {
        let mut proto = lock(&self.shared.proto);
        let r = proto.handle_timeout(Instant::now());
        self.shared.flush(&mut proto, &mut self.tx)?;
        r?;
        Ok(None)
    }
}

/// Waits until `take` gets something from the inbox, or until `deadline` (`Ok(None)`); fails
/// with the inbox's closing kind once the listener stopped feeding it and nothing is left.
async fn wait_inbox<T>(
    shared: &Shared,
    deadline: Option<Instant>,
    mut take: impl FnMut(&mut Inbox) -> Option<T>,
) -> Result<Option<T>, io::ErrorKind> {
    loop {
        let notified = shared.ready_async.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut inbox = lock(&shared.inbox);
            if let Some(got) = take(&mut inbox) {
                return Ok(Some(got));
            }
            if let Some(kind) = inbox.closed {
                return Err(kind);
            }
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
