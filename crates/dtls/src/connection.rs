//! A DTLS association over UDP: a client's, or one a [`Listener`](crate::Listener) accepted.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dtls_proto::pki::{CertificateDer, ServerName};
use dtls_proto::{CipherSuite, Config, Connection as Proto, Event, HandshakeState, Protocol};

use crate::batch::{nothing_received, Batcher, Messages};
use crate::options::{socket_info, SocketInfo, SocketOptions};
use crate::udp::{self, Batching, SocketRef};
use crate::{earliest, is_timeout, lock, with_rx, ReadTimeout};

/// Most decrypted messages held when one datagram carried several.
pub(crate) const MAX_QUEUED: usize = 64;

/// ICMP port-unreachable reports after which a handshake gives up: the peer's host says nothing
/// listens there, and a second report confirms the first was not a stray.
const REFUSALS_BEFORE_FAILING: u32 = 2;

/// State shared between a [`Connection`] and the listener that accepted it.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) proto: Mutex<Proto>,
    pub(crate) peer: SocketAddr,
    pub(crate) socket: Arc<UdpSocket>,
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
    pub(crate) epoch: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct Inbox {
    pub(crate) datagrams: VecDeque<Vec<u8>>,
    pub(crate) dropped: u64,
    pub(crate) capacity: usize,
    /// Buffers of processed datagrams, reused so the data path does not allocate.
    pub(crate) spare: Vec<Vec<u8>>,
    /// The listener stopped feeding this inbox (shut down, idle timeout).
    pub(crate) closed: Option<io::ErrorKind>,
}

impl Shared {
    pub(crate) fn new(
        proto: Proto,
        peer: SocketAddr,
        socket: Arc<UdpSocket>,
        connected: bool,
        capacity: usize,
    ) -> Self {
        let epoch = Instant::now();
        Self {
            proto: Mutex::new(proto),
            peer,
            socket,
            connected,
            inbox: Mutex::new(Inbox { capacity, ..Inbox::default() }),
            ready: Condvar::new(),
            #[cfg(feature = "tokio")]
            ready_async: tokio::sync::Notify::new(),
            closed: AtomicBool::new(false),
            last_activity: AtomicU64::new(0),
            last_heard: AtomicU64::new(0),
            refusals: AtomicU32::new(0),
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
        let _ = self.flush(&mut proto, tx);
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

    pub(crate) fn send_raw(&self, datagram: &[u8]) -> io::Result<()> {
        if self.connected {
            self.socket.send(datagram)?;
        } else {
            self.socket.send_to(datagram, self.peer)?;
        }
        self.touch();
        Ok(())
    }

    /// Sends whatever the protocol has queued (handshake retransmissions, alerts).
    pub(crate) fn flush(&self, proto: &mut Proto, buf: &mut Vec<u8>) -> io::Result<()> {
        while proto.poll_transmit(buf).is_some() {
            match self.send_raw(buf) {
                Ok(()) => {}
                // An ICMP error for an earlier datagram; the datagram itself is gone.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => self.refused(),
                Err(e) => return Err(e),
            }
        }
        while let Some(ev) = proto.poll_event() {
            if let Event::Closed(e) = ev {
                tracing::debug!(peer = %self.peer, error = %e, "connection closed");
                self.closed.store(true, Ordering::Relaxed);
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
        let r = self.process(&mut datagram, buf, queued, tx);
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
        self.heard();
        let mut proto = lock(&self.proto);
        let mut first = None;
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
                format!("connection refused: nothing listens on {}", self.peer),
            ));
        }
        if proto.handshake_state() == HandshakeState::PeerVerificationFailed {
            let errors = proto.peer_verification_errors().to_vec();
            let _ = proto.abort_handshake();
            self.flush(&mut proto, tx)?;
            return Err(dtls_proto::Error::PeerVerification(errors).into());
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

/// One DTLS association with a peer: send and receive whole datagrams, with timeouts.
///
/// A `Connection` is `Send`: it can be moved to and served from another thread. It owns its
/// socket (a client's, or a listener's per-connection socket), or shares the listener's socket
/// and receives through the listener's demultiplexer.
#[derive(Debug)]
pub struct Connection {
    shared: Arc<Shared>,
    /// Our own socket, read directly (clients, per-connection sockets). `None`: the inbox.
    own: bool,
    tx: Vec<u8>,
    queued: VecDeque<Vec<u8>>,
    read_timeout: Option<Duration>,
    last_error: Option<io::Error>,
    /// Handed over to another owner (the async layer): dropping does not close.
    detached: bool,
    /// The read timeout set on our own socket.
    armed: ReadTimeout,
    /// `send_batch` and `recv_batch`: policy, offloads, buffers.
    batch: Batcher,
}

impl Connection {
    pub(crate) fn from_shared(shared: Arc<Shared>, own: bool) -> Self {
        Self {
            shared,
            own,
            tx: Vec::new(),
            queued: VecDeque::new(),
            read_timeout: None,
            last_error: None,
            detached: false,
            armed: ReadTimeout::default(),
            batch: Batcher::default(),
        }
    }

    // ===== clients =====

    /// Binds an ephemeral local port of the server's address family, connects to `server` and
    /// completes the handshake within `timeout` (`None`: the configuration's handshake timeout).
    /// A server certificate must be valid for `server`'s IP address (Qt's `QDtls` checks the
    /// address when given no name); use [`connect_with_name`](Self::connect_with_name) for a
    /// host name. When the server's host reports twice that nothing listens on the port (ICMP
    /// port unreachable), the handshake fails at once with `ConnectionRefused` instead of
    /// waiting for its timeout.
    pub fn connect(server: SocketAddr, config: Arc<Config>, timeout: Option<Duration>) -> io::Result<Self> {
        Self::connect_with(server, None, config, &SocketOptions::default(), timeout)
    }

    /// Like [`connect`](Self::connect), checking that the server's certificate is valid for
    /// `server_name` (a DNS name, also sent as SNI, or an IP address).
    pub fn connect_with_name(
        server: SocketAddr,
        server_name: &str,
        config: Arc<Config>,
        timeout: Option<Duration>,
    ) -> io::Result<Self> {
        Self::connect_with(server, Some(server_name), config, &SocketOptions::default(), timeout)
    }

    /// Connects with socket options (EdgerOS `createClient` with socket settings).
    pub fn connect_with(
        server: SocketAddr,
        server_name: Option<&str>,
        config: Arc<Config>,
        options: &SocketOptions,
        timeout: Option<Duration>,
    ) -> io::Result<Self> {
        let (socket, name) = crate::client_socket(server, server_name, options)?;
        Self::handshake_with_name(socket, name, config, timeout)
    }

    /// Runs the client handshake over an already connected socket; a server certificate must
    /// be valid for the address it is connected to.
    pub fn handshake(socket: UdpSocket, config: Arc<Config>, timeout: Option<Duration>) -> io::Result<Self> {
        Self::handshake_with_name(socket, None, config, timeout)
    }

    /// Runs the client handshake over an already connected socket, checking the server's
    /// certificate against `server_name` (`None`: the address the socket is connected to).
    pub fn handshake_with_name(
        socket: UdpSocket,
        server_name: Option<ServerName<'static>>,
        config: Arc<Config>,
        timeout: Option<Duration>,
    ) -> io::Result<Self> {
        let now = Instant::now();
        let deadline = Some(now + timeout.unwrap_or_else(|| config.handshake_timeout()));
        let peer = socket.peer_addr()?;
        let proto = Proto::client_with_server_name(config, Some(crate::name_or_address(server_name, peer)), now)?;
        let shared = Arc::new(Shared::new(proto, peer, Arc::new(socket), true, 0));
        let mut c = Self::from_shared(shared, true);
        loop {
            if c.shared.handshake_progress(&mut c.tx)? {
                return Ok(c);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "DTLS handshake timed out"));
            }
            c.wait_own(deadline, &mut [])?;
        }
    }

    // ===== hand-off =====

    /// Hands this connection over to another thread or process (EdgerOS `flyAway`): returns
    /// its socket's descriptor and the session state, which [`from_fd`](Self::from_fd) resumes.
    /// Only connections with their own socket can fly (clients, and listeners with
    /// [`connection_sockets`](crate::ListenerOptions::connection_sockets)); the configuration
    /// must allow session export. The state holds the master secret: pass it privately.
    #[cfg(unix)]
    pub fn fly_away(mut self) -> io::Result<(std::os::fd::OwnedFd, zeroize::Zeroizing<Vec<u8>>)> {
        if !self.own || !self.shared.connected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "only a connection with its own socket can be handed over (use per-connection sockets)",
            ));
        }
        // The next owner reads the socket with plain receives.
        self.batch.release_gro(&self.shared.socket)?;
        let socket = self.shared.socket.try_clone()?;
        let state = lock(&self.shared.proto).export_session()?;
        // Not ours any more: dropping this handle must not close the association.
        self.detached = true;
        self.shared.closed.store(true, Ordering::Relaxed);
        Ok((socket.into(), state))
    }

    /// Resumes a connection handed over with [`fly_away`](Self::fly_away) (EdgerOS
    /// `createByFd`). The socket must be connected to the peer.
    #[cfg(unix)]
    pub fn from_fd(fd: std::os::fd::OwnedFd, state: &[u8], config: Arc<Config>) -> io::Result<Self> {
        let socket = UdpSocket::from(fd);
        let peer = socket.peer_addr()?;
        socket.set_nonblocking(false)?;
        let proto = Proto::import_session(config, state, Instant::now())?;
        let shared = Arc::new(Shared::new(proto, peer, Arc::new(socket), true, 0));
        shared.heard();
        Ok(Self::from_shared(shared, true))
    }

    // ===== getters =====

    crate::getters::connection_getters!();

    /// Bytes of the next message ready to be received without waiting (EdgerOS `pending()`).
    pub fn pending(&mut self) -> io::Result<usize> {
        if self.queued.is_empty() {
            let mut scratch = [];
            // Process whatever has already arrived, without waiting.
            self.fill(Some(Instant::now()), &mut scratch)?;
        }
        Ok(self.queued.front().map_or(0, Vec::len))
    }

    /// Sets the timeout [`read`](Self::read) waits for a message (`None`: forever).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    // ===== data =====

    /// Sends `data` as one protected datagram. Returns `data.len()`.
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        let r = self.send_inner(data);
        self.record(r)
    }

    /// Sends, waiting at most `timeout` for room in the socket's send buffer.
    pub fn send_timeout(&mut self, data: &[u8], timeout: Option<Duration>) -> io::Result<usize> {
        if self.own {
            self.shared.socket.set_write_timeout(timeout)?;
        }
        self.send(data)
    }

    fn send_inner(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut proto = lock(&self.shared.proto);
        self.tx.clear();
        proto.send(data, &mut self.tx)?;
        match self.shared.send_raw(&self.tx) {
            Err(e) if is_timeout(&e) => Err(io::Error::new(io::ErrorKind::TimedOut, "send timed out")),
            r => r.map(|()| data.len()),
        }
    }

    /// Receives one whole message into `buf` (truncated if `buf` is smaller), waiting at most
    /// `timeout` (`None`: forever). A timeout returns `ErrorKind::TimedOut` and loses nothing.
    pub fn recv(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        let r = self.recv_inner(buf, timeout);
        self.record(r)
    }

    /// Receives with the timeout set by [`set_read_timeout`](Self::set_read_timeout).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf, self.read_timeout)
    }

    fn recv_inner(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(msg) = self.queued.pop_front() {
                let n = msg.len().min(buf.len());
                buf[..n].copy_from_slice(&msg[..n]);
                return Ok(n);
            }
            if let Some(n) = self.fill(deadline, buf)? {
                return Ok(n);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "receive timed out"));
            }
        }
    }

    // ===== batches =====

    /// Chooses how [`send_batch`](Self::send_batch) and [`recv_batch`](Self::recv_batch)
    /// batch datagrams (default [`Batching::Mmsg`]). [`Batching::Offload`] probes UDP GSO and,
    /// on a socket of the connection's own (clients, and
    /// [`connection_sockets`](crate::ListenerOptions::connection_sockets)), turns UDP GRO on;
    /// where the kernel lacks either, that direction uses `sendmmsg`/`recvmmsg`. A connection
    /// on its listener's socket never changes that socket's receive path: its datagrams come
    /// through the listener.
    pub fn set_batching(&mut self, batching: Batching) {
        self.batch.set(batching, &self.shared.socket, self.own);
    }

    /// How datagrams are batched (see [`set_batching`](Self::set_batching)).
    pub fn batching(&self) -> Batching {
        self.batch.batching()
    }

    /// Sends each of `messages` as one protected datagram, many per system call as
    /// [`set_batching`](Self::set_batching) chose: records are sealed back to back into one
    /// reused buffer, then sent up to 64 at a time with `sendmmsg`, or with one UDP GSO send per
    /// run of equal-size records ([`Batching::Offload`]), or one `send` each
    /// ([`Batching::Off`]).
    ///
    /// Returns how many messages were sent, in order: all of them, or fewer if an error
    /// stopped the batch after some went out (the error then shows on the next call), or the
    /// error if none did. A message that cannot be sent (larger than 16 KiB, connection
    /// closed) stops the batch the same way. Waits for room in the socket's send buffer like
    /// [`send`](Self::send).
    pub fn send_batch(&mut self, messages: &[&[u8]]) -> io::Result<usize> {
        let r = self.send_batch_inner(messages);
        self.record(r)
    }

    fn send_batch_inner(&mut self, messages: &[&[u8]]) -> io::Result<usize> {
        let mut sent = 0;
        for chunk in messages.chunks(udp::MAX_BATCH) {
            let sealed = self.batch.seal(&self.shared, chunk);
            let count = self.batch.sealed();
            let n = match self.transmit() {
                Ok(n) => n,
                Err(_) if sent > 0 => return Ok(sent),
                Err(e) if is_timeout(&e) => return Err(io::Error::new(io::ErrorKind::TimedOut, "send timed out")),
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

    /// Sends the records [`Batcher::seal`] prepared; returns how many went out.
    fn transmit(&mut self) -> io::Result<usize> {
        let dest = (!self.shared.connected).then_some(self.shared.peer);
        let sent = self.batch.transmit(SocketRef::Std(&self.shared.socket), dest, 0)?;
        self.shared.touch();
        Ok(sent)
    }

    /// Receives every message that is ready: waits at most `timeout` (`None`: forever) for the
    /// first, like [`recv`](Self::recv), then takes every datagram already queued (up to 64
    /// per system call, or 32 runs of coalesced datagrams with GRO; one datagram with
    /// [`Batching::Off`]), decrypts each in place and returns their messages in order, borrowed
    /// from the connection's receive buffers: nothing is copied. Messages that
    /// [`recv`](Self::recv) or [`pending`](Self::pending) already decrypted come first.
    ///
    /// The result holds at least one message; a timeout returns `ErrorKind::TimedOut` and loses
    /// nothing. Protocol timers, retransmission answers and alerts work as with `recv`. On a
    /// connection with its own socket the receive buffers (64 slots of 64 KiB, 32 with GRO)
    /// are allocated on the first batched receive; a connection on its listener's socket takes
    /// the datagrams the listener queued for it.
    ///
    /// The async `tokio::Connection` (feature `tokio`) has the same `set_batching`,
    /// `send_batch` and `recv_batch`, awaited.
    pub fn recv_batch(&mut self, timeout: Option<Duration>) -> io::Result<Messages<'_>> {
        let r = self.recv_batch_inner(timeout);
        self.record(r)?;
        Ok(self.batch.messages())
    }

    fn recv_batch_inner(&mut self, timeout: Option<Duration>) -> io::Result<()> {
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
            if self.own {
                self.batch_own(deadline)?;
            } else if self.take_inbox(true, deadline)? {
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
    fn batch_own(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        // Datagrams the listener still had queued for us when our own socket was made.
        if self.take_inbox(false, None)? {
            return self.batch.open_held(&self.shared, &mut self.tx, &mut self.last_error);
        }
        // Datagrams an earlier receive took in a batch and has not handed out yet come first.
        if !self.batch.has_pending() {
            let timer = lock(&self.shared.proto).poll_timeout();
            let wait = self.armed.arm(&self.shared.socket, earliest(timer, deadline))?;
            match self.batch.recv(SocketRef::Std(&self.shared.socket), wait) {
                Ok(_) => {}
                Err(e) if nothing_received(&e) => return self.on_timer(),
                Err(e) => return Err(e),
            }
        }
        self.batch.open_slots(&self.shared, &mut self.tx, &mut self.last_error)
    }

    /// Moves up to 64 datagrams from the inbox to `batch.held`, waiting until `deadline` for
    /// the first if `wait`. Returns whether any came.
    fn take_inbox(&mut self, wait: bool, deadline: Option<Instant>) -> io::Result<bool> {
        let mut inbox = lock(&self.shared.inbox);
        while wait && inbox.datagrams.is_empty() {
            if let Some(kind) = inbox.closed {
                drop(inbox);
                if self.is_closed() {
                    return Err(self.closed_error());
                }
                return Err(io::Error::new(kind, "the listener stopped serving this connection"));
            }
            inbox = match deadline {
                None => self.shared.ready.wait(inbox).unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    self.shared.ready.wait_timeout(inbox, left).unwrap_or_else(std::sync::PoisonError::into_inner).0
                }
            };
        }
        Ok(self.batch.take_inbox(&mut inbox))
    }

    /// Sends close_notify and closes the association.
    pub fn close(&mut self) -> io::Result<()> {
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

    /// Takes in one datagram (or a timer) until `deadline`; returns the first message if it
    /// went into `buf`.
    fn fill(&mut self, deadline: Option<Instant>, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        if self.own {
            // Datagrams the listener still had queued for us when our own socket was made
            // (the peer's last handshake retransmissions).
            let early = lock(&self.shared.inbox).datagrams.pop_front();
            if let Some(d) = early {
                return self.shared.process_queued(d, buf, &mut self.queued, &mut self.tx);
            }
            return self.wait_own(deadline, buf);
        }
        let datagram = {
            let mut inbox = lock(&self.shared.inbox);
            loop {
                if let Some(d) = inbox.datagrams.pop_front() {
                    break Some(d);
                }
                if let Some(kind) = inbox.closed {
                    drop(inbox);
                    if self.is_closed() {
                        return Err(self.closed_error());
                    }
                    return Err(io::Error::new(kind, "the listener stopped serving this connection"));
                }
                let Some(d) = deadline else {
                    inbox = self.shared.ready.wait(inbox).unwrap_or_else(std::sync::PoisonError::into_inner);
                    continue;
                };
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break None;
                }
                inbox =
                    self.shared.ready.wait_timeout(inbox, left).unwrap_or_else(std::sync::PoisonError::into_inner).0;
            }
        };
        match datagram {
            Some(d) => self.shared.process_queued(d, buf, &mut self.queued, &mut self.tx),
            None => Ok(None),
        }
    }

    /// Waits on our own socket for a datagram or a protocol timer.
    fn wait_own(&mut self, deadline: Option<Instant>, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // Datagrams an earlier receive took in a batch come first.
        if let Some(r) = self.next_batched(buf) {
            return r;
        }
        let timer = lock(&self.shared.proto).poll_timeout();
        // `false`: the deadline has passed; still take a datagram that is already there.
        let wait = self.armed.arm(&self.shared.socket, earliest(timer, deadline))?;
        let got = if self.batch.gro() {
            // GRO coalesces runs of datagrams: receive through the batch, which splits them.
            match self.batch.recv(SocketRef::Std(&self.shared.socket), wait) {
                Ok(_) => return Ok(self.next_batched(buf).transpose()?.flatten()),
                Err(e) => Err(e),
            }
        } else {
            // Into the thread's receive buffer, processed before it is needed again.
            let shared = &*self.shared;
            let (queued, tx) = (&mut self.queued, &mut self.tx);
            with_rx(|rx| {
                let n = if wait { shared.socket.recv(rx) } else { udp::recv_now(&shared.socket, rx) }?;
                Ok(shared.process(&mut rx[..n], buf, queued, tx))
            })
        };
        match got {
            Ok(r) => r,
            Err(e) if nothing_received(&e) => {
                if e.kind() == io::ErrorKind::ConnectionRefused {
                    self.shared.refused();
                }
                self.on_timer().map(|()| None)
            }
            Err(e) => Err(e),
        }
    }

    /// Runs the protocol's timers (retransmissions, handshake timeout) and sends what is due.
    fn on_timer(&mut self) -> io::Result<()> {
        let mut proto = lock(&self.shared.proto);
        let r = proto.handle_timeout(Instant::now());
        self.shared.flush(&mut proto, &mut self.tx)?;
        r.map_err(Into::into)
    }

    /// Processes the next datagram a batched receive left, if any, as a plain receive would.
    fn next_batched(&mut self, buf: &mut [u8]) -> Option<io::Result<Option<usize>>> {
        self.batch.next_datagram(&self.shared, buf, &mut self.queued, &mut self.tx)
    }
}

impl Connection {
    /// The shared state, whether the socket is our own, and the batching state, for the async
    /// layer; the blocking handle is dissolved without closing.
    #[cfg(feature = "tokio")]
    pub(crate) fn into_shared(mut self) -> (Arc<Shared>, bool, Batcher) {
        self.detached = true;
        (self.shared.clone(), self.own, std::mem::take(&mut self.batch))
    }
}

/// The connection's socket (EdgerOS `sockFd`), for readiness polling. Reading it directly
/// bypasses the protocol; use it only to wait.
#[cfg(unix)]
impl std::os::fd::AsFd for Connection {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.shared.socket.as_fd()
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for Connection {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.shared.socket.as_raw_fd()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        let _ = self.close();
        self.shared.close_inbox(io::ErrorKind::NotConnected);
    }
}
