//! The client side of the DTLS 1.2 handshake: flights 1, 3 and 5.

use crate::codec::{Put, Reader};
use crate::config::{Config, ExtendedMasterSecret, VerifyPeer, MAX_PSK_IDENTITY_LEN, MAX_PSK_LEN};
use crate::crypto::KxGroup;
use crate::enums::{AlertDescription, HandshakeType, ProtocolVersion, Side, SignatureScheme};
use crate::error::Error;
use crate::handshake::reassembly::Message;
use crate::handshake::MAX_HELLO_VERIFY;
use crate::handshake::{Action, Context, FlightItem};
use crate::messages::{
    self, parse_certificate_list, parse_digitally_signed, write_certificate_list, write_message, CertificateRequest,
    ClientHello, HelloExtensions, ServerEcdhParams, ServerHello,
};
use crate::pki::{self, ServerName};
use crate::suites::{CipherSuite, KeyExchange};

use super::keys::psk_premaster;
use super::resume::ClientResumption;
use super::Common;

/// The message(s) the client expects next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// ServerHello, or HelloVerifyRequest.
    ServerHello,
    /// The server's Certificate (certificate suites).
    Certificate,
    /// ServerKeyExchange (optional for plain PSK), or ServerHelloDone.
    ServerKeyExchange,
    /// CertificateRequest or ServerHelloDone.
    ServerHelloDone,
    /// The NewSessionTicket the server promised.
    NewSessionTicket,
    /// The server's ChangeCipherSpec and Finished.
    Finished,
}

/// A DTLS 1.2 client handshake.
#[derive(Debug)]
pub(crate) struct Client {
    common: Common,
    expect: Expect,
    /// The name the server's certificate must be valid for (and the SNI we send).
    server_name: Option<ServerName<'static>>,
    /// The session we offer and the one we make.
    resumption: ClientResumption,
    /// The cookie from the last HelloVerifyRequest.
    cookie: Vec<u8>,
    hello_verify_count: u8,
    /// The last ClientHello sent, with its header; it starts the transcript once the
    /// ServerHello shows which ClientHello the server answered.
    client_hello: Vec<u8>,
    group: Option<KxGroup>,
    psk_hint: Option<Vec<u8>>,
    peer_public: Option<Vec<u8>>,
    /// The schemes the server's CertificateRequest accepts.
    peer_schemes: Vec<SignatureScheme>,
    /// The server asked for a certificate.
    cert_requested: bool,
}

/// The DTLS 1.2 suites we offer: the configured ones we have credentials for. Certificate
/// suites need trust anchors, unless the configuration does not require a verified server.
pub(crate) fn offered_suites(config: &Config) -> impl Iterator<Item = &'static CipherSuite> + Clone + '_ {
    let have_psk = config.client_psk.is_some();
    let can_verify = !config.roots.is_empty() || config.verify_peer != VerifyPeer::Required;
    let have_group = config.groups12().next().is_some();
    config.suites_for(crate::enums::Protocol::Dtls1_2).filter(move |s| {
        (!s.key_exchange.uses_psk() || have_psk)
            && (!s.key_exchange.uses_certificate() || can_verify)
            && (!s.key_exchange.uses_ecdhe() || have_group)
    })
}

impl Client {
    /// Starts the handshake: the ClientHello is the first flight. It offers `session` if the
    /// configuration can resume it.
    pub(crate) fn start(
        cx: &mut Context<'_>,
        server_name: Option<ServerName<'static>>,
        session: Option<crate::resumption::Session>,
        keep: bool,
    ) -> Result<Self, Error> {
        let mut client = Self {
            common: Common::default(),
            expect: Expect::ServerHello,
            server_name,
            resumption: ClientResumption::default(),
            cookie: Vec::new(),
            hello_verify_count: 0,
            client_hello: Vec::new(),
            group: None,
            psk_hint: None,
            peer_public: None,
            peer_schemes: Vec::new(),
            cert_requested: false,
        };
        cx.config.provider.fill_random(&mut client.common.client_random)?;
        client.resumption = ClientResumption::offering(cx, session, client.server_name.as_ref(), keep)?;
        client.send_client_hello(cx)?;
        Ok(client)
    }

    /// A client whose ClientHello (`hello`, the whole message with its header) was sent by a
    /// DTLS 1.3 client that also offered DTLS 1.2, and answered in 1.2: it continues from
    /// the ServerHello.
    pub(crate) fn after_hello(
        client_random: [u8; 32],
        hello: Vec<u8>,
        cookie: Vec<u8>,
        server_name: Option<ServerName<'static>>,
        next_send_seq: u16,
        resumption: ClientResumption,
    ) -> Self {
        let mut client = Self {
            common: Common::default(),
            expect: Expect::ServerHello,
            server_name,
            resumption: ClientResumption::default(),
            cookie,
            hello_verify_count: 0,
            client_hello: hello,
            group: None,
            psk_hint: None,
            peer_public: None,
            peer_schemes: Vec::new(),
            cert_requested: false,
        };
        client.common.client_random = client_random;
        client.common.next_send_seq = next_send_seq;
        client.resumption = resumption;
        client
    }

    pub(crate) fn peer_ccs(&self) -> bool {
        self.common.peer_ccs
    }

    pub(crate) fn handle_change_cipher_spec(&mut self) {
        self.common.handle_change_cipher_spec();
    }

    fn sends_sni(&self) -> Option<&str> {
        match &self.server_name {
            Some(ServerName::DnsName(name)) => Some(name.as_ref()),
            _ => None,
        }
    }

    fn send_client_hello(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        let config: &Config = cx.config;
        let suites: Vec<u16> = offered_suites(config).map(|s| s.id).collect();
        if suites.is_empty() {
            return Err(Error::Config(
                "no cipher suite can be offered: configure a PSK, or trust anchors for certificate suites",
            ));
        }
        let ecdhe = offered_suites(config).any(|s| s.key_exchange.uses_ecdhe());
        let certs = offered_suites(config).any(|s| s.key_exchange.uses_certificate());
        let hello = ClientHello {
            client_version: ProtocolVersion::DTLS1_2,
            random: self.common.client_random,
            session_id: self.resumption.session_id.clone(),
            cookie: self.cookie.clone(),
            cipher_suites: suites,
            compression_methods: vec![0],
            extensions: HelloExtensions {
                server_name: self.sends_sni().map(|n| n.as_bytes().to_vec()),
                extended_master_secret: true,
                renegotiation_info: Some(Vec::new()),
                supported_groups: ecdhe.then(|| config.groups12().map(|g| g.code_point()).collect()),
                ec_point_formats: ecdhe.then(|| vec![0]),
                signature_algorithms: certs.then(|| SignatureScheme::SUPPORTED.iter().map(|s| s.0).collect()),
                connection_id: cx.own_cid.map(<[u8]>::to_vec),
                rrc: cx.offers_rrc(),
                use_srtp: crate::srtp::UseSrtp::offer(&config.srtp_profiles),
                alpn: crate::alpn::ProtocolList::new(&config.alpn_protocols),
                session_ticket: self.resumption.ticket_extension(),
                ..HelloExtensions::default()
            },
        };
        let mut body = Vec::with_capacity(256);
        hello.emit(&mut body);
        // Not in the transcript yet: which ClientHello it starts with is known at ServerHello.
        let seq = self.common.next_send_seq;
        self.common.next_send_seq += 1;
        self.client_hello.clear();
        write_message(&mut self.client_hello, HandshakeType::CLIENT_HELLO, seq, &body);
        let item = FlightItem::Message { epoch: 0, msg_type: HandshakeType::CLIENT_HELLO, seq, body };
        cx.push(Action::Send { items: vec![item], awaits_reply: true });
        Ok(())
    }

    pub(crate) fn handle(&mut self, cx: &mut Context<'_>, msg: Message) -> Result<(), Error> {
        let kx = self.common.suite.map(|s| s.key_exchange);
        match (self.expect, msg.msg_type) {
            (Expect::ServerHello, HandshakeType::HELLO_VERIFY_REQUEST) => {
                let (_version, cookie) =
                    messages::parse_hello_verify_request(&msg.body).ok_or(Error::decode("HelloVerifyRequest"))?;
                self.hello_verify_count += 1;
                if self.hello_verify_count > MAX_HELLO_VERIFY {
                    return Err(Error::unexpected("too many HelloVerifyRequests"));
                }
                // An empty cookie is allowed (RFC 6347 §4.2.1: `cookie<0..2^8-1>`): it is sent
                // back as it came; MAX_HELLO_VERIFY bounds how often.
                self.cookie = cookie.to_vec();
                self.send_client_hello(cx)
            }
            (Expect::ServerHello, HandshakeType::SERVER_HELLO) => self.server_hello(cx, &msg),
            (Expect::Certificate, HandshakeType::CERTIFICATE) => self.certificate(cx, &msg),
            (Expect::ServerKeyExchange, HandshakeType::SERVER_KEY_EXCHANGE) => self.server_key_exchange(cx, &msg),
            (Expect::ServerKeyExchange, HandshakeType::SERVER_HELLO_DONE) if kx == Some(KeyExchange::Psk) => {
                self.server_hello_done(cx, &msg)
            }
            (Expect::ServerHelloDone, HandshakeType::CERTIFICATE_REQUEST)
                if kx.is_some_and(KeyExchange::uses_certificate) && !self.cert_requested =>
            {
                let req = CertificateRequest::parse(&msg.body).ok_or(Error::decode("CertificateRequest"))?;
                self.cert_requested = true;
                self.peer_schemes = req.signature_schemes;
                self.common.add_received(&msg);
                Ok(())
            }
            (Expect::ServerHelloDone, HandshakeType::SERVER_HELLO_DONE) => self.server_hello_done(cx, &msg),
            (Expect::NewSessionTicket, HandshakeType::NEW_SESSION_TICKET) => {
                let ticket =
                    super::resume::parse_new_session_ticket(&msg.body).ok_or(Error::decode("NewSessionTicket"))?;
                self.resumption.ticket = Some(ticket);
                self.common.add_received(&msg);
                self.expect = Expect::Finished;
                Ok(())
            }
            (Expect::Finished, HandshakeType::FINISHED) => {
                let config: &Config = cx.config;
                self.common.check_finished(config, &msg, false)?;
                if self.resumption.resumed.is_some() {
                    // An abbreviated handshake: our Finished ends it.
                    let items = self.common.finished(config, true)?.into();
                    cx.push(Action::Send { items, awaits_reply: false });
                    cx.push(Action::WriteEpoch(1));
                }
                self.common.complete(cx);
                let name = self.server_name.as_ref().map(crate::resumption::server_name_key);
                if let Some((session, new)) = self.resumption.new_session(config, &self.common, name.as_deref()) {
                    cx.push(if new {
                        Action::NewSession(Box::new(session))
                    } else {
                        Action::SameSession(Box::new(session))
                    });
                }
                Ok(())
            }
            _ => Err(Error::unexpected("unexpected handshake message")),
        }
    }

    fn server_hello(&mut self, cx: &mut Context<'_>, msg: &Message) -> Result<(), Error> {
        let config: &Config = cx.config;
        let sh = ServerHello::parse(&msg.body).ok_or(Error::decode("ServerHello"))?;
        if sh.server_version != ProtocolVersion::DTLS1_2 {
            return Err(Error::PeerIncompatible {
                alert: AlertDescription::PROTOCOL_VERSION,
                reason: "server chose a version other than DTLS 1.2",
            });
        }
        let suite = offered_suites(config)
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
        let offered_ecdhe = offered_suites(config).any(|s| s.key_exchange.uses_ecdhe());
        if ext.supported_groups.is_some()
            || ext.signature_algorithms.is_some()
            || ext.encrypt_then_mac
            || !ext.others.is_empty()
            || !ext.tls13.is_empty()
            || (ext.server_name.is_some() && self.sends_sni().is_none())
            || (ext.ec_point_formats.is_some() && !offered_ecdhe)
            || (ext.connection_id.is_some() && cx.own_cid.is_none())
            || (ext.rrc && (!cx.offers_rrc() || ext.connection_id.is_none()))
            || (ext.use_srtp.is_some() && config.srtp_profiles.is_empty())
            || (ext.alpn.is_some() && config.alpn_protocols.is_empty())
            || (ext.session_ticket.is_some() && !self.resumption.keep && self.resumption.offered.is_none())
        {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::UNSUPPORTED_EXTENSION,
                reason: "server sent an extension we did not offer",
            });
        }
        if suite.key_exchange.uses_ecdhe() && ext.ec_point_formats.as_ref().is_some_and(|f| !f.contains(&0)) {
            return Err(Error::illegal("server does not accept uncompressed points"));
        }
        let ems = ext.extended_master_secret;
        if !ems && config.extended_master_secret == ExtendedMasterSecret::Require {
            return Err(Error::PeerIncompatible {
                alert: AlertDescription::HANDSHAKE_FAILURE,
                reason: "server does not support the extended master secret",
            });
        }
        if let Some(theirs) = &sh.extensions.connection_id {
            cx.push(Action::PeerConnectionId(theirs.clone()));
        }
        if sh.extensions.rrc {
            cx.push(Action::ReturnRoutability);
        }
        if let Some(answer) = &ext.use_srtp {
            cx.push(Action::Srtp(answer.check_answer(&config.srtp_profiles)?));
        }
        if let Some(answer) = &ext.alpn {
            cx.push(Action::Alpn(crate::alpn::check_answer(answer, &config.alpn_protocols)?));
        }
        if ext.session_ticket.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(Error::decode("ServerHello session_ticket"));
        }
        self.resumption.ticket_promised = ext.session_ticket.is_some();
        self.common.server_random = sh.random;
        if self.resumption.resumes(&sh, suite, ems)? {
            return self.resumed(cx, msg, suite);
        }
        // The transcript starts with the ClientHello this ServerHello answers. Its bytes are
        // kept only if we may have to sign them (a certificate suite, and a certificate).
        let ch = core::mem::take(&mut self.client_hello);
        self.common.transcript.restart(&ch);
        self.common.add_received(msg);
        let may_sign = suite.key_exchange.uses_certificate() && config.client_cert.is_some();
        self.common.transcript.start_hash(&*config.provider, suite.hash, may_sign);
        self.expect =
            if suite.key_exchange.uses_certificate() { Expect::Certificate } else { Expect::ServerKeyExchange };
        cx.push(Action::PeerFlightStarts(msg.seq));
        self.common.negotiated(cx, suite, ems);
        Ok(())
    }

    fn certificate(&mut self, cx: &mut Context<'_>, msg: &Message) -> Result<(), Error> {
        let chain = parse_certificate_list(&msg.body).ok_or(Error::decode("Certificate"))?;
        let kept = if self.resumption.keep { chain.clone() } else { Vec::new() };
        let (ee, trusted) = crate::handshake::check_server_chain(cx, self.server_name.as_ref(), chain)?;
        self.common.peer_ee = Some(ee);
        self.resumption.peer_chain = kept;
        self.resumption.peer_untrusted = !trusted;
        self.common.add_received(msg);
        self.expect = Expect::ServerKeyExchange;
        Ok(())
    }

    fn server_key_exchange(&mut self, cx: &mut Context<'_>, msg: &Message) -> Result<(), Error> {
        let config: &Config = cx.config;
        let Some(suite) = self.common.suite else { return Err(Error::unexpected("ServerKeyExchange")) };
        let mut r = Reader::new(&msg.body);
        if suite.key_exchange.uses_psk() {
            let hint = r.vec16().ok_or(Error::decode("ServerKeyExchange"))?;
            self.psk_hint = (!hint.is_empty()).then(|| hint.to_vec());
        }
        if suite.key_exchange.uses_ecdhe() {
            let before = r.remaining();
            let params = ServerEcdhParams::parse(&mut r).ok_or(Error::decode("ServerKeyExchange"))?;
            let group = KxGroup::from_code_point(params.group)
                .filter(|g| config.groups12().any(|ours| ours == *g))
                .ok_or(Error::illegal("server chose a group we did not offer"))?;
            self.group = Some(group);
            cx.push(Action::Group(group));
            self.peer_public = Some(params.public.to_vec());
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
                signed.extend_from_slice(&self.common.client_random);
                signed.extend_from_slice(&self.common.server_random);
                signed.extend_from_slice(signed_params);
                let Some(ee) = &self.common.peer_ee else {
                    return Err(Error::unexpected("ServerKeyExchange before Certificate"));
                };
                if !pki::verify_signature(&*config.provider, ee, scheme, &signed, sig, false) {
                    return Err(Error::PeerMisbehaved {
                        alert: AlertDescription::DECRYPT_ERROR,
                        reason: "ServerKeyExchange signature does not verify with the server's certificate",
                    });
                }
            }
        }
        r.finish().ok_or(Error::decode("ServerKeyExchange"))?;
        self.common.add_received(msg);
        self.expect = Expect::ServerHelloDone;
        Ok(())
    }

    fn server_hello_done(&mut self, cx: &mut Context<'_>, msg: &Message) -> Result<(), Error> {
        let config: &Config = cx.config;
        if !msg.body.is_empty() {
            return Err(Error::decode("ServerHelloDone"));
        }
        let Some(suite) = self.common.suite else { return Err(Error::unexpected("ServerHelloDone")) };
        self.common.add_received(msg);
        let mut items = Vec::with_capacity(5);

        // Our certificate, if asked for: ours when its key can sign with a scheme the server
        // accepts, otherwise an empty list (the server decides whether that is acceptable).
        let mut signer = None;
        if self.cert_requested {
            let usable =
                config.client_cert.clone().and_then(|c| c.key().choose_scheme(&self.peer_schemes).map(|s| (c, s)));
            let mut body = Vec::new();
            write_certificate_list(&mut body, usable.as_ref().map_or(&[], |(c, _)| c.chain()));
            items.push(self.common.outgoing(0, HandshakeType::CERTIFICATE, body));
            signer = usable;
        }

        let mut cke = Vec::with_capacity(128);
        let mut psk = None;
        if suite.key_exchange.uses_psk() {
            let callback = config.client_psk.clone().ok_or(Error::NoPsk)?;
            let creds = callback(self.psk_hint.as_deref()).ok_or(Error::NoPsk)?;
            if creds.identity.len() > MAX_PSK_IDENTITY_LEN || creds.key.is_empty() || creds.key.len() > MAX_PSK_LEN {
                return Err(Error::Config("PSK identity or key length out of range"));
            }
            cke.put_vec16(&creds.identity);
            psk = Some(creds);
        }
        let shared = if suite.key_exchange.uses_ecdhe() {
            let (Some(group), Some(peer)) = (self.group, self.peer_public.take()) else {
                return Err(Error::unexpected("ECDHE without ServerKeyExchange"));
            };
            let kx = config.provider.start_key_exchange(group)?;
            cke.put_vec8(kx.public_key());
            Some(kx.complete(&peer).map_err(|_| Error::illegal("invalid server ECDH public key"))?)
        } else {
            None
        };
        let premaster = match &psk {
            Some(creds) => psk_premaster(shared.as_ref().map(|s| s.as_bytes()), &creds.key),
            None => zeroize::Zeroizing::new(shared.as_ref().map(|s| s.as_bytes().to_vec()).unwrap_or_default()),
        };
        items.push(self.common.outgoing(0, HandshakeType::CLIENT_KEY_EXCHANGE, cke));

        // CertificateVerify signs every handshake message so far (RFC 5246 §7.4.8).
        let cert_verify = match signer {
            Some((cert, scheme)) => {
                let sig = cert.key().sign(scheme, self.common.transcript.bytes().ok_or(Error::Crypto)?)?;
                let mut body = Vec::with_capacity(4 + sig.len());
                body.put_u16(scheme.0);
                body.put_vec16(&sig);
                Some(body)
            }
            None => None,
        };
        self.common.transcript.release_bytes();
        if let Some(creds) = psk {
            if self.resumption.keep {
                self.resumption.psk_identity = Some(creds.identity.clone());
            }
            cx.push(Action::PskIdentity(creds.identity));
        }
        // The extended master secret's session hash ends with ClientKeyExchange (RFC 7627 §3).
        self.common.establish_keys(cx, &premaster, Side::Client)?;
        if let Some(body) = cert_verify {
            items.push(self.common.outgoing(0, HandshakeType::CERTIFICATE_VERIFY, body));
        }
        items.extend(self.common.finished(config, true)?);
        self.expect = if self.resumption.ticket_promised { Expect::NewSessionTicket } else { Expect::Finished };
        cx.push(Action::Send { items, awaits_reply: true });
        cx.push(Action::WriteEpoch(1));
        Ok(())
    }

    /// The server resumed the session we offered: its flight goes on with a ticket if
    /// promised, then ChangeCipherSpec and Finished, under the session's master secret.
    fn resumed(&mut self, cx: &mut Context<'_>, msg: &Message, suite: &'static CipherSuite) -> Result<(), Error> {
        let Some(session) = self.resumption.resumed.as_ref() else { return Err(Error::Crypto) };
        let (secret, certs, identity) =
            (session.secret.clone(), session.peer_certs.clone(), session.psk_identity.clone());
        let ch = core::mem::take(&mut self.client_hello);
        self.common.transcript.restart(&ch);
        self.common.add_received(msg);
        self.common.transcript.start_hash(&*cx.config.provider, suite.hash, false);
        cx.push(Action::PeerFlightStarts(msg.seq));
        cx.push(Action::Resumed);
        self.common.negotiated(cx, suite, session.extended_master_secret);
        if let Some(identity) = identity {
            cx.push(Action::PskIdentity(identity));
        }
        if !certs.is_empty() {
            cx.push(Action::PeerCertificates(certs));
        }
        self.common.install_master(cx, &secret, Side::Client)?;
        self.expect = if self.resumption.ticket_promised { Expect::NewSessionTicket } else { Expect::Finished };
        Ok(())
    }
}
