//! Qt's DTLS client example: a named association pinging its server at an interval and
//! printing each response.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use dtls_proto::pki::ServerName;
use dtls_proto::{Config, Connection, Error, Event, PskCredentials};

use crate::server::EXAMPLE_PSK;

/// What an association did, for the summary and the exit code.
#[derive(Debug, Default, Clone)]
pub(crate) struct AssociationStats {
    pub(crate) name: String,
    pub(crate) connected: bool,
    pub(crate) pings: u32,
    pub(crate) responses: u32,
    pub(crate) shutdown_alert: bool,
    pub(crate) error: Option<String>,
}

/// How an association behaves once connected.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Pings to send; `None`: until stopped.
    pub(crate) count: Option<u32>,
    pub(crate) interval: Duration,
    /// Text to send instead of the example's ping.
    pub(crate) message: Option<String>,
    /// After the last ping, wait this long for the server's shutdown alert (the demo);
    /// otherwise close as soon as every ping is answered or the answer is overdue.
    pub(crate) wait_for_shutdown: Option<Duration>,
    /// Set to stop (Ctrl-C).
    pub(crate) stop: Arc<AtomicBool>,
    /// Print each response on stdout.
    pub(crate) print: bool,
}

pub(crate) struct DtlsAssociation {
    name: String,
    socket: UdpSocket,
    conn: Connection,
    rx: Vec<u8>,
    tx: Vec<u8>,
    stats: AssociationStats,
    /// ICMP port-unreachable reports for our handshake datagrams.
    refusals: u32,
}

/// Port-unreachable reports after which a handshake gives up: nothing listens there (one could
/// be a stray; two are the port's answer), so waiting for the handshake timeout helps nobody.
const REFUSALS_BEFORE_FAILING: u32 = 2;

/// The example client's configuration: identity = `name`, the example key.
pub(crate) fn example_config(name: &str) -> anyhow::Result<Config> {
    Ok(Config::builder().psk_callback(psk_as(name, name.as_bytes().to_vec(), EXAMPLE_PSK.to_vec())).build()?)
}

/// A PSK callback that logs as Qt's example does and answers with `identity` and `key`.
pub(crate) fn psk_as(
    name: &str,
    identity: Vec<u8>,
    key: Vec<u8>,
) -> impl Fn(Option<&[u8]>) -> Option<PskCredentials> + Send + Sync + 'static {
    let name = name.to_owned();
    move |_hint| {
        tracing::info!("{name}: providing pre-shared key ...");
        Some(PskCredentials::new(identity.clone(), key.clone()))
    }
}

/// The error with a hint at its likely cause.
pub(crate) fn explain(e: &Error) -> String {
    use dtls_proto::enums::AlertDescription as A;
    let hint = match e {
        Error::AlertReceived(A::BAD_RECORD_MAC | A::DECRYPT_ERROR) => " (wrong pre-shared key?)",
        Error::AlertReceived(A::UNKNOWN_PSK_IDENTITY) => " (the server does not know this PSK identity)",
        Error::AlertReceived(A::HANDSHAKE_FAILURE) => " (no cipher suite or credentials in common?)",
        Error::HandshakeTimeout => " (is the server running and reachable? wrong pre-shared key?)",
        _ => "",
    };
    format!("{e}{hint}")
}

impl DtlsAssociation {
    pub(crate) fn new(
        name: &str,
        server: SocketAddr,
        server_name: Option<&str>,
        config: Config,
    ) -> anyhow::Result<Self> {
        let local: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let socket = UdpSocket::bind(local)?;
        tracing::info!("{name}: connecting UDP socket first ...");
        socket.connect(server).with_context(|| format!("{name}: cannot connect to {server}"))?;
        tracing::info!("{name}: starting a handshake");
        let server_name = server_name
            .map(|n| ServerName::try_from(n.to_owned()).with_context(|| format!("invalid server name '{n}'")))
            .transpose()?;
        let conn = Connection::client_with_server_name(Arc::new(config), server_name, Instant::now())
            .with_context(|| format!("{name}: failed to start a handshake"))?;
        Ok(Self {
            name: name.to_owned(),
            socket,
            conn,
            rx: vec![0; 65_535],
            tx: Vec::with_capacity(2048),
            stats: AssociationStats { name: name.to_owned(), ..AssociationStats::default() },
            refusals: 0,
        })
    }

    /// Runs the plan; reports failures in the stats.
    pub(crate) fn run(mut self, plan: &Plan) -> AssociationStats {
        if let Err(e) = self.run_inner(plan) {
            tracing::error!("{}: {e:#}", self.name);
            self.stats.error = Some(format!("{e:#}"));
        }
        self.stats
    }

    fn run_inner(&mut self, plan: &Plan) -> anyhow::Result<()> {
        let mut next_ping: Option<Instant> = None;
        let mut finish_at: Option<Instant> = None;
        loop {
            self.flush()?;
            if self.conn.is_closed() {
                return Ok(());
            }
            let now = Instant::now();
            if plan.stop.load(Ordering::Relaxed) {
                return self.close();
            }
            if let Some(t) = next_ping.filter(|t| *t <= now) {
                if plan.count.is_none_or(|c| self.stats.pings < c) {
                    self.ping(plan)?;
                    next_ping = Some(t + plan.interval);
                } else {
                    next_ping = None;
                    let overdue = plan.interval.clamp(Duration::from_secs(1), Duration::from_secs(5));
                    finish_at = Some(now + plan.wait_for_shutdown.unwrap_or(overdue));
                }
            }
            let all_answered = plan.count.is_some_and(|c| self.stats.pings == c && self.stats.responses >= c);
            if plan.wait_for_shutdown.is_none() && all_answered {
                return self.close();
            }
            if finish_at.is_some_and(|t| t <= now) {
                if plan.wait_for_shutdown.is_some() {
                    tracing::warn!("{}: no shutdown alert from the server; closing", self.name);
                }
                return self.close();
            }
            let wake = [self.conn.poll_timeout(), next_ping, finish_at].into_iter().flatten().min();
            let wait = wake
                .map_or(Duration::from_millis(100), |t| t.saturating_duration_since(now))
                .clamp(Duration::from_millis(1), Duration::from_millis(100));
            self.socket.set_read_timeout(Some(wait))?;
            match self.socket.recv(&mut self.rx) {
                Ok(n) => {
                    if self.datagram(n, plan)? && next_ping.is_none() && self.stats.pings == 0 {
                        next_ping = Some(Instant::now());
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    if let Err(e) = self.conn.handle_timeout(Instant::now()) {
                        anyhow::bail!("handshake failed: {}", explain(&e));
                    }
                }
                // ICMP port unreachable for an earlier datagram: nothing listens there.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => self.refused()?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Counts an ICMP port-unreachable report; during the handshake, the second one ends it.
    /// Once connected, a server that restarts may refuse for a moment: that is not fatal.
    fn refused(&mut self) -> anyhow::Result<()> {
        self.refusals += 1;
        if !self.conn.is_established() && self.refusals >= REFUSALS_BEFORE_FAILING {
            let server = self.socket.peer_addr().map_or_else(|_| "the server".to_owned(), |a| a.to_string());
            anyhow::bail!("connection refused: nothing listens on {server}");
        }
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        if !self.conn.is_closed() {
            let _ = self.conn.shutdown();
            self.flush()?;
        }
        Ok(())
    }

    /// Handles one datagram; returns whether the handshake just completed.
    fn datagram(&mut self, n: usize, plan: &Plan) -> anyhow::Result<bool> {
        let was_encrypted = self.conn.is_established();
        let cipher_hex = crate::log::hex(&self.rx[..n]);
        match self.conn.handle_datagram(Instant::now(), &mut self.rx[..n]) {
            Ok(received) => {
                for plain in received.iter() {
                    self.stats.responses += 1;
                    let text = String::from_utf8_lossy(plain);
                    tracing::info!("{}: received a DTLS datagram: {cipher_hex}\n\tAs plain text: {text}", self.name);
                    if plan.print {
                        println!("{}: {text}", self.name);
                    }
                }
                if !was_encrypted && self.conn.is_established() {
                    self.stats.connected = true;
                    tracing::info!("{}: encrypted connection established! {}", self.name, crate::describe(&self.conn));
                    if !self.conn.peer_verification_errors().is_empty() {
                        let errors: Vec<String> =
                            self.conn.peer_verification_errors().iter().map(ToString::to_string).collect();
                        tracing::warn!("{}: certificate verification errors ignored: {}", self.name, errors.join("; "));
                    }
                    return Ok(true);
                }
                Ok(false)
            }
            Err(Error::RemoteClosed) => {
                tracing::error!("{}: shutdown alert received", self.name);
                self.stats.shutdown_alert = true;
                Ok(false)
            }
            Err(e) if self.stats.connected => Err(anyhow::anyhow!("connection error - {e}")),
            Err(e) => Err(anyhow::anyhow!("handshake error - {}", explain(&e))),
        }
    }

    fn ping(&mut self, plan: &Plan) -> anyhow::Result<()> {
        let message = match &plan.message {
            Some(m) => m.clone(),
            None => format!("I am {}, please, accept our ping {}", self.name, self.stats.pings),
        };
        self.tx.clear();
        self.conn.send(message.as_bytes(), &mut self.tx)?;
        self.socket.send(&self.tx)?;
        self.stats.pings += 1;
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        while self.conn.poll_transmit(&mut self.tx).is_some() {
            match self.socket.send(&self.tx) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => self.refused()?,
                Err(e) => return Err(e.into()),
            }
        }
        while let Some(ev) = self.conn.poll_event() {
            if let Event::Retransmitted = ev {
                tracing::warn!("{}: handshake timeout, trying to re-transmit", self.name);
            }
        }
        Ok(())
    }
}
