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
//! Nothing else does either: protocol datagrams (handshake flights, alerts, `close`) are sent
//! without waiting, and a send on the listener's shared socket that finds no room tries again
//! a moment later instead of blocking.
//!
//! The protocol side of a connection (what to take next, timers, refusals, closing) is the
//! same driver as under the blocking [`crate::Connection`]; only the waiting differs.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rdtls::tokio::{Connection, Listener};
//! use rdtls::udp::Batching;
//! use rdtls::{Config, ListenerOptions};
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

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use rdtls_proto::pki::CertificateDer;
use rdtls_proto::{CertifiedKey, CipherSuite, Config, Connection as Proto, Protocol};
use tokio::io::Interest;

use crate::batch::{Batcher, Messages};
use crate::driver::{drive, Driver, Source, Wait};
use crate::listener::{ListenerOptions, ListenerStats};
use crate::options::{socket_info, SocketInfo, SocketOptions};
use crate::shared::Shared;
use crate::udp::{Batching, Fd, Socket};
use crate::{lock, with_rx};

/// How long an async send on the listener's shared socket (which tokio does not watch) waits
/// before trying again when the send buffer is full.
const SHARED_SOCKET_RETRY: Duration = Duration::from_millis(1);

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

    /// Established connections the listener serves (see
    /// [`Listener::connection_count`](crate::Listener::connection_count)).
    pub fn connection_count(&self) -> usize {
        self.inner.connection_count()
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

    /// Adds an SNI certificate with its own CA for client certificates (EdgerOS `addcert` with
    /// `ca`); see [`crate::Listener::add_certificate_with_ca`].
    pub fn add_certificate_with_ca(&self, name: &str, key: CertifiedKey, ca: rdtls_proto::RootStore) -> io::Result<()> {
        self.inner.add_certificate_with_ca(name, key, ca)
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
    d: Driver,
    /// Our own socket, registered with tokio (clients, per-connection sockets).
    own: Option<tokio::net::UdpSocket>,
}

impl Connection {
    fn from_blocking(conn: crate::Connection) -> io::Result<Self> {
        Self::from_driver(conn.into_driver())
    }

    /// Serves `d` from async code: its protocol datagrams are sent without waiting, and its own
    /// socket, if it has one, is registered with tokio (a duplicate descriptor).
    fn from_driver(d: Driver) -> io::Result<Self> {
        d.shared.no_wait.store(true, Ordering::Relaxed);
        let own = if d.own {
            d.shared.socket.set_blocking(false)?;
            let dup = d.shared.socket.try_clone()?;
            Some(tokio::net::UdpSocket::from_std(dup)?)
        } else {
            None
        };
        Ok(Self { d, own })
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
        let (d, deadline) = Driver::client(socket, server, name, config, timeout, options.observer.clone())?;
        let mut c = Self::from_driver(d)?;
        drive!(c.d.handshake_step(deadline), |w| c.wait(w, &mut []).await.map(|_| None));
        Ok(c)
    }

    // ===== getters =====

    crate::getters::connection_getters!();

    // ===== data =====

    /// Sends `data` as one protected datagram.
    pub async fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        let r = self.send_inner(data).await;
        self.d.record(r)
    }

    async fn send_inner(&mut self, data: &[u8]) -> io::Result<usize> {
        self.d.seal_one(data)?;
        // A connection that moved off its own socket sends through the listener's.
        match self.own.as_ref().filter(|_| self.d.reads_own()) {
            Some(s) => {
                s.send(&self.d.tx).await?;
                self.d.shared.touch();
            }
            None => loop {
                match self.d.shared.send_raw(&self.d.tx) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => tokio::time::sleep(SHARED_SOCKET_RETRY).await,
                    r => break r?,
                }
            },
        }
        Ok(data.len())
    }

    /// Receives one whole message into `buf` (truncated if smaller).
    pub async fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.recv_until(buf, None).await;
        self.d.record(r)
    }

    /// Receives, waiting at most `timeout`: `TimedOut` otherwise, and nothing is lost.
    pub async fn recv_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let r = self.recv_until(buf, Some(Instant::now() + timeout)).await;
        self.d.record(r)
    }

    async fn recv_until(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<usize> {
        let mut waited = false;
        Ok(drive!(self.d.recv_step(buf, deadline, &mut waited), |w| self.wait(w, buf).await))
    }

    /// Bytes of the next message ready without waiting (EdgerOS `pending()`).
    pub async fn pending(&mut self) -> io::Result<usize> {
        let mut waited = false;
        Ok(drive!(self.d.pending_step(std::mem::replace(&mut waited, true)), |w| self
            .wait(w, &mut [])
            .await
            .map(|_| None)))
    }

    /// Sends close_notify and closes the association, without waiting for room in the send
    /// buffer (a close_notify that finds none is lost, as on the network).
    pub async fn close(&mut self) -> io::Result<()> {
        self.d.close()
    }

    // ===== batches =====

    /// Chooses how [`send_batch`](Self::send_batch) and [`recv_batch`](Self::recv_batch)
    /// batch datagrams (default [`Batching::Mmsg`]); see
    /// [`crate::Connection::set_batching`]. [`Batching::Offload`] probes UDP GSO and, on a
    /// socket of the connection's own, turns UDP GRO on; after that [`recv`](Self::recv) too
    /// splits what GRO coalesced.
    pub fn set_batching(&mut self, batching: Batching) {
        self.d.batch.set(batching, &self.d.shared.socket, self.own.is_some());
    }

    /// How datagrams are batched (see [`set_batching`](Self::set_batching)).
    pub fn batching(&self) -> Batching {
        self.d.batch.batching()
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
    /// If the future is dropped while it waits for room, the messages before that point were
    /// sent and the others never will be: [`last_batch_sent`](Self::last_batch_sent) tells how
    /// many went out.
    pub async fn send_batch(&mut self, messages: &[&[u8]]) -> io::Result<usize> {
        let r = self.send_batch_inner(messages).await;
        self.d.record(r)
    }

    async fn send_batch_inner(&mut self, messages: &[&[u8]]) -> io::Result<usize> {
        self.d.batch_sent = 0;
        for chunk in messages.chunks(crate::udp::MAX_BATCH) {
            let (count, sealing) = self.d.seal_chunk(chunk);
            let result = self.transmit(count).await;
            if let Some(total) = self.d.after_chunk(count, result, sealing)? {
                return Ok(total);
            }
        }
        Ok(self.d.batch_sent)
    }

    /// How many messages of the last [`send_batch`](Self::send_batch) went out: all it returned,
    /// or, when its future was dropped before it finished, those sent until then (in order, from
    /// the first; the rest never will be).
    pub fn last_batch_sent(&self) -> usize {
        self.d.batch_sent
    }

    /// Sends the `count` records [`Batcher::seal`] prepared, counting each in `batch_sent` as
    /// it goes out; returns how many went out. A send that would block waits, for tokio's
    /// readiness on our own socket, or a moment on the listener's, and goes on with the records
    /// not sent yet.
    async fn transmit(&mut self, count: usize) -> io::Result<usize> {
        let route = self.d.shared.route();
        // A connection that moved off its own socket sends through the listener's.
        let own = self.own.as_ref().filter(|_| self.d.reads_own());
        let mut sent = 0;
        while sent < count {
            let from = sent;
            let batch = &mut self.d.batch;
            let r = match own {
                Some(sock) => {
                    let attempt = || batch.transmit(&route.socket, Fd::Tokio(sock), route.dest, route.local_ip, from);
                    sock.async_io(Interest::WRITABLE, attempt).await
                }
                None => match batch.transmit(&route.socket, Fd::Own, route.dest, route.local_ip, from) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        tokio::time::sleep(SHARED_SOCKET_RETRY).await;
                        continue;
                    }
                    r => r,
                },
            };
            match r {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(t) = &self.d.shared.traffic {
                        t.sent(n as u64, self.d.batch.sealed_bytes(sent, n));
                    }
                    sent += n;
                    self.d.batch_sent += n;
                    self.d.shared.touch();
                }
                // An error after some records went out: the next call reports it.
                Err(_) if sent > 0 => break,
                Err(e) => return Err(e),
            }
        }
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
        self.d.record(r)?;
        Ok(self.d.batch.messages())
    }

    async fn recv_batch_inner(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        self.d.batch_start();
        let mut waited = false;
        drive!(self.d.recv_batch_step(deadline, &mut waited), |w| self.wait_batch(w).await);
        Ok(())
    }

    // ===== waiting =====

    /// Waits for what the driver needs: tokio's readiness of our own socket until `w.until`
    /// (then receives without waiting), or the inbox's notification; hands a datagram to the
    /// driver, the first message into `buf`.
    async fn wait(&mut self, w: Wait, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let Some(sock) = self.own.as_ref().filter(|_| w.source == Source::Socket) else {
            wait_inbox(&self.d.shared, w.until).await;
            return Ok(None);
        };
        if self.d.batch.gro() {
            // GRO coalesces runs of datagrams: receive through the batch, which splits them.
            return match recv_batch_until(&self.d.shared.socket, sock, &mut self.d.batch, w.until).await {
                Ok(true) => self.d.on_batch(buf),
                Ok(false) => self.d.on_nothing(None),
                Err(e) => self.d.on_nothing(Some(e)),
            };
        }
        // Wait for readiness without holding a buffer, then receive into the thread's receive
        // buffer and process the datagram before anything else can run on this thread.
        let ready = match w.until.map(|t| t.saturating_duration_since(Instant::now())) {
            None => Some(sock.readable().await),
            Some(left) if left.is_zero() => Some(Ok(())),
            Some(left) => tokio::time::timeout(left, sock.readable()).await.ok(),
        };
        let got = match ready {
            Some(Ok(())) => with_rx(|rx| sock.try_recv(rx).map(|n| self.d.on_datagram(&mut rx[..n], buf))),
            Some(Err(e)) => Err(e),
            None => return self.d.on_nothing(None),
        };
        match got {
            Ok(r) => r,
            // Readiness that was not (another handle read it): wait again, unless due.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && w.until.is_none_or(|t| Instant::now() < t) => Ok(None),
            Err(e) => self.d.on_nothing(Some(e)),
        }
    }

    /// Waits as [`wait`](Self::wait) does, receiving a batch on our own socket.
    async fn wait_batch(&mut self, w: Wait) -> io::Result<Option<()>> {
        let Some(sock) = self.own.as_ref().filter(|_| w.source == Source::Socket) else {
            wait_inbox(&self.d.shared, w.until).await;
            return Ok(None);
        };
        match recv_batch_until(&self.d.shared.socket, sock, &mut self.d.batch, w.until).await {
            Ok(true) => self.d.on_batch_received(),
            Ok(false) => self.d.on_nothing(None).map(|_| None),
            Err(e) => self.d.on_nothing(Some(e)).map(|_| None),
        }
    }
}

/// One batched receive on `sock` into the batch's slots: waits for the socket to be readable
/// until `until`, then takes what is queued without waiting in the system call. `Ok(false)`:
/// the time came first. Cancel-safe: datagrams are taken off the socket only by the system
/// call, after which nothing waits.
async fn recv_batch_until(
    socket: &Socket,
    sock: &tokio::net::UdpSocket,
    batch: &mut Batcher,
    until: Option<Instant>,
) -> io::Result<bool> {
    let fd = Fd::Tokio(sock);
    let got = match until.map(|t| t.saturating_duration_since(Instant::now())) {
        // Due already: only what is there, even if tokio has not seen it arrive yet (the
        // system call does not wait).
        Some(left) if left.is_zero() => batch.recv(socket, fd),
        None => sock.async_io(Interest::READABLE, || batch.recv(socket, fd)).await,
        Some(left) => {
            let ready = sock.async_io(Interest::READABLE, || batch.recv(socket, fd));
            match tokio::time::timeout(left, ready).await {
                Ok(r) => r,
                Err(_) => return Ok(false),
            }
        }
    };
    got.map(|_| true)
}

/// Waits until the inbox holds a datagram, the listener stops feeding it, or `until` passes
/// (`None`: no limit). Takes nothing.
async fn wait_inbox(shared: &Shared, until: Option<Instant>) {
    loop {
        let notified = shared.ready_async.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let inbox = lock(&shared.inbox);
            if !inbox.datagrams.is_empty() || !inbox.messages.is_empty() || inbox.closed.is_some() {
                return;
            }
        }
        match until {
            None => notified.await,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A client and a server core, handshaken in memory.
    fn established() -> (Proto, Proto) {
        let now = Instant::now();
        let client_cfg = Arc::new(Config::builder().psk("id", b"key".to_vec()).build().unwrap());
        let server_cfg =
            Arc::new(Config::builder().psk_server_key(b"key".to_vec()).cookie_verification(false).build().unwrap());
        let mut client = Proto::client(client_cfg, now).unwrap();
        let mut server = Proto::server(server_cfg, now).unwrap();
        let mut buf = Vec::new();
        for _ in 0..8 {
            while client.poll_transmit(&mut buf).is_some() {
                server.handle_datagram(now, &mut buf).unwrap();
            }
            while server.poll_transmit(&mut buf).is_some() {
                client.handle_datagram(now, &mut buf).unwrap();
            }
        }
        assert!(client.is_established() && server.is_established());
        (client, server)
    }

    /// An async connection on a loopback socket connected to `peer` (which reads what it
    /// sends), whose send buffer has room for `room` more datagrams: after those, sends find it
    /// full until the test makes room. `own`: the connection's own socket, registered with
    /// tokio; else read through the inbox and written as the listener's socket is.
    fn on_a_filling_socket(proto: Proto, room: usize, own: bool) -> (Connection, std::net::UdpSocket) {
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_nonblocking(true).unwrap();
        let ours = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        ours.connect(peer.local_addr().unwrap()).unwrap();
        let socket = Socket::new(ours).unwrap();
        *socket.room.lock().unwrap() = Some(room);
        let shared = Arc::new(Shared::new(proto, peer.local_addr().unwrap(), Arc::new(socket), true, 8));
        (Connection::from_driver(Driver::new(shared, own, Batcher::default())).unwrap(), peer)
    }

    /// Dropping a batched send while it waits for room leaves a count of what went out, and
    /// exactly those messages, the first ones in order, reach the peer.
    #[tokio::test(flavor = "current_thread")]
    async fn a_dropped_batched_send_reports_what_went_out() {
        for mode in [Batching::Off, Batching::Mmsg, Batching::Offload] {
            let (client, mut server) = established();
            let (mut conn, peer) = on_a_filling_socket(client, 11, true);
            conn.set_batching(mode);
            // Runs of eight records for GSO (seven equal, one shorter): a run goes out whole or
            // not at all, so with room for 11 datagrams one run goes out.
            let messages: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; if i % 8 == 7 { 500 } else { 1_000 }]).collect();
            let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let stalled = tokio::time::timeout(Duration::from_millis(100), conn.send_batch(&refs)).await;
            assert!(stalled.is_err(), "{mode:?}: the send buffer never filled: nothing to cancel");
            let sent = conn.last_batch_sent();
            assert_eq!(sent, if mode == Batching::Offload { 8 } else { 11 }, "{mode:?}");
            let mut buf = [0u8; 2048];
            let mut got = Vec::new();
            while let Ok(n) = peer.recv(&mut buf) {
                let received = server.handle_datagram(Instant::now(), &mut buf[..n]).unwrap();
                got.extend(received.iter().map(<[u8]>::to_vec));
            }
            assert_eq!(got.len(), sent, "{mode:?}: the count is what the peer got");
            assert!(got.iter().zip(&messages).all(|(a, b)| a == b), "{mode:?}: the first ones, in order");
        }
    }

    /// Closing, and protocol datagrams in general, never wait for room in the send buffer: with
    /// the buffer full, `close` returns at once.
    #[tokio::test(flavor = "current_thread")]
    async fn close_does_not_wait_for_a_full_send_buffer() {
        let (client, _server) = established();
        let (mut conn, _peer) = on_a_filling_socket(client, 0, true);
        tokio::time::timeout(Duration::from_secs(5), conn.close()).await.expect("close waited").unwrap();
        assert!(conn.is_closed());
    }

    /// On the listener's shared socket an async send that finds no room waits on the runtime's
    /// timer, not in a system call: a timeout around it fires, and the send goes out once there
    /// is room.
    #[tokio::test(flavor = "current_thread")]
    async fn a_send_on_a_full_shared_socket_waits_without_blocking_the_runtime() {
        let (client, mut server) = established();
        let (mut conn, peer) = on_a_filling_socket(client, 0, false);
        let data = [7u8; 1_000];
        assert!(tokio::time::timeout(Duration::from_millis(50), conn.send(&data)).await.is_err());
        *conn.d.shared.socket.room.lock().unwrap() = Some(1);
        tokio::time::timeout(Duration::from_secs(5), conn.send(&data)).await.expect("no room made").unwrap();
        let mut buf = [0u8; 2048];
        let n = peer.recv(&mut buf).unwrap();
        let received = server.handle_datagram(Instant::now(), &mut buf[..n]).unwrap();
        assert_eq!(received.iter().next(), Some(&data[..]));
    }

    /// The async connection follows its peer to a new address as the blocking one does: a
    /// receive waiting on its own socket (tokio's readiness) falls back to the listener's.
    #[tokio::test(flavor = "current_thread")]
    async fn an_async_connection_follows_its_peer_to_a_new_address() {
        use crate::listener::migration_tests::{echo, handshake};
        let server_cfg =
            Arc::new(Config::builder().psk_server_key(b"key".to_vec()).cookie_verification(false).build().unwrap());
        let options = ListenerOptions::default().connection_sockets(true);
        let listener = crate::Listener::bind_with("127.0.0.1:0".parse().unwrap(), server_cfg, options).unwrap();
        let addr = listener.local_addr().unwrap();
        let client_thread = {
            let listener_addr = addr;
            std::thread::spawn(move || {
                let cfg = Arc::new(Config::builder().psk("id", b"key".to_vec()).build().unwrap());
                let mut client = Proto::client(cfg, Instant::now()).unwrap();
                let before = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                handshake(&mut client, &before, listener_addr);
                (client, before)
            })
        };
        let mut server = Connection::from_blocking(listener.accept_timeout(Duration::from_secs(10)).unwrap()).unwrap();
        let (mut client, before) = client_thread.join().unwrap();
        let after = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let moved_to = after.local_addr().unwrap();
        listener.migrate(before.local_addr().unwrap(), moved_to);
        let client_thread = std::thread::spawn(move || {
            echo(&mut client, &after, addr, b"after the move");
            echo(&mut client, &after, addr, b"last");
        });
        let mut buf = [0u8; 256];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(10), server.recv(&mut buf)).await.unwrap().unwrap();
            server.send(&buf[..n]).await.unwrap();
            if &buf[..n] == b"last" {
                break;
            }
        }
        assert_eq!(server.peer_addr().unwrap(), moved_to);
        client_thread.join().unwrap();
    }
}
