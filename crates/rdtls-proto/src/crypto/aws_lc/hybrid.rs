//! The post-quantum hybrid groups: ML-KEM-768 (`aws_lc_rs::kem`) beside an elliptic curve
//! (`aws_lc_rs::agreement`), as draft-ietf-tls-ecdhe-mlkem lays them out.
//!
//! | group | client share | server share | secret |
//! | --- | --- | --- | --- |
//! | X25519MLKEM768 | ek (1,184) ‖ X25519 (32) | ct (1,088) ‖ X25519 (32) | ML-KEM (32) ‖ X25519 (32) |
//! | SecP256r1MLKEM768 | P-256 (65) ‖ ek (1,184) | P-256 (65) ‖ ct (1,088) | ECDH (32) ‖ ML-KEM (32) |
//!
//! Both halves are always computed, and each keeps its own checks (the curve's point
//! validation; ML-KEM's encapsulation-key check). A ciphertext that does not decapsulate gives
//! ML-KEM's implicit-rejection secret rather than an error, so a forged server share fails the
//! handshake at its Finished message, as a wrong curve key does.

use core::fmt;

use aws_lc_rs::agreement;
use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, EncapsulationKey, ML_KEM_768};

use super::{public_key_len, AwsLcKeyExchange};
use crate::crypto::{AcceptedKeyExchange, ActiveKeyExchange, CryptoError, KxGroup, SharedSecret};

/// An ML-KEM-768 encapsulation key (FIPS 203).
pub(super) const EK_LEN: usize = 1184;
/// An ML-KEM-768 ciphertext.
pub(super) const CT_LEN: usize = 1088;
/// An ML-KEM-768 shared secret.
const SS_LEN: usize = 32;

/// How a hybrid group is made: its curve, and whether the ML-KEM part comes first.
fn layout(group: KxGroup) -> Result<(KxGroup, bool), CryptoError> {
    match group {
        KxGroup::X25519MlKem768 => Ok((KxGroup::X25519, true)),
        KxGroup::Secp256r1MlKem768 => Ok((KxGroup::Secp256r1, false)),
        _ => Err(CryptoError),
    }
}

/// Splits `share` into its ML-KEM part of `kem_len` bytes and its curve part, or fails if its
/// length is not exactly theirs together.
fn split(share: &[u8], kem_len: usize, curve: KxGroup, kem_first: bool) -> Result<(&[u8], &[u8]), CryptoError> {
    let curve_len = public_key_len(curve);
    if share.len() != kem_len + curve_len {
        return Err(CryptoError);
    }
    Ok(match kem_first {
        true => share.split_at(kem_len),
        false => {
            let (curve_part, kem) = share.split_at(curve_len);
            (kem, curve_part)
        }
    })
}

/// `first ‖ second` in the group's order, into memory that is wiped on drop (no reallocation
/// leaves a copy behind).
fn join(kem_first: bool, kem: &[u8], curve: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(kem.len() + curve.len());
    let (a, b) = if kem_first { (kem, curve) } else { (curve, kem) };
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out
}

/// The client's side of a hybrid group: an ML-KEM decapsulation key and a curve key pair.
pub(super) struct HybridKeyExchange {
    group: KxGroup,
    kem_first: bool,
    kem: DecapsulationKey,
    curve: AwsLcKeyExchange,
    public_key: Vec<u8>,
}

impl HybridKeyExchange {
    /// Fresh keys for `group`.
    pub(super) fn generate(group: KxGroup) -> Result<Self, CryptoError> {
        let (curve, _) = layout(group)?;
        let kem = DecapsulationKey::generate(&ML_KEM_768).map_err(|_| CryptoError)?;
        let ek = kem.encapsulation_key().and_then(|ek| ek.key_bytes()).map_err(|_| CryptoError)?;
        let curve_key = agreement::PrivateKey::generate(super::agreement_algorithm(curve)?).map_err(|_| CryptoError)?;
        Self::new(group, kem, ek.as_ref(), AwsLcKeyExchange::new(curve, curve_key)?)
    }

    /// Known keys (for known-answer tests): an expanded ML-KEM-768 decapsulation key (2,400
    /// bytes, FIPS 203 `dk = dk_pke ‖ ek ‖ H(ek) ‖ z`, which holds the encapsulation key) and
    /// the curve's private key.
    pub(super) fn from_private_keys(group: KxGroup, kem_key: &[u8], curve_key: &[u8]) -> Result<Self, CryptoError> {
        const DK_PKE_LEN: usize = 1152;
        let (curve, _) = layout(group)?;
        let kem = DecapsulationKey::new(&ML_KEM_768, kem_key).map_err(|_| CryptoError)?;
        let ek = kem_key.get(DK_PKE_LEN..DK_PKE_LEN + EK_LEN).ok_or(CryptoError)?;
        let curve_key = agreement::PrivateKey::from_private_key(super::agreement_algorithm(curve)?, curve_key)
            .map_err(|_| CryptoError)?;
        Self::new(group, kem, ek, AwsLcKeyExchange::new(curve, curve_key)?)
    }

    fn new(group: KxGroup, kem: DecapsulationKey, ek: &[u8], curve: AwsLcKeyExchange) -> Result<Self, CryptoError> {
        let (_, kem_first) = layout(group)?;
        if ek.len() != EK_LEN {
            return Err(CryptoError);
        }
        let public_key = join(kem_first, ek, curve.public_key());
        Ok(Self { group, kem_first, kem, curve, public_key })
    }
}

impl ActiveKeyExchange for HybridKeyExchange {
    fn group(&self) -> KxGroup {
        self.group
    }

    fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, CryptoError> {
        let Self { kem_first, kem, curve, .. } = *self;
        let (ct, curve_peer) = split(peer, CT_LEN, curve.group, kem_first)?;
        let kem_secret = kem.decapsulate(Ciphertext::from(ct)).map_err(|_| CryptoError)?;
        let curve_secret = Box::new(curve).complete(curve_peer)?;
        if kem_secret.as_ref().len() != SS_LEN {
            return Err(CryptoError);
        }
        Ok(SharedSecret::new(join(kem_first, kem_secret.as_ref(), curve_secret.as_bytes())))
    }
}

impl fmt::Debug for HybridKeyExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HybridKeyExchange").field("group", &self.group).finish_non_exhaustive()
    }
}

/// The server's side: encapsulates to the client's ML-KEM key and completes the curve
/// exchange with a fresh key pair.
pub(super) fn accept(group: KxGroup, peer: &[u8]) -> Result<AcceptedKeyExchange, CryptoError> {
    let (curve, kem_first) = layout(group)?;
    let (ek, curve_peer) = split(peer, EK_LEN, curve, kem_first)?;
    // `EncapsulationKey::new` checks the length; encapsulation runs FIPS 203's modulus check
    // on the key and fails on a key whose coefficients are not reduced.
    let ek = EncapsulationKey::new(&ML_KEM_768, ek).map_err(|_| CryptoError)?;
    let (ct, kem_secret) = ek.encapsulate().map_err(|_| CryptoError)?;
    let curve_key = agreement::PrivateKey::generate(super::agreement_algorithm(curve)?).map_err(|_| CryptoError)?;
    let ours = AwsLcKeyExchange::new(curve, curve_key)?;
    let public_key = join(kem_first, ct.as_ref(), ours.public_key());
    let curve_secret = Box::new(ours).complete(curve_peer)?;
    if ct.as_ref().len() != CT_LEN || kem_secret.as_ref().len() != SS_LEN {
        return Err(CryptoError);
    }
    Ok(AcceptedKeyExchange {
        public_key,
        secret: SharedSecret::new(join(kem_first, kem_secret.as_ref(), curve_secret.as_bytes())),
    })
}
