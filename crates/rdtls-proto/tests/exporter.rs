//! Keying-material exporters: RFC 5705 (DTLS 1.2) and RFC 8446 §7.5 with DTLS 1.3's labels.
//! Both ends derive the same bytes; the DTLS 1.2 export matches values computed apart from this
//! code (Python's `hmac`, below), and the DTLS 1.3 one matches HKDF composed here from
//! aws-lc's HMAC over the exporter secret the key log shows. OpenSSL agrees too
//! (`crates/rdtls-interop/tests/exporter.rs`).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rdtls_proto::enums::Protocol;
use rdtls_proto::{Config, ConfigBuilder, Connection, Error, KeyLog};
use support::pump;

const KEY: &[u8] = b"exporter key";
const LABEL: &[u8] = b"EXPERIMENTAL-rdtls";

fn only(version: Protocol) -> ConfigBuilder {
    Config::builder().protocol_versions(version, version)
}

/// The secrets a key log is given: label and secret.
#[derive(Debug, Default)]
struct Logged(Mutex<Vec<(String, Vec<u8>)>>);

impl KeyLog for Logged {
    fn log(&self, label: &str, _client_random: &[u8; 32], secret: &[u8]) {
        self.0.lock().unwrap().push((label.to_owned(), secret.to_vec()));
    }
}

fn pair(version: Protocol, exporter: bool, key_log: Option<Arc<Logged>>) -> (Connection, Connection) {
    let mut c = only(version).psk("exp", KEY.to_vec()).keying_material_exporter(exporter);
    if let Some(log) = key_log {
        c = c.key_log(log);
    }
    let s = only(version).psk_server_key(KEY.to_vec()).cookie_verification(false).keying_material_exporter(exporter);
    let now = Instant::now();
    let mut client = Connection::client(Arc::new(c.build().unwrap()), now).unwrap();
    let mut server = Connection::server(Arc::new(s.build().unwrap()), now).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    (client, server)
}

fn export(conn: &Connection, label: &[u8], context: Option<&[u8]>, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    conn.export_keying_material(label, context, &mut out).unwrap();
    out
}

#[test]
fn both_ends_export_the_same_bytes() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        let (client, server) = pair(version, true, None);
        for (label, context, len) in
            [(LABEL, None, 32), (LABEL, Some(&b"ctx"[..]), 60), (&b"EXTRACTOR-dtls_srtp"[..], None, 60)]
        {
            let ours = export(&client, label, context, len);
            assert_eq!(ours, export(&server, label, context, len), "{version:?}");
            assert!(ours.iter().any(|&b| b != 0));
        }
        // Another label, another context: other bytes.
        let base = export(&client, LABEL, None, 32);
        assert_ne!(base, export(&client, b"EXPERIMENTAL-other", None, 32));
        assert_ne!(base, export(&client, LABEL, Some(b"ctx"), 32));
        // DTLS 1.2 tells no context from an empty one (RFC 5705 §4); DTLS 1.3 does not.
        let empty = export(&client, LABEL, Some(b""), 32);
        assert_eq!(base == empty, version == Protocol::Dtls1_3, "{version:?}");
        // DTLS 1.2's PRF is a stream: a longer export begins with the shorter one. DTLS 1.3
        // binds the length into the expansion: it does not.
        let longer = export(&client, LABEL, None, 64);
        assert_eq!(longer[..32] == base[..], version == Protocol::Dtls1_2, "{version:?}");
    }
}

#[test]
fn exports_need_the_configuration_a_complete_handshake_and_a_label_of_their_own() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        let (client, _) = pair(version, false, None);
        let err = client.export_keying_material(LABEL, None, &mut [0; 16]).unwrap_err();
        assert!(matches!(err, Error::InvalidOperation(m) if m.contains("keying_material_exporter")), "{version:?}");
        let (client, _) = pair(version, true, None);
        assert!(
            client.export_keying_material(&[b'x'; 250], None, &mut [0; 16]).is_err() == (version == Protocol::Dtls1_3)
        );
    }
    let (client, _) = pair(Protocol::Dtls1_2, true, None);
    for reserved in ["master secret", "key expansion", "client finished", "server finished", "extended master secret"] {
        assert!(client.export_keying_material(reserved.as_bytes(), None, &mut [0; 16]).is_err(), "{reserved}");
    }
    assert!(client.export_keying_material(LABEL, Some(&vec![0; 70_000]), &mut [0; 16]).is_err());
    let c = Arc::new(only(Protocol::Dtls1_2).psk("exp", KEY.to_vec()).keying_material_exporter(true).build().unwrap());
    let fresh = Connection::client(c, Instant::now()).unwrap();
    assert!(fresh.export_keying_material(LABEL, None, &mut [0; 16]).is_err(), "before the handshake");
}

/// A connection handed to another process exports what it did before, in both versions (DTLS
/// 1.3's exporter secret travels with the session since 2026-12-06; before, a DTLS 1.3
/// connection could no longer export once imported). An importer whose configuration keeps
/// no exporter secret exports nothing.
#[test]
fn an_imported_connection_exports_what_it_did_before() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        let s = only(version)
            .psk_server_key(KEY.to_vec())
            .cookie_verification(false)
            .keying_material_exporter(true)
            .allow_session_export(true);
        let c = only(version).psk("exp", KEY.to_vec());
        let now = Instant::now();
        let mut client = Connection::client(Arc::new(c.build().unwrap()), now).unwrap();
        let mut server = Connection::server(Arc::new(s.clone().build().unwrap()), now).unwrap();
        pump(now, &mut client, &mut server);
        let before = export(&server, LABEL, Some(b"ctx"), 40);
        let state = server.export_session().unwrap();
        let imported = Connection::import_session(Arc::new(s.build().unwrap()), &state, now).unwrap();
        assert_eq!(export(&imported, LABEL, Some(b"ctx"), 40), before, "{version:?}");
        let no_exporter = only(version).psk_server_key(KEY.to_vec()).allow_session_export(true).build().unwrap();
        let imported = Connection::import_session(Arc::new(no_exporter), &state, now).unwrap();
        assert!(imported.export_keying_material(LABEL, None, &mut [0; 16]).is_err(), "{version:?}");
    }
}

/// A DTLS 1.2 session of known secrets (an exported-session blob made by hand): the export is
/// RFC 5705's PRF, checked against values computed with Python's `hmac` and `hashlib`:
/// `P_SHA256(master, label || client_random || server_random [|| u16 length || context])`.
#[test]
fn dtls12_exports_match_independently_computed_values() {
    let master: Vec<u8> = (0..48).collect();
    let client_random: Vec<u8> = (0..32).map(|i| 0xc0 + i % 16).collect();
    let server_random: Vec<u8> = (0..32).map(|i| 0x50 + i % 16).collect();
    let mut blob = b"DTLSSES1".to_vec();
    blob.push(1); // server
    blob.extend_from_slice(&0x00a8u16.to_be_bytes()); // TLS_PSK_WITH_AES_128_GCM_SHA256: PRF SHA-256
    blob.push(1); // extended master secret
    blob.extend_from_slice(&master);
    blob.extend_from_slice(&client_random);
    blob.extend_from_slice(&server_random);
    blob.extend_from_slice(&[0, 0, 0, 0, 0, 1]); // next write sequence number
    blob.extend_from_slice(&[0; 16]); // replay window
    blob.extend_from_slice(&[0, 0]); // no PSK identity
    blob.extend_from_slice(&[0, 0]); // no certificates
    let config =
        Arc::new(Config::builder().psk_server_key(KEY.to_vec()).keying_material_exporter(true).build().unwrap());
    let conn = Connection::import_session(config, &blob, Instant::now()).unwrap();
    let hex = |b: Vec<u8>| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(hex(export(&conn, LABEL, None, 32)), "b59f5be6475b95dd0582ee80483e439b0067f083faa1203506a510846a0587c9");
    assert_eq!(
        hex(export(&conn, LABEL, Some(b"context"), 32)),
        "ef2832d82d9b274a7818d7314621f82ae92146788b131bf2fc25243fdc7d3901"
    );
    assert_eq!(
        hex(export(&conn, LABEL, Some(b""), 32)),
        "85b920f430261aeadc0c3b710fef0b084d1bf7ffac17d00078a9bd6c4817e90b"
    );
}

/// HKDF-Expand-Label with the "dtls13" prefix, composed here from aws-lc's HMAC-SHA256.
fn expand_label(secret: &[u8], label: &[u8], context: &[u8], len: usize) -> Vec<u8> {
    use aws_lc_rs::hmac;
    let full_label = [&b"dtls13"[..], label].concat();
    let mut info = (len as u16).to_be_bytes().to_vec();
    info.push(full_label.len() as u8);
    info.extend_from_slice(&full_label);
    info.push(context.len() as u8);
    info.extend_from_slice(context);
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let (mut out, mut t) = (Vec::new(), Vec::new());
    let mut i = 1u8;
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&t);
        ctx.update(&info);
        ctx.update(&[i]);
        t = ctx.sign().as_ref().to_vec();
        out.extend_from_slice(&t);
        i += 1;
    }
    out.truncate(len);
    out
}

fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref().to_vec()
}

#[test]
fn dtls13_exports_follow_rfc_8446_with_dtls13_labels() {
    let log = Arc::new(Logged::default());
    let (client, server) = pair(Protocol::Dtls1_3, true, Some(log.clone()));
    let logged = log.0.lock().unwrap();
    let (_, secret) = logged.iter().find(|(l, _)| l == "EXPORTER_SECRET").expect("the key log has the exporter secret");
    for (context, len) in [(None, 32), (Some(&b"some context"[..]), 48)] {
        let derived = expand_label(secret, LABEL, &sha256(b""), 32);
        let expected = expand_label(&derived, b"exporter", &sha256(context.unwrap_or_default()), len);
        assert_eq!(export(&client, LABEL, context, len), expected);
        assert_eq!(export(&server, LABEL, context, len), expected);
    }
}
