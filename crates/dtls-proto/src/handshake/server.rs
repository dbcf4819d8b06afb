//! The server side of the handshake: flights 4 and 6 (flight 2 is the stateless
//! [`crate::ClientVerifier`]).

use std::sync::Arc;
use std::time::Instant;

use crate::codec::{Put, Reader};
use crate::config::{ClientAuth, ExtendedMasterSecret, MAX_PSK_IDENTITY_LEN, MAX_PSK_LEN};
use crate::connection::{Connection, FlightItem};
use crate::crypto::KxGroup;
use crate::enums::{AlertDescription, HandshakeType, ProtocolVersion, SignatureScheme};
use crate::error::Error;
use crate::handshake::keys::{self, psk_premaster};
use crate::handshake::reassembly::Message;
use crate::handshake::Expect;
use crate::messages::{
    parse_certificate_list, parse_digitally_signed, write_certificate_list, CertificateRequest, ClientHello,
    HelloExtensions, ServerEcdhParams, ServerHello,
};
use crate::pki::{self, CertificateError, CertifiedKey, Purpose};
use crate::suites::{CipherSuite, KeyExchange, TLS_EMPTY_RENEGOTIATION_INFO_SCSV};

/// What the server chose for a ClientHello.
struct Selection {
    suite: &'static CipherSuite,
    group: Option<KxGroup>,
    cert: Option<(Arc<CertifiedKey>, SignatureScheme)>,
    /// The client's SNI name chose the certificate.
    by_name: bool,
}

impl Connection {
    pub(crate) fn server_handle(&mut self, now: Instant, msg: Message) -> Result<(), Error> {
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        match (hs.expect, msg.msg_type) {
            (Expect::ClientHello, HandshakeType::CLIENT_HELLO) => self.server_client_hello(now, &msg),
            (Expect::ClientCertificate, HandshakeType::CERTIFICATE) => self.server_client_certificate(&msg),
            (Expect::ClientKeyExchange, HandshakeType::CLIENT_KEY_EXCHANGE) => self.server_client_key_exchange(&msg),
            (Expect::ClientCertificateVerify, HandshakeType::CERTIFICATE_VERIFY) => {
                self.server_certificate_verify(&msg)
            }
            (Expect::ClientFinished, HandshakeType::FINISHED) => self.server_client_finished(now, &msg),
            (Expect::ClientCertificateVerify, HandshakeType::FINISHED) => Err(Error::PeerMisbehaved {
                alert: AlertDescription::UNEXPECTED_MESSAGE,
                reason: "client sent a certificate but no CertificateVerify",
            }),
            _ => Err(Error::unexpected("unexpected handshake message")),
        }
    }

    /// Picks our most preferred suite that the client offers and we have credentials for.
    fn select(&self, ch: &ClientHello, sni: Option<&str>) -> Option<Selection> {
        let have_psk = self.config.server_psk.is_some();
        let hs_local_ip = self.hs.as_ref().and_then(|hs| hs.local_ip);
        let group = match &ch.extensions.supported_groups {
            Some(theirs) => self.config.groups.iter().copied().find(|g| theirs.contains(&g.code_point())),
            // No extension: the client accepts any group (RFC 8422 §4).
            None => self.config.groups.first().copied(),
        };
        let points_ok = ch.extensions.ec_point_formats.as_ref().is_none_or(|f| f.contains(&0));
        let schemes: Vec<SignatureScheme> = ch
            .extensions
            .signature_algorithms
            .as_ref()
            .map(|l| l.iter().map(|v| SignatureScheme(*v)).collect())
            .unwrap_or_default();
        self.config.cipher_suites.iter().copied().find_map(|suite| {
            let kx = suite.key_exchange;
            if !ch.cipher_suites.contains(&suite.id)
                || (kx.uses_psk() && !have_psk)
                || (kx.uses_ecdhe() && (group.is_none() || !points_ok))
            {
                return None;
            }
            let (cert, by_name) = if kx.uses_certificate() {
                let resolver = self.config.certs.as_ref()?;
                let usable =
                    |k: &CertifiedKey| kx.accepts_key(k.key_type()) && k.key().choose_scheme(&schemes).is_some();
                let (cert, by_name) = resolver.resolve(sni, hs_local_ip, usable)?;
                let scheme = cert.key().choose_scheme(&schemes)?;
                (Some((cert, scheme)), by_name)
            } else {
                (None, false)
            };
            Some(Selection { suite, group: group.filter(|_| kx.uses_ecdhe()), cert, by_name })
        })
    }

    fn server_client_hello(&mut self, now: Instant, msg: &Message) -> Result<(), Error> {
        let (ch, _) = ClientHello::parse(&msg.body).ok_or(Error::decode("ClientHello"))?;
        if !ch.client_version.is_dtls() || ch.client_version.0 > ProtocolVersion::DTLS1_2.0 {
            return Err(Error::PeerIncompatible {
                alert: AlertDescription::PROTOCOL_VERSION,
                reason: "client does not offer DTLS 1.2",
            });
        }
        if !ch.compression_methods.contains(&0) {
            return Err(Error::illegal("client does not offer null compression"));
        }
        if ch.extensions.renegotiation_info.as_ref().is_some_and(|ri| !ri.is_empty()) {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::HANDSHAKE_FAILURE,
                reason: "non-empty renegotiation_info in an initial handshake",
            });
        }
        let ems = ch.extensions.extended_master_secret;
        if !ems && self.config.extended_master_secret == ExtendedMasterSecret::Require {
            return Err(Error::PeerIncompatible {
                alert: AlertDescription::HANDSHAKE_FAILURE,
                reason: "client does not support the extended master secret",
            });
        }
        let sni = ch
            .extensions
            .server_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .and_then(|n| core::str::from_utf8(n).ok())
            .map(|n| n.trim_end_matches('.').to_owned());
        let Selection { suite, group, cert, by_name } =
            self.select(&ch, sni.as_deref()).ok_or(Error::PeerIncompatible {
                alert: AlertDescription::HANDSHAKE_FAILURE,
                reason: "no cipher suite in common (or no certificate for it)",
            })?;
        self.set_requested_server_name(sni);
        let secure_renegotiation =
            ch.extensions.renegotiation_info.is_some() || ch.cipher_suites.contains(&TLS_EMPTY_RENEGOTIATION_INFO_SCSV);
        let provider = self.config.provider.clone();
        let hint = self.config.psk_identity_hint.clone();
        let ask_for_cert = suite.key_exchange.uses_certificate() && self.config.client_auth != ClientAuth::None;
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        hs.client_random = ch.random;
        provider.fill_random(&mut hs.server_random)?;
        hs.secure_renegotiation = secure_renegotiation;
        hs.next_send_seq = msg.seq;
        hs.peer_flight_start = Some(msg.seq);
        hs.add_received(msg.msg_type, msg.seq, &msg.body);
        // The transcript's bytes are kept only if the client may sign them (CertificateVerify).
        hs.transcript.start_hash(&*provider, suite.hash, ask_for_cert);

        let hello = ServerHello {
            server_version: ProtocolVersion::DTLS1_2,
            random: hs.server_random,
            session_id: Vec::new(), // no session resumption
            cipher_suite: suite.id,
            compression_method: 0,
            extensions: HelloExtensions {
                renegotiation_info: secure_renegotiation.then(Vec::new),
                extended_master_secret: ems,
                ec_point_formats: (suite.key_exchange.uses_ecdhe() && ch.extensions.ec_point_formats.is_some())
                    .then(|| vec![0]),
                // The name chose our certificate: acknowledge it with an empty server_name (RFC
                // 6066 §3). Only then, as OpenSSL does: some clients (pion/dtls 2.x) abort on
                // an acknowledgement of a name the server did not use.
                server_name: by_name.then(Vec::new),
                ..HelloExtensions::default()
            },
        };
        let mut sh = Vec::with_capacity(96);
        hello.emit(&mut sh);
        let mut items = vec![hs.outgoing(0, HandshakeType::SERVER_HELLO, sh)];

        if let Some((c, _)) = &cert {
            let mut body = Vec::with_capacity(2048);
            write_certificate_list(&mut body, c.chain());
            items.push(hs.outgoing(0, HandshakeType::CERTIFICATE, body));
        }
        let mut ske = Vec::with_capacity(256);
        if suite.key_exchange.uses_psk() {
            ske.put_vec16(hint.as_deref().unwrap_or_default());
        }
        if let Some(group) = group {
            let kx = provider.start_key_exchange(group)?;
            let params_at = ske.len();
            ServerEcdhParams { group: group.code_point(), public: kx.public_key() }.write(&mut ske);
            if let Some((c, scheme)) = &cert {
                let mut signed = Vec::with_capacity(64 + ske.len() - params_at);
                signed.extend_from_slice(&hs.client_random);
                signed.extend_from_slice(&hs.server_random);
                signed.extend_from_slice(&ske[params_at..]);
                let sig = c.key().sign(*scheme, &signed)?;
                ske.put_u16(scheme.0);
                ske.put_vec16(&sig);
            }
            hs.kx = Some(kx);
            hs.group = Some(group);
        }
        // Plain PSK sends ServerKeyExchange only to carry a hint (RFC 4279 §2).
        if suite.key_exchange != KeyExchange::Psk || hint.is_some() {
            items.push(hs.outgoing(0, HandshakeType::SERVER_KEY_EXCHANGE, ske));
        }
        if ask_for_cert {
            let mut body = Vec::with_capacity(32);
            CertificateRequest {
                certificate_types: vec![CertificateRequest::ECDSA_SIGN, CertificateRequest::RSA_SIGN],
                signature_schemes: SignatureScheme::SUPPORTED.to_vec(),
            }
            .write(&mut body);
            items.push(hs.outgoing(0, HandshakeType::CERTIFICATE_REQUEST, body));
        }
        items.push(hs.outgoing(0, HandshakeType::SERVER_HELLO_DONE, Vec::new()));
        hs.expect = if ask_for_cert { Expect::ClientCertificate } else { Expect::ClientKeyExchange };
        hs.cert_requested = ask_for_cert;
        hs.cert = cert.map(|(c, _)| c);
        self.suite = Some(suite);
        self.extended_master_secret = ems;
        self.start_flight(now, items, true);
        Ok(())
    }

    fn server_client_certificate(&mut self, msg: &Message) -> Result<(), Error> {
        let chain = parse_certificate_list(&msg.body).ok_or(Error::decode("Certificate"))?;
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        hs.add_received(msg.msg_type, msg.seq, &msg.body);
        hs.peer_flight_start = Some(msg.seq);
        hs.expect = Expect::ClientKeyExchange;
        if chain.is_empty() {
            self.set_verification_errors(vec![CertificateError::NoPeerCertificate]);
            return match self.config.client_auth {
                ClientAuth::Required => Err(Error::PeerVerification(vec![CertificateError::NoPeerCertificate])),
                _ => Ok(()),
            };
        }
        let now = (self.config.time)();
        let errors = pki::verify_chain(&*self.config.provider, &self.config.roots, &chain, Purpose::Client, now);
        self.set_peer_certificates(chain);
        self.check_peer(errors)
    }

    fn server_client_key_exchange(&mut self, msg: &Message) -> Result<(), Error> {
        let Some(suite) = self.suite else { return Err(Error::unexpected("ClientKeyExchange")) };
        let mut r = Reader::new(&msg.body);
        let mut psk = None;
        if suite.key_exchange.uses_psk() {
            let identity = r.vec16().ok_or(Error::decode("ClientKeyExchange"))?;
            if identity.len() > MAX_PSK_IDENTITY_LEN {
                return Err(Error::illegal("PSK identity too long"));
            }
            psk = Some(identity);
        }
        let peer_public = if suite.key_exchange.uses_ecdhe() {
            Some(r.vec8().filter(|p| !p.is_empty()).ok_or(Error::decode("ClientKeyExchange"))?)
        } else {
            None
        };
        r.finish().ok_or(Error::decode("ClientKeyExchange"))?;
        let key = match psk {
            Some(identity) => {
                let callback = self.config.server_psk.clone().ok_or(Error::NoPsk)?;
                let key = callback(identity).ok_or(Error::UnknownPskIdentity)?;
                if key.is_empty() || key.len() > MAX_PSK_LEN {
                    return Err(Error::Config("PSK length out of range"));
                }
                self.psk_identity = Some(identity.to_vec());
                Some(key)
            }
            None => None,
        };
        let client_sent_cert = !self.peer_certificates().is_empty();
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        let shared = match peer_public {
            Some(p) => {
                let kx = hs.kx.take().ok_or(Error::Crypto)?;
                Some(kx.complete(p).map_err(|_| Error::illegal("invalid client ECDH public key"))?)
            }
            None => None,
        };
        let premaster = match &key {
            Some(k) => psk_premaster(shared.as_ref().map(|s| s.as_bytes()), k),
            None => zeroize::Zeroizing::new(shared.as_ref().map(|s| s.as_bytes().to_vec()).unwrap_or_default()),
        };
        hs.add_received(msg.msg_type, msg.seq, &msg.body);
        if !hs.cert_requested {
            // Without a CertificateRequest, the client's flight starts here.
            hs.peer_flight_start = Some(msg.seq);
        }
        hs.expect = if client_sent_cert { Expect::ClientCertificateVerify } else { Expect::ClientFinished };
        self.establish_keys(&premaster)
    }

    fn server_certificate_verify(&mut self, msg: &Message) -> Result<(), Error> {
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        let mut r = Reader::new(&msg.body);
        let (scheme, sig) = parse_digitally_signed(&mut r).ok_or(Error::decode("CertificateVerify"))?;
        r.finish().ok_or(Error::decode("CertificateVerify"))?;
        if !SignatureScheme::SUPPORTED.contains(&scheme) {
            return Err(Error::illegal("CertificateVerify with a scheme we did not offer"));
        }
        let Some(ee) = self.details.as_ref().and_then(|d| d.peer_certs.first()) else {
            return Err(Error::unexpected("CertificateVerify"));
        };
        let signed = hs.transcript.bytes().ok_or(Error::Crypto)?;
        if !pki::verify_signature(&*self.config.provider, ee, scheme, signed, sig) {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::DECRYPT_ERROR,
                reason: "CertificateVerify does not verify with the client's certificate",
            });
        }
        hs.add_received(msg.msg_type, msg.seq, &msg.body);
        hs.transcript.release_bytes();
        hs.expect = Expect::ClientFinished;
        Ok(())
    }

    fn server_client_finished(&mut self, now: Instant, msg: &Message) -> Result<(), Error> {
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        let (Some(suite), Some(master)) = (self.suite, hs.master.clone()) else {
            return Err(Error::unexpected("Finished before keys"));
        };
        let provider = &*self.config.provider;
        let expected = keys::verify_data(provider, suite, &master, true, hs.transcript.hash())?;
        if !crate::crypto::ct_eq(&expected, &msg.body) {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::DECRYPT_ERROR,
                reason: "client Finished does not verify",
            });
        }
        hs.add_received(msg.msg_type, msg.seq, &msg.body);
        let verify = keys::verify_data(provider, suite, &master, false, hs.transcript.hash())?;
        let fin = hs.outgoing(1, HandshakeType::FINISHED, verify.to_vec());
        self.start_flight(now, vec![FlightItem::ChangeCipherSpec, fin], false);
        self.epochs.set_write_epoch(1);
        self.complete(now);
        Ok(())
    }
}
