//! Stateless cookie verification (RFC 6347 §4.2.1): Qt's `QDtlsClientVerifier`.
//!
//! A server answers a ClientHello without a valid cookie with a HelloVerifyRequest and keeps
//! nothing. The cookie is `timestamp (4) || HMAC-SHA256(secret, timestamp || peer address ||
//! port || every byte of the ClientHello except the cookie)[..16]`, so it binds the client's
//! address and all of its hello parameters (a second ClientHello that changes anything fails).
//! The secret rotates; the previous one stays valid for one rotation period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::{Put, Reader};
use crate::config::Config;
use crate::crypto::{ct_eq, CryptoError, CryptoProvider, HashAlgorithm};
use crate::enums::{ContentType, HandshakeType, ProtocolVersion};
use crate::messages::{ClientHello, CookieSpan, HandshakeHeader};
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

/// The parts of a ClientHello datagram the verifier looks at.
struct Hello<'a> {
    record_seq: u64,
    message_seq: u16,
    body: &'a [u8],
    hello: ClientHello,
    span: CookieSpan,
}

impl<'a> Hello<'a> {
    /// Accepts only an unfragmented ClientHello in the first record of an epoch-0 datagram.
    fn parse(datagram: &'a [u8]) -> Option<Self> {
        let rec = RecordHeader::parse(datagram)?;
        if rec.content_type != ContentType::HANDSHAKE || rec.epoch != 0 || !rec.version.is_dtls() {
            return None;
        }
        let fragment = datagram.get(HEADER_LEN..HEADER_LEN + usize::from(rec.length))?;
        let mut r = Reader::new(fragment);
        let (h, body) = HandshakeHeader::parse(&mut r)?;
        if h.msg_type != HandshakeType::CLIENT_HELLO || !h.is_whole() || h.message_seq > 1 {
            return None;
        }
        let (hello, span) = ClientHello::parse(body)?;
        Some(Self { record_seq: rec.seq, message_seq: h.message_seq, body, hello, span })
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
        let d = self.provider.hmac(
            HashAlgorithm::Sha256,
            secret,
            &[&ts, &ip, &peer.port().to_be_bytes(), &hello.body[..hello.span.start], &hello.body[hello.span.end..]],
        );
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&d.as_bytes()[..MAC_LEN]);
        out
    }

    fn cookie_valid(&self, now: Instant, peer: &SocketAddr, hello: &Hello<'_>) -> bool {
        let mut r = Reader::new(&hello.hello.cookie);
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
        if !hello.hello.cookie.is_empty() && self.cookie_valid(now, peer, &hello) {
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

/// The `random` of an epoch-0, unfragmented ClientHello (without checking any cookie).
pub(crate) fn client_hello_random(datagram: &[u8]) -> Option<[u8; 32]> {
    // Cheap pre-check before parsing: a handshake record in epoch 0.
    if datagram.first() != Some(&ContentType::HANDSHAKE.0) || datagram.get(3..5) != Some(&[0, 0]) {
        return None;
    }
    Hello::parse(datagram).map(|h| h.hello.random)
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
