//! A blocking DTLS client over a connected UDP socket.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dtls_proto::pki::ServerName;
use dtls_proto::{Config, Connection, Event, HandshakeState};

use crate::{arm_read_timeout, earliest, is_timeout, MAX_DATAGRAM};

/// Most decrypted records held back when one datagram carried several.
const MAX_QUEUED: usize = 64;

/// One DTLS association with a server, over its own connected UDP socket.
#[derive(Debug)]
pub struct Client {
    socket: UdpSocket,
    conn: Connection,
    rx: Vec<u8>,
    tx: Vec<u8>,
    queued: VecDeque<Vec<u8>>,
}

impl Client {
    /// Binds an ephemeral local port of the server's address family, connects to `server` and
    /// completes the handshake within `timeout` (`None`: the configuration's handshake timeout).
    pub fn connect(server: SocketAddr, config: Arc<Config>, timeout: Option<Duration>) -> io::Result<Self> {
        let local: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let socket = UdpSocket::bind(local)?;
        socket.connect(server)?;
        Self::handshake(socket, config, timeout)
    }

    /// Like [`connect`](Self::connect), checking that the server's certificate is valid for
    /// `server_name` (a DNS name, also sent as SNI, or an IP address).
    pub fn connect_with_name(
        server: SocketAddr,
        server_name: &str,
        config: Arc<Config>,
        timeout: Option<Duration>,
    ) -> io::Result<Self> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid server name"))?;
        let local: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let socket = UdpSocket::bind(local)?;
        socket.connect(server)?;
        Self::handshake_with_name(socket, Some(name), config, timeout)
    }

    /// Runs the handshake over an already connected socket.
    pub fn handshake(socket: UdpSocket, config: Arc<Config>, timeout: Option<Duration>) -> io::Result<Self> {
        Self::handshake_with_name(socket, None, config, timeout)
    }

    /// Runs the handshake over an already connected socket, checking the server's certificate
    /// against `server_name`.
    pub fn handshake_with_name(
        socket: UdpSocket,
        server_name: Option<ServerName<'static>>,
        config: Arc<Config>,
        timeout: Option<Duration>,
    ) -> io::Result<Self> {
        let now = Instant::now();
        let deadline = timeout.map(|t| now + t);
        let conn = Connection::client_with_server_name(config, server_name, now)?;
        let mut c =
            Self { socket, conn, rx: vec![0; MAX_DATAGRAM], tx: Vec::with_capacity(2048), queued: VecDeque::new() };
        while !c.conn.is_established() {
            c.flush()?;
            if c.conn.handshake_state() == HandshakeState::PeerVerificationFailed {
                // A blocking handshake has no one to ask: a paused verification is a failure.
                let errors = c.conn.peer_verification_errors().to_vec();
                let _ = c.conn.abort_handshake();
                c.flush()?;
                return Err(dtls_proto::Error::PeerVerification(errors).into());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "DTLS handshake timed out"));
            }
            c.wait(deadline)?;
        }
        c.flush()?;
        Ok(c)
    }

    /// The protocol state (cipher suite, identity, counters…).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The server's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.peer_addr()
    }

    /// Sends `data` as one protected datagram. Returns `data.len()`.
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        self.tx.clear();
        self.conn.send(data, &mut self.tx)?;
        self.socket.send(&self.tx)?;
        Ok(data.len())
    }

    /// Receives one whole message into `buf` (truncated if `buf` is smaller), waiting at most
    /// `timeout` (`None`: forever). A timeout returns `ErrorKind::TimedOut` and loses nothing.
    pub fn recv(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(msg) = self.queued.pop_front() {
                let n = msg.len().min(buf.len());
                buf[..n].copy_from_slice(&msg[..n]);
                return Ok(n);
            }
            if self.conn.is_closed() {
                return Err(self
                    .conn
                    .last_error()
                    .cloned()
                    .map_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "connection closed"), Into::into));
            }
            if let Some(n) = self.wait_app(deadline, buf)? {
                return Ok(n);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "receive timed out"));
            }
        }
    }

    /// Sends close_notify and closes the association.
    pub fn close(&mut self) -> io::Result<()> {
        if self.conn.is_closed() {
            return Ok(());
        }
        self.conn.shutdown()?;
        self.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.conn.poll_transmit(&mut self.tx).is_some() {
            self.socket.send(&self.tx)?;
        }
        while let Some(ev) = self.conn.poll_event() {
            if let Event::Closed(e) = ev {
                tracing::debug!(error = %e, "connection closed");
            }
        }
        Ok(())
    }

    /// Waits for one datagram or a timer, until `deadline`; handles it.
    fn wait(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let mut scratch = [];
        self.wait_app(deadline, &mut scratch).map(|_| ())
    }

    /// Like `wait`, and copies the first application record into `buf` (queueing others).
    fn wait_app(&mut self, deadline: Option<Instant>, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let wake = earliest(self.conn.poll_timeout(), deadline);
        if !arm_read_timeout(&self.socket, wake)? {
            self.conn.handle_timeout(Instant::now())?;
            self.flush()?;
            return Ok(None);
        }
        let n = match self.socket.recv(&mut self.rx) {
            Ok(n) => n,
            Err(e) if is_timeout(&e) => {
                self.conn.handle_timeout(Instant::now())?;
                self.flush()?;
                return Ok(None);
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Ok(None),
            Err(e) => return Err(e),
        };
        let result = self.conn.handle_datagram(Instant::now(), &mut self.rx[..n]);
        let mut first = None;
        match result {
            Ok(received) => {
                for data in received.iter() {
                    if first.is_none() && !buf.is_empty() {
                        let n = data.len().min(buf.len());
                        buf[..n].copy_from_slice(&data[..n]);
                        first = Some(n);
                    } else if self.queued.len() < MAX_QUEUED {
                        self.queued.push_back(data.to_vec());
                    }
                }
            }
            Err(e) => {
                self.flush()?;
                return Err(e.into());
            }
        }
        self.flush()?;
        Ok(first)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
