//! Record protection in place: the nonce and additional data of each format, sealing and
//! opening with an epoch's AEAD key.

use core::ops::Range;

use crate::codec::Reader;
use crate::crypto::{AeadKey, CryptoError};
use crate::suites::CipherSuite;

use super::RecordHeader;

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
