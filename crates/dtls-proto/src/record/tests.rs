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

#[test]
fn every_header_format_round_trips_and_frames_its_fragment() {
    let plain = RecordHeader {
        content_type: ContentType::APPLICATION_DATA,
        version: ProtocolVersion::DTLS1_2,
        epoch: 1,
        seq: 0x0000_0102_0304,
        length: 0,
    };
    let cid = [0xc1, 0xc2, 0xc3, 0xc4];
    let headers = [
        Header::Plain(plain),
        Header::Cid12 { header: RecordHeader { content_type: ContentType::TLS12_CID, ..plain }, cid: &cid },
        Header::Unified(UnifiedHeader {
            epoch_bits: 3,
            cid: Some(&cid),
            masked_seq: 0xabcd,
            seq_16: true,
            has_length: true,
        }),
        Header::Unified(UnifiedHeader { epoch_bits: 2, cid: None, masked_seq: 0x7f, seq_16: false, has_length: true }),
        Header::Unified(UnifiedHeader {
            epoch_bits: 1,
            cid: None,
            masked_seq: 0x1234,
            seq_16: true,
            has_length: false,
        }),
    ];
    let expected_len = [13, 17, 9, 4, 3];
    for (h, want_len) in headers.iter().zip(expected_len) {
        let mut d = Vec::new();
        h.write(5, &mut d);
        assert_eq!(d.len(), want_len, "{h:?}");
        d.extend_from_slice(&[0xee; 5]);
        let with_length = !matches!(h, Header::Unified(u) if !u.has_length);
        if with_length {
            // Another record after it does not belong to it.
            d.extend_from_slice(&[0x17; 3]);
        }
        let (parsed, header_len, length) = Header::parse(&d, cid.len()).unwrap();
        let expected_header = match *h {
            Header::Plain(p) => Header::Plain(RecordHeader { length: 5, ..p }),
            Header::Cid12 { header, cid } => Header::Cid12 { header: RecordHeader { length: 5, ..header }, cid },
            other => other,
        };
        assert_eq!(parsed, expected_header);
        assert_eq!((header_len, length), (want_len, 5));
        // Every truncation inside the header or the fragment fails to frame.
        for cut in 0..want_len + 5 {
            if !with_length && cut >= want_len {
                continue; // without a length the record is whatever is left
            }
            assert!(Header::parse(&d[..cut], cid.len()).is_none(), "{h:?} cut at {cut}");
        }
    }
    // A CID the receiver never issued cannot be framed: the length is unknown.
    let mut d = Vec::new();
    headers[1].write(0, &mut d);
    assert!(Header::parse(&d, 0).is_none());
    let mut d = Vec::new();
    headers[2].write(0, &mut d);
    assert!(Header::parse(&d, 0).is_none());
    // Content types are plain headers; 0x20 to 0x3f are unified ones.
    for first in 0u8..=0xff {
        let mut d = vec![first];
        d.extend_from_slice(&[0; 20]);
        match Header::parse(&d, 4) {
            Some((Header::Unified(_), ..)) => assert_eq!(first >> 5, 1, "{first:#x}"),
            Some((Header::Cid12 { .. }, ..)) => assert_eq!(first, 25),
            Some((Header::Plain(p), ..)) => assert_eq!(p.content_type.0, first),
            None => {}
        }
    }
}

proptest::proptest! {
    /// Any bytes: the header and the fragment it frames lie within them.
    #[test]
    fn any_bytes_frame_within_the_buffer(d in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), cid_len in 0usize..9) {
        if let Some((_, header_len, length)) = Header::parse(&d, cid_len) {
            proptest::prop_assert!(header_len + length <= d.len());
        }
    }
}

#[test]
fn truncated_sequence_numbers_are_reconstructed_nearest_the_next_expected() {
    let at = |highest: u64| {
        let mut w = ReplayWindow::default();
        w.update(highest);
        w
    };
    // RFC 9000 Appendix A.3's example: the same algorithm.
    assert_eq!(at(0xa82f30ea).reconstruct(0x9b32, 16), 0xa82f9b32);
    // Nothing received yet: the low bits are the number.
    assert_eq!(ReplayWindow::default().reconstruct(5, 8), 5);
    assert_eq!(ReplayWindow::default().reconstruct(0xff, 8), 0xff);
    // Across a wrap of the low bits, forward and back.
    assert_eq!(at(0x1fe).reconstruct(0x01, 8), 0x201);
    assert_eq!(at(0x201).reconstruct(0xfe, 8), 0x1fe);
    assert_eq!(at(0x12_3456).reconstruct(0x3457, 16), 0x12_3457);
    assert_eq!(at(0x12_fff0).reconstruct(0x0003, 16), 0x13_0003);
    // Every number within half a window of the next expected comes back exactly.
    for highest in [0u64, 1, 127, 128, 255, 256, 1000, 65_535, 65_536, 1 << 40] {
        let w = at(highest);
        let lo = (highest + 1).saturating_sub(127);
        for seq in lo..=highest + 128 {
            assert_eq!(w.reconstruct(seq & 0xff, 8), seq, "highest {highest}, seq {seq}");
            assert_eq!(w.reconstruct(seq & 0xffff, 16), seq, "highest {highest}, seq {seq}");
        }
    }
    // Never past the 48-bit space.
    assert!(at(MAX_SEQ - 1).reconstruct(0xff, 8) <= MAX_SEQ);
}
