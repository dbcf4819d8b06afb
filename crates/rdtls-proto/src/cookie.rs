//! Stateless cookie verification (RFC 6347 §4.2.1): Qt's `QDtlsClientVerifier`.
//!
//! A server answers a ClientHello without a valid cookie with a HelloVerifyRequest and keeps
//! nothing. The cookie is `timestamp (4) || HMAC-SHA256(key, timestamp || peer address || port
//! || client_version || random || session_id)[..16]`: it binds the client's address and port
//! and the hello's random, so a second ClientHello from elsewhere or with another random fails.
//! Those fields all precede the cookie, so a ClientHello fragmented over several datagrams (a
//! client with a small MTU) is verified from its first fragment alone; the connection created
//! for it reassembles the rest. Before the cookie is verified only those fields are read: the
//! cost of a ClientHello on this path does not depend on its size or its extensions.
//!
//! The key rotates every rotation period, and each period's key is derived from a secret seed
//! and the period's number. The timestamp in the cookie names the period whose key made it,
//! so a cookie verifies for its whole lifetime across rotations, and servers that share the
//! seed and a time base ([`ClientVerifier::set_time_base`], e.g. the Unix time) verify each
//! other's cookies at any time: the workers of one port, or processes on several machines.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::codec::{Put, Reader};
use crate::config::Config;
use crate::crypto::{ct_eq, CryptoError, CryptoProvider, HashAlgorithm, KxGroup};
use crate::enums::{ContentType, ExtensionType, HandshakeType, Protocol, ProtocolVersion};
use crate::handshake::tls13::{hello_retry_request, parse_cookie, tls13_message, COOKIE_MAC_LEN as MAC13_LEN};
use crate::messages::tls13::KeyShare;
use crate::messages::{ClientHello, HandshakeHeader};
use crate::record::{RecordHeader, HEADER_LEN};
use crate::suites::CipherSuite;

/// Length of our cookies.
pub const COOKIE_LEN: usize = 20;
const MAC_LEN: usize = COOKIE_LEN - 4;

/// What to do with a datagram from a peer we hold no state for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verification {
    /// A ClientHello with a valid cookie (or cookies are off): start a connection with it.
    Verified,
    /// Send the HelloVerifyRequest written into the response buffer.
    SendHelloVerifyRequest,
    /// Send the HelloRetryRequest (with a cookie) written into the response buffer: the
    /// answer to a DTLS 1.3 ClientHello.
    SendHelloRetryRequest,
    /// Not a ClientHello we can answer, or the answer would be larger than the request: drop.
    Drop,
}

/// The stateless cookie verifier.
pub struct ClientVerifier {
    provider: Arc<dyn CryptoProvider>,
    seed: Zeroizing<[u8; 32]>,
    /// The seed replaced by [`set_secret`](Self::set_secret), accepted until this time.
    previous: Option<(Zeroizing<[u8; 32]>, u64)>,
    /// The verifier's clock: at `base_instant` it read `base`.
    base_instant: Instant,
    base: Duration,
    lifetime: Duration,
    rotation: u64,
    /// The keys of the last two periods used, derived from the seed.
    keys: [Option<PeriodKey>; 2],
    generation: u8,
    /// What a DTLS 1.3 HelloRetryRequest is chosen from, if DTLS 1.3 is enabled.
    tls13: Option<Tls13Choices>,
}

/// The DTLS 1.3 suites and groups of the configuration, in order of preference.
#[derive(Debug)]
struct Tls13Choices {
    suites: Vec<&'static CipherSuite>,
    groups: Vec<KxGroup>,
}

/// A period's cookie key: `(seed generation, period, key)`.
type PeriodKey = (u8, u64, Zeroizing<[u8; 32]>);

impl core::fmt::Debug for ClientVerifier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientVerifier")
            .field("lifetime", &self.lifetime)
            .field("rotation_secs", &self.rotation)
            .finish_non_exhaustive()
    }
}

/// The parts of a ClientHello datagram the verifier looks at: everything up to the cookie, which
/// the first fragment of a ClientHello always carries.
struct Hello<'a> {
    record_seq: u64,
    message_seq: u16,
    /// The whole ClientHello body, when this datagram carries all of it.
    whole: Option<&'a [u8]>,
    /// `client_version || random || session_id`, the fields the cookie binds.
    prefix: &'a [u8],
    random: [u8; 32],
    cookie: &'a [u8],
}

use crate::handshake::MAX_CLIENT_HELLO_SEQ;

/// Largest ClientHello we accept to reassemble (before any state, only the declared length is
/// checked).
const MAX_CLIENT_HELLO: u32 = 16 * 1024;

impl<'a> Hello<'a> {
    /// Accepts the first fragment (or the whole) of a ClientHello in the first record of an
    /// epoch-0 datagram.
    fn parse(datagram: &'a [u8]) -> Option<Self> {
        let rec = RecordHeader::parse(datagram)?;
        if rec.content_type != ContentType::HANDSHAKE || rec.epoch != 0 || !rec.version.is_dtls() {
            return None;
        }
        let fragment = datagram.get(HEADER_LEN..HEADER_LEN + usize::from(rec.length))?;
        let mut r = Reader::new(fragment);
        let (h, body) = HandshakeHeader::parse(&mut r)?;
        if h.msg_type != HandshakeType::CLIENT_HELLO
            || h.fragment_offset != 0
            || h.message_seq > MAX_CLIENT_HELLO_SEQ
            || h.length > MAX_CLIENT_HELLO
        {
            return None;
        }
        // Only the fields the cookie binds are read here: the rest of the ClientHello (suites,
        // extensions) is parsed once, by the connection, after the cookie is verified.
        let mut b = Reader::new(body);
        let version = ProtocolVersion(b.u16()?);
        if !version.is_dtls() {
            return None;
        }
        let random = b.take_array::<32>()?;
        let session_id = b.vec8()?;
        if session_id.len() > 32 {
            return None;
        }
        let prefix = &body[..2 + 32 + 1 + session_id.len()];
        let cookie = b.vec8()?;
        let whole = h.is_whole().then_some(body);
        Some(Self { record_seq: rec.seq, message_seq: h.message_seq, whole, prefix, random, cookie })
    }

    /// Whether the whole ClientHello lists DTLS 1.3 in a supported_versions extension: a walk
    /// over the extension headers that reads only that one, so that a server of both versions
    /// pays for the full parse of a ClientHello only when it will answer in DTLS 1.3 (a
    /// DTLS 1.2 ClientHello, however many extensions it carries, stays on the cheap path).
    fn offers_dtls13(&self) -> bool {
        let Some(body) = self.whole else { return false };
        let scan = || {
            let mut r = Reader::new(body);
            r.take(2 + 32)?;
            r.vec8()?; // session_id
            r.vec8()?; // cookie
            r.vec16()?; // cipher_suites
            r.vec8()?; // compression_methods
            let mut exts = Reader::new(r.vec16()?);
            while !exts.is_empty() {
                let ty = exts.u16()?;
                let data = exts.vec16()?;
                if ty == ExtensionType::SUPPORTED_VERSIONS.0 {
                    let list = Reader::new(data).vec8()?;
                    return Some(list.chunks_exact(2).any(|v| v == ProtocolVersion::DTLS1_3.0.to_be_bytes()));
                }
            }
            Some(false)
        };
        scan().unwrap_or(false)
    }
}

/// Label of the per-period key derivation: `HMAC-SHA256(seed, LABEL || period)`.
const KEY_LABEL: &[u8] = b"dtls-proto cookie key";

impl ClientVerifier {
    /// A verifier with a fresh random seed and the configuration's cookie timing; its clock
    /// counts seconds from `now`.
    pub fn new(config: &Config, now: Instant) -> Result<Self, CryptoError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        config.provider.fill_random(&mut seed[..])?;
        Ok(Self {
            provider: config.provider.clone(),
            seed,
            previous: None,
            base_instant: now,
            base: Duration::ZERO,
            lifetime: config.cookie_lifetime,
            rotation: config.cookie_rotation.as_secs().max(1),
            keys: [None, None],
            generation: 0,
            tls13: config.enables(Protocol::Dtls1_3).then(|| Tls13Choices {
                suites: config.suites_for(Protocol::Dtls1_3).collect(),
                groups: config.groups.clone(),
            }),
        })
    }

    /// Replaces the seed the keys are derived from (Qt's `setCookieGeneratorParameters`).
    /// Servers that share a port or serve one name from several machines give each verifier
    /// the same seed and the same time base, so any of them verifies any cookie. Cookies made
    /// from the previous seed stay valid for their lifetime.
    pub fn set_secret(&mut self, now: Instant, secret: [u8; 32]) {
        let until = self.clock(now) + self.lifetime.as_secs() + 1;
        let old = core::mem::replace(&mut self.seed, Zeroizing::new(secret));
        self.previous = Some((old, until));
        self.generation = self.generation.wrapping_add(1);
        self.keys = [None, None];
    }

    /// The seed the keys are derived from (Qt's `cookieGeneratorParameters`: the hash is always
    /// SHA-256). Secret: anyone who has it can make valid cookies.
    pub fn secret(&self) -> Zeroizing<[u8; 32]> {
        self.seed.clone()
    }

    /// Sets the verifier's clock: at `now` it reads `since_epoch`. Verifiers that share a seed
    /// must share a time base to agree on the period of a cookie; the Unix time (from the
    /// system clock, read by the caller) is the natural one. Timestamps are kept in seconds.
    pub fn set_time_base(&mut self, now: Instant, since_epoch: Duration) {
        self.base_instant = now;
        self.base = since_epoch;
    }

    /// The verifier's clock at `now`, in whole seconds.
    fn clock(&self, now: Instant) -> u64 {
        (self.base + now.saturating_duration_since(self.base_instant)).as_secs()
    }

    /// The key of the rotation period that contains `ts`, derived once per period.
    fn key(&mut self, previous_seed: bool, ts: u32) -> Zeroizing<[u8; 32]> {
        let period = u64::from(ts) / self.rotation;
        let generation = if previous_seed { self.generation.wrapping_sub(1) } else { self.generation };
        if let Some((_, _, k)) = self.keys.iter().flatten().find(|(g, p, _)| *g == generation && *p == period) {
            return k.clone();
        }
        let seed = match (&self.previous, previous_seed) {
            (Some((old, _)), true) => old.clone(),
            _ => self.seed.clone(),
        };
        let d = self.provider.hmac(HashAlgorithm::Sha256, &seed[..], &[KEY_LABEL, &period.to_be_bytes()]);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&d.as_bytes()[..32]);
        // Keep the newest two (the current period and the one before it).
        self.keys.sort_by_key(|k| k.as_ref().map(|(_, p, _)| *p));
        self.keys[0] = Some((generation, period, key.clone()));
        key
    }

    fn mac(&self, key: &[u8; 32], ts: [u8; 4], peer: &SocketAddr, hello: &Hello<'_>) -> [u8; MAC_LEN] {
        let ip = match peer.ip() {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v6) => v6.octets(),
        };
        let d = self.provider.hmac(HashAlgorithm::Sha256, key, &[&ts, &ip, &peer.port().to_be_bytes(), hello.prefix]);
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&d.as_bytes()[..MAC_LEN]);
        out
    }

    fn cookie_valid(&mut self, now: Instant, peer: &SocketAddr, hello: &Hello<'_>) -> bool {
        let mut r = Reader::new(hello.cookie);
        let (Some(ts), Some(mac)) = (r.take_array::<4>(), r.take_array::<MAC_LEN>()) else {
            return false;
        };
        if r.finish().is_none() {
            return false;
        }
        let issued = u64::from(u32::from_be_bytes(ts));
        let clock = self.clock(now);
        // Another server's clock may run a second ahead of ours.
        if issued > clock + 1 || clock.saturating_sub(issued) > self.lifetime.as_secs() {
            return false;
        }
        let key = self.key(false, u32::from_be_bytes(ts));
        if ct_eq(&self.mac(&key, ts, peer, hello), &mac) {
            return true;
        }
        if self.previous.as_ref().is_some_and(|(_, until)| clock <= *until) {
            let key = self.key(true, u32::from_be_bytes(ts));
            return ct_eq(&self.mac(&key, ts, peer, hello), &mac);
        }
        false
    }

    /// Checks a datagram from `peer` (Qt's `verifyClient`). On
    /// [`SendHelloVerifyRequest`](Verification::SendHelloVerifyRequest), `response` holds the
    /// datagram to send back; it is never larger than `datagram`. Allocates nothing per peer,
    /// and reads only the fields the cookie binds, whatever the size of the ClientHello.
    pub fn verify(&mut self, now: Instant, peer: &SocketAddr, datagram: &[u8], response: &mut Vec<u8>) -> Verification {
        response.clear();
        let Some(hello) = Hello::parse(datagram) else {
            return Verification::Drop;
        };
        // A DTLS 1.3 ClientHello (whole in this datagram) is answered with a HelloRetryRequest.
        // Parsed whole only when a walk over its extension headers found DTLS 1.3 offered (a
        // ClientHello that then fails to parse takes the DTLS 1.2 path, as before).
        let tls13_hello = match (hello.whole, &self.tls13) {
            (Some(body), Some(_)) if hello.offers_dtls13() => ClientHello::parse(body).map(|(ch, _)| (body, ch)),
            _ => None,
        };
        if let Some((body, ch)) = tls13_hello {
            return self.verify13(now, peer, &hello, body, &ch, response, datagram.len());
        }
        if !hello.cookie.is_empty() && self.cookie_valid(now, peer, &hello) {
            return Verification::Verified;
        }
        let ts = u32::try_from(self.clock(now)).unwrap_or(u32::MAX);
        let key = self.key(false, ts);
        let mac = self.mac(&key, ts.to_be_bytes(), peer, &hello);
        write_hello_verify_request(response, hello.record_seq, hello.message_seq, &ts.to_be_bytes(), &mac);
        if response.len() > datagram.len() {
            response.clear();
            return Verification::Drop;
        }
        Verification::SendHelloVerifyRequest
    }
}

impl ClientVerifier {
    fn mac13(&self, key: &[u8; 32], peer: &SocketAddr, random: &[u8; 32], signed: &[u8]) -> [u8; MAC13_LEN] {
        let ip = match peer.ip() {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v6) => v6.octets(),
        };
        let d = self.provider.hmac(
            HashAlgorithm::Sha256,
            key,
            &[b"dtls13", &ip, &peer.port().to_be_bytes(), random, signed],
        );
        let mut out = [0u8; MAC13_LEN];
        out.copy_from_slice(&d.as_bytes()[..MAC13_LEN]);
        out
    }

    /// The DTLS 1.3 path: a ClientHello with a valid cookie extension is verified; one without
    /// is answered with a HelloRetryRequest whose cookie carries the hash of this ClientHello
    /// (the transcript restarts from it), the suite and the group the client must use, bound
    /// to the client's address and random. No state is kept.
    #[allow(clippy::too_many_arguments)]
    fn verify13(
        &mut self,
        now: Instant,
        peer: &SocketAddr,
        hello: &Hello<'_>,
        body: &[u8],
        ch: &ClientHello,
        response: &mut Vec<u8>,
        request_len: usize,
    ) -> Verification {
        let t = &ch.extensions.tls13;
        if let Some(cookie) = &t.cookie {
            let Some((ts, _, signed, mac)) = parse_cookie(cookie) else {
                return Verification::Drop;
            };
            let clock = self.clock(now);
            let issued = u64::from(ts);
            if issued > clock + 1 || clock.saturating_sub(issued) > self.lifetime.as_secs() {
                return Verification::Drop;
            }
            let key = self.key(false, ts);
            if ct_eq(&self.mac13(&key, peer, &hello.random, signed), mac) {
                return Verification::Verified;
            }
            if self.previous.as_ref().is_some_and(|(_, until)| clock <= *until) {
                let key = self.key(true, ts);
                if ct_eq(&self.mac13(&key, peer, &hello.random, signed), mac) {
                    return Verification::Verified;
                }
            }
            return Verification::Drop;
        }
        let Some(choices) = &self.tls13 else { return Verification::Drop };
        let Some(suite) = choices.suites.iter().copied().find(|s| ch.cipher_suites.contains(&s.id)) else {
            return Verification::Drop;
        };
        let shares: &[_] = match &t.key_share {
            Some(KeyShare::Offered(list)) => list,
            _ => &[],
        };
        // The HelloRetryRequest is sent anyway: it asks for our first group the client supports
        // when the client sent no share for it (a client with a hybrid group listed but only a
        // curve's share gets the hybrid this way, at no extra round trip).
        let theirs = ch.extensions.supported_groups.as_deref().unwrap_or(&[]);
        let has_share = |g: &KxGroup| shares.iter().any(|e| e.group == g.code_point());
        let group = match choices.groups.iter().find(|g| theirs.contains(&g.code_point()) || has_share(g)) {
            Some(g) if has_share(g) => None,
            Some(g) => Some(*g),
            // A PSK-only (psk_ke) client needs no group; anything else cannot agree.
            None if t.pre_shared_key.is_some() => None,
            None => return Verification::Drop,
        };
        let ch1_hash = self.provider.hash(suite.hash, &[&tls13_message(HandshakeType::CLIENT_HELLO, body)]);
        let ts = u32::try_from(self.clock(now)).unwrap_or(u32::MAX);
        let mut cookie = Vec::with_capacity(4 + 2 + 2 + 48 + MAC13_LEN);
        cookie.extend_from_slice(&ts.to_be_bytes());
        cookie.put_u16(suite.id);
        cookie.put_u16(group.map_or(0, KxGroup::code_point));
        cookie.extend_from_slice(ch1_hash.as_bytes());
        let key = self.key(false, ts);
        let mac = self.mac13(&key, peer, &hello.random, &cookie);
        cookie.extend_from_slice(&mac);
        let hrr = hello_retry_request(suite.id, group.map(KxGroup::code_point), Some(&cookie));
        RecordHeader {
            content_type: ContentType::HANDSHAKE,
            version: ProtocolVersion::DTLS1_2,
            epoch: 0,
            seq: hello.record_seq,
            length: (12 + hrr.len()) as u16,
        }
        .write(response);
        HandshakeHeader {
            msg_type: HandshakeType::SERVER_HELLO,
            length: hrr.len() as u32,
            message_seq: hello.message_seq,
            fragment_offset: 0,
            fragment_length: hrr.len() as u32,
        }
        .write(response);
        response.extend_from_slice(&hrr);
        if response.len() > request_len {
            response.clear();
            return Verification::Drop;
        }
        Verification::SendHelloRetryRequest
    }
}

/// The `random` of an epoch-0 ClientHello (whole or first fragment), without checking any cookie.
pub(crate) fn client_hello_random(datagram: &[u8]) -> Option<[u8; 32]> {
    // Cheap pre-check before parsing: a handshake record in epoch 0.
    if datagram.first() != Some(&ContentType::HANDSHAKE.0) || datagram.get(3..5) != Some(&[0, 0]) {
        return None;
    }
    Hello::parse(datagram).map(|h| h.random)
}

/// A HelloVerifyRequest. RFC 6347 §4.2.1: the record sequence number is the ClientHello's and
/// the version is DTLS 1.0 whatever is negotiated later.
fn write_hello_verify_request(out: &mut Vec<u8>, record_seq: u64, message_seq: u16, ts: &[u8; 4], mac: &[u8]) {
    let body_len = 2 + 1 + COOKIE_LEN;
    RecordHeader {
        content_type: ContentType::HANDSHAKE,
        version: ProtocolVersion::DTLS1_0,
        epoch: 0,
        seq: record_seq,
        length: (12 + body_len) as u16,
    }
    .write(out);
    HandshakeHeader {
        msg_type: HandshakeType::HELLO_VERIFY_REQUEST,
        length: body_len as u32,
        message_seq,
        fragment_offset: 0,
        fragment_length: body_len as u32,
    }
    .write(out);
    out.put_u16(ProtocolVersion::DTLS1_0.0);
    out.put_u8(COOKIE_LEN as u8);
    out.extend_from_slice(ts);
    out.extend_from_slice(mac);
}
