//! The default crypto provider: `aws-lc-rs`, plus RustCrypto `ccm` + `aes` for AES-CCM.
//!
//! | primitive | implementation |
//! | --- | --- |
//! | random | `aws_lc_rs::rand::SystemRandom` |
//! | SHA-256 / SHA-384 | `aws_lc_rs::digest` |
//! | HMAC | `aws_lc_rs::hmac` |
//! | TLS 1.2 PRF | `aws_lc_rs::tls_prf` (`P_SHA256`, `P_SHA384`) |
//! | AES-GCM, ChaCha20-Poly1305 | `aws_lc_rs::aead::LessSafeKey` |
//! | AES-128-CCM, AES-128-CCM-8 | `ccm::Ccm<aes::Aes128, U16 / U8, U12>` |
//! | X25519, P-256, P-384 ECDHE | `aws_lc_rs::agreement` |
//!
//! Record protection works in place on the caller's buffer and never allocates.
//!
//! Key material never appears in `Debug` output: keys print their algorithm or group only.
//! aws-lc clears key memory when it frees it (`OPENSSL_free` cleanses), and the TLS PRF's secret
//! and output buffers are zeroized on drop. The RustCrypto AES key schedule behind AES-CCM is
//! cleared on drop only when the `aes` crate's `zeroize` feature is enabled.

use core::fmt;

use aes::Aes128;
use aws_lc_rs::rand::SecureRandom as _;
use aws_lc_rs::{aead, agreement, digest, hmac, rand, tls_prf};
use ccm::aead::generic_array::ArrayLength;
use ccm::aead::{AeadInPlace as _, KeyInit as _};
use ccm::consts::{U12, U16, U8};
use ccm::Ccm;

use std::sync::Arc;

use rustls_pki_types::{PrivateKeyDer, SignatureVerificationAlgorithm};

use crate::enums::SignatureScheme;

use super::{
    ct_eq, ActiveKeyExchange, AeadAlgorithm, AeadKey, CryptoError, CryptoProvider, Digest, HashAlgorithm, KxGroup,
    SharedSecret, SigningKey,
};

/// The default [`CryptoProvider`]: `aws-lc-rs` for everything except AES-CCM, which uses
/// RustCrypto `ccm` + `aes`.
///
/// Stateless: every method works on its arguments alone, so the provider can be copied freely and
/// shared between threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct AwsLcProvider;

impl AwsLcProvider {
    /// Builds a key exchange from a known private key instead of a fresh random one.
    ///
    /// This exists for known-answer tests and reproducible handshake transcripts; a live handshake
    /// must use [`CryptoProvider::start_key_exchange`]. The key pair behaves exactly like a
    /// generated one: [`ActiveKeyExchange::complete`] runs the same checks and consumes it.
    ///
    /// `private_key` is 32 bytes for X25519 (RFC 7748 scalar, clamped by the curve operation), or
    /// the fixed-length big-endian scalar for P-256 (32 bytes) and P-384 (48 bytes), left-padded
    /// with zeros. Any other length, and a scalar the library rejects (zero, or not below the group
    /// order), is an error.
    pub fn key_exchange_from_private_key(
        &self,
        group: KxGroup,
        private_key: &[u8],
    ) -> Result<Box<dyn ActiveKeyExchange>, CryptoError> {
        let alg = agreement_algorithm(group);
        let key = agreement::PrivateKey::from_private_key(alg, private_key).map_err(|_| CryptoError)?;
        Ok(Box::new(AwsLcKeyExchange::new(group, key)?))
    }
}

impl CryptoProvider for AwsLcProvider {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        rand::SystemRandom::new().fill(out).map_err(|_| CryptoError)
    }

    fn hash(&self, alg: HashAlgorithm, parts: &[&[u8]]) -> Digest {
        let mut ctx = digest::Context::new(digest_algorithm(alg));
        for part in parts {
            ctx.update(part);
        }
        Digest::new(ctx.finish().as_ref())
    }

    fn hmac(&self, alg: HashAlgorithm, key: &[u8], parts: &[&[u8]]) -> Digest {
        let key = hmac::Key::new(hmac_algorithm(alg), key);
        let mut ctx = hmac::Context::with_key(&key);
        for part in parts {
            ctx.update(part);
        }
        Digest::new(ctx.sign().as_ref())
    }

    fn prf(
        &self,
        alg: HashAlgorithm,
        secret: &[u8],
        label: &[u8],
        seed: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        if out.is_empty() {
            // `tls_prf` rejects a zero-length request; zero bytes of output are trivially correct.
            return Ok(());
        }
        if secret.is_empty() {
            // `tls_prf::Secret::new` rejects an empty secret, but RFC 5246 defines the PRF for one
            // (HMAC with an empty key). Nothing secret is at stake, so compute it directly.
            p_hash(alg, secret, label, seed, out);
            return Ok(());
        }
        let prf_alg = match alg {
            HashAlgorithm::Sha256 => &tls_prf::P_SHA256,
            HashAlgorithm::Sha384 => &tls_prf::P_SHA384,
        };
        // Both `Secret`s (our input copy and the derived output) are zeroized on drop.
        let derived = tls_prf::Secret::new(prf_alg, secret)
            .and_then(|s| s.derive(label, seed, out.len()))
            .map_err(|_| CryptoError)?;
        let bytes = derived.as_ref();
        if bytes.len() != out.len() {
            return Err(CryptoError);
        }
        out.copy_from_slice(bytes);
        Ok(())
    }

    fn aead_key(&self, alg: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError> {
        if key.len() != alg.key_len() {
            return Err(CryptoError);
        }
        let lc_alg = match alg {
            AeadAlgorithm::Aes128Gcm => &aead::AES_128_GCM,
            AeadAlgorithm::Aes256Gcm => &aead::AES_256_GCM,
            AeadAlgorithm::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
            AeadAlgorithm::Aes128Ccm => {
                return Ok(Box::new(CcmKey::<U16>::new(alg, key)?));
            }
            AeadAlgorithm::Aes128Ccm8 => {
                return Ok(Box::new(CcmKey::<U8>::new(alg, key)?));
            }
        };
        let unbound = aead::UnboundKey::new(lc_alg, key).map_err(|_| CryptoError)?;
        Ok(Box::new(AwsLcAeadKey { alg, key: aead::LessSafeKey::new(unbound) }))
    }

    fn start_key_exchange(&self, group: KxGroup) -> Result<Box<dyn ActiveKeyExchange>, CryptoError> {
        let alg = agreement_algorithm(group);
        // `EphemeralPrivateKey::generate` is exactly `PrivateKey::generate` behind a wrapper that
        // only `agree_ephemeral` can consume. We use `PrivateKey` so that generated keys and
        // `key_exchange_from_private_key` share one code path; single use is enforced instead by
        // `ActiveKeyExchange::complete` taking `self: Box<Self>`.
        let key = agreement::PrivateKey::generate(alg).map_err(|_| CryptoError)?;
        Ok(Box::new(AwsLcKeyExchange::new(group, key)?))
    }

    fn load_signing_key(&self, key: &PrivateKeyDer<'_>) -> Result<Arc<dyn SigningKey>, CryptoError> {
        signing::load(key)
    }

    fn certificate_signature_algorithms(&self) -> &'static [&'static dyn SignatureVerificationAlgorithm] {
        signing::CERTIFICATE_ALGORITHMS
    }

    fn handshake_signature_algorithms(
        &self,
        scheme: SignatureScheme,
    ) -> &'static [&'static dyn SignatureVerificationAlgorithm] {
        signing::handshake_algorithms(scheme)
    }

    fn supports_aead(&self, alg: AeadAlgorithm) -> bool {
        matches!(
            alg,
            AeadAlgorithm::Aes128Gcm
                | AeadAlgorithm::Aes256Gcm
                | AeadAlgorithm::ChaCha20Poly1305
                | AeadAlgorithm::Aes128Ccm
                | AeadAlgorithm::Aes128Ccm8
        )
    }

    fn supports_group(&self, group: KxGroup) -> bool {
        matches!(group, KxGroup::X25519 | KxGroup::Secp256r1 | KxGroup::Secp384r1)
    }
}

fn digest_algorithm(alg: HashAlgorithm) -> &'static digest::Algorithm {
    match alg {
        HashAlgorithm::Sha256 => &digest::SHA256,
        HashAlgorithm::Sha384 => &digest::SHA384,
    }
}

fn hmac_algorithm(alg: HashAlgorithm) -> hmac::Algorithm {
    match alg {
        HashAlgorithm::Sha256 => hmac::HMAC_SHA256,
        HashAlgorithm::Sha384 => hmac::HMAC_SHA384,
    }
}

/// `P_hash(secret, label || seed)` (RFC 5246 §5) on top of HMAC, writing exactly `out.len()`
/// bytes. Used only where `tls_prf` refuses valid input (an empty secret).
fn p_hash(alg: HashAlgorithm, secret: &[u8], label: &[u8], seed: &[u8], out: &mut [u8]) {
    let key = hmac::Key::new(hmac_algorithm(alg), secret);
    // A(1) = HMAC(secret, A(0)) with A(0) = label || seed.
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(label);
    ctx.update(seed);
    let mut a = ctx.sign();
    for chunk in out.chunks_mut(alg.output_len()) {
        // HMAC(secret, A(i) || label || seed)
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(label);
        ctx.update(seed);
        let block = ctx.sign();
        chunk.copy_from_slice(&block.as_ref()[..chunk.len()]);
        a = hmac::sign(&key, a.as_ref());
    }
}

/// Splits `in_out` into the data part and the trailing `tag_len` bytes.
fn split_tag(in_out: &mut [u8], tag_len: usize) -> Result<(&mut [u8], &mut [u8]), CryptoError> {
    let data_len = in_out.len().checked_sub(tag_len).ok_or(CryptoError)?;
    Ok(in_out.split_at_mut(data_len))
}

/// AES-GCM or ChaCha20-Poly1305 through `aws-lc-rs`.
struct AwsLcAeadKey {
    alg: AeadAlgorithm,
    key: aead::LessSafeKey,
}

impl AeadKey for AwsLcAeadKey {
    fn seal_in_place(&self, nonce: &[u8; 12], aad: &[u8], in_out: &mut [u8]) -> Result<(), CryptoError> {
        let (data, tag_out) = split_tag(in_out, self.alg.tag_len())?;
        let tag = self
            .key
            .seal_in_place_separate_tag(aead::Nonce::assume_unique_for_key(*nonce), aead::Aad::from(aad), data)
            .map_err(|_| CryptoError)?;
        let tag = tag.as_ref();
        if tag.len() != tag_out.len() {
            return Err(CryptoError);
        }
        tag_out.copy_from_slice(tag);
        Ok(())
    }

    fn open_in_place(&self, nonce: &[u8; 12], aad: &[u8], in_out: &mut [u8]) -> Result<(), CryptoError> {
        if in_out.len() < self.alg.tag_len() {
            return Err(CryptoError);
        }
        self.key
            .open_in_place(aead::Nonce::assume_unique_for_key(*nonce), aead::Aad::from(aad), in_out)
            .map(|_| ())
            .map_err(|_| CryptoError)
    }

    fn tag_len(&self) -> usize {
        self.alg.tag_len()
    }
}

impl fmt::Debug for AwsLcAeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsLcAeadKey").field("alg", &self.alg).finish_non_exhaustive()
    }
}

/// The tag sizes we use with CCM (`U16`, `U8`), with the thread-safety `AeadKey` needs.
trait CcmTagSize: ArrayLength<u8> + ccm::TagSize + Send + Sync {}

impl<M: ArrayLength<u8> + ccm::TagSize + Send + Sync> CcmTagSize for M {}

/// AES-128-CCM with an `M`-byte tag and a 12-byte nonce through RustCrypto.
struct CcmKey<M>
where
    M: CcmTagSize,
{
    alg: AeadAlgorithm,
    cipher: Ccm<Aes128, M, U12>,
}

impl<M> CcmKey<M>
where
    M: CcmTagSize,
{
    fn new(alg: AeadAlgorithm, key: &[u8]) -> Result<Self, CryptoError> {
        debug_assert_eq!(alg.tag_len(), M::USIZE);
        let cipher = Ccm::<Aes128, M, U12>::new_from_slice(key).map_err(|_| CryptoError)?;
        Ok(Self { alg, cipher })
    }
}

impl<M> AeadKey for CcmKey<M>
where
    M: CcmTagSize,
{
    fn seal_in_place(&self, nonce: &[u8; 12], aad: &[u8], in_out: &mut [u8]) -> Result<(), CryptoError> {
        let (data, tag_out) = split_tag(in_out, M::USIZE)?;
        let tag = self
            .cipher
            .encrypt_in_place_detached(ccm::Nonce::<U12>::from_slice(nonce), aad, data)
            .map_err(|_| CryptoError)?;
        tag_out.copy_from_slice(&tag);
        Ok(())
    }

    fn open_in_place(&self, nonce: &[u8; 12], aad: &[u8], in_out: &mut [u8]) -> Result<(), CryptoError> {
        let (data, tag) = split_tag(in_out, M::USIZE)?;
        self.cipher
            .decrypt_in_place_detached(ccm::Nonce::<U12>::from_slice(nonce), aad, data, ccm::Tag::<M>::from_slice(tag))
            .map_err(|_| CryptoError)
    }

    fn tag_len(&self) -> usize {
        M::USIZE
    }
}

impl<M> fmt::Debug for CcmKey<M>
where
    M: CcmTagSize,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CcmKey").field("alg", &self.alg).finish_non_exhaustive()
    }
}

fn agreement_algorithm(group: KxGroup) -> &'static agreement::Algorithm {
    match group {
        KxGroup::X25519 => &agreement::X25519,
        KxGroup::Secp256r1 => &agreement::ECDH_P256,
        KxGroup::Secp384r1 => &agreement::ECDH_P384,
    }
}

/// The exact length of a public key of `group` as sent on the wire: 32 bytes for X25519, an
/// uncompressed point (`0x04 || x || y`) for the NIST curves.
const fn public_key_len(group: KxGroup) -> usize {
    match group {
        KxGroup::X25519 => 32,
        KxGroup::Secp256r1 => 1 + 2 * 32,
        KxGroup::Secp384r1 => 1 + 2 * 48,
    }
}

/// The longest public key of any group we support (an uncompressed P-384 point).
const MAX_PUBLIC_KEY_LEN: usize = public_key_len(KxGroup::Secp384r1);

/// Whether `peer` has the one encoding we accept for `group`.
///
/// `aws-lc-rs` is more liberal than TLS allows: for the NIST curves it also parses compressed and
/// hybrid points and DER `SubjectPublicKeyInfo`, while RFC 8422 permits only the uncompressed form.
/// Curve membership (and so rejection of the identity) is left to the library.
fn peer_encoding_ok(group: KxGroup, peer: &[u8]) -> bool {
    if peer.len() != public_key_len(group) {
        return false;
    }
    match group {
        KxGroup::X25519 => true,
        KxGroup::Secp256r1 | KxGroup::Secp384r1 => peer[0] == 0x04,
    }
}

/// One ECDHE key pair.
struct AwsLcKeyExchange {
    group: KxGroup,
    private_key: agreement::PrivateKey,
    public_key: [u8; MAX_PUBLIC_KEY_LEN],
    public_key_len: usize,
}

impl AwsLcKeyExchange {
    fn new(group: KxGroup, private_key: agreement::PrivateKey) -> Result<Self, CryptoError> {
        let public = private_key.compute_public_key().map_err(|_| CryptoError)?;
        let public = public.as_ref();
        if public.len() != public_key_len(group) {
            return Err(CryptoError);
        }
        let mut public_key = [0u8; MAX_PUBLIC_KEY_LEN];
        public_key[..public.len()].copy_from_slice(public);
        Ok(Self { group, private_key, public_key, public_key_len: public.len() })
    }
}

impl ActiveKeyExchange for AwsLcKeyExchange {
    fn group(&self) -> KxGroup {
        self.group
    }

    fn public_key(&self) -> &[u8] {
        &self.public_key[..self.public_key_len]
    }

    fn complete(self: Box<Self>, peer_public_key: &[u8]) -> Result<SharedSecret, CryptoError> {
        if !peer_encoding_ok(self.group, peer_public_key) {
            return Err(CryptoError);
        }
        let peer = agreement::UnparsedPublicKey::new(agreement_algorithm(self.group), peer_public_key);
        agreement::agree(&self.private_key, peer, CryptoError, |secret| {
            // aws-lc already fails X25519 with a low-order peer point (RFC 7748 §6.1 all-zero
            // check); keep our own check so the guarantee does not hinge on that.
            if self.group == KxGroup::X25519 && ct_eq(secret, &[0u8; 32]) {
                return Err(CryptoError);
            }
            Ok(SharedSecret::new(secret.to_vec()))
        })
    }
}

impl fmt::Debug for AwsLcKeyExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsLcKeyExchange").field("group", &self.group).finish_non_exhaustive()
    }
}

/// Signing with ECDSA, RSA and Ed25519 keys, and the matching verification algorithms.
mod signing {
    use std::sync::Arc;

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
    use rustls_pki_types::{PrivateKeyDer, SignatureVerificationAlgorithm};
    use webpki::aws_lc_rs as alg;

    use crate::crypto::{CryptoError, SigningKey};
    use crate::enums::{KeyType, SignatureScheme};

    pub(super) static CERTIFICATE_ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
        alg::ECDSA_P256_SHA256,
        alg::ECDSA_P256_SHA384,
        alg::ECDSA_P384_SHA256,
        alg::ECDSA_P384_SHA384,
        alg::ECDSA_P521_SHA256,
        alg::ECDSA_P521_SHA384,
        alg::ECDSA_P521_SHA512,
        alg::ED25519,
        alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        alg::RSA_PKCS1_2048_8192_SHA256,
        alg::RSA_PKCS1_2048_8192_SHA384,
        alg::RSA_PKCS1_2048_8192_SHA512,
        alg::RSA_PKCS1_3072_8192_SHA384,
    ];

    static ECDSA_SHA256: &[&dyn SignatureVerificationAlgorithm] = &[alg::ECDSA_P256_SHA256, alg::ECDSA_P384_SHA256];
    static ECDSA_SHA384: &[&dyn SignatureVerificationAlgorithm] = &[alg::ECDSA_P384_SHA384, alg::ECDSA_P256_SHA384];
    static ED25519: &[&dyn SignatureVerificationAlgorithm] = &[alg::ED25519];
    static PSS_SHA256: &[&dyn SignatureVerificationAlgorithm] = &[alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY];
    static PSS_SHA384: &[&dyn SignatureVerificationAlgorithm] = &[alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY];
    static PKCS1_SHA256: &[&dyn SignatureVerificationAlgorithm] = &[alg::RSA_PKCS1_2048_8192_SHA256];
    static PKCS1_SHA384: &[&dyn SignatureVerificationAlgorithm] = &[alg::RSA_PKCS1_2048_8192_SHA384];

    pub(super) fn handshake_algorithms(
        scheme: SignatureScheme,
    ) -> &'static [&'static dyn SignatureVerificationAlgorithm] {
        match scheme {
            SignatureScheme::ECDSA_SECP256R1_SHA256 => ECDSA_SHA256,
            SignatureScheme::ECDSA_SECP384R1_SHA384 => ECDSA_SHA384,
            SignatureScheme::ED25519 => ED25519,
            SignatureScheme::RSA_PSS_RSAE_SHA256 => PSS_SHA256,
            SignatureScheme::RSA_PSS_RSAE_SHA384 => PSS_SHA384,
            SignatureScheme::RSA_PKCS1_SHA256 => PKCS1_SHA256,
            SignatureScheme::RSA_PKCS1_SHA384 => PKCS1_SHA384,
            _ => &[],
        }
    }

    pub(super) fn load(key: &PrivateKeyDer<'_>) -> Result<Arc<dyn SigningKey>, CryptoError> {
        match key {
            PrivateKeyDer::Pkcs8(der) => {
                let der = der.secret_pkcs8_der();
                if let Ok(k) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der) {
                    return Ok(Arc::new(Ecdsa::new(k, SignatureScheme::ECDSA_SECP256R1_SHA256)));
                }
                if let Ok(k) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, der) {
                    return Ok(Arc::new(Ecdsa::new(k, SignatureScheme::ECDSA_SECP384R1_SHA384)));
                }
                if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
                    return Ok(Arc::new(Ed25519(k)));
                }
                RsaKeyPair::from_pkcs8(der).map(rsa).map_err(|_| CryptoError)
            }
            PrivateKeyDer::Sec1(der) => {
                let der = der.secret_sec1_der();
                if let Ok(k) = EcdsaKeyPair::from_private_key_der(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der) {
                    return Ok(Arc::new(Ecdsa::new(k, SignatureScheme::ECDSA_SECP256R1_SHA256)));
                }
                EcdsaKeyPair::from_private_key_der(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, der)
                    .map(|k| Arc::new(Ecdsa::new(k, SignatureScheme::ECDSA_SECP384R1_SHA384)) as Arc<dyn SigningKey>)
                    .map_err(|_| CryptoError)
            }
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()).map(rsa).map_err(|_| CryptoError),
            _ => Err(CryptoError),
        }
    }

    fn rsa(k: RsaKeyPair) -> Arc<dyn SigningKey> {
        Arc::new(Rsa(k))
    }

    struct Ecdsa {
        key: EcdsaKeyPair,
        schemes: [SignatureScheme; 1],
    }

    impl Ecdsa {
        fn new(key: EcdsaKeyPair, scheme: SignatureScheme) -> Self {
            Self { key, schemes: [scheme] }
        }
    }

    impl core::fmt::Debug for Ecdsa {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("EcdsaSigningKey").field("scheme", &self.schemes[0]).finish_non_exhaustive()
        }
    }

    impl SigningKey for Ecdsa {
        fn key_type(&self) -> KeyType {
            KeyType::Ecdsa
        }

        fn schemes(&self) -> &[SignatureScheme] {
            &self.schemes
        }

        fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
            if scheme != self.schemes[0] {
                return Err(CryptoError);
            }
            let sig = self.key.sign(&SystemRandom::new(), message).map_err(|_| CryptoError)?;
            Ok(sig.as_ref().to_vec())
        }
    }

    struct Ed25519(Ed25519KeyPair);

    impl core::fmt::Debug for Ed25519 {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("Ed25519SigningKey").finish_non_exhaustive()
        }
    }

    impl SigningKey for Ed25519 {
        fn key_type(&self) -> KeyType {
            KeyType::Ed25519
        }

        fn schemes(&self) -> &[SignatureScheme] {
            &[SignatureScheme::ED25519]
        }

        fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
            if scheme != SignatureScheme::ED25519 {
                return Err(CryptoError);
            }
            Ok(self.0.sign(message).as_ref().to_vec())
        }
    }

    struct Rsa(RsaKeyPair);

    impl core::fmt::Debug for Rsa {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("RsaSigningKey").field("bits", &(self.0.public_modulus_len() * 8)).finish_non_exhaustive()
        }
    }

    impl SigningKey for Rsa {
        fn key_type(&self) -> KeyType {
            KeyType::Rsa
        }

        fn schemes(&self) -> &[SignatureScheme] {
            &[
                SignatureScheme::RSA_PSS_RSAE_SHA256,
                SignatureScheme::RSA_PSS_RSAE_SHA384,
                SignatureScheme::RSA_PKCS1_SHA256,
                SignatureScheme::RSA_PKCS1_SHA384,
            ]
        }

        fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
            let padding: &'static dyn signature::RsaEncoding = match scheme {
                SignatureScheme::RSA_PSS_RSAE_SHA256 => &signature::RSA_PSS_SHA256,
                SignatureScheme::RSA_PSS_RSAE_SHA384 => &signature::RSA_PSS_SHA384,
                SignatureScheme::RSA_PKCS1_SHA256 => &signature::RSA_PKCS1_SHA256,
                SignatureScheme::RSA_PKCS1_SHA384 => &signature::RSA_PKCS1_SHA384,
                _ => return Err(CryptoError),
            };
            let mut sig = vec![0; self.0.public_modulus_len()];
            self.0.sign(padding, &SystemRandom::new(), message, &mut sig).map_err(|_| CryptoError)?;
            Ok(sig)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_AEADS: [AeadAlgorithm; 5] = [
        AeadAlgorithm::Aes128Gcm,
        AeadAlgorithm::Aes256Gcm,
        AeadAlgorithm::ChaCha20Poly1305,
        AeadAlgorithm::Aes128Ccm,
        AeadAlgorithm::Aes128Ccm8,
    ];
    const ALL_GROUPS: [KxGroup; 3] = [KxGroup::X25519, KxGroup::Secp256r1, KxGroup::Secp384r1];

    fn unhex(s: &str) -> Vec<u8> {
        assert_eq!(s.len() % 2, 0, "odd hex length");
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
    }

    fn test_key(alg: AeadAlgorithm) -> Vec<u8> {
        (0..alg.key_len()).map(|i| i as u8).collect()
    }

    const NONCE: [u8; 12] = [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab];
    // A DTLS 1.2 AEAD additional_data (RFC 6347 §4.1.2.1, RFC 5246 §6.2.3.3): epoch 1, sequence
    // number 0, application_data, DTLS 1.2, length 28 (that of `PLAINTEXT`).
    const AAD: [u8; 13] = [0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x17, 0xfe, 0xfd, 0x00, 0x1c];
    const PLAINTEXT: &[u8] = b"dtls-proto aead known answer";

    /// Ciphertext || tag of `PLAINTEXT` under `test_key(alg)`, `NONCE` and `AAD`, computed
    /// independently with Python's `cryptography` package (AESGCM, ChaCha20Poly1305, AESCCM).
    fn known_answer(alg: AeadAlgorithm) -> Vec<u8> {
        unhex(match alg {
            AeadAlgorithm::Aes128Gcm => {
                "cef254c853f94165fe1795612373d44038804c7fed375cc1566714e90cc0f6af922e8ed6868751520a21f0a8"
            }
            AeadAlgorithm::Aes256Gcm => {
                "826c105e68bb70d0160aa7b2621ba4fe1bc23667fc972302ef7943f40148c120ef484d0aae9612256adb7cfb"
            }
            AeadAlgorithm::ChaCha20Poly1305 => {
                "68df142c6096b0c2d460d375999b99dbf630bcc82d4a01cdc7afbec34076fbe5dd4cc00adce69aff55f64b11"
            }
            AeadAlgorithm::Aes128Ccm => {
                "cac704a2884fb8eea6a9209cff51bdc3209940bedfabbb6efca0557e80d973503da60d59a412af1770605724"
            }
            AeadAlgorithm::Aes128Ccm8 => "cac704a2884fb8eea6a9209cff51bdc3209940bedfabbb6efca0557ea1afd81e03cdeaef",
        })
    }

    fn seal(key: &dyn AeadKey, nonce: &[u8; 12], aad: &[u8], pt: &[u8]) -> Vec<u8> {
        let mut buf = pt.to_vec();
        buf.resize(pt.len() + key.tag_len(), 0);
        key.seal_in_place(nonce, aad, &mut buf).expect("seal");
        buf
    }

    #[test]
    fn aead_known_answers() {
        let p = AwsLcProvider;
        for alg in ALL_AEADS {
            let key = p.aead_key(alg, &test_key(alg)).expect("key");
            assert_eq!(key.tag_len(), alg.tag_len(), "{alg:?}");
            let expected = known_answer(alg);
            let sealed = seal(&*key, &NONCE, &AAD, PLAINTEXT);
            assert_eq!(sealed, expected, "{alg:?} seal");
            let mut buf = expected.clone();
            key.open_in_place(&NONCE, &AAD, &mut buf).expect("open");
            assert_eq!(&buf[..PLAINTEXT.len()], PLAINTEXT, "{alg:?} open");
        }
    }

    #[test]
    fn aead_round_trip_various_lengths() {
        let p = AwsLcProvider;
        for alg in ALL_AEADS {
            let key = p.aead_key(alg, &test_key(alg)).expect("key");
            for len in [0usize, 1, 15, 16, 17, 63, 64, 65, 1024, 16384] {
                let pt: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let sealed = seal(&*key, &NONCE, &AAD, &pt);
                assert_eq!(sealed.len(), len + alg.tag_len());
                if len >= 16 {
                    assert_ne!(&sealed[..len], &pt[..], "{alg:?} len {len}: not encrypted");
                }
                let mut buf = sealed.clone();
                key.open_in_place(&NONCE, &AAD, &mut buf).expect("open");
                assert_eq!(&buf[..len], &pt[..], "{alg:?} len {len}");
                // Empty AAD is a different message.
                let mut buf = sealed;
                assert_eq!(key.open_in_place(&NONCE, &[], &mut buf), Err(CryptoError), "{alg:?} len {len}");
            }
        }
    }

    #[test]
    fn aead_detects_tampering() {
        let p = AwsLcProvider;
        for alg in ALL_AEADS {
            let key = p.aead_key(alg, &test_key(alg)).expect("key");
            let sealed = seal(&*key, &NONCE, &AAD, PLAINTEXT);
            // Every single-bit flip anywhere in ciphertext or tag is caught.
            for i in 0..sealed.len() {
                for bit in [0x01u8, 0x80] {
                    let mut buf = sealed.clone();
                    buf[i] ^= bit;
                    assert_eq!(key.open_in_place(&NONCE, &AAD, &mut buf), Err(CryptoError), "{alg:?} byte {i}");
                }
            }
            // Wrong AAD, wrong nonce, truncated, extended.
            for i in 0..AAD.len() {
                let mut aad = AAD;
                aad[i] ^= 0x01;
                let mut buf = sealed.clone();
                assert_eq!(key.open_in_place(&NONCE, &aad, &mut buf), Err(CryptoError), "{alg:?} aad {i}");
            }
            let mut nonce = NONCE;
            nonce[11] ^= 0x01;
            let mut buf = sealed.clone();
            assert_eq!(key.open_in_place(&nonce, &AAD, &mut buf), Err(CryptoError), "{alg:?} nonce");
            let mut buf = sealed[..sealed.len() - 1].to_vec();
            assert_eq!(key.open_in_place(&NONCE, &AAD, &mut buf), Err(CryptoError), "{alg:?} truncated");
            let mut buf = sealed.clone();
            buf.push(0);
            assert_eq!(key.open_in_place(&NONCE, &AAD, &mut buf), Err(CryptoError), "{alg:?} extended");
            // A different key of the same algorithm.
            let mut other = test_key(alg);
            other[0] ^= 0x01;
            let other = p.aead_key(alg, &other).expect("key");
            let mut buf = sealed.clone();
            assert_eq!(other.open_in_place(&NONCE, &AAD, &mut buf), Err(CryptoError), "{alg:?} other key");
            // The untouched record still opens.
            let mut buf = sealed;
            key.open_in_place(&NONCE, &AAD, &mut buf).expect("open");
        }
    }

    #[test]
    fn aead_rejects_buffers_shorter_than_the_tag() {
        let p = AwsLcProvider;
        for alg in ALL_AEADS {
            let key = p.aead_key(alg, &test_key(alg)).expect("key");
            for len in 0..alg.tag_len() {
                let mut buf = vec![0u8; len];
                assert_eq!(key.seal_in_place(&NONCE, &AAD, &mut buf), Err(CryptoError), "{alg:?} seal {len}");
                assert_eq!(key.open_in_place(&NONCE, &AAD, &mut buf), Err(CryptoError), "{alg:?} open {len}");
            }
            // Exactly a tag: an empty record.
            let mut buf = vec![0u8; alg.tag_len()];
            key.seal_in_place(&NONCE, &AAD, &mut buf).expect("seal empty");
            key.open_in_place(&NONCE, &AAD, &mut buf).expect("open empty");
        }
    }

    #[test]
    fn aead_rejects_wrong_key_lengths() {
        let p = AwsLcProvider;
        for alg in ALL_AEADS {
            for len in [0usize, 1, 15, 16, 17, 24, 31, 32, 33, 64] {
                if len == alg.key_len() {
                    continue;
                }
                assert!(p.aead_key(alg, &vec![0x42; len]).is_err(), "{alg:?} key of {len} bytes accepted");
            }
        }
    }

    #[test]
    fn aead_keys_do_not_leak_in_debug() {
        let key_bytes = [0xa5u8; 32];
        let aes_lc = AwsLcAeadKey {
            alg: AeadAlgorithm::Aes256Gcm,
            key: aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, &key_bytes).expect("key")),
        };
        let ccm = CcmKey::<U8>::new(AeadAlgorithm::Aes128Ccm8, &key_bytes[..16]).expect("key");
        // Exactly the algorithm, nothing else (0xa5 would show as "a5" or "165").
        assert_eq!(format!("{ccm:?}"), "CcmKey { alg: Aes128Ccm8, .. }");
        assert_eq!(format!("{aes_lc:?}"), "AwsLcAeadKey { alg: Aes256Gcm, .. }");
    }

    #[test]
    fn hash_and_hmac_split_input_like_one_part() {
        let p = AwsLcProvider;
        let data: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        for alg in [HashAlgorithm::Sha256, HashAlgorithm::Sha384] {
            let whole = p.hash(alg, &[&data]);
            assert_eq!(whole.as_bytes().len(), alg.output_len());
            assert_eq!(p.hash(alg, &[&data[..1], &[], &data[1..200], &data[200..]]).as_bytes(), whole.as_bytes());
            assert_ne!(p.hash(alg, &[&data[1..]]).as_bytes(), whole.as_bytes());

            let mac = p.hmac(alg, b"key", &[&data]);
            assert_eq!(mac.as_bytes().len(), alg.output_len());
            assert_eq!(p.hmac(alg, b"key", &[&data[..150], &data[150..]]).as_bytes(), mac.as_bytes());
            assert_ne!(p.hmac(alg, b"kex", &[&data]).as_bytes(), mac.as_bytes());
        }
        // SHA-256("abc") and SHA-384("abc"), FIPS 180-2 appendix B.1 / D.1.
        assert_eq!(
            p.hash(HashAlgorithm::Sha256, &[b"a", b"bc"]).as_bytes(),
            unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            p.hash(HashAlgorithm::Sha384, &[b"ab", b"c"]).as_bytes(),
            unhex("cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7")
        );
    }

    #[test]
    fn prf_fallback_matches_aws_lc() {
        let p = AwsLcProvider;
        let secret = unhex("9bbe436ba940f017b17652849a71db35");
        let seed = unhex("a0ba9f936cda311827a6f796ffd5198c");
        for alg in [HashAlgorithm::Sha256, HashAlgorithm::Sha384] {
            for len in [1usize, 12, 31, 32, 33, 47, 48, 49, 100, 200] {
                let mut from_lc = vec![0u8; len];
                p.prf(alg, &secret, b"test label", &seed, &mut from_lc).expect("prf");
                let mut from_hmac = vec![0u8; len];
                p_hash(alg, &secret, b"test label", &seed, &mut from_hmac);
                assert_eq!(from_lc, from_hmac, "{alg:?} len {len}");
            }
        }
    }

    #[test]
    fn prf_with_empty_secret_or_output() {
        let p = AwsLcProvider;
        // Computed independently with Python's hmac/hashlib: P_hash(b"", b"test label" || seed).
        let seed = unhex("a0ba9f936cda311827a6f796ffd5198c");
        let mut out = [0u8; 80];
        p.prf(HashAlgorithm::Sha256, &[], b"test label", &seed, &mut out).expect("prf");
        assert_eq!(
            out[..],
            unhex(
                "e9b8fa4ec6df21cd1ab1a7ef45af568d83f4ba1ef4cd5ee56d3078995b0bd586e472fbba58ba7e3c5931ad84a2145c7c\
                 2a0cf795cbe0384ea90fd22e938e765a4ef7bfe5386cb3a4cbfc684cccc62076"
            )[..]
        );
        let seed = unhex("cd665cf6a8447dd6ff8b27555edb7465");
        let mut out = [0u8; 100];
        p.prf(HashAlgorithm::Sha384, &[], b"test label", &seed, &mut out).expect("prf");
        assert_eq!(
            out[..],
            unhex(
                "f2abead7c06aec214888840ebfd16ab1805f47d54af089468b7924541333897efdd46001fe5723dba6551ced63b0a063\
                 f9a8bd8cf5d6e4f2a95e6d64c2ba1747553521ecdc1fedfffb8b3b5645a575f21dcb2f206a354bb6e3a6d44bea626401\
                 ab00d9d3"
            )[..]
        );
        // Zero bytes requested: nothing to do, and not an error.
        p.prf(HashAlgorithm::Sha256, b"secret", b"label", b"seed", &mut []).expect("empty output");
    }

    #[test]
    fn random_is_filled() {
        let p = AwsLcProvider;
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        p.fill_random(&mut a).expect("random");
        p.fill_random(&mut b).expect("random");
        assert_ne!(a, [0u8; 32]);
        assert_ne!(a, b);
        p.fill_random(&mut []).expect("empty");
    }

    #[test]
    fn key_exchange_agrees_for_every_group() {
        let p = AwsLcProvider;
        for group in ALL_GROUPS {
            assert!(p.supports_group(group));
            let a = p.start_key_exchange(group).expect("a");
            let b = p.start_key_exchange(group).expect("b");
            assert_eq!(a.group(), group);
            assert_eq!(a.public_key().len(), public_key_len(group), "{group:?}");
            if group != KxGroup::X25519 {
                assert_eq!(a.public_key()[0], 0x04, "{group:?} public key not uncompressed");
            }
            assert_ne!(a.public_key(), b.public_key());
            let a_pub = a.public_key().to_vec();
            let b_pub = b.public_key().to_vec();
            let s1 = a.complete(&b_pub).expect("a completes");
            let s2 = b.complete(&a_pub).expect("b completes");
            let expected_len = match group {
                KxGroup::X25519 | KxGroup::Secp256r1 => 32,
                KxGroup::Secp384r1 => 48,
            };
            assert_eq!(s1.as_bytes().len(), expected_len, "{group:?}");
            assert_eq!(s1.as_bytes(), s2.as_bytes(), "{group:?}");
        }
    }

    #[test]
    fn x25519_rfc7748_vector() {
        let p = AwsLcProvider;
        let alice = p
            .key_exchange_from_private_key(
                KxGroup::X25519,
                &unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
            )
            .expect("alice");
        assert_eq!(alice.public_key(), unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));
        let shared = alice
            .complete(&unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
            .expect("complete");
        assert_eq!(shared.as_bytes(), unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"));
    }

    #[test]
    fn x25519_rejects_low_order_points_and_bad_lengths() {
        let p = AwsLcProvider;
        // u = 0 and u = 1 are of small order: the shared secret would be all zeros.
        let mut one = [0u8; 32];
        one[0] = 1;
        for peer in [[0u8; 32], one] {
            let kx = p.start_key_exchange(KxGroup::X25519).expect("kx");
            assert!(kx.complete(&peer).is_err());
        }
        let good_peer = p.start_key_exchange(KxGroup::X25519).expect("peer").public_key().to_vec();
        for len in [0usize, 1, 31, 33, 44, 65] {
            let mut peer = good_peer.clone();
            peer.resize(len, 0x09);
            let kx = p.start_key_exchange(KxGroup::X25519).expect("kx");
            assert!(kx.complete(&peer).is_err(), "{len}-byte X25519 key accepted");
        }
    }

    #[test]
    fn nist_curves_accept_only_valid_uncompressed_points() {
        let p = AwsLcProvider;
        // The P-256 base point (SEC 2 §2.4.2), uncompressed.
        let g = unhex(
            "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296\
             4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
        );
        let kx = p.start_key_exchange(KxGroup::Secp256r1).expect("kx");
        assert!(kx.complete(&g).is_ok(), "the base point is a valid peer key");

        let mut off_curve = g.clone();
        off_curve[64] ^= 0x01;
        let mut compressed = vec![0x03]; // y of G is odd.
        compressed.extend_from_slice(&g[1..33]);
        let mut hybrid = g.clone();
        hybrid[0] = 0x07;
        let mut no_prefix = g[1..].to_vec();
        no_prefix.push(0);
        let identity = vec![0x00];
        let mut zeros = vec![0u8; 65];
        zeros[0] = 0x04;
        for (what, peer) in [
            ("off-curve", off_curve),
            ("compressed", compressed),
            ("hybrid", hybrid),
            ("no prefix", no_prefix),
            ("identity", identity),
            ("(0, 0)", zeros),
            ("truncated", g[..64].to_vec()),
            ("empty", Vec::new()),
        ] {
            let kx = p.start_key_exchange(KxGroup::Secp256r1).expect("kx");
            assert!(kx.complete(&peer).is_err(), "P-256 {what} point accepted");
        }

        // A P-384 key pair rejects a P-256 point and vice versa.
        let p384 = p.start_key_exchange(KxGroup::Secp384r1).expect("kx");
        assert!(p384.complete(&g).is_err());
        let p384_pub = p.start_key_exchange(KxGroup::Secp384r1).expect("kx").public_key().to_vec();
        let p256 = p.start_key_exchange(KxGroup::Secp256r1).expect("kx");
        assert!(p256.complete(&p384_pub).is_err());

        // A DER SubjectPublicKeyInfo, which aws-lc-rs would parse, is not a TLS encoding.
        let kx = p.start_key_exchange(KxGroup::Secp256r1).expect("kx");
        let mut spki = unhex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
        spki.extend_from_slice(&g);
        assert!(kx.complete(&spki).is_err(), "SPKI accepted");
    }

    #[test]
    fn imported_private_keys_are_validated() {
        let p = AwsLcProvider;
        assert!(p.key_exchange_from_private_key(KxGroup::Secp256r1, &[0u8; 32]).is_err(), "zero scalar");
        assert!(p.key_exchange_from_private_key(KxGroup::Secp256r1, &[1u8; 31]).is_err(), "short");
        assert!(p.key_exchange_from_private_key(KxGroup::Secp384r1, &[1u8; 32]).is_err(), "short");
        assert!(p.key_exchange_from_private_key(KxGroup::X25519, &[1u8; 31]).is_err(), "short");
        // The group order n and anything above it are not private keys.
        let n = unhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
        assert!(p.key_exchange_from_private_key(KxGroup::Secp256r1, &n).is_err(), "scalar n");
        assert!(p.key_exchange_from_private_key(KxGroup::Secp256r1, &[0xff; 32]).is_err(), "scalar 2^256 - 1");
        // n - 1 is the largest valid scalar.
        let mut n_minus_1 = n.clone();
        n_minus_1[31] -= 1;
        p.key_exchange_from_private_key(KxGroup::Secp256r1, &n_minus_1).expect("scalar n - 1");
        // Scalar 1 gives the base point.
        let mut one = [0u8; 32];
        one[31] = 1;
        let kx = p.key_exchange_from_private_key(KxGroup::Secp256r1, &one).expect("scalar 1");
        assert_eq!(
            kx.public_key(),
            unhex(
                "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296\
                 4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
            )
        );
    }

    #[test]
    fn key_exchange_does_not_leak_private_key_in_debug() {
        let p = AwsLcProvider;
        let private = [0x5au8; 32];
        let kx = AwsLcKeyExchange::new(
            KxGroup::X25519,
            agreement::PrivateKey::from_private_key(&agreement::X25519, &private).expect("key"),
        )
        .expect("kx");
        let text = format!("{kx:?}");
        assert_eq!(text, "AwsLcKeyExchange { group: X25519, .. }");
        let boxed = p.key_exchange_from_private_key(KxGroup::X25519, &private).expect("kx");
        let secret = boxed.complete(kx.public_key()).expect("complete");
        assert_eq!(format!("{secret:?}"), "SharedSecret(..)");
    }
}
