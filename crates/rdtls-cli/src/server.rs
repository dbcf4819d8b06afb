//! Qt's DTLS server example: one UDP socket, a stateless cookie verifier, one connection per
//! verified peer, a reply `to <peer>: ACK` for every datagram, and close_notify to every peer on
//! shutdown. The library's [`rdtls::Server`] does the serving; this module logs what it reports,
//! in the example's words.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdtls::proto::enums::Protocol;
use rdtls::proto::{Config, Error, Event};
use rdtls::{CloseReason, ListenerStats, Observed, Observer, Server, ServerEvent};

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
    /// The library's counters at the end.
    pub(crate) counters: ListenerStats,
}

/// The example server: the library's single-socket server, and its log.
pub(crate) struct DtlsServer {
    server: Server,
    /// The last datagram the observer saw, by peer, as hex: logged with the messages it carried.
    last_datagram: Arc<Mutex<Option<(SocketAddr, String)>>>,
    stats: ServerStats,
    stats_interval: Option<Duration>,
}

/// The example server's configuration: any identity, the example key, the example hint.
pub(crate) fn example_config() -> anyhow::Result<Config> {
    Ok(Config::builder()
        .protocol_versions(Protocol::Dtls1_2, Protocol::Dtls1_3)
        .psk_identity_hint(EXAMPLE_HINT)
        .psk_server_callback(|identity| {
            tracing::info!("PSK callback, received a client's identity: '{}'", String::from_utf8_lossy(identity));
            Some(EXAMPLE_PSK.to_vec().into())
        })
        .build()?)
}

impl DtlsServer {
    pub(crate) fn listen(addr: SocketAddr, config: Config) -> anyhow::Result<Self> {
        let mut server = Server::bind(addr, Arc::new(config)).with_context(|| format!("cannot bind {addr}"))?;
        let last_datagram = Arc::new(Mutex::new(None));
        let seen = last_datagram.clone();
        server.set_observer(Some(Observer::new(move |o| match o {
            Observed::Received { peer, datagram } => {
                *seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((*peer, hex(datagram)));
            }
            Observed::Handshaking { peer } => tracing::debug!("{peer}: handshake is in progress ..."),
            Observed::Event { peer, event: Event::Retransmitted } => {
                tracing::warn!("{peer}: handshake timeout, trying to re-transmit");
            }
            _ => {}
        })));
        tracing::info!("Server is listening on address {} and port {}", addr.ip(), server.local_addr()?.port());
        Ok(Self { server, last_datagram, stats: ServerStats::default(), stats_interval: None })
    }

    /// Closes connections (with close_notify) that receive nothing for `idle`.
    pub(crate) fn set_idle_timeout(&mut self, idle: Option<Duration>) {
        self.server.set_idle_timeout(idle);
    }

    /// Caps the connections; when full, the one silent longest past `stale_after` makes room.
    pub(crate) fn set_limits(&mut self, max_connections: usize, stale_after: Duration) {
        self.server.set_limits(max_connections, Some(stale_after));
    }

    /// Logs the counters every `interval`.
    pub(crate) fn set_stats_interval(&mut self, interval: Option<Duration>) {
        self.stats_interval = interval;
    }

    /// One log line of the server's counters (fields in JSON logs).
    fn log_stats(&self) {
        let s = self.server.stats();
        tracing::info!(
            established = s.established,
            half_open = s.half_open,
            handshakes = s.handshakes,
            failed = s.failed,
            failed_timeout = s.failed_timeout,
            failed_alert = s.failed_alert,
            failed_verification = s.failed_verification,
            failed_protocol = s.failed_protocol,
            refused = s.refused,
            cookies_sent = s.cookies_sent,
            dropped_unverified = s.dropped_unverified,
            dropped_replayed = s.dropped_replayed,
            dropped_bad_auth = s.dropped_bad_auth,
            dropped_malformed = s.dropped_malformed,
            datagrams_in = s.datagrams_in,
            bytes_in = s.bytes_in,
            datagrams_out = s.datagrams_out,
            bytes_out = s.bytes_out,
            "stats: {} established, {} half-open; {} handshakes, {} failed; {} cookies; dropped {} unverified, \
             {} replayed, {} forged; {} datagrams ({} bytes) in, {} ({} bytes) out",
            s.established,
            s.half_open,
            s.handshakes,
            s.failed,
            s.cookies_sent,
            s.dropped_unverified,
            s.dropped_replayed,
            s.dropped_bad_auth,
            s.datagrams_in,
            s.bytes_in,
            s.datagrams_out,
            s.bytes_out
        );
    }

    pub(crate) fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.server.local_addr()?)
    }

    /// Serves until `stop` is set (or, with `stop_after`, that many datagrams were answered),
    /// then shuts every connection down.
    pub(crate) fn run(mut self, stop: &AtomicBool, stop_after: Option<usize>) -> anyhow::Result<ServerStats> {
        let mut next_stats = self.stats_interval.map(|i| Instant::now() + i);
        while !stop.load(Ordering::Relaxed) && stop_after.is_none_or(|n| self.stats.datagrams < n) {
            if let (Some(at), Some(interval)) = (next_stats, self.stats_interval) {
                if Instant::now() >= at {
                    self.log_stats();
                    next_stats = Some(at + interval);
                }
            }
            match self.server.poll(Some(Duration::from_millis(100))) {
                Ok(Some(event)) => self.event(event)?,
                Ok(None) => {}
                Err(e) => tracing::warn!("Failed to read a datagram: {e}"),
            }
        }
        let told = self.server.shutdown()?;
        self.stats.shutdown_sent = told;
        self.stats.counters = self.server.stats();
        tracing::info!("Server shut down: close_notify sent to {told} peer(s)");
        Ok(self.stats)
    }

    fn event(&mut self, event: ServerEvent) -> anyhow::Result<()> {
        match event {
            ServerEvent::Verified { peer, replaces } => {
                tracing::info!("{peer}: verified, starting a handshake");
                if replaces {
                    tracing::info!("{peer}: the client restarted, its old connection ends");
                }
            }
            ServerEvent::Refused(peer, e) => tracing::error!("{peer}: handshake failed: {e}"),
            ServerEvent::Connected(peer) => {
                self.stats.handshakes += 1;
                let about = self.server.connection(peer).map(crate::describe).unwrap_or_default();
                tracing::info!("Connection with {peer} encrypted. {about}");
            }
            ServerEvent::Message(peer, plain) => {
                self.stats.datagrams += 1;
                let cipher = self.last_datagram.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                let cipher_hex = cipher.filter(|(p, _)| *p == peer).map(|(_, h)| h).unwrap_or_default();
                tracing::info!(
                    "{peer} received a DTLS datagram: {cipher_hex}\n\tAs plain text: {}",
                    String::from_utf8_lossy(&plain)
                );
                let reply = format!("to {peer}: ACK");
                if let Err(e) = self.server.send_to(peer, reply.as_bytes()) {
                    tracing::warn!("{peer}: cannot answer: {e}");
                }
            }
            ServerEvent::Closing(peer, CloseReason::Idle(idle)) => {
                tracing::info!("{peer}: idle for {} s, closing the connection", idle.as_secs_f64());
            }
            ServerEvent::Closing(peer, CloseReason::Evicted) => {
                tracing::info!("{peer}: server full, closing the connection idle longest");
            }
            ServerEvent::Closed(peer, Some(Error::RemoteClosed)) => {
                tracing::info!("{peer}: the peer closed the connection");
            }
            ServerEvent::Closed(peer, Some(e)) => tracing::warn!("{peer}: connection closed: {e}"),
            ServerEvent::Moved { from, to } => {
                tracing::info!("{from}: address changed to {to}, the connection ID tells: the connection follows");
            }
            _ => {}
        }
        Ok(())
    }
}
