//! Resumption on the connection: starting a client that offers a session, and what the
//! application reads back (whether the handshake resumed, the session to keep).

use super::*;
use crate::resumption::Session;

impl Connection {
    /// Starts a client handshake like
    /// [`client_with_server_name`](Self::client_with_server_name) that offers to resume
    /// `session` (from [`session`](Self::session) of an earlier connection, or from a
    /// [`SessionStore`](crate::resumption::SessionStore)) and keeps the new session, whatever
    /// the configuration says. A session the configuration cannot resume (expired, or of a
    /// suite or version no longer allowed) is not offered; a server that does not resume it
    /// gives a full handshake. A DTLS 1.2 session is offered in DTLS 1.2 alone.
    pub fn resuming_client(
        config: Arc<Config>,
        server_name: Option<ServerName<'static>>,
        session: Option<Session>,
        now: Instant,
    ) -> Result<Self, Error> {
        let mut conn = Self::new(Side::Client, config, now)?;
        if server_name.is_some() {
            conn.details_mut().server_name = server_name.clone();
        }
        conn.start_handshake(now, |cx| Handshake::client(cx, server_name, session, true))?;
        Ok(conn)
    }

    /// Whether the handshake resumed a session (an abbreviated handshake: no certificates, no
    /// key exchange). A resumed connection reports the peer's certificates and PSK identity of
    /// the full handshake that made the session.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Whether the handshake took a HelloRetryRequest (DTLS 1.3: the client's key shares did
    /// not suit the server, or the server asked for a cookie), in either role.
    pub fn used_hello_retry_request(&self) -> bool {
        self.tls13.as_ref().is_some_and(|t| t.hello_retried)
    }

    /// Client: the session to resume the next connection with, once
    /// [`Event::NewSession`] came: only if the configuration keeps sessions
    /// ([`ConfigBuilder::session_resumption`](crate::ConfigBuilder::session_resumption)) or the
    /// connection was made by [`resuming_client`](Self::resuming_client), and the server gave
    /// the session a session ID or a ticket.
    pub fn session(&self) -> Option<&Session> {
        self.details.as_ref()?.session.as_deref()
    }
}
