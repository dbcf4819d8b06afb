//! The server side of the handshake: flights 4 and 6 (flight 2 is the stateless
//! [`crate::ClientVerifier`]).

use std::time::Instant;

use crate::codec::{Put, Reader};
use crate::config::{ExtendedMasterSecret, MAX_PSK_IDENTITY_LEN, MAX_PSK_LEN};
use crate::connection::{Connection, FlightItem};
use crate::crypto::KxGroup;
use crate::enums::{AlertDescription, ExtensionType, HandshakeType, ProtocolVersion};
use crate::error::Error;
use crate::handshake::keys::{self, psk_premaster};
use crate::handshake::reassembly::Message;
use crate::handshake::Expect;
use crate::messages::{put_extension, ClientHello, ServerEcdhParams};
use crate::suites::{CipherSuite, KeyExchange, TLS_EMPTY_RENEGOTIATION_INFO_SCSV};

impl Connection {
    pub(crate) fn server_handle(&mut self, now: Instant, msg: Message) -> Result<(), Error> {
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        match (hs.expect, msg.msg_type) {
            (Expect::ClientHello, HandshakeType::CLIENT_HELLO) => self.server_client_hello(now, &msg),
            (Expect::ClientKeyExchange, HandshakeType::CLIENT_KEY_EXCHANGE) => self.server_client_key_exchange(&msg),
            (Expect::ClientFinished, HandshakeType::FINISHED) => self.server_client_finished(now, &msg),
            _ => Err(Error::unexpected("unexpected handshake message")),
        }
    }

    /// Picks our most preferred suite that the client offers and we have credentials for.
    fn select_suite(&self, ch: &ClientHello) -> Option<(&'static CipherSuite, Option<KxGroup>)> {
        let have_psk = self.config.server_psk.is_some();
        let group = match &ch.extensions.supported_groups {
            Some(theirs) => self.config.groups.iter().copied().find(|g| theirs.contains(&g.code_point())),
            // No extension: the client accepts any group (RFC 8422 §4).
            None => self.config.groups.first().copied(),
        };
        let points_ok = ch.extensions.ec_point_formats.as_ref().is_none_or(|f| f.contains(&0));
        self.config.cipher_suites.iter().copied().find_map(|s| {
            if !ch.cipher_suites.contains(&s.id) {
                return None;
            }
            if s.key_exchange.uses_psk() && !have_psk {
                return None;
            }
            if s.key_exchange.uses_certificate() {
                return None;
            }
            if s.key_exchange.uses_ecdhe() {
                return (group.is_some() && points_ok).then_some((s, group));
            }
            Some((s, None))
        })
    }

    fn server_client_hello(&mut self, now: Instant, msg: &Message) -> Result<(), Error> {
        let (ch, _) = ClientHello::parse(&msg.body).ok_or(Error::decode("ClientHello"))?;
        if !ch.client_version.is_dtls() || ch.client_version.0 > ProtocolVersion::DTLS1_2.0 {
            return Err(Error::PeerIncompatible {
                alert: AlertDescription::PROTOCOL_VERSION,
                reason: "client does not offer DTLS 1.2",
            });
        }
        if !ch.compression_methods.contains(&0) {
            return Err(Error::illegal("client does not offer null compression"));
        }
        if ch.extensions.renegotiation_info.as_ref().is_some_and(|ri| !ri.is_empty()) {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::HANDSHAKE_FAILURE,
                reason: "non-empty renegotiation_info in an initial handshake",
            });
        }
        let ems = ch.extensions.extended_master_secret;
        if !ems && self.config.extended_master_secret == ExtendedMasterSecret::Require {
            return Err(Error::PeerIncompatible {
                alert: AlertDescription::HANDSHAKE_FAILURE,
                reason: "client does not support the extended master secret",
            });
        }
        let (suite, group) = self.select_suite(&ch).ok_or(Error::PeerIncompatible {
            alert: AlertDescription::HANDSHAKE_FAILURE,
            reason: "no cipher suite in common",
        })?;
        let secure_renegotiation =
            ch.extensions.renegotiation_info.is_some() || ch.cipher_suites.contains(&TLS_EMPTY_RENEGOTIATION_INFO_SCSV);
        let provider = self.config.provider.clone();
        let hint = self.config.psk_identity_hint.clone();
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        hs.client_random = ch.random;
        provider.fill_random(&mut hs.server_random)?;
        hs.secure_renegotiation = secure_renegotiation;
        hs.next_send_seq = msg.seq;
        hs.peer_flight_start = Some(msg.seq);
        hs.add_received(msg.msg_type, msg.seq, &msg.body);

        let mut sh = Vec::with_capacity(96);
        sh.put_u16(ProtocolVersion::DTLS1_2.0);
        sh.extend_from_slice(&hs.server_random);
        sh.put_vec8(&[]); // no session resumption: an empty session_id
        sh.put_u16(suite.id);
        sh.put_u8(0);
        let mut exts = Vec::with_capacity(32);
        if secure_renegotiation {
            put_extension(&mut exts, ExtensionType::RENEGOTIATION_INFO, |b| b.put_vec8(&[]));
        }
        if ems {
            put_extension(&mut exts, ExtensionType::EXTENDED_MASTER_SECRET, |_| {});
        }
        if suite.key_exchange.uses_ecdhe() && ch.extensions.ec_point_formats.is_some() {
            put_extension(&mut exts, ExtensionType::EC_POINT_FORMATS, |b| b.put_vec8(&[0]));
        }
        // An empty extensions block is sent as none at all.
        if !exts.is_empty() {
            sh.put_vec16(&exts);
        }
        let mut items = vec![hs.outgoing(0, HandshakeType::SERVER_HELLO, sh)];

        match suite.key_exchange {
            KeyExchange::Psk => {
                if let Some(hint) = &hint {
                    let mut ske = Vec::with_capacity(2 + hint.len());
                    ske.put_vec16(hint);
                    items.push(hs.outgoing(0, HandshakeType::SERVER_KEY_EXCHANGE, ske));
                }
            }
            KeyExchange::EcdhePsk => {
                let Some(group) = group else { return Err(Error::Crypto) };
                let kx = provider.start_key_exchange(group)?;
                let mut ske = Vec::with_capacity(128);
                ske.put_vec16(hint.as_deref().unwrap_or_default());
                ServerEcdhParams { group: group.code_point(), public: kx.public_key() }.write(&mut ske);
                hs.kx = Some(kx);
                hs.group = Some(group);
                items.push(hs.outgoing(0, HandshakeType::SERVER_KEY_EXCHANGE, ske));
            }
            _ => return Err(Error::Crypto),
        }
        items.push(hs.outgoing(0, HandshakeType::SERVER_HELLO_DONE, Vec::new()));
        hs.expect = Expect::ClientKeyExchange;
        self.suite = Some(suite);
        self.extended_master_secret = ems;
        self.start_flight(now, items, true);
        Ok(())
    }

    fn server_client_key_exchange(&mut self, msg: &Message) -> Result<(), Error> {
        let Some(suite) = self.suite else { return Err(Error::unexpected("ClientKeyExchange")) };
        let mut r = Reader::new(&msg.body);
        let identity = r.vec16().ok_or(Error::decode("ClientKeyExchange"))?;
        if identity.len() > MAX_PSK_IDENTITY_LEN {
            return Err(Error::illegal("PSK identity too long"));
        }
        let peer_public = match suite.key_exchange {
            KeyExchange::EcdhePsk => {
                Some(r.vec8().filter(|p| !p.is_empty()).ok_or(Error::decode("ClientKeyExchange"))?)
            }
            _ => None,
        };
        r.finish().ok_or(Error::decode("ClientKeyExchange"))?;
        let callback = self.config.server_psk.clone().ok_or(Error::NoPsk)?;
        let key = callback(identity).ok_or(Error::UnknownPskIdentity)?;
        if key.is_empty() || key.len() > MAX_PSK_LEN {
            return Err(Error::Config("PSK length out of range"));
        }
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        let shared = match peer_public {
            Some(p) => {
                let kx = hs.kx.take().ok_or(Error::Crypto)?;
                Some(kx.complete(p).map_err(|_| Error::illegal("invalid client ECDH public key"))?)
            }
            None => None,
        };
        let premaster = psk_premaster(shared.as_ref().map(|s| s.as_bytes()), &key);
        hs.add_received(msg.msg_type, msg.seq, &msg.body);
        hs.peer_flight_start = Some(msg.seq);
        hs.expect = Expect::ClientFinished;
        self.psk_identity = Some(identity.to_vec());
        self.establish_keys(&premaster)
    }

    fn server_client_finished(&mut self, now: Instant, msg: &Message) -> Result<(), Error> {
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        let (Some(suite), Some(master)) = (self.suite, hs.master.clone()) else {
            return Err(Error::unexpected("Finished before keys"));
        };
        let provider = &*self.config.provider;
        let expected = keys::verify_data(provider, suite, &master, true, &hs.transcript)?;
        if !crate::crypto::ct_eq(&expected, &msg.body) {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::DECRYPT_ERROR,
                reason: "client Finished does not verify",
            });
        }
        hs.add_received(msg.msg_type, msg.seq, &msg.body);
        let verify = keys::verify_data(provider, suite, &master, false, &hs.transcript)?;
        let fin = hs.outgoing(1, HandshakeType::FINISHED, verify.to_vec());
        self.start_flight(now, vec![FlightItem::ChangeCipherSpec, fin], false);
        self.write_epoch = 1;
        self.complete();
        Ok(())
    }
}
