//! Handshakes: one object per protocol version and role, over one engine.
//!
//! A handshake object consumes complete handshake messages (reassembled, in order, by the
//! engine in [`crate::connection`]) and answers with [`Action`]s: send this flight, install these
//! keys for this epoch, here is what was negotiated, the handshake is complete. It never touches
//! the record layer, the timers or the connection's state; the engine applies the actions in
//! order. An `Err` is fatal: the engine sends the alert it names and closes.
//!
//! - [`tls12`]: DTLS 1.2 (RFC 6347 on RFC 5246), [`tls12::Client`] and [`tls12::Server`].
//! - [`tls13`]: DTLS 1.3 (RFC 9147 on RFC 8446), so far its key schedule.

pub(crate) mod reassembly;
pub(crate) mod tls12;
pub(crate) mod tls13;
pub(crate) mod transcript;

use std::net::IpAddr;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::config::Config;
use crate::enums::HandshakeType;
use crate::error::Error;
use crate::pki::{CertificateDer, CertificateError, ServerName};
use crate::record::RecordProtection;
use crate::suites::CipherSuite;
use reassembly::Message;

/// One item of an outgoing flight.
#[derive(Debug)]
pub(crate) enum FlightItem {
    /// A handshake message, protected with the keys of `epoch`.
    Message { epoch: u16, msg_type: HandshakeType, seq: u16, body: Vec<u8> },
    /// DTLS 1.2's ChangeCipherSpec record (epoch 0).
    ChangeCipherSpec,
}

/// What a handshake asks the engine to do, in order.
#[allow(clippy::large_enum_variant)] // Short-lived, and kept in one reused buffer.
pub(crate) enum Action {
    /// Send a new flight, replacing the previous one. A flight that `awaits_reply` is
    /// retransmitted until the peer answers; one that does not ends the handshake and is kept
    /// for the peer's retransmissions.
    Send { items: Vec<FlightItem>, awaits_reply: bool },
    /// The peer's new flight starts with this `message_seq`: when it comes again, our answer
    /// was lost.
    PeerFlightStarts(u16),
    /// Keys for both directions of `epoch`.
    InstallKeys { epoch: u16, read: RecordProtection, write: RecordProtection },
    /// Records we write from now on use `epoch`.
    WriteEpoch(u16),
    /// The cipher suite and extended master secret use are chosen.
    Negotiated { suite: &'static CipherSuite, extended_master_secret: bool },
    /// The PSK identity the client used.
    PskIdentity(Vec<u8>),
    /// Server: the host name the client asked for with SNI.
    RequestedServerName(Option<String>),
    /// The peer's certificate chain (end entity first).
    PeerCertificates(Vec<CertificateDer<'static>>),
    /// Errors found verifying the peer: the engine applies the verification policy, which may
    /// fail the handshake or pause it for the application.
    CheckPeer(Vec<CertificateError>),
    /// Errors recorded for the application, the policy already applied by the handshake.
    VerificationErrors(Vec<CertificateError>),
    /// The handshake completed. `export_secret` is what a session export needs, when the
    /// configuration allows exports.
    Complete { export_secret: Option<Zeroizing<Vec<u8>>> },
}

/// Only the kind: the payloads hold keys and secrets.
impl core::fmt::Debug for Action {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Send { .. } => "Send",
            Self::PeerFlightStarts(_) => "PeerFlightStarts",
            Self::InstallKeys { .. } => "InstallKeys",
            Self::WriteEpoch(_) => "WriteEpoch",
            Self::Negotiated { .. } => "Negotiated",
            Self::PskIdentity(_) => "PskIdentity",
            Self::RequestedServerName(_) => "RequestedServerName",
            Self::PeerCertificates(_) => "PeerCertificates",
            Self::CheckPeer(_) => "CheckPeer",
            Self::VerificationErrors(_) => "VerificationErrors",
            Self::Complete { .. } => "Complete",
        })
    }
}

/// What a handshake may read while handling a message, and where it puts its actions.
pub(crate) struct Context<'a> {
    pub(crate) config: &'a Arc<Config>,
    pub(crate) actions: &'a mut Vec<Action>,
}

impl Context<'_> {
    pub(crate) fn push(&mut self, action: Action) {
        self.actions.push(action);
    }
}

/// The handshake of one connection: its version and role.
pub(crate) enum Handshake {
    Client12(tls12::Client),
    Server12(tls12::Server),
}

impl Handshake {
    /// Starts a client: the first flight is among the actions.
    pub(crate) fn client(cx: &mut Context<'_>, server_name: Option<ServerName<'static>>) -> Result<Self, Error> {
        Ok(Self::Client12(tls12::Client::start(cx, server_name)?))
    }

    /// A server waiting for its (verified) ClientHello.
    pub(crate) fn server() -> Self {
        Self::Server12(tls12::Server::default())
    }

    /// Handles one complete message.
    pub(crate) fn handle(&mut self, cx: &mut Context<'_>, msg: Message) -> Result<(), Error> {
        match self {
            Self::Client12(c) => c.handle(cx, msg),
            Self::Server12(s) => s.handle(cx, msg),
        }
    }

    /// Whether the next message, of type `ty` in `epoch`, can be handled now: `Ok(false)` to
    /// wait for something else first (DTLS 1.2's Finished waits for ChangeCipherSpec).
    pub(crate) fn ready_for(&self, ty: HandshakeType, epoch: u16) -> Result<bool, Error> {
        let peer_ccs = match self {
            Self::Client12(c) => c.peer_ccs(),
            Self::Server12(s) => s.peer_ccs(),
        };
        tls12::ready_for(ty, epoch, peer_ccs)
    }

    /// The peer's ChangeCipherSpec arrived.
    pub(crate) fn handle_change_cipher_spec(&mut self) {
        match self {
            Self::Client12(c) => c.handle_change_cipher_spec(),
            Self::Server12(s) => s.handle_change_cipher_spec(),
        }
    }

    /// Server: nothing was handled yet, the ClientHello is awaited.
    pub(crate) fn awaits_client_hello(&self) -> bool {
        matches!(self, Self::Server12(s) if s.awaits_client_hello())
    }

    /// Server: the local address the client reached us on (for `ipcert`).
    pub(crate) fn set_local_ip(&mut self, ip: IpAddr) {
        if let Self::Server12(s) = self {
            s.set_local_ip(ip);
        }
    }
}

impl core::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Client12(c) => f.debug_tuple("Client12").field(c).finish(),
            Self::Server12(s) => f.debug_tuple("Server12").field(s).finish(),
        }
    }
}
