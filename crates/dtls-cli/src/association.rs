//! Qt's DTLS client example: a named association with PSK identity = its name, pinging the
//! server at an interval and printing each response.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::Context;
use dtls_proto::{Config, Connection, Error, Event, PskCredentials};

use crate::server::EXAMPLE_PSK;

/// What an association did, for the summary.
#[derive(Debug, Default, Clone)]
pub(crate) struct AssociationStats {
    pub(crate) name: String,
    pub(crate) pings: u32,
    pub(crate) responses: u32,
    pub(crate) shutdown_alert: bool,
    pub(crate) error: Option<String>,
}

pub(crate) struct DtlsAssociation {
    name: String,
    socket: UdpSocket,
    conn: Connection,
    rx: Vec<u8>,
    tx: Vec<u8>,
    stats: AssociationStats,
}

/// The example client's configuration: identity = `name`, the example key.
pub(crate) fn example_config(name: &str) -> anyhow::Result<Config> {
    let name = name.to_owned();
    Ok(Config::builder()
        .psk_callback(move |_hint| {
            tracing::info!("{name}: providing pre-shared key ...");
            Some(PskCredentials::new(name.clone().into_bytes(), EXAMPLE_PSK.to_vec()))
        })
        .build()?)
}

impl DtlsAssociation {
    pub(crate) fn new(name: &str, server: SocketAddr, config: Config) -> anyhow::Result<Self> {
        let local: SocketAddr = if server.is_ipv4() { ([127, 0, 0, 1], 0).into() } else { ([0u16; 8], 0).into() };
        let socket = UdpSocket::bind(local)?;
        tracing::info!("{name}: connecting UDP socket first ...");
        socket.connect(server).with_context(|| format!("{name}: cannot connect to {server}"))?;
        tracing::info!("{name}: starting a handshake");
        let conn = Connection::client(std::sync::Arc::new(config), Instant::now())
            .with_context(|| format!("{name}: failed to start a handshake"))?;
        Ok(Self {
            name: name.to_owned(),
            socket,
            conn,
            rx: vec![0; 65_535],
            tx: Vec::with_capacity(2048),
            stats: AssociationStats { name: name.to_owned(), ..AssociationStats::default() },
        })
    }

    /// Completes the handshake, sends `rounds` pings `interval` apart, then waits up to
    /// `linger` for the server's shutdown alert.
    pub(crate) fn run(mut self, rounds: u32, interval: Duration, linger: Duration) -> AssociationStats {
        if let Err(e) = self.run_inner(rounds, interval, linger) {
            tracing::error!("{}: {e:#}", self.name);
            self.stats.error = Some(format!("{e:#}"));
        }
        self.stats
    }

    fn run_inner(&mut self, rounds: u32, interval: Duration, linger: Duration) -> anyhow::Result<()> {
        let mut next_ping: Option<Instant> = None;
        let mut linger_until: Option<Instant> = None;
        loop {
            self.flush()?;
            if self.conn.is_closed() {
                return Ok(());
            }
            let now = Instant::now();
            if let Some(t) = next_ping.filter(|t| *t <= now) {
                if self.stats.pings < rounds {
                    self.ping()?;
                    next_ping = Some(t + interval);
                } else if linger_until.is_none() {
                    next_ping = None;
                    linger_until = Some(now + linger);
                }
            }
            if linger_until.is_some_and(|t| t <= now) {
                tracing::warn!("{}: no shutdown alert from the server; closing", self.name);
                self.conn.shutdown()?;
                self.flush()?;
                return Ok(());
            }
            let wake = [self.conn.poll_timeout(), next_ping, linger_until].into_iter().flatten().min();
            let wait = wake.map_or(Duration::from_millis(100), |t| t.saturating_duration_since(now));
            self.socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
            match self.socket.recv(&mut self.rx) {
                Ok(n) => {
                    if self.datagram(n)? && next_ping.is_none() && self.stats.pings == 0 {
                        next_ping = Some(Instant::now());
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    self.conn.handle_timeout(Instant::now())?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Handles one datagram; returns whether the handshake just completed.
    fn datagram(&mut self, n: usize) -> anyhow::Result<bool> {
        let was_encrypted = self.conn.is_established();
        let cipher_hex = crate::log::hex(&self.rx[..n]);
        match self.conn.handle_datagram(Instant::now(), &mut self.rx[..n]) {
            Ok(received) => {
                for plain in received.iter() {
                    self.stats.responses += 1;
                    tracing::info!(
                        "{}: received a DTLS datagram: {cipher_hex}\n\tAs plain text: {}",
                        self.name,
                        String::from_utf8_lossy(plain)
                    );
                }
                if !was_encrypted && self.conn.is_established() {
                    let suite = self.conn.cipher_suite().map_or("?", |s| s.openssl_name);
                    tracing::info!("{}: encrypted connection established! ({suite})", self.name);
                    return Ok(true);
                }
                Ok(false)
            }
            Err(Error::RemoteClosed) => {
                tracing::error!("{}: shutdown alert received", self.name);
                self.stats.shutdown_alert = true;
                Ok(false)
            }
            Err(e) => Err(anyhow::anyhow!("handshake error - {e}")),
        }
    }

    fn ping(&mut self) -> anyhow::Result<()> {
        let message = format!("I am {}, please, accept our ping {}", self.name, self.stats.pings);
        self.tx.clear();
        self.conn.send(message.as_bytes(), &mut self.tx)?;
        self.socket.send(&self.tx)?;
        self.stats.pings += 1;
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        while self.conn.poll_transmit(&mut self.tx).is_some() {
            self.socket.send(&self.tx)?;
        }
        while let Some(ev) = self.conn.poll_event() {
            if let Event::Retransmitted = ev {
                tracing::warn!("{}: handshake timeout, trying to re-transmit", self.name);
            }
        }
        Ok(())
    }
}
