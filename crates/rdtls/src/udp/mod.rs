//! Datagram I/O: many datagrams per system call, and where each one arrived.
//!
//! A DTLS record of 1,200 bytes costs far less to seal or open than the system call that
//! carries it, so at high rates the socket layer is what limits throughput. Every socket of
//! this crate is a [`Socket`]: a nonblocking `UdpSocket` run by [`quinn_udp`], the socket layer
//! of the QUIC implementation quinn (tested on Linux, macOS and Windows), which gives:
//!
//! - batched receives (`recvmmsg` on Linux) with each datagram's source, the local address it
//!   arrived on (`IP_PKTINFO`, `IPV6_RECVPKTINFO`) and its ECN bits: [`Socket::recv_many`];
//! - UDP generic segmentation offload (GSO, Linux 4.18+): one `sendmsg` of a buffer the kernel
//!   cuts into datagrams of a fixed size, [`Socket::send_segments`], with the fallback when a
//!   route's device refuses it;
//! - UDP generic receive offload (GRO, Linux 5.0+), [`Socket::set_gro`]: runs of equal-size
//!   datagrams arrive as one buffer, which [`RecvBatch`] splits again by the segment size the
//!   kernel reports, so [`RecvBatch::datagrams`] always yields the original datagrams;
//! - sends from a chosen local address (a wildcard listener answers from the address each
//!   client reached).
//!
//! quinn-udp has no `sendmmsg` (records of different sizes, many per call); that one system
//! call, and waiting for readiness (`poll`) for the blocking API, live in the small `sys`
//! module beside it: [`Socket::send_many`].
//!
//! [`Connection::send_batch`](crate::Connection::send_batch) and
//! [`Connection::recv_batch`](crate::Connection::recv_batch) use these under the policy set by
//! [`Connection::set_batching`](crate::Connection::set_batching) ([`Batching`]), and so do the
//! same methods of the async `tokio::Connection` (feature `tokio`), which make the system
//! calls without waiting and wait for tokio's readiness instead:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rdtls::udp::Batching;
//! use rdtls::{Config, Connection, Listener, ListenerOptions};
//!
//! let server_cfg = Arc::new(Config::builder().psk_server_key(b"secret".to_vec()).build()?);
//! let options = ListenerOptions::default().connection_sockets(true);
//! let listener = Listener::bind_with("127.0.0.1:0".parse()?, server_cfg, options)?;
//! let addr = listener.local_addr()?;
//! let server = std::thread::spawn(move || -> std::io::Result<usize> {
//!     let mut conn = listener.accept()?;
//!     conn.set_batching(Batching::Offload);
//!     let mut received = 0;
//!     while received < 100 {
//!         // Everything already queued, decrypted in place: no copy per message.
//!         for message in conn.recv_batch(Some(Duration::from_secs(10)))? {
//!             assert_eq!(message.len(), 1_200);
//!             received += 1;
//!         }
//!     }
//!     conn.send(b"done")?;
//!     Ok(received)
//! });
//!
//! let client_cfg = Arc::new(Config::builder().psk("client1", b"secret".to_vec()).build()?);
//! let mut client = Connection::connect(addr, client_cfg, Some(Duration::from_secs(10)))?;
//! client.set_batching(Batching::Offload);
//! let payload = [7u8; 1_200];
//! let messages = [&payload[..]; 100];
//! // One GSO send per run of equal-size records (sendmmsg where the kernel lacks GSO).
//! assert_eq!(client.send_batch(&messages)?, 100);
//! let mut buf = [0u8; 16];
//! let n = client.recv(&mut buf, Some(Duration::from_secs(10)))?;
//! assert_eq!(&buf[..n], b"done");
//! assert_eq!(server.join().unwrap()?, 100);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};

mod recv;
mod sys;

pub use recv::RecvBatch;

/// Most datagrams one [`Socket::send_many`] or [`Socket::recv_many`] call carries, and most
/// receive slots in a [`RecvBatch`].
pub const MAX_BATCH: usize = 64;

/// Most segments one [`Socket::send_segments`] call sends (the kernel's `UDP_MAX_SEGMENTS`).
pub const MAX_GSO_SEGMENTS: usize = 64;

/// Most bytes one [`Socket::send_segments`] call sends (the largest UDP payload over IPv4).
pub const MAX_GSO_BYTES: usize = 65_507;

/// The largest receive slot: room for any UDP datagram and for any run GRO coalesces.
pub const MAX_SLOT: usize = 65_535;

/// How a [`Connection`](crate::Connection) (or an async `tokio::Connection`) batches datagrams
/// in [`send_batch`](crate::Connection::send_batch) and
/// [`recv_batch`](crate::Connection::recv_batch).
///
/// The default is [`Mmsg`](Self::Mmsg): it works on every Linux kernel and on any path.
/// [`Offload`](Self::Offload) is faster still but changes what the socket receives (GRO) and
/// depends on the route's device (GSO needs checksum offload, which loopback and common NICs
/// have); it falls back to `Mmsg` by itself where the kernel or device refuses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Batching {
    /// One `send`/`recv` system call per datagram.
    Off,
    /// `sendmmsg` / `recvmmsg`: up to [`MAX_BATCH`] datagrams per system call (one per call
    /// outside Linux).
    #[default]
    Mmsg,
    /// UDP GSO on send (one system call per run of equal-size datagrams, up to
    /// [`MAX_GSO_SEGMENTS`]) and UDP GRO on receive, on top of `recvmmsg`; `Mmsg` where the
    /// kernel lacks them.
    Offload,
}

/// A UDP socket run by quinn-udp: nonblocking, with its offloads probed and the local address
/// of each received datagram reported. It dereferences to the `UdpSocket` for addresses and
/// options.
///
/// The operations that name no timeout never wait: a full send buffer or an empty receive
/// queue is `WouldBlock`. The blocking API waits with `poll`, the async API for
/// tokio's readiness.
pub struct Socket {
    io: UdpSocket,
    state: UdpSocketState,
    /// The peer a connected socket sends to (quinn-udp always names a destination).
    peer: Option<SocketAddr>,
    gro: AtomicBool,
    /// The socket is in blocking mode (a blocking connection's own socket: its plain receives
    /// wait in the system call, with the read timeout).
    blocking: AtomicBool,
    /// Tests: how many more datagrams fit in the send buffer (`None`: as the kernel says). Real
    /// loopback never pushes back (a datagram is handed to the receiver, or dropped, within
    /// the send call), so tests of what happens on a full send buffer fill this one.
    #[cfg(test)]
    pub(crate) room: std::sync::Mutex<Option<usize>>,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("local", &self.io.local_addr().ok())
            .field("peer", &self.peer)
            .field("gso", &self.gso_supported())
            .field("gro", &self.gro())
            .finish()
    }
}

impl Deref for Socket {
    type Target = UdpSocket;

    fn deref(&self) -> &UdpSocket {
        &self.io
    }
}

/// The descriptor an operation goes through: the socket's own, or the duplicate the async
/// layer registered with tokio (the same socket).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fd<'a> {
    Own,
    #[cfg(feature = "tokio")]
    Tokio(&'a tokio::net::UdpSocket),
    #[cfg(not(feature = "tokio"))]
    #[allow(dead_code)]
    Never(std::marker::PhantomData<&'a ()>),
}

impl Socket {
    /// Takes over `socket` (bound, and connected for a connection's own socket): makes it
    /// nonblocking, turns on the reporting of each datagram's local address and ECN bits, and
    /// probes GSO. GRO stays off until [`set_gro`](Self::set_gro), and IP fragmentation stays
    /// as the system sets it: DTLS records larger than the path MTU still go out.
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        sys::restore_defaults(&socket);
        let peer = socket.peer_addr().ok();
        let s = Self {
            io: socket,
            state,
            peer,
            gro: AtomicBool::new(false),
            blocking: AtomicBool::new(false),
            #[cfg(test)]
            room: std::sync::Mutex::new(None),
        };
        // quinn-udp turns GRO on; without it every plain receive sees single datagrams.
        let _ = s.set_gro(false);
        Ok(s)
    }

    /// Binds `addr` (see [`new`](Self::new)).
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        Self::new(UdpSocket::bind(addr)?)
    }

    /// The std socket.
    pub fn as_std(&self) -> &UdpSocket {
        &self.io
    }

    /// Whether the kernel does UDP GSO on this socket ([`send_segments`](Self::send_segments)
    /// sends one datagram per segment otherwise): Linux 4.18 and later, until a route's device
    /// refused it.
    pub fn gso_supported(&self) -> bool {
        self.state.max_gso_segments() > 1
    }

    /// Turns UDP GRO on or off for this socket. Returns whether GRO is now on: `Ok(false)` when
    /// asked to turn it on where the kernel lacks it (before Linux 5.0, or outside Linux). With
    /// GRO on, a receive may return a run of datagrams in one slot; [`RecvBatch`] splits them.
    pub fn set_gro(&self, on: bool) -> io::Result<bool> {
        let on = sys::set_gro(&self.io, on)?;
        self.gro.store(on, Ordering::Relaxed);
        Ok(on)
    }

    /// Whether GRO is on: receives must split coalesced runs.
    pub fn gro(&self) -> bool {
        self.gro.load(Ordering::Relaxed)
    }

    /// Puts the socket in blocking mode (`true`), for a connection served by the blocking API
    /// alone: a plain receive then waits in one system call, with the socket's read timeout,
    /// and batched receives make the socket nonblocking for the moment they take what is
    /// queued. The async API, and a listener, keep it nonblocking (the default).
    pub(crate) fn set_blocking(&self, on: bool) -> io::Result<()> {
        self.io.set_nonblocking(!on)?;
        self.blocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the socket is in blocking mode.
    pub(crate) fn blocking(&self) -> bool {
        self.blocking.load(Ordering::Relaxed)
    }

    fn via<'a>(&'a self, fd: Fd<'a>) -> UdpSockRef<'a> {
        match fd {
            Fd::Own => UdpSockRef::from(&self.io),
            #[cfg(feature = "tokio")]
            Fd::Tokio(s) => UdpSockRef::from(s),
            #[cfg(not(feature = "tokio"))]
            Fd::Never(_) => UdpSockRef::from(&self.io),
        }
    }

    /// Tests: takes room for `n` datagrams, or fails with `WouldBlock` (see `room`); `Ok(k)`:
    /// room for `k` of them.
    #[cfg(test)]
    fn take_room(&self, n: usize) -> io::Result<usize> {
        let mut room = self.room.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match room.as_mut() {
            None => Ok(n),
            Some(0) => Err(io::ErrorKind::WouldBlock.into()),
            Some(r) => {
                let k = n.min(*r);
                *r -= k;
                Ok(k)
            }
        }
    }

    #[cfg(not(test))]
    #[inline(always)]
    fn take_room(&self, n: usize) -> io::Result<usize> {
        Ok(n)
    }

    fn destination(&self, dest: Option<SocketAddr>) -> io::Result<SocketAddr> {
        dest.or(self.peer).ok_or_else(|| invalid("no destination: the socket is not connected"))
    }

    // ===== without waiting =====

    /// Sends one datagram to `dest` (`None`: the connected peer), from `src` if given (a
    /// wildcard socket answering from the address the peer reached). `WouldBlock` when the
    /// send buffer is full.
    pub(crate) fn try_send(
        &self,
        fd: Fd<'_>,
        datagram: &[u8],
        dest: Option<SocketAddr>,
        src: Option<IpAddr>,
    ) -> io::Result<()> {
        let destination = self.destination(dest)?;
        self.take_room(1)?;
        if dest.is_none() && src.is_none() {
            // Connected: a plain send uses the route the socket keeps (naming the destination
            // would look it up again for every datagram).
            let sent = match fd {
                Fd::Own => self.io.send(datagram),
                #[cfg(feature = "tokio")]
                Fd::Tokio(s) => socket2::SockRef::from(s).send(datagram),
                #[cfg(not(feature = "tokio"))]
                Fd::Never(_) => self.io.send(datagram),
            };
            return sent.map(drop);
        }
        let t = Transmit { destination, ecn: None, contents: datagram, segment_size: None, src_ip: src };
        self.state.try_send(self.via(fd), &t)
    }

    /// Sends `buf` as datagrams of `segment` bytes with one GSO system call (see
    /// [`send_segments`](Self::send_segments)); `WouldBlock` when the send buffer is full.
    pub(crate) fn try_send_segments(
        &self,
        fd: Fd<'_>,
        buf: &[u8],
        segment: usize,
        dest: Option<SocketAddr>,
        src: Option<IpAddr>,
    ) -> io::Result<()> {
        check_segments(buf, segment)?;
        let destination = self.destination(dest)?;
        if self.take_room(buf.len().div_ceil(segment).max(1))? < buf.len().div_ceil(segment).max(1) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let segment_size = (buf.len() > segment).then_some(segment);
        let t = Transmit { destination, ecn: None, contents: buf, segment_size, src_ip: src };
        self.state.try_send(self.via(fd), &t)
    }

    /// Sends each of `datagrams` (up to [`MAX_BATCH`] per system call, `sendmmsg` on Linux);
    /// returns how many went out: all, or fewer when one failed after others went out (the
    /// failure repeats on the next call), or the error if none did. A source address needs
    /// one call per datagram.
    pub(crate) fn try_send_many(
        &self,
        fd: Fd<'_>,
        datagrams: &[&[u8]],
        dest: Option<SocketAddr>,
        src: Option<IpAddr>,
    ) -> io::Result<usize> {
        // Checked here, passed on as given: a connected socket sends without naming its peer.
        self.destination(dest)?;
        let datagrams = &datagrams[..self.take_room(datagrams.len())?];
        #[cfg(unix)]
        if src.is_none() {
            let raw = match fd {
                Fd::Own => std::os::fd::AsFd::as_fd(&self.io),
                #[cfg(feature = "tokio")]
                Fd::Tokio(s) => std::os::fd::AsFd::as_fd(s),
                #[cfg(not(feature = "tokio"))]
                Fd::Never(_) => std::os::fd::AsFd::as_fd(&self.io),
            };
            if let Some(r) = sys::send_many(raw, datagrams, dest) {
                return r;
            }
        }
        for (i, d) in datagrams.iter().enumerate() {
            if let Err(e) = self.try_send(fd, d, dest, src) {
                return if i > 0 { Ok(i) } else { Err(e) };
            }
        }
        Ok(datagrams.len())
    }

    /// Receives into `batch` every datagram already queued, up to `max` slots; `WouldBlock`
    /// if none is.
    pub(crate) fn try_recv(&self, fd: Fd<'_>, batch: &mut RecvBatch, max: usize) -> io::Result<usize> {
        if self.blocking() {
            // quinn-udp's batched receive waits for every slot on a blocking socket: take what
            // is queued with the socket nonblocking for the moment.
            self.io.set_nonblocking(true)?;
            let r = self.try_recv_queued(fd, batch, max);
            self.io.set_nonblocking(false)?;
            return r;
        }
        self.try_recv_queued(fd, batch, max)
    }

    fn try_recv_queued(&self, fd: Fd<'_>, batch: &mut RecvBatch, max: usize) -> io::Result<usize> {
        batch.clear();
        let max = max.clamp(1, batch.slots());
        let slot_size = batch.slot_size;
        while batch.filled < max {
            let at = batch.filled;
            let want = (max - at).min(quinn_udp::BATCH_SIZE);
            let mut meta = [RecvMeta::default(); MAX_BATCH];
            let received = {
                let mut bufs: [IoSliceMut<'_>; MAX_BATCH] = std::array::from_fn(|_| IoSliceMut::new(&mut []));
                let slots = batch.buf[at * slot_size..].chunks_mut(slot_size);
                for (buf, slot) in bufs.iter_mut().zip(slots).take(want) {
                    *buf = IoSliceMut::new(slot);
                }
                self.state.recv(self.via(fd), &mut bufs[..want], &mut meta[..want])
            };
            let n = match received {
                Ok(n) => n,
                Err(_) if at > 0 => break,
                Err(e) => return Err(e),
            };
            for (i, m) in meta[..n].iter().enumerate() {
                batch.set_slot(at + i, m.len, m.stride, m.addr, m.dst_ip);
            }
            if n < want {
                break;
            }
        }
        Ok(batch.count)
    }

    /// Receives one datagram (GRO off: one whole datagram) into `buf`, waiting for it only if
    /// `wait` and the socket is in blocking mode (up to its read timeout). A plain `recv`: the
    /// connections that read their own socket this way need neither the local address nor the
    /// ECN bits.
    pub(crate) fn recv_one(&self, buf: &mut [u8], wait: bool) -> io::Result<usize> {
        if wait {
            self.io.recv(buf)
        } else {
            sys::recv_now(&self.io, buf)
        }
    }

    /// Waits until the socket or `also` is readable, or `until` passes (`None`: no limit).
    /// Returns whether one is.
    #[cfg(unix)]
    pub(crate) fn wait_readable_or(
        &self,
        also: std::os::fd::BorrowedFd<'_>,
        until: Option<Instant>,
    ) -> io::Result<bool> {
        sys::wait_readable_or(&self.io, also, until)
    }

    /// Waits until the socket is readable (`readable`) or writable, or `until` passes (`None`:
    /// no limit). Returns whether it is ready.
    pub(crate) fn wait(&self, readable: bool, until: Option<Instant>) -> io::Result<bool> {
        sys::wait(&self.io, readable, until)
    }

    // ===== waiting: the blocking API =====

    /// Sends each of `datagrams` to `dest` (`None`: the connected peer), up to [`MAX_BATCH`]
    /// per `sendmmsg` call, waiting for room in the send buffer. Returns how many were sent:
    /// all of them, or fewer when sending one failed after others went out (the failure then
    /// repeats on the next call), or the error if none went out. Outside Linux this sends one
    /// datagram per system call.
    pub fn send_many(&self, datagrams: &[&[u8]], dest: Option<SocketAddr>) -> io::Result<usize> {
        let mut sent = 0;
        while sent < datagrams.len() {
            match self.try_send_many(Fd::Own, &datagrams[sent..], dest, None) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(false, None)?;
                }
                Err(_) if sent > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    /// Sends `buf` as datagrams of `segment` bytes each (the last one may be shorter) with one
    /// system call, using UDP GSO, waiting for room in the send buffer; to `dest`, or to the
    /// connected peer with `None`. Returns the bytes sent (all of `buf`).
    ///
    /// `buf` may hold at most [`MAX_GSO_SEGMENTS`] segments and [`MAX_GSO_BYTES`] bytes
    /// (`InvalidInput` otherwise). Where the kernel or the route's device has no GSO, quinn-udp
    /// turns it off for the socket ([`gso_supported`](Self::gso_supported) then says so) and
    /// this sends the segments one by one.
    pub fn send_segments(&self, buf: &[u8], segment: usize, dest: Option<SocketAddr>) -> io::Result<usize> {
        check_segments(buf, segment)?;
        loop {
            let r = if self.gso_supported() {
                self.try_send_segments(Fd::Own, buf, segment, dest, None)
            } else {
                let mut parts: [&[u8]; MAX_GSO_SEGMENTS] = [&[]; MAX_GSO_SEGMENTS];
                let n = buf.chunks(segment).zip(parts.iter_mut()).map(|(c, p)| *p = c).count();
                self.send_many(&parts[..n.max(1)], dest).map(drop)
            };
            match r {
                Ok(()) => return Ok(buf.len()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(false, None)?;
                }
                // Refused by the device: quinn-udp turned GSO off; the loop sends one by one.
                Err(e) if !self.gso_supported() && gso_refused(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives into `batch` every datagram already queued on the socket, up to one per slot:
    /// waits at most `timeout` (`None`: no limit) for the first (`TimedOut` then), then takes
    /// what is there without waiting. Returns how many datagrams arrived, datagrams GRO
    /// coalesced counted one by one; read them with [`RecvBatch::datagrams`].
    pub fn recv_many(&self, batch: &mut RecvBatch, timeout: Option<Duration>) -> io::Result<usize> {
        let until = timeout.map(|t| Instant::now() + t);
        loop {
            match self.try_recv(Fd::Own, batch, batch.slots()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.wait(true, until)? {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "receive timed out"));
                    }
                }
                r => return r,
            }
        }
    }
}

/// Whether an error of a GSO send means the kernel or the route's device refused GSO (`EIO`:
/// no checksum offload; `EINVAL`: a segment larger than the path's MTU, or no support).
pub fn gso_refused(error: &io::Error) -> bool {
    sys::gso_refused(error)
}

fn check_segments(buf: &[u8], segment: usize) -> io::Result<()> {
    if segment == 0 || segment > usize::from(u16::MAX) {
        return Err(invalid("the GSO segment size must be between 1 and 65,535 bytes"));
    }
    if buf.len() > MAX_GSO_BYTES {
        return Err(invalid("more than 65,507 bytes in one GSO send"));
    }
    if buf.len().div_ceil(segment) > MAX_GSO_SEGMENTS {
        return Err(invalid("more than 64 segments in one GSO send"));
    }
    Ok(())
}

/// How many of `datagrams`, from the first, one GSO send can carry: equal sizes, the last one
/// possibly shorter but not empty (the kernel cannot cut an empty segment), at most
/// [`MAX_GSO_SEGMENTS`] and [`MAX_GSO_BYTES`]. At least one.
pub(crate) fn gso_run(datagrams: &[&[u8]]) -> usize {
    let Some(first) = datagrams.first() else { return 0 };
    let segment = first.len();
    let mut bytes = segment;
    let mut n = 1;
    for d in &datagrams[1..] {
        if n == MAX_GSO_SEGMENTS || d.is_empty() || d.len() > segment || bytes + d.len() > MAX_GSO_BYTES {
            break;
        }
        bytes += d.len();
        n += 1;
        if d.len() < segment {
            break;
        }
    }
    n
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gso_runs_split_at_size_changes_and_limits() {
        let a = [0u8; 1200];
        let short = [0u8; 100];
        assert_eq!(gso_run(&[]), 0);
        assert_eq!(gso_run(&[&a[..]]), 1);
        // A shorter datagram ends the run; a longer one starts the next.
        assert_eq!(gso_run(&[&a[..], &a[..], &short[..], &a[..]]), 3);
        assert_eq!(gso_run(&[&short[..], &a[..]]), 1);
        // An empty datagram is never a segment: it goes on its own.
        assert_eq!(gso_run(&[&a[..], &a[..], &[], &a[..]]), 2);
        assert_eq!(gso_run(&[&[], &[], &a[..]]), 1);
        // At most 64 segments, at most 65,507 bytes.
        let small = [&short[..]; 100];
        assert_eq!(gso_run(&small), 64);
        let big = [&a[..]; 60];
        // 54 * 1,200 = 64,800 bytes; one more would pass 65,507.
        assert_eq!(gso_run(&big), 54);
    }

    #[test]
    fn slots_split_by_stride_and_hand_out_each_datagram_once() {
        let mut b = RecvBatch::new(3, 100);
        let src: SocketAddr = "10.0.0.1:5".parse().unwrap();
        b.buf[..100].iter_mut().enumerate().for_each(|(i, x)| *x = i as u8);
        b.set_slot(0, 25, 10, src, None); // 10 + 10 + 5
        b.set_slot(1, 0, 0, src, None); // an empty datagram
        b.set_slot(2, 500, 0, src, None); // clamped to the slot
        assert_eq!(b.len(), 5);
        let lens: Vec<usize> = b.datagrams().map(|(d, _)| d.len()).collect();
        assert_eq!(lens, [10, 10, 5, 0, 100]);
        assert_eq!(b.datagrams_mut().map(|(d, _, _)| d.len()).collect::<Vec<_>>(), lens);
        assert_eq!(b.datagrams().next().unwrap().0, &(0..10).collect::<Vec<u8>>()[..]);
        let mut ranges = Vec::new();
        while b.has_pending() {
            ranges.push(b.next_datagram().unwrap().0);
        }
        assert_eq!(ranges, [0..10, 10..20, 20..25, 100..100, 200..300]);
        assert_eq!(b.next_datagram(), None);
        b.clear();
        assert!(b.is_empty() && !b.has_pending() && b.datagrams().next().is_none());
    }

    #[test]
    fn send_segments_checks_its_limits() {
        let s = Socket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = Some(s.local_addr().unwrap());
        let e = |r: io::Result<usize>| r.unwrap_err().kind();
        assert_eq!(e(s.send_segments(&[0; 100], 0, to)), io::ErrorKind::InvalidInput);
        assert_eq!(e(s.send_segments(&[0; 65_508], 2000, to)), io::ErrorKind::InvalidInput);
        assert_eq!(e(s.send_segments(&[0; 650], 10, to)), io::ErrorKind::InvalidInput);
        assert_eq!(e(s.send_segments(&[0; 10], 70_000, to)), io::ErrorKind::InvalidInput);
        assert_eq!(s.send_many(&[], to).unwrap(), 0);
        // Not connected, no destination.
        assert_eq!(s.send_many(&[b"x"], None).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    /// A datagram's local address comes with it: on a wildcard socket, the address the sender
    /// reached.
    #[cfg(target_os = "linux")]
    #[test]
    fn each_datagram_carries_the_local_address_it_arrived_on() {
        let rx = Socket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = rx.local_addr().unwrap().port();
        let tx = Socket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        for ip in ["127.0.0.1", "127.0.0.2"] {
            let to: SocketAddr = format!("{ip}:{port}").parse().unwrap();
            tx.send_many(&[b"hello"], Some(to)).unwrap();
            let mut batch = RecvBatch::new(4, 64);
            assert_eq!(rx.recv_many(&mut batch, Some(Duration::from_secs(5))).unwrap(), 1);
            let (d, from, local) = batch.datagrams_mut().next().unwrap();
            assert_eq!((&*d, from, local), (&b"hello"[..], tx.local_addr().unwrap(), Some(to.ip())));
        }
    }
}
