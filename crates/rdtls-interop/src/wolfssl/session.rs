//! Session resumption on a [`WolfPeer`] (wolfSSL built with `HAVE_SESSION_TICKET`: the
//! workspace's `.cargo/config.toml` gives its configure the define): a client takes its
//! session after the server's ticket came, and offers it on a new connection; a server's
//! connections share their context, whose ticket key opens the tickets of each other's.

use std::net::{SocketAddr, UdpSocket};
use std::ptr::NonNull;
use std::sync::Arc;

use wolfssl_sys as sys;

use super::{check, Role, WolfConfig, WolfError, WolfPeer};

/// A wolfSSL session (`WOLFSSL_SESSION`), owned.
pub(crate) struct WolfSession(NonNull<sys::WOLFSSL_SESSION>);

// SAFETY: a session is an independent allocation wolfSSL only reads once taken with
// `wolfSSL_get1_session` (a reference of our own).
unsafe impl Send for WolfSession {}

impl Drop for WolfSession {
    fn drop(&mut self) {
        // SAFETY: we own this reference.
        unsafe { sys::wolfSSL_SESSION_free(self.0.as_ptr()) };
    }
}

impl WolfPeer {
    /// Client: the connection's session (with the ticket, once one was received), if any.
    pub(crate) fn session(&self) -> Option<WolfSession> {
        // SAFETY: the connection is live; the result is a new reference we free.
        let session = NonNull::new(unsafe { sys::wolfSSL_get1_session(self.ptr()) })?;
        let session = WolfSession(session);
        // SAFETY: `session` is live.
        (unsafe { sys::wolfSSL_SessionIsSetup(session.0.as_ptr()) } == 1).then_some(session)
    }

    /// A client like [`connect`](Self::connect) that offers `session`.
    pub(crate) fn connect_resuming(
        config: &WolfConfig,
        server: SocketAddr,
        session: &WolfSession,
    ) -> Result<Self, WolfError> {
        let peer = Self::connect(config, server)?;
        // SAFETY: the connection is live and not started; wolfSSL copies what it needs.
        check("wolfSSL_set_session", unsafe { sys::wolfSSL_set_session(peer.ptr(), session.0.as_ptr()) })?;
        Ok(peer)
    }

    /// A server like [`bind`](Self::bind) with `other`'s context (made from the same
    /// `config`), as the connections of one server share theirs: it resumes the sessions of
    /// `other`'s tickets.
    pub(crate) fn bind_sharing(other: &Self, config: &WolfConfig, local: SocketAddr) -> Result<Self, WolfError> {
        if config.role != Role::Server || !local.ip().is_loopback() {
            return Err(WolfError::Config("bind_sharing needs a server on loopback".into()));
        }
        let ctx = Arc::clone(&other._ctx);
        let (ssl, state) = Self::connection(config, &ctx)?;
        Self::with_socket(ssl, ctx, state, config, UdpSocket::bind(local)?)
    }

    /// Whether the handshake resumed a session (`wolfSSL_session_reused`).
    pub(crate) fn resumed(&self) -> bool {
        // SAFETY: the connection is live.
        unsafe { sys::wolfSSL_session_reused(self.ptr()) == 1 }
    }
}
