//! The configuration of resumption: [`ConfigBuilder`] methods and [`Config`] getters.

use std::sync::Arc;
use std::time::Duration;

use super::{Resumption, SessionCache, SessionStore, TicketKeys, MAX_SESSION_LIFETIME};
use crate::error::Error;
use crate::{Config, ConfigBuilder};

impl ConfigBuilder {
    /// Server: how many sessions to keep for resumption by session ID (DTLS 1.2), least
    /// recently used out first; 0 gives no session IDs. Default
    /// [`DEFAULT_SESSION_CACHE_SIZE`](super::DEFAULT_SESSION_CACHE_SIZE).
    pub fn session_cache_size(mut self, sessions: usize) -> Self {
        self.config.resumption.cache = (sessions > 0).then(|| Arc::new(SessionCache::new(sessions)));
        self
    }

    /// Server: keeps sessions in `cache`, which other configurations may share.
    pub fn session_cache(mut self, cache: Arc<SessionCache>) -> Self {
        self.config.resumption.cache = Some(cache);
        self
    }

    /// Server: whether to issue session tickets (RFC 5077) to clients that ask for them
    /// (default on, with keys from a random secret of this configuration's own; see
    /// [`ticket_keys`](Self::ticket_keys) to share them).
    pub fn session_tickets(mut self, enabled: bool) -> Self {
        self.config.resumption.tickets_enabled = enabled;
        self
    }

    /// Server: seals and opens tickets with `keys` (tickets on). Servers whose keys come from
    /// the same secret resume each other's sessions.
    pub fn ticket_keys(mut self, keys: Arc<TicketKeys>) -> Self {
        self.config.resumption.tickets = Some(keys);
        self.config.resumption.tickets_enabled = true;
        self
    }

    /// How long a new session may be resumed: at most seven days; default two hours.
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.resumption.lifetime = lifetime;
        self
    }

    /// Server: binds new sessions to `context` (at most 32 bytes), and resumes only sessions
    /// made under the same one: servers that share a session cache or ticket keys but must
    /// not resume each other's sessions (another PSK set, another client authentication
    /// policy) take different contexts. OpenSSL's `SSL_CTX_set_session_id_context`.
    pub fn session_id_context(mut self, context: &[u8]) -> Self {
        self.config.resumption.context = context.to_vec();
        self
    }

    /// Client: ask servers for resumable sessions (tickets, session IDs) and keep them:
    /// [`Connection::session`](crate::Connection::session) gives the session to resume with
    /// [`Connection::resuming_client`](crate::Connection::resuming_client). Default off.
    pub fn session_resumption(mut self, enabled: bool) -> Self {
        self.config.resumption.client = enabled;
        self
    }

    /// Client: keeps sessions in `store` and resumes them (resumption on). The socket layer's
    /// clients look the server up in it before their handshake and keep the new session
    /// there after it.
    pub fn session_store(mut self, store: Arc<SessionStore>) -> Self {
        self.config.resumption.store = Some(store);
        self.config.resumption.client = true;
        self
    }
}

impl Config {
    /// Client: the session store, if one was given.
    pub fn session_store(&self) -> Option<&Arc<SessionStore>> {
        self.resumption.store.as_ref()
    }

    /// Server: the session cache, unless session IDs are off.
    pub fn session_cache(&self) -> Option<&Arc<SessionCache>> {
        self.resumption.cache.as_ref()
    }

    /// Server: the ticket keys, unless tickets are off.
    pub fn ticket_keys(&self) -> Option<&Arc<TicketKeys>> {
        self.resumption.tickets.as_ref().filter(|_| self.resumption.tickets_enabled)
    }

    /// The wall-clock time by the configuration's clock
    /// ([`ConfigBuilder::time_provider`](crate::ConfigBuilder::time_provider)).
    pub fn current_time(&self) -> rustls_pki_types::UnixTime {
        (self.time)()
    }

    /// How long a new session may be resumed.
    pub fn session_lifetime(&self) -> Duration {
        self.resumption.lifetime
    }
}

impl Resumption {
    /// Checks the values and makes the ticket keys a server needs.
    pub(crate) fn finish(&mut self, provider: &dyn crate::crypto::CryptoProvider) -> Result<(), Error> {
        if self.context.len() > super::MAX_SESSION_CONTEXT_LEN {
            return Err(Error::Config("a session ID context is at most 32 bytes"));
        }
        if self.lifetime.is_zero() || self.lifetime > MAX_SESSION_LIFETIME {
            return Err(Error::Config("the session lifetime is between a second and seven days"));
        }
        if self.tickets_enabled && self.tickets.is_none() {
            self.tickets = Some(Arc::new(TicketKeys::random(provider, super::DEFAULT_TICKET_KEY_PERIOD)?));
        }
        Ok(())
    }

    /// The lifetime of new sessions in seconds.
    pub(crate) fn lifetime_secs(&self) -> u32 {
        self.lifetime.as_secs().min(u64::from(u32::MAX)) as u32
    }
}
