//! Session tickets (RFC 5077 for DTLS 1.2): the session sealed with AES-256-GCM under a key of
//! the current period, so that the server keeps nothing.
//!
//! The key of period `p` (the Unix time divided by the period) is derived from a secret:
//! `HKDF-Expand(HKDF-Extract("rdtls ticket keys", secret), "ticket key" || p, 32)` with
//! SHA-256. Servers that share the secret (and roughly the time) share the keys: a ticket from
//! one opens on another. A ticket opens under the key of its period or of the one before, so
//! keys rotate every period and the previous key stays valid one period more.
//!
//! ```text
//! ticket = period (u64) || nonce (12) || AES-256-GCM(session, additional data = period)
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::crypto::{AeadAlgorithm, AeadKey, CryptoProvider, HashAlgorithm};
use crate::error::Error;

const SALT: &[u8] = b"rdtls ticket keys";
const PERIOD_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Longest ticket opened: a session of [`MAX_SESSION_LEN`](super::MAX_SESSION_LEN) bytes,
/// sealed. Longer ones are refused before any decryption.
pub(crate) const MAX_TICKET_LEN: usize = PERIOD_LEN + NONCE_LEN + super::MAX_SESSION_LEN + TAG_LEN;

/// Shortest rotation period accepted.
pub const MIN_TICKET_KEY_PERIOD: Duration = Duration::from_secs(60);

/// Default rotation period: a new key every hour.
pub const DEFAULT_TICKET_KEY_PERIOD: Duration = Duration::from_secs(3600);

/// The keys that seal and open session tickets, derived from one secret and rotating every
/// period. Share one between configurations with
/// [`ConfigBuilder::ticket_keys`](crate::ConfigBuilder::ticket_keys); give the same secret to
/// servers in other processes or on other machines to let a session resume on any of them.
pub struct TicketKeys {
    /// `HKDF-Extract(SALT, secret)`.
    prk: Zeroizing<Vec<u8>>,
    period: u64,
    /// The keys of the last periods used, newest last.
    keys: Mutex<Vec<(u64, Arc<dyn AeadKey>)>>,
}

impl core::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TicketKeys").field("period", &self.period).finish_non_exhaustive()
    }
}

impl TicketKeys {
    /// Keys derived from `secret` (at least 16 bytes; 32 random bytes are best), rotating
    /// every `period` (at least a minute). Servers given the same secret and period share
    /// their keys.
    pub fn from_secret(provider: &dyn CryptoProvider, secret: &[u8], period: Duration) -> Result<Self, Error> {
        if secret.len() < 16 {
            return Err(Error::Config("a ticket key secret needs at least 16 bytes"));
        }
        if period < MIN_TICKET_KEY_PERIOD {
            return Err(Error::Config("the ticket key period is at least a minute"));
        }
        let prk = provider.hkdf_extract(HashAlgorithm::Sha256, SALT, secret);
        Ok(Self {
            prk: Zeroizing::new(prk.as_bytes().to_vec()),
            period: period.as_secs(),
            keys: Mutex::new(Vec::new()),
        })
    }

    /// Keys from a random secret of this process alone.
    pub fn random(provider: &dyn CryptoProvider, period: Duration) -> Result<Self, Error> {
        let mut secret = Zeroizing::new([0u8; 32]);
        provider.fill_random(&mut secret[..])?;
        Self::from_secret(provider, &secret[..], period)
    }

    /// The rotation period.
    pub fn period(&self) -> Duration {
        Duration::from_secs(self.period)
    }

    /// The key of period `p`, derived once.
    fn key(&self, provider: &dyn CryptoProvider, p: u64) -> Result<Arc<dyn AeadKey>, Error> {
        let mut keys = self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, key)) = keys.iter().find(|(q, _)| *q == p) {
            return Ok(key.clone());
        }
        let mut info = [0u8; 18];
        info[..10].copy_from_slice(b"ticket key");
        info[10..].copy_from_slice(&p.to_be_bytes());
        let mut raw = Zeroizing::new([0u8; 32]);
        provider.hkdf_expand(HashAlgorithm::Sha256, &self.prk, &info, &mut raw[..])?;
        let key: Arc<dyn AeadKey> = Arc::from(provider.aead_key(AeadAlgorithm::Aes256Gcm, &raw[..])?);
        keys.push((p, key.clone()));
        // The current and previous periods are all that open; keep one more for a clock
        // that moves back a little.
        if keys.len() > 3 {
            keys.sort_by_key(|(q, _)| *q);
            keys.remove(0);
        }
        Ok(key)
    }

    /// Seals `plaintext` (an encoded session) at `now` (seconds since the Unix epoch).
    pub(crate) fn seal(&self, provider: &dyn CryptoProvider, now: u64, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let p = now / self.period;
        let key = self.key(provider, p)?;
        let mut ticket = Vec::with_capacity(PERIOD_LEN + NONCE_LEN + plaintext.len() + TAG_LEN);
        ticket.extend_from_slice(&p.to_be_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        provider.fill_random(&mut nonce)?;
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(plaintext);
        ticket.resize(ticket.len() + TAG_LEN, 0);
        let (head, body) = ticket.split_at_mut(PERIOD_LEN + NONCE_LEN);
        if let Err(e) = key.seal_in_place(&nonce, &head[..PERIOD_LEN], body) {
            // Not sealed: the session's secret is still in there.
            zeroize::Zeroize::zeroize(&mut ticket);
            return Err(e.into());
        }
        Ok(ticket)
    }

    /// Opens a ticket at `now`: the sealed session, if the ticket is ours, of this period or
    /// the one before, and untouched.
    pub(crate) fn open(&self, provider: &dyn CryptoProvider, now: u64, ticket: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if ticket.len() < PERIOD_LEN + NONCE_LEN + TAG_LEN || ticket.len() > MAX_TICKET_LEN {
            return None;
        }
        let (period, rest) = ticket.split_at(PERIOD_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let p = u64::from_be_bytes(period.try_into().ok()?);
        let current = now / self.period;
        if p != current && p.checked_add(1) != Some(current) {
            return None;
        }
        let key = self.key(provider, p).ok()?;
        let mut body = Zeroizing::new(sealed.to_vec());
        key.open_in_place(nonce.try_into().ok()?, period, &mut body).ok()?;
        let len = body.len() - TAG_LEN;
        body.truncate(len);
        Some(body)
    }
}
