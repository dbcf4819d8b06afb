//! The system calls quinn-udp does not make: `sendmmsg` (records of different sizes, many per
//! call; `rdtls-bench` shows it sends about a third more records per second on loopback than one
//! `sendmsg` each), waiting for readiness with `poll` (the blocking API), and the options we
//! set back after quinn-udp configured a socket.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

/// Puts back what quinn-udp changed and we do not want: it forbids IP fragmentation (QUIC sizes
/// its packets to the path), while DTLS application records up to 16 KiB may exceed the path
/// MTU and must still go out, fragmented, as they did before.
pub(super) fn restore_defaults(socket: &UdpSocket) {
    #[cfg(target_os = "linux")]
    {
        let ipv6 = socket.local_addr().is_ok_and(|a| a.is_ipv6());
        let _ = setsockopt_int(socket, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_WANT);
        if ipv6 {
            let _ = setsockopt_int(socket, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, libc::IPV6_PMTUDISC_WANT);
            let _ = setsockopt_int(socket, libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 0);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}

/// Turns UDP GRO on or off; `Ok(false)` when the kernel lacks it.
pub(super) fn set_gro(socket: &UdpSocket, on: bool) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        match setsockopt_int(socket, libc::SOL_UDP, libc::UDP_GRO, i32::from(on)) {
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

/// Whether a GSO send failed because the kernel or the route's device refused GSO.
pub(super) fn gso_refused(error: &io::Error) -> bool {
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

#[cfg(target_os = "linux")]
fn setsockopt_int(socket: &UdpSocket, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `value` is a live int and the length says so; the kernel only reads it. The
    // descriptor is open for the call (borrowed through `socket`).
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Receives one datagram without waiting (`WouldBlock` if none is queued), whatever the
/// socket's mode.
pub(super) fn recv_now(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<usize> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `buf` is live and writable for its length for the call; the descriptor is
        // open for the call (borrowed through `socket`).
        #[allow(unsafe_code)]
        let r = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        usize::try_from(r).map_err(|_| io::Error::last_os_error())
    }
    #[cfg(not(unix))]
    {
        socket.set_nonblocking(true)?;
        let r = socket.recv(buf);
        socket.set_nonblocking(false)?;
        r
    }
}

/// Waits until `socket` is readable (or writable), or `until` passes. Returns whether it is
/// ready; errors only for a failed `poll`.
pub(super) fn wait(socket: &UdpSocket, readable: bool, until: Option<Instant>) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let events = if readable { libc::POLLIN } else { libc::POLLOUT };
        poll_until(&mut [libc::pollfd { fd: socket.as_raw_fd(), events, revents: 0 }], until)
    }
    #[cfg(not(unix))]
    {
        // No poll here: look again every millisecond.
        let _ = (socket, readable);
        let step = std::time::Duration::from_millis(1);
        match until {
            Some(t) if Instant::now() >= t => Ok(false),
            _ => {
                std::thread::sleep(step);
                Ok(true)
            }
        }
    }
}

/// Waits until `socket` or `also` is readable, or `until` passes. Returns whether one is.
#[cfg(unix)]
pub(super) fn wait_readable_or(
    socket: &UdpSocket,
    also: std::os::fd::BorrowedFd<'_>,
    until: Option<Instant>,
) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let fd = |fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    poll_until(&mut [fd(socket.as_raw_fd()), fd(also.as_raw_fd())], until)
}

/// `poll` on `fds` until one is ready (`true`) or `until` passes (`false`).
#[cfg(unix)]
fn poll_until(fds: &mut [libc::pollfd], until: Option<Instant>) -> io::Result<bool> {
    loop {
        let timeout_ms = match until {
            None => -1,
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now());
                // Round up: waking a little late beats spinning a little early.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
            }
        };
        // SAFETY: `fds` is a live slice of pollfds and its length is passed with it; the
        // descriptors are open for the call (the callers borrow them).
        #[allow(unsafe_code)]
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        match r {
            n if n > 0 => return Ok(true),
            0 if until.is_some_and(|t| Instant::now() >= t) => return Ok(false),
            0 => {}
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// One `sendmmsg` call (nonblocking) of up to [`super::MAX_BATCH`] of `datagrams`, repeated
/// while each call sends everything it was given. `None` where there is no `sendmmsg`.
#[cfg(unix)]
pub(super) fn send_many(
    fd: std::os::fd::BorrowedFd<'_>,
    datagrams: &[&[u8]],
    dest: Option<SocketAddr>,
) -> Option<io::Result<usize>> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let dest = dest.map(RawAddr::new);
        let mut sent = 0;
        while sent < datagrams.len() {
            match send_mmsg(fd.as_raw_fd(), &datagrams[sent..], dest.as_ref()) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(_) if sent > 0 => break,
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(sent))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (fd, datagrams, dest);
        None
    }
}

/// A destination address in the kernel's layout.
#[cfg(target_os = "linux")]
struct RawAddr {
    name: [u8; 32],
    len: libc::socklen_t,
}

#[cfg(target_os = "linux")]
impl RawAddr {
    fn new(addr: SocketAddr) -> Self {
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
                b[4..8].copy_from_slice(&a.flowinfo().to_ne_bytes());
                b[8..24].copy_from_slice(&a.ip().octets());
                b[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
                size_of::<libc::sockaddr_in6>()
            }
        };
        Self { name: b, len: len as libc::socklen_t }
    }
}

/// One `sendmmsg` of up to [`super::MAX_BATCH`] of `datagrams`, without waiting; returns how
/// many went out.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn send_mmsg(fd: std::os::fd::RawFd, datagrams: &[&[u8]], dest: Option<&RawAddr>) -> io::Result<usize> {
    use std::ptr;
    const N: usize = super::MAX_BATCH;
    let n = datagrams.len().min(N);
    let mut iovs = [libc::iovec { iov_base: ptr::null_mut(), iov_len: 0 }; N];
    // SAFETY: mmsghdr is plain data; all-zero is a valid value (null pointers, zero lengths).
    let mut msgs: [libc::mmsghdr; N] = unsafe { std::mem::zeroed() };
    for (i, d) in datagrams[..n].iter().enumerate() {
        iovs[i] = libc::iovec { iov_base: d.as_ptr().cast_mut().cast(), iov_len: d.len() };
        let h = &mut msgs[i].msg_hdr;
        h.msg_iov = &raw mut iovs[i];
        h.msg_iovlen = 1;
        if let Some(d) = dest {
            h.msg_name = d.name.as_ptr().cast_mut().cast();
            h.msg_namelen = d.len;
        }
    }
    loop {
        // SAFETY: msgs[..n] hold live iovecs over the caller's datagrams and an optional live
        // name; the kernel reads those and writes only msgs[..n].msg_len. The descriptor is
        // open for the call (the caller borrows the socket).
        let r = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), n as libc::c_uint, libc::MSG_DONTWAIT) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
