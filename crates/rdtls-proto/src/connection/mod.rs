//! The per-connection state machine: Qt's `QDtls`, without sockets or clocks.
//!
//! # Driving a connection
//!
//! A [`Connection`] is driven by four kinds of calls, all taking the current time `now`:
//!
//! - **input**: [`handle_datagram`](Connection::handle_datagram) with every datagram received
//!   from the peer, and [`handle_timeout`](Connection::handle_timeout) whenever the instant
//!   returned by [`poll_timeout`](Connection::poll_timeout) has passed;
//! - **commands**: [`send`](Connection::send) to protect application data,
//!   [`shutdown`](Connection::shutdown) and [`abort_handshake`](Connection::abort_handshake);
//! - **output**: after every input or command, call [`poll_transmit`](Connection::poll_transmit)
//!   until it returns `None` and send each datagram, then drain
//!   [`poll_event`](Connection::poll_event), then re-arm your timer from
//!   [`poll_timeout`](Connection::poll_timeout);
//! - **getters**: [`handshake_state`](Connection::handshake_state),
//!   [`cipher_suite`](Connection::cipher_suite), [`last_error`](Connection::last_error)…
//!
//! Every `Err` returned is fatal; invalid records are dropped silently and only counted in
//! [`stats`](Connection::stats).

use core::ops::Range;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::Reader;
use crate::config::Config;
pub use crate::enums::Side;
use crate::enums::{AlertDescription, AlertLevel, ContentType, HandshakeType, Protocol, ProtocolVersion};
use crate::error::Error;
use crate::handshake::reassembly::Inserted;
use crate::handshake::Handshake;
use crate::messages::{HandshakeHeader, HS_HEADER_LEN};
use crate::pki::{CertificateDer, CertificateError, ServerName};
use crate::record::epoch::EpochTable;
pub use crate::record::MAX_RECORDS_PER_DATAGRAM;
use crate::record::{EpochKeys, RecordHeader, ReplayWindow, HEADER_LEN, MAX_PLAINTEXT, MAX_SEQ};
use crate::suites::CipherSuite;

mod cid;
mod cid13;
mod exporter;
mod flight;
mod handshake;
mod input;
mod negotiated;
#[cfg(test)]
pub(crate) use input::default_failed_decryption_limit;
pub(crate) mod lifecycle;
mod resume;
mod rrc;
mod session;
mod ticket13;
mod tls13;

pub use cid13::{ConnectionEvent, MAX_ISSUED_CONNECTION_IDS, MAX_SPARE_CONNECTION_IDS};
use flight::{jittered, Flight};
use handshake::HandshakeRun;
use lifecycle::Lifecycle;
pub use lifecycle::{EndpointEvent, Stats};
pub use rrc::PATH_VALIDATION_TIMEOUT;

/// The state of the handshake, as Qt's `QDtls::HandshakeState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeState {
    /// Nothing was done yet, or the connection was shut down.
    NotStarted,
    /// The handshake is running and no error was found so far.
    InProgress,
    /// The peer's identity could not be established; the application decides.
    PeerVerificationFailed,
    /// The handshake completed; application data can flow.
    Complete,
}

/// Something the application should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed.
    Connected,
    /// A retransmission timer fired and the last flight was sent again (Qt's
    /// `handshakeTimeout` signal).
    Retransmitted,
    /// The peer sent a warning alert; the connection goes on.
    WarningAlert(AlertDescription),
    /// The peer's certificate chain did not verify and the configuration says to pause: the
    /// handshake waits in [`HandshakeState::PeerVerificationFailed`] until the application calls
    /// [`Connection::ignore_verification_errors`] and [`Connection::resume_handshake`], or
    /// [`Connection::abort_handshake`].
    PeerVerificationFailed(Vec<CertificateError>),
    /// Client: a session to resume later is ready ([`Connection::session`]): DTLS 1.2's
    /// at the end of a full handshake (or of a resumption whose server renewed the ticket),
    /// DTLS 1.3's with the server's NewSessionTicket. Server: a DTLS 1.2 full handshake's
    /// session went into the session cache
    /// ([`ConfigBuilder::session_cache`](crate::ConfigBuilder::session_cache)), for clients to
    /// resume by its ID (not when the client took a ticket for it).
    NewSession,
    /// The peer answered our return routability check ([`Connection::challenge_path`]):
    /// the address the challenge went to reaches it.
    PathValidated,
    /// Our return routability check went unanswered in time, or the peer said it left that
    /// path (`path_drop`): the address is not validated.
    PathValidationFailed,
    /// The connection ended: the peer closed it, or a fatal error occurred.
    Closed(Error),
}

/// Next-epoch records kept while the keys to read them are not there yet.
const MAX_EARLY_RECORDS: usize = 4;
/// Largest such record kept (a Finished record is about 60 bytes).
const MAX_EARLY_RECORD_LEN: usize = 512;

/// DTLS 1.3 server: application data records held until the handshake ends, and their bytes
/// in all (see [`Received`]).
pub const MAX_HELD_RECORDS: usize = 4;
/// See [`MAX_HELD_RECORDS`].
pub const MAX_HELD_BYTES: usize = 8 * 1024;

/// Epoch-1 records failing authentication during the handshake (none ever authenticated) after
/// which the keys are taken to differ.
const KEY_MISMATCH_FAILURES: u64 = 3;

/// Decrypted application data from one datagram: each record's plaintext, in order, borrowed
/// from the datagram buffer (decryption happens in place).
///
/// A DTLS 1.3 server may also hand over here, first, application data that reached it before
/// the handshake ended (the client's Finished lost or overtaken: the client sends as soon as
/// its Finished is out). It was held, at most [`MAX_HELD_RECORDS`] records of
/// [`MAX_HELD_BYTES`] in all, until the datagram that completed the handshake.
#[derive(Debug)]
pub struct Received<'a> {
    buf: &'a [u8],
    ranges: [(u32, u32); MAX_RECORDS_PER_DATAGRAM],
    len: usize,
    held: Vec<Vec<u8>>,
}

impl<'a> Received<'a> {
    /// Number of application data records.
    pub fn len(&self) -> usize {
        self.held.len() + self.len
    }

    /// Whether the datagram carried no application data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The plaintext of each application data record, in the order they were sent.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let buf = self.buf;
        let here = self.ranges[..self.len].iter().map(move |&(s, e)| &buf[s as usize..e as usize]);
        self.held.iter().map(Vec::as_slice).chain(here)
    }
}

/// A DTLS connection: one association with one peer.
pub struct Connection {
    pub(crate) side: Side,
    pub(crate) config: Arc<Config>,
    /// Where the connection is in its life, and why it ended.
    lifecycle: Lifecycle,
    /// The handshake, while it runs.
    hs: Option<Box<HandshakeRun>>,
    pub(crate) suite: Option<&'static CipherSuite>,
    pub(crate) psk_identity: Option<crate::short_bytes::ShortBytes>,
    pub(crate) extended_master_secret: bool,
    /// The handshake resumed a session.
    pub(crate) resumed: bool,
    /// The group of the handshake's key exchange, if it had one.
    pub(crate) group: Option<crate::crypto::KxGroup>,
    /// Names, certificates and secrets most connections never have (PSK ones): allocated
    /// only when one is set.
    pub(crate) details: Option<Box<Details>>,

    /// Keys, replay windows and sequence numbers of every epoch in use.
    pub(crate) epochs: EpochTable,

    /// Handshake transmission state; `None` once nothing can need it (idle connections).
    pub(crate) flight: Option<Box<Flight>>,
    /// DTLS 1.3 state: traffic secrets, acknowledgements, key updates.
    pub(crate) tls13: Option<Box<tls13::State>>,
    /// Connection IDs, when the configuration asks for one.
    cid: Option<Box<cid::Cid>>,
    /// The newest record received before the last datagram handled (see
    /// `EpochTable::newest_received`): that datagram carried a newer one if the newest moved.
    newest_before: u64,
    /// Our connection ID was negotiated and is not empty: protected records without it are
    /// refused (a flag, not a look into `cid`, on the data path of every record).
    cid_records_required: bool,
    alert: Option<(AlertLevel, AlertDescription)>,
    pub(crate) events: VecDeque<Event>,
    rng: u64,
    stats: Stats,
}

/// The parts of a connection's state that many connections do without.
#[derive(Debug, Default)]
pub(crate) struct Details {
    /// Client: the name the server's certificate must be valid for (and the SNI we send).
    pub(crate) server_name: Option<ServerName<'static>>,
    /// Server: the SNI host name the client asked for.
    pub(crate) sni: Option<String>,
    /// The MTU the application set, if not the configuration's.
    pub(crate) mtu: Option<usize>,
    pub(crate) peer_certs: Vec<CertificateDer<'static>>,
    pub(crate) verification_errors: Vec<CertificateError>,
    pub(crate) ignored_errors: Vec<CertificateError>,
    /// What exports derive from, kept after the handshake only when the configuration allows
    /// session export or keying-material export: DTLS 1.2's master secret and randoms, or DTLS
    /// 1.3's exporter master secret.
    pub(crate) export_secret: Option<zeroize::Zeroizing<Vec<u8>>>,
    /// Client: the session to resume next time, when the configuration keeps sessions.
    pub(crate) session: Option<Box<crate::resumption::Session>>,
    /// The SRTP protection profile both sides agreed on (RFC 5764; such a connection keeps
    /// its exporter secret here too).
    pub(crate) srtp: Option<crate::srtp::SrtpProfile>,
    /// The application-layer protocol both sides agreed on (RFC 7301).
    pub(crate) alpn: Option<Vec<u8>>,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("side", &self.side)
            .field("lifecycle", &self.lifecycle)
            .field("suite", &self.suite)
            .field("write_epoch", &self.epochs.write_epoch())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection with no handshake object yet.
    fn new(side: Side, config: Arc<Config>, now: Instant) -> Result<Self, Error> {
        let seed = match config.rng_seed {
            Some(s) => s ^ if side == Side::Client { 0x9e37_79b9_7f4a_7c15 } else { 0 },
            None => {
                let mut b = [0u8; 8];
                config.provider.fill_random(&mut b)?;
                u64::from_le_bytes(b)
            }
        };
        Ok(Self {
            side,
            lifecycle: Lifecycle::Handshaking,
            hs: None,
            suite: None,
            psk_identity: None,
            extended_master_secret: false,
            resumed: false,
            group: None,
            details: (!config.ignored_errors.is_empty())
                .then(|| Box::new(Details { ignored_errors: config.ignored_errors.clone(), ..Details::default() })),
            epochs: EpochTable::default(),
            flight: Some(Box::new(Flight::new(config.initial_retransmit, Some(now + config.handshake_timeout)))),
            tls13: None,
            cid: cid::Cid::for_config(&config)?,
            newest_before: 0,
            cid_records_required: false,
            alert: None,
            events: VecDeque::new(),
            rng: seed,
            stats: Stats::default(),
            config,
        })
    }

    pub(crate) fn details_mut(&mut self) -> &mut Details {
        self.details.get_or_insert_with(Box::default)
    }

    fn ignored_errors(&self) -> &[CertificateError] {
        self.details.as_ref().map_or(&[], |d| &d.ignored_errors)
    }

    /// Records the peer's certificate chain.
    pub(crate) fn set_peer_certificates(&mut self, chain: Vec<CertificateDer<'static>>) {
        if !chain.is_empty() || self.details.is_some() {
            self.details_mut().peer_certs = chain;
        }
    }

    /// Records the SNI name the client asked for (server).
    pub(crate) fn set_requested_server_name(&mut self, sni: Option<String>) {
        if sni.is_some() || self.details.is_some() {
            self.details_mut().sni = sni;
        }
    }

    /// Records why the peer's identity could not be established.
    pub(crate) fn set_verification_errors(&mut self, errors: Vec<CertificateError>) {
        self.details_mut().verification_errors = errors;
    }

    /// Starts a client handshake: the ClientHello is ready in [`poll_transmit`](Self::poll_transmit).
    /// With no name to check, a server certificate fails verification with
    /// [`CertificateError::NoServerName`] (unless the configuration opts out with
    /// [`danger_accept_any_server_name`](crate::ConfigBuilder::danger_accept_any_server_name)):
    /// use [`client_with_server_name`](Self::client_with_server_name) with the server's name or
    /// IP address. PSK handshakes need no name.
    pub fn client(config: Arc<Config>, now: Instant) -> Result<Self, Error> {
        Self::client_with_server_name(config, None, now)
    }

    /// Starts a client handshake with a server that must present a certificate valid for
    /// `server_name` (a DNS name, sent as SNI, or an IP address): Qt's `setPeer(address, port,
    /// verificationName)`, EdgerOS `server`.
    pub fn client_with_server_name(
        config: Arc<Config>,
        server_name: Option<ServerName<'static>>,
        now: Instant,
    ) -> Result<Self, Error> {
        let mut conn = Self::new(Side::Client, config, now)?;
        if server_name.is_some() {
            conn.details_mut().server_name = server_name.clone();
        }
        conn.start_handshake(now, |cx| Handshake::client(cx, server_name, None, false))?;
        Ok(conn)
    }

    /// Server side: the local address the client's datagrams arrive on, used to pick a
    /// certificate valid for it when the client sends no SNI (EdgerOS `ipcert`). Set it before
    /// the ClientHello is handled.
    pub fn set_local_ip(&mut self, ip: std::net::IpAddr) {
        if let Some(hs) = &mut self.hs {
            hs.machine.set_local_ip(ip);
        }
    }

    /// Server side: the endpoint checked the cookie of the ClientHello to come (as it does for a
    /// restarted client even with cookie verification off), so a DTLS 1.3 one may resume the
    /// stateless HelloRetryRequest its cookie carries.
    pub(crate) fn cookie_verified(&mut self) {
        if let Some(hs) = &mut self.hs {
            hs.machine.cookie_verified();
        }
    }

    /// Creates a server connection waiting for its first ClientHello, to be given with
    /// [`handle_datagram`](Self::handle_datagram). With cookie verification on, that must be
    /// the ClientHello a [`ClientVerifier`](crate::ClientVerifier) or
    /// [`Endpoint`](crate::Endpoint) verified.
    pub fn server(config: Arc<Config>, now: Instant) -> Result<Self, Error> {
        let has_certs = config.certs.as_ref().is_some_and(|c| !c.is_empty());
        if config.server_psk.is_none() && !has_certs {
            return Err(Error::Config("a server needs a PSK callback or key, or a certificate"));
        }
        let mut conn = Self::new(Side::Server, config, now)?;
        conn.start_handshake(now, |_| Ok(Handshake::server()))?;
        Ok(conn)
    }

    // ===== getters =====

    /// The configuration the connection uses (Qt's `dtlsConfiguration`).
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Client or server.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The negotiated cipher suite, once the handshake completed (Qt's `sessionCipher`).
    pub fn cipher_suite(&self) -> Option<&'static CipherSuite> {
        (self.handshake_state() == HandshakeState::Complete).then_some(self.suite).flatten()
    }

    /// The negotiated protocol version, once the handshake completed (Qt's `sessionProtocol`).
    pub fn protocol(&self) -> Option<Protocol> {
        (self.handshake_state() == HandshakeState::Complete).then_some(self.suite.map(|s| s.protocol())).flatten()
    }

    /// The PSK identity used: the one the client sent, as seen by either side.
    pub fn psk_identity(&self) -> Option<&[u8]> {
        self.psk_identity.as_deref()
    }

    /// The group of the handshake's (EC)DHE or hybrid key exchange, once the handshake chose
    /// it; `None` for a handshake without one (plain PSK) and for an imported session.
    pub fn key_exchange_group(&self) -> Option<crate::crypto::KxGroup> {
        self.group
    }

    /// Whether the extended master secret (RFC 7627) is in use.
    pub fn extended_master_secret(&self) -> bool {
        self.extended_master_secret
    }

    /// Bytes a record adds to application data now (header, explicit nonce or inner content
    /// type, tag). A DTLS 1.3 AES-CCM-8 record of fewer than 7 bytes is padded further, to the
    /// 16 bytes of ciphertext its record-number mask is made from.
    pub fn record_overhead(&self) -> usize {
        self.record_overhead_in(self.epochs.write_epoch())
    }

    /// The peer's certificate chain, end entity first (empty for PSK).
    pub fn peer_certificates(&self) -> &[CertificateDer<'static>] {
        self.details.as_ref().map_or(&[], |d| &d.peer_certs)
    }

    /// Every error found while verifying the peer's chain, ignored or not (Qt's
    /// `peerVerificationErrors`).
    pub fn peer_verification_errors(&self) -> &[CertificateError] {
        self.details.as_ref().map_or(&[], |d| &d.verification_errors)
    }

    /// The name the server certificate is checked against (Qt's `peerVerificationName`).
    pub fn server_name(&self) -> Option<&ServerName<'static>> {
        self.details.as_ref().and_then(|d| d.server_name.as_ref())
    }

    /// Server side: the host name the client asked for with SNI.
    pub fn requested_server_name(&self) -> Option<&str> {
        self.details.as_ref().and_then(|d| d.sni.as_deref())
    }

    /// Sets the verification errors to ignore, replacing any earlier list (Qt's
    /// `ignoreVerificationErrors`). Effective for the next verification, or for
    /// [`resume_handshake`](Self::resume_handshake).
    pub fn ignore_verification_errors(&mut self, errors: &[CertificateError]) {
        if !errors.is_empty() || self.details.is_some() {
            self.details_mut().ignored_errors = errors.to_vec();
        }
    }

    /// Resumes a handshake paused in [`HandshakeState::PeerVerificationFailed`] (Qt's
    /// `resumeHandshake`). Returns `Ok(false)`, changing nothing, while some error is not
    /// ignored; `Ok(true)` once the handshake runs again.
    pub fn resume_handshake(&mut self, now: Instant) -> Result<bool, Error> {
        if !matches!(self.lifecycle, Lifecycle::Paused) {
            return Err(Error::InvalidOperation("no handshake is waiting for peer verification"));
        }
        if self.peer_verification_errors().iter().any(|e| !self.ignored_errors().contains(e)) {
            return Ok(false);
        }
        self.lifecycle = Lifecycle::Handshaking;
        if let Err(e) = self.process_messages(now) {
            self.fail(e.clone());
            return Err(e);
        }
        Ok(true)
    }

    /// Applies the verification policy to the errors found in the peer's chain. Errors the
    /// application ignores do not count.
    pub(crate) fn check_peer(&mut self, errors: Vec<CertificateError>) -> Result<(), Error> {
        let remaining: Vec<_> = errors.iter().filter(|e| !self.ignored_errors().contains(e)).cloned().collect();
        self.details_mut().verification_errors = errors;
        if remaining.is_empty() {
            return Ok(());
        }
        match self.config.verify_peer {
            crate::config::VerifyPeer::Continue => Ok(()),
            crate::config::VerifyPeer::Pause => {
                self.lifecycle = Lifecycle::Paused;
                self.events.push_back(Event::PeerVerificationFailed(remaining));
                Ok(())
            }
            _ => Err(Error::PeerVerification(remaining)),
        }
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Bytes held for handshake reassembly.
    pub fn reassembly_bytes(&self) -> usize {
        self.hs.as_ref().map_or(0, |hs| hs.reasm.buffered_bytes())
    }

    /// Handles a timer expiry: retransmits the last flight, or fails the handshake when its
    /// overall timeout passed (Qt's `handleTimeout`).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if self.is_closed() {
            return Ok(());
        }
        let established = self.is_established();
        self.rrc_timeout(now);
        if let Some(t) = self.tls13.as_deref_mut() {
            let due = t.handle_timeout(now);
            if due.handshake_keys {
                self.epochs.retire(crate::handshake::tls13::EPOCH_HANDSHAKE);
            }
            if let Some(epoch) = due.read_keys_before {
                self.epochs.retire_reads(crate::handshake::tls13::EPOCH_APPLICATION..epoch);
            }
        }
        let Some(fl) = self.flight.as_deref_mut() else {
            return Ok(());
        };
        if fl.deadline.is_some_and(|d| now >= d) {
            if established {
                // DTLS 1.3's client: the server never acknowledged our last flight, but it
                // answers what we send since; stop resending. (After the handshake, the same
                // for a post-handshake message: a request for IDs in it is given up; what
                // waited behind it goes.)
                let cid_message = fl.items.iter().any(|i| {
                    matches!(i, crate::handshake::FlightItem::Message { msg_type, .. }
                        if *msg_type == HandshakeType::NEW_CONNECTION_ID || *msg_type == HandshakeType::REQUEST_CONNECTION_ID)
                });
                self.flight = None;
                if cid_message {
                    self.cid_flight_given_up();
                }
                if self.side == Side::Client {
                    self.epochs.retire(crate::handshake::tls13::EPOCH_HANDSHAKE);
                }
                self.start_post_handshake(now);
                return Ok(());
            }
            let e = Error::HandshakeTimeout;
            self.fail(e.clone());
            return Err(e);
        }
        if fl.hold_until.is_some_and(|t| now >= t) {
            // The peer would have given up retransmitting by now.
            self.flight = None;
            return Ok(());
        }
        if fl.retransmit_at.is_some_and(|t| now >= t) {
            fl.rto = (fl.rto * 2).min(self.config.max_retransmit);
            fl.retransmit_at = Some(now + jittered(&mut self.rng, fl.rto, self.config.retransmit_jitter));
            fl.cursor = (!fl.items.is_empty()).then_some((0, 0));
            fl.last_sent_at = Some(now);
            self.stats.retransmissions += 1;
            self.events.push_back(Event::Retransmitted);
        }
        Ok(())
    }

    // ===== commands =====

    /// Protects `data` as one application data record and appends it to `out` (Qt's
    /// `writeDatagramEncrypted`, minus the socket). `data` must fit in one record (16 KiB) and,
    /// to arrive, in one datagram with [`record_overhead`](Self::record_overhead).
    pub fn send(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::InvalidOperation("the connection is closed"));
        }
        if !self.is_established() {
            return Err(Error::InvalidOperation("the handshake has not completed"));
        }
        if data.len() > MAX_PLAINTEXT {
            return Err(Error::InvalidInput("application data larger than 16384 bytes"));
        }
        let epoch = self.epochs.write_epoch();
        if epoch == 0 || self.epochs.write_keys(epoch).is_none() {
            return Err(Error::InvalidOperation("no keys"));
        }
        self.seal_record(ContentType::APPLICATION_DATA, epoch, data, out).map(|_| ())
    }

    // ===== output =====

    /// Writes the next datagram to send into `out` (cleared first) and returns its length, or
    /// `None` when there is nothing to send.
    #[must_use]
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> Option<usize> {
        out.clear();
        if self.transmit_rrc(out) {
            self.stats.datagrams_sent += 1;
            return Some(out.len());
        }
        let mtu = self.mtu();
        // An ACK first: it answers what the peer sent (a handshake flight of ours leaves none:
        // it acknowledges implicitly), before a post-handshake flight of ours (tickets, a
        // KeyUpdate) that the peer reads as something new.
        self.transmit_ack(mtu, out);
        if let Some(mut fl) = self.flight.take() {
            self.transmit_flight(&mut fl, mtu, out);
            self.flight = Some(fl);
        }
        if let Some((level, desc)) = self.alert {
            let epoch = self.epochs.write_epoch();
            if out.len() + self.record_overhead_in(epoch) + 2 <= mtu || out.is_empty() {
                self.alert = None;
                self.write_record(ContentType::ALERT, epoch, &[level.0, desc.0], out);
            }
        }
        if out.is_empty() {
            return None;
        }
        self.stats.datagrams_sent += 1;
        Some(out.len())
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if event.is_none() && self.events.capacity() > 0 && self.is_established() {
            // Events are rare once established: an idle connection keeps no buffer for them.
            self.events = VecDeque::new();
        }
        event
    }

    // ===== internals =====

    /// Bytes a record of `epoch` adds to its plaintext (header and protection).
    fn record_overhead_in(&self, epoch: u64) -> usize {
        let format = self.config.unified_format();
        let keys = self.epochs.write_keys(epoch);
        let cid = match (self.peer_cid_for(epoch), keys) {
            // A DTLS 1.3 header carries the peer's ID; the inner content type is already counted.
            (Some(c), Some(EpochKeys::Dtls13(_))) => c.len(),
            // A `tls12_cid` record: the peer's ID and the inner content type besides.
            (Some(c), _) => c.len() + 1,
            (None, _) => 0,
        };
        keys.map_or(HEADER_LEN, |k| k.record_overhead(format)) + cid
    }

    /// Takes the next record sequence number of `epoch`. Every record writer goes through
    /// here: past 2^48 − 1 the connection ends (quietly: not even an alert can be sealed), so a
    /// nonce is never used twice.
    fn next_write_seq(&mut self, epoch: u64) -> Result<u64, Error> {
        if let Some(seq) = self.epochs.take_seq(epoch) {
            return Ok(seq);
        }
        if self.epochs.next_seq(epoch).is_none() {
            // No such epoch to write in: a bug, not the peer's doing.
            tracing::warn!(epoch, "no keys to write a record in this epoch");
            return Err(Error::Crypto);
        }
        self.alert = None;
        self.fail(Error::SequenceExhausted);
        Err(Error::SequenceExhausted)
    }

    /// Appends `body` as one record of `epoch`, in the format of the epoch's keys (plaintext
    /// for epoch 0), and returns its sequence number.
    #[inline]
    fn seal_record(
        &mut self,
        content_type: ContentType,
        epoch: u64,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<u64, Error> {
        let seq = self.next_write_seq(epoch)?;
        let header =
            RecordHeader { content_type, version: ProtocolVersion::DTLS1_2, epoch: epoch as u16, seq, length: 0 };
        match self.epochs.write_keys(epoch) {
            Some(EpochKeys::Dtls12(keys)) => match self.peer_cid_for(epoch) {
                // RFC 9146 §4: the real type goes inside, the header says tls12_cid.
                Some(cid) => {
                    let outer = RecordHeader { content_type: ContentType::TLS12_CID, ..header };
                    let record = crate::record::Header::Cid12 { header: outer, cid };
                    keys.seal_record(&record, header.epoch_seq(), Some(content_type), body, out)?;
                }
                None => keys.seal(header, body, out)?,
            },
            Some(EpochKeys::Dtls13(keys)) => {
                let format = self.config.unified_format();
                // Two calls: the common one, without an ID, is compiled for that case alone.
                match self.peer_cid_for(epoch) {
                    None => keys.seal(epoch, seq, None, format, content_type, body, out)?,
                    cid => keys.seal(epoch, seq, cid, format, content_type, body, out)?,
                }
            }
            None => {
                RecordHeader { length: body.len() as u16, ..header }.write(out);
                out.extend_from_slice(body);
            }
        }
        Ok(seq)
    }

    /// Appends `body` as one record of `epoch` (nothing once sequence numbers are exhausted);
    /// returns its sequence number.
    pub(crate) fn write_record(
        &mut self,
        content_type: ContentType,
        epoch: u64,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> Option<u64> {
        match self.seal_record(content_type, epoch, body, out) {
            Ok(seq) => Some(seq),
            Err(e) => {
                if e == Error::Crypto {
                    tracing::warn!("sealing a record failed");
                }
                None
            }
        }
    }
}
