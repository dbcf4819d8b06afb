//! The primitives DTLS 1.3 adds on aws-lc-rs: a forkable running hash, HKDF-Expand, and
//! record-number masks.

use aws_lc_rs::aead::quic;
use aws_lc_rs::{digest, hkdf};

use super::super::{CryptoError, Digest, HashAlgorithm, MaskAlgorithm, MaskKey, RunningHash};

/// A running hash: aws-lc's digest context, which copies cheaply.
#[derive(Clone)]
pub(super) struct AwsLcHash {
    ctx: digest::Context,
    alg: HashAlgorithm,
}

impl AwsLcHash {
    pub(super) fn new(digest_alg: &'static digest::Algorithm, alg: HashAlgorithm) -> Self {
        Self { ctx: digest::Context::new(digest_alg), alg }
    }
}

impl RunningHash for AwsLcHash {
    fn algorithm(&self) -> HashAlgorithm {
        self.alg
    }

    fn update(&mut self, data: &[u8]) {
        self.ctx.update(data);
    }

    fn current(&self) -> Digest {
        Digest::new(self.ctx.clone().finish().as_ref())
    }

    fn fork(&self) -> Box<dyn RunningHash> {
        Box::new(self.clone())
    }
}

/// `out.len()` for aws-lc's expand API.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

pub(super) fn hkdf_expand(alg: HashAlgorithm, prk: &[u8], info: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
    let hkdf_alg = match alg {
        HashAlgorithm::Sha256 => hkdf::HKDF_SHA256,
        HashAlgorithm::Sha384 => hkdf::HKDF_SHA384,
    };
    if prk.len() < alg.output_len() || out.len() > 255 * alg.output_len() {
        return Err(CryptoError);
    }
    let prk = hkdf::Prk::new_less_safe(hkdf_alg, prk);
    let info = [info];
    let okm = prk.expand(&info, Len(out.len())).map_err(|_| CryptoError)?;
    okm.fill(out).map_err(|_| CryptoError)
}

/// A record-number mask key on aws-lc's QUIC header-protection keys (the same computation).
pub(super) struct AwsLcMaskKey(quic::HeaderProtectionKey);

impl AwsLcMaskKey {
    pub(super) fn new(alg: MaskAlgorithm, key: &[u8]) -> Result<Self, CryptoError> {
        let cipher = match alg {
            MaskAlgorithm::Aes128 => &quic::AES_128,
            MaskAlgorithm::Aes256 => &quic::AES_256,
            MaskAlgorithm::ChaCha20 => &quic::CHACHA20,
        };
        if key.len() != alg.key_len() {
            return Err(CryptoError);
        }
        quic::HeaderProtectionKey::new(cipher, key).map(Self).map_err(|_| CryptoError)
    }
}

impl MaskKey for AwsLcMaskKey {
    fn mask(&self, sample: &[u8; 16]) -> Result<[u8; 5], CryptoError> {
        self.0.new_mask(sample).map_err(|_| CryptoError)
    }
}
