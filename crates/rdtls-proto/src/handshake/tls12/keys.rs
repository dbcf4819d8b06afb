//! The TLS 1.2 key schedule (RFC 5246 §8.1, §6.3, §7.4.9; RFC 7627; RFC 4279; RFC 5489).

use zeroize::Zeroizing;

use crate::crypto::{CryptoError, CryptoProvider};
use crate::suites::CipherSuite;

/// Length of the master secret.
pub(crate) const MASTER_SECRET_LEN: usize = 48;
/// Length of Finished.verify_data.
pub(crate) const VERIFY_DATA_LEN: usize = 12;

/// The premaster secret for a PSK key exchange: `other_secret` (the ECDHE result, or `N` zero
/// bytes for plain PSK, RFC 4279 §2) and the PSK, each with a two-byte length (RFC 5489 §2).
pub(crate) fn psk_premaster(other: Option<&[u8]>, psk: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut pms = Zeroizing::new(Vec::with_capacity(4 + 2 * psk.len() + other.map_or(0, <[u8]>::len)));
    match other {
        Some(z) => {
            pms.extend_from_slice(&(z.len() as u16).to_be_bytes());
            pms.extend_from_slice(z);
        }
        None => {
            pms.extend_from_slice(&(psk.len() as u16).to_be_bytes());
            pms.resize(2 + psk.len(), 0);
        }
    }
    pms.extend_from_slice(&(psk.len() as u16).to_be_bytes());
    pms.extend_from_slice(psk);
    pms
}

/// How the master secret is bound to the session.
pub(crate) enum MasterSecretSeed<'a> {
    /// RFC 7627: the hash of the transcript through ClientKeyExchange.
    Extended { session_hash: &'a [u8] },
    /// RFC 5246: the two hello randoms.
    Randoms { client: &'a [u8; 32], server: &'a [u8; 32] },
}

pub(crate) fn master_secret(
    provider: &dyn CryptoProvider,
    suite: &CipherSuite,
    premaster: &[u8],
    seed: MasterSecretSeed<'_>,
) -> Result<Zeroizing<[u8; MASTER_SECRET_LEN]>, CryptoError> {
    let mut ms = Zeroizing::new([0u8; MASTER_SECRET_LEN]);
    match seed {
        MasterSecretSeed::Extended { session_hash } => {
            provider.prf(suite.hash, premaster, b"extended master secret", session_hash, &mut ms[..])?;
        }
        MasterSecretSeed::Randoms { client, server } => {
            let mut s = [0u8; 64];
            s[..32].copy_from_slice(client);
            s[32..].copy_from_slice(server);
            provider.prf(suite.hash, premaster, b"master secret", &s, &mut ms[..])?;
        }
    }
    Ok(ms)
}

/// The record keys of both directions, cut from the key block (RFC 5246 §6.3; AEAD suites have
/// no MAC keys).
pub(crate) struct KeyBlock {
    block: Zeroizing<[u8; 2 * (32 + 12)]>,
    key_len: usize,
    iv_len: usize,
}

impl KeyBlock {
    pub(crate) fn derive(
        provider: &dyn CryptoProvider,
        suite: &CipherSuite,
        master: &[u8; MASTER_SECRET_LEN],
        client_random: &[u8; 32],
        server_random: &[u8; 32],
    ) -> Result<Self, CryptoError> {
        let key_len = suite.aead.key_len();
        let iv_len = suite.fixed_iv_len();
        let mut seed = [0u8; 64];
        seed[..32].copy_from_slice(server_random);
        seed[32..].copy_from_slice(client_random);
        let mut block = Zeroizing::new([0u8; 2 * (32 + 12)]);
        provider.prf(suite.hash, master, b"key expansion", &seed, &mut block[..2 * (key_len + iv_len)])?;
        Ok(Self { block, key_len, iv_len })
    }

    pub(crate) fn client_key(&self) -> &[u8] {
        &self.block[..self.key_len]
    }

    pub(crate) fn server_key(&self) -> &[u8] {
        &self.block[self.key_len..2 * self.key_len]
    }

    pub(crate) fn client_iv(&self) -> &[u8] {
        &self.block[2 * self.key_len..2 * self.key_len + self.iv_len]
    }

    pub(crate) fn server_iv(&self) -> &[u8] {
        &self.block[2 * self.key_len + self.iv_len..2 * (self.key_len + self.iv_len)]
    }
}

/// Finished.verify_data (RFC 5246 §7.4.9), from the hash of the transcript so far.
pub(crate) fn verify_data(
    provider: &dyn CryptoProvider,
    suite: &CipherSuite,
    master: &[u8; MASTER_SECRET_LEN],
    client: bool,
    transcript_hash: Option<crate::crypto::Digest>,
) -> Result<[u8; VERIFY_DATA_LEN], CryptoError> {
    let label: &[u8] = if client { b"client finished" } else { b"server finished" };
    let hash = transcript_hash.ok_or(CryptoError)?;
    let mut out = [0u8; VERIFY_DATA_LEN];
    provider.prf(suite.hash, master, label, hash.as_bytes(), &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_psk_premaster_layout() {
        let pms = psk_premaster(None, &[0xaa, 0xbb]);
        assert_eq!(&pms[..], &[0, 2, 0, 0, 0, 2, 0xaa, 0xbb]);
    }

    #[test]
    fn ecdhe_psk_premaster_layout() {
        let pms = psk_premaster(Some(&[1, 2, 3]), &[0xaa]);
        assert_eq!(&pms[..], &[0, 3, 1, 2, 3, 0, 1, 0xaa]);
    }
}
