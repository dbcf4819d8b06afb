//! Session resumption: what a handshake leaves behind so that the next one can be short.
//!
//! - A [`Session`] is the state an abbreviated handshake resumes: the protocol version, cipher
//!   suite and master secret of a full handshake, with what it established about the peer
//!   (its certificates, PSK identity, SNI name). Clients keep it, with the session ID or
//!   ticket that names it to the server; it encodes to bytes so that an application can keep
//!   it on disk ([`Session::to_bytes`]).
//! - Clients keep sessions in a [`SessionStore`], bounded and keyed by server name and address,
//!   given to [`ConfigBuilder::session_store`](crate::ConfigBuilder::session_store).
//! - Servers find sessions again by session ID in a bounded [`SessionCache`], or open them
//!   from RFC 5077 tickets sealed with [`TicketKeys`]: keys derived from a secret that
//!   several processes or machines can share, rotating on a schedule.
//!
//! A ticket that does not open, an unknown session ID, or a session that does not match the
//! new ClientHello (another suite, another SNI name, a different use of the extended master
//! secret, RFC 7627 §5.3) gives a full handshake, never a failure.

mod cache;
mod config;
mod store;
mod ticket;

use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::codec::{Put, Reader};
use crate::enums::Protocol;
use crate::pki::CertificateDer;

pub use cache::SessionCache;
pub use store::SessionStore;
pub use ticket::{TicketKeys, DEFAULT_TICKET_KEY_PERIOD, MIN_TICKET_KEY_PERIOD};

/// Default lifetime of a session: two hours, as OpenSSL's.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// Longest session lifetime accepted: seven days (the limit RFC 8446 §4.6.1 sets for tickets).
pub const MAX_SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Default number of sessions a server's [`SessionCache`] holds.
pub const DEFAULT_SESSION_CACHE_SIZE: usize = 256;

/// Longest encoded session accepted (a peer chain of a few certificates fits).
pub const MAX_SESSION_LEN: usize = 32 * 1024;

/// Most certificates of the peer's chain a session keeps.
const MAX_SESSION_CERTS: usize = 10;

/// The format of [`Session::to_bytes`] (and of what tickets seal).
const SESSION_FORMAT: u8 = 2;

/// Longest session ID context ([`ConfigBuilder::session_id_context`](crate::ConfigBuilder::session_id_context)).
pub const MAX_SESSION_CONTEXT_LEN: usize = 32;

/// A resumable session: what the next handshake with the same peer can resume instead of
/// running a full handshake.
#[derive(Clone)]
pub struct Session {
    pub(crate) protocol: Protocol,
    pub(crate) suite: u16,
    pub(crate) extended_master_secret: bool,
    /// DTLS 1.2's master secret.
    pub(crate) secret: Zeroizing<Vec<u8>>,
    /// When the full handshake completed, in seconds since the Unix epoch.
    pub(crate) created: u64,
    /// How long the session may be resumed, in seconds from `created`.
    pub(crate) lifetime: u32,
    /// The name of the full handshake's server: the SNI name the server saw, or the name (or
    /// IP address) the client checked the certificate against. Both check it again.
    pub(crate) server_name: Option<String>,
    /// Server: the application's session context the session was made under.
    pub(crate) context: Vec<u8>,
    pub(crate) psk_identity: Option<Vec<u8>>,
    /// The peer's certificates, end entity first (a server keeps only the client's end entity).
    pub(crate) peer_certs: Vec<CertificateDer<'static>>,
    /// Client: the session ID the server gave (DTLS 1.2).
    pub(crate) session_id: Vec<u8>,
    /// Client: the server's ticket.
    pub(crate) ticket: Vec<u8>,
    /// Client, DTLS 1.3: what obscures the ticket's age (RFC 8446 §4.6.1).
    pub(crate) age_add: u32,
}

/// Only what identifies the session: never its secret.
impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("protocol", &self.protocol)
            .field("suite", &format_args!("{:#06x}", self.suite))
            .field("extended_master_secret", &self.extended_master_secret)
            .field("created", &self.created)
            .field("lifetime", &self.lifetime)
            .field("server_name", &self.server_name)
            .field("session_id", &self.session_id.len())
            .field("ticket", &self.ticket.len())
            .finish_non_exhaustive()
    }
}

/// Equal sessions: the secret compared in constant time.
impl PartialEq for Session {
    fn eq(&self, other: &Self) -> bool {
        crate::crypto::ct_eq(&self.secret, &other.secret)
            && self.protocol == other.protocol
            && self.suite == other.suite
            && self.extended_master_secret == other.extended_master_secret
            && self.created == other.created
            && self.lifetime == other.lifetime
            && self.server_name == other.server_name
            && self.context == other.context
            && self.psk_identity == other.psk_identity
            && self.peer_certs == other.peer_certs
            && self.session_id == other.session_id
            && self.ticket == other.ticket
            && self.age_add == other.age_add
    }
}

impl Eq for Session {}

impl Session {
    /// Whether every field fits its encoding (the limits [`from_bytes`](Self::from_bytes)
    /// checks): a session that does not is never kept nor sealed. A field cut short would
    /// shift the ones after it, and let a peer write what a ticket says.
    pub(crate) fn fits(&self) -> bool {
        let certs_len: usize = self.peer_certs.iter().map(|c| 3 + c.as_ref().len()).sum();
        !self.secret.is_empty()
            && self.secret.len() <= 64
            && self.server_name.as_ref().is_none_or(|n| !n.is_empty() && n.len() <= 255)
            && self.context.len() <= MAX_SESSION_CONTEXT_LEN
            && self.psk_identity.as_ref().is_none_or(|i| !i.is_empty() && i.len() <= crate::MAX_PSK_IDENTITY_LEN)
            && self.session_id.len() <= 32
            && self.ticket.len() <= usize::from(u16::MAX)
            && self.peer_certs.len() <= MAX_SESSION_CERTS
            && self.peer_certs.iter().all(|c| !c.as_ref().is_empty() && c.as_ref().len() < 1 << 24)
            && 128 + self.ticket.len() + certs_len <= MAX_SESSION_LEN
    }

    /// The protocol version of the session.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The cipher suite's code point.
    pub fn cipher_suite(&self) -> u16 {
        self.suite
    }

    /// The session ID the server gave it (DTLS 1.2; empty: none).
    pub fn session_id(&self) -> &[u8] {
        &self.session_id
    }

    /// The server's ticket (opaque; empty: none).
    pub fn ticket(&self) -> &[u8] {
        &self.ticket
    }

    /// The SNI name the session was established for.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// When the session stops being resumable, in seconds since the Unix epoch.
    pub fn expires(&self) -> u64 {
        self.created.saturating_add(u64::from(self.lifetime))
    }

    /// Whether the session can still be resumed at `now` (seconds since the Unix epoch). A
    /// session from the future (a clock that went back) is not.
    pub fn is_valid_at(&self, now: u64) -> bool {
        self.created <= now.saturating_add(60) && now < self.expires()
    }

    /// Whether a server gave this session a name to resume it by (an ID or a ticket).
    pub fn is_resumable(&self) -> bool {
        !self.session_id.is_empty() || !self.ticket.is_empty()
    }

    /// The session as bytes, to keep (the master secret included: keep them as secret as a
    /// private key).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(128 + self.ticket.len()));
        self.encode(&mut out, usize::MAX);
        out
    }

    /// Reads a session written by [`to_bytes`](Self::to_bytes); `None` if the bytes are not
    /// one (a different format, or damaged).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > MAX_SESSION_LEN {
            return None;
        }
        let mut r = Reader::new(bytes);
        let session = Self::decode(&mut r)?;
        r.finish()?;
        Some(session)
    }

    /// Appends the encoding, with at most `max_certs` certificates of the peer's chain.
    pub(crate) fn encode(&self, out: &mut Vec<u8>, max_certs: usize) {
        out.put_u8(SESSION_FORMAT);
        out.put_u8(match self.protocol {
            Protocol::Dtls1_2 => 2,
            Protocol::Dtls1_3 => 3,
        });
        out.put_u16(self.suite);
        out.put_u8(u8::from(self.extended_master_secret));
        out.extend_from_slice(&self.created.to_be_bytes());
        out.extend_from_slice(&self.lifetime.to_be_bytes());
        out.put_vec8(&self.secret);
        out.put_vec8(self.server_name.as_deref().unwrap_or_default().as_bytes());
        out.put_vec8(&self.context);
        out.put_vec16(self.psk_identity.as_deref().unwrap_or_default());
        out.put_vec8(&self.session_id);
        out.put_vec16(&self.ticket);
        out.extend_from_slice(&self.age_add.to_be_bytes());
        let certs = &self.peer_certs[..self.peer_certs.len().min(max_certs).min(MAX_SESSION_CERTS)];
        out.put_u8(certs.len() as u8);
        for cert in certs {
            out.put_len24(|b| b.extend_from_slice(cert.as_ref()));
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Option<Self> {
        if r.u8()? != SESSION_FORMAT {
            return None;
        }
        let protocol = match r.u8()? {
            2 => Protocol::Dtls1_2,
            3 => Protocol::Dtls1_3,
            _ => return None,
        };
        let suite = r.u16()?;
        let extended_master_secret = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let created = u64::from_be_bytes(r.take_array()?);
        let lifetime = u32::from_be_bytes(r.take_array()?);
        let secret = r.vec8()?;
        if secret.is_empty() || secret.len() > 64 {
            return None;
        }
        let secret = Zeroizing::new(secret.to_vec());
        let name = r.vec8()?;
        let server_name = match name {
            [] => None,
            n => Some(core::str::from_utf8(n).ok()?.to_owned()),
        };
        let context = r.vec8()?;
        if context.len() > MAX_SESSION_CONTEXT_LEN {
            return None;
        }
        let context = context.to_vec();
        let identity = r.vec16()?;
        if identity.len() > crate::MAX_PSK_IDENTITY_LEN {
            return None;
        }
        let psk_identity = (!identity.is_empty()).then(|| identity.to_vec());
        let session_id = r.vec8()?;
        if session_id.len() > 32 {
            return None;
        }
        let ticket = r.vec16()?.to_vec();
        let age_add = u32::from_be_bytes(r.take_array()?);
        let count = usize::from(r.u8()?);
        if count > MAX_SESSION_CERTS {
            return None;
        }
        let mut peer_certs = Vec::with_capacity(count);
        for _ in 0..count {
            let der = r.vec24()?;
            if der.is_empty() {
                return None;
            }
            peer_certs.push(CertificateDer::from(der.to_vec()));
        }
        Some(Self {
            protocol,
            suite,
            extended_master_secret,
            secret,
            created,
            lifetime,
            server_name,
            context,
            psk_identity,
            peer_certs,
            session_id: session_id.to_vec(),
            ticket,
            age_add,
        })
        .filter(Self::fits)
    }
}

/// What a configuration says about resumption.
#[derive(Clone, Debug)]
pub(crate) struct Resumption {
    /// Server: sessions by ID (`None`: no session IDs are given).
    pub(crate) cache: Option<Arc<SessionCache>>,
    /// Server: tickets are issued, sealed with these keys (`None`: no tickets). `Default`
    /// leaves them to be made at `build`, from a random secret.
    pub(crate) tickets: Option<Arc<TicketKeys>>,
    pub(crate) tickets_enabled: bool,
    /// Client: resumable sessions are asked for and kept.
    pub(crate) client: bool,
    /// Client: where the socket layer keeps sessions between connections.
    pub(crate) store: Option<Arc<SessionStore>>,
    /// How long a new session may be resumed.
    pub(crate) lifetime: Duration,
    /// Server: what a session is bound to; sessions made under another context are not
    /// resumed.
    pub(crate) context: Vec<u8>,
}

impl Default for Resumption {
    fn default() -> Self {
        Self {
            cache: Some(Arc::new(SessionCache::new(DEFAULT_SESSION_CACHE_SIZE))),
            tickets: None,
            tickets_enabled: true,
            client: false,
            store: None,
            lifetime: DEFAULT_SESSION_LIFETIME,
            context: Vec::new(),
        }
    }
}

/// The name a client keeps a session under, and resumes it for only: a DNS name as is, an IP
/// address in its usual text form.
pub fn server_name_key(name: &crate::pki::ServerName<'_>) -> String {
    match name {
        crate::pki::ServerName::DnsName(n) => n.as_ref().to_owned(),
        crate::pki::ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => String::new(),
    }
}

/// Longest ticket a server issues under `config`: one that leaves a ClientHello carrying it
/// (about 400 bytes besides) within the MTU, and a DTLS 1.3 NewSessionTicket within one
/// record. A longer one (a session with a large client certificate) is not issued.
pub(crate) fn max_ticket_len(config: &crate::Config) -> usize {
    config.mtu.saturating_sub(400)
}

/// A ticket for `session` (its client's end-entity certificate alone), sealed now with
/// `keys`, and how long it may be used in seconds: until the session expires or the key's
/// period and the next are over, whichever comes first. `None` if it would be longer than
/// [`max_ticket_len`] allows.
pub(crate) fn issue_ticket(
    config: &crate::Config,
    keys: &TicketKeys,
    session: &Session,
) -> Result<Option<(Vec<u8>, u32)>, crate::Error> {
    let mut plain = Zeroizing::new(Vec::with_capacity(256));
    session.encode(&mut plain, 1);
    let now = unix_now(config);
    let ticket = keys.seal(&*config.provider, now, &plain)?;
    if ticket.len() > max_ticket_len(config) {
        return Ok(None);
    }
    let period = keys.period().as_secs().max(1);
    let keys_end = (now / period).saturating_add(2).saturating_mul(period);
    let lifetime = session.expires().min(keys_end).saturating_sub(now).min(MAX_SESSION_LIFETIME.as_secs());
    Ok(Some((ticket, lifetime as u32)))
}

/// Seconds since the Unix epoch, by the configuration's clock.
pub(crate) fn unix_now(config: &crate::Config) -> u64 {
    (config.time)().as_secs()
}

#[cfg(test)]
mod tests;
