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
use crate::enums::{AlertDescription, AlertLevel, ContentType, HandshakeType, Protocol, ProtocolVersion};
use crate::error::Error;
use crate::handshake::reassembly::Inserted;
use crate::handshake::Handshake;
use crate::messages::{HandshakeHeader, HS_HEADER_LEN};
use crate::pki::{CertificateDer, CertificateError, ServerName};
use crate::record::epoch::EpochTable;
use crate::record::{RecordHeader, RecordProtection, ReplayWindow, HEADER_LEN, MAX_PLAINTEXT, MAX_SEQ};
use crate::suites::CipherSuite;

/// Which end of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// We sent the ClientHello.
    Client,
    /// We answered it.
    Server,
}

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
    /// The connection ended: the peer closed it, or a fatal error occurred.
    Closed(Error),
}

/// Counters of what a connection did, for diagnostics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records received and accepted.
    pub records_accepted: u64,
    /// Records dropped because they could not be parsed.
    pub dropped_malformed: u64,
    /// Records dropped by the anti-replay window.
    pub dropped_replayed: u64,
    /// Records dropped because they failed authentication.
    pub dropped_bad_auth: u64,
    /// Records dropped because of their epoch (no keys yet, or unknown).
    pub dropped_epoch: u64,
    /// Records dropped because they were not expected now.
    pub dropped_unexpected: u64,
    /// Handshake fragments dropped (outside the window, inconsistent, over a limit).
    pub dropped_fragments: u64,
    /// Flights sent again (timer or peer retransmission).
    pub retransmissions: u64,
    /// Datagrams produced by `poll_transmit`.
    pub datagrams_sent: u64,
}

/// Next-epoch records kept while the keys to read them are not there yet.
const MAX_EARLY_RECORDS: usize = 4;
/// Largest such record kept (a Finished record is about 60 bytes).
const MAX_EARLY_RECORD_LEN: usize = 512;

/// Marks an exported session (and its format version).
const SESSION_MAGIC: &[u8] = b"DTLSSES1";

/// Most records handled from one datagram: bounds the work one datagram can cause.
pub const MAX_RECORDS_PER_DATAGRAM: usize = 32;

/// Epoch-1 records failing authentication during the handshake (none ever authenticated) after
/// which the keys are taken to differ.
const KEY_MISMATCH_FAILURES: u64 = 3;

/// How many times a completed connection answers a retransmission of the peer's last flight.
const MAX_FINAL_RESENDS: u8 = 16;

/// Decrypted application data from one datagram: each record's plaintext, in order, borrowed
/// from the datagram buffer (decryption happens in place).
#[derive(Debug)]
pub struct Received<'a> {
    buf: &'a [u8],
    ranges: [(u32, u32); MAX_RECORDS_PER_DATAGRAM],
    len: usize,
}

impl<'a> Received<'a> {
    /// Number of application data records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the datagram carried no application data.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The plaintext of each application data record.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        let buf = self.buf;
        self.ranges[..self.len].iter().map(move |&(s, e)| &buf[s as usize..e as usize])
    }
}

#[derive(Debug)]
pub(crate) enum FlightItem {
    Message { epoch: u16, msg_type: HandshakeType, seq: u16, body: Vec<u8> },
    ChangeCipherSpec,
}

/// A DTLS connection: one association with one peer.
pub struct Connection {
    pub(crate) side: Side,
    pub(crate) config: Arc<Config>,
    pub(crate) state: HandshakeState,
    closed: bool,
    last_error: Option<Box<Error>>,
    pending_error: Option<Box<Error>>,
    pub(crate) hs: Option<Box<Handshake>>,
    pub(crate) suite: Option<&'static CipherSuite>,
    pub(crate) psk_identity: Option<Vec<u8>>,
    pub(crate) extended_master_secret: bool,
    /// Names, certificates and secrets most connections never have (PSK ones): allocated
    /// only when one is set.
    pub(crate) details: Option<Box<Details>>,

    /// Keys, replay windows and sequence numbers of every epoch in use.
    pub(crate) epochs: EpochTable,

    /// Handshake transmission state; `None` once nothing can need it (idle connections).
    pub(crate) flight: Option<Box<Flight>>,
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
    pub(crate) peer_certs: Vec<CertificateDer<'static>>,
    pub(crate) verification_errors: Vec<CertificateError>,
    pub(crate) ignored_errors: Vec<CertificateError>,
    /// Master secret and randoms, kept after the handshake only when session export is allowed.
    pub(crate) export_secret: Option<zeroize::Zeroizing<Vec<u8>>>,
}

/// The flight we last sent, its retransmission timers, and other state only the handshake
/// needs. It lives from the first flight until the last one cannot be needed any more: for a
/// server, until the client shows it has our Finished or the handshake timeout passes again.
#[derive(Debug)]
pub(crate) struct Flight {
    items: Vec<FlightItem>,
    /// Next item and offset to send, while a (re)transmission is in progress.
    cursor: Option<(usize, usize)>,
    last_sent_at: Option<Instant>,
    rto: Duration,
    retransmit_at: Option<Instant>,
    /// The handshake fails if not complete by then.
    deadline: Option<Instant>,
    /// Server, after completion: when the final flight is dropped.
    hold_until: Option<Instant>,
    /// After completion: the `message_seq`s of the peer's last flight; seeing one again means
    /// our final flight was lost.
    final_trigger: Option<core::ops::RangeInclusive<u16>>,
    final_resends: u8,
    /// Next-epoch records that arrived before the keys to read them (bounded).
    early: Vec<(RecordHeader, Vec<u8>)>,
    /// One record's plaintext being built.
    pub(crate) scratch: Vec<u8>,
}

impl Flight {
    fn new(rto: Duration, deadline: Option<Instant>) -> Self {
        Self {
            items: Vec::new(),
            cursor: None,
            last_sent_at: None,
            rto,
            retransmit_at: None,
            deadline,
            hold_until: None,
            final_trigger: None,
            final_resends: 0,
            early: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("side", &self.side)
            .field("state", &self.state)
            .field("closed", &self.closed)
            .field("suite", &self.suite)
            .field("write_epoch", &self.epochs.write_epoch())
            .finish_non_exhaustive()
    }
}

impl Connection {
    fn new(side: Side, config: Arc<Config>, now: Instant) -> Result<Self, Error> {
        let seed = match config.rng_seed {
            Some(s) => s ^ if side == Side::Client { 0x9e37_79b9_7f4a_7c15 } else { 0 },
            None => {
                let mut b = [0u8; 8];
                config.provider.fill_random(&mut b)?;
                u64::from_le_bytes(b)
            }
        };
        let hs = Handshake::new(side, &config);
        Ok(Self {
            side,
            state: HandshakeState::InProgress,
            closed: false,
            last_error: None,
            pending_error: None,
            hs: Some(Box::new(hs)),
            suite: None,
            psk_identity: None,
            extended_master_secret: false,
            details: (!config.ignored_errors.is_empty())
                .then(|| Box::new(Details { ignored_errors: config.ignored_errors.clone(), ..Details::default() })),
            epochs: EpochTable::default(),
            flight: Some(Box::new(Flight::new(config.initial_retransmit, Some(now + config.handshake_timeout)))),
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
            conn.details_mut().server_name = server_name;
        }
        conn.client_start(now)?;
        Ok(conn)
    }

    /// Server side: the local address the client's datagrams arrive on, used to pick a
    /// certificate valid for it when the client sends no SNI (EdgerOS `ipcert`). Set it before
    /// the ClientHello is handled.
    pub fn set_local_ip(&mut self, ip: std::net::IpAddr) {
        if let Some(hs) = &mut self.hs {
            hs.local_ip = Some(ip);
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
        Self::new(Side::Server, config, now)
    }

    // ===== getters =====

    /// Client or server.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The handshake state.
    pub fn handshake_state(&self) -> HandshakeState {
        self.state
    }

    /// Whether the handshake completed and the connection is still open (Qt's `isConnectionEncrypted`).
    pub fn is_established(&self) -> bool {
        self.state == HandshakeState::Complete && !self.closed
    }

    /// Whether the connection is over (shut down, closed by the peer, or failed).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The fatal error that ended the connection, if any (Qt's `dtlsError`).
    pub fn last_error(&self) -> Option<&Error> {
        self.last_error.as_deref()
    }

    /// The negotiated cipher suite, once the handshake completed (Qt's `sessionCipher`).
    pub fn cipher_suite(&self) -> Option<&'static CipherSuite> {
        (self.state == HandshakeState::Complete).then_some(self.suite).flatten()
    }

    /// The negotiated protocol version, once the handshake completed (Qt's `sessionProtocol`).
    pub fn protocol(&self) -> Option<Protocol> {
        (self.state == HandshakeState::Complete).then_some(Protocol::Dtls1_2)
    }

    /// The PSK identity used: the one the client sent, as seen by either side.
    pub fn psk_identity(&self) -> Option<&[u8]> {
        self.psk_identity.as_deref()
    }

    /// Whether the extended master secret (RFC 7627) is in use.
    pub fn extended_master_secret(&self) -> bool {
        self.extended_master_secret
    }

    /// The largest datagram handshake flights use (Qt's `mtuHint`).
    pub fn mtu(&self) -> usize {
        self.hs.as_ref().map_or(self.config.mtu, |hs| hs.mtu)
    }

    /// Sets the largest datagram handshake flights use (Qt's `setMtuHint`); `0` restores the
    /// configured value. Application data is never fragmented.
    pub fn set_mtu(&mut self, mtu: usize) -> Result<(), Error> {
        let mtu = if mtu == 0 { self.config.mtu } else { mtu };
        if !(crate::config::MIN_MTU..=65_507).contains(&mtu) {
            return Err(Error::InvalidInput("MTU must be between 64 and 65507 bytes"));
        }
        if let Some(hs) = &mut self.hs {
            hs.mtu = mtu;
        }
        Ok(())
    }

    /// Bytes a record adds to application data now (header, explicit nonce, tag).
    pub fn record_overhead(&self) -> usize {
        HEADER_LEN + self.epochs.write_keys(1).map_or(0, RecordProtection::overhead)
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
        if self.closed || self.state != HandshakeState::PeerVerificationFailed {
            return Err(Error::InvalidOperation("no handshake is waiting for peer verification"));
        }
        if self.peer_verification_errors().iter().any(|e| !self.ignored_errors().contains(e)) {
            return Ok(false);
        }
        self.state = HandshakeState::InProgress;
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
                self.state = HandshakeState::PeerVerificationFailed;
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

    // ===== session hand-off =====

    /// Serializes an established connection so another process can resume it with
    /// [`import_session`](Self::import_session) (EdgerOS `flyAway` / `createByFd`). The result
    /// holds the master secret: pass it only over a private channel (a pipe or a UNIX socket to
    /// a cooperating process) and let it be wiped (it is zeroized on drop). The configuration
    /// must allow it ([`ConfigBuilder::allow_session_export`](crate::ConfigBuilder::allow_session_export)).
    /// Sequence numbers continue from where this connection stopped, so this connection closes
    /// (quietly, without an alert): two owners of one key would reuse nonces.
    pub fn export_session(&mut self) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
        use crate::codec::Put;
        if !self.is_established() {
            return Err(Error::InvalidOperation("only an established connection can be exported"));
        }
        let (Some(secret), Some(suite)) = (self.details.as_ref().and_then(|d| d.export_secret.as_ref()), self.suite)
        else {
            return Err(Error::InvalidOperation("session export is not allowed by the configuration"));
        };
        let write_seq = self.epochs.next_seq(1).unwrap_or(0);
        if write_seq > MAX_SEQ {
            // The importer would start again from a sequence number already used.
            return Err(Error::SequenceExhausted);
        }
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(256));
        out.extend_from_slice(SESSION_MAGIC);
        out.put_u8(match self.side {
            Side::Client => 0,
            Side::Server => 1,
        });
        out.put_u16(suite.id);
        out.put_u8(u8::from(self.extended_master_secret));
        out.extend_from_slice(secret);
        out.put_u48(write_seq);
        let (top, bits) = self.epochs.window(1).map_or((0, 0), ReplayWindow::to_parts);
        out.extend_from_slice(&top.to_be_bytes());
        out.extend_from_slice(&bits.to_be_bytes());
        out.put_vec16(self.psk_identity.as_deref().unwrap_or_default());
        out.put_u16(self.peer_certificates().len() as u16);
        for c in self.peer_certificates() {
            out.put_len24(|b| b.extend_from_slice(c.as_ref()));
        }
        self.close_quietly();
        if let Some(d) = &mut self.details {
            d.export_secret = None;
        }
        self.epochs.clear_keys();
        Ok(out)
    }

    /// Resumes a connection exported with [`export_session`](Self::export_session). `config`
    /// supplies the crypto provider and limits; the keys come from the exported state.
    pub fn import_session(config: Arc<Config>, data: &[u8], now: Instant) -> Result<Self, Error> {
        use crate::handshake::keys::KeyBlock;
        let bad = Error::InvalidInput("not an exported DTLS session");
        let mut r = Reader::new(data);
        if r.take(SESSION_MAGIC.len()) != Some(SESSION_MAGIC) {
            return Err(bad);
        }
        let side = match r.u8() {
            Some(0) => Side::Client,
            Some(1) => Side::Server,
            _ => return Err(bad),
        };
        let suite = r.u16().and_then(CipherSuite::from_id).ok_or(bad.clone())?;
        let ems = r.u8().ok_or(bad.clone())? != 0;
        let master: [u8; 48] = r.take_array().ok_or(bad.clone())?;
        let master = zeroize::Zeroizing::new(master);
        let client_random: [u8; 32] = r.take_array().ok_or(bad.clone())?;
        let server_random: [u8; 32] = r.take_array().ok_or(bad.clone())?;
        let write_seq = r.u48().ok_or(bad.clone())?;
        let top = u64::from_be_bytes(r.take_array().ok_or(bad.clone())?);
        let bits = u64::from_be_bytes(r.take_array().ok_or(bad.clone())?);
        let identity = r.vec16().ok_or(bad.clone())?;
        let count = r.u16().ok_or(bad.clone())?;
        let mut peer_certs = Vec::with_capacity(usize::from(count.min(16)));
        for _ in 0..count {
            peer_certs.push(CertificateDer::from(r.vec24().ok_or(bad.clone())?.to_vec()));
        }
        r.finish().ok_or(bad)?;

        let provider = config.provider.clone();
        let kb = KeyBlock::derive(&*provider, suite, &master, &client_random, &server_random)?;
        let client = RecordProtection::new(suite, provider.aead_key(suite.aead, kb.client_key())?, kb.client_iv());
        let server = RecordProtection::new(suite, provider.aead_key(suite.aead, kb.server_key())?, kb.server_iv());
        let (write, read) = match side {
            Side::Client => (client, server),
            Side::Server => (server, client),
        };
        let mut conn = Self::new(side, config, now)?;
        conn.hs = None;
        conn.state = HandshakeState::Complete;
        conn.flight = None;
        conn.suite = Some(suite);
        conn.extended_master_secret = ems;
        conn.epochs.install(1, Some(read), Some(write));
        conn.epochs.set_write_epoch(1);
        conn.epochs.set_next_seq(1, write_seq);
        conn.epochs.set_window(1, ReplayWindow::from_parts(top, bits));
        conn.psk_identity = (!identity.is_empty()).then(|| identity.to_vec());
        if !peer_certs.is_empty() {
            conn.details_mut().peer_certs = peer_certs;
        }
        if conn.config.session_export {
            let mut secret = zeroize::Zeroizing::new(Vec::with_capacity(48 + 64));
            secret.extend_from_slice(&master[..]);
            secret.extend_from_slice(&client_random);
            secret.extend_from_slice(&server_random);
            conn.details_mut().export_secret = Some(secret);
        }
        Ok(conn)
    }

    // ===== input =====

    /// Processes one datagram from the peer, decrypting it in place. Returns the application
    /// data it carried (Qt's `decryptDatagram`); handshake records advance the handshake (Qt's
    /// `doHandshake`). Invalid records are dropped silently.
    pub fn handle_datagram<'a>(&mut self, now: Instant, datagram: &'a mut [u8]) -> Result<Received<'a>, Error> {
        if let Some(e) = self.pending_error.take() {
            return Err(*e);
        }
        if self.closed {
            return Err(self
                .last_error
                .as_deref()
                .cloned()
                .unwrap_or(Error::InvalidOperation("the connection is closed")));
        }
        let mut ranges = [(0u32, 0u32); MAX_RECORDS_PER_DATAGRAM];
        let mut n = 0;
        let mut pos = 0;
        let mut records = 0;
        while records < self.config.max_records_per_datagram && !self.closed {
            let Some(header) = datagram.get(pos..).and_then(RecordHeader::parse) else {
                if pos < datagram.len() {
                    self.stats.dropped_malformed += 1;
                }
                break;
            };
            records += 1;
            let start = pos + HEADER_LEN;
            let end = start + usize::from(header.length);
            pos = end;
            let result = self.handle_record(now, header, &mut datagram[start..end]);
            let result = result.and_then(|r| self.replay_early(now).map(|()| r));
            match result {
                Ok(Some(r)) => {
                    ranges[n] = ((start + r.start) as u32, (start + r.end) as u32);
                    n += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    self.fail(e.clone());
                    if n == 0 {
                        return Err(e);
                    }
                    self.pending_error = Some(Box::new(e));
                    break;
                }
            }
        }
        if self.closed && n == 0 {
            if let Some(e) = self.pending_error.take() {
                return Err(*e);
            }
        }
        Ok(Received { buf: datagram, ranges, len: n })
    }

    /// Handles one record; returns the plaintext range of application data.
    fn handle_record(
        &mut self,
        now: Instant,
        header: RecordHeader,
        fragment: &mut [u8],
    ) -> Result<Option<Range<usize>>, Error> {
        if !header.version.is_dtls() {
            self.stats.dropped_malformed += 1;
            return Ok(None);
        }
        let plain = if header.epoch == 0 {
            0..fragment.len()
        } else {
            let epoch = u64::from(header.epoch);
            let limit = self.failed_decryption_limit();
            let handshaking = self.hs.is_some();
            let Some(reader) = self.epochs.reader(epoch) else {
                // The peer's next-epoch records (its Finished) overtook the message that gives
                // us the keys: keep a few, bounded, and read them once we have keys.
                let keep = epoch == 1 && handshaking && fragment.len() <= MAX_EARLY_RECORD_LEN;
                match self.flight.as_deref_mut() {
                    Some(fl) if keep && fl.early.len() < MAX_EARLY_RECORDS => {
                        fl.early.push((header, fragment.to_vec()));
                    }
                    _ => self.stats.dropped_epoch += 1,
                }
                return Ok(None);
            };
            if !reader.window.check(header.seq) {
                self.stats.dropped_replayed += 1;
                return Ok(None);
            }
            let Ok(r) = reader.keys.open(&header, fragment) else {
                self.stats.dropped_bad_auth += 1;
                *reader.failures += 1;
                if *reader.failures >= limit {
                    return Err(Error::PeerMisbehaved {
                        alert: AlertDescription::BAD_RECORD_MAC,
                        reason: "too many records failed authentication under these keys",
                    });
                }
                // During the handshake, before any record of the new epoch authenticated,
                // repeated failures mean the two sides derived different keys (most often a
                // wrong pre-shared key): fail now with a clear cause rather than time out. An
                // attacker able to inject these could as well spoof a fatal alert.
                if handshaking && reader.window.highest().is_none() && *reader.failures >= KEY_MISMATCH_FAILURES {
                    return Err(Error::PeerMisbehaved {
                        alert: AlertDescription::BAD_RECORD_MAC,
                        reason: "the peer's encrypted records do not authenticate: the keys differ \
                                 (wrong pre-shared key?)",
                    });
                }
                return Ok(None);
            };
            reader.window.update(header.seq);
            r
        };
        if plain.len() > MAX_PLAINTEXT {
            self.stats.dropped_malformed += 1;
            return Ok(None);
        }
        let body = &fragment[plain.clone()];
        match header.content_type {
            ContentType::HANDSHAKE => {
                if self.side == Side::Server && header.epoch == 0 {
                    if let Some(hs) = &self.hs {
                        if hs.awaiting_client_hello() {
                            // Continue the record sequence the stateless HelloVerifyRequest used.
                            self.epochs.raise_plain_seq(header.seq);
                        }
                    }
                }
                self.stats.records_accepted += 1;
                self.handle_handshake_record(now, header.epoch, body)?;
                Ok(None)
            }
            ContentType::CHANGE_CIPHER_SPEC => {
                if header.epoch != 0 || body != [1] {
                    self.stats.dropped_malformed += 1;
                    return Ok(None);
                }
                let Some(hs) = &mut self.hs else {
                    self.stats.dropped_unexpected += 1;
                    return Ok(None);
                };
                self.stats.records_accepted += 1;
                hs.peer_ccs = true;
                self.process_messages(now)?;
                Ok(None)
            }
            ContentType::ALERT => self.handle_alert(header.epoch, body).map(|()| None),
            ContentType::APPLICATION_DATA => {
                if header.epoch == 0 || self.state != HandshakeState::Complete {
                    self.stats.dropped_unexpected += 1;
                    return Ok(None);
                }
                self.stats.records_accepted += 1;
                if self.side == Side::Server && self.flight.is_some() {
                    // The client has our Finished: the final flight is no longer needed.
                    self.flight = None;
                }
                Ok(Some(plain))
            }
            _ => {
                self.stats.dropped_malformed += 1;
                Ok(None)
            }
        }
    }

    fn handle_alert(&mut self, epoch: u16, body: &[u8]) -> Result<(), Error> {
        let mut r = Reader::new(body);
        let (Some(level), Some(desc), Some(())) = (r.u8(), r.u8(), r.finish()) else {
            self.stats.dropped_malformed += 1;
            return Ok(());
        };
        // Once keys are in use, unauthenticated alerts could be forged by anyone: ignore them.
        if epoch == 0 && self.epochs.can_read(1) && self.state == HandshakeState::Complete {
            self.stats.dropped_unexpected += 1;
            return Ok(());
        }
        self.stats.records_accepted += 1;
        let desc = AlertDescription(desc);
        if desc == AlertDescription::CLOSE_NOTIFY {
            // Answer with our own close_notify, then close (RFC 5246 §7.2.1).
            self.alert = Some((AlertLevel::WARNING, AlertDescription::CLOSE_NOTIFY));
            self.flight = None;
            return Err(Error::RemoteClosed);
        }
        if AlertLevel(level) == AlertLevel::FATAL {
            return Err(Error::AlertReceived(desc));
        }
        self.events.push_back(Event::WarningAlert(desc));
        Ok(())
    }

    fn handle_handshake_record(&mut self, now: Instant, epoch: u16, body: &[u8]) -> Result<(), Error> {
        let mut r = Reader::new(body);
        let Some(hs) = &mut self.hs else {
            // The handshake is over: the peer may be retransmitting its last flight because our
            // final flight was lost, or trying to renegotiate, which we refuse.
            while let Some((h, _)) = HandshakeHeader::parse(&mut r) {
                let renegotiation = match self.side {
                    Side::Server => h.msg_type == HandshakeType::CLIENT_HELLO,
                    Side::Client => h.msg_type == HandshakeType::HELLO_REQUEST,
                };
                if renegotiation {
                    if epoch == 1 {
                        self.alert = Some((AlertLevel::WARNING, AlertDescription::NO_RENEGOTIATION));
                    } else {
                        self.stats.dropped_unexpected += 1;
                    }
                    break;
                }
                // Only an authenticated record of the peer's last flight (its Finished, which
                // every retransmission of that flight carries) proves our final flight was
                // lost: epoch-0 look-alikes can be forged by anyone, and each would draw our
                // whole final flight to the peer's address.
                let trigger = self.flight.as_ref().and_then(|f| f.final_trigger.as_ref());
                if epoch != 0 && trigger.is_some_and(|t| t.contains(&h.message_seq)) {
                    self.answer_retransmission(now);
                    break;
                }
                self.stats.dropped_unexpected += 1;
            }
            return Ok(());
        };
        let mut peer_retransmits = false;
        while !r.is_empty() {
            let Some((h, frag)) = HandshakeHeader::parse(&mut r) else {
                self.stats.dropped_malformed += 1;
                break;
            };
            if self.side == Side::Server && hs.awaiting_client_hello() && h.msg_type == HandshakeType::CLIENT_HELLO {
                // The first ClientHello we see sets the sequence: 0, or one more after each
                // HelloVerifyRequest the client followed.
                if h.message_seq <= crate::cookie::MAX_CLIENT_HELLO_SEQ && hs.reasm.buffered_bytes() == 0 && epoch == 0
                {
                    hs.reasm.set_next_seq(h.message_seq);
                }
            }
            match hs.reasm.insert(epoch, &h, frag) {
                Inserted::Buffered | Inserted::Duplicate => {}
                Inserted::Dropped => self.stats.dropped_fragments += 1,
                Inserted::Old => {
                    // The peer repeats its last flight: ours was lost. Later messages of this
                    // record are still read (a peer may repack its flight).
                    peer_retransmits |=
                        hs.peer_flight_start.is_some_and(|s| h.message_seq >= s) && h.fragment_offset == 0;
                }
            }
        }
        if peer_retransmits {
            self.answer_retransmission(now);
        }
        self.process_messages(now)
    }

    /// Delivers complete messages to the state machine, in order.
    fn process_messages(&mut self, now: Instant) -> Result<(), Error> {
        loop {
            if self.state == HandshakeState::PeerVerificationFailed {
                // Paused: messages stay buffered until the application decides.
                return Ok(());
            }
            let Some(hs) = &mut self.hs else { return Ok(()) };
            let Some((ty, epoch)) = hs.reasm.peek() else { return Ok(()) };
            if ty == HandshakeType::FINISHED {
                if epoch != 1 {
                    return Err(Error::unexpected("Finished outside epoch 1"));
                }
                if !hs.peer_ccs {
                    // Wait for ChangeCipherSpec (it may have been reordered behind Finished).
                    return Ok(());
                }
            } else if epoch != 0 {
                return Err(Error::unexpected("handshake message in the wrong epoch"));
            }
            let Some(msg) = hs.reasm.pop() else { return Ok(()) };
            match self.side {
                Side::Client => self.client_handle(now, msg)?,
                Side::Server => self.server_handle(now, msg)?,
            }
        }
    }

    /// Handles a timer expiry: retransmits the last flight, or fails the handshake when its
    /// overall timeout passed (Qt's `handleTimeout`).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if self.closed {
            return Ok(());
        }
        let Some(fl) = self.flight.as_deref_mut() else {
            return Ok(());
        };
        if fl.deadline.is_some_and(|d| now >= d) && self.state != HandshakeState::Complete {
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
            fl.retransmit_at = Some(now + jittered(&mut self.rng, fl.rto));
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
        if self.closed {
            return Err(Error::InvalidOperation("the connection is closed"));
        }
        if self.state != HandshakeState::Complete {
            return Err(Error::InvalidOperation("the handshake has not completed"));
        }
        if data.len() > MAX_PLAINTEXT {
            return Err(Error::InvalidInput("application data larger than 16384 bytes"));
        }
        if self.epochs.write_keys(1).is_none() {
            return Err(Error::InvalidOperation("no keys"));
        }
        let seq = self.next_write_seq(1)?;
        let Some(keys) = self.epochs.write_keys(1) else {
            return Err(Error::InvalidOperation("no keys"));
        };
        let header = RecordHeader {
            content_type: ContentType::APPLICATION_DATA,
            version: ProtocolVersion::DTLS1_2,
            epoch: 1,
            seq,
            length: 0,
        };
        keys.seal(header, data, out)?;
        Ok(())
    }

    /// Sends close_notify and closes the connection (Qt's `shutdown`). The alert is ready in
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn shutdown(&mut self) -> Result<(), Error> {
        if self.closed {
            return Err(Error::InvalidOperation("the connection is already closed"));
        }
        self.alert = Some((AlertLevel::WARNING, AlertDescription::CLOSE_NOTIFY));
        self.close_quietly();
        self.state = HandshakeState::NotStarted;
        Ok(())
    }

    /// Aborts a handshake in progress with a `user_canceled` alert (Qt's `abortHandshake`).
    pub fn abort_handshake(&mut self) -> Result<(), Error> {
        if self.closed || self.state == HandshakeState::Complete {
            return Err(Error::InvalidOperation("no handshake in progress"));
        }
        if self.state == HandshakeState::PeerVerificationFailed {
            // Tell the peer why: the alert of the first error not ignored.
            let remaining: Vec<_> = self
                .peer_verification_errors()
                .iter()
                .filter(|e| !self.ignored_errors().contains(e))
                .cloned()
                .collect();
            let desc = remaining.first().map_or(AlertDescription::BAD_CERTIFICATE, CertificateError::alert);
            self.alert = Some((AlertLevel::FATAL, desc));
            self.last_error = Some(Box::new(Error::PeerVerification(remaining)));
        } else {
            self.alert = Some((AlertLevel::FATAL, AlertDescription::USER_CANCELED));
        }
        self.close_quietly();
        self.state = HandshakeState::NotStarted;
        Ok(())
    }

    // ===== output =====

    /// Writes the next datagram to send into `out` (cleared first) and returns its length, or
    /// `None` when there is nothing to send.
    #[must_use]
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> Option<usize> {
        out.clear();
        let mtu = self.mtu();
        if let Some(mut fl) = self.flight.take() {
            self.transmit_flight(&mut fl, mtu, out);
            self.flight = Some(fl);
        }
        if let Some((level, desc)) = self.alert {
            let epoch = self.epochs.write_epoch() as u16;
            if out.len() + HEADER_LEN + self.protection_overhead(epoch) + 2 <= mtu || out.is_empty() {
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

    /// Packs as much of the flight being (re)transmitted as fits in one datagram.
    fn transmit_flight(&mut self, fl: &mut Flight, mtu: usize, out: &mut Vec<u8>) {
        while let Some((i, off)) = fl.cursor {
            let Some(item) = fl.items.get(i) else {
                fl.cursor = None;
                break;
            };
            let (epoch, need_min, limit) = match item {
                FlightItem::ChangeCipherSpec => (0, 1, mtu),
                // A ClientHello is never fragmented: servers that verify cookies (and many
                // small stacks) drop fragmented ClientHellos, so one oversized datagram is the
                // only thing that can work.
                FlightItem::Message { msg_type: HandshakeType::CLIENT_HELLO, body, .. } => {
                    (0, HS_HEADER_LEN + body.len(), mtu.max(HEADER_LEN + HS_HEADER_LEN + body.len()))
                }
                FlightItem::Message { epoch, body, .. } => (*epoch, HS_HEADER_LEN + usize::from(!body.is_empty()), mtu),
            };
            let overhead = HEADER_LEN + self.protection_overhead(epoch);
            let room = limit.saturating_sub(out.len() + overhead);
            if room < need_min {
                if out.is_empty() {
                    // Cannot happen with MIN_MTU; never loop forever if it somehow does.
                    fl.cursor = None;
                }
                break;
            }
            fl.scratch.clear();
            match item {
                FlightItem::ChangeCipherSpec => {
                    fl.scratch.push(1);
                    fl.cursor = Some((i + 1, 0));
                    self.write_record(ContentType::CHANGE_CIPHER_SPEC, 0, &fl.scratch, out);
                }
                FlightItem::Message { epoch, msg_type, seq, body } => {
                    let take = (body.len() - off).min(room - HS_HEADER_LEN);
                    HandshakeHeader {
                        msg_type: *msg_type,
                        length: body.len() as u32,
                        message_seq: *seq,
                        fragment_offset: off as u32,
                        fragment_length: take as u32,
                    }
                    .write(&mut fl.scratch);
                    fl.scratch.extend_from_slice(&body[off..off + take]);
                    let epoch = *epoch;
                    fl.cursor = Some(if off + take >= body.len() { (i + 1, 0) } else { (i, off + take) });
                    self.write_record(ContentType::HANDSHAKE, epoch, &fl.scratch, out);
                }
            }
            if fl.cursor.is_some_and(|(i, _)| i >= fl.items.len()) {
                fl.cursor = None;
            }
        }
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if event.is_none() && self.events.capacity() > 0 && self.state == HandshakeState::Complete {
            // Events are rare once established: an idle connection keeps no buffer for them.
            self.events = VecDeque::new();
        }
        event
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let fl = self.flight.as_deref()?;
        [fl.retransmit_at, fl.deadline, fl.hold_until].into_iter().flatten().min()
    }

    // ===== internals =====

    /// Reads the next-epoch records kept while we had no keys, now that we have them.
    fn replay_early(&mut self, now: Instant) -> Result<(), Error> {
        let Some(fl) = self.flight.as_deref_mut() else {
            return Ok(());
        };
        if !self.epochs.can_read(1) || fl.early.is_empty() {
            return Ok(());
        }
        for (header, mut fragment) in core::mem::take(&mut fl.early) {
            // Application data cannot precede the handshake's end; anything else is handled
            // as if it had just arrived.
            let _ = self.handle_record(now, header, &mut fragment)?;
        }
        Ok(())
    }

    /// How many authentication failures the keys tolerate before the connection closes.
    fn failed_decryption_limit(&self) -> u64 {
        self.config.max_failed_decryptions.unwrap_or_else(|| default_failed_decryption_limit(self.suite))
    }

    fn protection_overhead(&self, epoch: u16) -> usize {
        self.epochs.write_keys(u64::from(epoch)).map_or(0, RecordProtection::overhead)
    }

    /// Takes the next record sequence number of `epoch`. Every record writer goes through
    /// here: past 2^48 − 1 the connection ends (quietly: not even an alert can be sealed), so a
    /// nonce is never used twice.
    fn next_write_seq(&mut self, epoch: u16) -> Result<u64, Error> {
        if let Some(seq) = self.epochs.take_seq(u64::from(epoch)) {
            return Ok(seq);
        }
        if self.epochs.next_seq(u64::from(epoch)).is_none() {
            // No such epoch to write in: a bug, not the peer's doing.
            tracing::warn!(epoch, "no keys to write a record in this epoch");
            return Err(Error::Crypto);
        }
        self.alert = None;
        self.fail(Error::SequenceExhausted);
        Err(Error::SequenceExhausted)
    }

    /// Appends `body` as one record of `epoch` (nothing once sequence numbers are exhausted).
    pub(crate) fn write_record(&mut self, content_type: ContentType, epoch: u16, body: &[u8], out: &mut Vec<u8>) {
        let Ok(seq) = self.next_write_seq(epoch) else { return };
        let header = RecordHeader { content_type, version: ProtocolVersion::DTLS1_2, epoch, seq, length: 0 };
        match self.epochs.write_keys(u64::from(epoch)) {
            Some(keys) => {
                if keys.seal(header, body, out).is_err() {
                    tracing::warn!("sealing a record failed");
                }
            }
            None => {
                RecordHeader { length: body.len() as u16, ..header }.write(out);
                out.extend_from_slice(body);
            }
        }
    }

    /// Replaces the flight and schedules its first transmission. `expect_reply` arms the
    /// retransmission timer (every flight but the server's last).
    pub(crate) fn start_flight(&mut self, now: Instant, items: Vec<FlightItem>, expect_reply: bool) {
        let initial = self.config.initial_retransmit;
        let fl = self.flight.get_or_insert_with(|| Box::new(Flight::new(initial, None)));
        fl.items = items;
        fl.cursor = Some((0, 0));
        fl.last_sent_at = Some(now);
        fl.rto = initial;
        fl.retransmit_at = expect_reply.then(|| now + jittered(&mut self.rng, initial));
    }

    /// The peer sent its previous flight again: ours was lost. Resend it, at most once per
    /// quarter of the initial timeout so duplicated datagrams cannot multiply our traffic.
    fn answer_retransmission(&mut self, now: Instant) {
        let Some(fl) = self.flight.as_deref_mut() else {
            return;
        };
        if fl.items.is_empty() || fl.cursor.is_some() {
            return;
        }
        if fl.last_sent_at.is_some_and(|t| now.saturating_duration_since(t) < self.config.initial_retransmit / 4) {
            return;
        }
        if self.hs.is_none() {
            if fl.final_resends >= MAX_FINAL_RESENDS {
                return;
            }
            fl.final_resends += 1;
        }
        fl.cursor = Some((0, 0));
        fl.last_sent_at = Some(now);
        self.stats.retransmissions += 1;
    }

    /// The handshake completed.
    pub(crate) fn complete(&mut self, now: Instant) {
        self.state = HandshakeState::Complete;
        let mut final_trigger = None;
        if let Some(hs) = self.hs.take() {
            if self.config.session_export {
                if let Some(master) = &hs.master {
                    let mut secret = zeroize::Zeroizing::new(Vec::with_capacity(48 + 64));
                    secret.extend_from_slice(&master[..]);
                    secret.extend_from_slice(&hs.client_random);
                    secret.extend_from_slice(&hs.server_random);
                    self.details_mut().export_secret = Some(secret);
                }
            }
            // The peer's last flight runs from its first message to the Finished just handled.
            let last = hs.reasm.next_seq().wrapping_sub(1);
            final_trigger = match self.side {
                Side::Server => hs.peer_flight_start.map(|first| first..=last),
                Side::Client => None,
            };
        }
        match (self.side, self.flight.as_deref_mut()) {
            (Side::Server, Some(fl)) => {
                // Our final flight is kept for the client's retransmissions, which it cannot
                // send for longer than a handshake lasts.
                fl.deadline = None;
                fl.retransmit_at = None;
                fl.hold_until = Some(now + self.config.handshake_timeout);
                fl.final_trigger = final_trigger;
                fl.early = Vec::new();
            }
            _ => self.flight = None,
        }
        self.events.push_back(Event::Connected);
    }

    fn close_quietly(&mut self) {
        self.closed = true;
        self.hs = None;
        self.flight = None;
    }

    /// Ends the connection with `e`, queueing the alert it owes the peer.
    fn fail(&mut self, e: Error) {
        if self.closed {
            return;
        }
        if let Some(desc) = e.alert_to_send() {
            self.alert = Some((AlertLevel::FATAL, desc));
        }
        self.close_quietly();
        self.last_error = Some(Box::new(e.clone()));
        self.events.push_back(Event::Closed(e));
    }
}

/// The default number of records failing authentication after which a DTLS 1.2 connection
/// closes. DTLS 1.2 has no key update, so reaching the limit ends the connection, and anyone who
/// knows its addresses can send forged records: the limit weighs forgery against that denial
/// of service. AES-GCM and ChaCha20-Poly1305 use RFC 9147 §4.5.3's 2^36, and AES-CCM its 2^23.
/// For AES-CCM-8, RFC 9147 sets no limit that does both (its 64-bit tag gives a forger one
/// chance in 2^64 per record) and leaves the choice to the implementation: we take 2^23 too, so
/// closing a connection costs an off-path attacker about 8 million forged records (some
/// 300 MB), and its chance of one forgery before that stays below 2^-41.
pub(crate) fn default_failed_decryption_limit(suite: Option<&CipherSuite>) -> u64 {
    use crate::crypto::AeadAlgorithm as A;
    match suite.map(|s| s.aead) {
        Some(A::Aes128Ccm | A::Aes128Ccm8) => 1 << 23,
        _ => 1 << 36,
    }
}

/// `base` plus up to 10% of it, from a splitmix64 step of `rng`: cheap, seedable, good enough
/// to decorrelate timers.
fn jittered(rng: &mut u64, base: Duration) -> Duration {
    *rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *rng;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    base + base.mul_f64((z >> 11) as f64 / (1u64 << 53) as f64 / 10.0)
}
