//! DTLS 1.3 records (RFC 9147 §4) under attack: the input chooses records to seal (sequence
//! numbers, formats, sizes), the order they arrive in, duplicates, and bit flips; the receiver
//! opens each datagram under the same keys.
//!
//! Checked, besides "no panic": an unmodified record opens exactly when a naive model of the
//! replay window says it is new, and then with its own sequence number (reconstruction is
//! right whenever the record is less than half the header's sequence space from the highest
//! one received), content type and plaintext; a modified record never opens; a record that
//! does not open never moves the window; arbitrary bytes as a datagram never open either.
#![no_main]

use std::collections::BTreeSet;

use rdtls_proto::crypto::{default_provider, AeadAlgorithm, MaskAlgorithm};
use rdtls_proto::enums::ContentType;
use rdtls_proto::record::{Header, RecordProtection, ReplayWindow, UnifiedFormat, UnifiedProtection};

fn protection(aead: AeadAlgorithm) -> UnifiedProtection {
    let p = default_provider();
    let rp = RecordProtection::with_iv(aead, p.aead_key(aead, &vec![0x42; aead.key_len()]).unwrap(), [0x24; 12]);
    let mask = MaskAlgorithm::for_aead(aead);
    UnifiedProtection::new(rp, p.mask_key(mask, &vec![0x17; mask.key_len()]).unwrap())
}

/// Reads the input a byte (or a few) at a time; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let aead = [
        AeadAlgorithm::Aes128Gcm,
        AeadAlgorithm::Aes256Gcm,
        AeadAlgorithm::ChaCha20Poly1305,
        AeadAlgorithm::Aes128Ccm,
        AeadAlgorithm::Aes128Ccm8,
    ][usize::from(input.u8() % 5)];
    let prot = protection(aead);
    let mut window = ReplayWindow::default();
    let mut accepted = BTreeSet::new();
    let mut next_seq = 0u64;
    for _ in 0..usize::from(input.u8() % 64) {
        let op = input.u8();
        let format = UnifiedFormat { seq_16: op & 1 != 0, has_length: op & 2 != 0 };
        // Mostly forward, sometimes a jump back or far ahead.
        let seq = match op >> 5 {
            0 => next_seq.saturating_sub(u64::from(input.u8())),
            1 => next_seq + u64::from(input.u16()),
            _ => next_seq,
        };
        next_seq = next_seq.max(seq + 1);
        let len = usize::from(input.u8() % 40);
        let plaintext: Vec<u8> = (0..len).map(|i| i as u8 ^ op).collect();
        let mut record = Vec::new();
        prot.seal(3, seq, None, format, ContentType::APPLICATION_DATA, &plaintext, &mut record).unwrap();
        let flip = op & 4 != 0;
        if flip {
            let at = usize::from(input.u16()) % record.len();
            record[at] ^= 1 << (input.u8() % 8);
        }
        let before = window.highest();
        let opened = match Header::split(&mut record, 0) {
            Some((Header::Unified(h), fragment, _)) => prot
                .open(&h, fragment, &mut window)
                .ok()
                .map(|o| (o.seq, o.content_type, fragment[o.plaintext].to_vec())),
            _ => None,
        };
        if flip {
            assert!(opened.is_none(), "a modified record opened: {opened:?}");
        } else {
            let highest = accepted.last().copied();
            let new = !accepted.contains(&seq)
                && highest.is_none_or(|top: u64| seq >= top || top - seq < ReplayWindow::WIDTH);
            let half = if format.seq_16 { 1 << 15 } else { 1 << 7 };
            let near = highest.map_or(seq < half, |top| seq.abs_diff(top + 1) < half);
            if near {
                assert_eq!(
                    opened,
                    new.then(|| (seq, ContentType::APPLICATION_DATA, plaintext.clone())),
                    "seq {seq}, highest {highest:?}"
                );
            }
            if let Some((got, ..)) = &opened {
                // Whatever number the low bits were taken for, only the true one authenticates.
                assert_eq!(*got, seq);
            }
        }
        match &opened {
            Some((got, ..)) => {
                accepted.insert(*got);
            }
            None => assert_eq!(window.highest(), before, "a record that did not open moved the window"),
        }
    }
    // The rest of the input as a datagram of its own: nothing in it opens.
    let mut rest = input.0.to_vec();
    let mut buf = &mut rest[..];
    while let Some((header, fragment, tail)) = Header::split(buf, 0) {
        if let Header::Unified(h) = header {
            assert!(prot.open(&h, fragment, &mut window).is_err(), "forged bytes opened");
        }
        buf = tail;
    }
});
