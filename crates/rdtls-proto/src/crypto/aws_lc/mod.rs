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
//! | X25519MLKEM768, SecP256r1MLKEM768 | `aws_lc_rs::kem::ML_KEM_768` with `agreement` |
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
    ct_eq, AcceptedKeyExchange, ActiveKeyExchange, AeadAlgorithm, AeadKey, CryptoError, CryptoProvider, Digest,
    HashAlgorithm, KxGroup, MaskAlgorithm, MaskKey, RunningHash, SharedSecret, SigningKey,
};

mod hybrid;
mod tls13;

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
        let alg = agreement_algorithm(group)?;
        let key = agreement::PrivateKey::from_private_key(alg, private_key).map_err(|_| CryptoError)?;
        Ok(Box::new(AwsLcKeyExchange::new(group, key)?))
    }

    /// Builds the client's side of a hybrid group ([`KxGroup::is_hybrid`]) from known keys:
    /// an expanded ML-KEM-768 decapsulation key (2,400 bytes, FIPS 203 `dk`) and the curve's
    /// private key (as for [`key_exchange_from_private_key`](Self::key_exchange_from_private_key)).
    /// For known-answer tests only, like that one.
    pub fn hybrid_key_exchange_from_private_keys(
        &self,
        group: KxGroup,
        kem_key: &[u8],
        curve_key: &[u8],
    ) -> Result<Box<dyn ActiveKeyExchange>, CryptoError> {
        Ok(Box::new(hybrid::HybridKeyExchange::from_private_keys(group, kem_key, curve_key)?))
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
        if group.is_hybrid() {
            return Ok(Box::new(hybrid::HybridKeyExchange::generate(group)?));
        }
        let alg = agreement_algorithm(group)?;
        // `EphemeralPrivateKey::generate` is exactly `PrivateKey::generate` behind a wrapper that
        // only `agree_ephemeral` can consume. We use `PrivateKey` so that generated keys and
        // `key_exchange_from_private_key` share one code path; single use is enforced instead by
        // `ActiveKeyExchange::complete` taking `self: Box<Self>`.
        let key = agreement::PrivateKey::generate(alg).map_err(|_| CryptoError)?;
        Ok(Box::new(AwsLcKeyExchange::new(group, key)?))
    }

    fn accept_key_exchange(&self, group: KxGroup, peer_share: &[u8]) -> Result<AcceptedKeyExchange, CryptoError> {
        if group.is_hybrid() {
            return hybrid::accept(group, peer_share);
        }
        super::accept_with_key_pair(self.start_key_exchange(group)?, peer_share)
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

    fn start_hash(&self, alg: HashAlgorithm) -> Box<dyn RunningHash> {
        Box::new(tls13::AwsLcHash::new(digest_algorithm(alg), alg))
    }

    fn hkdf_extract(&self, alg: HashAlgorithm, salt: &[u8], ikm: &[u8]) -> Digest {
        // HKDF-Extract is HMAC keyed with the salt (RFC 5869 §2.2); aws-lc-rs keeps its own
        // extract output opaque, and the key schedule needs the bytes.
        self.hmac(alg, salt, &[ikm])
    }

    fn hkdf_expand(&self, alg: HashAlgorithm, prk: &[u8], info: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        tls13::hkdf_expand(alg, prk, info, out)
    }

    fn mask_key(&self, alg: MaskAlgorithm, key: &[u8]) -> Result<Box<dyn MaskKey>, CryptoError> {
        tls13::AwsLcMaskKey::new(alg, key).map(|k| Box::new(k) as Box<dyn MaskKey>)
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
        matches!(
            group,
            KxGroup::X25519
                | KxGroup::Secp256r1
                | KxGroup::Secp384r1
                | KxGroup::X25519MlKem768
                | KxGroup::Secp256r1MlKem768
        )
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

/// The curve of an elliptic-curve group (a hybrid group is not one).
fn agreement_algorithm(group: KxGroup) -> Result<&'static agreement::Algorithm, CryptoError> {
    match group {
        KxGroup::X25519 => Ok(&agreement::X25519),
        KxGroup::Secp256r1 => Ok(&agreement::ECDH_P256),
        KxGroup::Secp384r1 => Ok(&agreement::ECDH_P384),
        KxGroup::X25519MlKem768 | KxGroup::Secp256r1MlKem768 => Err(CryptoError),
    }
}

/// The exact length of a public key of `group` as sent on the wire: 32 bytes for X25519, an
/// uncompressed point (`0x04 || x || y`) for the NIST curves.
/// A hybrid group is not a curve: no curve key has its length.
const fn public_key_len(group: KxGroup) -> usize {
    match group {
        KxGroup::X25519 => 32,
        KxGroup::Secp256r1 => 1 + 2 * 32,
        KxGroup::Secp384r1 => 1 + 2 * 48,
        KxGroup::X25519MlKem768 | KxGroup::Secp256r1MlKem768 => usize::MAX,
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
        KxGroup::X25519MlKem768 | KxGroup::Secp256r1MlKem768 => false,
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
        let peer = agreement::UnparsedPublicKey::new(agreement_algorithm(self.group)?, peer_public_key);
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
mod tests;
