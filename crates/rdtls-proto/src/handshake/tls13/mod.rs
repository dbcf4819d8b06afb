//! The DTLS 1.3 handshake (RFC 9147 §5 on RFC 8446 §4), client and server.
//!
//! ```text
//!   Client                                            Server
//!   ClientHello (+key_share, +pre_shared_key) -------->              epoch 0
//!                                             <-------- HelloRetryRequest (+cookie)
//!   ClientHello (+cookie)                     -------->              (stateless, optional)
//!                                                       ServerHello  epoch 0
//!                                               {EncryptedExtensions} epoch 2
//!                                               {CertificateRequest*}
//!                                                      {Certificate*}
//!                                                {CertificateVerify*}
//!                                             <--------   {Finished}
//!   {Certificate*} {CertificateVerify*}
//!   {Finished}                                -------->              epoch 2
//!                                             <--------        [ACK] epoch 3
//!   [Application Data]                        <------->              epoch 3
//! ```
//!
//! The transcript hashes each message with the TLS 1.3 four-byte header (RFC 9147 §5.2), and
//! after a HelloRetryRequest the first ClientHello is replaced by its `message_hash` (RFC 8446
//! §4.4.1). The key schedule ([`key_schedule`]) uses the "dtls13" label prefix. Early data
//! (0-RTT) is never accepted or sent.

mod client;
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod key_schedule;
pub(crate) mod resume;
mod server;

pub(crate) use client::Client;
pub(crate) use server::{RetryState, Server};

use crate::codec::{Put, Reader};
use crate::config::{Config, KeyLog};
use crate::crypto::{CryptoProvider, Digest, HashAlgorithm, DTLS13_LABEL_PREFIX};
use crate::enums::{AlertDescription, ExtensionType, HandshakeType, ProtocolVersion, SignatureScheme};
use crate::error::Error;
use crate::handshake::reassembly::Message;
use crate::handshake::transcript::Transcript;
use crate::handshake::{Action, Context, FlightItem};
use crate::messages::tls13::{KeyShare, SupportedVersions, Tls13Extensions, HELLO_RETRY_REQUEST_RANDOM};
use crate::messages::{put_extension, HelloExtensions, ServerHello};
use crate::pki::CertificateDer;
use crate::record::{EpochKeys, UnifiedProtection};
use crate::srtp::{SrtpProfile, UseSrtp};
use crate::suites::CipherSuite;
use key_schedule::{Schedule, Secret};

/// The epoch of handshake messages after the ServerHello (RFC 9147 §6.1).
pub(crate) const EPOCH_HANDSHAKE: u64 = 2;
/// The epoch of the first application data keys.
pub(crate) const EPOCH_APPLICATION: u64 = 3;

/// The signature schemes DTLS 1.3 allows in a CertificateVerify, in our order of preference
/// (RFC 8446 §4.2.3: no RSA PKCS#1 v1.5, ECDSA bound to its curve).
pub(crate) const SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ECDSA_SECP256R1_SHA256,
    SignatureScheme::ECDSA_SECP384R1_SHA384,
    SignatureScheme::ED25519,
    SignatureScheme::RSA_PSS_RSAE_SHA256,
    SignatureScheme::RSA_PSS_RSAE_SHA384,
];

/// The hash an external PSK is used with (RFC 8446 §4.2.11 lets the two ends agree on it; our
/// PSKs carry none): SHA-256, unless the client offers only SHA-384 suites. Both ends compute
/// it from the suites of the ClientHello, as wolfSSL does.
pub(crate) fn psk_hash(offered: impl IntoIterator<Item = u16>) -> HashAlgorithm {
    let mut hashes = offered.into_iter().filter_map(CipherSuite::from_id).filter(|s| s.is_tls13()).map(|s| s.hash);
    match hashes.next() {
        Some(HashAlgorithm::Sha256) => HashAlgorithm::Sha256,
        Some(first) => {
            if hashes.any(|h| h == HashAlgorithm::Sha256) {
                HashAlgorithm::Sha256
            } else {
                first
            }
        }
        None => HashAlgorithm::Sha256,
    }
}

/// The last 8 bytes of a DTLS 1.2 ServerHello random from a server that can do DTLS 1.3
/// (RFC 8446 §4.1.3): "DOWNGRD" and 01.
pub(crate) const DOWNGRADE_SENTINEL: [u8; 8] = [0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44, 0x01];

/// Whether a message of type `ty` in `epoch` can be handled: the hellos come in epoch 0,
/// everything else of the handshake in epoch 2.
pub(crate) fn ready_for(ty: HandshakeType, epoch: u16) -> Result<bool, Error> {
    let expected = match ty {
        HandshakeType::CLIENT_HELLO | HandshakeType::SERVER_HELLO | HandshakeType::HELLO_VERIFY_REQUEST => 0,
        _ => EPOCH_HANDSHAKE as u16,
    };
    if epoch != expected {
        return Err(Error::unexpected("handshake message in the wrong epoch"));
    }
    Ok(true)
}

/// The schedule of `suite`, with the DTLS prefix.
pub(crate) fn schedule<'a>(provider: &'a dyn CryptoProvider, hash: HashAlgorithm) -> Schedule<'a> {
    Schedule { provider, hash, prefix: DTLS13_LABEL_PREFIX }
}

/// Record protection for one direction of an epoch from its traffic secret.
pub(crate) fn epoch_keys(
    provider: &dyn CryptoProvider,
    suite: &CipherSuite,
    secret: &Secret,
) -> Result<EpochKeys, Error> {
    let p = UnifiedProtection::from_traffic_secret(provider, suite.aead, suite.hash, secret.as_bytes())?;
    Ok(EpochKeys::Dtls13(p))
}

/// A message as it enters a DTLS 1.3 transcript: type, 24-bit length, body.
pub(crate) fn tls13_message(msg_type: HandshakeType, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.put_u8(msg_type.0);
    out.put_u24(body.len() as u32);
    out.extend_from_slice(body);
    out
}

/// The `message_hash` message that stands for the first ClientHello after a HelloRetryRequest
/// (RFC 8446 §4.4.1): its hash, with the message_hash header.
pub(crate) fn message_hash(ch1_hash: &[u8]) -> Vec<u8> {
    tls13_message(HandshakeType::MESSAGE_HASH, ch1_hash)
}

/// A HelloRetryRequest body: the suite chosen, the group the client must send a share for (if
/// its shares had none we accept) and the cookie (if stateless).
pub(crate) fn hello_retry_request(suite: u16, group: Option<u16>, cookie: Option<&[u8]>) -> Vec<u8> {
    let hello = ServerHello {
        server_version: ProtocolVersion::DTLS1_2,
        random: HELLO_RETRY_REQUEST_RANDOM,
        // No session ID echoed (RFC 9147 §5.3).
        session_id: Vec::new(),
        cipher_suite: suite,
        compression_method: 0,
        extensions: HelloExtensions {
            tls13: Tls13Extensions {
                supported_versions: Some(SupportedVersions::Selected(ProtocolVersion::DTLS1_3)),
                key_share: group.map(KeyShare::Requested),
                cookie: cookie.map(<[u8]>::to_vec),
                ..Tls13Extensions::default()
            },
            ..HelloExtensions::default()
        },
    };
    let mut body = Vec::with_capacity(64 + cookie.map_or(0, <[u8]>::len));
    hello.emit(&mut body);
    body
}

/// Encodes a DTLS 1.3 Certificate body (RFC 8446 §4.4.2): the request context, then each
/// certificate with no extensions.
pub(crate) fn write_certificate(out: &mut Vec<u8>, context: &[u8], chain: &[CertificateDer<'_>]) {
    out.put_vec8(context);
    out.put_len24(|b| {
        for c in chain {
            b.put_len24(|b| b.extend_from_slice(c.as_ref()));
            b.put_u16(0);
        }
    });
}

/// Parses a DTLS 1.3 Certificate body: the request context and the chain (per-certificate
/// extensions are framed and ignored: we ask for none).
pub(crate) fn parse_certificate(body: &[u8]) -> Option<(Vec<u8>, Vec<CertificateDer<'static>>)> {
    let mut r = Reader::new(body);
    let context = r.vec8()?.to_vec();
    let mut list = Reader::new(r.vec24()?);
    r.finish()?;
    let mut chain = Vec::new();
    while !list.is_empty() {
        let cert = list.vec24()?;
        list.vec16()?;
        if cert.is_empty() {
            return None;
        }
        chain.push(CertificateDer::from(cert.to_vec()));
    }
    Some((context, chain))
}

/// Encodes a CertificateRequest (RFC 8446 §4.3.2): an empty context and the signature schemes.
pub(crate) fn write_certificate_request(out: &mut Vec<u8>) {
    out.put_vec8(&[]);
    out.put_len16(|b| {
        put_extension(b, ExtensionType::SIGNATURE_ALGORITHMS, |b| {
            b.put_len16(|b| SCHEMES.iter().for_each(|s| b.put_u16(s.0)));
        });
    });
}

/// Parses a CertificateRequest: its context and the schemes of its signature_algorithms.
pub(crate) fn parse_certificate_request(body: &[u8]) -> Option<(Vec<u8>, Vec<SignatureScheme>)> {
    let mut r = Reader::new(body);
    let context = r.vec8()?.to_vec();
    let mut exts = Reader::new(r.vec16()?);
    r.finish()?;
    let mut schemes = None;
    while !exts.is_empty() {
        let ty = ExtensionType(exts.u16()?);
        let mut body = Reader::new(exts.vec16()?);
        if ty == ExtensionType::SIGNATURE_ALGORITHMS {
            if schemes.is_some() {
                return None;
            }
            let list = body.vec16()?;
            body.finish()?;
            if list.is_empty() || list.len() % 2 != 0 {
                return None;
            }
            schemes = Some(list.chunks_exact(2).map(|c| SignatureScheme(u16::from_be_bytes([c[0], c[1]]))).collect());
        } else if ty == ExtensionType::CERTIFICATE_AUTHORITIES
            && !crate::messages::certificate_authorities_ok(body.rest())
        {
            return None;
        }
    }
    Some((context, schemes?))
}

/// The EncryptedExtensions a server sends: an acknowledgement of the server name if the name
/// chose its certificate, the SRTP profile and the application protocol chosen, if any.
pub(crate) fn write_encrypted_extensions(
    out: &mut Vec<u8>,
    server_name_ack: bool,
    srtp: Option<&UseSrtp>,
    alpn: Option<&crate::alpn::ProtocolList>,
) {
    out.put_len16(|b| {
        if server_name_ack {
            put_extension(b, ExtensionType::SERVER_NAME, |_| {});
        }
        if let Some(srtp) = srtp {
            put_extension(b, ExtensionType::USE_SRTP, |b| srtp.emit(b));
        }
        if let Some(protocols) = alpn {
            put_extension(b, ExtensionType::APPLICATION_LAYER_PROTOCOL_NEGOTIATION, |b| protocols.emit(b));
        }
    });
}

/// What a client finds in the server's EncryptedExtensions.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ServerExtensions {
    /// The server acknowledged the name we sent.
    pub(crate) sni_ack: bool,
    /// The SRTP profile the server chose among those we offered.
    pub(crate) srtp: Option<SrtpProfile>,
    /// The application protocol the server chose among those we offered.
    pub(crate) alpn: Option<Vec<u8>>,
}

/// Checks EncryptedExtensions: only extensions a client offered (`sent_sni`, the SRTP
/// profiles and ALPN protocols of `config`) may come, and none of the ones that belong in a
/// ServerHello.
pub(crate) fn parse_encrypted_extensions(
    body: &[u8],
    sent_sni: bool,
    config: &Config,
) -> Result<ServerExtensions, Error> {
    let (srtp_offered, alpn_offered) = (&config.srtp_profiles[..], &config.alpn_protocols[..]);
    let decode = Error::decode("EncryptedExtensions");
    let mut r = Reader::new(body);
    let mut exts = Reader::new(r.vec16().ok_or(decode.clone())?);
    r.finish().ok_or(decode.clone())?;
    let mut found = ServerExtensions::default();
    // The whole list is read (and duplicates refused) before any extension is judged.
    let mut seen: Vec<(ExtensionType, &[u8])> = Vec::new();
    while !exts.is_empty() {
        let ty = ExtensionType(exts.u16().ok_or(decode.clone())?);
        let body = exts.vec16().ok_or(decode.clone())?;
        if seen.iter().any(|(t, _)| *t == ty) || seen.len() > 32 {
            return Err(decode);
        }
        seen.push((ty, body));
    }
    for (ty, body) in seen {
        match ty {
            // The server's acknowledgement is empty (RFC 6066 §3).
            ExtensionType::SERVER_NAME if sent_sni && !body.is_empty() => return Err(decode),
            ExtensionType::SERVER_NAME if sent_sni => found.sni_ack = true,
            ExtensionType::USE_SRTP if !srtp_offered.is_empty() => {
                let answer = UseSrtp::parse(body).ok_or(decode.clone())?;
                found.srtp = Some(answer.check_answer(srtp_offered)?);
            }
            ExtensionType::APPLICATION_LAYER_PROTOCOL_NEGOTIATION if !alpn_offered.is_empty() => {
                let answer = crate::alpn::ProtocolList::parse(body).ok_or(decode.clone())?;
                found.alpn = Some(crate::alpn::check_answer(&answer, alpn_offered)?);
            }
            // The server's preferred groups (RFC 8446 §4.2.7): informational.
            ExtensionType::SUPPORTED_GROUPS => {}
            _ => {
                return Err(Error::PeerMisbehaved {
                    alert: AlertDescription::UNSUPPORTED_EXTENSION,
                    reason: "server sent an extension we did not offer in EncryptedExtensions",
                })
            }
        }
    }
    Ok(found)
}

/// Length of the MAC that ends a DTLS 1.3 stateless cookie.
pub(crate) const COOKIE_MAC_LEN: usize = 16;

/// Reads a DTLS 1.3 cookie made by [`crate::ClientVerifier`]: timestamp, suite, the group
/// asked for (0: none) and the first ClientHello's hash, then the MAC. Returns the timestamp,
/// the state, the bytes the MAC covers and the MAC.
pub(crate) fn parse_cookie(cookie: &[u8]) -> Option<(u32, RetryState, &[u8], &[u8])> {
    let mut r = Reader::new(cookie);
    let ts = u32::from_be_bytes(r.take_array()?);
    let suite = CipherSuite::from_id(r.u16()?).filter(|s| s.is_tls13())?;
    let group = match r.u16()? {
        0 => None,
        g => Some(crate::crypto::KxGroup::from_code_point(g)?),
    };
    let ch1_hash = r.take(suite.hash.output_len())?;
    let signed = &cookie[..cookie.len() - r.remaining()];
    let mac = r.take(COOKIE_MAC_LEN)?;
    r.finish()?;
    Some((ts, RetryState { ch1_hash: ch1_hash.to_vec(), suite, group }, signed, mac))
}

/// The state a verified DTLS 1.3 cookie carries (its MAC is not checked here: it was
/// verified before the connection was created), if its suite is one we allow.
pub(crate) fn retry_state(config: &Config, cookie: &[u8]) -> Option<RetryState> {
    let (_, state, _, _) = parse_cookie(cookie)?;
    config.cipher_suites.contains(&state.suite).then_some(state)
}

/// What both roles of a DTLS 1.3 handshake keep.
#[derive(Default)]
pub(crate) struct Common {
    transcript: Transcript,
    next_send_seq: u16,
    suite: Option<&'static CipherSuite>,
    client_random: [u8; 32],
    /// The handshake traffic secrets, from ServerHello to the end of the handshake.
    hs_traffic: Option<key_schedule::TrafficSecrets>,
    master: Option<key_schedule::MasterSecret>,
    /// The peer's end-entity certificate, whose key signs its CertificateVerify.
    peer_ee: Option<CertificateDer<'static>>,
}

impl core::fmt::Debug for Common {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Common")
            .field("transcript", &self.transcript)
            .field("next_send_seq", &self.next_send_seq)
            .field("suite", &self.suite.map(|s| s.name))
            .field("keys", &self.hs_traffic.is_some())
            .finish_non_exhaustive()
    }
}

impl Common {
    fn schedule<'a>(&self, config: &'a Config) -> Result<Schedule<'a>, Error> {
        let suite = self.suite.ok_or(Error::Crypto)?;
        Ok(schedule(&*config.provider, suite.hash))
    }

    /// Adds a received message to the transcript.
    fn add_received(&mut self, msg: &Message) {
        self.transcript.add_tls13(msg.msg_type, &msg.body);
    }

    /// Builds an outgoing message of `epoch`: takes the next `message_seq` and adds it to the
    /// transcript.
    fn outgoing(&mut self, epoch: u64, msg_type: HandshakeType, body: Vec<u8>) -> FlightItem {
        let seq = self.next_send_seq;
        self.next_send_seq = self.next_send_seq.wrapping_add(1);
        self.transcript.add_tls13(msg_type, &body);
        FlightItem::Message { epoch, msg_type, seq, body }
    }

    fn hash(&self) -> Result<Digest, Error> {
        self.transcript.hash().ok_or(Error::Crypto)
    }

    fn log(&self, config: &Config, label: &str, secret: &Secret) {
        if let Some(log) = &config.key_log {
            KeyLog::log(&**log, label, &self.client_random, secret.as_bytes());
        }
    }

    /// From the handshake secret and the transcript through ServerHello: the handshake traffic
    /// secrets, and the epoch-2 keys of both directions (`client` tells ours).
    fn enter_handshake_epoch(
        &mut self,
        cx: &mut Context<'_>,
        secret: key_schedule::HandshakeSecret,
        client: bool,
    ) -> Result<(), Error> {
        let config: &Config = cx.config;
        let suite = self.suite.ok_or(Error::Crypto)?;
        let s = self.schedule(config)?;
        let traffic = secret.traffic(&s, self.hash()?.as_bytes())?;
        self.log(config, "CLIENT_HANDSHAKE_TRAFFIC_SECRET", &traffic.client);
        self.log(config, "SERVER_HANDSHAKE_TRAFFIC_SECRET", &traffic.server);
        let provider = &*config.provider;
        let (ours, theirs) =
            if client { (&traffic.client, &traffic.server) } else { (&traffic.server, &traffic.client) };
        cx.push(Action::InstallKeys {
            epoch: EPOCH_HANDSHAKE,
            read: Some(epoch_keys(provider, suite, theirs)?),
            write: Some(epoch_keys(provider, suite, ours)?),
        });
        self.master = Some(secret.into_master(&s)?);
        self.hs_traffic = Some(traffic);
        Ok(())
    }

    /// The Finished `verify_data` of the client (`client`) or server, over the transcript so far.
    fn verify_data(&self, config: &Config, client: bool) -> Result<Secret, Error> {
        let traffic = self.hs_traffic.as_ref().ok_or(Error::unexpected("Finished before keys"))?;
        let base = if client { &traffic.client } else { &traffic.server };
        Ok(self.schedule(config)?.verify_data(base, self.hash()?.as_bytes())?)
    }

    /// Checks the peer's Finished and adds it to the transcript.
    fn check_finished(&mut self, config: &Config, msg: &Message, client: bool) -> Result<(), Error> {
        let expected = self.verify_data(config, client)?;
        crate::handshake::check_verify_data(expected.as_bytes(), &msg.body, client)?;
        self.add_received(msg);
        Ok(())
    }

    /// Our Finished, in epoch 2.
    fn finished(&mut self, config: &Config, client: bool) -> Result<FlightItem, Error> {
        let verify = self.verify_data(config, client)?;
        Ok(self.outgoing(EPOCH_HANDSHAKE, HandshakeType::FINISHED, verify.as_bytes().to_vec()))
    }

    /// After the server's Finished: the application traffic secrets and the epoch-3 keys of
    /// both directions.
    fn enter_application_epoch(&mut self, cx: &mut Context<'_>, client: bool) -> Result<(), Error> {
        let config: &Config = cx.config;
        let suite = self.suite.ok_or(Error::Crypto)?;
        let s = self.schedule(config)?;
        let master = self.master.as_ref().ok_or(Error::Crypto)?;
        let hash = self.hash()?;
        let traffic = master.traffic(&s, hash.as_bytes())?;
        self.log(config, "CLIENT_TRAFFIC_SECRET_0", &traffic.client);
        self.log(config, "SERVER_TRAFFIC_SECRET_0", &traffic.server);
        if config.key_log.is_some() || config.may_keep_exporter_secret() {
            let exporter = master.exporter(&s, hash.as_bytes())?;
            self.log(config, "EXPORTER_SECRET", &exporter);
            if config.may_keep_exporter_secret() {
                cx.push(Action::ExporterSecret(zeroize::Zeroizing::new(exporter.as_bytes().to_vec())));
            }
        }
        let provider = &*config.provider;
        let (ours, theirs) =
            if client { (&traffic.client, &traffic.server) } else { (&traffic.server, &traffic.client) };
        cx.push(Action::InstallKeys {
            epoch: EPOCH_APPLICATION,
            read: Some(epoch_keys(provider, suite, theirs)?),
            write: Some(epoch_keys(provider, suite, ours)?),
        });
        cx.push(Action::TrafficSecrets { read: theirs.clone(), write: ours.clone() });
        Ok(())
    }

    /// The content our CertificateVerify signs, over the transcript so far.
    fn signed_content(&self, server: bool) -> Result<Vec<u8>, Error> {
        Ok(crate::messages::tls13::certificate_verify_content(server, self.hash()?.as_bytes()))
    }

    /// Checks the peer's CertificateVerify (sent by the server when `server`) and adds it.
    fn check_certificate_verify(&mut self, config: &Config, msg: &Message, server: bool) -> Result<(), Error> {
        let mut r = Reader::new(&msg.body);
        let (scheme, sig) =
            crate::messages::parse_digitally_signed(&mut r).ok_or(Error::decode("CertificateVerify"))?;
        r.finish().ok_or(Error::decode("CertificateVerify"))?;
        if !SCHEMES.contains(&scheme) {
            return Err(Error::illegal("CertificateVerify with a scheme we did not offer"));
        }
        let ee = self.peer_ee.as_ref().ok_or(Error::unexpected("CertificateVerify without Certificate"))?;
        let content = self.signed_content(server)?;
        if !crate::pki::verify_signature(&*config.provider, ee, scheme, &content, sig, true) {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::DECRYPT_ERROR,
                reason: if server {
                    "CertificateVerify does not verify with the server's certificate"
                } else {
                    "CertificateVerify does not verify with the client's certificate"
                },
            });
        }
        self.add_received(msg);
        Ok(())
    }

    /// Our Certificate and, with a key, CertificateVerify.
    fn certificate_flight(
        &mut self,
        context: &[u8],
        cert: Option<(&crate::pki::CertifiedKey, SignatureScheme)>,
        server: bool,
        items: &mut Vec<FlightItem>,
    ) -> Result<(), Error> {
        let mut body = Vec::with_capacity(2048);
        write_certificate(&mut body, context, cert.map_or(&[][..], |(c, _)| c.chain()));
        items.push(self.outgoing(EPOCH_HANDSHAKE, HandshakeType::CERTIFICATE, body));
        if let Some((c, scheme)) = cert {
            let content = self.signed_content(server)?;
            let sig = c.key().sign(scheme, &content)?;
            let mut body = Vec::with_capacity(4 + sig.len());
            body.put_u16(scheme.0);
            body.put_vec16(&sig);
            items.push(self.outgoing(EPOCH_HANDSHAKE, HandshakeType::CERTIFICATE_VERIFY, body));
        }
        Ok(())
    }

    /// The handshake is complete.
    fn complete(&mut self, cx: &mut Context<'_>) {
        cx.push(Action::Complete { export_secret: None });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CertificateRequest with one extension besides signature_algorithms.
    fn request_with(ty: u16, ext: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.put_vec8(&[]);
        body.put_len16(|b| {
            put_extension(b, ExtensionType::SIGNATURE_ALGORITHMS, |b| b.put_len16(|b| b.put_u16(0x0403)));
            b.put_u16(ty);
            b.put_vec16(ext);
        });
        body
    }

    /// Found by BoGo (`RejectEmptyCertificateAuthorities`,
    /// `ExtensionTrailingData-CertificateAuthorities`): certificate_authorities is ignored, but
    /// an empty list or bytes after it make the request malformed (decode_error).
    #[test]
    fn a_malformed_certificate_authorities_list_refuses_the_request() {
        let ok = request_with(47, &[0, 5, 0, 3, 0x30, 1, 0]);
        assert_eq!(parse_certificate_request(&ok).map(|(_, s)| s), Some(vec![SignatureScheme(0x0403)]));
        for bad in [&[0u8, 0][..], &[0, 5, 0, 3, 0x30, 1, 0, 9], &[0, 2, 0, 0]] {
            assert!(parse_certificate_request(&request_with(47, bad)).is_none(), "{bad:?}");
        }
        // Other extensions are still ignored, whatever is in them.
        assert!(parse_certificate_request(&request_with(0x3a3a, &[1, 2, 3])).is_some());
    }

    /// EncryptedExtensions made of `(type, body)` pairs.
    fn encrypted_extensions(exts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        body.put_len16(|b| {
            for (ty, ext) in exts {
                b.put_u16(*ty);
                b.put_vec16(ext);
            }
        });
        body
    }

    /// A client configuration that offers these SRTP profiles and ALPN protocols.
    fn offering(srtp: &[SrtpProfile], alpn: &[&str]) -> Config {
        let b = Config::builder().psk("c", b"k".to_vec()).srtp_profiles(srtp).alpn_protocols(alpn);
        b.build().unwrap()
    }

    fn alert_of<T>(r: Result<T, Error>) -> Option<AlertDescription> {
        r.err().and_then(|e| e.alert_to_send())
    }

    /// Found by BoGo (`DuplicateExtensionClient-DTLS-TLS13`,
    /// `ExtensionTrailingData-ServerName-Client-DTLS-TLS13`): a duplicate is a decode_error
    /// even when the extension is one we would refuse anyway, and the server's name
    /// acknowledgement must be empty.
    #[test]
    fn encrypted_extensions_are_read_whole_before_they_are_judged() {
        let config = offering(&[], &[]);
        let parse = |exts: &[(u16, &[u8])], sent_sni| {
            parse_encrypted_extensions(&encrypted_extensions(exts), sent_sni, &config)
        };
        let sni_ack = ServerExtensions { sni_ack: true, ..ServerExtensions::default() };
        assert_eq!(parse(&[(0, &[])], true), Ok(sni_ack));
        assert_eq!(parse(&[], true), Ok(ServerExtensions::default()));
        assert_eq!(alert_of(parse(&[(0xffff, &[]), (0xffff, &[])], true)), Some(AlertDescription::DECODE_ERROR));
        assert_eq!(alert_of(parse(&[(0xffff, &[])], true)), Some(AlertDescription::UNSUPPORTED_EXTENSION));
        assert_eq!(alert_of(parse(&[(0, &[0])], true)), Some(AlertDescription::DECODE_ERROR));
        // A name we did not send is not acknowledged.
        assert_eq!(alert_of(parse(&[(0, &[])], false)), Some(AlertDescription::UNSUPPORTED_EXTENSION));
    }

    #[test]
    fn encrypted_extensions_carry_the_srtp_profile_only_when_offered() {
        let offered = [SrtpProfile::Aes128CmHmacSha1_80, SrtpProfile::AeadAes128Gcm];
        let srtp = |profile: u16, mki: &[u8]| {
            let mut b = Vec::new();
            UseSrtp { profiles: vec![profile], mki: mki.to_vec() }.emit(&mut b);
            b
        };
        let parse = |body: &[u8], offered: &[SrtpProfile]| {
            parse_encrypted_extensions(&encrypted_extensions(&[(14, body)]), false, &offering(offered, &[]))
        };
        assert_eq!(parse(&srtp(7, b""), &offered).map(|e| e.srtp), Ok(Some(SrtpProfile::AeadAes128Gcm)));
        assert_eq!(alert_of(parse(&srtp(7, b""), &[])), Some(AlertDescription::UNSUPPORTED_EXTENSION));
        assert_eq!(alert_of(parse(&srtp(2, b""), &offered)), Some(AlertDescription::ILLEGAL_PARAMETER));
        assert_eq!(alert_of(parse(&srtp(1, b"k"), &offered)), Some(AlertDescription::ILLEGAL_PARAMETER));
        assert_eq!(alert_of(parse(&[0, 1, 0], &offered)), Some(AlertDescription::DECODE_ERROR));
        let mut ee = Vec::new();
        write_encrypted_extensions(&mut ee, true, Some(&UseSrtp { profiles: vec![1], mki: Vec::new() }), None);
        let found = parse_encrypted_extensions(&ee, true, &offering(&offered, &[]));
        let srtp = Some(SrtpProfile::Aes128CmHmacSha1_80);
        assert_eq!(found, Ok(ServerExtensions { sni_ack: true, srtp, alpn: None }));
    }

    #[test]
    fn encrypted_extensions_carry_the_application_protocol_only_when_offered() {
        let config = offering(&[], &["coap", "mqtt"]);
        let mut ee = Vec::new();
        write_encrypted_extensions(&mut ee, false, None, crate::alpn::ProtocolList::new(&["mqtt"]).as_ref());
        let found = parse_encrypted_extensions(&ee, false, &config).map(|e| e.alpn);
        assert_eq!(found, Ok(Some(b"mqtt".to_vec())));
        let parse = |body: &[u8], config: &Config| {
            parse_encrypted_extensions(&encrypted_extensions(&[(16, body)]), false, config)
        };
        assert_eq!(
            alert_of(parse(b"\x00\x05\x04mqtt", &offering(&[], &[]))),
            Some(AlertDescription::UNSUPPORTED_EXTENSION)
        );
        assert_eq!(alert_of(parse(b"\x00\x03\x02h2", &config)), Some(AlertDescription::ILLEGAL_PARAMETER));
        let two = b"\x00\x0a\x04coap\x04mqtt";
        assert_eq!(alert_of(parse(two, &config)), Some(AlertDescription::DECODE_ERROR));
        assert_eq!(alert_of(parse(b"\x00\x01\x00", &config)), Some(AlertDescription::DECODE_ERROR));
    }
}
