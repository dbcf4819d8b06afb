//! Version negotiation at its edges, found by BoringSSL's conformance suite (BoGo,
//! `docs/bogo.md`): a client_version above DTLS 1.2 without supported_versions gets DTLS 1.2
//! (`MajorVersionTolerance-DTLS`); a supported_versions that names no version we know is
//! refused even when client_version says DTLS 1.2 (`NoSupportedVersions-DTLS`); and a client
//! that offers only DTLS 1.3 refuses a HelloVerifyRequest with protocol_version
//! (`MinimumVersion-Client-TLS13-TLS12-DTLS`).

use std::sync::Arc;
use std::time::Instant;

use rdtls_proto::enums::AlertDescription;
use rdtls_proto::{Config, ConfigBuilder, Connection, Error, Protocol};

const KEY: &[u8] = b"version negotiation key";

fn versions(min: Protocol, max: Protocol) -> ConfigBuilder {
    Config::builder().protocol_versions(min, max).cookie_verification(false)
}

fn client(min: Protocol, max: Protocol, now: Instant) -> Connection {
    let c = versions(min, max).psk("versions", KEY.to_vec()).build().unwrap();
    Connection::client(Arc::new(c), now).unwrap()
}

fn server(min: Protocol, max: Protocol, now: Instant) -> Connection {
    let s = versions(min, max).psk_server_key(KEY.to_vec()).build().unwrap();
    Connection::server(Arc::new(s), now).unwrap()
}

/// The first datagram a connection sends.
fn first(conn: &mut Connection) -> Vec<u8> {
    let mut buf = Vec::new();
    conn.poll_transmit(&mut buf).expect("a datagram");
    buf
}

/// Offset of the ClientHello body in a datagram of one DTLS 1.2-framed handshake record.
const BODY: usize = 13 + 12;

#[test]
fn a_client_version_above_dtls12_without_supported_versions_gets_dtls12() {
    let now = Instant::now();
    let mut c = client(Protocol::Dtls1_2, Protocol::Dtls1_2, now);
    let mut hello = first(&mut c);
    assert_eq!(hello[BODY..BODY + 2], [0xfe, 0xfd]);
    // A version that does not exist yet, above DTLS 1.2 (DTLS versions count down).
    hello[BODY..BODY + 2].copy_from_slice(&[0xfd, 0xff]);
    let mut s = server(Protocol::Dtls1_2, Protocol::Dtls1_3, now);
    s.handle_datagram(now, &mut hello).unwrap();
    let answer = first(&mut s);
    assert_eq!(answer[13], 2, "a ServerHello");
    assert_eq!(answer[BODY..BODY + 2], [0xfe, 0xfd], "DTLS 1.2");
    assert!(!s.is_closed());
}

#[test]
fn supported_versions_without_a_known_version_is_refused() {
    let now = Instant::now();
    let mut c = client(Protocol::Dtls1_3, Protocol::Dtls1_3, now);
    let mut hello = first(&mut c);
    assert_eq!(hello[BODY..BODY + 2], [0xfe, 0xfd], "legacy_version says DTLS 1.2");
    // supported_versions (43) offering DTLS 1.3 alone: name an unknown version instead.
    let ext = [0x00, 0x2b, 0x00, 0x03, 0x02, 0xfe, 0xfc];
    let at = hello.windows(ext.len()).position(|w| w == ext).expect("supported_versions");
    hello[at + 5..at + 7].copy_from_slice(&[0x11, 0x11]);
    for (min, max) in [(Protocol::Dtls1_2, Protocol::Dtls1_3), (Protocol::Dtls1_2, Protocol::Dtls1_2)] {
        let mut s = server(min, max, now);
        let mut d = hello.clone();
        let err = s.handle_datagram(now, &mut d).unwrap_err();
        assert!(
            matches!(err, Error::PeerIncompatible { alert: AlertDescription::PROTOCOL_VERSION, .. }),
            "{max:?}: {err}"
        );
        // Not negotiated from legacy_version: the answer is the alert alone.
        let alert = first(&mut s);
        assert_eq!(alert[0], 21, "an alert record");
        assert_eq!(alert[13..], [2, AlertDescription::PROTOCOL_VERSION.0]);
    }
}

#[test]
fn a_dtls13_only_client_refuses_a_hello_verify_request_with_protocol_version() {
    let now = Instant::now();
    let mut c = client(Protocol::Dtls1_3, Protocol::Dtls1_3, now);
    let _ = first(&mut c);
    // A HelloVerifyRequest (a DTLS 1.2 server's answer): version DTLS 1.0, cookie "abc".
    let body = [0xfe, 0xff, 3, b'a', b'b', b'c'];
    let mut hvr = vec![22, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12 + body.len() as u8];
    hvr.extend_from_slice(&[3, 0, 0, body.len() as u8, 0, 0, 0, 0, 0, 0, 0, body.len() as u8]);
    hvr.extend_from_slice(&body);
    let err = c.handle_datagram(now, &mut hvr).unwrap_err();
    assert!(matches!(err, Error::PeerIncompatible { alert: AlertDescription::PROTOCOL_VERSION, .. }), "{err}");
    let alert = first(&mut c);
    assert_eq!(alert[13..], [2, AlertDescription::PROTOCOL_VERSION.0]);
}

/// Found by BoGo (`Resume-Server-TLS12-TLS12-DTLS`): a DTLS 1.3 extension that does not parse
/// is refused by a DTLS 1.3 server (decode_error), and ignored by a DTLS 1.2 one, to which it
/// is an extension it does not know (BoringSSL's runner offers a DTLS 1.2 ticket in both
/// forms); before, either refused the whole ClientHello.
#[test]
fn a_malformed_dtls13_extension_matters_only_to_dtls13() {
    let now = Instant::now();
    let mut c = client(Protocol::Dtls1_2, Protocol::Dtls1_3, now);
    let mut hello = first(&mut c);
    // psk_key_exchange_modes (45): make its list empty, the modes left over.
    let at = hello.windows(3).position(|w| w == [0x00, 0x2d, 0x00]).expect("psk_key_exchange_modes");
    assert!(hello[at + 4] > 0);
    hello[at + 4] = 0;
    let mut s13 = server(Protocol::Dtls1_2, Protocol::Dtls1_3, now);
    let err = s13.handle_datagram(now, &mut hello.clone()).unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved { alert: AlertDescription::DECODE_ERROR, .. }), "{err}");
    let mut s12 = server(Protocol::Dtls1_2, Protocol::Dtls1_2, now);
    s12.handle_datagram(now, &mut hello).unwrap();
    let answer = first(&mut s12);
    assert_eq!(answer[13], 2, "a ServerHello");
    assert_eq!(answer[BODY..BODY + 2], [0xfe, 0xfd], "DTLS 1.2");
}
