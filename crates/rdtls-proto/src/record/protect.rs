//! Record protection in place, for every record format: the nonce and the additional data are
//! built from the record's [`Header`], and formats with an inner content type (DTLS 1.2 with a
//! connection ID, DTLS 1.3) carry the real type after the plaintext.
//!
//! | format | nonce | additional data | inner type |
//! |---|---|---|---|
//! | [`Header::Plain`] (RFC 6347 §4.1.2.1) | explicit `epoch ‖ seq` (GCM, CCM), or IV ⊕ it (ChaCha20) | `epoch ‖ seq ‖ type ‖ version ‖ plaintext length` | no |
//! | [`Header::Cid12`] (RFC 9146 §5) | the same | `ff×8 ‖ 25 ‖ cid length ‖ 25 ‖ version ‖ epoch ‖ seq ‖ cid ‖ inner length` | yes |
//! | [`Header::Unified`] (RFC 9147 §4.2.3) | IV ⊕ the 64-bit record number | the header as sent, its sequence number unmasked | yes |

use core::ops::Range;

use crate::codec::Reader;
use crate::crypto::{AeadKey, CryptoError};
use crate::enums::ContentType;
use crate::suites::CipherSuite;

use super::{Header, RecordHeader};

/// Longest connection ID a record can carry (its length is one byte on the wire).
pub const MAX_CID_LEN: usize = 255;

/// Longest additional data: the RFC 9146 layout with the longest connection ID.
const MAX_AAD: usize = 8 + 3 + 2 + 2 + 6 + MAX_CID_LEN + 2;

/// Connection IDs up to this long have their additional data built in a buffer of their size.
const SHORT_CID: usize = 32;

/// Collects bytes into a fixed buffer; what does not fit is counted, and makes the result
/// unusable.
struct Filler<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Filler<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.len += bytes.len();
    }
}

impl Header<'_> {
    /// Whether records of this format carry their content type inside the ciphertext.
    pub fn has_inner_type(&self) -> bool {
        !matches!(self, Self::Plain(_))
    }

    /// Calls `f` with the additional data of a record with this header, built on the stack:
    /// `protected_len` is the fragment's length on the wire, `inner_len` the plaintext's (with
    /// the inner type, if any). `None` if the header cannot be authenticated (a connection ID
    /// over [`MAX_CID_LEN`]). The common cases (DTLS 1.2, and DTLS 1.3 without a connection
    /// ID) build 13 bytes or fewer and nothing more.
    #[inline]
    pub(super) fn with_aad<R>(&self, protected_len: u16, inner_len: usize, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let inner_len = u16::try_from(inner_len).ok()?;
        if let Self::Plain(h) = self {
            let mut a = [0u8; 13];
            a[..8].copy_from_slice(&h.epoch_seq().to_be_bytes());
            a[8] = h.content_type.0;
            a[9..11].copy_from_slice(&h.version.0.to_be_bytes());
            a[11..].copy_from_slice(&inner_len.to_be_bytes());
            return Some(f(&a));
        }
        // DTLS 1.3: the header as sent, from the stack (with a connection ID of ours too).
        if let Some((bytes, len)) = self.short_form(protected_len) {
            return Some(f(&bytes[..len]));
        }
        if let Some((bytes, len)) = self.unified_with_cid(protected_len) {
            return Some(f(&bytes[..len]));
        }
        let build = |buf: &mut [u8]| -> Option<usize> {
            let mut fill = Filler { buf, len: 0 };
            match self {
                Self::Cid12 { header, cid } => {
                    let cid_len = u8::try_from(cid.len()).ok()?;
                    fill.put(&[0xff; 8]);
                    fill.put(&[ContentType::TLS12_CID.0, cid_len, ContentType::TLS12_CID.0]);
                    fill.put(&header.version.0.to_be_bytes());
                    fill.put(&header.epoch.to_be_bytes());
                    fill.put(&header.epoch_seq().to_be_bytes()[2..]);
                    fill.put(cid);
                    fill.put(&inner_len.to_be_bytes());
                }
                _ => self.encode(protected_len, |b| fill.put(b)),
            }
            Some(fill.len)
        };
        // The connection IDs endpoints use (at most 20 bytes here): a small buffer to zero.
        if matches!(self, Self::Cid12 { cid, .. } if cid.len() <= SHORT_CID) {
            let mut buf = [0u8; MAX_AAD - MAX_CID_LEN + SHORT_CID];
            let len = build(&mut buf)?;
            return (len <= buf.len()).then(|| f(&buf[..len]));
        }
        let mut buf = [0u8; MAX_AAD];
        let len = build(&mut buf)?;
        (len <= MAX_AAD).then(|| f(&buf[..len]))
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

    /// Builds DTLS 1.3 protection (RFC 8446 §5.3): `key` for `aead` and the 12-byte IV of the
    /// traffic secret; the nonce is the IV XORed with the 64-bit sequence number.
    pub fn with_iv(aead: crate::crypto::AeadAlgorithm, key: Box<dyn AeadKey>, iv: [u8; 12]) -> Self {
        Self { key, iv, explicit_nonce_len: 0, tag_len: aead.tag_len() as u8 }
    }

    /// Bytes added to each record's plaintext (besides an inner content type).
    pub fn overhead(&self) -> usize {
        usize::from(self.explicit_nonce_len) + usize::from(self.tag_len)
    }

    /// The nonce for a record: for GCM and CCM in DTLS 1.2 the fixed IV followed by the
    /// explicit nonce (RFC 5288 §3, RFC 6655 §3); otherwise the IV XORed with the padded 64-bit
    /// record number (RFC 7905 §2, RFC 8446 §5.3).
    fn nonce(&self, record_number: u64) -> [u8; 12] {
        let mut nonce = self.iv;
        if self.explicit_nonce_len == 0 {
            for (n, b) in nonce[4..].iter_mut().zip(record_number.to_be_bytes()) {
                *n ^= b;
            }
        } else {
            nonce[4..].copy_from_slice(&record_number.to_be_bytes());
        }
        nonce
    }

    /// Appends a protected DTLS 1.2 record to `out`: header, explicit nonce, ciphertext, tag.
    /// The explicit nonce is the record's `epoch || sequence_number`, which never repeats under
    /// one key.
    #[inline]
    pub fn seal(&self, header: RecordHeader, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.seal_record(&Header::Plain(header), header.epoch_seq(), None, plaintext, out)
    }

    /// Authenticates and decrypts a DTLS 1.2 record's fragment in place. Returns the range of
    /// the plaintext within `fragment`.
    #[inline]
    pub fn open(&self, header: &RecordHeader, fragment: &mut [u8]) -> Result<Range<usize>, CryptoError> {
        self.open_record(&Header::Plain(*header), header.epoch_seq(), fragment).map(|(range, _)| range)
    }

    /// Appends a protected record in `header`'s format to `out`. `record_number` is the 64-bit
    /// number the nonce is made from (`epoch || sequence_number`); `inner_type` is the real
    /// content type, which formats with an inner type carry after the plaintext (it must be
    /// given for them, and only for them). A unified header is written with its sequence
    /// number in the clear: masking it is the caller's next step.
    pub fn seal_record(
        &self,
        header: &Header<'_>,
        record_number: u64,
        inner_type: Option<ContentType>,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        self.seal_record_padded(header, record_number, inner_type, plaintext, 0, out)
    }

    /// Like [`seal_record`](Self::seal_record), with `padding` zero bytes after the inner
    /// content type (inside the encryption, RFC 8446 §5.4). Only formats with an inner type
    /// can be padded.
    #[inline]
    pub fn seal_record_padded(
        &self,
        header: &Header<'_>,
        record_number: u64,
        inner_type: Option<ContentType>,
        plaintext: &[u8],
        padding: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        if inner_type.is_some() != header.has_inner_type() || (padding > 0 && inner_type.is_none()) {
            return Err(CryptoError);
        }
        let inner_len = plaintext.len() + usize::from(inner_type.is_some()) + padding;
        let protected_len = u16::try_from(inner_len + self.overhead()).map_err(|_| CryptoError)?;
        header.write(protected_len, out);
        if self.explicit_nonce_len > 0 {
            out.extend_from_slice(&record_number.to_be_bytes());
        }
        let start = out.len();
        out.extend_from_slice(plaintext);
        if let Some(t) = inner_type {
            out.push(t.0);
        }
        // The padding and the tag's room: zeros.
        out.resize(start + inner_len + usize::from(self.tag_len), 0);
        let nonce = self.nonce(record_number);
        header
            .with_aad(protected_len, inner_len, |aad| self.key.seal_in_place(&nonce, aad, &mut out[start..]))
            .ok_or(CryptoError)?
    }

    /// Authenticates and decrypts a record's fragment in place. Returns the range of the
    /// plaintext within `fragment` and, for formats with an inner type, that type (zero
    /// padding removed). A record whose inner plaintext is all zeros has no type and fails.
    #[inline]
    pub fn open_record(
        &self,
        header: &Header<'_>,
        record_number: u64,
        fragment: &mut [u8],
    ) -> Result<(Range<usize>, Option<ContentType>), CryptoError> {
        let Some(inner_len) = fragment.len().checked_sub(self.overhead()) else {
            return Err(CryptoError);
        };
        let nonce_input = if self.explicit_nonce_len > 0 {
            u64::from_be_bytes(Reader::new(fragment).take_array().ok_or(CryptoError)?)
        } else {
            record_number
        };
        let protected_len = u16::try_from(fragment.len()).map_err(|_| CryptoError)?;
        let start = usize::from(self.explicit_nonce_len);
        let nonce = self.nonce(nonce_input);
        header
            .with_aad(protected_len, inner_len, |aad| self.key.open_in_place(&nonce, aad, &mut fragment[start..]))
            .ok_or(CryptoError)??;
        let inner = &fragment[start..start + inner_len];
        if !header.has_inner_type() {
            return Ok((start..start + inner_len, None));
        }
        let type_at = inner.iter().rposition(|&b| b != 0).ok_or(CryptoError)?;
        Ok((start..start + type_at, Some(ContentType(inner[type_at]))))
    }
}
