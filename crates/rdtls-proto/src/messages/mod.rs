//! Handshake messages (RFC 5246 §7.4, RFC 6347 §4.2, RFC 4279, RFC 5489, RFC 8422): the DTLS
//! handshake header and the bodies we send and receive.
//!
//! Parsers return `None` for anything malformed (the caller turns that into `decode_error`);
//! encoders append to a `Vec<u8>`.

use crate::codec::{Put, Reader};
use crate::enums::{ExtensionType, HandshakeType, ProtocolVersion};

mod seen;
pub mod tls13;

use seen::SeenTypes;
use tls13::{HelloKind, Tls13Extensions, HELLO_RETRY_REQUEST_RANDOM};

/// Length of the DTLS handshake header.
pub const HS_HEADER_LEN: usize = 12;

/// The DTLS handshake header (RFC 6347 §4.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeHeader {
    /// Message type.
    pub msg_type: HandshakeType,
    /// Length of the whole message body.
    pub length: u32,
    /// Message sequence number.
    pub message_seq: u16,
    /// Offset of this fragment in the body.
    pub fragment_offset: u32,
    /// Length of this fragment.
    pub fragment_length: u32,
}

impl HandshakeHeader {
    /// Parses a header and returns it with the fragment bytes. Checks that the fragment lies
    /// within the declared message length and within `r`.
    pub fn parse<'a>(r: &mut Reader<'a>) -> Option<(Self, &'a [u8])> {
        let h = Self {
            msg_type: HandshakeType(r.u8()?),
            length: r.u24()?,
            message_seq: r.u16()?,
            fragment_offset: r.u24()?,
            fragment_length: r.u24()?,
        };
        let end = h.fragment_offset.checked_add(h.fragment_length)?;
        if end > h.length {
            return None;
        }
        let body = r.take(h.fragment_length as usize)?;
        Some((h, body))
    }

    /// The encoded header.
    pub fn to_bytes(&self) -> [u8; HS_HEADER_LEN] {
        let mut b = [0u8; HS_HEADER_LEN];
        b[0] = self.msg_type.0;
        b[1..4].copy_from_slice(&self.length.to_be_bytes()[1..]);
        b[4..6].copy_from_slice(&self.message_seq.to_be_bytes());
        b[6..9].copy_from_slice(&self.fragment_offset.to_be_bytes()[1..]);
        b[9..12].copy_from_slice(&self.fragment_length.to_be_bytes()[1..]);
        b
    }

    /// Appends the encoded header.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    /// Whether this fragment is the whole message.
    pub fn is_whole(&self) -> bool {
        self.fragment_offset == 0 && self.fragment_length == self.length
    }
}

/// Appends a whole (unfragmented) handshake message: header then body.
pub fn write_message(out: &mut Vec<u8>, msg_type: HandshakeType, message_seq: u16, body: &[u8]) {
    let length = body.len() as u32;
    HandshakeHeader { msg_type, length, message_seq, fragment_offset: 0, fragment_length: length }.write(out);
    out.extend_from_slice(body);
}

/// Hello extensions we look at, parsed; others are ignored (but duplicates are rejected).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelloExtensions {
    /// `supported_groups` code points, if sent.
    pub supported_groups: Option<Vec<u16>>,
    /// `ec_point_formats`, if sent.
    pub ec_point_formats: Option<Vec<u8>>,
    /// `extended_master_secret` sent.
    pub extended_master_secret: bool,
    /// `renegotiation_info` contents, if sent.
    pub renegotiation_info: Option<Vec<u8>>,
    /// `signature_algorithms` code points, if sent.
    pub signature_algorithms: Option<Vec<u16>>,
    /// `server_name` host name, if sent (empty: a server's acknowledgement).
    pub server_name: Option<Vec<u8>>,
    /// `encrypt_then_mac` sent (irrelevant to AEAD suites; recorded for diagnostics).
    pub encrypt_then_mac: bool,
    /// `connection_id` (RFC 9146): the connection ID the sender wants to receive records
    /// with (empty: it wants ordinary records, and will send with ours).
    pub connection_id: Option<Vec<u8>>,
    /// `rrc` (RFC 9853): return routability checks (empty extension).
    pub rrc: bool,
    /// `use_srtp` (RFC 5764): SRTP protection profiles offered (a client) or the one chosen
    /// (a DTLS 1.2 server; a DTLS 1.3 server's is in its EncryptedExtensions).
    pub use_srtp: Option<crate::srtp::UseSrtp>,
    /// `application_layer_protocol_negotiation` (RFC 7301): the protocols a client offers, or
    /// the one a DTLS 1.2 server chose (a DTLS 1.3 server's is in its EncryptedExtensions).
    pub alpn: Option<crate::alpn::ProtocolList>,
    /// `session_ticket` (RFC 5077): a client's ticket (empty: it asks for one), or a server's
    /// promise of a NewSessionTicket (empty).
    pub session_ticket: Option<Vec<u8>>,
    /// The extensions of TLS 1.3.
    pub tls13: Tls13Extensions,
    /// The types of the other extensions, in order (a client checks that a server sends none
    /// it did not offer).
    pub others: Vec<u16>,
}

impl HelloExtensions {
    fn parse(r: &mut Reader<'_>, kind: HelloKind) -> Option<Self> {
        let mut out = Self::default();
        if r.is_empty() {
            return Some(out);
        }
        let mut exts = Reader::new(r.vec16()?);
        let mut seen = SeenTypes::default();
        while !exts.is_empty() {
            let ty = ExtensionType(exts.u16()?);
            let mut body = Reader::new(exts.vec16()?);
            if !seen.insert(ty.0) {
                return None;
            }
            match ty {
                ExtensionType::SUPPORTED_GROUPS => {
                    let list = body.vec16()?;
                    if list.len() % 2 != 0 {
                        return None;
                    }
                    out.supported_groups =
                        Some(list.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect());
                }
                ExtensionType::EC_POINT_FORMATS => out.ec_point_formats = Some(body.vec8()?.to_vec()),
                ExtensionType::EXTENDED_MASTER_SECRET => out.extended_master_secret = true,
                ExtensionType::RENEGOTIATION_INFO => out.renegotiation_info = Some(body.vec8()?.to_vec()),
                ExtensionType::ENCRYPT_THEN_MAC => out.encrypt_then_mac = true,
                ExtensionType::CONNECTION_ID => out.connection_id = Some(body.vec8()?.to_vec()),
                ExtensionType::RRC => out.rrc = true,
                ExtensionType::USE_SRTP => out.use_srtp = Some(crate::srtp::UseSrtp::parse(body.rest())?),
                ExtensionType::APPLICATION_LAYER_PROTOCOL_NEGOTIATION => {
                    out.alpn = Some(crate::alpn::ProtocolList::parse(body.rest())?);
                }
                ExtensionType::SESSION_TICKET => out.session_ticket = Some(body.rest().to_vec()),
                ExtensionType::SIGNATURE_ALGORITHMS => {
                    let list = body.vec16()?;
                    if list.len() % 2 != 0 {
                        return None;
                    }
                    out.signature_algorithms =
                        Some(list.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect());
                }
                ExtensionType::SERVER_NAME if body.is_empty() => {
                    // A server's acknowledgement (RFC 6066 §3): empty.
                    out.server_name = Some(Vec::new());
                }
                ExtensionType::SERVER_NAME => {
                    // ServerNameList: host_name entries (type 0); take the first host name.
                    let mut list = Reader::new(body.vec16()?);
                    while !list.is_empty() {
                        let name_type = list.u8()?;
                        let name = list.vec16()?;
                        if name_type == 0 && out.server_name.is_none() {
                            out.server_name = Some(name.to_vec());
                        }
                    }
                }
                ty if Tls13Extensions::handles(ty) => {
                    if out.tls13.parse(ty, &mut body, kind).is_none() {
                        if kind != HelloKind::Client || ty == ExtensionType::SUPPORTED_VERSIONS {
                            return None;
                        }
                        out.tls13.malformed = true;
                    }
                    // The binders sign the ClientHello up to them: nothing may follow.
                    if ty == ExtensionType::PRE_SHARED_KEY && kind == HelloKind::Client && !exts.is_empty() {
                        return None;
                    }
                    continue;
                }
                _ => {
                    let data = body.rest();
                    // Ignored, but not when malformed (BoGo's RejectEmptyCertificateAuthorities).
                    if ty == ExtensionType::CERTIFICATE_AUTHORITIES && !certificate_authorities_ok(data) {
                        return None;
                    }
                    out.others.push(ty.0);
                }
            }
            if !matches!(
                ty,
                ExtensionType::SUPPORTED_GROUPS
                    | ExtensionType::EC_POINT_FORMATS
                    | ExtensionType::EXTENDED_MASTER_SECRET
                    | ExtensionType::RENEGOTIATION_INFO
                    | ExtensionType::ENCRYPT_THEN_MAC
                    | ExtensionType::SIGNATURE_ALGORITHMS
                    | ExtensionType::SERVER_NAME
                    | ExtensionType::CONNECTION_ID
                    | ExtensionType::RRC
                    | ExtensionType::USE_SRTP
                    | ExtensionType::APPLICATION_LAYER_PROTOCOL_NEGOTIATION
                    | ExtensionType::SESSION_TICKET
            ) {
                continue;
            }
            body.finish()?;
        }
        r.finish()?;
        Some(out)
    }
}

impl HelloExtensions {
    /// Appends the extensions block (none at all when there is no extension, as a ServerHello
    /// without extensions is sent). `others` are not written: only their types are known.
    /// A `server_name` that is empty is a server's acknowledgement; otherwise one host name.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_len16(|exts| self.emit_each(exts));
        if out.len() == start + 2 {
            out.truncate(start);
        }
    }

    fn emit_each(&self, exts: &mut Vec<u8>) {
        // First: a DTLS 1.3 cookie and supported_versions, so that a server which reads only
        // the first fragment of a fragmented ClientHello before keeping state (wolfSSL) finds
        // both there.
        self.tls13.emit_leading(exts);
        if let Some(name) = &self.server_name {
            put_extension(exts, ExtensionType::SERVER_NAME, |b| {
                if !name.is_empty() {
                    b.put_len16(|b| {
                        b.put_u8(0); // host_name
                        b.put_vec16(name);
                    });
                }
            });
        }
        if self.extended_master_secret {
            put_extension(exts, ExtensionType::EXTENDED_MASTER_SECRET, |_| {});
        }
        if let Some(ri) = &self.renegotiation_info {
            put_extension(exts, ExtensionType::RENEGOTIATION_INFO, |b| b.put_vec8(ri));
        }
        if let Some(groups) = &self.supported_groups {
            put_extension(exts, ExtensionType::SUPPORTED_GROUPS, |b| {
                b.put_len16(|b| groups.iter().for_each(|g| b.put_u16(*g)));
            });
        }
        if let Some(formats) = &self.ec_point_formats {
            put_extension(exts, ExtensionType::EC_POINT_FORMATS, |b| b.put_vec8(formats));
        }
        if let Some(schemes) = &self.signature_algorithms {
            put_extension(exts, ExtensionType::SIGNATURE_ALGORITHMS, |b| {
                b.put_len16(|b| schemes.iter().for_each(|s| b.put_u16(*s)));
            });
        }
        if self.encrypt_then_mac {
            put_extension(exts, ExtensionType::ENCRYPT_THEN_MAC, |_| {});
        }
        if let Some(cid) = &self.connection_id {
            put_extension(exts, ExtensionType::CONNECTION_ID, |b| b.put_vec8(cid));
        }
        if self.rrc {
            put_extension(exts, ExtensionType::RRC, |_| {});
        }
        if let Some(srtp) = &self.use_srtp {
            put_extension(exts, ExtensionType::USE_SRTP, |b| srtp.emit(b));
        }
        if let Some(protocols) = &self.alpn {
            put_extension(exts, ExtensionType::APPLICATION_LAYER_PROTOCOL_NEGOTIATION, |b| protocols.emit(b));
        }
        if let Some(ticket) = &self.session_ticket {
            put_extension(exts, ExtensionType::SESSION_TICKET, |b| b.extend_from_slice(ticket));
        }
        // Last: pre_shared_key has to end a ClientHello.
        self.tls13.emit_each(exts);
    }
}

/// A ClientHello (RFC 6347 §4.2.1: with the `cookie` field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    /// `client_version`.
    pub client_version: ProtocolVersion,
    /// `random`.
    pub random: [u8; 32],
    /// `session_id` (0–32 bytes).
    pub session_id: Vec<u8>,
    /// `cookie` (0–255 bytes).
    pub cookie: Vec<u8>,
    /// `cipher_suites` code points, in the client's order.
    pub cipher_suites: Vec<u16>,
    /// `compression_methods`.
    pub compression_methods: Vec<u8>,
    /// Parsed extensions.
    pub extensions: HelloExtensions,
}

/// Where the cookie sits within an encoded ClientHello body, so it can be left out of the
/// cookie MAC (which covers every other byte of the ClientHello).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieSpan {
    /// Offset of the cookie length byte.
    pub start: usize,
    /// Offset just past the cookie.
    pub end: usize,
}

impl ClientHello {
    /// Parses a ClientHello body.
    pub fn parse(body: &[u8]) -> Option<(Self, CookieSpan)> {
        let mut r = Reader::new(body);
        let client_version = ProtocolVersion(r.u16()?);
        let random = r.take_array()?;
        let session_id = r.vec8()?;
        if session_id.len() > 32 {
            return None;
        }
        let start = body.len() - r.remaining();
        let cookie = r.vec8()?;
        let end = body.len() - r.remaining();
        let suites = r.vec16()?;
        if suites.is_empty() || suites.len() % 2 != 0 {
            return None;
        }
        let compression_methods = r.vec8()?;
        if compression_methods.is_empty() {
            return None;
        }
        let extensions = HelloExtensions::parse(&mut r, HelloKind::Client)?;
        Some((
            Self {
                client_version,
                random,
                session_id: session_id.to_vec(),
                cookie: cookie.to_vec(),
                cipher_suites: suites.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect(),
                compression_methods: compression_methods.to_vec(),
                extensions,
            },
            CookieSpan { start, end },
        ))
    }
}

impl ClientHello {
    /// Appends the encoded body (the inverse of [`parse`](Self::parse)).
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u16(self.client_version.0);
        out.extend_from_slice(&self.random);
        out.put_vec8(&self.session_id);
        out.put_vec8(&self.cookie);
        out.put_len16(|b| self.cipher_suites.iter().for_each(|s| b.put_u16(*s)));
        out.put_vec8(&self.compression_methods);
        self.extensions.emit(out);
    }
}

/// A ServerHello, or a HelloRetryRequest (see [`is_retry_request`](Self::is_retry_request)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHello {
    /// `server_version`.
    pub server_version: ProtocolVersion,
    /// `random`.
    pub random: [u8; 32],
    /// `session_id`.
    pub session_id: Vec<u8>,
    /// The chosen suite.
    pub cipher_suite: u16,
    /// The chosen compression method.
    pub compression_method: u8,
    /// Parsed extensions.
    pub extensions: HelloExtensions,
}

impl ServerHello {
    /// Parses a ServerHello body.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let mut r = Reader::new(body);
        let server_version = ProtocolVersion(r.u16()?);
        let random = r.take_array()?;
        let session_id = r.vec8()?;
        if session_id.len() > 32 {
            return None;
        }
        let cipher_suite = r.u16()?;
        let compression_method = r.u8()?;
        let kind = if random == HELLO_RETRY_REQUEST_RANDOM { HelloKind::Retry } else { HelloKind::Server };
        let extensions = HelloExtensions::parse(&mut r, kind)?;
        Some(Self {
            server_version,
            random,
            session_id: session_id.to_vec(),
            cipher_suite,
            compression_method,
            extensions,
        })
    }
}

impl ServerHello {
    /// Whether this is a HelloRetryRequest (RFC 8446 §4.1.3).
    pub fn is_retry_request(&self) -> bool {
        self.random == HELLO_RETRY_REQUEST_RANDOM
    }

    /// Appends the encoded body (the inverse of [`parse`](Self::parse)).
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u16(self.server_version.0);
        out.extend_from_slice(&self.random);
        out.put_vec8(&self.session_id);
        out.put_u16(self.cipher_suite);
        out.put_u8(self.compression_method);
        self.extensions.emit(out);
    }
}

/// Parses a HelloVerifyRequest body: `server_version` and `cookie`.
pub fn parse_hello_verify_request(body: &[u8]) -> Option<(ProtocolVersion, &[u8])> {
    let mut r = Reader::new(body);
    let v = ProtocolVersion(r.u16()?);
    let cookie = r.vec8()?;
    r.finish()?;
    Some((v, cookie))
}

/// Appends an extension with the given body.
pub fn put_extension(out: &mut Vec<u8>, ty: ExtensionType, body: impl FnOnce(&mut Vec<u8>)) {
    out.put_u16(ty.0);
    out.put_len16(body);
}

/// `ECParameters` with `curve_type = named_curve` (RFC 8422 §5.4).
pub const NAMED_CURVE: u8 = 3;

/// The ECDHE part of a ServerKeyExchange: the group and the server's public point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerEcdhParams<'a> {
    /// The `NamedGroup` code point.
    pub group: u16,
    /// The encoded public key.
    pub public: &'a [u8],
}

impl<'a> ServerEcdhParams<'a> {
    /// Parses `ServerECDHParams`.
    pub fn parse(r: &mut Reader<'a>) -> Option<Self> {
        if r.u8()? != NAMED_CURVE {
            return None;
        }
        let group = r.u16()?;
        let public = r.vec8()?;
        if public.is_empty() {
            return None;
        }
        Some(Self { group, public })
    }

    /// Appends the encoding.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(NAMED_CURVE);
        out.put_u16(self.group);
        out.put_vec8(self.public);
    }
}

/// Parses a Certificate body: a list of DER certificates (RFC 5246 §7.4.2).
pub fn parse_certificate_list(body: &[u8]) -> Option<Vec<rustls_pki_types::CertificateDer<'static>>> {
    let mut r = Reader::new(body);
    let mut list = Reader::new(r.vec24()?);
    r.finish()?;
    let mut certs = Vec::new();
    while !list.is_empty() {
        let cert = list.vec24()?;
        if cert.is_empty() {
            return None;
        }
        certs.push(rustls_pki_types::CertificateDer::from(cert.to_vec()));
    }
    Some(certs)
}

/// Encodes a Certificate body.
pub fn write_certificate_list(out: &mut Vec<u8>, chain: &[rustls_pki_types::CertificateDer<'_>]) {
    out.put_len24(|b| {
        for c in chain {
            b.put_len24(|b| b.extend_from_slice(c.as_ref()));
        }
    });
}

/// A CertificateRequest (RFC 5246 §7.4.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRequest {
    /// `certificate_types`.
    pub certificate_types: Vec<u8>,
    /// `supported_signature_algorithms`.
    pub signature_schemes: Vec<crate::enums::SignatureScheme>,
}

impl CertificateRequest {
    /// `rsa_sign` client certificate type.
    pub const RSA_SIGN: u8 = 1;
    /// `ecdsa_sign` client certificate type.
    pub const ECDSA_SIGN: u8 = 64;

    /// Parses the body; the `certificate_authorities` list is checked for framing and ignored.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let mut r = Reader::new(body);
        let types = r.vec8()?;
        let schemes = r.vec16()?;
        if schemes.len() % 2 != 0 {
            return None;
        }
        let mut cas = Reader::new(r.vec16()?);
        while !cas.is_empty() {
            cas.vec16()?;
        }
        r.finish()?;
        Some(Self {
            certificate_types: types.to_vec(),
            signature_schemes: schemes
                .chunks_exact(2)
                .map(|c| crate::enums::SignatureScheme(u16::from_be_bytes([c[0], c[1]])))
                .collect(),
        })
    }

    /// Encodes the body with an empty `certificate_authorities` list.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_vec8(&self.certificate_types);
        out.put_len16(|b| self.signature_schemes.iter().for_each(|s| b.put_u16(s.0)));
        out.put_u16(0);
    }
}

/// Whether a `certificate_authorities` extension's body is well formed (RFC 8446 §4.2.4):
/// `DistinguishedName authorities<3..2^16-1>`, each name `<1..2^16-1>`, nothing after them.
pub fn certificate_authorities_ok(body: &[u8]) -> bool {
    let mut r = Reader::new(body);
    let Some(list) = r.vec16() else { return false };
    if r.finish().is_none() || list.len() < 3 {
        return false;
    }
    let mut names = Reader::new(list);
    while !names.is_empty() {
        if names.vec16().is_none_or(<[u8]>::is_empty) {
            return false;
        }
    }
    true
}

/// Parses a `DigitallySigned` (RFC 5246 §4.7): the scheme and the signature.
pub fn parse_digitally_signed<'a>(r: &mut Reader<'a>) -> Option<(crate::enums::SignatureScheme, &'a [u8])> {
    let scheme = crate::enums::SignatureScheme(r.u16()?);
    let sig = r.vec16()?;
    Some((scheme, sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_must_lie_within_message() {
        let mut v = Vec::new();
        HandshakeHeader {
            msg_type: HandshakeType::FINISHED,
            length: 12,
            message_seq: 3,
            fragment_offset: 10,
            fragment_length: 4,
        }
        .write(&mut v);
        v.extend_from_slice(&[0; 4]);
        assert!(HandshakeHeader::parse(&mut Reader::new(&v)).is_none());
    }

    fn every_extension() -> HelloExtensions {
        HelloExtensions {
            supported_groups: Some(vec![29, 23, 24]),
            ec_point_formats: Some(vec![0]),
            extended_master_secret: true,
            renegotiation_info: Some(Vec::new()),
            signature_algorithms: Some(vec![0x0403, 0x0804]),
            server_name: Some(b"example.com".to_vec()),
            encrypt_then_mac: true,
            connection_id: Some(vec![1, 2, 3]),
            rrc: true,
            use_srtp: Some(crate::srtp::UseSrtp { profiles: vec![7, 1], mki: vec![5; 3] }),
            alpn: crate::alpn::ProtocolList::new(&["coap", "h2"]),
            session_ticket: Some(vec![9; 40]),
            tls13: Tls13Extensions::default(),
            others: Vec::new(),
        }
    }

    #[test]
    fn hellos_emit_what_they_parse() {
        let ch = ClientHello {
            client_version: ProtocolVersion::DTLS1_2,
            random: [9; 32],
            session_id: vec![1; 32],
            cookie: vec![2; 20],
            cipher_suites: vec![0xc02b, 0x00a8],
            compression_methods: vec![0],
            extensions: every_extension(),
        };
        let mut body = Vec::new();
        ch.emit(&mut body);
        let (parsed, span) = ClientHello::parse(&body).unwrap();
        assert_eq!(parsed, ch);
        assert_eq!(&body[span.start + 1..span.end], &ch.cookie[..]);
        let mut again = Vec::new();
        parsed.emit(&mut again);
        assert_eq!(again, body);

        let mut sh = ServerHello {
            server_version: ProtocolVersion::DTLS1_2,
            random: [3; 32],
            session_id: Vec::new(),
            cipher_suite: 0xc02b,
            compression_method: 0,
            extensions: HelloExtensions {
                server_name: Some(Vec::new()),
                extended_master_secret: true,
                renegotiation_info: Some(Vec::new()),
                ec_point_formats: Some(vec![0]),
                ..HelloExtensions::default()
            },
        };
        let mut body = Vec::new();
        sh.emit(&mut body);
        assert_eq!(ServerHello::parse(&body).unwrap(), sh);
        // No extension at all: no extensions block (RFC 5246 §7.4.1.3).
        sh.extensions = HelloExtensions::default();
        let mut body = Vec::new();
        sh.emit(&mut body);
        assert_eq!(body.len(), 2 + 32 + 1 + 2 + 1);
        assert_eq!(ServerHello::parse(&body).unwrap(), sh);
    }

    #[test]
    fn client_hello_rejects_duplicate_extensions() {
        let mut body = Vec::new();
        body.put_u16(0xfefd);
        body.extend_from_slice(&[7; 32]);
        body.put_vec8(&[]);
        body.put_vec8(&[1, 2, 3]);
        body.put_vec16(&[0x00, 0xa8]);
        body.put_vec8(&[0]);
        let mut good = body.clone();
        good.put_len16(|v| put_extension(v, ExtensionType::EXTENDED_MASTER_SECRET, |_| {}));
        let (ch, span) = ClientHello::parse(&good).unwrap();
        assert!(ch.extensions.extended_master_secret);
        assert_eq!(ch.cookie, [1, 2, 3]);
        assert_eq!(&good[span.start..span.end], &[3, 1, 2, 3]);
        let mut dup = body.clone();
        dup.put_len16(|v| {
            put_extension(v, ExtensionType::EXTENDED_MASTER_SECRET, |_| {});
            put_extension(v, ExtensionType::EXTENDED_MASTER_SECRET, |_| {});
        });
        assert!(ClientHello::parse(&dup).is_none());
    }
}
