//! DTLS-SRTP (RFC 5764): the `use_srtp` extension in both versions' handshakes, the profile
//! choice, the checks of the server's answer, the keying material, and what survives
//! resumption and session export. OpenSSL and GnuTLS agree on the profile and the keys too
//! (`crates/rdtls-interop/tests/srtp.rs`).

mod support;

use std::sync::Arc;
use std::time::Instant;

use rdtls_proto::enums::{AlertDescription, Protocol};
use rdtls_proto::srtp::{SrtpProfile, EXPORTER_LABEL};
use rdtls_proto::{Config, ConfigBuilder, Connection, Error};
use support::{drain, grow_hello, hello_extensions, pump};

use SrtpProfile::{AeadAes128Gcm, AeadAes256Gcm, Aes128CmHmacSha1_32, Aes128CmHmacSha1_80};

const KEY: &[u8] = b"srtp test key";

fn only(version: Protocol) -> ConfigBuilder {
    Config::builder().protocol_versions(version, version)
}

fn configs(version: Protocol, client: &[SrtpProfile], server: &[SrtpProfile]) -> (Arc<Config>, Arc<Config>) {
    let c = only(version).psk("media", KEY.to_vec()).srtp_profiles(client).keying_material_exporter(true);
    let s = only(version).psk_server_key(KEY.to_vec()).cookie_verification(false).srtp_profiles(server);
    (Arc::new(c.build().unwrap()), Arc::new(s.allow_session_export(true).build().unwrap()))
}

/// A handshake; returns both ends and every datagram the client sent before it completed.
fn connect(
    version: Protocol,
    client: &[SrtpProfile],
    server: &[SrtpProfile],
) -> (Connection, Connection, Vec<Vec<u8>>) {
    let (c, s) = configs(version, client, server);
    let now = Instant::now();
    let mut client = Connection::client(c, now).unwrap();
    let mut server = Connection::server(s, now).unwrap();
    let hello = drain(&mut client);
    for d in &hello {
        server.handle_datagram(now, &mut d.clone()).unwrap();
    }
    pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    (client, server, hello)
}

/// The `use_srtp` extension's body in the hello that starts a plaintext handshake datagram.
fn use_srtp_in(datagram: &[u8]) -> Option<Vec<u8>> {
    hello_extensions(datagram).use_srtp.map(|u| {
        let mut b = Vec::new();
        u.emit(&mut b);
        b
    })
}

#[test]
fn both_versions_agree_on_the_servers_preferred_profile_and_derive_the_same_keys() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        let (client, server, hello) = connect(
            version,
            &[Aes128CmHmacSha1_80, AeadAes128Gcm],
            &[AeadAes256Gcm, AeadAes128Gcm, Aes128CmHmacSha1_80],
        );
        // The offer, in the client's order, with no MKI.
        assert_eq!(use_srtp_in(&hello[0]), Some(vec![0, 4, 0, 1, 0, 7, 0]), "{version:?}");
        assert_eq!(client.srtp_profile(), Some(AeadAes128Gcm), "{version:?}");
        assert_eq!(server.srtp_profile(), Some(AeadAes128Gcm), "{version:?}");
        let keys = client.srtp_keying_material().unwrap();
        assert_eq!(keys, server.srtp_keying_material().unwrap());
        assert_eq!(keys.profile(), AeadAes128Gcm);
        assert_eq!(keys.as_bytes().len(), 2 * (16 + 12));
        // The RFC's exporter, label and length: the same bytes as a plain export.
        let mut exported = vec![0; 56];
        client.export_keying_material(EXPORTER_LABEL, None, &mut exported).unwrap();
        assert_eq!(keys.as_bytes(), exported);
        assert_eq!(keys.client_master_key(), &exported[..16]);
        assert_eq!(keys.server_master_key(), &exported[16..32]);
        assert_eq!(keys.client_master_salt(), &exported[32..44]);
        assert_eq!(keys.server_master_salt(), &exported[44..]);
        // The server, which has no general exporter, kept the secret for SRTP (above) but
        // exports nothing else.
        let mut out = [0u8; 8];
        assert!(matches!(
            server.export_keying_material(EXPORTER_LABEL, None, &mut out),
            Err(Error::InvalidOperation(_))
        ));
    }
}

#[test]
fn the_dtls12_server_hello_carries_one_profile_and_no_mki_even_when_one_was_offered() {
    let (c, s) = configs(Protocol::Dtls1_2, &[AeadAes256Gcm, Aes128CmHmacSha1_32], &[Aes128CmHmacSha1_32]);
    let now = Instant::now();
    let mut client = Connection::client(c, now).unwrap();
    let mut server = Connection::server(s, now).unwrap();
    let mut hello = drain(&mut client).remove(0);
    // Offer an MKI of our own making: the extension's empty MKI becomes one byte. The
    // extensions block's length is past version, random, session ID, cookie, suites and
    // compression methods of the hello, whose body starts after the 25 bytes of headers.
    let mut p = 25 + 2 + 32;
    p += 1 + usize::from(hello[p]);
    p += 1 + usize::from(hello[p]);
    p += 2 + usize::from(u16::from_be_bytes([hello[p], hello[p + 1]]));
    p += 1 + usize::from(hello[p]);
    let at = hello.windows(4).position(|w| w == [0x00, 0x0e, 0x00, 0x07]).unwrap();
    hello[at + 3] = 8;
    hello[at + 10] = 1;
    grow_hello(&mut hello, p, at + 11, &[0x5a]);
    assert_eq!(use_srtp_in(&hello), Some(vec![0, 4, 0, 8, 0, 2, 1, 0x5a]));
    server.handle_datagram(now, &mut hello).unwrap();
    let flight = drain(&mut server);
    assert_eq!(use_srtp_in(&flight[0]), Some(vec![0, 2, 0, 2, 0]));
    assert_eq!(server.srtp_profile(), Some(Aes128CmHmacSha1_32));
}

#[test]
fn without_a_common_profile_or_an_offer_the_handshake_goes_on_without_srtp() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        for (client, server) in
            [(&[AeadAes128Gcm][..], &[Aes128CmHmacSha1_80][..]), (&[], &[AeadAes128Gcm]), (&[AeadAes128Gcm], &[])]
        {
            let (c, s, hello) = connect(version, client, server);
            assert_eq!(use_srtp_in(&hello[0]).is_some(), !client.is_empty());
            assert_eq!((c.srtp_profile(), s.srtp_profile()), (None, None), "{version:?} {client:?} {server:?}");
            assert!(matches!(c.srtp_keying_material(), Err(Error::InvalidOperation(_))));
            assert!(matches!(s.srtp_keying_material(), Err(Error::InvalidOperation(_))));
        }
    }
}

#[test]
fn a_client_refuses_a_profile_it_did_not_offer() {
    let (c, s) = configs(Protocol::Dtls1_2, &[AeadAes128Gcm], &[AeadAes128Gcm]);
    let now = Instant::now();
    let mut client = Connection::client(c, now).unwrap();
    let mut server = Connection::server(s, now).unwrap();
    for mut d in drain(&mut client) {
        server.handle_datagram(now, &mut d).unwrap();
    }
    let mut flight = drain(&mut server);
    // The ServerHello's choice, 0x0007, becomes 0x0002 (SRTP_AES128_CM_HMAC_SHA1_32).
    let at = flight[0].windows(7).position(|w| w == [0x00, 0x0e, 0x00, 0x05, 0x00, 0x02, 0x00]).unwrap();
    assert_eq!(flight[0][at + 7], 0x07);
    flight[0][at + 7] = 0x02;
    let err = client.handle_datagram(now, &mut flight[0]).unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved { alert: AlertDescription::ILLEGAL_PARAMETER, .. }), "{err:?}");
    assert!(client.srtp_profile().is_none());
    // On the wire: a plaintext fatal illegal_parameter alert.
    let alert = drain(&mut client);
    assert_eq!(alert.len(), 1);
    assert_eq!((alert[0][0], &alert[0][13..]), (21, &[2, 47][..]));
}

#[test]
fn a_client_that_offered_nothing_refuses_an_answer() {
    let (c, _) = configs(Protocol::Dtls1_2, &[], &[]);
    let (_, s) = configs(Protocol::Dtls1_2, &[AeadAes128Gcm], &[AeadAes128Gcm]);
    let now = Instant::now();
    let mut client = Connection::client(c, now).unwrap();
    let mut server = Connection::server(s, now).unwrap();
    let mut hello = drain(&mut client).remove(0);
    assert_eq!(use_srtp_in(&hello), None);
    server.handle_datagram(now, &mut hello).unwrap();
    // The server answers no offer; a forged answer, added to its ServerHello, is refused.
    let mut flight = drain(&mut server);
    assert_eq!(use_srtp_in(&flight[0]), None);
    let exts_len_at = support::server_hello_extensions_at(&flight[0]);
    grow_hello(&mut flight[0], exts_len_at, exts_len_at + 2, &[0, 0x0e, 0, 5, 0, 2, 0, 7, 0]);
    assert_eq!(use_srtp_in(&flight[0]), Some(vec![0, 2, 0, 7, 0]));
    let err = client.handle_datagram(now, &mut flight[0]).unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved { alert: AlertDescription::UNSUPPORTED_EXTENSION, .. }), "{err:?}");
}

#[test]
fn resumption_agrees_again_and_gives_new_keys() {
    let c = support::dtls12()
        .psk("media", KEY.to_vec())
        .session_resumption(true)
        .srtp_profiles(&[Aes128CmHmacSha1_80])
        .build()
        .unwrap();
    let s = support::dtls12().psk_server_key(KEY.to_vec()).cookie_verification(false).srtp_profiles(&SrtpProfile::ALL);
    let (c, s) = (Arc::new(c), Arc::new(s.build().unwrap()));
    let now = Instant::now();
    let mut client = Connection::client(c.clone(), now).unwrap();
    let mut server = Connection::server(s.clone(), now).unwrap();
    pump(now, &mut client, &mut server);
    let first = client.srtp_keying_material().unwrap();
    let session = client.session().cloned().unwrap();
    let mut client = Connection::resuming_client(c, None, Some(session), now).unwrap();
    let mut server = Connection::server(s, now).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.resumed() && server.resumed());
    assert_eq!(client.srtp_profile(), Some(Aes128CmHmacSha1_80));
    let again = client.srtp_keying_material().unwrap();
    assert_eq!(again, server.srtp_keying_material().unwrap());
    assert_ne!(again.as_bytes(), first.as_bytes());
}

#[test]
fn session_export_keeps_the_profile_and_the_keys() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        let (_, mut server, _) = connect(version, &[AeadAes256Gcm], &[AeadAes256Gcm]);
        let keys = server.srtp_keying_material().unwrap();
        let config = configs(version, &[], &[AeadAes256Gcm]).1;
        let state = server.export_session().unwrap();
        let imported = Connection::import_session(config, &state, Instant::now()).unwrap();
        assert_eq!(imported.srtp_profile(), Some(AeadAes256Gcm), "{version:?}");
        assert_eq!(imported.srtp_keying_material().unwrap(), keys, "{version:?}");
        // A cut or an unknown section is refused, not half read.
        let cut = &state[..state.len() - 1];
        assert!(Connection::import_session(configs(version, &[], &[]).1, cut, Instant::now()).is_err());
        let mut unknown = state.to_vec();
        unknown.extend_from_slice(&[9, 0, 0]);
        assert!(Connection::import_session(configs(version, &[], &[]).1, &unknown, Instant::now()).is_err());
    }
}

/// With connection IDs too, whose fields come before the export's optional sections.
#[test]
fn session_export_keeps_connection_ids_and_srtp_together() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        let c = only(version).psk("media", KEY.to_vec()).srtp_profiles(&[AeadAes128Gcm]).connection_id(20);
        let s = only(version).psk_server_key(KEY.to_vec()).cookie_verification(false).connection_id(20);
        let s = Arc::new(s.srtp_profiles(&[AeadAes128Gcm]).allow_session_export(true).build().unwrap());
        let now = Instant::now();
        let mut client = Connection::client(Arc::new(c.build().unwrap()), now).unwrap();
        let mut server = Connection::server(s.clone(), now).unwrap();
        pump(now, &mut client, &mut server);
        let (own, peer) = (server.connection_id().unwrap().to_vec(), server.peer_connection_id().unwrap().to_vec());
        let keys = server.srtp_keying_material().unwrap();
        let state = server.export_session().unwrap();
        let imported = Connection::import_session(s.clone(), &state, now).unwrap();
        assert_eq!((imported.connection_id(), imported.peer_connection_id()), (Some(&own[..]), Some(&peer[..])));
        assert_eq!(imported.srtp_keying_material().unwrap(), keys, "{version:?}");
        // The sections' marker alone is not an export; without it and its sections, the
        // session imports, without SRTP.
        // Marker, the SRTP section (tag, length, code point), DTLS 1.3's exporter secret.
        let sections = 1 + 5 + if version == Protocol::Dtls1_3 { 1 + 2 + 32 } else { 0 };
        let without = state.len() - sections;
        assert_eq!(state[without], 0xff, "{version:?}");
        assert!(Connection::import_session(s.clone(), &state[..=without], now).is_err(), "{version:?}");
        let old = Connection::import_session(s.clone(), &state[..without], now).unwrap();
        assert_eq!(old.srtp_profile(), None, "{version:?}");
    }
}

#[test]
fn a_configuration_lists_each_profile_once() {
    let twice = Config::builder().psk("x", KEY.to_vec()).srtp_profiles(&[AeadAes128Gcm, AeadAes128Gcm]).build();
    assert!(matches!(twice, Err(Error::Config(_))));
    let all = Config::builder().psk("x", KEY.to_vec()).srtp_profiles(&SrtpProfile::ALL).build().unwrap();
    assert_eq!(all.srtp_profiles(), SrtpProfile::ALL);
}
