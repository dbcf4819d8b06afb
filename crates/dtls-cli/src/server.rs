//! Qt's DTLS server example: one UDP socket, a stateless cookie verifier, one connection per
//! verified peer, a reply `to <peer>: ACK` for every datagram, and close_notify to every peer on
//! shutdown.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use dtls_proto::{Config, Connection, ConnectionHandle, DatagramEvent, Endpoint, HandshakeState};

use crate::log::hex;

/// The example's pre-shared key, `\x1a\x2b\x3c\x4d\x5e\x6f`.
pub(crate) const EXAMPLE_PSK: &[u8] = b"\x1a\x2b\x3c\x4d\x5e\x6f";
/// The example server's identity hint.
pub(crate) const EXAMPLE_HINT: &str = "Qt DTLS example server";

/// What the server did, for the demo's summary.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ServerStats {
    pub(crate) handshakes: usize,
    pub(crate) datagrams: usize,
    pub(crate) shutdown_sent: usize,
}

struct Peer {
    handle: ConnectionHandle,
    conn: Connection,
    /// When the peer's last datagram arrived.
    last_seen: Instant,
}

/// The example server, driving the sans-IO core directly as Qt's example drives QDtls.
pub(crate) struct DtlsServer {
    socket: UdpSocket,
    endpoint: Endpoint,
    peers: HashMap<SocketAddr, Peer>,
    rx: Vec<u8>,
    tx: Vec<u8>,
    stats: ServerStats,
    idle_timeout: Option<Duration>,
}

/// The example server's configuration: any identity, the example key, the example hint.
pub(crate) fn example_config() -> anyhow::Result<Config> {
    Ok(Config::builder()
        .psk_identity_hint(EXAMPLE_HINT)
        .psk_server_callback(|identity| {
            tracing::info!("PSK callback, received a client's identity: '{}'", String::from_utf8_lossy(identity));
            Some(EXAMPLE_PSK.to_vec().into())
        })
        .build()?)
}

impl DtlsServer {
    pub(crate) fn listen(addr: SocketAddr, config: Config) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind(addr).with_context(|| format!("cannot bind {addr}"))?;
        let endpoint = Endpoint::new(Arc::new(config), Instant::now())?;
        tracing::info!("Server is listening on address {} and port {}", addr.ip(), socket.local_addr()?.port());
        Ok(Self {
            socket,
            endpoint,
            peers: HashMap::new(),
            rx: vec![0; 65_535],
            tx: Vec::with_capacity(2048),
            stats: ServerStats::default(),
            idle_timeout: None,
        })
    }

    /// Closes connections (with close_notify) that receive nothing for `idle`.
    pub(crate) fn set_idle_timeout(&mut self, idle: Option<Duration>) {
        self.idle_timeout = idle;
    }

    /// Caps the connections; when full, the one silent longest past `stale_after` makes room.
    pub(crate) fn set_limits(&mut self, max_connections: usize, stale_after: Duration) {
        self.endpoint.set_max_connections(max_connections);
        self.endpoint.set_stale_after(Some(stale_after));
    }

    pub(crate) fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    /// Serves until `stop` is set (or, with `stop_after`, that many datagrams were answered),
    /// then shuts every connection down.
    pub(crate) fn run(mut self, stop: &AtomicBool, stop_after: Option<usize>) -> anyhow::Result<ServerStats> {
        while !stop.load(Ordering::Relaxed) && stop_after.is_none_or(|n| self.stats.datagrams < n) {
            let timer = self.peers.values().filter_map(|p| p.conn.poll_timeout()).min();
            let wait = timer
                .map_or(Duration::from_millis(100), |t| t.saturating_duration_since(Instant::now()))
                .clamp(Duration::from_millis(1), Duration::from_millis(100));
            self.socket.set_read_timeout(Some(wait))?;
            match self.socket.recv_from(&mut self.rx) {
                Ok((n, from)) => self.datagram(from, n)?,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => tracing::warn!("Failed to read a datagram: {e}"),
            }
            self.timers()?;
        }
        self.shutdown()?;
        Ok(self.stats)
    }

    fn datagram(&mut self, from: SocketAddr, n: usize) -> anyhow::Result<()> {
        let now = Instant::now();
        let peer_info = format!("{}:{}", from.ip(), from.port());
        // The endpoint routes every datagram: known peers, new peers after their cookie, a
        // client restarting on its port (RFC 6347 §4.2.8), and who makes room when full.
        let event = self.endpoint.handle(now, from, &self.rx[..n], &mut self.tx);
        if let DatagramEvent::Connection(_) = event {
            let Some(peer) = self.peers.get_mut(&from) else { return Ok(()) };
            peer.last_seen = now;
            let was_encrypted = peer.conn.is_established();
            let cipher_hex = hex(&self.rx[..n]);
            match peer.conn.handle_datagram(now, &mut self.rx[..n]) {
                Ok(received) if was_encrypted => {
                    if received.is_empty() {
                        tracing::warn!("{peer_info}: 0 byte dgram, could be a re-connect attempt?");
                    }
                    for plain in received.iter() {
                        self.stats.datagrams += 1;
                        tracing::info!(
                            "{peer_info} received a DTLS datagram: {cipher_hex}\n\tAs plain text: {}",
                            String::from_utf8_lossy(plain)
                        );
                        let reply = format!("to {peer_info}: ACK");
                        self.tx.clear();
                        peer.conn.send(reply.as_bytes(), &mut self.tx)?;
                        send(&self.socket, &self.tx, from);
                    }
                }
                Ok(_) => {}
                // Reported by `drive` from the connection's events.
                Err(_) => {}
            }
            self.drive(from)?;
            return Ok(());
        }
        match event {
            DatagramEvent::Respond => {
                send(&self.socket, &self.tx, from);
            }
            DatagramEvent::Drop => tracing::debug!("{peer_info}: dropped a datagram from an unverified peer"),
            DatagramEvent::Connection(_) => {}
            DatagramEvent::Incoming(incoming) => {
                tracing::info!("{peer_info}: verified, starting a handshake");
                if incoming.replaces().is_some() {
                    tracing::info!("{peer_info}: the client restarted, its old connection ends");
                }
                let evicts = incoming.evicts();
                match self.endpoint.accept(incoming, now) {
                    Ok((handle, conn)) => {
                        self.peers.insert(from, Peer { handle, conn, last_seen: now });
                        if let Some(stale) = evicts {
                            self.evict(stale);
                        }
                        self.drive(from)?;
                    }
                    Err(e) => {
                        tracing::error!("{peer_info}: handshake failed: {}", e.error);
                        if !e.response.is_empty() {
                            send(&self.socket, &e.response, from);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Closes the connection that makes room for a newcomer (the server is full and it has
    /// been idle longest, past the stale threshold).
    fn evict(&mut self, handle: ConnectionHandle) {
        let Some(addr) = self.peers.iter().find(|(_, p)| p.handle == handle).map(|(a, _)| *a) else {
            return;
        };
        tracing::info!("{addr}: server full, closing the connection idle longest");
        self.close(addr);
    }

    /// Sends close_notify to a peer (best effort: it has likely gone, and its address may not
    /// even be reachable) and forgets it.
    fn close(&mut self, addr: SocketAddr) {
        if let Some(mut peer) = self.peers.remove(&addr) {
            if peer.conn.shutdown().is_ok() {
                while peer.conn.poll_transmit(&mut self.tx).is_some() {
                    send(&self.socket, &self.tx, addr);
                }
            }
            while let Some(ev) = peer.conn.poll_endpoint_event() {
                self.endpoint.handle_event(peer.handle, ev);
            }
        }
    }

    fn timers(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        if let Some(idle) = self.idle_timeout {
            let idle_peers: Vec<SocketAddr> = self
                .peers
                .iter()
                .filter(|(_, p)| now.saturating_duration_since(p.last_seen) >= idle)
                .map(|(a, _)| *a)
                .collect();
            for addr in idle_peers {
                tracing::info!("{addr}: idle for {} s, closing the connection", idle.as_secs_f64());
                self.close(addr);
            }
        }
        let due: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| p.conn.poll_timeout().is_some_and(|t| t <= now))
            .map(|(a, _)| *a)
            .collect();
        for addr in due {
            if let Some(p) = self.peers.get_mut(&addr) {
                if let Err(e) = p.conn.handle_timeout(now) {
                    tracing::error!("{addr}: {e}");
                }
            }
            self.drive(addr)?;
        }
        Ok(())
    }

    /// Sends what the connection has queued, reports progress, forgets closed connections.
    fn drive(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        let Some(peer) = self.peers.get_mut(&addr) else { return Ok(()) };
        let was = peer.conn.handshake_state();
        while peer.conn.poll_transmit(&mut self.tx).is_some() {
            send(&self.socket, &self.tx, addr);
        }
        while let Some(ev) = peer.conn.poll_event() {
            match ev {
                dtls_proto::Event::Connected => {
                    self.stats.handshakes += 1;
                    tracing::info!("Connection with {addr} encrypted. {}", crate::describe(&peer.conn));
                }
                dtls_proto::Event::Closed(dtls_proto::Error::RemoteClosed) => {
                    tracing::info!("{addr}: the peer closed the connection")
                }
                dtls_proto::Event::Closed(e) => tracing::warn!("{addr}: connection closed: {e}"),
                _ => {}
            }
        }
        if was == HandshakeState::InProgress && peer.conn.handshake_state() == HandshakeState::InProgress {
            tracing::debug!("{addr}: handshake is in progress ...");
        }
        // A closed connection tells the endpoint, which forgets it; so do we.
        if let Some(ev) = peer.conn.poll_endpoint_event() {
            self.endpoint.handle_event(peer.handle, ev);
            self.peers.remove(&addr);
        }
        Ok(())
    }

    fn shutdown(&mut self) -> anyhow::Result<()> {
        for (addr, mut peer) in self.peers.drain() {
            if peer.conn.shutdown().is_ok() {
                while peer.conn.poll_transmit(&mut self.tx).is_some() {
                    send(&self.socket, &self.tx, addr);
                }
                self.stats.shutdown_sent += 1;
            }
            self.endpoint.remove(peer.handle);
        }
        tracing::info!("Server shut down: close_notify sent to {} peer(s)", self.stats.shutdown_sent);
        Ok(())
    }
}

/// Sends one datagram. A failure concerns that peer alone (its address unreachable, say): it is
/// logged, and the server goes on serving everyone else.
fn send(socket: &UdpSocket, datagram: &[u8], to: SocketAddr) {
    if let Err(e) = socket.send_to(datagram, to) {
        tracing::debug!("{to}: sending a datagram failed: {e}");
    }
}
