//! Unit tests of the record layer.
use super::*;
use crate::enums::{ContentType, ProtocolVersion};
use crate::suites::CipherSuite;

#[test]
fn header_round_trip() {
    let h = RecordHeader {
        content_type: ContentType::HANDSHAKE,
        version: ProtocolVersion::DTLS1_2,
        epoch: 1,
        seq: 0x0102_0304_0506,
        length: 2,
    };
    let mut v = Vec::new();
    h.write(&mut v);
    v.extend_from_slice(&[9, 9]);
    assert_eq!(v, [22, 0xfe, 0xfd, 0, 1, 1, 2, 3, 4, 5, 6, 0, 2, 9, 9]);
    assert_eq!(RecordHeader::parse(&v), Some(h));
    assert_eq!(RecordHeader::parse(&v[..14]), None);
}

#[test]
fn records_stop_at_truncation() {
    let mut v = Vec::new();
    for len in [3u16, 1, 5] {
        RecordHeader {
            content_type: ContentType::ALERT,
            version: ProtocolVersion::DTLS1_2,
            epoch: 0,
            seq: 7,
            length: len,
        }
        .write(&mut v);
        v.resize(v.len() + usize::from(len), 0xaa);
    }
    v.truncate(v.len() - 1);
    let got: Vec<_> = Records::new(&v).map(|(h, r)| (h.length, r)).collect();
    assert_eq!(got, [(3, 13..16), (1, 29..30)]);
}

#[test]
fn replay_window_basics() {
    let mut w = ReplayWindow::default();
    assert!(w.check(0));
    w.update(0);
    assert!(!w.check(0));
    assert!(w.check(5));
    w.update(5);
    assert!(w.check(3));
    w.update(3);
    assert!(!w.check(3));
    assert!(!w.check(5));
    w.update(100);
    assert!(!w.check(36), "too old");
    assert!(w.check(37));
    assert!(!w.check(MAX_SEQ + 1));
    assert_eq!(w.highest(), Some(100));
}

/// Known answers for the nonce and AAD construction of each AEAD family, computed
/// independently (Python `cryptography`): epoch 1, sequence 5, application data.
#[cfg(feature = "aws-lc-rs")]
#[test]
fn aead_nonce_and_aad_known_answers() {
    use crate::crypto::{aws_lc::AwsLcProvider, CryptoProvider};
    use crate::suites;
    let provider = AwsLcProvider;
    let header = RecordHeader {
        content_type: ContentType::APPLICATION_DATA,
        version: ProtocolVersion::DTLS1_2,
        epoch: 1,
        seq: 5,
        length: 0,
    };
    let k16: Vec<u8> = (0..16).collect();
    let k32: Vec<u8> = (0x20..0x40).collect();
    let iv4 = [0xa0, 0xa1, 0xa2, 0xa3];
    let iv12: Vec<u8> = (0x40..0x4c).collect();
    let cases: [(&CipherSuite, &[u8], &[u8], &str); 3] = [
        (
            &suites::TLS_PSK_WITH_AES_128_GCM_SHA256,
            &k16,
            &iv4,
            "0001000000000005a46f3dea4bbbcad0a009e0ca44538cc2971e02b674190b22a49cfe",
        ),
        (
            &suites::TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
            &k32,
            &iv12,
            "9ebaf8c4e5978ace7201415ca9c27ba6da3ad43c491406ea633a49",
        ),
        (&suites::TLS_PSK_WITH_AES_128_CCM_8, &k16, &iv4, "00010000000000054498625bc08ae477487b04e5a1fa850840427b"),
    ];
    for (suite, key, iv, expected_fragment) in cases {
        let p = RecordProtection::new(suite, provider.aead_key(suite.aead, key).unwrap(), iv);
        let mut out = Vec::new();
        p.seal(header, b"hello, DTLS", &mut out).unwrap();
        let expected: Vec<u8> = (0..expected_fragment.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&expected_fragment[i..i + 2], 16).unwrap())
            .collect();
        let mut want_header = Vec::new();
        RecordHeader { length: expected.len() as u16, ..header }.write(&mut want_header);
        assert_eq!(&out[..HEADER_LEN], &want_header[..], "{suite}");
        assert_eq!(&out[HEADER_LEN..], &expected[..], "{suite}");
        let parsed = RecordHeader::parse(&out).unwrap();
        let range = p.open(&parsed, &mut out[HEADER_LEN..]).unwrap();
        assert_eq!(&out[HEADER_LEN..][range], b"hello, DTLS");
    }
}
