//! The client side of the handshake: flights 1, 3 and 5.

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
use crate::messages::{self, put_extension, write_message, ServerEcdhParams, ServerHello};
use crate::suites::{CipherSuite, KeyExchange};

/// Most HelloVerifyRequests we follow in one handshake.
const MAX_HELLO_VERIFY: u8 = 4;

impl Connection {
    pub(crate) fn client_start(&mut self, now: Instant) -> Result<(), Error> {
        let Some(hs) = self.hs.as_deref_mut() else {
            return Err(Error::InvalidOperation("no handshake"));
        };
        self.config.provider.fill_random(&mut hs.client_random)?;
        let item = self.client_hello_item()?;
        self.start_flight(now, vec![item], true);
        Ok(())
    }

    /// The suites we offer: the configured ones we have credentials for.
    fn offered_suites(&self) -> impl Iterator<Item = &'static CipherSuite> + '_ {
        let have_psk = self.config.client_psk.is_some();
        self.config.cipher_suites.iter().copied().filter(move |s| !s.key_exchange.uses_psk() || have_psk)
    }

    fn client_hello_item(&mut self) -> Result<FlightItem, Error> {
        let suites: Vec<u16> = self.offered_suites().map(|s| s.id).collect();
        if suites.is_empty() {
            return Err(Error::Config("no cipher suite can be offered with the configured credentials"));
        }
        let ecdhe = self.offered_suites().any(|s| s.key_exchange.uses_ecdhe());
        let groups = self.config.groups.clone();
        let Some(hs) = self.hs.as_deref_mut() else {
            return Err(Error::InvalidOperation("no handshake"));
        };
        let mut body = Vec::with_capacity(256);
        body.put_u16(ProtocolVersion::DTLS1_2.0);
        body.extend_from_slice(&hs.client_random);
        body.put_vec8(&hs.session_id);
        body.put_vec8(&hs.cookie);
        body.put_len16(|b| suites.iter().for_each(|s| b.put_u16(*s)));
        body.put_vec8(&[0]);
        body.put_len16(|b| {
            put_extension(b, ExtensionType::EXTENDED_MASTER_SECRET, |_| {});
            put_extension(b, ExtensionType::RENEGOTIATION_INFO, |b| b.put_vec8(&[]));
            if ecdhe {
                put_extension(b, ExtensionType::SUPPORTED_GROUPS, |b| {
                    b.put_len16(|b| groups.iter().for_each(|g| b.put_u16(g.code_point())));
                });
                put_extension(b, ExtensionType::EC_POINT_FORMATS, |b| b.put_vec8(&[0]));
            }
        });
        let seq = hs.next_send_seq;
        hs.next_send_seq += 1;
        hs.client_hello.clear();
        write_message(&mut hs.client_hello, HandshakeType::CLIENT_HELLO, seq, &body);
        Ok(FlightItem::Message { epoch: 0, msg_type: HandshakeType::CLIENT_HELLO, seq, body })
    }

    pub(crate) fn client_handle(&mut self, now: Instant, msg: Message) -> Result<(), Error> {
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        match (hs.expect, msg.msg_type) {
            (Expect::ServerHello, HandshakeType::HELLO_VERIFY_REQUEST) => {
                let (_version, cookie) =
                    messages::parse_hello_verify_request(&msg.body).ok_or(Error::decode("HelloVerifyRequest"))?;
                hs.hello_verify_count += 1;
                if hs.hello_verify_count > MAX_HELLO_VERIFY {
                    return Err(Error::unexpected("too many HelloVerifyRequests"));
                }
                if cookie.is_empty() {
                    return Err(Error::illegal("empty cookie in HelloVerifyRequest"));
                }
                hs.cookie = cookie.to_vec();
                let item = self.client_hello_item()?;
                self.start_flight(now, vec![item], true);
                Ok(())
            }
            (Expect::ServerHello, HandshakeType::SERVER_HELLO) => self.client_server_hello(&msg),
            (Expect::ServerKeyExchange, HandshakeType::SERVER_KEY_EXCHANGE) => {
                let kx = self.suite.map(|s| s.key_exchange);
                let mut r = Reader::new(&msg.body);
                let hint = r.vec16().ok_or(Error::decode("ServerKeyExchange"))?;
                hs.psk_hint = (!hint.is_empty()).then(|| hint.to_vec());
                if kx == Some(KeyExchange::EcdhePsk) {
                    let params = ServerEcdhParams::parse(&mut r).ok_or(Error::decode("ServerKeyExchange"))?;
                    let group = KxGroup::from_code_point(params.group)
                        .filter(|g| self.config.groups.contains(g))
                        .ok_or(Error::illegal("server chose a group we did not offer"))?;
                    hs.group = Some(group);
                    hs.peer_public = Some(params.public.to_vec());
                }
                r.finish().ok_or(Error::decode("ServerKeyExchange"))?;
                hs.add_received(msg.msg_type, msg.seq, &msg.body);
                hs.expect = Expect::ServerHelloDone;
                Ok(())
            }
            (Expect::ServerKeyExchange, HandshakeType::SERVER_HELLO_DONE)
                if self.suite.map(|s| s.key_exchange) == Some(KeyExchange::Psk) =>
            {
                self.client_server_hello_done(now, &msg)
            }
            (Expect::ServerHelloDone, HandshakeType::SERVER_HELLO_DONE) => self.client_server_hello_done(now, &msg),
            (Expect::ServerFinished, HandshakeType::FINISHED) => {
                let (Some(suite), Some(master)) = (self.suite, hs.master.as_ref()) else {
                    return Err(Error::unexpected("Finished before keys"));
                };
                let expected = keys::verify_data(&*self.config.provider, suite, master, false, &hs.transcript)?;
                if !crate::crypto::ct_eq(&expected, &msg.body) {
                    return Err(Error::PeerMisbehaved {
                        alert: AlertDescription::DECRYPT_ERROR,
                        reason: "server Finished does not verify",
                    });
                }
                self.complete();
                Ok(())
            }
            _ => Err(Error::unexpected("unexpected handshake message")),
        }
    }

    fn client_server_hello(&mut self, msg: &Message) -> Result<(), Error> {
        let sh = ServerHello::parse(&msg.body).ok_or(Error::decode("ServerHello"))?;
        if sh.server_version != ProtocolVersion::DTLS1_2 {
            return Err(Error::PeerIncompatible {
                alert: AlertDescription::PROTOCOL_VERSION,
                reason: "server chose a version other than DTLS 1.2",
            });
        }
        let suite = self
            .offered_suites()
            .find(|s| s.id == sh.cipher_suite)
            .ok_or(Error::illegal("server chose a cipher suite we did not offer"))?;
        if sh.compression_method != 0 {
            return Err(Error::illegal("server chose compression"));
        }
        if sh.extensions.renegotiation_info.as_ref().is_some_and(|ri| !ri.is_empty()) {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::HANDSHAKE_FAILURE,
                reason: "non-empty renegotiation_info in an initial handshake",
            });
        }
        if sh.extensions.supported_groups.is_some() || sh.extensions.server_name.is_some() {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::UNSUPPORTED_EXTENSION,
                reason: "server sent an extension it may not send",
            });
        }
        if suite.key_exchange.uses_ecdhe() && sh.extensions.ec_point_formats.as_ref().is_some_and(|f| !f.contains(&0)) {
            return Err(Error::illegal("server does not accept uncompressed points"));
        }
        let ems = sh.extensions.extended_master_secret;
        if !ems && self.config.extended_master_secret == ExtendedMasterSecret::Require {
            return Err(Error::PeerIncompatible {
                alert: AlertDescription::HANDSHAKE_FAILURE,
                reason: "server does not support the extended master secret",
            });
        }
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        hs.server_random = sh.random;
        hs.session_id = sh.session_id;
        // The transcript starts with the ClientHello this ServerHello answers.
        let ch = core::mem::take(&mut hs.client_hello);
        hs.transcript.clear();
        hs.transcript.extend_from_slice(&ch);
        hs.add_received(msg.msg_type, msg.seq, &msg.body);
        hs.expect = Expect::ServerKeyExchange;
        hs.peer_flight_start = Some(msg.seq);
        self.suite = Some(suite);
        self.extended_master_secret = ems;
        Ok(())
    }

    fn client_server_hello_done(&mut self, now: Instant, msg: &Message) -> Result<(), Error> {
        if !msg.body.is_empty() {
            return Err(Error::decode("ServerHelloDone"));
        }
        let Some(suite) = self.suite else { return Err(Error::unexpected("ServerHelloDone")) };
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        hs.add_received(msg.msg_type, msg.seq, &msg.body);
        let callback = self.config.client_psk.clone().ok_or(Error::NoPsk)?;
        let creds = callback(hs.psk_hint.as_deref()).ok_or(Error::NoPsk)?;
        if creds.identity.len() > MAX_PSK_IDENTITY_LEN || creds.key.is_empty() || creds.key.len() > MAX_PSK_LEN {
            return Err(Error::Config("PSK identity or key length out of range"));
        }
        let mut cke = Vec::with_capacity(128);
        cke.put_vec16(&creds.identity);
        let shared = match suite.key_exchange {
            KeyExchange::EcdhePsk => {
                let (Some(group), Some(peer)) = (hs.group, hs.peer_public.take()) else {
                    return Err(Error::unexpected("ECDHE_PSK without ServerKeyExchange"));
                };
                let kx = self.config.provider.start_key_exchange(group)?;
                cke.put_vec8(kx.public_key());
                Some(kx.complete(&peer).map_err(|_| Error::illegal("invalid server ECDH public key"))?)
            }
            _ => None,
        };
        let premaster = psk_premaster(shared.as_ref().map(|s| s.as_bytes()), &creds.key);
        let cke_item = hs.outgoing(0, HandshakeType::CLIENT_KEY_EXCHANGE, cke);
        self.psk_identity = Some(creds.identity.clone());
        self.establish_keys(&premaster)?;
        let Some(hs) = self.hs.as_deref_mut() else { return Ok(()) };
        let (Some(suite), Some(master)) = (self.suite, hs.master.as_ref()) else {
            return Err(Error::Crypto);
        };
        let verify = keys::verify_data(&*self.config.provider, suite, master, true, &hs.transcript)?;
        let fin_item = hs.outgoing(1, HandshakeType::FINISHED, verify.to_vec());
        hs.expect = Expect::ServerFinished;
        self.start_flight(now, vec![cke_item, FlightItem::ChangeCipherSpec, fin_item], true);
        self.write_epoch = 1;
        Ok(())
    }
}
