//! Stateless cookie verification (RFC 6347 §4.2.1): Qt's `QDtlsClientVerifier`.
//!
//! A server answers a ClientHello without a valid cookie with a HelloVerifyRequest and keeps
//! nothing. The cookie is `timestamp (4) || HMAC-SHA256(secret, timestamp || peer address ||
//! port || client_version || random || session_id)[..16]`: it binds the client's address and
//! port and the hello's random, so a second ClientHello from elsewhere or with another random
//! fails. Those fields all precede the cookie, so a ClientHello fragmented over several
//! datagrams (a client with a small MTU) is verified from its first fragment alone; the
//! connection created for it reassembles the rest. The secret rotates; the previous one stays
//! valid for one rotation period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::{Put, Reader};
use crate::config::Config;
use crate::crypto::{ct_eq, CryptoError, CryptoProvider, HashAlgorithm};
use crate::enums::{ContentType, HandshakeType, ProtocolVersion};
use crate::messages::{ClientHello, HandshakeHeader};
use crate::record::{RecordHeader, HEADER_LEN};

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
    /// Not a ClientHello we can answer, or the answer would be larger than the request: drop.
    Drop,
}

/// The stateless cookie verifier.
pub struct ClientVerifier {
    provider: Arc<dyn CryptoProvider>,
    current: [u8; 32],
    previous: Option<[u8; 32]>,
    origin: Instant,
    rotated_at: Instant,
    lifetime: Duration,
    rotation: Duration,
}

impl core::fmt::Debug for ClientVerifier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientVerifier")
            .field("lifetime", &self.lifetime)
            .field("rotation", &self.rotation)
            .finish_non_exhaustive()
    }
}

/// The parts of a ClientHello datagram the verifier looks at: everything up to the cookie, which
/// the first fragment of a ClientHello always carries.
struct Hello<'a> {
    record_seq: u64,
    message_seq: u16,
    /// `client_version || random || session_id`, the fields the cookie binds.
    prefix: &'a [u8],
    random: [u8; 32],
    cookie: &'a [u8],
}

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
            || h.message_seq > 1
            || h.length > MAX_CLIENT_HELLO
        {
            return None;
        }
        if h.is_whole() {
            // A whole ClientHello must parse completely.
            ClientHello::parse(body)?;
        }
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
        Some(Self { record_seq: rec.seq, message_seq: h.message_seq, prefix, random, cookie })
    }
}

impl ClientVerifier {
    /// A verifier with a fresh random secret and the configuration's cookie timing.
    pub fn new(config: &Config, now: Instant) -> Result<Self, CryptoError> {
        let mut current = [0u8; 32];
        config.provider.fill_random(&mut current)?;
        Ok(Self {
            provider: config.provider.clone(),
            current,
            previous: None,
            origin: now,
            rotated_at: now,
            lifetime: config.cookie_lifetime,
            rotation: config.cookie_rotation,
        })
    }

    /// Replaces the secret (the old one stays valid for one rotation period). Servers that
    /// share a port across processes give each the same secret.
    pub fn set_secret(&mut self, now: Instant, secret: [u8; 32]) {
        self.previous = Some(self.current);
        self.current = secret;
        self.rotated_at = now;
    }

    fn rotate_if_due(&mut self, now: Instant) {
        if now.saturating_duration_since(self.rotated_at) >= self.rotation {
            let mut next = [0u8; 32];
            if self.provider.fill_random(&mut next).is_ok() {
                self.set_secret(now, next);
            }
        }
    }

    fn mac(&self, secret: &[u8; 32], ts: [u8; 4], peer: &SocketAddr, hello: &Hello<'_>) -> [u8; MAC_LEN] {
        let ip = match peer.ip() {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v6) => v6.octets(),
        };
        let d =
            self.provider.hmac(HashAlgorithm::Sha256, secret, &[&ts, &ip, &peer.port().to_be_bytes(), hello.prefix]);
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&d.as_bytes()[..MAC_LEN]);
        out
    }

    fn cookie_valid(&self, now: Instant, peer: &SocketAddr, hello: &Hello<'_>) -> bool {
        let mut r = Reader::new(hello.cookie);
        let (Some(ts), Some(mac)) = (r.take_array::<4>(), r.take_array::<MAC_LEN>()) else {
            return false;
        };
        if r.finish().is_none() {
            return false;
        }
        let issued = Duration::from_secs(u64::from(u32::from_be_bytes(ts)));
        let age = now.saturating_duration_since(self.origin).checked_sub(issued);
        if age.is_none_or(|age| age > self.lifetime) {
            return false;
        }
        ct_eq(&self.mac(&self.current, ts, peer, hello), &mac)
            || self.previous.is_some_and(|p| ct_eq(&self.mac(&p, ts, peer, hello), &mac))
    }

    /// Checks a datagram from `peer` (Qt's `verifyClient`). On
    /// [`SendHelloVerifyRequest`](Verification::SendHelloVerifyRequest), `response` holds the
    /// datagram to send back; it is never larger than `datagram`. Allocates nothing per peer.
    pub fn verify(&mut self, now: Instant, peer: &SocketAddr, datagram: &[u8], response: &mut Vec<u8>) -> Verification {
        response.clear();
        self.rotate_if_due(now);
        let Some(hello) = Hello::parse(datagram) else {
            return Verification::Drop;
        };
        if !hello.cookie.is_empty() && self.cookie_valid(now, peer, &hello) {
            return Verification::Verified;
        }
        let secs = now.saturating_duration_since(self.origin).as_secs();
        let ts = u32::try_from(secs).unwrap_or(u32::MAX).to_be_bytes();
        let mac = self.mac(&self.current, ts, peer, &hello);
        write_hello_verify_request(response, hello.record_seq, hello.message_seq, &ts, &mac);
        if response.len() > datagram.len() {
            response.clear();
            return Verification::Drop;
        }
        Verification::SendHelloVerifyRequest
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
