//! Batched datagram I/O: many datagrams per system call.
//!
//! A DTLS record of 1,200 bytes costs far less to seal or open than the system call that
//! carries it, so at high rates the socket layer is what limits throughput. This module moves
//! many datagrams per call, on Linux:
//!
//! - [`send_many`] and [`recv_many`]: `sendmmsg` / `recvmmsg`, up to [`MAX_BATCH`] datagrams
//!   per call.
//! - [`send_segments`]: UDP generic segmentation offload (GSO, Linux 4.18+): one `sendmsg` of
//!   a buffer that the kernel cuts into datagrams of a fixed size (the `UDP_SEGMENT` control
//!   message). Probe with [`gso_supported`] first.
//! - [`set_gro`]: UDP generic receive offload (GRO, Linux 5.0+): the kernel hands over runs of
//!   equal-size datagrams from one sender as one buffer, which [`recv_many`] splits again by
//!   the segment size the kernel reports, so [`RecvBatch::datagrams`] always yields the
//!   original datagrams.
//!
//! Elsewhere the same functions send and receive one datagram per system call.
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
//! use dtls::udp::Batching;
//! use dtls::{Config, Connection, Listener, ListenerOptions};
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
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::ops::Range;
#[cfg(target_os = "linux")]
use std::os::fd::{AsFd, BorrowedFd};

/// Most datagrams one [`send_many`] or [`recv_many`] system call carries, and most receive
/// slots in a [`RecvBatch`].
pub const MAX_BATCH: usize = 64;

/// Most segments one [`send_segments`] call sends (the kernel's `UDP_MAX_SEGMENTS`).
pub const MAX_GSO_SEGMENTS: usize = 64;

/// Most bytes one [`send_segments`] call sends (the largest UDP payload over IPv4).
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

/// Whether the kernel supports UDP GSO ([`send_segments`]) on this socket: Linux 4.18 and
/// later. Older kernels ignore the segment size and would send one large datagram, so check
/// this before using [`send_segments`]. Always `false` outside Linux.
pub fn gso_supported(socket: &UdpSocket) -> bool {
    #[cfg(target_os = "linux")]
    {
        sys::getsockopt_int(socket.as_fd(), libc::SOL_UDP, libc::UDP_SEGMENT).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        false
    }
}

/// Turns UDP GRO on or off for this socket. Returns whether GRO is now on: `Ok(false)` when
/// asked to turn it on where the kernel lacks it (before Linux 5.0, or outside Linux).
///
/// With GRO on, the socket must be read with [`recv_many`] (or another reader that splits
/// coalesced datagrams by the `UDP_GRO` segment size): a plain `recv` would see a run of
/// datagrams as one.
pub fn set_gro(socket: &UdpSocket, on: bool) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        match sys::setsockopt_int(socket.as_fd(), libc::SOL_UDP, libc::UDP_GRO, i32::from(on)) {
            Ok(()) => Ok(on),
            Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => Ok(false),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (socket, on);
        Ok(false)
    }
}

/// Whether an error of [`send_segments`] means the kernel or the route's device refused GSO
/// (`EIO`: no checksum offload; `EINVAL`: a segment larger than the path's MTU; no support):
/// the same datagrams can still go out with [`send_many`].
pub fn gso_refused(error: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        matches!(error.raw_os_error(), Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = error;
        false
    }
}

/// Whether GSO refusal `error` holds for every later send on the socket (as opposed to a
/// segment too large for this route).
pub(crate) fn gso_unusable(error: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        matches!(error.raw_os_error(), Some(libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = error;
        true
    }
}

/// Sends `buf` as datagrams of `segment` bytes each (the last one may be shorter) with one
/// system call, using UDP GSO; to `dest`, or to the connected peer with `None`. Returns the
/// bytes sent (all of `buf`).
///
/// `buf` may hold at most [`MAX_GSO_SEGMENTS`] segments and [`MAX_GSO_BYTES`] bytes: callers
/// split larger runs (`InvalidInput` otherwise). A `buf` no longer than `segment` goes out as one
/// plain datagram. Check [`gso_supported`] first; if the kernel refuses the send,
/// [`gso_refused`] tells, and [`send_many`] can send the same datagrams. Outside Linux this
/// sends one datagram per system call.
pub fn send_segments(socket: &UdpSocket, buf: &[u8], segment: usize, dest: Option<SocketAddr>) -> io::Result<usize> {
    send_segments_on(SocketRef::Std(socket), buf, segment, dest)
}

/// [`send_segments`] on `socket`.
pub(crate) fn send_segments_on(
    socket: SocketRef<'_>,
    buf: &[u8],
    segment: usize,
    dest: Option<SocketAddr>,
) -> io::Result<usize> {
    if segment == 0 || segment > usize::from(u16::MAX) {
        return Err(invalid("the GSO segment size must be between 1 and 65,535 bytes"));
    }
    if buf.len() > MAX_GSO_BYTES {
        return Err(invalid("more than 65,507 bytes in one GSO send"));
    }
    if buf.len().div_ceil(segment) > MAX_GSO_SEGMENTS {
        return Err(invalid("more than 64 segments in one GSO send"));
    }
    if buf.len() <= segment {
        return socket.send_one(buf, dest);
    }
    #[cfg(target_os = "linux")]
    {
        // `segment` fits in u16: checked above.
        sys::send_gso(socket.fd(), buf, segment as u16, dest.map(sys::RawAddr::new).as_ref(), socket.send_flags())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let mut datagrams: [&[u8]; MAX_GSO_SEGMENTS] = [&[]; MAX_GSO_SEGMENTS];
        let mut n = 0;
        for (slot, chunk) in datagrams.iter_mut().zip(buf.chunks(segment)) {
            *slot = chunk;
            n += 1;
        }
        let sent = send_each(socket, &datagrams[..n], dest)?;
        Ok(datagrams[..sent].iter().map(|d| d.len()).sum())
    }
}

/// Sends each of `datagrams` to `dest` (or to the connected peer with `None`), up to
/// [`MAX_BATCH`] per `sendmmsg` call. Returns how many were sent: all of them, or fewer when
/// sending one failed after others went out (the failure then repeats on the next call), or
/// the error if none went out. Outside Linux this sends one datagram per system call.
pub fn send_many(socket: &UdpSocket, datagrams: &[&[u8]], dest: Option<SocketAddr>) -> io::Result<usize> {
    send_many_on(SocketRef::Std(socket), datagrams, dest)
}

/// [`send_many`] on `socket`.
pub(crate) fn send_many_on(socket: SocketRef<'_>, datagrams: &[&[u8]], dest: Option<SocketAddr>) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        let dest = dest.map(sys::RawAddr::new);
        let mut sent = 0;
        while sent < datagrams.len() {
            match sys::send_mmsg(socket.fd(), &datagrams[sent..], dest.as_ref(), socket.send_flags()) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(_) if sent > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }
    #[cfg(not(target_os = "linux"))]
    {
        send_each(socket, datagrams, dest)
    }
}

/// Sends each datagram with its own system call; same contract as [`send_many`].
pub(crate) fn send_each(socket: SocketRef<'_>, datagrams: &[&[u8]], dest: Option<SocketAddr>) -> io::Result<usize> {
    for (i, d) in datagrams.iter().enumerate() {
        if let Err(e) = socket.send_one(d, dest) {
            return if i > 0 { Ok(i) } else { Err(e) };
        }
    }
    Ok(datagrams.len())
}

/// The socket a batched operation works on.
///
/// The public functions take std's socket, which waits as it is set to (blocking, with its
/// timeouts, or nonblocking). The async connection passes its tokio socket, which is
/// nonblocking: every operation on it returns `WouldBlock` instead of waiting, and the caller
/// waits for readiness and tries again.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SocketRef<'a> {
    Std(&'a UdpSocket),
    /// A std socket used from async code: every send is made without waiting (`WouldBlock`
    /// when the send buffer is full), whatever the socket's own setting.
    StdNoWait(&'a UdpSocket),
    #[cfg(feature = "tokio")]
    Tokio(&'a tokio::net::UdpSocket),
}

impl SocketRef<'_> {
    /// The descriptor, for the system calls.
    #[cfg(target_os = "linux")]
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Self::Std(s) | Self::StdNoWait(s) => s.as_fd(),
            #[cfg(feature = "tokio")]
            Self::Tokio(s) => s.as_fd(),
        }
    }

    /// The flags of a send system call: never wait on a no-wait socket.
    #[cfg(target_os = "linux")]
    fn send_flags(&self) -> libc::c_int {
        match self {
            Self::StdNoWait(_) => libc::MSG_DONTWAIT,
            _ => 0,
        }
    }

    /// Sends one datagram to `dest`, or to the connected peer with `None`.
    fn send_one(self, datagram: &[u8], dest: Option<SocketAddr>) -> io::Result<usize> {
        match self {
            Self::Std(s) => match dest {
                Some(to) => s.send_to(datagram, to),
                None => s.send(datagram),
            },
            Self::StdNoWait(s) => send_now(s, datagram, dest),
            // The plain system call: the caller already holds tokio's readiness.
            #[cfg(feature = "tokio")]
            Self::Tokio(s) => {
                let s = socket2::SockRef::from(s);
                match dest {
                    Some(to) => s.send_to(datagram, &to.into()),
                    None => s.send(datagram),
                }
            }
        }
    }

    /// Receives one datagram and its source; without waiting unless `wait` (a tokio socket
    /// never waits).
    #[cfg(not(target_os = "linux"))]
    fn recv_from(self, buf: &mut [u8], wait: bool) -> io::Result<(usize, SocketAddr)> {
        match self {
            Self::Std(s) | Self::StdNoWait(s) => without_waiting(s, wait, |s| s.recv_from(buf)),
            #[cfg(feature = "tokio")]
            Self::Tokio(s) => s.try_recv_from(buf),
        }
    }
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

/// What one receive slot holds after [`recv_many`].
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Bytes received.
    len: usize,
    /// Size of each datagram in the slot (GRO), the last one possibly shorter; `len` without GRO.
    stride: usize,
    source: SocketAddr,
}

const NO_SOURCE: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl Slot {
    const EMPTY: Self = Self { len: 0, stride: 0, source: NO_SOURCE };

    /// How many datagrams the slot holds (an empty datagram is one).
    fn datagrams(&self) -> usize {
        if self.len == 0 {
            1
        } else {
            self.len.div_ceil(self.stride.max(1))
        }
    }
}

/// Receive buffers for [`recv_many`]: up to [`MAX_BATCH`] slots, allocated once and reused,
/// with each slot's length, GRO segment size and source address.
///
/// A slot receives one datagram or, with GRO on, one run of coalesced datagrams, so with GRO
/// the slots must be [`MAX_SLOT`] bytes ([`for_gro`](Self::for_gro)). A datagram larger than
/// its slot is truncated, as by `recv`.
pub struct RecvBatch {
    /// `slots.len()` slots of `slot_size` bytes, back to back.
    buf: Box<[u8]>,
    slot_size: usize,
    slots: Box<[Slot]>,
    /// Slots the last receive filled.
    filled: usize,
    /// Datagrams in them.
    count: usize,
    /// The next datagram [`next_datagram`](Self::next_datagram) hands out: slot and offset.
    cursor: (usize, usize),
    #[cfg(target_os = "linux")]
    names: Box<[sys::Name]>,
    #[cfg(target_os = "linux")]
    controls: Box<[sys::Control]>,
}

impl fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvBatch")
            .field("slots", &self.slots.len())
            .field("slot_size", &self.slot_size)
            .field("datagrams", &self.count)
            .finish_non_exhaustive()
    }
}

impl RecvBatch {
    /// `slots` receive slots (1 to [`MAX_BATCH`], clamped) of `slot_size` bytes (1 to
    /// [`MAX_SLOT`], clamped).
    pub fn new(slots: usize, slot_size: usize) -> Self {
        let slots = slots.clamp(1, MAX_BATCH);
        let slot_size = slot_size.clamp(1, MAX_SLOT);
        Self {
            buf: vec![0; slots * slot_size].into_boxed_slice(),
            slot_size,
            slots: vec![Slot::EMPTY; slots].into_boxed_slice(),
            filled: 0,
            count: 0,
            cursor: (0, 0),
            #[cfg(target_os = "linux")]
            names: vec![sys::Name::default(); slots].into_boxed_slice(),
            #[cfg(target_os = "linux")]
            controls: vec![sys::Control::default(); slots].into_boxed_slice(),
        }
    }

    /// `slots` slots of [`MAX_SLOT`] bytes: room for anything GRO coalesces.
    pub fn for_gro(slots: usize) -> Self {
        Self::new(slots, MAX_SLOT)
    }

    /// Number of receive slots.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Size of each slot.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Datagrams the last [`recv_many`] received.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the last [`recv_many`] received nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Forgets what was received.
    pub fn clear(&mut self) {
        self.filled = 0;
        self.count = 0;
        self.cursor = (0, 0);
    }

    /// Each datagram the last [`recv_many`] received, in order, with its source address;
    /// datagrams GRO coalesced come out split again.
    pub fn datagrams(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> + '_ {
        self.buf.chunks(self.slot_size).zip(&self.slots[..self.filled]).flat_map(|(slot, s)| {
            // `chunks` yields nothing for an empty datagram: yield it once.
            let empty: Option<&[u8]> = (s.len == 0).then_some(&[]);
            slot[..s.len].chunks(s.stride.max(1)).chain(empty).map(move |d| (d, s.source))
        })
    }

    /// Like [`datagrams`](Self::datagrams), mutable: decrypt or rewrite them in place.
    pub fn datagrams_mut(&mut self) -> impl Iterator<Item = (&mut [u8], SocketAddr)> + '_ {
        self.buf.chunks_mut(self.slot_size).zip(&self.slots[..self.filled]).flat_map(|(slot, s)| {
            let empty = (s.len == 0).then(<&mut [u8]>::default);
            slot[..s.len].chunks_mut(s.stride.max(1)).chain(empty).map(move |d| (d, s.source))
        })
    }

    /// The next datagram not yet handed out since the last receive: its range in
    /// [`buffer`](Self::buffer) and its source.
    pub(crate) fn next_datagram(&mut self) -> Option<(Range<usize>, SocketAddr)> {
        loop {
            let (i, off) = self.cursor;
            if i >= self.filled {
                return None;
            }
            let s = self.slots[i];
            if off < s.len || (s.len == 0 && off == 0) {
                let end = (off + s.stride.max(1)).min(s.len);
                // An empty datagram moves the cursor past its slot.
                self.cursor = (i, if s.len == 0 { 1 } else { end });
                let base = i * self.slot_size;
                return Some((base + off..base + end, s.source));
            }
            self.cursor = (i + 1, 0);
        }
    }

    /// Whether [`next_datagram`](Self::next_datagram) has more.
    pub(crate) fn has_pending(&self) -> bool {
        let (i, off) = self.cursor;
        i < self.filled && (off < self.slots[i].len || (self.slots[i].len == 0 && off == 0) || i + 1 < self.filled)
    }

    /// All slots, back to back.
    pub(crate) fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// All slots, back to back, mutable.
    pub(crate) fn buffer_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Records what a receive put in slot `i` (`gro`: the reported segment size, 0 for none).
    fn set_slot(&mut self, i: usize, len: usize, gro: usize, source: SocketAddr) {
        let len = len.min(self.slot_size);
        let stride = if gro > 0 && gro < len { gro } else { len };
        let slot = Slot { len, stride, source };
        self.slots[i] = slot;
        self.filled = i + 1;
        self.count += slot.datagrams();
    }
}

/// Receives into `batch` every datagram already queued on the socket, up to one per slot
/// (`recvmmsg` with `MSG_WAITFORONE`): waits for the first as the socket is set to (its read
/// timeout, or nonblocking: `WouldBlock`, like `recv`), then takes what is there without
/// waiting. Returns how many datagrams arrived, datagrams GRO coalesced counted one by one;
/// read them with [`RecvBatch::datagrams`]. Outside Linux this receives one datagram per call.
pub fn recv_many(socket: &UdpSocket, batch: &mut RecvBatch) -> io::Result<usize> {
    let slots = batch.slots();
    recv_into(SocketRef::Std(socket), batch, slots, true)
}

/// [`recv_many`] into at most `max` slots; `wait: false` does not wait for the first datagram
/// (`MSG_DONTWAIT`).
pub(crate) fn recv_into(socket: SocketRef<'_>, batch: &mut RecvBatch, max: usize, wait: bool) -> io::Result<usize> {
    batch.clear();
    let max = max.clamp(1, batch.slots());
    #[cfg(target_os = "linux")]
    {
        sys::recv_mmsg(socket.fd(), batch, max, wait)?;
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = max;
        let slot = batch.slot_size;
        let (len, source) = socket.recv_from(&mut batch.buf[..slot], wait)?;
        batch.set_slot(0, len, 0, source);
    }
    Ok(batch.count)
}

/// Receives one datagram without waiting (`WouldBlock` if none is queued).
pub(crate) fn recv_now(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        sys::recv_dontwait(socket.as_fd(), buf)
    }
    #[cfg(not(target_os = "linux"))]
    {
        without_waiting(socket, false, |s| s.recv(buf))
    }
}

/// Sends one datagram without waiting for room in the send buffer (`WouldBlock` if full), to
/// `dest` or to the connected peer.
pub(crate) fn send_now(socket: &UdpSocket, datagram: &[u8], dest: Option<SocketAddr>) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        let s = socket2::SockRef::from(socket);
        match dest {
            Some(to) => s.send_to_with_flags(datagram, &to.into(), libc::MSG_DONTWAIT),
            None => s.send_with_flags(datagram, libc::MSG_DONTWAIT),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        without_waiting(socket, false, |s| match dest {
            Some(to) => s.send_to(datagram, to),
            None => s.send(datagram),
        })
    }
}

/// Runs `op` with the socket nonblocking unless `wait`.
#[cfg(not(target_os = "linux"))]
fn without_waiting<T>(socket: &UdpSocket, wait: bool, op: impl FnOnce(&UdpSocket) -> io::Result<T>) -> io::Result<T> {
    if wait {
        return op(socket);
    }
    socket.set_nonblocking(true)?;
    let r = op(socket);
    socket.set_nonblocking(false)?;
    r
}

/// The system calls, on Linux.
#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::mem::size_of;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::{AsRawFd, BorrowedFd};
    use std::ptr;

    use super::{RecvBatch, MAX_BATCH, NO_SOURCE};

    /// Room for a `sockaddr_in` or `sockaddr_in6`, in the kernel's layout.
    #[derive(Clone, Copy, Debug, Default)]
    #[repr(C, align(8))]
    pub(super) struct Name([u8; 32]);

    /// Room for the control messages we send or expect (one `UDP_SEGMENT` or `UDP_GRO`), aligned
    /// for `cmsghdr`.
    #[derive(Clone, Copy, Debug)]
    #[repr(C, align(8))]
    pub(super) struct Control([u8; 64]);

    impl Default for Control {
        fn default() -> Self {
            Self([0; 64])
        }
    }

    /// A destination address in the kernel's layout.
    pub(super) struct RawAddr {
        name: Name,
        len: libc::socklen_t,
    }

    impl RawAddr {
        pub(super) fn new(addr: SocketAddr) -> Self {
            let mut b = [0u8; 32];
            let len = match addr {
                SocketAddr::V4(a) => {
                    b[0..2].copy_from_slice(&(libc::AF_INET as libc::sa_family_t).to_ne_bytes());
                    b[2..4].copy_from_slice(&a.port().to_be_bytes());
                    b[4..8].copy_from_slice(&a.ip().octets());
                    size_of::<libc::sockaddr_in>()
                }
                SocketAddr::V6(a) => {
                    b[0..2].copy_from_slice(&(libc::AF_INET6 as libc::sa_family_t).to_ne_bytes());
                    b[2..4].copy_from_slice(&a.port().to_be_bytes());
                    // Stored as given, as std does (network order is the caller's business).
                    b[4..8].copy_from_slice(&a.flowinfo().to_ne_bytes());
                    b[8..24].copy_from_slice(&a.ip().octets());
                    b[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
                    size_of::<libc::sockaddr_in6>()
                }
            };
            Self { name: Name(b), len: len as libc::socklen_t }
        }
    }

    /// Reads a `sockaddr_in`/`sockaddr_in6` the kernel wrote.
    pub(super) fn decode_addr(b: &[u8]) -> Option<SocketAddr> {
        let family = libc::sa_family_t::from_ne_bytes(b.get(0..2)?.try_into().ok()?);
        let port = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
        match i32::from(family) {
            libc::AF_INET => {
                let ip: [u8; 4] = b.get(4..8)?.try_into().ok()?;
                Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
            }
            libc::AF_INET6 => {
                let flow = u32::from_ne_bytes(b.get(4..8)?.try_into().ok()?);
                let ip: [u8; 16] = b.get(8..24)?.try_into().ok()?;
                let scope = u32::from_ne_bytes(b.get(24..28)?.try_into().ok()?);
                Some(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, flow, scope)))
            }
            _ => None,
        }
    }

    fn check(r: isize) -> io::Result<usize> {
        usize::try_from(r).map_err(|_| io::Error::last_os_error())
    }

    #[allow(unsafe_code)]
    pub(super) fn getsockopt_int(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` are live, writable and describe an int-sized buffer; the
        // descriptor is open for the call (borrowed).
        let r = unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, (&raw mut value).cast(), &mut len) };
        check(r as isize).map(|_| value)
    }

    #[allow(unsafe_code)]
    pub(super) fn setsockopt_int(
        fd: BorrowedFd<'_>,
        level: libc::c_int,
        name: libc::c_int,
        value: libc::c_int,
    ) -> io::Result<()> {
        // SAFETY: `value` is a live int and the length says so; the kernel only reads it. The
        // descriptor is open for the call (borrowed).
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&raw const value).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        check(r as isize).map(|_| ())
    }

    /// A `msghdr` with every pointer null and every length zero.
    #[allow(unsafe_code)]
    fn empty_msghdr() -> libc::msghdr {
        // SAFETY: msghdr is plain data; all-zero is a valid value (null pointers, zero lengths).
        unsafe { std::mem::zeroed() }
    }

    /// A `mmsghdr` array with every pointer null and every length zero.
    #[allow(unsafe_code)]
    fn empty_mmsghdrs() -> [libc::mmsghdr; MAX_BATCH] {
        // SAFETY: mmsghdr is plain data; all-zero is a valid value (null pointers, zero lengths).
        unsafe { std::mem::zeroed() }
    }

    /// Writes one control message with a `u16` payload into `control` and points `msg` at it.
    #[allow(unsafe_code)]
    fn put_cmsg(msg: &mut libc::msghdr, control: &mut Control, level: libc::c_int, kind: libc::c_int, value: u16) {
        // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes.
        let (space, len) = unsafe {
            (libc::CMSG_SPACE(size_of::<u16>() as u32) as usize, libc::CMSG_LEN(size_of::<u16>() as u32) as usize)
        };
        debug_assert!(space <= size_of::<Control>());
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at `space` writable bytes aligned for cmsghdr (Control is
        // 8-aligned and 64 bytes), so CMSG_FIRSTHDR returns a header inside it (checked non-null)
        // whose CMSG_DATA has room for the u16 payload (CMSG_LEN(2) <= space).
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(msg);
            if cmsg.is_null() {
                return;
            }
            (*cmsg).cmsg_level = level;
            (*cmsg).cmsg_type = kind;
            (*cmsg).cmsg_len = len as _;
            ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), value);
        }
    }

    /// The `UDP_GRO` segment size among the control messages the kernel returned; 0 if none.
    #[allow(unsafe_code)]
    fn gro_segment(msg: &libc::msghdr) -> usize {
        let mut segment = 0;
        // SAFETY: the kernel filled msg_control up to msg_controllen, which it capped at our
        // buffer's size; CMSG_FIRSTHDR/CMSG_NXTHDR stay inside it and return null at its end;
        // the payload is read only if cmsg_len says it holds an int, unaligned.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(msg);
            while !cmsg.is_null() {
                let c = &*cmsg;
                if c.cmsg_level == libc::SOL_UDP
                    && c.cmsg_type == libc::UDP_GRO
                    && c.cmsg_len as usize >= libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as usize
                {
                    let v = ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                    segment = usize::try_from(v).unwrap_or(0);
                }
                cmsg = libc::CMSG_NXTHDR(msg, cmsg);
            }
        }
        segment
    }

    /// One `sendmsg` of `buf` with a `UDP_SEGMENT` control message.
    #[allow(unsafe_code)]
    pub(super) fn send_gso(
        fd: BorrowedFd<'_>,
        buf: &[u8],
        segment: u16,
        dest: Option<&RawAddr>,
        flags: libc::c_int,
    ) -> io::Result<usize> {
        let mut iov = libc::iovec { iov_base: buf.as_ptr().cast_mut().cast(), iov_len: buf.len() };
        let mut control = Control::default();
        let mut msg = empty_msghdr();
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        if let Some(d) = dest {
            msg.msg_name = d.name.0.as_ptr().cast_mut().cast();
            msg.msg_namelen = d.len;
        }
        put_cmsg(&mut msg, &mut control, libc::SOL_UDP, libc::UDP_SEGMENT, segment);
        loop {
            // SAFETY: every pointer in `msg` (the iovec over `buf`, the name, the control
            // buffer) is live for the call and the kernel only reads through them; the
            // descriptor is open for the call (borrowed).
            let r = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, flags) };
            match check(r) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// One `sendmmsg` of up to [`MAX_BATCH`] of `datagrams`; returns how many went out.
    #[allow(unsafe_code)]
    pub(super) fn send_mmsg(
        fd: BorrowedFd<'_>,
        datagrams: &[&[u8]],
        dest: Option<&RawAddr>,
        flags: libc::c_int,
    ) -> io::Result<usize> {
        let n = datagrams.len().min(MAX_BATCH);
        let mut iovs = [libc::iovec { iov_base: ptr::null_mut(), iov_len: 0 }; MAX_BATCH];
        let mut msgs = empty_mmsghdrs();
        for (i, d) in datagrams[..n].iter().enumerate() {
            iovs[i] = libc::iovec { iov_base: d.as_ptr().cast_mut().cast(), iov_len: d.len() };
            let h = &mut msgs[i].msg_hdr;
            h.msg_iov = &raw mut iovs[i];
            h.msg_iovlen = 1;
            if let Some(d) = dest {
                h.msg_name = d.name.0.as_ptr().cast_mut().cast();
                h.msg_namelen = d.len;
            }
        }
        loop {
            // SAFETY: msgs[..n] hold live iovecs over the caller's datagrams and an optional
            // live name; the kernel reads those and writes only msgs[..n].msg_len. The
            // descriptor is open for the call (borrowed).
            let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), n as libc::c_uint, flags) };
            match check(r as isize) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// One `recvmmsg` into up to `max` slots of `batch`.
    #[allow(unsafe_code)]
    pub(super) fn recv_mmsg(fd: BorrowedFd<'_>, batch: &mut RecvBatch, max: usize, wait: bool) -> io::Result<()> {
        let n = max.min(batch.slots.len()).min(MAX_BATCH);
        let mut iovs = [libc::iovec { iov_base: ptr::null_mut(), iov_len: 0 }; MAX_BATCH];
        let mut msgs = empty_mmsghdrs();
        let slots = batch.buf.chunks_mut(batch.slot_size);
        for (i, ((slot, name), control)) in
            slots.zip(batch.names.iter_mut()).zip(batch.controls.iter_mut()).take(n).enumerate()
        {
            iovs[i] = libc::iovec { iov_base: slot.as_mut_ptr().cast(), iov_len: slot.len() };
            let h = &mut msgs[i].msg_hdr;
            h.msg_iov = &raw mut iovs[i];
            h.msg_iovlen = 1;
            h.msg_name = name.0.as_mut_ptr().cast();
            h.msg_namelen = size_of::<Name>() as libc::socklen_t;
            h.msg_control = control.0.as_mut_ptr().cast();
            h.msg_controllen = size_of::<Control>() as _;
        }
        let flags = libc::MSG_WAITFORONE | if wait { 0 } else { libc::MSG_DONTWAIT };
        // SAFETY: msgs[..n] point at distinct live slots, names and control buffers of `batch`
        // (borrowed mutably for the call) with their true sizes; the kernel writes only there
        // and into msgs[..n]. A null timeout leaves waiting to the socket's settings. The
        // descriptor is open for the call (borrowed).
        let r = unsafe { libc::recvmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), n as libc::c_uint, flags, ptr::null_mut()) };
        let got = check(r as isize)?.min(n);
        for (i, m) in msgs[..got].iter().enumerate() {
            let h = &m.msg_hdr;
            let name_len = (h.msg_namelen as usize).min(size_of::<Name>());
            let source = decode_addr(&batch.names[i].0[..name_len]).unwrap_or(NO_SOURCE);
            batch.set_slot(i, m.msg_len as usize, gro_segment(h), source);
        }
        Ok(())
    }

    /// One `recv` with `MSG_DONTWAIT`.
    #[allow(unsafe_code)]
    pub(super) fn recv_dontwait(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is live and writable for its length for the call; the descriptor is
        // open for the call (borrowed).
        let r = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        check(r)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn addresses_round_trip_through_the_kernel_layout() {
            for addr in ["127.0.0.1:4433", "[::1]:443", "[fe80::1%7]:9", "0.0.0.0:0"] {
                let addr: SocketAddr = addr.parse().unwrap();
                let raw = RawAddr::new(addr);
                assert_eq!(decode_addr(&raw.name.0[..raw.len as usize]), Some(addr));
            }
            assert_eq!(decode_addr(&[]), None);
            assert_eq!(decode_addr(&[0xff; 32]), None);
            assert_eq!(decode_addr(&RawAddr::new("[::1]:1".parse().unwrap()).name.0[..20]), None);
        }
    }
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
        b.set_slot(0, 25, 10, src); // 10 + 10 + 5
        b.set_slot(1, 0, 0, src); // an empty datagram
        b.set_slot(2, 500, 0, src); // clamped to the slot
        assert_eq!(b.len(), 5);
        let lens: Vec<usize> = b.datagrams().map(|(d, _)| d.len()).collect();
        assert_eq!(lens, [10, 10, 5, 0, 100]);
        assert_eq!(b.datagrams_mut().map(|(d, _)| d.len()).collect::<Vec<_>>(), lens);
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
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = Some(s.local_addr().unwrap());
        let e = |r: io::Result<usize>| r.unwrap_err().kind();
        assert_eq!(e(send_segments(&s, &[0; 100], 0, to)), io::ErrorKind::InvalidInput);
        assert_eq!(e(send_segments(&s, &[0; 65_508], 2000, to)), io::ErrorKind::InvalidInput);
        assert_eq!(e(send_segments(&s, &[0; 650], 10, to)), io::ErrorKind::InvalidInput);
        assert_eq!(e(send_segments(&s, &[0; 10], 70_000, to)), io::ErrorKind::InvalidInput);
        assert_eq!(send_many(&s, &[], to).unwrap(), 0);
    }
}
