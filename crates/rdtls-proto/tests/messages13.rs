//! The DTLS 1.3 message pieces (RFC 9147 on RFC 8446): hello extensions in their three
//! shapes, the HelloRetryRequest marker, ACK contents, KeyUpdate, and what a CertificateVerify
//! signs, each with bytes written out by hand from the RFCs' structures.

use rdtls_proto::enums::{ExtensionType, ProtocolVersion};
use rdtls_proto::messages::tls13::{
    certificate_verify_content, parse_ack, parse_key_update, psk_mode, write_ack, KeyShare, KeyShareEntry,
    PreSharedKey, PskIdentity, RecordNumber, SupportedVersions, Tls13Extensions, HELLO_RETRY_REQUEST_RANDOM,
    MAX_ACK_RECORDS,
};
use rdtls_proto::messages::{ClientHello, HelloExtensions, ServerHello};

fn client_hello(tls13: Tls13Extensions) -> ClientHello {
    ClientHello {
        client_version: ProtocolVersion::DTLS1_2,
        random: [7; 32],
        session_id: Vec::new(),
        cookie: Vec::new(),
        cipher_suites: vec![0x1301, 0x1302],
        compression_methods: vec![0],
        extensions: HelloExtensions { supported_groups: Some(vec![29, 23]), tls13, ..Default::default() },
    }
}

fn server_hello(random: [u8; 32], tls13: Tls13Extensions) -> ServerHello {
    ServerHello {
        server_version: ProtocolVersion::DTLS1_2,
        random,
        session_id: Vec::new(),
        cipher_suite: 0x1301,
        compression_method: 0,
        extensions: HelloExtensions { tls13, ..Default::default() },
    }
}

fn emit_ch(ch: &ClientHello) -> Vec<u8> {
    let mut out = Vec::new();
    ch.emit(&mut out);
    out
}

fn full_offer() -> Tls13Extensions {
    Tls13Extensions {
        supported_versions: Some(SupportedVersions::Offered(vec![ProtocolVersion::DTLS1_3, ProtocolVersion::DTLS1_2])),
        key_share: Some(KeyShare::Offered(vec![
            KeyShareEntry { group: 29, key_exchange: vec![0xaa; 32] },
            KeyShareEntry { group: 23, key_exchange: vec![0xbb; 65] },
        ])),
        cookie: Some(vec![0xc0; 40]),
        psk_key_exchange_modes: Some(vec![psk_mode::PSK_DHE_KE]),
        pre_shared_key: Some(PreSharedKey::Offered {
            identities: vec![PskIdentity { identity: b"client1".to_vec(), obfuscated_ticket_age: 0 }],
            binders: vec![vec![0xbd; 32]],
        }),
        early_data: true,
        malformed: false,
    }
}

#[test]
fn a_client_hello_offering_dtls_13_round_trips_with_pre_shared_key_last() {
    let ch = client_hello(full_offer());
    let bytes = emit_ch(&ch);
    let (parsed, _) = ClientHello::parse(&bytes).unwrap();
    assert_eq!(parsed, ch);
    // The binders end the ClientHello: a 2-byte list length, then 1 + 32 bytes.
    let psk = ch.extensions.tls13.pre_shared_key.as_ref().unwrap();
    assert_eq!(psk.binders_len(), 2 + 1 + 32);
    let tail = &bytes[bytes.len() - psk.binders_len()..];
    assert_eq!(tail[..3], [0, 33, 32]);
    assert!(tail[3..].iter().all(|&b| b == 0xbd));
    // The identity list sits just before them: client1 with age 0.
    let ids = &bytes[bytes.len() - psk.binders_len() - 15..bytes.len() - psk.binders_len()];
    assert_eq!(ids, [0, 13, 0, 7, b'c', b'l', b'i', b'e', b'n', b't', b'1', 0, 0, 0, 0]);
    // supported_versions as a ClientHello writes it: a one-byte list length.
    let sv = [0, 43, 0, 5, 4, 0xfe, 0xfc, 0xfe, 0xfd];
    assert!(bytes.windows(sv.len()).any(|w| w == sv), "supported_versions not found");
}

#[test]
fn server_hello_and_hello_retry_request_shapes_are_exact() {
    let share = KeyShareEntry { group: 29, key_exchange: vec![0x11; 32] };
    let sh = server_hello(
        [1; 32],
        Tls13Extensions {
            supported_versions: Some(SupportedVersions::Selected(ProtocolVersion::DTLS1_3)),
            key_share: Some(KeyShare::Chosen(share)),
            pre_shared_key: Some(PreSharedKey::Selected(0)),
            ..Default::default()
        },
    );
    let mut bytes = Vec::new();
    sh.emit(&mut bytes);
    let mut exts = vec![0, 0x33, 0, 0x24, 0, 0x1d, 0, 0x20];
    exts.extend_from_slice(&[0x11; 32]);
    let expected_tail = [&[0u8, 0x2b, 0, 2, 0xfe, 0xfc][..], &exts, &[0, 0x29, 0, 2, 0, 0]].concat();
    assert!(bytes.ends_with(&expected_tail), "{bytes:02x?}");
    let parsed = ServerHello::parse(&bytes).unwrap();
    assert!(!parsed.is_retry_request());
    assert_eq!(parsed, sh);

    let hrr = server_hello(
        HELLO_RETRY_REQUEST_RANDOM,
        Tls13Extensions {
            supported_versions: Some(SupportedVersions::Selected(ProtocolVersion::DTLS1_3)),
            key_share: Some(KeyShare::Requested(23)),
            cookie: Some(vec![0xc0, 0x0c]),
            ..Default::default()
        },
    );
    let mut bytes = Vec::new();
    hrr.emit(&mut bytes);
    // The cookie and supported_versions lead (a ClientHello's cookie must be in its first
    // fragment for some servers; the hellos share the writer).
    let expected = [0, 0x2c, 0, 4, 0, 2, 0xc0, 0x0c, 0, 0x2b, 0, 2, 0xfe, 0xfc, 0, 0x33, 0, 2, 0, 23];
    assert!(bytes.ends_with(&expected), "{bytes:02x?}");
    let parsed = ServerHello::parse(&bytes).unwrap();
    assert!(parsed.is_retry_request());
    assert_eq!(parsed, hrr);
    // The HelloRetryRequest random is SHA-256("HelloRetryRequest").
    let provider = rdtls_proto::crypto::default_provider();
    let digest = provider.hash(rdtls_proto::crypto::HashAlgorithm::Sha256, &[b"HelloRetryRequest"]);
    assert_eq!(digest.as_bytes(), HELLO_RETRY_REQUEST_RANDOM);
}

/// Appends one raw extension to an encoded hello (after the others).
fn with_raw_extension(mut hello: Vec<u8>, ext_start: usize, ty: u16, body: &[u8]) -> Vec<u8> {
    let len = u16::from_be_bytes([hello[ext_start], hello[ext_start + 1]]) + 4 + body.len() as u16;
    hello[ext_start..ext_start + 2].copy_from_slice(&len.to_be_bytes());
    hello.extend_from_slice(&ty.to_be_bytes());
    hello.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hello.extend_from_slice(body);
    hello
}

#[test]
fn malformed_or_misplaced_13_extensions_are_refused() {
    // Offset of the extensions block's length in a ClientHello with no session id or cookie:
    // version 2, random 32, two empty vectors 2, suites 2 + 4, compression 2.
    let ext_start = 2 + 32 + 1 + 1 + 2 + 4 + 1 + 1;
    let ch = |tls13: Tls13Extensions| emit_ch(&client_hello(tls13));
    let base = ch(Tls13Extensions::default());
    assert!(ClientHello::parse(&base).is_some());
    // pre_shared_key followed by anything.
    let psk_only = Tls13Extensions { pre_shared_key: full_offer().pre_shared_key, ..Default::default() };
    let not_last = with_raw_extension(ch(psk_only.clone()), ext_start, 0x3a3a, &[]);
    assert!(ClientHello::parse(&not_last).is_none(), "pre_shared_key must be last");
    assert!(ClientHello::parse(&ch(psk_only)).is_some());
    let cases: [(u16, &[u8], &str); 12] = [
        // certificate_authorities (47): ignored, but not when malformed (found by BoGo).
        (47, &[0, 0], "an empty certificate_authorities list"),
        (47, &[0, 3, 0, 1, 0x30, 0], "trailing data in certificate_authorities"),
        (47, &[0, 4, 0, 0, 0, 0], "empty distinguished names"),
        (51, &[0, 10, 0, 29, 0, 1, 1, 0, 29, 0, 1, 2], "two shares for one group"),
        (51, &[0, 5, 0, 29, 0, 0, 0], "an empty key"),
        (44, &[0, 0], "an empty cookie"),
        (43, &[0], "an empty version list"),
        (43, &[3, 0xfe, 0xfc, 0], "an odd version list"),
        (45, &[0], "no psk mode"),
        (41, &[0, 11, 0, 5, b'x', b'x', b'x', b'x', b'x', 0, 0, 0, 0, 0, 3, 2, 0xbd, 0xbd], "a 2-byte binder"),
        (41, &[0, 11, 0, 5, b'x', b'x', b'x', b'x', b'x', 0, 0, 0, 0, 0, 0], "no binder for the identity"),
        (43, &[2, 0xfe, 0xfc, 9], "trailing bytes"),
    ];
    for (ty, body, what) in cases {
        let hello = with_raw_extension(base.clone(), ext_start, ty, body);
        if [41, 44, 45, 51].contains(&ty) {
            // DTLS 1.3's own: the hello still parses, marked, so that a DTLS 1.2 server can
            // ignore what it does not know while a DTLS 1.3 server refuses it (found by BoGo:
            // `Resume-Server-TLS12-TLS12-DTLS` offers a DTLS 1.2 ticket in both forms).
            let (parsed, _) = ClientHello::parse(&hello).unwrap_or_else(|| panic!("{what}"));
            assert!(parsed.extensions.tls13.malformed, "{what}");
        } else {
            assert!(ClientHello::parse(&hello).is_none(), "{what}");
        }
    }
    assert!(!ClientHello::parse(&base).unwrap().0.extensions.tls13.malformed);
    // A well-formed certificate_authorities list is accepted (and ignored).
    let cas = with_raw_extension(base.clone(), ext_start, 47, &[0, 5, 0, 3, 0x30, 1, 0]);
    assert!(ClientHello::parse(&cas).is_some());
    assert!(rdtls_proto::messages::certificate_authorities_ok(&[0, 5, 0, 3, 0x30, 1, 0]));
    // What only a client sends, in a ServerHello; and a ClientHello's key_share shape there.
    let sh_base = {
        let mut b = Vec::new();
        server_hello([1; 32], Tls13Extensions::default()).emit(&mut b);
        // The ServerHello above has no extensions at all: give it an empty block.
        b.extend_from_slice(&[0, 0]);
        b
    };
    let sh_ext_start = 2 + 32 + 1 + 2 + 1;
    assert!(ServerHello::parse(&sh_base).is_some());
    for (ty, body) in [(45u16, &[1u8, 1][..]), (42, &[]), (44, &[0, 1, 9]), (51, &[0, 4, 0, 29, 0, 0])] {
        let bad = with_raw_extension(sh_base.clone(), sh_ext_start, ty, body);
        assert!(ServerHello::parse(&bad).is_none(), "extension {ty} in a ServerHello");
    }
    assert_eq!(ExtensionType::KEY_SHARE.0, 51);
}

#[test]
fn ack_contents_are_sixteen_bytes_per_record_in_increasing_order() {
    let records = [RecordNumber { epoch: 2, seq: 5 }, RecordNumber { epoch: 3, seq: 0 }];
    let mut out = Vec::new();
    write_ack(&mut out, &records);
    let mut expected = vec![0, 32];
    for (e, s) in [(2u64, 5u64), (3, 0)] {
        expected.extend_from_slice(&e.to_be_bytes());
        expected.extend_from_slice(&s.to_be_bytes());
    }
    assert_eq!(out, expected);
    assert_eq!(parse_ack(&out).unwrap(), records);
    assert_eq!(parse_ack(&[0, 0]).unwrap(), []);
    assert!(parse_ack(&[0, 15]).is_none(), "truncated");
    assert!(parse_ack(&[&out[..], &[0]].concat()).is_none(), "trailing bytes");
    assert!(parse_ack(&[&[0u8, 17][..], &[0; 17]].concat()).is_none(), "not a whole record number");
    // The bound: as many as a datagram holds, no more.
    let n = MAX_ACK_RECORDS + 1;
    let too_many = [&((n * 16) as u16).to_be_bytes()[..], &vec![0; n * 16]].concat();
    assert!(parse_ack(&too_many).is_none());
}

#[test]
fn key_update_and_certificate_verify_content() {
    assert_eq!(parse_key_update(&[0]), Some(false));
    assert_eq!(parse_key_update(&[1]), Some(true));
    assert_eq!(parse_key_update(&[2]), None);
    assert_eq!(parse_key_update(&[0, 0]), None);
    let hash = [0x42; 32];
    let server = certificate_verify_content(true, &hash);
    assert_eq!(server.len(), 64 + 33 + 1 + 32);
    assert!(server[..64].iter().all(|&b| b == 0x20));
    assert_eq!(&server[64..97], b"TLS 1.3, server CertificateVerify");
    assert_eq!(server[97], 0);
    assert_eq!(server[98..], hash);
    assert_eq!(&certificate_verify_content(false, &hash)[64..97], b"TLS 1.3, client CertificateVerify");
}
