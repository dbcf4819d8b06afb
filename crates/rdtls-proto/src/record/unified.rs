//! DTLS 1.3 protected records (RFC 9147 §4): the unified header, record protection with the
//! inner content type, and record-number encryption.
//!
//! Sending seals first and masks second: the mask is made from the first 16 bytes of the
//! ciphertext and XORed over the 8 or 16 sequence-number bits of the header (RFC 9147
//! §4.2.3). A ciphertext shorter than 16 bytes cannot be sampled, so short records are padded
//! with zeros inside the encryption (only AES-128-CCM-8, whose tag is 8 bytes, can need it).
//! Receiving reverses it: a record whose ciphertext is shorter than 16 bytes is dropped, the
//! mask is removed, the full sequence number is reconstructed from the low bits and the
//! epoch's replay window ([`ReplayWindow::reconstruct`]), and the record is opened with the
//! header as it was before masking as its additional data.

use core::ops::Range;

use crate::crypto::{
    expand_traffic_secret, AeadAlgorithm, CryptoError, CryptoProvider, HashAlgorithm, MaskAlgorithm, MaskKey,
    DTLS13_LABEL_PREFIX,
};
use crate::enums::ContentType;

use super::{Header, RecordProtection, ReplayWindow, UnifiedHeader};

/// Bytes of ciphertext the record-number mask is made from.
pub const MASK_SAMPLE_LEN: usize = 16;

/// How this endpoint writes unified headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnifiedFormat {
    /// 16-bit sequence numbers (the S bit) rather than 8-bit ones.
    pub seq_16: bool,
    /// A length field (the L bit); without one, the record runs to the end of its datagram,
    /// so it must be the datagram's last.
    pub has_length: bool,
}

impl Default for UnifiedFormat {
    /// 16-bit sequence numbers and a length, as RFC 9147 §4 recommends for handshake records
    /// and for anything that may share a datagram.
    fn default() -> Self {
        Self { seq_16: true, has_length: true }
    }
}

/// Protection of DTLS 1.3 records for one direction of one epoch: the AEAD and the
/// record-number mask key.
pub struct UnifiedProtection {
    aead: RecordProtection,
    mask: Box<dyn MaskKey>,
}

impl core::fmt::Debug for UnifiedProtection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UnifiedProtection").finish_non_exhaustive()
    }
}

/// A record opened by [`UnifiedProtection::open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The full sequence number.
    pub seq: u64,
    /// The real content type.
    pub content_type: ContentType,
    /// The plaintext's range within the fragment.
    pub plaintext: Range<usize>,
}

impl UnifiedProtection {
    /// Protection from an AEAD made with [`RecordProtection::with_iv`] and the mask key of the
    /// same traffic secret.
    pub fn new(aead: RecordProtection, mask: Box<dyn MaskKey>) -> Self {
        Self { aead, mask }
    }

    /// Protection from a DTLS 1.3 traffic secret (the suite's `aead` and `hash`): the AEAD key,
    /// the IV and the record-number key, expanded with the "dtls13" labels (RFC 9147 §5.9,
    /// §4.2.3). What a key log line's secret is turned into.
    pub fn from_traffic_secret(
        provider: &dyn CryptoProvider,
        aead: AeadAlgorithm,
        hash: HashAlgorithm,
        secret: &[u8],
    ) -> Result<Self, CryptoError> {
        let mask = MaskAlgorithm::for_aead(aead);
        let (mut key, mut iv, mut sn) = ([0u8; 32], [0u8; 12], [0u8; 32]);
        let (k, n) = (&mut key[..aead.key_len()], &mut sn[..mask.key_len()]);
        let built = expand_traffic_secret(provider, hash, secret, DTLS13_LABEL_PREFIX, k, &mut iv, n).and_then(|()| {
            let aead_key = provider.aead_key(aead, k)?;
            Ok(Self::new(RecordProtection::with_iv(aead, aead_key, iv), provider.mask_key(mask, n)?))
        });
        for b in [&mut key[..], &mut iv[..], &mut sn[..]] {
            zeroize::Zeroize::zeroize(b);
        }
        built
    }

    /// Bytes a record adds to its plaintext: header (without a connection ID), inner content
    /// type and tag (padding, which only a tiny CCM-8 record needs, aside).
    pub fn overhead(&self, format: UnifiedFormat) -> usize {
        1 + if format.seq_16 { 2 } else { 1 } + if format.has_length { 2 } else { 0 } + 1 + self.aead.overhead()
    }

    /// Appends a protected record to `out`: the unified header of `epoch` and `seq` (with `cid`,
    /// if given), then the ciphertext of `plaintext` and its `content_type`, with its sequence
    /// number encrypted.
    #[allow(clippy::too_many_arguments)]
    pub fn seal(
        &self,
        epoch: u64,
        seq: u64,
        cid: Option<&[u8]>,
        format: UnifiedFormat,
        content_type: ContentType,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let seq_mask = if format.seq_16 { 0xffff } else { 0xff };
        let header = UnifiedHeader {
            epoch_bits: (epoch & 0b11) as u8,
            cid,
            masked_seq: (seq & seq_mask) as u16,
            seq_16: format.seq_16,
            has_length: format.has_length,
        };
        let sealed_len = plaintext.len() + 1 + self.aead.overhead();
        let padding = MASK_SAMPLE_LEN.saturating_sub(sealed_len);
        let start = out.len();
        self.aead.seal_record_padded(&Header::Unified(header), seq, Some(content_type), plaintext, padding, out)?;
        let seq_at = start + 1 + cid.map_or(0, <[u8]>::len);
        let fragment_at = seq_at + if format.seq_16 { 2 } else { 1 } + if format.has_length { 2 } else { 0 };
        let sample: &[u8; MASK_SAMPLE_LEN] =
            out.get(fragment_at..fragment_at + MASK_SAMPLE_LEN).and_then(|s| s.try_into().ok()).ok_or(CryptoError)?;
        let mask = self.mask.mask(sample)?;
        let width = if format.seq_16 { 2 } else { 1 };
        for (b, m) in out[seq_at..seq_at + width].iter_mut().zip(mask) {
            *b ^= m;
        }
        Ok(())
    }

    /// The low sequence-number bits of a received record in the clear, or `None` when its
    /// fragment is too short to have been masked (such a record is dropped).
    pub fn unmask(&self, header: &UnifiedHeader<'_>, fragment: &[u8]) -> Option<u16> {
        let sample: &[u8; MASK_SAMPLE_LEN] = fragment.get(..MASK_SAMPLE_LEN)?.try_into().ok()?;
        let mask = self.mask.mask(sample).ok()?;
        Some(if header.seq_16 {
            header.masked_seq ^ u16::from_be_bytes([mask[0], mask[1]])
        } else {
            (header.masked_seq ^ u16::from(mask[0])) & 0xff
        })
    }

    /// Opens a received record of this epoch in place: removes the mask, reconstructs the
    /// sequence number from `window`, checks it against replays, authenticates and decrypts,
    /// and only then marks it received in `window`. `Err` for a record to drop (too short,
    /// replayed, or not authentic); the window is unchanged then.
    pub fn open(
        &self,
        header: &UnifiedHeader<'_>,
        fragment: &mut [u8],
        window: &mut ReplayWindow,
    ) -> Result<Opened, CryptoError> {
        let clear = self.unmask(header, fragment).ok_or(CryptoError)?;
        let seq = window.reconstruct(u64::from(clear), if header.seq_16 { 16 } else { 8 });
        if !window.check(seq) {
            return Err(CryptoError);
        }
        self.open_unmasked(header, clear, seq, fragment, window)
    }

    /// The second half of [`open`](Self::open), for a caller that already unmasked the
    /// sequence bits (`clear`, from [`unmask`](Self::unmask)) and checked the full number
    /// `seq` against `window`: authenticates and decrypts, then marks `seq` received.
    pub fn open_unmasked(
        &self,
        header: &UnifiedHeader<'_>,
        clear: u16,
        seq: u64,
        fragment: &mut [u8],
        window: &mut ReplayWindow,
    ) -> Result<Opened, CryptoError> {
        let as_sent = UnifiedHeader { masked_seq: clear, ..*header };
        let (plaintext, content_type) = self.aead.open_record(&Header::Unified(as_sent), seq, fragment)?;
        let content_type = content_type.ok_or(CryptoError)?;
        window.update(seq);
        Ok(Opened { seq, content_type, plaintext })
    }
}
