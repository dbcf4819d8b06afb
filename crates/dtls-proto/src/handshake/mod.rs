//! The DTLS 1.2 handshake (RFC 6347 §4.2, RFC 5246 §7.4), client and server.
//!
//! ```text
//!   Client                                   Server
//!   ------                                   ------
//!   ClientHello             -------->                        Flight 1
//!                           <--------   HelloVerifyRequest   Flight 2 (stateless, optional)
//!   ClientHello + cookie    -------->                        Flight 3
//!                                              ServerHello   Flight 4
//!                                      ServerKeyExchange*
//!                           <--------      ServerHelloDone
//!   ClientKeyExchange
//!   [ChangeCipherSpec]
//!   Finished                -------->                        Flight 5
//!                                       [ChangeCipherSpec]
//!                           <--------             Finished   Flight 6
//! ```
//!
//! The HelloVerifyRequest exchange is answered by [`crate::ClientVerifier`] without any state;
//! the connection object starts at flight 3 on a server.

/// Most HelloVerifyRequests a client follows in one handshake.
pub(crate) const MAX_HELLO_VERIFY: u8 = 4;

pub(crate) mod client;
pub(crate) mod keys;
pub(crate) mod reassembly;
pub(crate) mod server;
pub(crate) mod transcript;

use zeroize::Zeroizing;

use crate::config::Config;
use crate::connection::{FlightItem, Side};
use crate::crypto::{ActiveKeyExchange, KxGroup};
use crate::enums::HandshakeType;
use crate::handshake::transcript::Transcript;
use reassembly::Reassembler;

/// Where the state machine is: the message(s) it expects next, in protocol order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    // Client.
    /// ServerHello, or HelloVerifyRequest.
    ServerHello,
    /// The server's Certificate (certificate suites).
    ServerCertificate,
    /// ServerKeyExchange (optional for plain PSK), or ServerHelloDone.
    ServerKeyExchange,
    /// ServerHelloDone.
    ServerHelloDone,
    /// The server's ChangeCipherSpec and Finished.
    ServerFinished,
    // Server.
    /// The (verified) ClientHello.
    ClientHello,
    /// The client's Certificate (when we asked for one).
    ClientCertificate,
    /// ClientKeyExchange.
    ClientKeyExchange,
    /// CertificateVerify (the client sent a certificate).
    ClientCertificateVerify,
    /// The client's ChangeCipherSpec and Finished.
    ClientFinished,
}

/// Handshake-only state, freed when the handshake completes.
pub(crate) struct Handshake {
    pub(crate) expect: Expect,
    pub(crate) reasm: Reassembler,
    /// Every handshake message so far (except the first ClientHello and HelloVerifyRequest of
    /// a cookie exchange), hashed once the suite is known.
    pub(crate) transcript: Transcript,
    pub(crate) next_send_seq: u16,
    pub(crate) mtu: usize,
    pub(crate) client_random: [u8; 32],
    pub(crate) server_random: [u8; 32],
    pub(crate) session_id: Vec<u8>,
    /// Client: the cookie from the last HelloVerifyRequest.
    pub(crate) cookie: Vec<u8>,
    pub(crate) hello_verify_count: u8,
    /// Client: the last ClientHello sent, with its header; it starts the transcript once the
    /// ServerHello shows which ClientHello the server answered.
    pub(crate) client_hello: Vec<u8>,
    pub(crate) kx: Option<Box<dyn ActiveKeyExchange>>,
    pub(crate) group: Option<KxGroup>,
    pub(crate) psk_hint: Option<Vec<u8>>,
    pub(crate) peer_public: Option<Vec<u8>>,
    pub(crate) master: Option<Zeroizing<[u8; keys::MASTER_SECRET_LEN]>>,
    pub(crate) peer_ccs: bool,
    /// The first `message_seq` of the peer's flight we last answered: a fragment of it seen
    /// again means our answer was lost.
    pub(crate) peer_flight_start: Option<u16>,
    /// Server: whether the client signalled secure renegotiation support (RFC 5746).
    pub(crate) secure_renegotiation: bool,
    /// Server: the certificate chosen for this handshake.
    pub(crate) cert: Option<std::sync::Arc<crate::pki::CertifiedKey>>,
    /// Server: the local address the client reached us on (for `ipcert`).
    pub(crate) local_ip: Option<std::net::IpAddr>,
    /// Server: the schemes the client accepts (signature_algorithms); client: the schemes the
    /// server's CertificateRequest accepts.
    pub(crate) peer_schemes: Vec<crate::enums::SignatureScheme>,
    /// Client: the server asked for a certificate; server: we asked for one.
    pub(crate) cert_requested: bool,
}

impl Handshake {
    pub(crate) fn new(side: Side, config: &Config) -> Self {
        Self {
            expect: match side {
                Side::Client => Expect::ServerHello,
                Side::Server => Expect::ClientHello,
            },
            reasm: Reassembler::with_window(
                config.max_handshake_message,
                config.max_reassembly_bytes,
                config.message_window,
            ),
            transcript: Transcript::default(),
            next_send_seq: 0,
            mtu: config.mtu,
            client_random: [0; 32],
            server_random: [0; 32],
            session_id: Vec::new(),
            cookie: Vec::new(),
            hello_verify_count: 0,
            client_hello: Vec::new(),
            kx: None,
            group: None,
            psk_hint: None,
            peer_public: None,
            master: None,
            peer_ccs: false,
            peer_flight_start: None,
            local_ip: None,
            secure_renegotiation: false,
            cert: None,
            peer_schemes: Vec::new(),
            cert_requested: false,
        }
    }

    pub(crate) fn awaiting_client_hello(&self) -> bool {
        self.expect == Expect::ClientHello
    }

    /// Adds a received message to the transcript.
    pub(crate) fn add_received(&mut self, msg_type: HandshakeType, seq: u16, body: &[u8]) {
        self.transcript.add(msg_type, seq, body);
    }

    /// Builds an outgoing message: takes the next `message_seq` and adds it to the transcript.
    pub(crate) fn outgoing(&mut self, epoch: u16, msg_type: HandshakeType, body: Vec<u8>) -> FlightItem {
        let seq = self.next_send_seq;
        self.next_send_seq = self.next_send_seq.wrapping_add(1);
        self.transcript.add(msg_type, seq, &body);
        FlightItem::Message { epoch, msg_type, seq, body }
    }
}

impl crate::connection::Connection {
    /// Derives the master secret from `premaster` (the transcript must end with
    /// ClientKeyExchange) and installs the epoch-1 keys of both directions.
    pub(crate) fn establish_keys(&mut self, premaster: &[u8]) -> Result<(), crate::Error> {
        use crate::record::RecordProtection;
        let provider = self.config.provider.clone();
        let (Some(suite), Some(hs)) = (self.suite, self.hs.as_deref_mut()) else {
            return Err(crate::Error::Crypto);
        };
        let session_hash;
        let seed = if self.extended_master_secret {
            session_hash = hs.transcript.hash().ok_or(crate::Error::Crypto)?;
            keys::MasterSecretSeed::Extended { session_hash: session_hash.as_bytes() }
        } else {
            keys::MasterSecretSeed::Randoms { client: &hs.client_random, server: &hs.server_random }
        };
        let master = keys::master_secret(&*provider, suite, premaster, seed)?;
        let kb = keys::KeyBlock::derive(&*provider, suite, &master, &hs.client_random, &hs.server_random)?;
        let client = RecordProtection::new(suite, provider.aead_key(suite.aead, kb.client_key())?, kb.client_iv());
        let server = RecordProtection::new(suite, provider.aead_key(suite.aead, kb.server_key())?, kb.server_iv());
        hs.master = Some(master);
        let (write, read) = match self.side {
            Side::Client => (client, server),
            Side::Server => (server, client),
        };
        self.epochs.install(1, Some(read), Some(write));
        Ok(())
    }
}
