//! Resumption in DTLS 1.2 (RFC 5246 §7.3, RFC 5077, RFC 6347 §4.2.4): the session a full
//! handshake leaves (in the server's cache, in a ticket, in the client's store), and the
//! abbreviated handshake that resumes it.
//!
//! ```text
//!   Client                                   Server
//!   ClientHello (session ID, ticket) -------->
//!                                              ServerHello (the same session ID)
//!                                        [NewSessionTicket]
//!                                        [ChangeCipherSpec]
//!                                   <--------        Finished
//!   [ChangeCipherSpec]
//!   Finished                         -------->
//! ```
//!
//! The client sends the last flight: it keeps it to answer the server's retransmissions.

use crate::codec::{Put, Reader};
use crate::config::Config;
use crate::enums::{AlertDescription, HandshakeType, Protocol, ProtocolVersion, Side};
use crate::error::Error;
use crate::handshake::reassembly::Message;
use crate::handshake::{Action, Context, FlightItem};
use crate::messages::{ClientHello, ServerHello};
use crate::pki::CertificateDer;
use crate::resumption::{unix_now, Session};
use crate::suites::CipherSuite;

use super::server::{Expect, Server};
use super::Common;

/// What a server handshake keeps for resumption.
#[derive(Debug, Default)]
pub(crate) struct ServerResumption {
    /// The session ID of our ServerHello (empty: none).
    pub(super) session_id: Vec<u8>,
    /// The client asked for a ticket and we issue one: with our last flight.
    pub(super) issue_ticket: bool,
    /// The ticket went out (not empty): the session is not also kept under its session ID.
    ticket_issued: bool,
    /// This is an abbreviated handshake.
    pub(super) resumed: bool,
    pub(super) sni: Option<String>,
    pub(super) psk_identity: Option<Vec<u8>>,
    /// The client's certificate did not verify (and the application went on): the session is
    /// not resumable.
    pub(super) peer_untrusted: bool,
    /// A resumed session's creation time and client certificates, for its new ticket.
    created: Option<u64>,
    peer_certs: Vec<CertificateDer<'static>>,
}

/// What a client handshake keeps for resumption.
#[derive(Debug, Default)]
pub(crate) struct ClientResumption {
    /// We ask for resumable sessions and keep them.
    pub(super) keep: bool,
    /// The session we offer.
    pub(super) offered: Option<Session>,
    /// The session ID of our ClientHello (the offered session's, or one of ours with a ticket).
    pub(super) session_id: Vec<u8>,
    /// The server's session ID.
    pub(super) server_session_id: Vec<u8>,
    /// The session the server resumed: this is an abbreviated handshake.
    pub(super) resumed: Option<Session>,
    /// The server promised a ticket; and the ticket, with its lifetime hint.
    pub(super) ticket_promised: bool,
    pub(super) ticket: Option<(u32, Vec<u8>)>,
    /// The server's chain, for the session (when `keep`), and whether it verified.
    pub(super) peer_chain: Vec<CertificateDer<'static>>,
    pub(super) peer_untrusted: bool,
    pub(super) psk_identity: Option<Vec<u8>>,
}

/// The suite of `session` if `config` still allows it, and DTLS 1.2.
fn session_suite(config: &Config, session: &Session) -> Option<&'static CipherSuite> {
    if session.protocol != Protocol::Dtls1_2
        || session.secret.len() != super::MASTER_SECRET_LEN
        || !config.enables(Protocol::Dtls1_2)
    {
        return None;
    }
    config.suites_for(Protocol::Dtls1_2).find(|s| s.id == session.suite)
}

/// Whether `config` can resume `session` at all: its version and suite are allowed, and its
/// use of the extended master secret is acceptable.
fn usable(config: &Config, session: &Session) -> Option<&'static CipherSuite> {
    let suite = session_suite(config, session)?;
    let ems_ok =
        session.extended_master_secret || config.extended_master_secret != crate::config::ExtendedMasterSecret::Require;
    (ems_ok && session.is_valid_at(unix_now(config))).then_some(suite)
}

impl Server {
    /// The session the ClientHello asks to resume, by ticket or else by session ID, if we can
    /// resume it for this hello: same suite offered, same SNI name, same session context, an
    /// identity this server still accepts (a client certificate if it requires one, a PSK
    /// identity its callback knows), and still valid. Anything else: a full handshake. A
    /// hello without the extended master secret for a session that used it is refused (RFC
    /// 7627 §5.3).
    pub(super) fn find_session(
        &self,
        config: &Config,
        ch: &ClientHello,
        sni: Option<&str>,
    ) -> Result<Option<Session>, Error> {
        let Some(session) = self.offered_session(config, ch) else { return Ok(None) };
        let Some(suite) = usable(config, &session) else { return Ok(None) };
        if session.extended_master_secret && !ch.extensions.extended_master_secret {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::HANDSHAKE_FAILURE,
                reason: "client resumes an extended master secret session without the extension",
            });
        }
        let kx = suite.key_exchange;
        let identity_ok = match (&session.psk_identity, &config.server_psk) {
            (Some(identity), Some(callback)) => callback(identity).is_some(),
            (None, _) => !kx.uses_psk(),
            (Some(_), None) => false,
        };
        let cert_ok = !(kx.uses_certificate()
            && config.client_auth == crate::config::ClientAuth::Required
            && session.peer_certs.is_empty());
        let fits = ch.cipher_suites.contains(&suite.id)
            && session.extended_master_secret == ch.extensions.extended_master_secret
            && session.server_name.as_deref() == sni
            && session.context == config.resumption.context
            && identity_ok
            && cert_ok;
        Ok(fits.then_some(session))
    }

    /// The session named by the hello's ticket, or else by its session ID.
    fn offered_session(&self, config: &Config, ch: &ClientHello) -> Option<Session> {
        let now = unix_now(config);
        let provider = &*config.provider;
        let by_ticket = match (&ch.extensions.session_ticket, config.ticket_keys()) {
            (Some(ticket), Some(keys)) if !ticket.is_empty() => {
                keys.open(provider, now, ticket).and_then(|plain| Session::from_bytes(&plain))
            }
            _ => None,
        };
        by_ticket.or_else(|| config.session_cache()?.get(&ch.session_id, now))
    }

    /// Answers with the abbreviated handshake's flight: ServerHello (with `alpn`, the
    /// application protocol chosen), a new ticket if asked for, ChangeCipherSpec and Finished.
    pub(super) fn resume(
        &mut self,
        cx: &mut Context<'_>,
        msg: &Message,
        ch: &ClientHello,
        session: Session,
        sni: Option<String>,
        alpn: Option<Vec<u8>>,
    ) -> Result<(), Error> {
        let config: &Config = cx.config;
        let suite = session_suite(config, &session).ok_or(Error::Crypto)?;
        self.resumption.resumed = true;
        self.resumption.sni.clone_from(&sni);
        cx.push(Action::RequestedServerName(sni));
        cx.push(Action::Resumed);
        let extensions = self.hello_extensions(cx, ch, alpn);
        self.start_server_hello(cx, msg, ch, suite, false)?;
        let common = &mut self.common;
        // No server_name acknowledgement when resuming (RFC 6066 §3).
        let hello = ServerHello {
            server_version: ProtocolVersion::DTLS1_2,
            random: common.server_random,
            session_id: ch.session_id.clone(),
            cipher_suite: suite.id,
            compression_method: 0,
            extensions,
        };
        let mut sh = Vec::with_capacity(96);
        hello.emit(&mut sh);
        let mut items = vec![common.outgoing(0, HandshakeType::SERVER_HELLO, sh)];
        common.negotiated(cx, suite, session.extended_master_secret);
        if let Some(identity) = &session.psk_identity {
            cx.push(Action::PskIdentity(identity.clone()));
        }
        if !session.peer_certs.is_empty() {
            cx.push(Action::PeerCertificates(session.peer_certs.clone()));
        }
        common.install_master(cx, &session.secret, Side::Server)?;
        self.resumption.psk_identity = session.psk_identity;
        self.resumption.created = Some(session.created);
        self.resumption.peer_certs = session.peer_certs;
        if let Some(ticket) = self.new_session_ticket(cx)? {
            items.push(ticket);
        }
        items.extend(self.common.finished(config, false)?);
        self.expect = Expect::Finished;
        cx.push(Action::Send { items, awaits_reply: true });
        cx.push(Action::WriteEpoch(1));
        Ok(())
    }

    /// The session this handshake established, unless the client's certificate did not
    /// verify.
    fn session(&self, config: &Config) -> Option<Session> {
        let suite = self.common.suite?;
        let master = self.common.master.as_ref()?;
        if self.resumption.peer_untrusted {
            return None;
        }
        let peer_certs = match self.resumption.created {
            Some(_) => self.resumption.peer_certs.clone(),
            None => self.common.peer_ee.iter().cloned().collect(),
        };
        let session = Session {
            protocol: Protocol::Dtls1_2,
            suite: suite.id,
            extended_master_secret: self.common.extended_master_secret,
            secret: zeroize::Zeroizing::new(master.to_vec()),
            created: self.resumption.created.unwrap_or_else(|| unix_now(config)),
            lifetime: config.resumption.lifetime_secs(),
            server_name: self.resumption.sni.clone(),
            context: config.resumption.context.clone(),
            psk_identity: self.resumption.psk_identity.clone(),
            peer_certs,
            session_id: Vec::new(),
            ticket: Vec::new(),
            age_add: 0,
        };
        session.fits().then_some(session)
    }

    /// The NewSessionTicket we promised, if we did (an empty ticket if the session is not
    /// resumable, RFC 5077 §3.3).
    pub(super) fn new_session_ticket(&mut self, cx: &mut Context<'_>) -> Result<Option<FlightItem>, Error> {
        let config: &Config = cx.config;
        let (true, Some(keys)) = (self.resumption.issue_ticket, config.ticket_keys()) else {
            return Ok(None);
        };
        let mut body = Vec::with_capacity(512);
        // A session that is not resumable, or too long a ticket for a ClientHello: an empty
        // ticket (a session ID may remain).
        let issued = match self.session(config) {
            Some(session) => crate::resumption::issue_ticket(config, keys, &session)?,
            None => None,
        };
        match issued {
            Some((ticket, hint)) => {
                body.extend_from_slice(&hint.to_be_bytes());
                body.put_vec16(&ticket);
                self.resumption.ticket_issued = true;
            }
            None => body.extend_from_slice(&[0; 6]),
        }
        Ok(Some(self.common.outgoing(0, HandshakeType::NEW_SESSION_TICKET, body)))
    }

    /// Keeps a full handshake's session in the cache under the ID we gave it, and tells the
    /// application. Not when the client got a ticket for it: it resumes with that, and the
    /// cache keeps its room for clients without tickets (as BoringSSL does).
    pub(super) fn cache_session(&self, cx: &mut Context<'_>) {
        if self.resumption.ticket_issued {
            return;
        }
        let config: &Config = cx.config;
        let (Some(cache), Ok(id)) = (config.session_cache(), <[u8; 32]>::try_from(&self.resumption.session_id[..]))
        else {
            return;
        };
        if let Some(session) = self.session(config) {
            cache.insert(id, session);
            cx.push(Action::SessionCached);
        }
    }
}

/// Client: the session to offer to the server named `name` (see
/// [`server_name_key`](crate::resumption::server_name_key)), if `config` can resume it and
/// it was made with a server of that name: a session vouches for the certificate its server
/// showed, under the name checked then.
fn offerable(config: &Config, session: Option<Session>, name: Option<&str>) -> Option<Session> {
    session.filter(|s| s.is_resumable() && s.server_name.as_deref() == name && usable(config, s).is_some())
}

/// Parses a NewSessionTicket body: the lifetime hint and the ticket.
pub(super) fn parse_new_session_ticket(body: &[u8]) -> Option<(u32, Vec<u8>)> {
    let mut r = Reader::new(body);
    let hint = u32::from_be_bytes(r.take_array()?);
    let ticket = r.vec16()?.to_vec();
    r.finish()?;
    Some((hint, ticket))
}

impl ClientResumption {
    /// What a client's hello offers: `session` if it can be resumed with the server `name`,
    /// named by its session ID, or by its ticket and a session ID of ours that the server
    /// echoes if it resumes (RFC 5077 §3.4). Sessions are asked for and kept if the
    /// configuration says so, or `keep`.
    pub(crate) fn offering(
        cx: &Context<'_>,
        session: Option<Session>,
        name: Option<&crate::pki::ServerName<'static>>,
        keep: bool,
    ) -> Result<Self, Error> {
        let name = name.map(crate::resumption::server_name_key);
        let mut r = Self { keep: cx.config.resumption.client || keep, ..Self::default() };
        r.offered = offerable(cx.config, session, name.as_deref());
        if let Some(s) = &r.offered {
            r.session_id = s.session_id.clone();
            if r.session_id.is_empty() {
                r.session_id = vec![0; 32];
                cx.config.provider.fill_random(&mut r.session_id)?;
            }
        }
        Ok(r)
    }

    /// The hello's session_ticket extension: the offered session's ticket, or a request for
    /// one when we keep sessions.
    pub(crate) fn ticket_extension(&self) -> Option<Vec<u8>> {
        match &self.offered {
            Some(s) if !s.ticket.is_empty() => Some(s.ticket.clone()),
            _ => self.keep.then(Vec::new),
        }
    }

    /// The session ID the hello carries.
    pub(crate) fn session_id(&self) -> &[u8] {
        &self.session_id
    }

    /// Client, at the ServerHello: whether it resumes the session we offered. A server that
    /// echoes the session ID we sent resumes it, and must keep its suite and its use of the
    /// extended master secret.
    pub(super) fn resumes(&mut self, sh: &ServerHello, suite: &CipherSuite, ems: bool) -> Result<bool, Error> {
        self.server_session_id.clone_from(&sh.session_id);
        if sh.session_id.is_empty() || sh.session_id != self.session_id {
            return Ok(false);
        }
        let Some(session) = self.offered.take() else { return Ok(false) };
        if session.suite != suite.id {
            return Err(Error::illegal("server resumed a session with another cipher suite"));
        }
        if session.extended_master_secret != ems {
            // RFC 7627 §5.3: the abbreviated handshake must keep the session's choice.
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::HANDSHAKE_FAILURE,
                reason: "server resumed a session with a different extended master secret use",
            });
        }
        self.resumed = Some(session);
        Ok(true)
    }

    /// The session of the completed handshake, for the engine to keep, if the server gave it
    /// a name and we keep sessions; and whether it is new (a full handshake, or a resumption
    /// whose server renewed the ticket) rather than the one just resumed.
    pub(super) fn new_session(
        &mut self,
        config: &Config,
        common: &Common,
        server_name: Option<&str>,
    ) -> Option<(Session, bool)> {
        if !self.keep || self.peer_untrusted {
            return None;
        }
        let suite = common.suite?;
        let master = common.master.as_ref()?;
        let now = unix_now(config);
        let lifetime = match &self.ticket {
            Some((hint, _)) if *hint > 0 => (*hint).min(config.resumption.lifetime_secs()),
            _ => config.resumption.lifetime_secs(),
        };
        let resumed = self.resumed.take();
        let new_ticket = self.ticket.take();
        let renewed = resumed.is_none() || new_ticket.is_some();
        let session = Session {
            protocol: Protocol::Dtls1_2,
            suite: suite.id,
            extended_master_secret: common.extended_master_secret,
            secret: zeroize::Zeroizing::new(master.to_vec()),
            created: resumed.as_ref().map_or(now, |s| s.created),
            lifetime: resumed.as_ref().map_or(lifetime, |s| s.lifetime),
            server_name: server_name.map(str::to_owned),
            context: Vec::new(),
            psk_identity: match &resumed {
                Some(s) => s.psk_identity.clone(),
                None => self.psk_identity.take(),
            },
            peer_certs: match &resumed {
                Some(s) => s.peer_certs.clone(),
                None => core::mem::take(&mut self.peer_chain),
            },
            session_id: core::mem::take(&mut self.server_session_id),
            // An empty NewSessionTicket takes the old ticket back (RFC 5077 §3.3).
            ticket: match new_ticket {
                Some((_, t)) => t,
                None => resumed.map(|s| s.ticket).unwrap_or_default(),
            },
            age_add: 0,
        };
        (session.is_resumable() && session.fits()).then_some((session, renewed))
    }
}
