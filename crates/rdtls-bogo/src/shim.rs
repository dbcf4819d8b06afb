//! The shim proper: one test is one or more connections (the first, then `-resume-count`
//! resumptions), each a [`Connection`] driven over the runner's [`Link`] on a virtual clock.
//! What it does after the handshake follows BoringSSL's `bssl_shim.cc`: export keying
//! material, write first if asked, echo every record XOR 0xFF until the runner closes, shut down.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rdtls_proto::crypto::KxGroup;
use rdtls_proto::enums::AlertDescription;
use rdtls_proto::pki::{parse_certificates, CertifiedKey, RootStore};
use rdtls_proto::resumption::{Session, SessionCache, TicketKeys};
use rdtls_proto::{ClientAuth, Config, Connection, Error, Event, PskCredentials, VerifyPeer};
use rustls_pki_types::{ServerName, UnixTime};

use crate::flags::{Flags, TestConfig, DTLS1_0, DTLS1_2, DTLS1_3};
use crate::wire::{Link, Op};
use crate::Failure;

/// The virtual clock: starts at the real time the shim started and moves only when the
/// runner says so. Shared with the configuration's wall-clock provider so that session
/// lifetimes follow it too.
#[derive(Clone, Debug)]
struct Clock {
    start: Instant,
    unix_start: Duration,
    offset_nanos: Arc<AtomicU64>,
}

impl Clock {
    fn new() -> Self {
        let unix_start = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        Self { start: Instant::now(), unix_start, offset_nanos: Arc::default() }
    }

    fn offset(&self) -> Duration {
        Duration::from_nanos(self.offset_nanos.load(Ordering::Relaxed))
    }

    fn now(&self) -> Instant {
        self.start + self.offset()
    }

    fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.offset_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn unix_now(&self) -> UnixTime {
        UnixTime::since_unix_epoch(self.unix_start + self.offset())
    }
}

/// State that outlives one connection: the server's session cache and ticket keys (BoringSSL's
/// `SSL_CTX`), the client's last session.
struct Shared {
    clock: Clock,
    cache: Arc<SessionCache>,
    ticket_keys: Arc<TicketKeys>,
    session: Option<Session>,
}

/// Runs a whole test.
pub(crate) fn run(flags: &Flags) -> Result<(), Failure> {
    let clock = Clock::new();
    let provider = rdtls_proto::crypto::default_provider();
    let ticket_keys = TicketKeys::random(&*provider, Duration::from_secs(24 * 3600)).map_err(failure)?;
    let mut shared =
        Shared { clock, cache: Arc::new(SessionCache::new(256)), ticket_keys: Arc::new(ticket_keys), session: None };
    for i in 0..=flags.initial.resume_count {
        let is_resume = i > 0;
        let test = if is_resume { &flags.resume } else { &flags.initial };
        if is_resume && !test.is_server && shared.session.is_none() {
            return Err(Failure::Check("No session to offer.".into()));
        }
        let config = Arc::new(build_config(test, &shared)?);
        let stream = connect(test).map_err(|e| Failure::Check(format!("connect: {e}")))?;
        let link = Link::open(stream, test.shim_id).map_err(io_failure)?;
        let mut driver = Driver::new(link, &shared, test, config, is_resume)?;
        let result = driver.exchange();
        if result.is_err() {
            driver.link.linger(Duration::from_secs(2));
        }
        if let Some(session) = driver.new_session.take() {
            shared.session = Some(session);
        }
        result.map_err(|f| f.context(i + 1))?;
        shared.clock.advance(Duration::from_secs(test.resumption_delay_secs));
    }
    Ok(())
}

fn connect(test: &TestConfig) -> std::io::Result<TcpStream> {
    let stream = if test.ipv6 {
        TcpStream::connect((Ipv6Addr::LOCALHOST, test.port))?
    } else {
        TcpStream::connect((Ipv4Addr::LOCALHOST, test.port))?
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn failure(e: Error) -> Failure {
    Failure::Protocol(e)
}

fn io_failure(e: std::io::Error) -> Failure {
    Failure::Check(format!("runner stream: {e}"))
}

fn read_file(path: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Check(format!("reading {path}: {e}")))
}

/// The configuration one connection of the test asks for.
fn build_config(test: &TestConfig, shared: &Shared) -> Result<Config, Failure> {
    use rdtls_proto::Protocol;
    let unimplemented = |what: &str| Failure::Unimplemented(what.to_owned());
    if !test.dtls {
        return Err(unimplemented("TLS over TCP (this stack is DTLS only)"));
    }
    if test.quic {
        return Err(unimplemented("QUIC"));
    }
    let provider = rdtls_proto::crypto::default_provider();
    let mut b = Config::builder()
        .cookie_verification(false)
        .retransmit_jitter(false)
        // BoringSSL's first retransmission timeout is 400 ms (ours defaults to RFC 6347's 1 s).
        .retransmit_timeouts(Duration::from_millis(test.initial_timeout_ms.unwrap_or(400)), Duration::from_secs(60))
        .handshake_timeout(Duration::from_secs(120))
        .keying_material_exporter(test.export_keying_material > 0);
    let clock = shared.clock.clone();
    b = b.time_provider(move || clock.unix_now());

    // Versions: BoringSSL takes DTLS 1.0 to 1.3 unless told otherwise; we have 1.2 and 1.3.
    let wire_rank = |v: u16| match v {
        DTLS1_2 => Some(Protocol::Dtls1_2),
        DTLS1_3 => Some(Protocol::Dtls1_3),
        _ => None,
    };
    let mut oldest = Protocol::Dtls1_2;
    let mut newest = Protocol::Dtls1_3;
    if let Some(v) = test.max_version {
        newest = wire_rank(v).ok_or_else(|| unimplemented("a maximum version other than DTLS 1.2 or 1.3"))?;
    }
    if let Some(v) = test.min_version {
        oldest = match v {
            DTLS1_0 => Protocol::Dtls1_2,
            _ => wire_rank(v).ok_or_else(|| unimplemented("a minimum version other than DTLS 1.0, 1.2 or 1.3"))?,
        };
    }
    if test.no_tls13 {
        newest = Protocol::Dtls1_2;
    }
    if test.no_tls12 {
        oldest = Protocol::Dtls1_3;
    }
    if oldest > newest {
        return Err(Failure::Check("no protocol version enabled".into()));
    }
    b = b.protocol_versions(oldest, newest);

    if let Some(mtu) = test.mtu {
        b = b.mtu(mtu as usize);
    }
    let groups = match test.curves.is_empty() {
        true => rdtls_proto::DEFAULT_GROUPS.to_vec(),
        false => test
            .curves
            .iter()
            .map(|&c| KxGroup::from_code_point(c).ok_or_else(|| unimplemented(&format!("group {c}"))))
            .collect::<Result<Vec<_>, _>>()?,
    };
    // BoringSSL's client sends a share for its first group, and for its first curve too when
    // that first group is a hybrid, whatever the ClientHello's size (ours leaves the hybrid's
    // out of a first ClientHello it would push over the MTU): the runner's tests count on it.
    let curve = groups.iter().copied().find(|g| !g.is_hybrid()).filter(|_| groups[0].is_hybrid());
    let shares: Vec<KxGroup> = groups.first().copied().into_iter().chain(curve).collect();
    b = b.groups(&groups).key_share_groups(&shares);
    if let Some(cipher) = &test.cipher {
        b = b.cipher_suites(&cipher_list(cipher)?);
    }
    if test.is_server {
        if let Some(callback) = crate::alpn::Callback::from_flags(test) {
            b = b.alpn_selector(Arc::new(callback));
        }
    } else if let Some(wire) = &test.advertise_alpn {
        let list = rdtls_proto::alpn::ProtocolList::parse(&[&(wire.len() as u16).to_be_bytes()[..], wire].concat())
            .ok_or_else(|| Failure::Check("-advertise-alpn: not a protocol list".into()))?;
        b = b.alpn_protocols(&list.iter().collect::<Vec<_>>());
    }
    if let Some(list) = &test.srtp_profiles {
        let profiles = list.split(':').map(|name| {
            name.parse::<rdtls_proto::srtp::SrtpProfile>().map_err(|_| unimplemented(&format!("SRTP profile {name}")))
        });
        b = b.srtp_profiles(&profiles.collect::<Result<Vec<_>, _>>()?);
    }

    // Credentials.
    let certified = match (&test.cert_file, &test.key_file) {
        (Some(c), Some(k)) => Some(
            CertifiedKey::from_pem_or_der(&*provider, &read_file(c)?, &read_file(k)?, None)
                .map_err(|_| unimplemented("this certificate's key type"))?,
        ),
        (None, None) => None,
        _ => return Err(Failure::Check("-cert-file and -key-file go together".into())),
    };
    // The runner's chains lead to `-trust-cert`; BoringSSL checks no names unless asked. Its
    // verification callback rejects every chain under `-verify-fail`: with no trusted roots,
    // every chain is reported to the shim, which then aborts.
    let mut roots = RootStore::new();
    if let (Some(path), false) = (&test.trust_cert, test.verify_fail) {
        roots.add_pem_or_der(&read_file(path)?).map_err(failure)?;
    }
    b = b.root_store(roots).danger_accept_any_server_name(true);
    if test.is_server {
        if let Some(key) = certified {
            b = b.certificate(key);
        }
        let auth = if test.require_any_client_certificate {
            ClientAuth::Required
        } else if test.verify_peer {
            ClientAuth::Optional
        } else {
            ClientAuth::None
        };
        b = b.client_auth(auth).verify_peer(VerifyPeer::Pause);
        if let Some(psk) = &test.psk {
            let (key, identity) = (psk.clone(), test.psk_identity.clone().unwrap_or_default());
            b = b.psk_server_callback(move |id| (id == identity.as_slice()).then(|| key.clone().into()));
            if !identity_is_empty(test) {
                b = b.psk_identity_hint(test.psk_identity.clone().unwrap_or_default());
            }
        }
        b = b.session_cache(shared.cache.clone()).ticket_keys(shared.ticket_keys.clone());
        b = b.session_tickets(!test.no_ticket);
    } else {
        if let Some(key) = certified {
            b = b.client_certificate(key);
        }
        b = b.verify_peer(if test.verify_peer { VerifyPeer::Pause } else { VerifyPeer::Continue });
        if let Some(psk) = &test.psk {
            let (key, identity) = (psk.clone(), test.psk_identity.clone().unwrap_or_default());
            b = b.psk_callback(move |hint| {
                // BoringSSL's shim checks that a DTLS 1.2 server's hint is the identity it was
                // given. A DTLS 1.3 ClientHello asks with no hint (there is none in 1.3).
                let expected = (!identity.is_empty()).then_some(identity.as_slice());
                (hint.is_none() || hint == expected).then(|| PskCredentials::new(identity.clone(), key.clone()))
            });
        }
        b = b.session_resumption(true).session_tickets(!test.no_ticket);
    }
    b.build().map_err(|e| match e {
        Error::Config(what) => Failure::Unimplemented(format!("configuration refused: {what}")),
        e => Failure::Protocol(e),
    })
}

fn identity_is_empty(test: &TestConfig) -> bool {
    test.psk_identity.as_ref().is_none_or(Vec::is_empty)
}

/// `-cipher`: a colon-separated list of suite names (OpenSSL's or IANA's). BoringSSL's rule
/// syntax (`!`, `+`, `[…]`, `ALL`, …) is not supported. The list limits DTLS 1.2; DTLS 1.3
/// suites stay as they are, as in BoringSSL.
fn cipher_list(rule: &str) -> Result<Vec<&'static rdtls_proto::CipherSuite>, Failure> {
    let mut suites: Vec<_> = rdtls_proto::suites::ALL.iter().filter(|s| s.is_tls13()).collect();
    for name in rule.split(':').filter(|n| !n.is_empty()) {
        let suite = rdtls_proto::suites::ALL
            .iter()
            .find(|s| s.openssl_name == name || s.name == name)
            .ok_or_else(|| Failure::Unimplemented(format!("cipher rule {name:?}")))?;
        suites.push(suite);
    }
    Ok(suites)
}

/// One connection of the test.
struct Driver<'a> {
    link: Link<TcpStream>,
    conn: Connection,
    clock: Clock,
    test: &'a TestConfig,
    is_resume: bool,
    /// Application data records received and not yet echoed.
    received: VecDeque<Vec<u8>>,
    /// The session the client should offer next time, once the server gave one.
    new_session: Option<Session>,
    got_new_session: bool,
    /// The runner closed the stream.
    eof: bool,
    /// `RDTLS_BOGO_TRACE` is set: every message of the runner goes to standard error.
    trace: bool,
    out: Vec<u8>,
}

impl<'a> Driver<'a> {
    fn new(
        link: Link<TcpStream>,
        shared: &Shared,
        test: &'a TestConfig,
        config: Arc<Config>,
        is_resume: bool,
    ) -> Result<Self, Failure> {
        let now = shared.clock.now();
        let conn = if test.is_server {
            Connection::server(config, now)
        } else {
            let name = match &test.host_name {
                Some(n) => Some(
                    ServerName::try_from(n.clone())
                        .map_err(|_| Failure::Unimplemented(format!("server name {n:?}")))?,
                ),
                None => None,
            };
            let session = if is_resume { shared.session.clone() } else { None };
            Connection::resuming_client(config, name, session, now)
        }
        .map_err(failure)?;
        let mut driver = Self {
            link,
            conn,
            clock: shared.clock.clone(),
            test,
            is_resume,
            received: VecDeque::new(),
            new_session: None,
            got_new_session: false,
            eof: false,
            trace: std::env::var_os("RDTLS_BOGO_TRACE").is_some(),
            out: Vec::with_capacity(65_536),
        };
        driver.flush()?;
        Ok(driver)
    }

    /// Sends every datagram the connection has ready.
    fn flush(&mut self) -> Result<(), Failure> {
        while self.conn.poll_transmit(&mut self.out).is_some() {
            if let Err(e) = self.send_out() {
                // The runner may close its end first; what we still had to say is lost.
                self.eof = true;
                if e.kind() != std::io::ErrorKind::BrokenPipe && e.kind() != std::io::ErrorKind::ConnectionReset {
                    return Err(io_failure(e));
                }
            }
        }
        Ok(())
    }

    /// Sends the datagram in `self.out` to the runner (nothing once the runner has closed).
    fn send_out(&mut self) -> std::io::Result<()> {
        if self.eof {
            return Ok(());
        }
        if self.trace {
            eprintln!("trace: sending {} bytes {:02x?}", self.out.len(), &self.out[..self.out.len().min(24)]);
        }
        self.link.send_packet(&self.out)
    }

    /// Handles the events the connection raised.
    fn events(&mut self) -> Result<(), Failure> {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::PeerVerificationFailed(errors) => {
                    if self.test.verify_fail {
                        // BoringSSL's callbacks refuse the chain with these alerts.
                        let alert = if self.test.custom_verify_callback {
                            AlertDescription::CERTIFICATE_UNKNOWN
                        } else {
                            AlertDescription::HANDSHAKE_FAILURE
                        };
                        self.conn.reject_peer_certificate(alert).map_err(failure)?;
                        self.flush()?;
                        return Err(Failure::Protocol(Error::PeerVerification(errors)));
                    }
                    self.conn.ignore_verification_errors(&errors);
                    self.conn.resume_handshake(self.clock.now()).map_err(failure)?;
                }
                Event::NewSession => {
                    self.got_new_session = true;
                    self.new_session = self.conn.session().cloned();
                }
                // The peer's close_notify: the exchange decides whether it came in time.
                Event::Closed(Error::RemoteClosed) => {}
                Event::Closed(e) => return Err(failure(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Waits for and handles one message of the runner. `Ok(false)`: the runner closed.
    fn step(&mut self) -> Result<bool, Failure> {
        let Some(op) = self.link.next_op().map_err(io_failure)? else {
            self.eof = true;
            return Ok(false);
        };
        let now = self.clock.now();
        if self.trace {
            eprintln!("trace: {op:?} established={} closed={}", self.conn.is_established(), self.conn.is_closed());
        }
        match op {
            Op::Packet(mut datagram) => {
                let received = self.conn.handle_datagram(now, &mut datagram);
                match received {
                    Ok(records) => {
                        if self.trace {
                            eprintln!("trace: {} records, stats {:?}", records.len(), self.conn.stats());
                        }
                        self.received.extend(records.iter().map(<[u8]>::to_vec));
                    }
                    // The peer's close_notify: what follows decides whether that was expected.
                    Err(Error::RemoteClosed) => {}
                    Err(e) => {
                        self.flush()?;
                        return Err(failure(e));
                    }
                }
            }
            Op::Timeout(by) => {
                self.clock.advance(by);
                if let Err(e) = self.conn.handle_timeout(self.clock.now()) {
                    self.flush()?;
                    return Err(failure(e));
                }
            }
            Op::Mtu(mtu) => self.conn.set_mtu(mtu as usize).map_err(failure)?,
            Op::ExpectTimeout(expected) => self.expect_timeout(expected)?,
            Op::InitialTimeout(_) => {
                return Err(Failure::Unimplemented("changing the initial timeout of a live connection".into()));
            }
        }
        self.events()?;
        self.flush()?;
        Ok(true)
    }

    /// The runner's `E` check, to the microsecond as BoringSSL's `DTLSv1_get_timeout` reports.
    fn expect_timeout(&self, expected: Option<Duration>) -> Result<(), Failure> {
        let now = self.clock.now();
        // The retransmission and ACK timers: BoringSSL's housekeeping (the release of old
        // epochs) is not among what it reports, and it has no overall handshake deadline.
        let actual = self.conn.retransmit_timeout().map(|t| t.saturating_duration_since(now));
        let micros = |d: Duration| d.as_micros();
        match (expected, actual) {
            (None, None) => Ok(()),
            (Some(e), Some(a)) if micros(e) == micros(a) => Ok(()),
            (e, a) => Err(Failure::Check(format!("Expected timeout {e:?}, but got {a:?}."))),
        }
    }

    fn handshake(&mut self) -> Result<(), Failure> {
        while !self.conn.is_established() {
            if self.conn.is_closed() {
                return Err(self.closed_error());
            }
            if !self.step()? {
                return Err(Failure::Check("the runner closed the stream during the handshake".into()));
            }
        }
        Ok(())
    }

    fn closed_error(&self) -> Failure {
        self.conn.last_error().cloned().map_or_else(|| Failure::Check("connection closed".into()), failure)
    }

    /// `CheckHandshakeProperties` of BoringSSL's shim, for what we can observe.
    fn check_handshake(&self) -> Result<(), Failure> {
        let test = self.test;
        let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(Failure::Check(what.to_owned())) };
        let version = self.conn.protocol().map(|p| p.wire().0);
        if let Some(v) = test.expect_version {
            check(version == Some(v), &format!("want version {v:04x}, got {version:04x?}"))?;
        }
        let expect_resume = self.is_resume && !test.expect_session_miss;
        check(
            self.conn.resumed() == expect_resume,
            &format!("session unexpectedly was{} reused", if self.conn.resumed() { "" } else { " not" }),
        )?;
        let tls13 = version == Some(DTLS1_3);
        if !test.is_server && !tls13 {
            let expect_new_session = !test.expect_no_session && !self.conn.resumed();
            check(
                expect_new_session == self.got_new_session,
                &format!(
                    "new session was{} cached, but we expected the opposite (DTLS 1.2, {})",
                    if self.got_new_session { "" } else { " not" },
                    if self.conn.resumed() { "resumed" } else { "full handshake" }
                ),
            )?;
        }
        if !self.is_resume {
            check(!test.expect_session_id || self.got_new_session, "session was not cached on the server.")?;
            check(
                !test.expect_no_session_id || !self.got_new_session,
                "session was unexpectedly cached on the server.",
            )?;
        }
        if let Some(name) = &test.expect_server_name {
            check(self.conn.requested_server_name() == Some(name.as_str()), "servername mismatch")?;
        }
        if test.expect_no_server_name {
            check(self.conn.requested_server_name().is_none(), "server name unexpectedly sent")?;
        }
        if let Some(protocol) = &test.expect_alpn {
            check(self.conn.alpn_protocol() == Some(&protocol[..]), "ALPN mismatch")?;
        }
        if let Some(id) = test.expect_cipher {
            check(self.conn.cipher_suite().map(|s| s.id) == Some(id), "cipher mismatch")?;
        }
        if test.expect_extended_master_secret {
            check(self.conn.extended_master_secret(), "No EMS for connection when expected")?;
        }
        if test.expect_hrr {
            check(self.conn.used_hello_retry_request(), "expected HRR, but none was used")?;
        }
        if test.expect_no_hrr {
            check(!self.conn.used_hello_retry_request(), "expected no HRR, but one was used")?;
        }
        if test.expect_no_peer_cert {
            check(self.conn.peer_certificates().is_empty(), "Received peer certificate but expected none.")?;
        }
        if let Some(path) = &test.expect_peer_cert_file {
            let expected = parse_certificates(&read_file(path)?).map_err(failure)?;
            check(self.conn.peer_certificates() == expected.as_slice(), "Received a different chain than expected.")?;
        }
        Ok(())
    }

    /// What the shim does after the handshake: BoringSSL's `DoExchange`.
    fn exchange(&mut self) -> Result<(), Failure> {
        self.handshake()?;
        self.check_handshake()?;
        let test = self.test;
        if test.export_keying_material > 0 {
            let mut material = vec![0; test.export_keying_material];
            let context = test.use_export_context.then_some(test.export_context.as_bytes());
            self.conn
                .export_keying_material(test.export_label.as_bytes(), context, &mut material)
                .map_err(|_| Failure::Check("failed to export keying material".into()))?;
            self.write(&material)?;
        }
        if test.shim_writes_first {
            let data = test.shim_initial_write.clone().unwrap_or_else(|| "hello".to_owned());
            for _ in 0..test.repeat_shim_initial_write.unwrap_or(1) {
                self.write(data.as_bytes())?;
            }
        }
        if !test.shim_shuts_down {
            self.echo()?;
        }
        let tls13 = self.conn.protocol().map(|p| p.wire().0) == Some(DTLS1_3);
        if tls13 && !test.is_server {
            let expect_new_session = !test.expect_no_session && !test.shim_shuts_down;
            if expect_new_session != self.got_new_session {
                return Err(Failure::Check(format!(
                    "new session was{} cached, but we expected the opposite",
                    if self.got_new_session { "" } else { " not" }
                )));
            }
        }
        if test.expect_total_renegotiations != 0 {
            return Err(Failure::Unimplemented("renegotiation".into()));
        }
        self.shut_down()
    }

    fn write(&mut self, data: &[u8]) -> Result<(), Failure> {
        let max = self.conn.mtu().saturating_sub(self.conn.record_overhead()).max(1);
        for chunk in data.chunks(max.min(16_384)) {
            self.out.clear();
            self.conn.send(chunk, &mut self.out).map_err(failure)?;
            self.send_out().map_err(io_failure)?;
        }
        self.flush()
    }

    /// Echoes every record, each byte XOR 0xFF, until the runner closes the stream or the
    /// peer closes the connection.
    fn echo(&mut self) -> Result<(), Failure> {
        loop {
            if self.test.key_update_before_read {
                self.conn.update_keys(self.clock.now(), false).map_err(failure)?;
                self.flush()?;
            }
            let record = loop {
                if let Some(record) = self.received.pop_front() {
                    break record;
                }
                if self.conn.is_closed() {
                    return match self.conn.last_error() {
                        None | Some(Error::RemoteClosed) => Ok(()),
                        Some(e) => Err(failure(e.clone())),
                    };
                }
                if !self.step()? {
                    return Ok(());
                }
            };
            if let Some(limit) = self.test.read_size {
                if limit < record.len() {
                    return Err(Failure::Unimplemented("reads shorter than a record".into()));
                }
            }
            if self.test.key_update {
                self.conn.update_keys(self.clock.now(), false).map_err(failure)?;
            }
            let echoed: Vec<u8> = record.iter().map(|b| b ^ 0xff).collect();
            self.write(&echoed)?;
        }
    }

    /// Sends close_notify, and with `-check-close-notify` after `-shim-shuts-down` waits for the
    /// peer's.
    fn shut_down(&mut self) -> Result<(), Failure> {
        if self.conn.is_closed() {
            return Ok(());
        }
        self.conn.shutdown().map_err(failure)?;
        self.flush()?;
        if self.test.shim_shuts_down && self.test.check_close_notify {
            return Err(Failure::Unimplemented("waiting for the peer's close_notify after ours".into()));
        }
        Ok(())
    }
}
