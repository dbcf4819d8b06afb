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

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// RFC 9146 §5's additional data, with the numbers of the worked example in our research notes
/// (epoch 2, sequence 277, CID 01..08, inner plaintext of 1784 bytes).
#[test]
fn cid12_additional_data_has_the_rfc_9146_layout() {
    let cid = [1, 2, 3, 4, 5, 6, 7, 8];
    let header = Header::Cid12 {
        header: RecordHeader {
            content_type: ContentType::TLS12_CID,
            version: ProtocolVersion::DTLS1_2,
            epoch: 2,
            seq: 277,
            length: 0,
        },
        cid: &cid,
    };
    let aad = header.with_aad(0, 1784, <[u8]>::to_vec).unwrap();
    assert_eq!(aad, unhex("ffffffffffffffff190819fefd0002000000000115010203040506070806f8"));
    // A connection ID longer than a length byte can say cannot be authenticated.
    let long = [0u8; 256];
    let Header::Cid12 { header: h, .. } = header else { unreachable!() };
    assert!(Header::Cid12 { header: h, cid: &long }.with_aad(0, 1, |_| ()).is_none());
}

/// Sealed records of the connection-ID and unified formats, checked against an independent
/// computation (Python `cryptography`): the header, the additional data, the nonce and the inner
/// content type all end up in these bytes.
#[cfg(feature = "aws-lc-rs")]
#[test]
fn cid12_and_unified_records_match_known_answers_and_authenticate_their_headers() {
    use crate::crypto::{aws_lc::AwsLcProvider, CryptoProvider};
    use crate::suites;
    let provider = AwsLcProvider;
    let cid: Vec<u8> = (1..=8).collect();
    let gcm = &suites::TLS_PSK_WITH_AES_128_GCM_SHA256;
    let k16: Vec<u8> = (0..16).collect();
    let p = RecordProtection::new(gcm, provider.aead_key(gcm.aead, &k16).unwrap(), &[0xa0, 0xa1, 0xa2, 0xa3]);
    let rh = RecordHeader {
        content_type: ContentType::TLS12_CID,
        version: ProtocolVersion::DTLS1_2,
        epoch: 1,
        seq: 5,
        length: 0,
    };
    let header = Header::Cid12 { header: rh, cid: &cid };
    let mut out = Vec::new();
    p.seal_record(&header, rh.epoch_seq(), Some(ContentType::APPLICATION_DATA), b"hello, DTLS", &mut out).unwrap();
    assert_eq!(
        out,
        unhex(
            "19fefd0001000000000005010203040506070800240001000000000005a46f3dea4bbbcad0a009e0e84f6b3fd0821d1cb2c9a1011ace4457ea"
        )
    );
    let mut wire = out.clone();
    let (parsed, fragment, rest) = Header::split(&mut wire, 8).unwrap();
    assert!(rest.is_empty());
    let (range, inner) = p.open_record(&parsed, rh.epoch_seq(), fragment).unwrap();
    assert_eq!((&fragment[range], inner), (&b"hello, DTLS"[..], Some(ContentType::APPLICATION_DATA)));
    // The connection ID is authenticated: a record moved to another CID does not open.
    let mut moved = out.clone();
    moved[11] ^= 1;
    let (parsed, fragment, _) = Header::split(&mut moved, 8).unwrap();
    assert!(p.open_record(&parsed, rh.epoch_seq(), fragment).is_err());
    // The format decides whether an inner type is given.
    assert!(p.seal_record(&header, 0, None, b"x", &mut Vec::new()).is_err());
    assert!(p.seal_record(&Header::Plain(rh), 0, Some(ContentType::ALERT), b"x", &mut Vec::new()).is_err());

    let chacha = &suites::TLS_PSK_WITH_CHACHA20_POLY1305_SHA256;
    let k32: Vec<u8> = (0x20..0x40).collect();
    let iv12: Vec<u8> = (0x40..0x4c).collect();
    let p = RecordProtection::new(chacha, provider.aead_key(chacha.aead, &k32).unwrap(), &iv12);
    let unified =
        Header::Unified(UnifiedHeader { epoch_bits: 3, cid: None, masked_seq: 0x1234, seq_16: true, has_length: true });
    let record_number = (3 << 48) | 0x1234;
    let mut out = Vec::new();
    p.seal_record(&unified, record_number, Some(ContentType::APPLICATION_DATA), b"hello, DTLS", &mut out).unwrap();
    assert_eq!(out, unhex("2f1234001c6a3aeb18518878c022e887a486ef5a714590a931660699efa9bd4bf2"));
    let (parsed, fragment, _) = Header::split(&mut out, 0).unwrap();
    let (range, inner) = p.open_record(&parsed, record_number, fragment).unwrap();
    assert_eq!((&fragment[range], inner), (&b"hello, DTLS"[..], Some(ContentType::APPLICATION_DATA)));
}

/// Zero padding after the inner type is removed; an inner plaintext of only zeros has no type
/// and is refused (RFC 9146 §4, RFC 8446 §5.4).
#[cfg(feature = "aws-lc-rs")]
#[test]
fn inner_padding_is_stripped_and_an_all_zero_inner_plaintext_is_refused() {
    use crate::crypto::{aws_lc::AwsLcProvider, CryptoProvider};
    use crate::suites;
    let suite = &suites::TLS_PSK_WITH_AES_128_GCM_SHA256;
    let p = RecordProtection::new(suite, AwsLcProvider.aead_key(suite.aead, &[7; 16]).unwrap(), &[1, 2, 3, 4]);
    let rh = RecordHeader {
        content_type: ContentType::TLS12_CID,
        version: ProtocolVersion::DTLS1_2,
        epoch: 1,
        seq: 9,
        length: 0,
    };
    let cid = [0xc1, 0xd0];
    let header = Header::Cid12 { header: rh, cid: &cid };
    // "ab" + type 23 + three bytes of padding, sealed as a plain payload with the type inside.
    let mut padded = Vec::new();
    p.seal_record(&header, rh.epoch_seq(), Some(ContentType(0)), b"ab\x17\0\0", &mut padded).unwrap();
    let (parsed, fragment, _) = Header::split(&mut padded, 2).unwrap();
    let (range, inner) = p.open_record(&parsed, rh.epoch_seq(), fragment).unwrap();
    assert_eq!((&fragment[range], inner), (&b"ab"[..], Some(ContentType::APPLICATION_DATA)));

    let mut zeros = Vec::new();
    p.seal_record(&header, rh.epoch_seq(), Some(ContentType(0)), b"\0\0", &mut zeros).unwrap();
    let (parsed, fragment, _) = Header::split(&mut zeros, 2).unwrap();
    assert!(p.open_record(&parsed, rh.epoch_seq(), fragment).is_err());
}
