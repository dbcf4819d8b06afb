//! A crypto provider whose randomness is a function of a seed, for reproducible fuzzing.

use super::*;

/// The default provider with its randomness replaced by a seeded generator: client and server
/// randoms, cookie secrets and ephemeral ECDH keys are a function of the seed and of the order
/// of the calls. For fuzzing only: the "random" bytes are predictable.
#[derive(Debug)]
pub struct DeterministicProvider {
    inner: AwsLcProvider,
    counter: AtomicU64,
}

impl DeterministicProvider {
    /// A provider whose random stream starts from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { inner: AwsLcProvider, counter: AtomicU64::new(seed) }
    }

    /// splitmix64 over a counter.
    fn next_u64(&self) -> u64 {
        let mut z =
            self.counter.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl CryptoProvider for DeterministicProvider {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        for chunk in out.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        Ok(())
    }

    fn hash(&self, alg: HashAlgorithm, parts: &[&[u8]]) -> Digest {
        self.inner.hash(alg, parts)
    }

    fn hmac(&self, alg: HashAlgorithm, key: &[u8], parts: &[&[u8]]) -> Digest {
        self.inner.hmac(alg, key, parts)
    }

    fn prf(
        &self,
        alg: HashAlgorithm,
        secret: &[u8],
        label: &[u8],
        seed: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.inner.prf(alg, secret, label, seed, out)
    }

    fn start_hash(&self, alg: HashAlgorithm) -> Box<dyn RunningHash> {
        self.inner.start_hash(alg)
    }

    fn hkdf_extract(&self, alg: HashAlgorithm, salt: &[u8], ikm: &[u8]) -> Digest {
        self.inner.hkdf_extract(alg, salt, ikm)
    }

    fn hkdf_expand(&self, alg: HashAlgorithm, prk: &[u8], info: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        self.inner.hkdf_expand(alg, prk, info, out)
    }

    fn mask_key(&self, alg: MaskAlgorithm, key: &[u8]) -> Result<Box<dyn MaskKey>, CryptoError> {
        self.inner.mask_key(alg, key)
    }

    fn aead_key(&self, alg: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError> {
        self.inner.aead_key(alg, key)
    }

    fn load_signing_key(
        &self,
        key: &rdtls_proto::pki::PrivateKeyDer<'_>,
    ) -> Result<std::sync::Arc<dyn rdtls_proto::crypto::SigningKey>, CryptoError> {
        self.inner.load_signing_key(key)
    }

    fn certificate_signature_algorithms(
        &self,
    ) -> &'static [&'static dyn rdtls_proto::pki::SignatureVerificationAlgorithm] {
        self.inner.certificate_signature_algorithms()
    }

    fn handshake_signature_algorithms(
        &self,
        scheme: rdtls_proto::enums::SignatureScheme,
    ) -> &'static [&'static dyn rdtls_proto::pki::SignatureVerificationAlgorithm] {
        self.inner.handshake_signature_algorithms(scheme)
    }

    fn start_key_exchange(&self, group: KxGroup) -> Result<Box<dyn ActiveKeyExchange>, CryptoError> {
        let mut scalar = [0u8; 48];
        let len = if group == KxGroup::Secp384r1 { 48 } else { 32 };
        // A NIST scalar must be non-zero and below the group order: retry the rare miss.
        for _ in 0..8 {
            self.fill_random(&mut scalar[..len])?;
            if let Ok(kx) = self.inner.key_exchange_from_private_key(group, &scalar[..len]) {
                return Ok(kx);
            }
        }
        Err(CryptoError)
    }

    fn supports_aead(&self, alg: AeadAlgorithm) -> bool {
        self.inner.supports_aead(alg)
    }

    fn supports_group(&self, group: KxGroup) -> bool {
        self.inner.supports_group(group)
    }
}
