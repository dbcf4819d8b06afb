//! The client side of the handshake: flights 1, 3 and 5.

use std::time::Instant;

use crate::codec::{Put, Reader};
use crate::config::{ExtendedMasterSecret, VerifyPeer, MAX_PSK_IDENTITY_LEN, MAX_PSK_LEN};
use crate::connection::{Connection, FlightItem};
use crate::crypto::KxGroup;
use crate::enums::{AlertDescription, HandshakeType, ProtocolVersion, SignatureScheme};
use crate::error::Error;
use crate::handshake::keys::{self, psk_premaster};
use crate::handshake::reassembly::Message;
use crate::handshake::{Expect, MAX_HELLO_VERIFY};
use crate::messages::{
    self, parse_certificate_list, parse_digitally_signed, write_certificate_list, write_message, CertificateRequest,
    ClientHello, HelloExtensions, ServerEcdhParams, ServerHello,
};
use crate::pki::{self, CertificateError, Purpose, ServerName};
use crate::suites::{CipherSuite, KeyExchange};

impl Connection {
    pub(crate) fn client_start(&mut self, now: Instant) -> Result<(), Error> {
        let Some(hs) = self.hs.as_deref_mut() else {
            return Err(Error::InvalidOperation("no handshake"));
        };
        self.config.provider.fill_random(&mut hs.client_random)?;
        let item = self.client_hello_item()?;
        self.start_flight(now, vec![item], true);
        Ok(())
    }

    /// The suites we offer: the configured ones we have credentials for. Certificate suites
    /// need trust anchors, unless the configuration does not require a verified server.
    fn offered_suites(&self) -> impl Iterator<Item = &'static CipherSuite> + '_ {
        let have_psk = self.config.client_psk.is_some();
        let can_verify = !self.config.roots.is_empty() || self.config.verify_peer != VerifyPeer::Required;
        self.config.cipher_suites.iter().copied().filter(move |s| {
            (!s.key_exchange.uses_psk() || have_psk) && (!s.key_exchange.uses_certificate() || can_verify)
        })
    }

    fn client_hello_item(&mut self) -> Result<FlightItem, Error> {
        let suites: Vec<u16> = self.offered_suites().map(|s| s.id).collect();
        if suites.is_empty() {
            return Err(Error::Config(
                "no cipher suite can be offered: configure a PSK, or trust anchors for certificate suites",
            ));
        }
        let ecdhe = self.offered_suites().any(|s| s.key_exchange.uses_ecdhe());
        let certs = self.offered_suites().any(|s| s.key_exchange.uses_certificate());
        let groups = &self.config.groups;
        let sni = match self.server_name() {
            Some(ServerName::DnsName(name)) => Some(name.as_ref().to_owned()),
            _ => None,
        };
        let Some(hs) = self.hs.as_deref_mut() else {
            return Err(Error::InvalidOperation("no handshake"));
        };
        let hello = ClientHello {
            client_version: ProtocolVersion::DTLS1_2,
            random: hs.client_random,
            session_id: hs.session_id.clone(),
            cookie: hs.cookie.clone(),
            cipher_suites: suites,
            compression_methods: vec![0],
            extensions: HelloExtensions {
                server_name: sni.map(String::into_bytes),
                extended_master_secret: true,
                renegotiation_info: Some(Vec::new()),
                supported_groups: ecdhe.then(|| groups.iter().map(|g| g.code_point()).collect()),
                ec_point_formats: ecdhe.then(|| vec![0]),
                signature_algorithms: certs.then(|| SignatureScheme::SUPPORTED.iter().map(|s| s.0).collect()),
                ..HelloExtensions::default()
            },
        };
        let mut body = Vec::with_capacity(256);
        hello.emit(&mut body);
        let seq = hs.next_send_seq;
        hs.next_send_seq += 1;
        hs.client_hello.clear();
        write_message(&mut hs.client_hello, HandshakeType::CLIENT_HELLO, seq, &body);
        Ok(FlightItem::Message { epoch: 0, msg_type: HandshakeType::CLIENT_HELLO, seq, body })
    }

    pub(crate) fn client_handle(&mut self, now: Instant, msg: Message) -> Result<(), Error> {
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        let kx = self.suite.map(|s| s.key_exchange);
        match (hs.expect, msg.msg_type) {
            (Expect::ServerHello, HandshakeType::HELLO_VERIFY_REQUEST) => {
                let (_version, cookie) =
                    messages::parse_hello_verify_request(&msg.body).ok_or(Error::decode("HelloVerifyRequest"))?;
                hs.hello_verify_count += 1;
                if hs.hello_verify_count > MAX_HELLO_VERIFY {
                    return Err(Error::unexpected("too many HelloVerifyRequests"));
                }
                if cookie.is_empty() {
                    return Err(Error::illegal("empty cookie in HelloVerifyRequest"));
                }
                hs.cookie = cookie.to_vec();
                let item = self.client_hello_item()?;
                self.start_flight(now, vec![item], true);
                Ok(())
            }
            (Expect::ServerHello, HandshakeType::SERVER_HELLO) => self.client_server_hello(&msg),
            (Expect::ServerCertificate, HandshakeType::CERTIFICATE) => self.client_server_certificate(&msg),
            (Expect::ServerKeyExchange, HandshakeType::SERVER_KEY_EXCHANGE) => self.client_server_key_exchange(&msg),
            (Expect::ServerKeyExchange, HandshakeType::SERVER_HELLO_DONE) if kx == Some(KeyExchange::Psk) => {
                self.client_server_hello_done(now, &msg)
            }
            (Expect::ServerHelloDone, HandshakeType::CERTIFICATE_REQUEST)
                if kx.is_some_and(KeyExchange::uses_certificate) && !hs.cert_requested =>
            {
                let req = CertificateRequest::parse(&msg.body).ok_or(Error::decode("CertificateRequest"))?;
                hs.cert_requested = true;
                hs.peer_schemes = req.signature_schemes;
                hs.add_received(msg.msg_type, msg.seq, &msg.body);
                Ok(())
            }
            (Expect::ServerHelloDone, HandshakeType::SERVER_HELLO_DONE) => self.client_server_hello_done(now, &msg),
            (Expect::ServerFinished, HandshakeType::FINISHED) => {
                let (Some(suite), Some(master)) = (self.suite, hs.master.as_ref()) else {
                    return Err(Error::unexpected("Finished before keys"));
                };
                let expected = keys::verify_data(&*self.config.provider, suite, master, false, hs.transcript.hash())?;
                if !crate::crypto::ct_eq(&expected, &msg.body) {
                    return Err(Error::PeerMisbehaved {
                        alert: AlertDescription::DECRYPT_ERROR,
                        reason: "server Finished does not verify",
                    });
                }
                self.complete(now);
                Ok(())
            }
            _ => Err(Error::unexpected("unexpected handshake message")),
        }
    }

    fn client_server_hello(&mut self, msg: &Message) -> Result<(), Error> {
        let sh = ServerHello::parse(&msg.body).ok_or(Error::decode("ServerHello"))?;
        if sh.server_version != ProtocolVersion::DTLS1_2 {
            return Err(Error::PeerIncompatible {
                alert: AlertDescription::PROTOCOL_VERSION,
                reason: "server chose a version other than DTLS 1.2",
            });
        }
        let suite = self
            .offered_suites()
            .find(|s| s.id == sh.cipher_suite)
            .ok_or(Error::illegal("server chose a cipher suite we did not offer"))?;
        if sh.compression_method != 0 {
            return Err(Error::illegal("server chose compression"));
        }
        if sh.extensions.renegotiation_info.as_ref().is_some_and(|ri| !ri.is_empty()) {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::HANDSHAKE_FAILURE,
                reason: "non-empty renegotiation_info in an initial handshake",
            });
        }
        // The server may only answer extensions we sent (RFC 5246 §7.4.1.4): the extended
        // master secret and renegotiation_info always, server_name when we sent a name, and
        // ec_point_formats when we offered ECDHE suites.
        let ext = &sh.extensions;
        let sent_sni = matches!(self.server_name(), Some(ServerName::DnsName(_)));
        let offered_ecdhe = self.offered_suites().any(|s| s.key_exchange.uses_ecdhe());
        if ext.supported_groups.is_some()
            || ext.signature_algorithms.is_some()
            || ext.encrypt_then_mac
            || !ext.others.is_empty()
            || (ext.server_name.is_some() && !sent_sni)
            || (ext.ec_point_formats.is_some() && !offered_ecdhe)
        {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::UNSUPPORTED_EXTENSION,
                reason: "server sent an extension we did not offer",
            });
        }
        if suite.key_exchange.uses_ecdhe() && sh.extensions.ec_point_formats.as_ref().is_some_and(|f| !f.contains(&0)) {
            return Err(Error::illegal("server does not accept uncompressed points"));
        }
        let ems = sh.extensions.extended_master_secret;
        if !ems && self.config.extended_master_secret == ExtendedMasterSecret::Require {
            return Err(Error::PeerIncompatible {
                alert: AlertDescription::HANDSHAKE_FAILURE,
                reason: "server does not support the extended master secret",
            });
        }
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        hs.server_random = sh.random;
        hs.session_id = sh.session_id;
        // The transcript starts with the ClientHello this ServerHello answers. Its bytes are
        // kept only if we may have to sign them (a certificate suite, and a certificate).
        let ch = core::mem::take(&mut hs.client_hello);
        hs.transcript.restart(&ch);
        hs.add_received(msg.msg_type, msg.seq, &msg.body);
        let may_sign = suite.key_exchange.uses_certificate() && self.config.client_cert.is_some();
        hs.transcript.start_hash(&*self.config.provider, suite.hash, may_sign);
        hs.expect =
            if suite.key_exchange.uses_certificate() { Expect::ServerCertificate } else { Expect::ServerKeyExchange };
        hs.peer_flight_start = Some(msg.seq);
        self.suite = Some(suite);
        self.extended_master_secret = ems;
        Ok(())
    }

    fn client_server_certificate(&mut self, msg: &Message) -> Result<(), Error> {
        let chain = parse_certificate_list(&msg.body).ok_or(Error::decode("Certificate"))?;
        if chain.is_empty() {
            // Without a certificate there is no key to check the ServerKeyExchange with.
            return Err(Error::PeerVerification(vec![CertificateError::NoPeerCertificate]));
        }
        let now = (self.config.time)();
        let mut errors = pki::verify_chain(
            &*self.config.provider,
            &self.config.roots,
            &chain,
            Purpose::Server(self.server_name()),
            now,
        );
        // Fail closed: a chain that verifies proves nothing about which server this is unless
        // its name was checked.
        if self.server_name().is_none() && !self.config.accept_any_server_name {
            errors.push(CertificateError::NoServerName);
        }
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        hs.add_received(msg.msg_type, msg.seq, &msg.body);
        hs.expect = Expect::ServerKeyExchange;
        self.set_peer_certificates(chain);
        self.check_peer(errors)
    }

    fn client_server_key_exchange(&mut self, msg: &Message) -> Result<(), Error> {
        let Some(suite) = self.suite else { return Err(Error::unexpected("ServerKeyExchange")) };
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        let mut r = Reader::new(&msg.body);
        if suite.key_exchange.uses_psk() {
            let hint = r.vec16().ok_or(Error::decode("ServerKeyExchange"))?;
            hs.psk_hint = (!hint.is_empty()).then(|| hint.to_vec());
        }
        if suite.key_exchange.uses_ecdhe() {
            let before = r.remaining();
            let params = ServerEcdhParams::parse(&mut r).ok_or(Error::decode("ServerKeyExchange"))?;
            let group = KxGroup::from_code_point(params.group)
                .filter(|g| self.config.groups.contains(g))
                .ok_or(Error::illegal("server chose a group we did not offer"))?;
            hs.group = Some(group);
            hs.peer_public = Some(params.public.to_vec());
            if suite.key_exchange.uses_certificate() {
                let start = msg.body.len() - before;
                let signed_params = &msg.body[start..start + (before - r.remaining())];
                let (scheme, sig) = parse_digitally_signed(&mut r).ok_or(Error::decode("ServerKeyExchange"))?;
                if !SignatureScheme::SUPPORTED.contains(&scheme)
                    || !scheme.key_type().is_some_and(|k| suite.key_exchange.accepts_key(k))
                {
                    return Err(Error::illegal("ServerKeyExchange signed with a scheme we did not offer"));
                }
                let mut signed = Vec::with_capacity(64 + signed_params.len());
                signed.extend_from_slice(&hs.client_random);
                signed.extend_from_slice(&hs.server_random);
                signed.extend_from_slice(signed_params);
                let Some(ee) = self.details.as_ref().and_then(|d| d.peer_certs.first()) else {
                    return Err(Error::unexpected("ServerKeyExchange before Certificate"));
                };
                if !pki::verify_signature(&*self.config.provider, ee, scheme, &signed, sig) {
                    return Err(Error::PeerMisbehaved {
                        alert: AlertDescription::DECRYPT_ERROR,
                        reason: "ServerKeyExchange signature does not verify with the server's certificate",
                    });
                }
            }
        }
        r.finish().ok_or(Error::decode("ServerKeyExchange"))?;
        hs.add_received(msg.msg_type, msg.seq, &msg.body);
        hs.expect = Expect::ServerHelloDone;
        Ok(())
    }

    fn client_server_hello_done(&mut self, now: Instant, msg: &Message) -> Result<(), Error> {
        if !msg.body.is_empty() {
            return Err(Error::decode("ServerHelloDone"));
        }
        let Some(suite) = self.suite else { return Err(Error::unexpected("ServerHelloDone")) };
        let client_cert = self.config.client_cert.clone();
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        hs.add_received(msg.msg_type, msg.seq, &msg.body);
        let mut items = Vec::with_capacity(5);

        // Our certificate, if asked for: ours when its key can sign with a scheme the server
        // accepts, otherwise an empty list (the server decides whether that is acceptable).
        let mut signer = None;
        if hs.cert_requested {
            let usable = client_cert.and_then(|c| c.key().choose_scheme(&hs.peer_schemes).map(|s| (c, s)));
            let mut body = Vec::new();
            match &usable {
                Some((c, _)) => write_certificate_list(&mut body, c.chain()),
                None => write_certificate_list(&mut body, &[]),
            }
            items.push(hs.outgoing(0, HandshakeType::CERTIFICATE, body));
            signer = usable;
        }

        let mut cke = Vec::with_capacity(128);
        let mut psk = None;
        if suite.key_exchange.uses_psk() {
            let callback = self.config.client_psk.clone().ok_or(Error::NoPsk)?;
            let creds = callback(hs.psk_hint.as_deref()).ok_or(Error::NoPsk)?;
            if creds.identity.len() > MAX_PSK_IDENTITY_LEN || creds.key.is_empty() || creds.key.len() > MAX_PSK_LEN {
                return Err(Error::Config("PSK identity or key length out of range"));
            }
            cke.put_vec16(&creds.identity);
            psk = Some(creds);
        }
        let shared = if suite.key_exchange.uses_ecdhe() {
            let (Some(group), Some(peer)) = (hs.group, hs.peer_public.take()) else {
                return Err(Error::unexpected("ECDHE without ServerKeyExchange"));
            };
            let kx = self.config.provider.start_key_exchange(group)?;
            cke.put_vec8(kx.public_key());
            Some(kx.complete(&peer).map_err(|_| Error::illegal("invalid server ECDH public key"))?)
        } else {
            None
        };
        let premaster = match &psk {
            Some(creds) => psk_premaster(shared.as_ref().map(|s| s.as_bytes()), &creds.key),
            None => zeroize::Zeroizing::new(shared.as_ref().map(|s| s.as_bytes().to_vec()).unwrap_or_default()),
        };
        items.push(hs.outgoing(0, HandshakeType::CLIENT_KEY_EXCHANGE, cke));

        // CertificateVerify signs every handshake message so far (RFC 5246 §7.4.8).
        let cert_verify = match signer {
            Some((cert, scheme)) => {
                let sig = cert.key().sign(scheme, hs.transcript.bytes().ok_or(Error::Crypto)?)?;
                let mut body = Vec::with_capacity(4 + sig.len());
                body.put_u16(scheme.0);
                body.put_vec16(&sig);
                Some(body)
            }
            None => None,
        };
        hs.transcript.release_bytes();
        // The extended master secret's session hash ends with ClientKeyExchange (RFC 7627 §3).
        self.psk_identity = psk.as_ref().map(|c| c.identity.clone());
        self.establish_keys(&premaster)?;
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        if let Some(body) = cert_verify {
            items.push(hs.outgoing(0, HandshakeType::CERTIFICATE_VERIFY, body));
        }

        let (Some(suite), Some(master)) = (self.suite, hs.master.as_ref()) else {
            return Err(Error::Crypto);
        };
        let verify = keys::verify_data(&*self.config.provider, suite, master, true, hs.transcript.hash())?;
        items.push(FlightItem::ChangeCipherSpec);
        items.push(hs.outgoing(1, HandshakeType::FINISHED, verify.to_vec()));
        hs.expect = Expect::ServerFinished;
        self.start_flight(now, items, true);
        self.epochs.set_write_epoch(1);
        Ok(())
    }
}
