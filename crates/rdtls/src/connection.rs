//! A DTLS association over UDP, blocking: a client's, or one a [`Listener`](crate::Listener)
//! accepted. The protocol side is the shared [`Driver`]; this handle only waits, in the system
//! call on its own socket or on the inbox's condition variable.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use rdtls_proto::pki::{CertificateDer, ServerName};
use rdtls_proto::{CipherSuite, Config, Connection as Proto, Protocol};

use crate::batch::{Batcher, Messages};
use crate::driver::{drive, Driver, Source, Wait};
use crate::options::{socket_info, SocketInfo, SocketOptions};
use crate::shared::Shared;
use crate::udp::{self, Batching, Fd};
use crate::{lock, with_rx, ReadTimeout};

/// One DTLS association with a peer: send and receive whole datagrams, with timeouts.
///
/// A `Connection` is `Send`: it can be moved to and served from another thread. It owns its
/// socket (a client's, or a listener's per-connection socket), or shares the listener's socket
/// and receives through the listener's demultiplexer.
#[derive(Debug)]
pub struct Connection {
    d: Driver,
    read_timeout: Option<Duration>,
    /// The read timeout set on our own socket.
    armed: ReadTimeout,
}

impl Connection {
    pub(crate) fn from_shared(shared: Arc<Shared>, own: bool) -> Self {
        Self::with_driver(Driver::new(shared, own, Batcher::default()))
    }

    fn from_driver(d: Driver) -> io::Result<Self> {
        Ok(Self::with_driver(d))
    }

    /// The blocking handle on `d`: its own socket, if it has one, waits in the system call.
    fn with_driver(d: Driver) -> Self {
        if d.own {
            if let Err(e) = d.shared.socket.set_blocking(true) {
                tracing::debug!(error = %e, "cannot make the socket blocking: receives poll instead");
            }
        }
        Self { d, read_timeout: None, armed: ReadTimeout::default() }
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
        Self::handshake_observed(socket, name, config, timeout, options.observer.clone())
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
        Self::handshake_observed(socket, server_name, config, timeout, None)
    }

    fn handshake_observed(
        socket: UdpSocket,
        server_name: Option<ServerName<'static>>,
        config: Arc<Config>,
        timeout: Option<Duration>,
        observer: Option<crate::Observer>,
    ) -> io::Result<Self> {
        let peer = socket.peer_addr()?;
        let (d, deadline) = Driver::client(socket, peer, server_name, config, timeout, observer)?;
        let mut c = Self::from_driver(d)?;
        drive!(c.d.handshake_step(deadline), |w| c.wait(w, &mut []).map(|_| None));
        Ok(c)
    }

    // ===== getters =====

    crate::getters::connection_getters!();

    /// Bytes of the next message ready to be received without waiting (EdgerOS `pending()`).
    pub fn pending(&mut self) -> io::Result<usize> {
        let mut waited = false;
        Ok(drive!(self.d.pending_step(std::mem::replace(&mut waited, true)), |w| self.wait(w, &mut []).map(|_| None)))
    }

    /// Sets the timeout [`read`](Self::read) waits for a message (`None`: forever).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    // ===== data =====

    /// Sends `data` as one protected datagram. Returns `data.len()`.
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        let r = self.send_inner(data);
        self.d.record(r)
    }

    /// Sends, waiting at most `timeout` for room in the socket's send buffer.
    pub fn send_timeout(&mut self, data: &[u8], timeout: Option<Duration>) -> io::Result<usize> {
        self.d.shared.set_write_timeout(timeout);
        self.send(data)
    }

    fn send_inner(&mut self, data: &[u8]) -> io::Result<usize> {
        self.d.seal_one(data)?;
        match self.d.shared.send_raw(&self.d.tx) {
            Err(e) if crate::is_timeout(&e) => Err(io::Error::new(io::ErrorKind::TimedOut, "send timed out")),
            r => r.map(|()| data.len()),
        }
    }

    /// Receives one whole message into `buf` (truncated if `buf` is smaller), waiting at most
    /// `timeout` (`None`: forever). A timeout returns `ErrorKind::TimedOut` and loses nothing.
    pub fn recv(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        let r = self.recv_inner(buf, timeout);
        self.d.record(r)
    }

    /// Receives with the timeout set by [`set_read_timeout`](Self::set_read_timeout).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf, self.read_timeout)
    }

    fn recv_inner(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut waited = false;
        Ok(drive!(self.d.recv_step(buf, deadline, &mut waited), |w| self.wait(w, buf)))
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
        self.d.batch.set(batching, &self.d.shared.socket, self.d.own);
    }

    /// How datagrams are batched (see [`set_batching`](Self::set_batching)).
    pub fn batching(&self) -> Batching {
        self.d.batch.batching()
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
        self.d.record(r)
    }

    fn send_batch_inner(&mut self, messages: &[&[u8]]) -> io::Result<usize> {
        self.d.batch_sent = 0;
        for chunk in messages.chunks(udp::MAX_BATCH) {
            let (count, sealing) = self.d.seal_chunk(chunk);
            let result = self.transmit();
            self.d.shared.touch();
            self.d.batch_sent += result.as_ref().map_or(0, |n| *n);
            if let Some(total) = self.d.after_chunk(count, result, sealing)? {
                return Ok(total);
            }
        }
        Ok(self.d.batch_sent)
    }

    /// Sends the sealed records, waiting for room in the send buffer (up to the write timeout);
    /// returns how many went out.
    fn transmit(&mut self) -> io::Result<usize> {
        let route = self.d.shared.route();
        let until = self.d.shared.write_timeout().map(|t| Instant::now() + t);
        let count = self.d.batch.sealed();
        let mut sent = 0;
        while sent < count {
            match self.d.batch.transmit(&route.socket, Fd::Own, route.dest, route.local_ip, sent) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(t) = &self.d.shared.traffic {
                        t.sent(n as u64, self.d.batch.sealed_bytes(sent, n));
                    }
                    sent += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !route.socket.wait(false, until)? {
                        break;
                    }
                }
                Err(_) if sent > 0 => break,
                Err(e) => return Err(e),
            }
        }
        if sent == 0 && count > 0 {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "send timed out"));
        }
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
        self.d.record(r)?;
        Ok(self.d.batch.messages())
    }

    fn recv_batch_inner(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        self.d.batch_start();
        let mut waited = false;
        drive!(self.d.recv_batch_step(deadline, &mut waited), |w| self.wait_batch(w));
        Ok(())
    }

    /// Sends close_notify and closes the association.
    pub fn close(&mut self) -> io::Result<()> {
        self.d.close()
    }

    // ===== waiting =====

    /// Waits for what the driver needs: a datagram on our own socket (in the system call, with
    /// the socket's read timeout set to `w.until`) or in the inbox; hands a datagram to the
    /// driver, the first message into `buf`.
    fn wait(&mut self, w: Wait, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if w.source == Source::Inbox {
            self.d.shared.wait_inbox(w.until);
            return Ok(None);
        }
        let socket = self.d.shared.socket.clone();
        if self.d.batch.gro() {
            // GRO coalesces runs of datagrams: receive through the batch, which splits them.
            if !socket.wait(true, w.until)? {
                return self.d.on_nothing(None);
            }
            return match self.d.batch.recv(&socket, Fd::Own) {
                Ok(_) => self.d.on_batch(buf),
                Err(e) => self.d.on_nothing(Some(e)),
            };
        }
        // `false`: the time has come; still take a datagram that is already there.
        let mut wait = self.armed.arm(&socket, w.until)?;
        if wait && !socket.blocking() {
            // Could not be made blocking: wait for readiness first.
            if !socket.wait(true, w.until)? {
                return self.d.on_nothing(None);
            }
            wait = false;
        }
        // Into the thread's receive buffer, processed before it is needed again.
        with_rx(|rx| match socket.recv_one(rx, wait) {
            Ok(n) => self.d.on_datagram(&mut rx[..n], buf),
            Err(e) => self.d.on_nothing(Some(e)),
        })
    }

    /// Waits as [`wait`](Self::wait) does, receiving a batch on our own socket: every datagram
    /// queued once the first is there.
    fn wait_batch(&mut self, w: Wait) -> io::Result<Option<()>> {
        if w.source == Source::Inbox {
            self.d.shared.wait_inbox(w.until);
            return Ok(None);
        }
        let socket = self.d.shared.socket.clone();
        if !socket.wait(true, w.until)? {
            return self.d.on_nothing(None).map(|_| None);
        }
        match self.d.batch.recv(&socket, Fd::Own) {
            Ok(_) => self.d.on_batch_received(),
            Err(e) => self.d.on_nothing(Some(e)).map(|_| None),
        }
    }
}

impl Connection {
    /// The driver, for the async layer; the blocking handle is dissolved without closing.
    #[cfg(feature = "tokio")]
    pub(crate) fn into_driver(self) -> Driver {
        self.d
    }
}

/// The connection's socket (EdgerOS `sockFd`), for readiness polling. Reading it directly
/// bypasses the protocol; use it only to wait.
#[cfg(unix)]
impl std::os::fd::AsFd for Connection {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.d.shared.socket.as_fd()
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for Connection {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.d.shared.socket.as_raw_fd()
    }
}
