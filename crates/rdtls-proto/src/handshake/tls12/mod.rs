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
//! the server handshake starts at flight 3.

mod client;
pub(crate) mod keys;
mod resume;
mod server;

pub(crate) use client::{offered_suites, Client};
pub(crate) use resume::ClientResumption;
pub(crate) use server::Server;

use zeroize::Zeroizing;

use crate::config::Config;
use crate::crypto::CryptoProvider;
use crate::enums::{HandshakeType, Side};
use crate::error::Error;
use crate::handshake::reassembly::Message;
use crate::handshake::transcript::Transcript;
use crate::handshake::{Action, Context, FlightItem};
use crate::pki::CertificateDer;
use crate::record::{EpochKeys, RecordProtection};
use crate::suites::CipherSuite;
pub(crate) use keys::MASTER_SECRET_LEN;
use keys::{KeyBlock, MasterSecretSeed};

/// Whether a message of type `ty` in `epoch` can be handled now: Finished comes in epoch 1,
/// after the peer's ChangeCipherSpec (which may be reordered behind it: then wait); everything
/// else in epoch 0.
pub(crate) fn ready_for(ty: HandshakeType, epoch: u16, peer_ccs: bool) -> Result<bool, Error> {
    if ty == HandshakeType::FINISHED {
        if epoch != 1 {
            return Err(Error::unexpected("Finished outside epoch 1"));
        }
        Ok(peer_ccs)
    } else if epoch != 0 {
        Err(Error::unexpected("handshake message in the wrong epoch"))
    } else {
        Ok(true)
    }
}

/// The record protection of epoch 1 for `side`, as `(read, write)`.
pub(crate) fn epoch_keys(
    provider: &dyn CryptoProvider,
    suite: &CipherSuite,
    master: &[u8; MASTER_SECRET_LEN],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    side: Side,
) -> Result<(RecordProtection, RecordProtection), Error> {
    let kb = KeyBlock::derive(provider, suite, master, client_random, server_random)?;
    let client = RecordProtection::new(suite, provider.aead_key(suite.aead, kb.client_key())?, kb.client_iv());
    let server = RecordProtection::new(suite, provider.aead_key(suite.aead, kb.server_key())?, kb.server_iv());
    Ok(match side {
        Side::Client => (server, client),
        Side::Server => (client, server),
    })
}

/// What a session export carries of the key schedule: the master secret, then both randoms.
pub(crate) fn export_secret(
    master: &[u8; MASTER_SECRET_LEN],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> Zeroizing<Vec<u8>> {
    let mut secret = Zeroizing::new(Vec::with_capacity(MASTER_SECRET_LEN + 64));
    secret.extend_from_slice(&master[..]);
    secret.extend_from_slice(client_random);
    secret.extend_from_slice(server_random);
    secret
}

/// What both roles of a DTLS 1.2 handshake keep.
#[derive(Default)]
pub(crate) struct Common {
    /// Every handshake message so far (except the first ClientHello and HelloVerifyRequest of
    /// a cookie exchange), hashed once the suite is known.
    transcript: Transcript,
    next_send_seq: u16,
    client_random: [u8; 32],
    server_random: [u8; 32],
    suite: Option<&'static CipherSuite>,
    extended_master_secret: bool,
    master: Option<Zeroizing<[u8; MASTER_SECRET_LEN]>>,
    /// The peer's ChangeCipherSpec arrived.
    peer_ccs: bool,
    /// The peer's end-entity certificate, which signs its ServerKeyExchange or
    /// CertificateVerify.
    peer_ee: Option<CertificateDer<'static>>,
}

impl core::fmt::Debug for Common {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Common")
            .field("transcript", &self.transcript)
            .field("next_send_seq", &self.next_send_seq)
            .field("suite", &self.suite.map(|s| s.name))
            .field("extended_master_secret", &self.extended_master_secret)
            .field("keys", &self.master.is_some())
            .finish_non_exhaustive()
    }
}

impl Common {
    /// Adds a received message to the transcript.
    fn add_received(&mut self, msg: &Message) {
        self.transcript.add(msg.msg_type, msg.seq, &msg.body);
    }

    /// Builds an outgoing message: takes the next `message_seq` and adds it to the transcript.
    fn outgoing(&mut self, epoch: u64, msg_type: HandshakeType, body: Vec<u8>) -> FlightItem {
        let seq = self.next_send_seq;
        self.next_send_seq = self.next_send_seq.wrapping_add(1);
        self.transcript.add(msg_type, seq, &body);
        FlightItem::Message { epoch, msg_type, seq, body }
    }

    /// Records the chosen suite and extended master secret use, for us and for the engine.
    fn negotiated(&mut self, cx: &mut Context<'_>, suite: &'static CipherSuite, extended_master_secret: bool) {
        self.suite = Some(suite);
        self.extended_master_secret = extended_master_secret;
        cx.push(Action::Negotiated { suite, extended_master_secret });
    }

    /// Derives the master secret from `premaster` (the transcript must end with
    /// ClientKeyExchange) and asks for the epoch-1 keys of both directions.
    fn establish_keys(&mut self, cx: &mut Context<'_>, premaster: &[u8], side: Side) -> Result<(), Error> {
        let provider = &*cx.config.provider;
        let suite = self.suite.ok_or(Error::Crypto)?;
        let session_hash;
        let seed = if self.extended_master_secret {
            session_hash = self.transcript.hash().ok_or(Error::Crypto)?;
            MasterSecretSeed::Extended { session_hash: session_hash.as_bytes() }
        } else {
            MasterSecretSeed::Randoms { client: &self.client_random, server: &self.server_random }
        };
        let master = keys::master_secret(provider, suite, premaster, seed)?;
        self.install_master(cx, &master[..], side)
    }

    /// Takes `master` as the master secret (a new one, or a resumed session's) and asks for
    /// the epoch-1 keys of both directions.
    fn install_master(&mut self, cx: &mut Context<'_>, master: &[u8], side: Side) -> Result<(), Error> {
        let provider = &*cx.config.provider;
        let suite = self.suite.ok_or(Error::Crypto)?;
        let master: Zeroizing<[u8; MASTER_SECRET_LEN]> = Zeroizing::new(master.try_into().map_err(|_| Error::Crypto)?);
        if let Some(log) = &cx.config.key_log {
            log.log("CLIENT_RANDOM", &self.client_random, &master[..]);
        }
        let (read, write) = epoch_keys(provider, suite, &master, &self.client_random, &self.server_random, side)?;
        self.master = Some(master);
        cx.push(Action::InstallKeys {
            epoch: 1,
            read: Some(EpochKeys::Dtls12(read)),
            write: Some(EpochKeys::Dtls12(write)),
        });
        Ok(())
    }

    /// The verify_data of the Finished sent by the client (`client`) or the server, over the
    /// transcript so far.
    fn verify_data(&self, config: &Config, client: bool) -> Result<[u8; keys::VERIFY_DATA_LEN], Error> {
        let (Some(suite), Some(master)) = (self.suite, self.master.as_ref()) else {
            return Err(Error::unexpected("Finished before keys"));
        };
        Ok(keys::verify_data(&*config.provider, suite, master, client, self.transcript.hash())?)
    }

    /// Checks the peer's Finished (sent by the client when `client`) and adds it to the
    /// transcript.
    fn check_finished(&mut self, config: &Config, msg: &Message, client: bool) -> Result<(), Error> {
        let expected = self.verify_data(config, client)?;
        crate::handshake::check_verify_data(&expected, &msg.body, client)?;
        self.add_received(msg);
        Ok(())
    }

    /// Our Finished (as the client when `client`), in epoch 1 after ChangeCipherSpec.
    fn finished(&mut self, config: &Config, client: bool) -> Result<[FlightItem; 2], Error> {
        let verify = self.verify_data(config, client)?;
        Ok([FlightItem::ChangeCipherSpec, self.outgoing(1, HandshakeType::FINISHED, verify.to_vec())])
    }

    /// The handshake is complete.
    fn complete(&self, cx: &mut Context<'_>) {
        // Session export and keying-material export (DTLS-SRTP's too) need the master secret and
        // randoms.
        let export_secret = match &self.master {
            Some(master) if cx.config.session_export || cx.config.may_keep_exporter_secret() => {
                Some(export_secret(master, &self.client_random, &self.server_random))
            }
            _ => None,
        };
        cx.push(Action::Complete { export_secret });
    }

    fn handle_change_cipher_spec(&mut self) {
        self.peer_ccs = true;
    }
}
