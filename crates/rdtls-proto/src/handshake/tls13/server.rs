//! The server side of the DTLS 1.3 handshake.

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::{ClientAuth, Config, MAX_PSK_IDENTITY_LEN, MAX_PSK_LEN};
use crate::crypto::{ct_eq, KxGroup};
use crate::enums::{AlertDescription, HandshakeType, Protocol, ProtocolVersion, SignatureScheme};
use crate::error::Error;
use crate::handshake::reassembly::Message;
use crate::handshake::{Action, Context};
use crate::messages::tls13::{psk_mode, KeyShare, KeyShareEntry, PreSharedKey, SupportedVersions, Tls13Extensions};
use crate::messages::{ClientHello, HelloExtensions, ServerHello};
use crate::pki::{CertificateDer, CertifiedKey, RootStore};
use crate::suites::CipherSuite;

use super::{
    hello_retry_request, message_hash, parse_certificate, psk_hash, schedule, tls13_message, write_certificate_request,
    write_encrypted_extensions, Common, EPOCH_APPLICATION, EPOCH_HANDSHAKE, SCHEMES,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    ClientHello,
    Certificate,
    CertificateVerify,
    Finished,
}

/// A DTLS 1.3 server handshake.
pub(crate) struct Server {
    common: Common,
    expect: Expect,
    local_ip: Option<IpAddr>,
    /// The suite and group of the HelloRetryRequest we sent (the second ClientHello must
    /// keep the suite and bring a share of the group).
    retry: Option<(&'static CipherSuite, Option<KxGroup>)>,
    /// The application protocol chosen for the first ClientHello when this server sent the
    /// HelloRetryRequest (not when a stateless one's cookie brought the retry), kept for the
    /// second.
    alpn_before_retry: Option<Option<Vec<u8>>>,
    /// Roots for client certificates, from the SNI entry that chose our certificate.
    client_roots: Option<Arc<RootStore>>,
    cert_requested: bool,
    /// What the session ticket sent after the handshake is made of.
    ticket: TicketParts,
}

/// What the server keeps for the ticket of the session it is making.
#[derive(Debug, Default)]
struct TicketParts {
    /// The client can use a ticket (it allows psk_dhe_ke) and did not authenticate with an
    /// external PSK.
    wanted: bool,
    sni: Option<String>,
    psk_identity: Option<Vec<u8>>,
    /// The client's certificate did not verify: no ticket.
    peer_untrusted: bool,
    /// A resumed session's creation time and client certificates.
    resumed: Option<(u64, Vec<CertificateDer<'static>>)>,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server13")
            .field("common", &self.common)
            .field("expect", &self.expect)
            .field("cert_requested", &self.cert_requested)
            .finish_non_exhaustive()
    }
}

/// What the server decided for a ClientHello.
struct Choice {
    suite: &'static CipherSuite,
    /// The index and key of the PSK identity accepted.
    psk: Option<(u16, zeroize::Zeroizing<Vec<u8>>, Vec<u8>)>,
    /// Use (EC)DHE (always, except for a psk_ke handshake).
    dhe: bool,
    cert: Option<(Arc<CertifiedKey>, SignatureScheme, bool)>,
    /// The session a ticket among the PSK identities resumes.
    resumed: Option<crate::resumption::Session>,
}

/// Whether a ClientHello offers DTLS 1.3 in its supported_versions.
fn offers_dtls13(ch: &ClientHello) -> bool {
    matches!(&ch.extensions.tls13.supported_versions,
        Some(SupportedVersions::Offered(v)) if v.contains(&ProtocolVersion::DTLS1_3))
}

/// The contents of the cookie a stateless HelloRetryRequest carries, once the cookie was
/// verified: the hash of the first ClientHello, the suite and the group asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RetryState {
    pub(crate) ch1_hash: Vec<u8>,
    pub(crate) suite: &'static CipherSuite,
    pub(crate) group: Option<KxGroup>,
}

impl Server {
    pub(crate) fn new(local_ip: Option<IpAddr>) -> Self {
        Self {
            common: Common::default(),
            expect: Expect::ClientHello,
            local_ip,
            retry: None,
            alpn_before_retry: None,
            client_roots: None,
            cert_requested: false,
            ticket: TicketParts::default(),
        }
    }

    /// After the client's Finished: the NewSessionTicket body, if tickets are on, the client
    /// can use one, and its certificate (if any) verified.
    fn new_session_ticket(&self, config: &Config) -> Result<Option<Vec<u8>>, Error> {
        let (t, c) = (&self.ticket, &self.common);
        if !t.wanted || t.peer_untrusted || config.ticket_keys().is_none() {
            return Ok(None);
        }
        let (Some(suite), Some(master)) = (c.suite, c.master.as_ref()) else { return Ok(None) };
        let own_certs: Vec<CertificateDer<'static>> = c.peer_ee.iter().cloned().collect();
        let parts = super::resume::SessionParts {
            suite,
            server_name: t.sni.clone(),
            psk_identity: t.psk_identity.clone(),
            peer_certs: t.resumed.as_ref().map_or(&own_certs[..], |(_, certs)| &certs[..]),
            created: t.resumed.as_ref().map(|(created, _)| *created),
        };
        let s = c.schedule(config)?;
        super::resume::new_session_ticket(config, &s, master, c.hash()?.as_bytes(), &parts)
    }

    /// A DTLS 1.3 server for this ClientHello, if it offers DTLS 1.3 and we allow it. A cookie
    /// in it must be ours: when the caller `verified` it (always, with cookie verification on;
    /// for a restarted client's, with it off), the state of the stateless HelloRetryRequest is
    /// restored from it; otherwise we never sent one, so it is refused.
    /// Returns it with the parsed hello, which [`client_hello`](Self::client_hello) takes.
    pub(crate) fn for_client_hello(
        config: &Config,
        msg: &Message,
        local_ip: Option<IpAddr>,
        verified: bool,
    ) -> Result<Option<(Self, ClientHello)>, Error> {
        if !config.enables(Protocol::Dtls1_3) {
            return Ok(None);
        }
        let (ch, _) = ClientHello::parse(&msg.body).ok_or(Error::decode("ClientHello"))?;
        if !offers_dtls13(&ch) {
            return Ok(None);
        }
        let mut server = Self::new(local_ip);
        if let Some(cookie) = &ch.extensions.tls13.cookie {
            if verified {
                let state = super::retry_state(config, cookie).ok_or(Error::illegal("malformed cookie"))?;
                server.restore_retry(&*config.provider, state, Some(cookie));
            }
        }
        Ok(Some((server, ch)))
    }

    pub(crate) fn awaits_client_hello(&self) -> bool {
        self.expect == Expect::ClientHello
    }

    pub(crate) fn set_local_ip(&mut self, ip: IpAddr) {
        self.local_ip = Some(ip);
    }

    pub(crate) fn handle(&mut self, cx: &mut Context<'_>, msg: Message) -> Result<(), Error> {
        match (self.expect, msg.msg_type) {
            (Expect::ClientHello, HandshakeType::CLIENT_HELLO) => {
                let (ch, _) = ClientHello::parse(&msg.body).ok_or(Error::decode("ClientHello"))?;
                self.client_hello(cx, &msg, &ch)
            }
            (Expect::Certificate, HandshakeType::CERTIFICATE) => self.certificate(cx, &msg),
            (Expect::CertificateVerify, HandshakeType::CERTIFICATE_VERIFY) => {
                self.common.check_certificate_verify(cx.config, &msg, false)?;
                self.expect = Expect::Finished;
                Ok(())
            }
            (Expect::Finished, HandshakeType::FINISHED) => {
                self.common.check_finished(cx.config, &msg, true)?;
                cx.push(Action::WriteEpoch(EPOCH_APPLICATION));
                self.common.complete(cx);
                if let Some(body) = self.new_session_ticket(cx.config)? {
                    cx.push(Action::SendTicket(body));
                }
                Ok(())
            }
            (Expect::CertificateVerify, HandshakeType::FINISHED) => Err(Error::PeerMisbehaved {
                alert: AlertDescription::UNEXPECTED_MESSAGE,
                reason: "client sent a certificate but no CertificateVerify",
            }),
            _ => Err(Error::unexpected("unexpected handshake message")),
        }
    }

    /// Decides suite, PSK, key exchange and certificate.
    fn choose(&self, config: &Config, ch: &ClientHello, sni: Option<&str>) -> Result<Choice, Error> {
        let t = &ch.extensions.tls13;
        let offered = |s: &&'static CipherSuite| ch.cipher_suites.contains(&s.id);
        let modes = t.psk_key_exchange_modes.as_deref().unwrap_or(&[]);
        let psk_hash = psk_hash(ch.cipher_suites.iter().copied());
        // A ticket of ours for a session we can resume, with the session's suite (the one the
        // HelloRetryRequest chose, if we sent one).
        if let Some((index, session, suite)) = super::resume::find_ticket(config, ch, sni) {
            // After a HelloRetryRequest, its suite, if it has the session's hash (RFC 8446
            // §4.6.1: a PSK goes with its hash, not its suite).
            let suite = match self.retry {
                Some((s, _)) if s.hash == suite.hash => Some(s),
                Some(_) => None,
                None => Some(suite),
            };
            if let Some(suite) = suite {
                let key = zeroize::Zeroizing::new(session.secret.to_vec());
                let identity = session.psk_identity.clone().unwrap_or_default();
                return Ok(Choice {
                    suite,
                    psk: Some((index, key, identity)),
                    dhe: true,
                    cert: None,
                    resumed: Some(session),
                });
            }
        }
        // An external PSK the client offers and we know (SHA-256 suites only).
        let mut psk = None;
        if let (Some(PreSharedKey::Offered { identities, .. }), Some(callback)) =
            (&t.pre_shared_key, &config.server_psk)
        {
            let has_suite = config.suites_for(Protocol::Dtls1_3).filter(offered).any(|s| s.hash == psk_hash);
            if has_suite && (modes.contains(&psk_mode::PSK_DHE_KE) || modes.contains(&psk_mode::PSK_KE)) {
                for (i, id) in identities.iter().enumerate().take(16) {
                    if id.identity.len() > MAX_PSK_IDENTITY_LEN {
                        continue;
                    }
                    if let Some(key) = callback(&id.identity) {
                        if key.is_empty() || key.len() > MAX_PSK_LEN {
                            return Err(Error::Config("PSK length out of range"));
                        }
                        psk = Some((i as u16, key, id.identity.clone()));
                        break;
                    }
                }
            }
        }
        if let Some(retry_suite) = self.retry.map(|(s, _)| s) {
            if !offered(&retry_suite) {
                return Err(Error::illegal("second ClientHello does not allow the HelloRetryRequest's suite"));
            }
            if retry_suite.hash != psk_hash {
                // The retry chose a suite our external PSKs cannot be used with.
                psk = None;
            }
        }
        let pick = |need_psk_hash: bool| {
            self.retry.map(|(s, _)| s).or_else(|| {
                config.suites_for(Protocol::Dtls1_3).filter(offered).find(|s| !need_psk_hash || s.hash == psk_hash)
            })
        };
        if let Some(p) = psk {
            let suite = pick(true).ok_or(Error::Crypto)?;
            let dhe = modes.contains(&psk_mode::PSK_DHE_KE);
            return Ok(Choice { suite, psk: Some(p), dhe, cert: None, resumed: None });
        }
        let suite = pick(false).ok_or(Error::PeerIncompatible {
            alert: AlertDescription::HANDSHAKE_FAILURE,
            reason: "no DTLS 1.3 cipher suite in common",
        })?;
        let schemes: Vec<SignatureScheme> = ch
            .extensions
            .signature_algorithms
            .iter()
            .flatten()
            .map(|v| SignatureScheme(*v))
            .filter(|s| SCHEMES.contains(s))
            .collect();
        let resolver = config.certs.as_ref().ok_or(Error::PeerIncompatible {
            alert: if t.pre_shared_key.is_some() {
                AlertDescription::UNKNOWN_PSK_IDENTITY
            } else {
                AlertDescription::HANDSHAKE_FAILURE
            },
            reason: "no PSK the client offers is known, and no certificate",
        })?;
        let usable = |k: &CertifiedKey| k.key().choose_scheme(&schemes).is_some();
        let (cert, by_name) = resolver.resolve(sni, self.local_ip, usable).ok_or(Error::PeerIncompatible {
            alert: AlertDescription::HANDSHAKE_FAILURE,
            reason: "no certificate for a signature scheme the client accepts",
        })?;
        let scheme = cert.key().choose_scheme(&schemes).ok_or(Error::Crypto)?;
        Ok(Choice { suite, psk: None, dhe: true, cert: Some((cert, scheme, by_name)), resumed: None })
    }

    /// Handles a ClientHello. `retry`: the state a verified stateless cookie carried.
    pub(crate) fn client_hello(&mut self, cx: &mut Context<'_>, msg: &Message, ch: &ClientHello) -> Result<(), Error> {
        let config: &Config = cx.config;
        let provider = &*config.provider;
        if ch.client_version != ProtocolVersion::DTLS1_2 || !ch.cookie.is_empty() {
            return Err(Error::illegal("DTLS 1.3 ClientHello with legacy fields of another version"));
        }
        if ch.compression_methods != [0] {
            return Err(Error::illegal("DTLS 1.3 ClientHello must offer only null compression"));
        }
        let t = &ch.extensions.tls13;
        if t.malformed {
            return Err(Error::decode("ClientHello"));
        }
        if t.early_data && self.retry.is_some() {
            return Err(Error::illegal("early_data after a HelloRetryRequest"));
        }
        // A cookie we did not ask for in this handshake: it can only come from our stateless
        // HelloRetryRequest, whose state the caller restored.
        if t.cookie.is_some() && self.retry.is_none() {
            return Err(Error::illegal("cookie we did not send"));
        }
        let sni = super::super::requested_name(ch);
        let choice = self.choose(config, ch, sni.as_deref())?;
        let suite = choice.suite;
        // A client we cannot serve is refused before a retry, a key exchange or anything of
        // the handshake is kept. After a HelloRetryRequest the choice made for the first
        // ClientHello stands (the second offers the same, RFC 8446 §4.1.2): an application's
        // selector is asked once.
        let alpn = match self.alpn_before_retry.take() {
            Some(chosen) => crate::alpn::still_offered(chosen, ch.extensions.alpn.as_ref())?,
            None => crate::alpn::choose(config, ch.extensions.alpn.as_ref(), sni.as_deref())?,
        };

        // The group: a share the client sent, in our order; else ask for one it supports.
        let mut share = None;
        if choice.dhe {
            let shares: &[KeyShareEntry] = match &t.key_share {
                Some(KeyShare::Offered(list)) => list,
                _ => {
                    return Err(Error::PeerMisbehaved {
                        alert: AlertDescription::MISSING_EXTENSION,
                        reason: "DTLS 1.3 ClientHello without key_share",
                    })
                }
            };
            share =
                config.groups.iter().find_map(|g| shares.iter().find(|e| e.group == g.code_point()).map(|e| (*g, e)));
            if share.is_none() {
                if self.retry.is_some() {
                    return Err(Error::illegal("second ClientHello without the key share asked for"));
                }
                let theirs = ch.extensions.supported_groups.as_deref().unwrap_or(&[]);
                let group = config.groups.iter().copied().find(|g| theirs.contains(&g.code_point())).ok_or(
                    Error::PeerIncompatible {
                        alert: AlertDescription::HANDSHAKE_FAILURE,
                        reason: "no key exchange group in common",
                    },
                )?;
                self.alpn_before_retry = Some(alpn);
                return self.send_retry(cx, msg, suite, group);
            }
            if let Some((_, Some(asked))) = self.retry {
                if share.is_some_and(|(g, _)| g != asked) {
                    return Err(Error::illegal("second ClientHello without the key share asked for"));
                }
            }
        }

        // The transcript, through the ClientHello (after the message_hash and
        // HelloRetryRequest of a retry), then the binder check.
        if self.retry.is_none() {
            self.common.transcript.start_hash(provider, suite.hash, false);
        }
        self.common.suite = Some(suite);
        self.common.client_random = ch.random;
        if let Some((index, key, _)) = &choice.psk {
            self.check_binder(config, msg, ch, *index, key, choice.resumed.is_none())?;
        }
        // A ticket for clients that can use one (psk_dhe_ke), unless this handshake rode on an
        // external PSK: resuming it would cost what using that PSK again does.
        let external_psk = choice.psk.is_some() && choice.resumed.is_none();
        self.ticket.wanted =
            !external_psk && t.psk_key_exchange_modes.as_deref().unwrap_or_default().contains(&psk_mode::PSK_DHE_KE);
        self.ticket.sni.clone_from(&sni);
        self.common.add_received(msg);
        self.common.next_send_seq = msg.seq;
        cx.push(Action::PeerFlightStarts(msg.seq));
        cx.push(Action::RequestedServerName(sni.clone()));
        if let (Some(theirs), Some(_)) = (&ch.extensions.connection_id, cx.own_cid) {
            cx.push(Action::PeerConnectionId(theirs.clone()));
        }
        let rrc = cx.accept_rrc(&ch.extensions);

        let mut server_random = [0u8; 32];
        provider.fill_random(&mut server_random)?;
        let mut t13 = Tls13Extensions {
            supported_versions: Some(SupportedVersions::Selected(ProtocolVersion::DTLS1_3)),
            ..Tls13Extensions::default()
        };
        let shared = match share {
            Some((group, entry)) => {
                let accepted = provider
                    .accept_key_exchange(group, &entry.key_exchange)
                    .map_err(|_| Error::illegal("invalid client key share"))?;
                t13.key_share = Some(KeyShare::Chosen(KeyShareEntry {
                    group: group.code_point(),
                    key_exchange: accepted.public_key,
                }));
                cx.push(Action::Group(group));
                Some(accepted.secret)
            }
            None => None,
        };
        if let Some((index, _, _)) = &choice.psk {
            t13.pre_shared_key = Some(PreSharedKey::Selected(*index));
        }
        let hello = ServerHello {
            server_version: ProtocolVersion::DTLS1_2,
            random: server_random,
            // A DTLS 1.3 server echoes no session ID (RFC 9147 §5.3): the client may have sent
            // one of a DTLS 1.2 session.
            session_id: Vec::new(),
            cipher_suite: suite.id,
            compression_method: 0,
            // RFC 9147 §9: connection IDs are negotiated in the hellos, as in DTLS 1.2.
            extensions: HelloExtensions {
                tls13: t13,
                connection_id: ch.extensions.connection_id.as_ref().and(cx.own_cid).map(<[u8]>::to_vec),
                rrc,
                ..HelloExtensions::default()
            },
        };
        let mut body = Vec::with_capacity(128);
        hello.emit(&mut body);
        let mut items = vec![self.common.outgoing(0, HandshakeType::SERVER_HELLO, body)];

        let s = schedule(provider, suite.hash);
        let psk_key = choice.psk.as_ref().map(|(_, k, _)| &k[..]);
        let secret = s.early(psk_key).into_handshake(&s, shared.as_ref().map(|x| x.as_bytes()))?;
        cx.push(Action::Negotiated { suite, extended_master_secret: false });
        if self.retry.is_some() {
            cx.push(Action::HelloRetried);
        }
        match (choice.resumed, choice.psk) {
            (Some(session), _) => {
                cx.push(Action::Resumed);
                if let Some(identity) = &session.psk_identity {
                    cx.push(Action::PskIdentity(identity.clone()));
                }
                if !session.peer_certs.is_empty() {
                    cx.push(Action::PeerCertificates(session.peer_certs.clone()));
                }
                self.ticket.psk_identity = session.psk_identity;
                self.ticket.resumed = Some((session.created, session.peer_certs));
            }
            (None, Some((_, _, identity))) => {
                self.ticket.psk_identity = Some(identity.clone());
                cx.push(Action::PskIdentity(identity));
            }
            (None, None) => {}
        }
        self.common.enter_handshake_epoch(cx, secret, false)?;

        let by_name = choice.cert.as_ref().is_some_and(|(_, _, n)| *n);
        let srtp = cx.accept_srtp(&ch.extensions);
        let alpn = cx.agree_alpn(alpn);
        let mut ee = Vec::with_capacity(16);
        write_encrypted_extensions(&mut ee, by_name, srtp.as_ref(), alpn.as_ref());
        items.push(self.common.outgoing(EPOCH_HANDSHAKE, HandshakeType::ENCRYPTED_EXTENSIONS, ee));
        if let Some((cert, scheme, by_name)) = &choice.cert {
            if *by_name {
                let resolver = config.certs.as_ref();
                self.client_roots = sni.as_deref().and_then(|n| resolver.and_then(|r| r.client_roots(n)));
            }
            if config.client_auth != ClientAuth::None {
                let mut body = Vec::with_capacity(32);
                write_certificate_request(&mut body);
                items.push(self.common.outgoing(EPOCH_HANDSHAKE, HandshakeType::CERTIFICATE_REQUEST, body));
                self.cert_requested = true;
            }
            self.common.certificate_flight(&[], Some((cert, *scheme)), true, &mut items)?;
        }
        items.push(self.common.finished(config, false)?);
        self.common.enter_application_epoch(cx, false)?;
        self.expect = if self.cert_requested { Expect::Certificate } else { Expect::Finished };
        cx.push(Action::Send { items, awaits_reply: true });
        // What we send from now on (ACKs of the client's flight, alerts) goes in the
        // application epoch: a client sends its second flight only once it has read our
        // Finished, so it has these keys, and some keep no others (the flight itself keeps
        // the epochs of its messages when retransmitted).
        cx.push(Action::WriteEpoch(EPOCH_APPLICATION));
        Ok(())
    }

    /// Checks the binder of PSK identity `index` over the ClientHello up to its binders.
    fn check_binder(
        &self,
        config: &Config,
        msg: &Message,
        ch: &ClientHello,
        index: u16,
        key: &[u8],
        external: bool,
    ) -> Result<(), Error> {
        let Some(psk @ PreSharedKey::Offered { binders, .. }) = &ch.extensions.tls13.pre_shared_key else {
            return Err(Error::Crypto);
        };
        let binder = binders.get(usize::from(index)).ok_or(Error::Crypto)?;
        let truncated = msg.body.len().checked_sub(psk.binders_len()).ok_or(Error::decode("ClientHello"))?;
        // The suite chosen has the PSK's hash (SHA-256 for external PSKs, the session's for a
        // ticket).
        let s = self.common.schedule(config)?;
        let binder_key = s.early(Some(key)).binder_key(&s, external)?;
        let mut h = self.common.transcript.fork_hash().ok_or(Error::Crypto)?;
        let mut head = [0u8; 4];
        head[0] = HandshakeType::CLIENT_HELLO.0;
        head[1..].copy_from_slice(&(msg.body.len() as u32).to_be_bytes()[1..]);
        h.update(&head);
        h.update(&msg.body[..truncated]);
        let expected = s.verify_data(&binder_key, h.current().as_bytes())?;
        if !ct_eq(expected.as_bytes(), binder) {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::DECRYPT_ERROR,
                reason: "the PSK binder does not verify (wrong pre-shared key?)",
            });
        }
        Ok(())
    }

    /// Sends a HelloRetryRequest asking for a share of `group`, with the transcript restarted
    /// from the first ClientHello's hash.
    fn send_retry(
        &mut self,
        cx: &mut Context<'_>,
        msg: &Message,
        suite: &'static CipherSuite,
        group: KxGroup,
    ) -> Result<(), Error> {
        let provider = &*cx.config.provider;
        let ch1 = tls13_message(HandshakeType::CLIENT_HELLO, &msg.body);
        let ch1_hash = provider.hash(suite.hash, &[&ch1]);
        self.restore_retry(
            provider,
            RetryState { ch1_hash: ch1_hash.as_bytes().to_vec(), suite, group: Some(group) },
            None,
        );
        self.common.next_send_seq = msg.seq;
        cx.push(Action::PeerFlightStarts(msg.seq));
        // The suite is chosen (the ServerHello must repeat it): DTLS 1.3's acknowledgements
        // apply from here on.
        cx.push(Action::Negotiated { suite, extended_master_secret: false });
        let body = hello_retry_request(suite.id, Some(group.code_point()), None);
        let item = self.common.outgoing(0, HandshakeType::SERVER_HELLO, body);
        // We keep state, so we retransmit it on a timer like any flight, until the client
        // acknowledges it (a plaintext ACK) or any part of its second ClientHello arrives. The
        // client's repeated first ClientHello also brings it again.
        cx.push(Action::Send { items: vec![item], awaits_reply: true });
        Ok(())
    }

    /// Restarts the transcript as after a HelloRetryRequest: `message_hash` of the first
    /// ClientHello, then the HelloRetryRequest (rebuilt from `state`, with `cookie` if it was
    /// stateless; it is added by [`send_retry`](Self::send_retry) when sent here).
    pub(crate) fn restore_retry(
        &mut self,
        provider: &dyn crate::crypto::CryptoProvider,
        state: RetryState,
        cookie: Option<&[u8]>,
    ) {
        self.common.transcript.restart(&message_hash(&state.ch1_hash));
        self.common.transcript.start_hash(provider, state.suite.hash, false);
        if let Some(cookie) = cookie {
            let hrr = hello_retry_request(state.suite.id, state.group.map(|g| g.code_point()), Some(cookie));
            self.common.transcript.add_tls13(HandshakeType::SERVER_HELLO, &hrr);
        }
        self.retry = Some((state.suite, state.group));
        self.common.suite = Some(state.suite);
    }

    fn certificate(&mut self, cx: &mut Context<'_>, msg: &Message) -> Result<(), Error> {
        let (context, chain) = parse_certificate(&msg.body).ok_or(Error::decode("Certificate"))?;
        if !context.is_empty() {
            return Err(Error::illegal("client Certificate with a context we did not send"));
        }
        self.common.add_received(msg);
        cx.push(Action::PeerFlightStarts(msg.seq));
        // Without a certificate (when allowed) the client's Finished comes next.
        self.expect = Expect::Finished;
        let (ee, trusted) = crate::handshake::check_client_chain(cx, self.client_roots.as_deref(), chain)?;
        self.common.peer_ee = ee;
        self.ticket.peer_untrusted = !trusted;
        if self.common.peer_ee.is_some() {
            self.expect = Expect::CertificateVerify;
        }
        Ok(())
    }
}
