//! Qt's DTLS client example: a named association pinging its server at an interval and
//! printing each response, on the library's blocking [`rdtls::Connection`]; an observer gives
//! the example's log its ciphertext dumps and retransmission warnings.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdtls::proto::enums::Protocol;
use rdtls::proto::{Config, Error, Event, PskCredentials};
use rdtls::{Connection, Observed, Observer, SocketOptions};

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

/// The example client's configuration: identity = `name`, the example key.
pub(crate) fn example_config(name: &str, newest: Protocol) -> anyhow::Result<Config> {
    Ok(Config::builder()
        .protocol_versions(Protocol::Dtls1_2, newest)
        .psk_callback(psk_as(name, name.as_bytes().to_vec(), EXAMPLE_PSK.to_vec()))
        .build()?)
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
    use rdtls::proto::enums::AlertDescription as A;
    let hint = match e {
        Error::AlertReceived(A::BAD_RECORD_MAC | A::DECRYPT_ERROR) => " (wrong pre-shared key?)",
        Error::AlertReceived(A::UNKNOWN_PSK_IDENTITY) => " (the server does not know this PSK identity)",
        Error::AlertReceived(A::HANDSHAKE_FAILURE) => " (no cipher suite or credentials in common?)",
        Error::AlertReceived(A::CERTIFICATE_REQUIRED) => {
            " (the server requires a client certificate: --cert and --key)"
        }
        Error::HandshakeTimeout => " (is the server running and reachable? wrong pre-shared key?)",
        _ => "",
    };
    format!("{e}{hint}")
}

/// The core error an I/O error carries, if it carries one.
fn core_error(e: &io::Error) -> Option<&Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<Error>())
}

/// An I/O error of the library, with a hint at its likely cause.
fn explain_io(e: &io::Error) -> String {
    core_error(e).map_or_else(|| e.to_string(), explain)
}

/// A named association: its server, its configuration, and what it did.
pub(crate) struct DtlsAssociation {
    name: String,
    server: SocketAddr,
    server_name: Option<String>,
    config: Arc<Config>,
    stats: AssociationStats,
    /// Where the session is saved after the handshake.
    pub(crate) session_file: Option<Arc<crate::client_cmd::SessionFile>>,
}

impl DtlsAssociation {
    pub(crate) fn new(
        name: &str,
        server: SocketAddr,
        server_name: Option<&str>,
        config: Config,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            name: name.to_owned(),
            server,
            server_name: server_name.map(str::to_owned),
            config: Arc::new(config),
            stats: AssociationStats { name: name.to_owned(), ..AssociationStats::default() },
            session_file: None,
        })
    }

    /// Runs the plan; reports failures in the stats.
    pub(crate) fn run(mut self, plan: &Plan) -> AssociationStats {
        if let Err(e) = self.run_inner(plan) {
            tracing::error!("{}: {e:#}", self.name);
            self.stats.error = Some(format!("{e:#}"));
        }
        // A DTLS 1.3 server's ticket comes after the handshake: save the session it gave.
        if let Some(Err(e)) = self.session_file.as_ref().map(|f| f.save()) {
            tracing::error!("{}: {e:#}", self.name);
        }
        self.stats
    }

    /// Connects, as Qt's example logs it: the last datagram's ciphertext is kept for the log
    /// line of the messages it carried, retransmissions are warned about.
    fn connect(&self, last_datagram: &Arc<Mutex<String>>) -> anyhow::Result<Connection> {
        let name = self.name.clone();
        let seen = last_datagram.clone();
        let observer = Observer::new(move |o| match o {
            Observed::Received { datagram, .. } => {
                *seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = crate::log::hex(datagram);
            }
            Observed::Event { event: Event::Retransmitted, .. } => {
                tracing::warn!("{name}: handshake timeout, trying to re-transmit");
            }
            _ => {}
        });
        tracing::info!("{}: connecting UDP socket first ...", self.name);
        tracing::info!("{}: starting a handshake", self.name);
        let options = SocketOptions::default().observer(observer);
        let conn =
            Connection::connect_with(self.server, self.server_name.as_deref(), self.config.clone(), &options, None)
                .map_err(|e| anyhow::anyhow!("handshake error - {}", explain_io(&e)))?;
        tracing::info!("{}: encrypted connection established! {}", self.name, crate::describe(&conn.connection()));
        let errors: Vec<String> =
            conn.connection().peer_verification_errors().iter().map(ToString::to_string).collect();
        if !errors.is_empty() {
            tracing::warn!("{}: certificate verification errors ignored: {}", self.name, errors.join("; "));
        }
        if let Some(file) = &self.session_file {
            file.save()?;
        }
        Ok(conn)
    }

    fn run_inner(&mut self, plan: &Plan) -> anyhow::Result<()> {
        let last_datagram = Arc::new(Mutex::new(String::new()));
        let mut conn = self.connect(&last_datagram)?;
        self.stats.connected = true;
        let mut next_ping = Some(Instant::now());
        let mut finish_at: Option<Instant> = None;
        let mut buf = vec![0u8; 65_535];
        loop {
            let now = Instant::now();
            if plan.stop.load(Ordering::Relaxed) {
                return close(&mut conn);
            }
            if let Some(t) = next_ping.filter(|t| *t <= now) {
                if plan.count.is_none_or(|c| self.stats.pings < c) {
                    self.ping(&mut conn, plan)?;
                    next_ping = Some(t + plan.interval);
                } else {
                    next_ping = None;
                    let overdue = plan.interval.clamp(Duration::from_secs(1), Duration::from_secs(5));
                    finish_at = Some(now + plan.wait_for_shutdown.unwrap_or(overdue));
                }
            }
            let all_answered = plan.count.is_some_and(|c| self.stats.pings == c && self.stats.responses >= c);
            if plan.wait_for_shutdown.is_none() && all_answered {
                return close(&mut conn);
            }
            if finish_at.is_some_and(|t| t <= now) {
                if plan.wait_for_shutdown.is_some() {
                    tracing::warn!("{}: no shutdown alert from the server; closing", self.name);
                }
                return close(&mut conn);
            }
            let wake = [next_ping, finish_at].into_iter().flatten().min();
            let wait = wake
                .map_or(Duration::from_millis(100), |t| t.saturating_duration_since(now))
                .clamp(Duration::from_millis(1), Duration::from_millis(100));
            match conn.recv(&mut buf, Some(wait)) {
                Ok(n) => {
                    self.stats.responses += 1;
                    let text = String::from_utf8_lossy(&buf[..n]);
                    let cipher_hex = last_datagram.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                    tracing::info!("{}: received a DTLS datagram: {cipher_hex}\n\tAs plain text: {text}", self.name);
                    if plan.print {
                        println!("{}: {text}", self.name);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                Err(e) if matches!(core_error(&e), Some(Error::RemoteClosed)) => {
                    tracing::error!("{}: shutdown alert received", self.name);
                    self.stats.shutdown_alert = true;
                    return Ok(());
                }
                Err(e) => anyhow::bail!("connection error - {}", explain_io(&e)),
            }
        }
    }

    fn ping(&mut self, conn: &mut Connection, plan: &Plan) -> anyhow::Result<()> {
        let message = match &plan.message {
            Some(m) => m.clone(),
            None => format!("I am {}, please, accept our ping {}", self.name, self.stats.pings),
        };
        conn.send(message.as_bytes())?;
        self.stats.pings += 1;
        Ok(())
    }
}

/// Sends close_notify, unless the connection is over already.
fn close(conn: &mut Connection) -> anyhow::Result<()> {
    if !conn.is_closed() {
        conn.close()?;
    }
    Ok(())
}
