//! The server side of the DTLS 1.2 handshake: flights 4 and 6 (flight 2 is the stateless
//! [`crate::ClientVerifier`]).

use std::net::IpAddr;
use std::sync::Arc;

use crate::codec::{Put, Reader};
use crate::config::{ClientAuth, Config, ExtendedMasterSecret, MAX_PSK_IDENTITY_LEN, MAX_PSK_LEN};
use crate::crypto::{ActiveKeyExchange, KxGroup};
use crate::enums::{AlertDescription, HandshakeType, ProtocolVersion, Side, SignatureScheme};
use crate::error::Error;
use crate::handshake::reassembly::Message;
use crate::handshake::{Action, Context};
use crate::messages::tls13::SupportedVersions;
use crate::messages::{
    parse_certificate_list, parse_digitally_signed, write_certificate_list, CertificateRequest, ClientHello,
    HelloExtensions, ServerEcdhParams, ServerHello,
};
use crate::pki::{self, CertifiedKey, RootStore};
use crate::suites::{CipherSuite, KeyExchange, TLS_EMPTY_RENEGOTIATION_INFO_SCSV};

use super::keys::psk_premaster;
use super::Common;

/// The message(s) the server expects next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Expect {
    /// The (verified) ClientHello.
    #[default]
    ClientHello,
    /// The client's Certificate (when we asked for one).
    Certificate,
    /// ClientKeyExchange.
    ClientKeyExchange,
    /// CertificateVerify (the client sent a certificate).
    CertificateVerify,
    /// The client's ChangeCipherSpec and Finished.
    Finished,
}

/// A DTLS 1.2 server handshake.
#[derive(Default)]
pub(crate) struct Server {
    pub(super) common: Common,
    pub(super) expect: Expect,
    /// The local address the client reached us on (for `ipcert`).
    local_ip: Option<IpAddr>,
    /// The endpoint checked the ClientHello's cookie (with cookie verification on, every one
    /// was).
    pub(in crate::handshake) cookie_verified: bool,
    kx: Option<Box<dyn ActiveKeyExchange>>,
    /// We asked for a client certificate.
    cert_requested: bool,
    /// The anchors that verify the client's certificate when its SNI name has its own.
    client_roots: Option<Arc<RootStore>>,
    /// What resumption needs: the session ID we gave, whether a ticket goes with our last
    /// flight, and what the session keeps.
    pub(super) resumption: super::resume::ServerResumption,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("common", &self.common)
            .field("expect", &self.expect)
            .field("local_ip", &self.local_ip)
            .field("cert_requested", &self.cert_requested)
            .finish_non_exhaustive()
    }
}

/// What the server chose for a ClientHello.
struct Selection {
    suite: &'static CipherSuite,
    group: Option<KxGroup>,
    cert: Option<(Arc<CertifiedKey>, SignatureScheme)>,
    /// The client's SNI name chose the certificate.
    by_name: bool,
}

impl Server {
    pub(crate) fn awaits_client_hello(&self) -> bool {
        self.expect == Expect::ClientHello
    }

    pub(crate) fn local_ip(&self) -> Option<IpAddr> {
        self.local_ip
    }

    pub(crate) fn set_local_ip(&mut self, ip: IpAddr) {
        self.local_ip = Some(ip);
    }

    pub(crate) fn peer_ccs(&self) -> bool {
        self.common.peer_ccs
    }

    pub(crate) fn handle_change_cipher_spec(&mut self) {
        self.common.handle_change_cipher_spec();
    }

    pub(crate) fn handle(&mut self, cx: &mut Context<'_>, msg: Message) -> Result<(), Error> {
        match (self.expect, msg.msg_type) {
            (Expect::ClientHello, HandshakeType::CLIENT_HELLO) => self.client_hello(cx, &msg),
            (Expect::Certificate, HandshakeType::CERTIFICATE) => self.certificate(cx, &msg),
            (Expect::ClientKeyExchange, HandshakeType::CLIENT_KEY_EXCHANGE) => self.client_key_exchange(cx, &msg),
            (Expect::CertificateVerify, HandshakeType::CERTIFICATE_VERIFY) => self.certificate_verify(cx, &msg),
            (Expect::Finished, HandshakeType::FINISHED) if self.resumption.resumed => {
                // An abbreviated handshake: our Finished went first.
                self.common.check_finished(cx.config, &msg, true)?;
                self.common.complete(cx);
                Ok(())
            }
            (Expect::Finished, HandshakeType::FINISHED) => {
                let config: &Config = cx.config;
                self.common.check_finished(config, &msg, true)?;
                let mut items = Vec::with_capacity(3);
                if let Some(ticket) = self.new_session_ticket(cx)? {
                    items.push(ticket);
                }
                items.extend(self.common.finished(config, false)?);
                self.cache_session(cx);
                cx.push(Action::Send { items, awaits_reply: false });
                cx.push(Action::WriteEpoch(1));
                self.common.complete(cx);
                Ok(())
            }
            (Expect::CertificateVerify, HandshakeType::FINISHED) => Err(Error::PeerMisbehaved {
                alert: AlertDescription::UNEXPECTED_MESSAGE,
                reason: "client sent a certificate but no CertificateVerify",
            }),
            _ => Err(Error::unexpected("unexpected handshake message")),
        }
    }

    /// Picks our most preferred suite that the client offers and we have credentials for.
    fn select(&self, config: &Config, ch: &ClientHello, sni: Option<&str>) -> Option<Selection> {
        let have_psk = config.server_psk.is_some();
        let group = match &ch.extensions.supported_groups {
            Some(theirs) => config.groups12().find(|g| theirs.contains(&g.code_point())),
            // No extension: the client accepts any group (RFC 8422 §4).
            None => config.groups12().next(),
        };
        let points_ok = ch.extensions.ec_point_formats.as_ref().is_none_or(|f| f.contains(&0));
        let schemes: Vec<SignatureScheme> = ch
            .extensions
            .signature_algorithms
            .as_ref()
            .map(|l| l.iter().map(|v| SignatureScheme(*v)).collect())
            .unwrap_or_default();
        config.suites_for(crate::enums::Protocol::Dtls1_2).find_map(|suite| {
            let kx = suite.key_exchange;
            if !ch.cipher_suites.contains(&suite.id)
                || (kx.uses_psk() && !have_psk)
                || (kx.uses_ecdhe() && (group.is_none() || !points_ok))
            {
                return None;
            }
            let (cert, by_name) = if kx.uses_certificate() {
                let resolver = config.certs.as_ref()?;
                let usable =
                    |k: &CertifiedKey| kx.accepts_key(k.key_type()) && k.key().choose_scheme(&schemes).is_some();
                let (cert, by_name) = resolver.resolve(sni, self.local_ip, usable)?;
                let scheme = cert.key().choose_scheme(&schemes)?;
                (Some((cert, scheme)), by_name)
            } else {
                (None, false)
            };
            Some(Selection { suite, group: group.filter(|_| kx.uses_ecdhe()), cert, by_name })
        })
    }

    fn client_hello(&mut self, cx: &mut Context<'_>, msg: &Message) -> Result<(), Error> {
        let config: &Config = cx.config;
        let (ch, _) = ClientHello::parse(&msg.body).ok_or(Error::decode("ClientHello"))?;
        // With supported_versions, only it counts (RFC 8446 §4.2.1); without, any
        // client_version from DTLS 1.2 up (smaller numbers: versions count down) gets 1.2.
        let offers_12 = match &ch.extensions.tls13.supported_versions {
            Some(SupportedVersions::Offered(versions)) => versions.contains(&ProtocolVersion::DTLS1_2),
            _ => ch.client_version.0 <= ProtocolVersion::DTLS1_2.0,
        };
        if !offers_12 || !config.enables(crate::enums::Protocol::Dtls1_2) {
            return Err(Error::PeerIncompatible {
                alert: AlertDescription::PROTOCOL_VERSION,
                reason: "client does not offer DTLS 1.2",
            });
        }
        if !ch.compression_methods.contains(&0) {
            return Err(Error::illegal("client does not offer null compression"));
        }
        let sni = super::super::requested_name(&ch);
        // A client we cannot serve is refused before anything of the handshake is kept.
        let alpn = crate::alpn::choose(config, ch.extensions.alpn.as_ref(), sni.as_deref())?;
        if ch.extensions.renegotiation_info.as_ref().is_some_and(|ri| !ri.is_empty()) {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::HANDSHAKE_FAILURE,
                reason: "non-empty renegotiation_info in an initial handshake",
            });
        }
        let ems = ch.extensions.extended_master_secret;
        if !ems && config.extended_master_secret == ExtendedMasterSecret::Require {
            return Err(Error::PeerIncompatible {
                alert: AlertDescription::HANDSHAKE_FAILURE,
                reason: "client does not support the extended master secret",
            });
        }
        if let Some(session) = self.find_session(config, &ch, sni.as_deref())? {
            return self.resume(cx, msg, &ch, session, sni, alpn);
        }
        let Selection { suite, group, cert, by_name } =
            self.select(config, &ch, sni.as_deref()).ok_or(Error::PeerIncompatible {
                alert: AlertDescription::HANDSHAKE_FAILURE,
                reason: "no cipher suite in common (or no certificate for it)",
            })?;
        if by_name {
            let resolver = config.certs.as_ref();
            self.client_roots = sni.as_deref().and_then(|n| resolver.and_then(|r| r.client_roots(n)));
        }
        self.resumption.sni.clone_from(&sni);
        cx.push(Action::RequestedServerName(sni));
        if let Some(group) = group {
            cx.push(Action::Group(group));
        }
        let extensions = self.hello_extensions(cx, &ch, alpn);
        let provider = &*config.provider;
        let hint = config.psk_identity_hint.as_deref();
        let ask_for_cert = suite.key_exchange.uses_certificate() && config.client_auth != ClientAuth::None;
        if config.session_cache().is_some() {
            // A name for the session, to resume it by.
            let mut id = vec![0; 32];
            provider.fill_random(&mut id)?;
            self.resumption.session_id = id;
        }
        // The transcript's bytes are kept only if the client may sign them (CertificateVerify).
        self.start_server_hello(cx, msg, &ch, suite, ask_for_cert)?;
        let common = &mut self.common;

        let hello = ServerHello {
            server_version: ProtocolVersion::DTLS1_2,
            random: common.server_random,
            session_id: self.resumption.session_id.clone(),
            cipher_suite: suite.id,
            compression_method: 0,
            extensions: HelloExtensions {
                ec_point_formats: (suite.key_exchange.uses_ecdhe() && ch.extensions.ec_point_formats.is_some())
                    .then(|| vec![0]),
                // The name chose our certificate: acknowledge it with an empty server_name (RFC
                // 6066 §3). Only then, as OpenSSL does: some clients (pion/dtls 2.x) abort on
                // an acknowledgement of a name the server did not use.
                server_name: by_name.then(Vec::new),
                ..extensions
            },
        };
        let mut sh = Vec::with_capacity(96);
        hello.emit(&mut sh);
        let mut items = vec![common.outgoing(0, HandshakeType::SERVER_HELLO, sh)];

        if let Some((c, _)) = &cert {
            let mut body = Vec::with_capacity(2048);
            write_certificate_list(&mut body, c.chain());
            items.push(common.outgoing(0, HandshakeType::CERTIFICATE, body));
        }
        let mut ske = Vec::with_capacity(256);
        if suite.key_exchange.uses_psk() {
            ske.put_vec16(hint.unwrap_or_default());
        }
        if let Some(group) = group {
            let kx = provider.start_key_exchange(group)?;
            let params_at = ske.len();
            ServerEcdhParams { group: group.code_point(), public: kx.public_key() }.write(&mut ske);
            if let Some((c, scheme)) = &cert {
                let mut signed = Vec::with_capacity(64 + ske.len() - params_at);
                signed.extend_from_slice(&common.client_random);
                signed.extend_from_slice(&common.server_random);
                signed.extend_from_slice(&ske[params_at..]);
                let sig = c.key().sign(*scheme, &signed)?;
                ske.put_u16(scheme.0);
                ske.put_vec16(&sig);
            }
            self.kx = Some(kx);
        }
        // Plain PSK sends ServerKeyExchange only to carry a hint (RFC 4279 §2).
        if suite.key_exchange != KeyExchange::Psk || hint.is_some() {
            items.push(common.outgoing(0, HandshakeType::SERVER_KEY_EXCHANGE, ske));
        }
        if ask_for_cert {
            let mut body = Vec::with_capacity(32);
            CertificateRequest {
                certificate_types: vec![CertificateRequest::ECDSA_SIGN, CertificateRequest::RSA_SIGN],
                signature_schemes: SignatureScheme::SUPPORTED.to_vec(),
            }
            .write(&mut body);
            items.push(common.outgoing(0, HandshakeType::CERTIFICATE_REQUEST, body));
        }
        items.push(common.outgoing(0, HandshakeType::SERVER_HELLO_DONE, Vec::new()));
        self.expect = if ask_for_cert { Expect::Certificate } else { Expect::ClientKeyExchange };
        self.cert_requested = ask_for_cert;
        common.negotiated(cx, suite, ems);
        cx.push(Action::Send { items, awaits_reply: true });
        Ok(())
    }

    /// What both kinds of handshake do before their ServerHello: the randoms (ours with the
    /// downgrade sentinel when we could have done DTLS 1.3, RFC 8446 §4.1.3), the message
    /// sequence, and the transcript from the ClientHello, hashed with the suite's hash (its
    /// bytes kept too if `keep_bytes`: a CertificateVerify will sign them).
    pub(super) fn start_server_hello(
        &mut self,
        cx: &mut Context<'_>,
        msg: &Message,
        ch: &ClientHello,
        suite: &CipherSuite,
        keep_bytes: bool,
    ) -> Result<(), Error> {
        let config: &Config = cx.config;
        let common = &mut self.common;
        common.client_random = ch.random;
        config.provider.fill_random(&mut common.server_random)?;
        if config.enables(crate::enums::Protocol::Dtls1_3) {
            common.server_random[24..].copy_from_slice(&crate::handshake::tls13::DOWNGRADE_SENTINEL);
        }
        common.next_send_seq = msg.seq;
        cx.push(Action::PeerFlightStarts(msg.seq));
        common.add_received(msg);
        common.transcript.start_hash(&*config.provider, suite.hash, keep_bytes);
        Ok(())
    }

    /// The ServerHello extensions of both kinds of handshake: secure renegotiation, the
    /// extended master secret, a connection ID and return routability when both ask for them
    /// (RFC 9146 §3), the SRTP profile (RFC 5764), the application protocol `alpn` chosen
    /// when the ClientHello was first judged (RFC 7301), and the promise of a ticket. Records
    /// the connection ID, RRC, SRTP and ALPN agreements.
    pub(super) fn hello_extensions(
        &mut self,
        cx: &mut Context<'_>,
        ch: &ClientHello,
        alpn: Option<Vec<u8>>,
    ) -> HelloExtensions {
        if let (Some(theirs), Some(_)) = (&ch.extensions.connection_id, cx.own_cid) {
            cx.push(Action::PeerConnectionId(theirs.clone()));
        }
        let rrc = cx.accept_rrc(&ch.extensions);
        let srtp = cx.accept_srtp(&ch.extensions);
        let alpn = cx.agree_alpn(alpn);
        let secure_renegotiation =
            ch.extensions.renegotiation_info.is_some() || ch.cipher_suites.contains(&TLS_EMPTY_RENEGOTIATION_INFO_SCSV);
        self.resumption.issue_ticket = ch.extensions.session_ticket.is_some() && cx.config.ticket_keys().is_some();
        HelloExtensions {
            renegotiation_info: secure_renegotiation.then(Vec::new),
            extended_master_secret: ch.extensions.extended_master_secret,
            connection_id: ch.extensions.connection_id.as_ref().and(cx.own_cid).map(<[u8]>::to_vec),
            rrc,
            use_srtp: srtp,
            alpn,
            session_ticket: self.resumption.issue_ticket.then(Vec::new),
            ..HelloExtensions::default()
        }
    }

    fn certificate(&mut self, cx: &mut Context<'_>, msg: &Message) -> Result<(), Error> {
        let chain = parse_certificate_list(&msg.body).ok_or(Error::decode("Certificate"))?;
        self.common.add_received(msg);
        cx.push(Action::PeerFlightStarts(msg.seq));
        self.expect = Expect::ClientKeyExchange;
        let (ee, trusted) = crate::handshake::check_client_chain(cx, self.client_roots.as_deref(), chain)?;
        self.common.peer_ee = ee;
        self.resumption.peer_untrusted = !trusted;
        Ok(())
    }

    fn client_key_exchange(&mut self, cx: &mut Context<'_>, msg: &Message) -> Result<(), Error> {
        let config: &Config = cx.config;
        let Some(suite) = self.common.suite else { return Err(Error::unexpected("ClientKeyExchange")) };
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
                let callback = config.server_psk.clone().ok_or(Error::NoPsk)?;
                let key = callback(identity).ok_or(Error::UnknownPskIdentity)?;
                if key.is_empty() || key.len() > MAX_PSK_LEN {
                    return Err(Error::Config("PSK length out of range"));
                }
                cx.push(Action::PskIdentity(identity.to_vec()));
                self.resumption.psk_identity = Some(identity.to_vec());
                Some(key)
            }
            None => None,
        };
        let shared = match peer_public {
            Some(p) => {
                let kx = self.kx.take().ok_or(Error::Crypto)?;
                Some(kx.complete(p).map_err(|_| Error::illegal("invalid client ECDH public key"))?)
            }
            None => None,
        };
        let premaster = match &key {
            Some(k) => psk_premaster(shared.as_ref().map(|s| s.as_bytes()), k),
            None => zeroize::Zeroizing::new(shared.as_ref().map(|s| s.as_bytes().to_vec()).unwrap_or_default()),
        };
        self.common.add_received(msg);
        if !self.cert_requested {
            // Without a CertificateRequest, the client's flight starts here.
            cx.push(Action::PeerFlightStarts(msg.seq));
        }
        self.expect = if self.common.peer_ee.is_some() { Expect::CertificateVerify } else { Expect::Finished };
        self.common.establish_keys(cx, &premaster, Side::Server)
    }

    fn certificate_verify(&mut self, cx: &mut Context<'_>, msg: &Message) -> Result<(), Error> {
        let config: &Config = cx.config;
        let mut r = Reader::new(&msg.body);
        let (scheme, sig) = parse_digitally_signed(&mut r).ok_or(Error::decode("CertificateVerify"))?;
        r.finish().ok_or(Error::decode("CertificateVerify"))?;
        if !SignatureScheme::SUPPORTED.contains(&scheme) {
            return Err(Error::illegal("CertificateVerify with a scheme we did not offer"));
        }
        let Some(ee) = &self.common.peer_ee else {
            return Err(Error::unexpected("CertificateVerify"));
        };
        let signed = self.common.transcript.bytes().ok_or(Error::Crypto)?;
        if !pki::verify_signature(&*config.provider, ee, scheme, signed, sig, false) {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::DECRYPT_ERROR,
                reason: "CertificateVerify does not verify with the client's certificate",
            });
        }
        self.common.add_received(msg);
        self.common.transcript.release_bytes();
        self.expect = Expect::Finished;
        Ok(())
    }
}
