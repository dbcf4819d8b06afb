//! Socket options, as EdgerOS's `dtls` module exposes them, set through `socket2`.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// Smallest send/receive buffer size accepted (EdgerOS: 1 KiB).
pub const MIN_BUFFER_SIZE: usize = 1024;
/// Largest send/receive buffer size accepted (EdgerOS: 16 MiB).
pub const MAX_BUFFER_SIZE: usize = 16 * 1024 * 1024;

/// Options applied to a UDP socket when it is created. Unset options keep the system default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketOptions {
    /// IP time-to-live / IPv6 unicast hop limit (1–255).
    pub ttl: Option<u32>,
    /// Bind to a network device by name (Linux `SO_BINDTODEVICE`; needs privileges). An empty
    /// name removes a binding: all interfaces again (EdgerOS `bindToDevice()`).
    pub bind_device: Option<String>,
    /// For IPv6 sockets: accept IPv6 only (`true`) or IPv4-mapped too (`false`, dual-stack).
    pub ipv6_only: Option<bool>,
    /// Send buffer size in bytes (1 KiB–16 MiB). Linux reports back twice the value set.
    pub send_buffer_size: Option<usize>,
    /// Receive buffer size in bytes (1 KiB–16 MiB). Linux reports back twice the value set.
    pub recv_buffer_size: Option<usize>,
    /// `SO_REUSEADDR` and `SO_REUSEPORT`: let several sockets bind the same address and port
    /// (multi-worker servers, per-connection sockets).
    pub reuse_port: bool,
    /// Watches the connections made with these options (not a system option): datagrams as
    /// they arrive, protocol events, handshake progress.
    pub observer: Option<crate::Observer>,
}

impl SocketOptions {
    /// Sets the TTL (hop limit).
    pub fn ttl(mut self, ttl: u32) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Binds to a device.
    pub fn bind_device(mut self, device: impl Into<String>) -> Self {
        self.bind_device = Some(device.into());
        self
    }

    /// Removes a device binding: the socket uses every interface again (EdgerOS
    /// `bindToDevice()` with no argument). For [`set_socket_options`](crate::Connection::set_socket_options).
    pub fn unbind_device(mut self) -> Self {
        self.bind_device = Some(String::new());
        self
    }

    /// IPv6 only, or dual-stack.
    pub fn ipv6_only(mut self, only: bool) -> Self {
        self.ipv6_only = Some(only);
        self
    }

    /// The send buffer size.
    pub fn send_buffer_size(mut self, bytes: usize) -> Self {
        self.send_buffer_size = Some(bytes);
        self
    }

    /// The receive buffer size.
    pub fn recv_buffer_size(mut self, bytes: usize) -> Self {
        self.recv_buffer_size = Some(bytes);
        self
    }

    /// Address and port reuse.
    pub fn reuse_port(mut self, reuse: bool) -> Self {
        self.reuse_port = reuse;
        self
    }

    /// Watches the connections made with these options (see [`crate::Observer`]).
    pub fn observer(mut self, observer: crate::Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Checks every value; errors are `InvalidInput` with the reason.
    pub fn validate(&self) -> io::Result<()> {
        let bad = |why: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()));
        if self.ttl.is_some_and(|t| !(1..=255).contains(&t)) {
            return bad("TTL must be between 1 and 255");
        }
        for (name, v) in [("send", self.send_buffer_size), ("receive", self.recv_buffer_size)] {
            if v.is_some_and(|v| !(MIN_BUFFER_SIZE..=MAX_BUFFER_SIZE).contains(&v)) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{name} buffer size must be between 1 KiB and 16 MiB"),
                ));
            }
        }
        if self.bind_device.as_ref().is_some_and(|d| d.len() > 15) {
            return bad("device name must be at most 15 bytes");
        }
        Ok(())
    }

    /// Creates a UDP socket for `addr` with these options and binds it.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<UdpSocket> {
        self.validate()?;
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if self.reuse_port {
            socket.set_reuse_address(true)?;
            #[cfg(unix)]
            socket.set_reuse_port(true)?;
        }
        if addr.is_ipv6() {
            if let Some(only) = self.ipv6_only {
                socket.set_only_v6(only)?;
            }
        } else if self.ipv6_only.is_some() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "IPv6-only applies to IPv6 sockets"));
        }
        self.apply_after_bind_options(&socket, addr.is_ipv6())?;
        socket.bind(&addr.into())?;
        Ok(socket.into())
    }

    /// Applies the options that can change on a bound socket.
    pub fn apply(&self, socket: &UdpSocket) -> io::Result<()> {
        self.validate()?;
        let ipv6 = socket.local_addr()?.is_ipv6();
        self.apply_after_bind_options(&SockRef::from(socket), ipv6)
    }

    fn apply_after_bind_options(&self, socket: &Socket, ipv6: bool) -> io::Result<()> {
        if let Some(ttl) = self.ttl {
            if ipv6 {
                socket.set_unicast_hops_v6(ttl)?;
            } else {
                socket.set_ttl_v4(ttl)?;
            }
        }
        if let Some(n) = self.send_buffer_size {
            socket.set_send_buffer_size(n)?;
        }
        if let Some(n) = self.recv_buffer_size {
            socket.set_recv_buffer_size(n)?;
        }
        if let Some(dev) = &self.bind_device {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            socket.bind_device(Some(dev.as_bytes()).filter(|d| !d.is_empty()))?;
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            {
                let _ = dev;
                return Err(io::Error::new(io::ErrorKind::Unsupported, "binding to a device needs Linux"));
            }
        }
        Ok(())
    }
}

/// The options of a socket, as the system reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketInfo {
    /// TTL or hop limit.
    pub ttl: u32,
    /// Send buffer size (Linux: twice the value set).
    pub send_buffer_size: usize,
    /// Receive buffer size (Linux: twice the value set).
    pub recv_buffer_size: usize,
    /// IPv6-only, for IPv6 sockets.
    pub ipv6_only: Option<bool>,
    /// The device bound to, if any.
    pub bind_device: Option<String>,
}

/// Reads a socket's options back.
pub fn socket_info(socket: &UdpSocket) -> io::Result<SocketInfo> {
    let s = SockRef::from(socket);
    let ipv6 = socket.local_addr()?.is_ipv6();
    Ok(SocketInfo {
        ttl: if ipv6 { s.unicast_hops_v6()? } else { s.ttl_v4()? },
        send_buffer_size: s.send_buffer_size()?,
        recv_buffer_size: s.recv_buffer_size()?,
        ipv6_only: if ipv6 { Some(s.only_v6()?) } else { None },
        #[cfg(any(target_os = "linux", target_os = "android"))]
        bind_device: s.device()?.map(|d| String::from_utf8_lossy(&d).into_owned()),
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        bind_device: None,
    })
}
