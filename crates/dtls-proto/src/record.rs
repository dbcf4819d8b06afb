//! The DTLS 1.2 record layer (RFC 6347 §4.1): headers, record protection in place, and the
//! anti-replay window.
//!
//! ```text
//!  0        1        3        5                 11       13
//! +--------+--------+--------+-----------------+--------+----------------
//! | type   | version| epoch  | sequence_number | length | fragment ...
//! +--------+--------+--------+-----------------+--------+----------------
//! ```
//!
//! A datagram may carry several records; a record never spans datagrams. A record that does not
//! parse ends the processing of its datagram (the rest cannot be framed); a record that parses but
//! fails any later check is dropped on its own.

use core::ops::Range;

use crate::codec::Reader;
use crate::crypto::{AeadKey, CryptoError};
use crate::enums::{ContentType, ProtocolVersion};
use crate::suites::CipherSuite;

/// Length of a DTLS 1.2 record header.
pub const HEADER_LEN: usize = 13;
/// Largest plaintext fragment (2^14, RFC 5246 §6.2.1).
pub const MAX_PLAINTEXT: usize = 1 << 14;
/// Largest protected fragment we accept (2^14 + 2048, RFC 5246 §6.2.3).
pub const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 2048;
/// Largest 48-bit sequence number.
pub const MAX_SEQ: u64 = (1 << 48) - 1;

/// A parsed record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Content type.
    pub content_type: ContentType,
    /// Record-layer version.
    pub version: ProtocolVersion,
    /// Epoch.
    pub epoch: u16,
    /// 48-bit sequence number within the epoch.
    pub seq: u64,
    /// Fragment length.
    pub length: u16,
}

impl RecordHeader {
    /// Parses a header; checks only that the fragment fits in `buf`.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let mut r = Reader::new(buf);
        let h = Self {
            content_type: ContentType(r.u8()?),
            version: ProtocolVersion(r.u16()?),
            epoch: r.u16()?,
            seq: r.u48()?,
            length: r.u16()?,
        };
        (r.remaining() >= usize::from(h.length)).then_some(h)
    }

    /// Appends the encoded header to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(self.content_type.0);
        out.extend_from_slice(&self.version.0.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&(self.seq & MAX_SEQ).to_be_bytes()[2..]);
        out.extend_from_slice(&self.length.to_be_bytes());
    }

    /// The 64-bit `epoch || sequence_number` used in the AAD and nonces. A sequence number
    /// never spills into the epoch: writers refuse numbers above [`MAX_SEQ`] before sealing.
    pub fn epoch_seq(&self) -> u64 {
        (u64::from(self.epoch) << 48) | (self.seq & MAX_SEQ)
    }
}

/// Iterates over the records of a datagram, yielding each header with the range of its fragment.
///
/// Iteration stops at the first record that cannot be framed (truncated header or fragment).
#[derive(Debug)]
pub struct Records<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Records<'a> {
    /// Frames the records in `datagram`.
    pub fn new(datagram: &'a [u8]) -> Self {
        Self { buf: datagram, pos: 0 }
    }
}

impl Iterator for Records<'_> {
    type Item = (RecordHeader, Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..)?;
        let Some(h) = RecordHeader::parse(rest) else {
            self.pos = self.buf.len();
            return None;
        };
        let start = self.pos + HEADER_LEN;
        let end = start + usize::from(h.length);
        self.pos = end;
        Some((h, start..end))
    }
}

/// Record protection for one direction of one epoch: the AEAD key and the implicit nonce.
pub struct RecordProtection {
    key: Box<dyn AeadKey>,
    iv: [u8; 12],
    explicit_nonce_len: u8,
    tag_len: u8,
}

impl core::fmt::Debug for RecordProtection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecordProtection").finish_non_exhaustive()
    }
}

impl RecordProtection {
    /// Builds protection from a key and the fixed IV taken from the key block.
    pub fn new(suite: &CipherSuite, key: Box<dyn AeadKey>, fixed_iv: &[u8]) -> Self {
        let mut iv = [0u8; 12];
        let n = suite.fixed_iv_len().min(fixed_iv.len());
        iv[..n].copy_from_slice(&fixed_iv[..n]);
        Self { key, iv, explicit_nonce_len: suite.explicit_nonce_len() as u8, tag_len: suite.aead.tag_len() as u8 }
    }

    /// Bytes added to each record's plaintext.
    pub fn overhead(&self) -> usize {
        usize::from(self.explicit_nonce_len) + usize::from(self.tag_len)
    }

    /// The nonce for a record: for GCM and CCM the fixed IV followed by the explicit nonce (RFC
    /// 5288 §3, RFC 6655 §3); for ChaCha20-Poly1305 the IV XORed with the padded
    /// `epoch || sequence_number` (RFC 7905 §2).
    fn nonce(&self, explicit: u64) -> [u8; 12] {
        let mut nonce = self.iv;
        if self.explicit_nonce_len == 0 {
            for (n, b) in nonce[4..].iter_mut().zip(explicit.to_be_bytes()) {
                *n ^= b;
            }
        } else {
            nonce[4..].copy_from_slice(&explicit.to_be_bytes());
        }
        nonce
    }

    /// Appends a protected record to `out`: header, explicit nonce, ciphertext, tag. The
    /// explicit nonce is the record's `epoch || sequence_number`, which never repeats under one key.
    pub fn seal(&self, header: RecordHeader, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let protected_len = plaintext.len() + self.overhead();
        let length = u16::try_from(protected_len).map_err(|_| CryptoError)?;
        let explicit = header.epoch_seq();
        RecordHeader { length, ..header }.write(out);
        if self.explicit_nonce_len > 0 {
            out.extend_from_slice(&explicit.to_be_bytes());
        }
        let start = out.len();
        out.extend_from_slice(plaintext);
        out.resize(start + plaintext.len() + usize::from(self.tag_len), 0);
        let aad = aad(&header, plaintext.len());
        self.key.seal_in_place(&self.nonce(explicit), &aad, &mut out[start..])
    }

    /// Authenticates and decrypts a record's fragment in place. Returns the range of the
    /// plaintext within `fragment`.
    pub fn open(&self, header: &RecordHeader, fragment: &mut [u8]) -> Result<Range<usize>, CryptoError> {
        if fragment.len() < self.overhead() {
            return Err(CryptoError);
        }
        let plain_len = fragment.len() - self.overhead();
        let explicit = if self.explicit_nonce_len > 0 {
            let mut r = Reader::new(fragment);
            u64::from_be_bytes(r.take_array().ok_or(CryptoError)?)
        } else {
            header.epoch_seq()
        };
        let aad = aad(header, plain_len);
        let nonce_len = usize::from(self.explicit_nonce_len);
        let body = &mut fragment[nonce_len..];
        self.key.open_in_place(&self.nonce(explicit), &aad, body)?;
        Ok(nonce_len..nonce_len + plain_len)
    }
}

/// `seq_num || type || version || length` (RFC 5246 §6.2.3.3 with the DTLS 64-bit sequence).
fn aad(header: &RecordHeader, plain_len: usize) -> [u8; 13] {
    let mut a = [0u8; 13];
    a[..8].copy_from_slice(&header.epoch_seq().to_be_bytes());
    a[8] = header.content_type.0;
    a[9..11].copy_from_slice(&header.version.0.to_be_bytes());
    a[11..].copy_from_slice(&(plain_len as u16).to_be_bytes());
    a
}

/// The anti-replay window of one epoch (RFC 6347 §4.1.2.6): the highest authenticated sequence
/// number and a 64-record bitmap below it.
///
/// Use in order: [`check`](Self::check) before decrypting, [`update`](Self::update) only after the
/// record authenticated, so a forged record can never move the window.
#[derive(Clone, Debug, Default)]
pub struct ReplayWindow {
    /// Highest sequence number accepted, plus one; 0 when none was.
    top: u64,
    /// Bit `i` set: sequence number `top - 1 - i` was accepted.
    bits: u64,
}

impl ReplayWindow {
    /// Window width in records.
    pub const WIDTH: u64 = 64;

    /// Whether `seq` is new and not too old to tell.
    pub fn check(&self, seq: u64) -> bool {
        if seq > MAX_SEQ {
            return false;
        }
        if seq >= self.top {
            return true;
        }
        let behind = self.top - 1 - seq;
        behind < Self::WIDTH && self.bits & (1 << behind) == 0
    }

    /// Marks `seq` as received. Call only for records that authenticated and passed `check`.
    pub fn update(&mut self, seq: u64) {
        if seq >= self.top {
            let shift = seq + 1 - self.top;
            self.bits = if shift >= Self::WIDTH { 0 } else { self.bits << shift };
            self.bits |= 1;
            self.top = seq + 1;
        } else {
            let behind = self.top - 1 - seq;
            if behind < Self::WIDTH {
                self.bits |= 1 << behind;
            }
        }
    }

    /// The highest sequence number accepted so far.
    pub fn highest(&self) -> Option<u64> {
        self.top.checked_sub(1)
    }

    /// The window's state, for exporting a session.
    pub fn to_parts(&self) -> (u64, u64) {
        (self.top, self.bits)
    }

    /// Restores a window exported with [`to_parts`](Self::to_parts).
    pub fn from_parts(top: u64, bits: u64) -> Self {
        Self { top: top.min(MAX_SEQ + 1), bits }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
