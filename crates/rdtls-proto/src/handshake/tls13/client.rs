//! The client side of the DTLS 1.3 handshake, which also offers DTLS 1.2 when the
//! configuration allows it and hands over to [`tls12::Client`](crate::handshake::tls12::Client)
//! when the server answers in DTLS 1.2.

use crate::codec::Put;
use crate::config::{Config, PskCredentials, VerifyPeer, MAX_PSK_IDENTITY_LEN, MAX_PSK_LEN};
use crate::crypto::{ActiveKeyExchange, KxGroup};
use crate::enums::{AlertDescription, HandshakeType, Protocol, ProtocolVersion, SignatureScheme};
use crate::error::Error;
use crate::handshake::reassembly::Message;
use crate::handshake::MAX_HELLO_VERIFY;
use crate::handshake::{tls12, Action, Context, FlightItem};
use crate::messages::tls13::{psk_mode, KeyShare, KeyShareEntry, PreSharedKey, PskIdentity, SupportedVersions};
use crate::messages::{self, write_message, ClientHello, HelloExtensions, ServerHello, HS_HEADER_LEN};
use crate::pki::ServerName;
use crate::record::HEADER_LEN;
use crate::suites::CipherSuite;

use super::{
    message_hash, parse_certificate, parse_certificate_request, parse_encrypted_extensions, psk_hash, schedule,
    tls13_message, Common, EPOCH_APPLICATION, SCHEMES,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    ServerHello,
    EncryptedExtensions,
    /// CertificateRequest or Certificate.
    CertificateRequest,
    Certificate,
    CertificateVerify,
    Finished,
}

/// A DTLS 1.3 client handshake (which may become a DTLS 1.2 one at ServerHello).
pub(crate) struct Client {
    common: Common,
    expect: Expect,
    server_name: Option<ServerName<'static>>,
    /// DTLS 1.2 is offered too.
    offers_12: bool,
    /// What we offer a DTLS 1.2 server for resumption: a session's ID and ticket in the
    /// legacy fields (RFC 9147 §5.3), or a request for a ticket.
    resumption12: tls12::ClientResumption,
    /// The DTLS 1.3 ticket we offer (first among the PSK identities).
    ticket: Option<super::resume::TicketOffer>,
    /// We keep sessions: the server's chain is kept for them, and the resumption master
    /// secret.
    keep: bool,
    peer_chain: Vec<crate::pki::CertificateDer<'static>>,
    peer_untrusted: bool,
    /// The server accepted our ticket.
    resumed: bool,
    /// The legacy cookie of a DTLS 1.2 server's HelloVerifyRequest.
    legacy_cookie: Vec<u8>,
    hello_verify_count: u8,
    /// The cookie of a HelloRetryRequest.
    cookie: Option<Vec<u8>>,
    retried: bool,
    /// Our key shares, one per group ([`Config::key_share_groups`], or the group a
    /// HelloRetryRequest asked for).
    shares: Vec<Box<dyn ActiveKeyExchange>>,
    /// The external PSK offered, if any.
    psk: Option<PskCredentials>,
    /// The hash our PSK's binder is made with.
    psk_hash: crate::crypto::HashAlgorithm,
    psk_accepted: bool,
    /// The last ClientHello sent: its body and `message_seq`.
    client_hello: (Vec<u8>, u16),
    /// The context and schemes of the server's CertificateRequest.
    cert_request: Option<(Vec<u8>, Vec<SignatureScheme>)>,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client13")
            .field("common", &self.common)
            .field("expect", &self.expect)
            .field("retried", &self.retried)
            .finish_non_exhaustive()
    }
}

/// The DTLS 1.3 suites we offer.
fn suites13(config: &Config) -> impl Iterator<Item = &'static CipherSuite> + '_ {
    config.suites_for(Protocol::Dtls1_3)
}

impl Client {
    /// Starts the handshake: the ClientHello is the first flight. A DTLS 1.2 `session` is
    /// offered to a server that answers in DTLS 1.2; new sessions are kept if the
    /// configuration says so, or `keep`.
    pub(crate) fn start(
        cx: &mut Context<'_>,
        server_name: Option<ServerName<'static>>,
        session: Option<crate::resumption::Session>,
        keep: bool,
    ) -> Result<Self, Error> {
        let (session12, session13) = match session {
            Some(s) if s.protocol() == Protocol::Dtls1_2 => (Some(s), None),
            other => (None, other),
        };
        let config: &Config = cx.config;
        let psk = match &config.client_psk {
            Some(callback) => {
                // DTLS 1.3 has no identity hint: the callback is asked without one.
                let creds = callback(None).ok_or(Error::NoPsk)?;
                if creds.identity.is_empty() || creds.identity.len() > MAX_PSK_IDENTITY_LEN {
                    return Err(Error::Config("PSK identity length out of range"));
                }
                if creds.key.is_empty() || creds.key.len() > MAX_PSK_LEN {
                    return Err(Error::Config("PSK length out of range"));
                }
                Some(creds)
            }
            None => None,
        };
        let can_verify = !config.roots.is_empty() || config.verify_peer != VerifyPeer::Required;
        let ticket = super::resume::ticket_offer(config, session13, server_name.as_ref());
        if psk.is_none() && !can_verify && ticket.is_none() {
            return Err(Error::Config("DTLS 1.3 needs a PSK, or trust anchors to verify the server's certificate"));
        }
        if config.groups.is_empty() {
            return Err(Error::Config("DTLS 1.3 needs a key exchange group"));
        }
        let shares = config
            .key_share_groups()
            .into_iter()
            .map(|g| config.provider.start_key_exchange(g))
            .collect::<Result<Vec<_>, _>>()?;
        let offers_12 = config.enables(Protocol::Dtls1_2);
        let resumption12 = match offers_12 {
            true => tls12::ClientResumption::offering(cx, session12, server_name.as_ref(), keep)?,
            false => tls12::ClientResumption::default(),
        };
        let mut client = Self {
            common: Common::default(),
            expect: Expect::ServerHello,
            server_name,
            offers_12,
            resumption12,
            ticket,
            keep: config.resumption.client || keep,
            peer_chain: Vec::new(),
            peer_untrusted: false,
            resumed: false,
            legacy_cookie: Vec::new(),
            hello_verify_count: 0,
            cookie: None,
            retried: false,
            shares,
            psk,
            psk_hash: psk_hash(suites13(config).map(|s| s.id)),
            psk_accepted: false,
            client_hello: (Vec::new(), 0),
            cert_request: None,
        };
        config.provider.fill_random(&mut client.common.client_random)?;
        client.send_client_hello(cx)?;
        Ok(client)
    }

    fn sends_sni(&self) -> Option<&str> {
        match &self.server_name {
            Some(ServerName::DnsName(name)) => Some(name.as_ref()),
            _ => None,
        }
    }

    fn send_client_hello(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        let config: &Config = cx.config;
        let mut suites: Vec<u16> = suites13(config).map(|s| s.id).collect();
        let mut versions = vec![ProtocolVersion::DTLS1_3];
        let mut ext = HelloExtensions::default();
        if self.offers_12 {
            let twelve = tls12::offered_suites(config);
            suites.extend(twelve.clone().map(|s| s.id));
            versions.push(ProtocolVersion::DTLS1_2);
            ext.extended_master_secret = true;
            ext.renegotiation_info = Some(Vec::new());
            // For a DTLS 1.2 server: a ticket, or a request for one (DTLS 1.3 servers ignore
            // the extension).
            ext.session_ticket = self.resumption12.ticket_extension();
            if tls12::offered_suites(config).any(|s| s.key_exchange.uses_ecdhe()) {
                ext.ec_point_formats = Some(vec![0]);
            }
        }
        ext.server_name = self.sends_sni().map(|n| n.as_bytes().to_vec());
        // Both versions negotiate connection IDs in the hellos (RFC 9146 §3, RFC 9147 §9).
        ext.connection_id = cx.own_cid.map(<[u8]>::to_vec);
        ext.rrc = cx.offers_rrc();
        ext.use_srtp = crate::srtp::UseSrtp::offer(&config.srtp_profiles);
        ext.alpn = crate::alpn::ProtocolList::new(&config.alpn_protocols);
        ext.supported_groups = Some(config.groups.iter().map(|g| g.code_point()).collect());
        ext.signature_algorithms = Some(
            SignatureScheme::SUPPORTED.iter().filter(|s| self.offers_12 || SCHEMES.contains(s)).map(|s| s.0).collect(),
        );
        let t = &mut ext.tls13;
        t.supported_versions = Some(SupportedVersions::Offered(versions));
        t.key_share = Some(KeyShare::Offered(
            self.shares
                .iter()
                .map(|s| KeyShareEntry { group: s.group().code_point(), key_exchange: s.public_key().to_vec() })
                .collect(),
        ));
        t.cookie = self.cookie.clone();
        // Our ticket, then our external PSK, each with a placeholder binder of the right
        // length, replaced once the hello is encoded. Tickets are only for psk_dhe_ke; a
        // client that keeps sessions says so, or servers send none.
        let (mut identities, mut binders) = (Vec::new(), Vec::new());
        if let Some(offer) = &self.ticket {
            identities.push(PskIdentity { identity: offer.session.ticket.clone(), obfuscated_ticket_age: offer.age });
            binders.push(vec![0; offer.hash.output_len()]);
        }
        if let Some(psk) = &self.psk {
            identities.push(PskIdentity { identity: psk.identity.clone(), obfuscated_ticket_age: 0 });
            binders.push(vec![0; self.psk_hash.output_len()]);
        }
        if self.psk.is_some() {
            t.psk_key_exchange_modes = Some(vec![psk_mode::PSK_DHE_KE, psk_mode::PSK_KE]);
        } else if self.ticket.is_some() || self.keep {
            t.psk_key_exchange_modes = Some(vec![psk_mode::PSK_DHE_KE]);
        }
        if !identities.is_empty() {
            t.pre_shared_key = Some(PreSharedKey::Offered { identities, binders });
        }
        let hello = ClientHello {
            client_version: ProtocolVersion::DTLS1_2,
            random: self.common.client_random,
            // A DTLS 1.2 session's ID, or none (RFC 9147 §5.3).
            session_id: self.resumption12.session_id().to_vec(),
            cookie: self.legacy_cookie.clone(),
            cipher_suites: suites,
            compression_methods: vec![0],
            extensions: ext,
        };
        let mut body = Vec::with_capacity(512);
        hello.emit(&mut body);
        // The default key shares: a first ClientHello that a hybrid share would push over the
        // MTU goes with the curve's share alone, unfragmented (servers that keep no state
        // before a cookie may take only that, wolfSSL's among them); a server that prefers
        // the hybrid asks for it in its HelloRetryRequest.
        let over = HEADER_LEN + HS_HEADER_LEN + body.len() > cx.config.mtu;
        if over && !self.retried && cx.config.key_shares.is_none() && self.shares.len() > 1 {
            let before = self.shares.len();
            self.shares.retain(|s| !s.group().is_hybrid());
            if self.shares.len() < before && !self.shares.is_empty() {
                return self.send_client_hello(cx);
            }
        }
        if let Some(binders) = &hello.extensions.tls13.pre_shared_key {
            self.write_binders(cx.config, binders.binders_len(), &mut body)?;
        }
        let seq = self.common.next_send_seq;
        self.common.next_send_seq += 1;
        self.client_hello = (body.clone(), seq);
        let item = FlightItem::Message { epoch: 0, msg_type: HandshakeType::CLIENT_HELLO, seq, body };
        cx.push(Action::Send { items: vec![item], awaits_reply: true });
        Ok(())
    }

    /// Computes the PSK binder over the hello up to its binders list (after what the
    /// transcript already holds: the `message_hash` and HelloRetryRequest after a retry) and
    /// writes it over the placeholder at the end of `body`.
    /// Writes the binder of each PSK offered (the ticket's, then the external PSK's) over the
    /// hello up to its binders, in place of the placeholders.
    fn write_binders(&self, config: &Config, binders_len: usize, body: &mut [u8]) -> Result<(), Error> {
        let truncated = body.len() - binders_len;
        let mut partial = Vec::with_capacity(4 + truncated);
        partial.put_u8(HandshakeType::CLIENT_HELLO.0);
        partial.put_u24(body.len() as u32);
        partial.extend_from_slice(&body[..truncated]);
        let ticket = self.ticket.as_ref().map(|t| (&t.session.secret[..], t.hash, false));
        let external = self.psk.as_ref().map(|p| (&p.key[..], self.psk_hash, true));
        // The list: 2-byte length, then each binder with its 1-byte length.
        let mut at = truncated + 2;
        for (key, hash, is_external) in ticket.into_iter().chain(external) {
            let s = schedule(&*config.provider, hash);
            let binder_key = s.early(Some(key)).binder_key(&s, is_external)?;
            let digest = match self.common.transcript.fork_hash() {
                Some(mut h) => {
                    h.update(&partial);
                    h.current()
                }
                None => config.provider.hash(hash, &[&partial]),
            };
            let binder = s.verify_data(&binder_key, digest.as_bytes())?;
            let len = binder.as_bytes().len();
            body.get_mut(at + 1..at + 1 + len).ok_or(Error::Crypto)?.copy_from_slice(binder.as_bytes());
            at += 1 + len;
        }
        Ok(())
    }

    /// Handles one message. `Ok(Some(client))` when the server answered in DTLS 1.2: the
    /// handshake continues as that client, which has handled the message.
    pub(crate) fn handle(&mut self, cx: &mut Context<'_>, msg: Message) -> Result<Option<tls12::Client>, Error> {
        match (self.expect, msg.msg_type) {
            (Expect::ServerHello, HandshakeType::HELLO_VERIFY_REQUEST) if self.offers_12 => {
                let (_, cookie) =
                    messages::parse_hello_verify_request(&msg.body).ok_or(Error::decode("HelloVerifyRequest"))?;
                self.hello_verify_count += 1;
                if self.hello_verify_count > MAX_HELLO_VERIFY || self.retried {
                    return Err(Error::unexpected("unexpected HelloVerifyRequest"));
                }
                // An empty cookie is allowed (RFC 6347 §4.2.1: `cookie<0..2^8-1>`): it is sent
                // back as it came; MAX_HELLO_VERIFY bounds how often.
                self.legacy_cookie = cookie.to_vec();
                self.send_client_hello(cx)?;
            }
            (Expect::ServerHello, HandshakeType::HELLO_VERIFY_REQUEST) => {
                // Only a DTLS 1.2 (or older) server sends it: a version we do not offer.
                return Err(Error::PeerIncompatible {
                    alert: AlertDescription::PROTOCOL_VERSION,
                    reason: "server answered with a HelloVerifyRequest, and we offer only DTLS 1.3",
                });
            }
            (Expect::ServerHello, HandshakeType::SERVER_HELLO) => {
                let sh = ServerHello::parse(&msg.body).ok_or(Error::decode("ServerHello"))?;
                let selected = match &sh.extensions.tls13.supported_versions {
                    Some(SupportedVersions::Selected(v)) => Some(*v),
                    _ => None,
                };
                if selected.is_none() && self.offers_12 {
                    return self.fall_back(cx, msg, &sh).map(Some);
                }
                if selected != Some(ProtocolVersion::DTLS1_3) || sh.server_version != ProtocolVersion::DTLS1_2 {
                    return Err(Error::PeerIncompatible {
                        alert: AlertDescription::PROTOCOL_VERSION,
                        reason: "server chose a version we did not offer",
                    });
                }
                if self.hello_verify_count > 0 {
                    // A DTLS 1.3 server asks for a cookie with a HelloRetryRequest, never with
                    // a HelloVerifyRequest (RFC 9147 §5.1): this server is not what it says.
                    return Err(Error::unexpected("DTLS 1.3 ServerHello after a HelloVerifyRequest"));
                }
                if sh.is_retry_request() {
                    self.hello_retry_request(cx, &msg, &sh)?;
                } else {
                    self.server_hello(cx, &msg, &sh)?;
                }
            }
            (Expect::EncryptedExtensions, HandshakeType::ENCRYPTED_EXTENSIONS) => {
                let found = parse_encrypted_extensions(&msg.body, self.sends_sni().is_some(), cx.config)?;
                if let Some(profile) = found.srtp {
                    cx.push(Action::Srtp(profile));
                }
                if let Some(protocol) = found.alpn {
                    cx.push(Action::Alpn(protocol));
                }
                self.common.add_received(&msg);
                self.expect = if self.psk_accepted { Expect::Finished } else { Expect::CertificateRequest };
            }
            (Expect::CertificateRequest, HandshakeType::CERTIFICATE_REQUEST) => {
                let req = parse_certificate_request(&msg.body).ok_or(Error::decode("CertificateRequest"))?;
                self.cert_request = Some(req);
                self.common.add_received(&msg);
                self.expect = Expect::Certificate;
            }
            (Expect::CertificateRequest | Expect::Certificate, HandshakeType::CERTIFICATE) => {
                self.certificate(cx, &msg)?;
            }
            (Expect::CertificateVerify, HandshakeType::CERTIFICATE_VERIFY) => {
                self.common.check_certificate_verify(cx.config, &msg, true)?;
                self.expect = Expect::Finished;
            }
            (Expect::Finished, HandshakeType::FINISHED) => self.finished(cx, &msg)?,
            _ => return Err(Error::unexpected("unexpected handshake message")),
        }
        Ok(None)
    }

    /// The server answered in DTLS 1.2: check it may, and continue as a DTLS 1.2 client.
    fn fall_back(&mut self, cx: &mut Context<'_>, msg: Message, sh: &ServerHello) -> Result<tls12::Client, Error> {
        if sh.random[24..] == super::DOWNGRADE_SENTINEL {
            // A server that can do DTLS 1.3 chose 1.2: someone removed 1.3 from our offer.
            return Err(Error::illegal("downgrade to DTLS 1.2 detected (RFC 8446 §4.1.3 sentinel)"));
        }
        let mut hello = Vec::with_capacity(12 + self.client_hello.0.len());
        write_message(&mut hello, HandshakeType::CLIENT_HELLO, self.client_hello.1, &self.client_hello.0);
        let mut client = tls12::Client::after_hello(
            self.common.client_random,
            hello,
            self.legacy_cookie.clone(),
            self.server_name.take(),
            self.common.next_send_seq,
            core::mem::take(&mut self.resumption12),
        );
        client.handle(cx, msg)?;
        Ok(client)
    }

    /// Checks what a ServerHello and a HelloRetryRequest share, and returns the suite.
    /// `cid_allowed`: a ServerHello may answer the connection ID (and return routability
    /// checks) we offered; a HelloRetryRequest may carry neither.
    fn check_hello(&self, config: &Config, sh: &ServerHello, cid_allowed: bool) -> Result<&'static CipherSuite, Error> {
        let suite = suites13(config)
            .find(|s| s.id == sh.cipher_suite)
            .ok_or(Error::illegal("server chose a cipher suite we did not offer"))?;
        // A DTLS 1.3 server echoes no session ID (RFC 9147 §5.3); wolfSSL before 5.9.1 echoed
        // ours, which is tolerated.
        let echo_ok = sh.session_id.is_empty() || sh.session_id == self.resumption12.session_id();
        if sh.compression_method != 0 || !echo_ok {
            return Err(Error::illegal("server's legacy fields differ from ours"));
        }
        let ext = &sh.extensions;
        let t = &ext.tls13;
        if ext.supported_groups.is_some()
            || ext.signature_algorithms.is_some()
            || ext.ec_point_formats.is_some()
            || ext.server_name.is_some()
            || ext.extended_master_secret
            || ext.renegotiation_info.is_some()
            || ext.encrypt_then_mac
            || ext.use_srtp.is_some()
            || ext.alpn.is_some()
            || (ext.connection_id.is_some() && !cid_allowed)
            || (ext.rrc && (!cid_allowed || !config.rrc || ext.connection_id.is_none()))
            || !ext.others.is_empty()
            || t.psk_key_exchange_modes.is_some()
            || t.early_data
            || (t.pre_shared_key.is_some() && self.psk.is_none() && self.ticket.is_none())
        {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::UNSUPPORTED_EXTENSION,
                reason: "server sent an extension we did not offer, or one that does not belong there",
            });
        }
        Ok(suite)
    }

    fn hello_retry_request(&mut self, cx: &mut Context<'_>, msg: &Message, sh: &ServerHello) -> Result<(), Error> {
        let config: &Config = cx.config;
        if self.retried {
            return Err(Error::unexpected("a second HelloRetryRequest"));
        }
        let suite = self.check_hello(config, sh, false)?;
        let t = &sh.extensions.tls13;
        if t.pre_shared_key.is_some() {
            return Err(Error::illegal("pre_shared_key in a HelloRetryRequest"));
        }
        match t.key_share {
            Some(KeyShare::Requested(code)) => {
                let group = KxGroup::from_code_point(code)
                    .filter(|g| config.groups.contains(g) && !self.shares.iter().any(|s| s.group() == *g))
                    .ok_or(Error::illegal("HelloRetryRequest asks for a group we did not offer, or already sent"))?;
                // The new ClientHello carries this one share alone (RFC 8446 §4.1.2).
                self.shares = vec![config.provider.start_key_exchange(group)?];
            }
            Some(_) => return Err(Error::decode("HelloRetryRequest")),
            // A retry for the cookie only keeps our shares.
            None if t.cookie.is_some() => {}
            None => return Err(Error::illegal("HelloRetryRequest that would not change the ClientHello")),
        }
        self.retried = true;
        self.cookie = t.cookie.clone();
        if self.psk.is_some() && suite.hash != self.psk_hash {
            // Our external PSK's binder is for another hash: it cannot be used with this suite.
            self.psk = None;
        }
        if self.ticket.as_ref().is_some_and(|t| t.hash != suite.hash) {
            self.ticket = None;
        }
        // The transcript: message_hash(ClientHello1), HelloRetryRequest, then the new hello.
        let provider = &*config.provider;
        let ch1 = tls13_message(HandshakeType::CLIENT_HELLO, &self.client_hello.0);
        let ch1_hash = provider.hash(suite.hash, &[&ch1]);
        self.common.transcript.restart(&message_hash(ch1_hash.as_bytes()));
        self.common.transcript.start_hash(provider, suite.hash, false);
        self.common.add_received(msg);
        self.common.suite = Some(suite);
        self.common.next_send_seq = msg.seq.wrapping_add(1).max(self.common.next_send_seq);
        cx.push(Action::PeerFlightStarts(msg.seq));
        // The version and suite are known: DTLS 1.3's acknowledgements apply from here on (a
        // server's ACK of part of the second ClientHello spares that part).
        cx.push(Action::Negotiated { suite, extended_master_secret: false });
        self.send_client_hello(cx)
    }

    fn server_hello(&mut self, cx: &mut Context<'_>, msg: &Message, sh: &ServerHello) -> Result<(), Error> {
        let config: &Config = cx.config;
        let suite = self.check_hello(config, sh, cx.own_cid.is_some())?;
        if self.common.suite.is_some_and(|s| s != suite) {
            return Err(Error::illegal("ServerHello's suite differs from the HelloRetryRequest's"));
        }
        let t = &sh.extensions.tls13;
        if t.cookie.is_some() {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::UNSUPPORTED_EXTENSION,
                reason: "cookie in a ServerHello",
            });
        }
        // The PSK selected: our ticket (index 0 when offered), else our external PSK; its hash
        // must be the suite's.
        let ticket_offered = u16::from(self.ticket.is_some());
        let psk = match t.pre_shared_key {
            Some(PreSharedKey::Selected(0)) if self.ticket.as_ref().is_some_and(|t| t.hash == suite.hash) => {
                self.resumed = true;
                self.ticket.as_ref().map(|t| t.session.secret.clone())
            }
            Some(PreSharedKey::Selected(i)) if i == ticket_offered && suite.hash == self.psk_hash => Some(
                self.psk
                    .as_ref()
                    .map(|p| p.key.clone())
                    .ok_or(Error::illegal("server selected a PSK we did not offer"))?,
            ),
            Some(_) => return Err(Error::illegal("server selected a PSK we did not offer")),
            None => None,
        };
        let shared = match &t.key_share {
            Some(KeyShare::Chosen(entry)) => {
                let at = self
                    .shares
                    .iter()
                    .position(|s| s.group().code_point() == entry.group)
                    .ok_or(Error::illegal("server's key share is for a group we sent no share for"))?;
                let share = self.shares.swap_remove(at);
                self.shares.clear();
                cx.push(Action::Group(share.group()));
                Some(share.complete(&entry.key_exchange).map_err(|_| Error::illegal("invalid server key share"))?)
            }
            Some(_) => return Err(Error::decode("ServerHello")),
            // psk_ke only with our external PSK: a ticket is offered for psk_dhe_ke alone
            // (RFC 8446 §4.2.11).
            None if psk.is_some() && !self.resumed => None,
            None => {
                return Err(Error::PeerMisbehaved {
                    alert: AlertDescription::MISSING_EXTENSION,
                    reason: "ServerHello without a key share",
                })
            }
        };
        let provider = &*config.provider;
        if !self.retried {
            self.common.transcript.restart(&tls13_message(HandshakeType::CLIENT_HELLO, &self.client_hello.0));
            self.common.transcript.start_hash(provider, suite.hash, false);
        } else {
            self.common.transcript.add_tls13(HandshakeType::CLIENT_HELLO, &self.client_hello.0);
        }
        self.common.add_received(msg);
        self.common.suite = Some(suite);
        self.psk_accepted = psk.is_some();
        let s = schedule(provider, suite.hash);
        let secret = s.early(psk.as_ref().map(|k| &k[..])).into_handshake(&s, shared.as_ref().map(|x| x.as_bytes()))?;
        cx.push(Action::Negotiated { suite, extended_master_secret: false });
        if self.retried {
            cx.push(Action::HelloRetried);
        }
        if let (true, Some(offer)) = (self.resumed, &self.ticket) {
            // Who the server is (and who we were) comes from the session.
            cx.push(Action::Resumed);
            if let Some(identity) = &offer.session.psk_identity {
                cx.push(Action::PskIdentity(identity.clone()));
            }
            if !offer.session.peer_certs.is_empty() {
                cx.push(Action::PeerCertificates(offer.session.peer_certs.clone()));
            }
        } else if let (true, Some(p)) = (self.psk_accepted, &self.psk) {
            cx.push(Action::PskIdentity(p.identity.clone()));
        }
        if let Some(theirs) = &sh.extensions.connection_id {
            cx.push(Action::PeerConnectionId(theirs.clone()));
        }
        if sh.extensions.rrc {
            cx.push(Action::ReturnRoutability);
        }
        cx.push(Action::PeerFlightStarts(msg.seq));
        self.common.enter_handshake_epoch(cx, secret, true)?;
        // What we send from now on (alerts, ACKs) is protected with the handshake keys.
        cx.push(Action::WriteEpoch(super::EPOCH_HANDSHAKE));
        self.expect = Expect::EncryptedExtensions;
        Ok(())
    }

    fn certificate(&mut self, cx: &mut Context<'_>, msg: &Message) -> Result<(), Error> {
        let (context, chain) = parse_certificate(&msg.body).ok_or(Error::decode("Certificate"))?;
        if !context.is_empty() {
            return Err(Error::illegal("server Certificate with a request context"));
        }
        let kept = if self.keep { chain.clone() } else { Vec::new() };
        let (ee, trusted) = crate::handshake::check_server_chain(cx, self.server_name.as_ref(), chain)?;
        self.common.peer_ee = Some(ee);
        self.peer_chain = kept;
        self.peer_untrusted = !trusted;
        self.common.add_received(msg);
        self.expect = Expect::CertificateVerify;
        Ok(())
    }

    fn finished(&mut self, cx: &mut Context<'_>, msg: &Message) -> Result<(), Error> {
        let config: &Config = cx.config;
        self.common.check_finished(config, msg, false)?;
        // The application secrets come from the transcript through the server's Finished.
        self.common.enter_application_epoch(cx, true)?;
        let mut items = Vec::with_capacity(3);
        if let Some((context, schemes)) = self.cert_request.take() {
            let cert = config.client_cert.as_deref().and_then(|c| {
                let offered: Vec<SignatureScheme> = schemes.iter().copied().filter(|s| SCHEMES.contains(s)).collect();
                c.key().choose_scheme(&offered).map(|scheme| (c, scheme))
            });
            self.common.certificate_flight(&context, cert, false, &mut items)?;
        }
        items.push(self.common.finished(config, true)?);
        cx.push(Action::Send { items, awaits_reply: false });
        // The server answers our last flight with an ACK only: resend it until then.
        cx.push(Action::RetransmitUntilAcked);
        cx.push(Action::WriteEpoch(EPOCH_APPLICATION));
        self.common.complete(cx);
        if let Some(template) = self.ticket_template(config)? {
            cx.push(Action::TicketTemplate(Box::new(template)));
        }
        Ok(())
    }

    /// When we keep sessions: this connection's session, its secret the resumption master
    /// secret (over the transcript through our Finished), for the tickets the server sends.
    fn ticket_template(&self, config: &Config) -> Result<Option<crate::resumption::Session>, Error> {
        if !self.keep || self.peer_untrusted {
            return Ok(None);
        }
        let (Some(suite), Some(master)) = (self.common.suite, self.common.master.as_ref()) else { return Ok(None) };
        let s = self.common.schedule(config)?;
        let resumption = master.resumption(&s, self.common.hash()?.as_bytes())?;
        let resumed = self.ticket.as_ref().filter(|_| self.resumed).map(|t| &t.session);
        let parts = super::resume::SessionParts {
            suite,
            server_name: self.server_name.as_ref().map(crate::resumption::server_name_key),
            psk_identity: match resumed {
                Some(s) => s.psk_identity.clone(),
                None => self.psk.as_ref().filter(|_| self.psk_accepted).map(|p| p.identity.clone()),
            },
            peer_certs: resumed.map_or(&self.peer_chain[..], |s| &s.peer_certs[..]),
            created: None,
        };
        Ok(Some(parts.session(config, resumption.as_bytes())))
    }
}
