//! Resumption in DTLS 1.3 (RFC 8446 §2.2, §4.2.11, §4.6.1): after a handshake the server sends
//! a NewSessionTicket (a post-handshake message, acknowledged, RFC 9147 §5.8); its ticket names
//! a PSK derived from the handshake's resumption master secret, which the client offers in a
//! later ClientHello with a binder ("res binder") and the ticket's obfuscated age. Only
//! psk_dhe_ke: every resumed handshake has a fresh (EC)DHE exchange. No 0-RTT.
//!
//! Tickets are sealed with the same [`TicketKeys`](crate::resumption::TicketKeys) as DTLS 1.2's:
//! servers that share the secret resume each other's sessions.

use crate::config::Config;
use crate::crypto::HashAlgorithm;
use crate::enums::Protocol;
use crate::error::Error;
use crate::messages::tls13::{psk_mode, NewSessionTicket13, PreSharedKey};
use crate::messages::ClientHello;
use crate::pki::{CertificateDer, ServerName};
use crate::resumption::{server_name_key, unix_now, Session};
use crate::suites::CipherSuite;

use super::key_schedule::{MasterSecret, Schedule};

/// Most of the client's PSK identities the server tries as tickets.
const MAX_TICKETS_TRIED: usize = 4;

/// The nonce of our (single) ticket per connection.
const TICKET_NONCE: [u8; 1] = [0];

/// A ticket a client offers: the session, the hash its PSK goes with, its obfuscated age.
#[derive(Debug)]
pub(super) struct TicketOffer {
    pub(super) session: Session,
    pub(super) hash: HashAlgorithm,
    pub(super) age: u32,
}

/// The suite of a DTLS 1.3 session if `config` still allows it.
fn session_suite(config: &Config, session: &Session) -> Option<&'static CipherSuite> {
    if session.protocol != Protocol::Dtls1_3 || !config.enables(Protocol::Dtls1_3) {
        return None;
    }
    config.suites_for(Protocol::Dtls1_3).find(|s| s.id == session.suite)
}

/// Client: the DTLS 1.3 session to offer to the server `name`, if it is still valid, was made
/// with a server of that name, and its suite is still allowed.
pub(super) fn ticket_offer(
    config: &Config,
    session: Option<Session>,
    name: Option<&ServerName<'static>>,
) -> Option<TicketOffer> {
    let session = session?;
    let now = unix_now(config);
    let name = name.map(server_name_key);
    if session.ticket.is_empty() || !session.is_valid_at(now) || session.server_name != name {
        return None;
    }
    let suite = session_suite(config, &session)?;
    let age_ms = now.saturating_sub(session.created).saturating_mul(1000);
    let age = (age_ms as u32).wrapping_add(session.age_add);
    Some(TicketOffer { hash: suite.hash, age, session })
}

/// Server: the first of the client's PSK identities that is a ticket of ours for a DTLS 1.3
/// session this server can resume for this hello: its index, the session, and the suite (the
/// session's, which the client must offer). The client must allow psk_dhe_ke; the session
/// must be valid, for the same SNI name and session context, and still meet the server's
/// client authentication and PSK identities. Anything else: `None`, a full handshake.
pub(super) fn find_ticket(
    config: &Config,
    ch: &ClientHello,
    sni: Option<&str>,
) -> Option<(u16, Session, &'static CipherSuite)> {
    let t = &ch.extensions.tls13;
    let keys = config.ticket_keys()?;
    let Some(PreSharedKey::Offered { identities, .. }) = &t.pre_shared_key else { return None };
    if !t.psk_key_exchange_modes.as_deref().unwrap_or_default().contains(&psk_mode::PSK_DHE_KE) {
        return None;
    }
    let now = unix_now(config);
    let provider = &*config.provider;
    identities.iter().take(MAX_TICKETS_TRIED).enumerate().find_map(|(i, id)| {
        let plain = keys.open(provider, now, &id.identity)?;
        let session = Session::from_bytes(&plain)?;
        let suite = session_suite(config, &session).filter(|s| ch.cipher_suites.contains(&s.id))?;
        let identity_ok = match (&session.psk_identity, &config.server_psk) {
            (Some(identity), Some(callback)) => callback(identity).is_some(),
            (Some(_), None) => false,
            (None, _) => true,
        };
        let cert_ok = !(config.client_auth == crate::config::ClientAuth::Required
            && session.psk_identity.is_none()
            && session.peer_certs.is_empty());
        let fits = session.is_valid_at(now)
            && session.server_name.as_deref() == sni
            && session.context == config.resumption.context
            && identity_ok
            && cert_ok;
        fits.then_some((i as u16, session, suite))
    })
}

/// What a completed handshake's session is made of, besides its secret.
pub(super) struct SessionParts<'a> {
    pub(super) suite: &'static CipherSuite,
    pub(super) server_name: Option<String>,
    pub(super) psk_identity: Option<Vec<u8>>,
    pub(super) peer_certs: &'a [CertificateDer<'static>],
    /// A resumed session's creation time: the new one keeps it.
    pub(super) created: Option<u64>,
}

impl SessionParts<'_> {
    /// The session, with `secret`.
    pub(super) fn session(&self, config: &Config, secret: &[u8]) -> Session {
        Session {
            protocol: Protocol::Dtls1_3,
            suite: self.suite.id,
            extended_master_secret: false,
            secret: zeroize::Zeroizing::new(secret.to_vec()),
            created: self.created.unwrap_or_else(|| unix_now(config)),
            lifetime: config.resumption.lifetime_secs(),
            server_name: self.server_name.clone(),
            context: Vec::new(),
            psk_identity: self.psk_identity.clone(),
            peer_certs: self.peer_certs.to_vec(),
            session_id: Vec::new(),
            ticket: Vec::new(),
            age_add: 0,
        }
    }
}

/// Server: the body of the NewSessionTicket for a completed handshake (its transcript through
/// the client's Finished hashes to `transcript_hash`), or `None` when tickets are off, the
/// client cannot use one (no psk_dhe_ke) or the session does not fit a ticket.
pub(super) fn new_session_ticket(
    config: &Config,
    s: &Schedule<'_>,
    master: &MasterSecret,
    transcript_hash: &[u8],
    parts: &SessionParts<'_>,
) -> Result<Option<Vec<u8>>, Error> {
    let Some(keys) = config.ticket_keys() else { return Ok(None) };
    let resumption = master.resumption(s, transcript_hash)?;
    let psk = s.resumption_psk(&resumption, &TICKET_NONCE)?;
    let mut session = parts.session(config, psk.as_bytes());
    session.context.clone_from(&config.resumption.context);
    if !session.fits() {
        return Ok(None);
    }
    let Some((ticket, lifetime)) = crate::resumption::issue_ticket(config, keys, &session)? else {
        return Ok(None);
    };
    let mut age_add = [0u8; 4];
    config.provider.fill_random(&mut age_add)?;
    let mut body = Vec::with_capacity(16 + ticket.len());
    NewSessionTicket13 { lifetime, age_add: u32::from_be_bytes(age_add), nonce: &TICKET_NONCE, ticket: &ticket }
        .write(&mut body);
    Ok(Some(body))
}

/// Client: the session a NewSessionTicket gives, from `template` (the connection's session,
/// whose secret is the resumption master secret), or `None` if the ticket may not be used.
pub(crate) fn session_from_ticket(config: &Config, template: &Session, body: &[u8]) -> Result<Option<Session>, Error> {
    let nst = NewSessionTicket13::parse(body).ok_or(Error::decode("NewSessionTicket"))?;
    let suite = crate::suites::ALL.iter().find(|s| s.id == template.suite).ok_or(Error::Crypto)?;
    if nst.lifetime == 0 {
        return Ok(None);
    }
    let s = super::schedule(&*config.provider, suite.hash);
    let resumption = super::key_schedule::Secret::from_bytes(&template.secret);
    let psk = s.resumption_psk(&resumption, nst.nonce)?;
    let mut session = template.clone();
    session.secret = zeroize::Zeroizing::new(psk.as_bytes().to_vec());
    session.created = unix_now(config);
    session.lifetime = nst.lifetime.min(config.resumption.lifetime_secs());
    session.ticket = nst.ticket.to_vec();
    session.age_add = nst.age_add;
    Ok(session.fits().then_some(session))
}
