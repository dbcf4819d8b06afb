//! DTLS 1.3 records (RFC 9147 §4): unified headers, protection with the inner content type,
//! record-number encryption, and sequence reconstruction across the 8- and 16-bit wraps.

use rdtls_proto::crypto::{default_provider, AeadAlgorithm, CryptoProvider, MaskAlgorithm};
use rdtls_proto::enums::ContentType;
use rdtls_proto::record::{Header, RecordProtection, ReplayWindow, UnifiedFormat, UnifiedProtection, MASK_SAMPLE_LEN};

const ALL: [AeadAlgorithm; 5] = [
    AeadAlgorithm::Aes128Gcm,
    AeadAlgorithm::Aes256Gcm,
    AeadAlgorithm::ChaCha20Poly1305,
    AeadAlgorithm::Aes128Ccm,
    AeadAlgorithm::Aes128Ccm8,
];

/// Protection for `aead` from fixed key material (`seed` varies it), and the mask key alone.
fn protection(p: &dyn CryptoProvider, aead: AeadAlgorithm, seed: u8) -> (UnifiedProtection, Vec<u8>) {
    let key = vec![seed; aead.key_len()];
    let sn = vec![seed ^ 0x5a; MaskAlgorithm::for_aead(aead).key_len()];
    let rp = RecordProtection::with_iv(aead, p.aead_key(aead, &key).unwrap(), [seed.wrapping_add(1); 12]);
    (UnifiedProtection::new(rp, p.mask_key(MaskAlgorithm::for_aead(aead), &sn).unwrap()), sn)
}

/// Opens every record of `datagram` (connection IDs of `cid_len` bytes) under `prot`:
/// `(sequence number, content type, plaintext)` of each, `None` for a dropped one.
fn open_all(
    prot: &UnifiedProtection,
    window: &mut ReplayWindow,
    datagram: &mut [u8],
    cid_len: usize,
) -> Vec<Option<(u64, ContentType, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let Some((header, fragment, tail)) = Header::split(rest, cid_len) else { break };
        let Header::Unified(u) = header else { panic!("not a unified header: {header:?}") };
        out.push(prot.open(&u, fragment, window).ok().map(|o| (o.seq, o.content_type, fragment[o.plaintext].to_vec())));
        rest = tail;
    }
    out
}

#[test]
fn every_aead_round_trips_with_its_sequence_number_masked_on_the_wire() {
    let p = default_provider();
    for aead in ALL {
        let (tx, sn) = protection(&*p, aead, 7);
        let (rx, _) = protection(&*p, aead, 7);
        for (format, seq) in [
            (UnifiedFormat { seq_16: true, has_length: true }, 0x1234),
            (UnifiedFormat { seq_16: false, has_length: true }, 0x56),
            (UnifiedFormat { seq_16: true, has_length: false }, 0x0102),
        ] {
            let mut wire = Vec::new();
            tx.seal(3, seq, None, format, ContentType::APPLICATION_DATA, b"a datagram of data", &mut wire).unwrap();
            // 001 C S L EE: no CID, the format's bits, epoch 3.
            let first =
                0b0010_0011 | if format.seq_16 { 0b1000 } else { 0 } | if format.has_length { 0b100 } else { 0 };
            assert_eq!(wire[0], first, "{aead:?}");
            let seq_len = if format.seq_16 { 2 } else { 1 };
            let fragment_at = 1 + seq_len + if format.has_length { 2 } else { 0 };
            assert_eq!(wire.len(), fragment_at + 18 + 1 + aead.tag_len(), "{aead:?}: no padding needed");
            assert_eq!(tx.overhead(format) + 18, wire.len());
            // The sequence bits are the clear ones XORed with the mask of the first 16
            // ciphertext bytes, computed here with the provider's mask key directly.
            let sample: [u8; MASK_SAMPLE_LEN] = wire[fragment_at..fragment_at + 16].try_into().unwrap();
            let mask = p.mask_key(MaskAlgorithm::for_aead(aead), &sn).unwrap().mask(&sample).unwrap();
            let clear: Vec<u8> = if format.seq_16 { (seq as u16).to_be_bytes().to_vec() } else { vec![seq as u8] };
            let masked: Vec<u8> = clear.iter().zip(mask).map(|(c, m)| c ^ m).collect();
            assert_eq!(wire[1..1 + seq_len], masked[..], "{aead:?}");
            let mut window = ReplayWindow::default();
            if seq > 0xff {
                // The receiver has seen the neighbourhood (a 16-bit number far from 0 is not
                // reconstructed near 0 otherwise).
                window.update(seq - 1);
            }
            let opened = open_all(&rx, &mut window, &mut wire, 0);
            assert_eq!(
                opened,
                [Some((seq, ContentType::APPLICATION_DATA, b"a datagram of data".to_vec()))],
                "{aead:?} {format:?}"
            );
        }
    }
}

#[test]
fn the_header_is_authenticated_and_a_record_opens_once() {
    let p = default_provider();
    let (tx, _) = protection(&*p, AeadAlgorithm::Aes128Gcm, 1);
    let (rx, _) = protection(&*p, AeadAlgorithm::Aes128Gcm, 1);
    let mut record = Vec::new();
    tx.seal(2, 5, None, UnifiedFormat::default(), ContentType::HANDSHAKE, b"finished", &mut record).unwrap();
    // Each header bit that is not the sequence number, flipped: epoch bits, S, L (which
    // reframes the record), and each sequence bit (another number: another nonce).
    for (byte, bit) in [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (2, 7), (3, 0), (4, 0)] {
        let mut bad = record.clone();
        bad[byte] ^= 1 << bit;
        let mut window = ReplayWindow::default();
        let opened = open_all(&rx, &mut window, &mut bad, 0);
        assert!(opened.iter().all(Option::is_none), "byte {byte} bit {bit}: {opened:?}");
        assert_eq!(window.highest(), None, "a forged record never moves the window");
    }
    let mut window = ReplayWindow::default();
    let mut twice = [record.clone(), record].concat();
    let opened = open_all(&rx, &mut window, &mut twice, 0);
    assert_eq!(opened[0].as_ref().map(|o| o.0), Some(5));
    assert_eq!(opened[1], None, "the replay is dropped");
    // Another epoch's keys (seed 2) do not open it.
    let (other, _) = protection(&*p, AeadAlgorithm::Aes128Gcm, 2);
    let mut r = Vec::new();
    tx.seal(2, 6, None, UnifiedFormat::default(), ContentType::HANDSHAKE, b"x", &mut r).unwrap();
    assert_eq!(open_all(&other, &mut ReplayWindow::default(), &mut r, 0), [None]);
}

#[test]
fn short_records_are_padded_to_be_sampled_and_short_ciphertexts_are_dropped() {
    let p = default_provider();
    // AES-128-CCM-8: an empty plaintext, its inner type and the 8-byte tag make 9 bytes, so 7
    // zeros of padding go inside the encryption and the receiver strips them.
    let (tx, _) = protection(&*p, AeadAlgorithm::Aes128Ccm8, 3);
    let (rx, _) = protection(&*p, AeadAlgorithm::Aes128Ccm8, 3);
    let mut wire = Vec::new();
    tx.seal(3, 0, None, UnifiedFormat::default(), ContentType::ALERT, b"", &mut wire).unwrap();
    assert_eq!(wire.len(), 5 + MASK_SAMPLE_LEN);
    assert_eq!(
        open_all(&rx, &mut ReplayWindow::default(), &mut wire.clone(), 0),
        [Some((0, ContentType::ALERT, vec![]))]
    );
    // A received record with 15 bytes of ciphertext cannot be unmasked: dropped, before any
    // decryption.
    let mut short = wire[..5 + 15].to_vec();
    short[3..5].copy_from_slice(&15u16.to_be_bytes());
    let mut window = ReplayWindow::default();
    assert_eq!(open_all(&rx, &mut window, &mut short, 0), [None]);
    assert_eq!(window.highest(), None);
}

#[test]
fn connection_ids_sit_before_the_masked_sequence_number() {
    let p = default_provider();
    let (tx, _) = protection(&*p, AeadAlgorithm::ChaCha20Poly1305, 4);
    let (rx, _) = protection(&*p, AeadAlgorithm::ChaCha20Poly1305, 4);
    let cid = [0xc1, 0xd2, 0xe3, 0xf4];
    let mut datagram = Vec::new();
    for seq in 0..3 {
        tx.seal(
            4,
            seq,
            Some(&cid),
            UnifiedFormat::default(),
            ContentType::APPLICATION_DATA,
            &[seq as u8; 20],
            &mut datagram,
        )
        .unwrap();
    }
    assert_eq!(datagram[0] & 0b0001_0000, 0b0001_0000, "the C bit");
    assert_eq!(datagram[1..5], cid);
    let opened = open_all(&rx, &mut ReplayWindow::default(), &mut datagram, cid.len());
    let seqs: Vec<_> = opened.iter().map(|o| o.as_ref().map(|o| (o.0, o.2[0]))).collect();
    assert_eq!(seqs, [Some((0, 0)), Some((1, 1)), Some((2, 2))]);
}

/// 70,000 records each way cross the 8-bit wrap 273 times and the 16-bit wrap once; each is
/// reconstructed to its own number, in order and with neighbours swapped (reordering within
/// the window), and none is lost or accepted twice.
#[test]
fn seventy_thousand_records_cross_the_wraps_with_8_and_16_bit_headers() {
    let p = default_provider();
    for seq_16 in [false, true] {
        let format = UnifiedFormat { seq_16, has_length: true };
        let (tx, _) = protection(&*p, AeadAlgorithm::Aes128Gcm, 9);
        let (rx, _) = protection(&*p, AeadAlgorithm::Aes128Gcm, 9);
        let mut window = ReplayWindow::default();
        let mut record = Vec::with_capacity(64);
        let mut held: Option<(u64, Vec<u8>)> = None;
        for seq in 0..70_000u64 {
            record.clear();
            tx.seal(3, seq, None, format, ContentType::APPLICATION_DATA, &seq.to_be_bytes(), &mut record).unwrap();
            // Every fourth record is held back and delivered after the next one.
            if seq % 4 == 1 {
                held = Some((seq, record.clone()));
                continue;
            }
            let got = open_all(&rx, &mut window, &mut record, 0);
            assert_eq!(got, [Some((seq, ContentType::APPLICATION_DATA, seq.to_be_bytes().to_vec()))], "seq {seq}");
            if let Some((late, mut r)) = held.take() {
                let again = r.clone();
                let got = open_all(&rx, &mut window, &mut r, 0);
                assert_eq!(
                    got,
                    [Some((late, ContentType::APPLICATION_DATA, late.to_be_bytes().to_vec()))],
                    "late {late}"
                );
                let mut again = again;
                assert_eq!(open_all(&rx, &mut window, &mut again, 0), [None], "replay of {late}");
            }
        }
        assert_eq!(window.highest(), Some(69_999), "seq_16 {seq_16}");
    }
}
