//! Handshakes: one object per protocol version and role, over one engine.
//!
//! A handshake object consumes complete handshake messages (reassembled, in order, by the
//! engine in [`crate::connection`]) and answers with [`Action`]s: send this flight, install these
//! keys for this epoch, here is what was negotiated, the handshake is complete. It never touches
//! the record layer, the timers or the connection's state; the engine applies the actions in
//! order. An `Err` is fatal: the engine sends the alert it names and closes.
//!
//! - [`tls12`]: DTLS 1.2 (RFC 6347 on RFC 5246), [`tls12::Client`] and [`tls12::Server`].
//! - [`tls13`]: DTLS 1.3 (RFC 9147 on RFC 8446), [`tls13::Client`] and [`tls13::Server`].
//!
//! Version negotiation happens here: a client that offers both versions starts as a DTLS 1.3
//! client and becomes a DTLS 1.2 one if the server answers in 1.2; a server reads the first
//! ClientHello and becomes the handshake of the newest version both allow.

pub(crate) mod reassembly;
pub(crate) mod tls12;
pub(crate) mod tls13;
pub(crate) mod transcript;

use std::net::IpAddr;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::config::Config;
use crate::enums::{HandshakeType, Protocol};
use crate::error::Error;
use crate::pki::{CertificateDer, CertificateError, ServerName};
use crate::record::EpochKeys;
use crate::suites::CipherSuite;
use reassembly::Message;

/// Most HelloVerifyRequests a client follows in one handshake.
pub(crate) const MAX_HELLO_VERIFY: u8 = 4;

/// Highest `message_seq` of a ClientHello a server answers: a client sends 0, then one more
/// after each HelloVerifyRequest (or HelloRetryRequest), and ours follows up to four.
pub(crate) const MAX_CLIENT_HELLO_SEQ: u16 = MAX_HELLO_VERIFY as u16;

/// The server name a ClientHello asks for (SNI), without a trailing dot; `None` if it names
/// none, or one that is not text.
pub(crate) fn requested_name(ch: &crate::messages::ClientHello) -> Option<String> {
    let name = ch.extensions.server_name.as_deref().filter(|n| !n.is_empty())?;
    core::str::from_utf8(name).ok().map(|n| n.trim_end_matches('.').to_owned())
}

/// Checks a Finished's `verify_data` against what we computed (in constant time); the peer
/// was the client when `client`.
pub(crate) fn check_verify_data(expected: &[u8], received: &[u8], client: bool) -> Result<(), Error> {
    if crate::crypto::ct_eq(expected, received) {
        return Ok(());
    }
    Err(Error::PeerMisbehaved {
        alert: crate::enums::AlertDescription::DECRYPT_ERROR,
        reason: if client { "client Finished does not verify" } else { "server Finished does not verify" },
    })
}

/// Client, either version: verifies the server's chain for `server_name` (failing closed
/// without a name, unless the configuration opts out) and asks the engine to record it and
/// apply the verification policy. Returns the end-entity certificate, whose key signs the
/// server's handshake, and whether the chain verified without errors.
pub(crate) fn check_server_chain(
    cx: &mut Context<'_>,
    server_name: Option<&ServerName<'static>>,
    chain: Vec<CertificateDer<'static>>,
) -> Result<(CertificateDer<'static>, bool), Error> {
    let config: &Config = cx.config;
    let Some(ee) = chain.first().cloned() else {
        // Without a certificate there is no key to check the server's signature with.
        return Err(Error::PeerVerification(vec![CertificateError::NoPeerCertificate]));
    };
    let purpose = crate::pki::Purpose::Server(server_name);
    let mut errors = crate::pki::verify_chain(&*config.provider, &config.roots, &chain, purpose, (config.time)());
    // Fail closed: a chain that verifies proves nothing about which server this is unless its
    // name was checked.
    if server_name.is_none() && !config.accept_any_server_name {
        errors.push(CertificateError::NoServerName);
    }
    let trusted = errors.is_empty();
    cx.push(Action::PeerCertificates(chain));
    cx.push(Action::CheckPeer(errors));
    Ok((ee, trusted))
}

/// Server, either version: verifies a client's chain against `roots` (an SNI entry's, or the
/// configuration's) and asks the engine to record it and apply the policy. An empty chain is
/// recorded as such: an error when client certificates are required, else no certificate.
/// With the certificate comes whether the chain verified without errors.
pub(crate) fn check_client_chain(
    cx: &mut Context<'_>,
    roots: Option<&crate::pki::RootStore>,
    chain: Vec<CertificateDer<'static>>,
) -> Result<(Option<CertificateDer<'static>>, bool), Error> {
    let config: &Config = cx.config;
    let Some(ee) = chain.first().cloned() else {
        cx.push(Action::VerificationErrors(vec![CertificateError::NoPeerCertificate]));
        return match config.client_auth {
            crate::config::ClientAuth::Required => {
                Err(Error::PeerVerification(vec![CertificateError::NoPeerCertificate]))
            }
            _ => Ok((None, true)),
        };
    };
    let roots = roots.unwrap_or(&config.roots);
    let errors =
        crate::pki::verify_chain(&*config.provider, roots, &chain, crate::pki::Purpose::Client, (config.time)());
    let trusted = errors.is_empty();
    cx.push(Action::PeerCertificates(chain));
    cx.push(Action::CheckPeer(errors));
    Ok((Some(ee), trusted))
}

/// One item of an outgoing flight.
#[derive(Debug)]
pub(crate) enum FlightItem {
    /// A handshake message, protected with the keys of `epoch`.
    Message { epoch: u64, msg_type: HandshakeType, seq: u16, body: Vec<u8> },
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
    /// Keys for `epoch`, for either direction or both.
    InstallKeys { epoch: u64, read: Option<EpochKeys>, write: Option<EpochKeys> },
    /// Records we write from now on use `epoch`.
    WriteEpoch(u64),
    /// DTLS 1.3: the application traffic secrets (a KeyUpdate derives the next ones).
    TrafficSecrets { read: tls13::key_schedule::Secret, write: tls13::key_schedule::Secret },
    /// DTLS 1.3: the last flight sent must be retransmitted until the peer acknowledges it
    /// (the client's last flight, which the server answers only with an ACK).
    RetransmitUntilAcked,

    /// The peer's connection ID, which our records carry from epoch 1 on (empty: ours are
    /// ordinary records); the peer uses ours. RFC 9146.
    PeerConnectionId(Vec<u8>),
    /// Both sides agreed on return routability checks (RFC 9853).
    ReturnRoutability,
    /// Both sides agreed on this SRTP protection profile (RFC 5764).
    Srtp(crate::srtp::SrtpProfile),
    /// Both sides agreed on this application-layer protocol (RFC 7301).
    Alpn(Vec<u8>),
    /// DTLS 1.3: the exporter master secret, kept for keying-material exports.
    ExporterSecret(Zeroizing<Vec<u8>>),
    /// This handshake resumes a session (an abbreviated handshake).
    Resumed,
    /// This handshake took a HelloRetryRequest (DTLS 1.3).
    HelloRetried,
    /// Client: a session to resume later.
    NewSession(Box<crate::resumption::Session>),
    /// Server: the session went into the session cache (announced, not kept here: an idle
    /// connection holds no copy).
    SessionCached,
    /// Client: the session just resumed, unchanged (the server renewed no ticket): kept,
    /// but not announced as new.
    SameSession(Box<crate::resumption::Session>),
    /// DTLS 1.3 server: a NewSessionTicket (its body) to send once the handshake is over.
    SendTicket(Vec<u8>),
    /// DTLS 1.3 client that keeps sessions: the session this handshake made, its secret the
    /// resumption master secret, from which each NewSessionTicket's PSK is derived.
    TicketTemplate(Box<crate::resumption::Session>),

    /// The cipher suite and extended master secret use are chosen.
    Negotiated { suite: &'static CipherSuite, extended_master_secret: bool },
    /// The PSK identity the client used.
    PskIdentity(Vec<u8>),
    /// The group of the key exchange.
    Group(crate::crypto::KxGroup),
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
            Self::TrafficSecrets { .. } => "TrafficSecrets",
            Self::RetransmitUntilAcked => "RetransmitUntilAcked",
            Self::PeerConnectionId(_) => "PeerConnectionId",
            Self::ReturnRoutability => "ReturnRoutability",
            Self::Srtp(_) => "Srtp",
            Self::Alpn(_) => "Alpn",
            Self::ExporterSecret(_) => "ExporterSecret",
            Self::Resumed => "Resumed",
            Self::HelloRetried => "HelloRetried",
            Self::NewSession(_) => "NewSession",
            Self::SessionCached => "SessionCached",
            Self::SameSession(_) => "SameSession",
            Self::SendTicket(_) => "SendTicket",
            Self::TicketTemplate(_) => "TicketTemplate",
            Self::Negotiated { .. } => "Negotiated",
            Self::PskIdentity(_) => "PskIdentity",
            Self::Group(_) => "Group",
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
    /// The connection ID we ask the peer to send us records with (RFC 9146), when the
    /// configuration asks for one.
    pub(crate) own_cid: Option<&'a [u8]>,
}

impl Context<'_> {
    pub(crate) fn push(&mut self, action: Action) {
        self.actions.push(action);
    }

    /// Client: whether our hello offers return routability checks (RFC 9853: only with a
    /// connection ID).
    pub(crate) fn offers_rrc(&self) -> bool {
        self.config.rrc && self.own_cid.is_some()
    }

    /// Server: whether to accept the client's offer of return routability checks (it must
    /// offer a connection ID too, and we must use them), and if so record the agreement.
    pub(crate) fn accept_rrc(&mut self, ch: &crate::messages::HelloExtensions) -> bool {
        let accept = ch.rrc && ch.connection_id.is_some() && self.offers_rrc();
        if accept {
            self.push(Action::ReturnRoutability);
        }
        accept
    }

    /// Server: records the application protocol chosen when the ClientHello was first judged
    /// (RFC 7301, [`crate::alpn::choose`]) and returns the answer that names it.
    pub(crate) fn agree_alpn(&mut self, chosen: Option<Vec<u8>>) -> Option<crate::alpn::ProtocolList> {
        let chosen = chosen?;
        let answer = crate::alpn::ProtocolList::new(&[&chosen]);
        self.push(Action::Alpn(chosen));
        answer
    }

    /// Server: the answer to the client's `use_srtp` (RFC 5764), if both have a profile in
    /// common, and if so record the agreement.
    pub(crate) fn accept_srtp(&mut self, ch: &crate::messages::HelloExtensions) -> Option<crate::srtp::UseSrtp> {
        let (answer, profile) = crate::srtp::UseSrtp::answer(ch.use_srtp.as_ref(), &self.config.srtp_profiles)?;
        self.push(Action::Srtp(profile));
        Some(answer)
    }
}

/// The handshake of one connection: its version and role.
#[allow(clippy::large_enum_variant)] // One per handshaking connection, boxed in the engine.
pub(crate) enum Handshake {
    Client12(tls12::Client),
    Server12(tls12::Server),
    Client13(tls13::Client),
    Server13(tls13::Server),
}

impl Handshake {
    /// Starts a client: the first flight is among the actions. It offers DTLS 1.3 if the
    /// configuration allows it (and then DTLS 1.2 too, if allowed), offering to resume
    /// `session` in its version. New sessions are kept if the configuration says so, or if
    /// `keep`.
    pub(crate) fn client(
        cx: &mut Context<'_>,
        server_name: Option<ServerName<'static>>,
        session: Option<crate::resumption::Session>,
        keep: bool,
    ) -> Result<Self, Error> {
        if cx.config.enables(Protocol::Dtls1_3) {
            return Ok(Self::Client13(tls13::Client::start(cx, server_name, session, keep)?));
        }
        let session12 = session.filter(|s| s.protocol() == Protocol::Dtls1_2);
        Ok(Self::Client12(tls12::Client::start(cx, server_name, session12, keep)?))
    }

    /// A server waiting for its (verified) ClientHello; which version it speaks is decided by
    /// that hello.
    pub(crate) fn server() -> Self {
        Self::Server12(tls12::Server::default())
    }

    /// Handles one complete message.
    pub(crate) fn handle(&mut self, cx: &mut Context<'_>, msg: Message) -> Result<(), Error> {
        match self {
            Self::Client12(c) => c.handle(cx, msg),
            Self::Server12(s) => {
                if s.awaits_client_hello() && msg.msg_type == HandshakeType::CLIENT_HELLO {
                    let verified = cx.config.cookie_verification || s.cookie_verified;
                    if let Some((mut s13, ch)) =
                        tls13::Server::for_client_hello(cx.config, &msg, s.local_ip(), verified)?
                    {
                        s13.client_hello(cx, &msg, &ch)?;
                        *self = Self::Server13(s13);
                        return Ok(());
                    }
                }
                s.handle(cx, msg)
            }
            Self::Client13(c) => {
                if let Some(c12) = c.handle(cx, msg)? {
                    *self = Self::Client12(c12);
                }
                Ok(())
            }
            Self::Server13(s) => s.handle(cx, msg),
        }
    }

    /// Whether the next message, of type `ty` in `epoch`, can be handled now: `Ok(false)` to
    /// wait for something else first (DTLS 1.2's Finished waits for ChangeCipherSpec).
    pub(crate) fn ready_for(&self, ty: HandshakeType, epoch: u16) -> Result<bool, Error> {
        let peer_ccs = match self {
            Self::Client12(c) => c.peer_ccs(),
            Self::Server12(s) => s.peer_ccs(),
            Self::Client13(_) | Self::Server13(_) => return tls13::ready_for(ty, epoch),
        };
        tls12::ready_for(ty, epoch, peer_ccs)
    }

    /// The peer's ChangeCipherSpec arrived.
    pub(crate) fn handle_change_cipher_spec(&mut self) {
        match self {
            Self::Client12(c) => c.handle_change_cipher_spec(),
            Self::Server12(s) => s.handle_change_cipher_spec(),
            Self::Client13(_) | Self::Server13(_) => {}
        }
    }

    /// Server: nothing was handled yet, the ClientHello is awaited.
    pub(crate) fn awaits_client_hello(&self) -> bool {
        match self {
            Self::Server12(s) => s.awaits_client_hello(),
            Self::Server13(s) => s.awaits_client_hello(),
            _ => false,
        }
    }

    /// Server: the endpoint checked the cookie of the ClientHello to come.
    pub(crate) fn cookie_verified(&mut self) {
        if let Self::Server12(s) = self {
            s.cookie_verified = true;
        }
    }

    /// Server: the local address the client reached us on (for `ipcert`).
    pub(crate) fn set_local_ip(&mut self, ip: IpAddr) {
        match self {
            Self::Server12(s) => s.set_local_ip(ip),
            Self::Server13(s) => s.set_local_ip(ip),
            _ => {}
        }
    }
}

impl core::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Client12(c) => f.debug_tuple("Client12").field(c).finish(),
            Self::Server12(s) => f.debug_tuple("Server12").field(s).finish(),
            Self::Client13(c) => c.fmt(f),
            Self::Server13(s) => s.fmt(f),
        }
    }
}
