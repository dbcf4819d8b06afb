//! The crypto provider interface.
//!
//! The protocol core never calls a cryptographic library directly: everything goes through a
//! [`CryptoProvider`], chosen per configuration. The default provider ([`default_provider`],
//! feature `aws-lc-rs`) uses `aws-lc-rs` for AES-GCM, ChaCha20-Poly1305, ECDH, hashing (one-shot
//! and running, forkable), HMAC, the TLS 1.2 PRF, HKDF and the DTLS 1.3 record-number masks,
//! and RustCrypto `ccm` + `aes` for AES-CCM. [`hkdf_expand_label`] builds the TLS 1.3 key
//! schedule's derivation on the provider's HKDF.
//!
//! Keys for record protection are built once per epoch ([`CryptoProvider::aead_key`]) and then
//! used in place, with no allocation per record.

use core::fmt;
use std::sync::Arc;

#[cfg(feature = "aws-lc-rs")]
pub mod aws_lc;

/// A hash function used by a cipher suite's PRF and transcript hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
}

impl HashAlgorithm {
    /// Output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
        }
    }
}

/// An AEAD algorithm for record protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AeadAlgorithm {
    /// AES-128-GCM (RFC 5288).
    Aes128Gcm,
    /// AES-256-GCM (RFC 5288).
    Aes256Gcm,
    /// ChaCha20-Poly1305 (RFC 7905).
    ChaCha20Poly1305,
    /// AES-128-CCM with a 16-byte tag (RFC 6655).
    Aes128Ccm,
    /// AES-128-CCM with an 8-byte tag (RFC 6655).
    Aes128Ccm8,
}

impl AeadAlgorithm {
    /// Key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Self::Aes128Gcm | Self::Aes128Ccm | Self::Aes128Ccm8 => 16,
            Self::Aes256Gcm | Self::ChaCha20Poly1305 => 32,
        }
    }

    /// Authentication tag length in bytes.
    pub const fn tag_len(self) -> usize {
        match self {
            Self::Aes128Ccm8 => 8,
            _ => 16,
        }
    }
}

/// A group for ephemeral key exchange (the TLS `NamedGroup` registry): an elliptic curve, or a
/// post-quantum hybrid of one with ML-KEM-768.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KxGroup {
    /// X25519 (RFC 7748), code point 29.
    X25519,
    /// NIST P-256 (secp256r1), code point 23.
    Secp256r1,
    /// NIST P-384 (secp384r1), code point 24.
    Secp384r1,
    /// X25519MLKEM768, code point 0x11EC: ML-KEM-768 (FIPS 203) and X25519 together, so the
    /// secret holds if either holds (draft-ietf-tls-ecdhe-mlkem). The client's share is the
    /// ML-KEM encapsulation key (1,184 bytes) then its X25519 key (32); the server's is the
    /// ciphertext (1,088) then its X25519 key; the secret is the ML-KEM secret then the X25519
    /// secret (64 bytes). DTLS 1.3 only.
    X25519MlKem768,
    /// SecP256r1MLKEM768, code point 0x11EB: P-256 ECDH and ML-KEM-768, with the P-256 part
    /// first in both shares and in the secret (65 + 1,184 bytes from the client, 65 + 1,088 from
    /// the server, a 64-byte secret). DTLS 1.3 only.
    Secp256r1MlKem768,
}

impl KxGroup {
    /// Every group this crate knows, in the default order of preference.
    pub const ALL: [Self; 5] =
        [Self::X25519MlKem768, Self::X25519, Self::Secp256r1, Self::Secp384r1, Self::Secp256r1MlKem768];

    /// The IANA `NamedGroup` code point.
    pub const fn code_point(self) -> u16 {
        match self {
            Self::X25519 => 29,
            Self::Secp256r1 => 23,
            Self::Secp384r1 => 24,
            Self::X25519MlKem768 => 0x11EC,
            Self::Secp256r1MlKem768 => 0x11EB,
        }
    }

    /// The group with this code point, if we know it.
    pub const fn from_code_point(v: u16) -> Option<Self> {
        match v {
            29 => Some(Self::X25519),
            23 => Some(Self::Secp256r1),
            24 => Some(Self::Secp384r1),
            0x11EC => Some(Self::X25519MlKem768),
            0x11EB => Some(Self::Secp256r1MlKem768),
            _ => None,
        }
    }

    /// The group's name in the IANA registry (`x25519`, `secp256r1`, `X25519MLKEM768`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::X25519 => "x25519",
            Self::Secp256r1 => "secp256r1",
            Self::Secp384r1 => "secp384r1",
            Self::X25519MlKem768 => "X25519MLKEM768",
            Self::Secp256r1MlKem768 => "SecP256r1MLKEM768",
        }
    }

    /// Whether the group includes a key encapsulation mechanism (ML-KEM): the server's share
    /// is a ciphertext made for the client's key rather than a key of its own
    /// ([`CryptoProvider::accept_key_exchange`]). Such groups exist only in DTLS 1.3: a
    /// DTLS 1.2 handshake never offers or picks one.
    pub const fn is_hybrid(self) -> bool {
        matches!(self, Self::X25519MlKem768 | Self::Secp256r1MlKem768)
    }
}

impl fmt::Display for KxGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A group name no [`KxGroup`] has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownGroup(pub String);

impl fmt::Display for UnknownGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown group `{}` (known: ", self.0)?;
        for (i, g) in KxGroup::ALL.iter().enumerate() {
            write!(f, "{}{}", if i > 0 { ", " } else { "" }, g.name())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownGroup {}

impl core::str::FromStr for KxGroup {
    type Err = UnknownGroup;

    /// A group by its registry name, in any case; `P-256` and `P-384` are taken too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let found = Self::ALL.into_iter().find(|g| g.name().eq_ignore_ascii_case(s));
        found
            .or(match s.to_ascii_lowercase().as_str() {
                "p-256" | "p256" | "prime256v1" => Some(Self::Secp256r1),
                "p-384" | "p384" => Some(Self::Secp384r1),
                _ => None,
            })
            .ok_or_else(|| UnknownGroup(s.to_owned()))
    }
}

/// A failure inside the crypto provider. Carries no detail on purpose: callers turn it into a
/// protocol alert (`decrypt_error`, `illegal_parameter`, `internal_error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CryptoError;

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cryptographic operation failed")
    }
}

impl std::error::Error for CryptoError {}

/// A hash or HMAC output, up to 48 bytes (SHA-384).
#[derive(Clone, Copy)]
pub struct Digest {
    buf: [u8; 48],
    len: usize,
}

impl Digest {
    /// Builds a digest from its bytes. Panics in debug builds if `bytes` is longer than 48.
    pub fn new(bytes: &[u8]) -> Self {
        let len = bytes.len().min(48);
        debug_assert_eq!(len, bytes.len());
        let mut buf = [0u8; 48];
        buf[..len].copy_from_slice(&bytes[..len]);
        Self { buf, len }
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A record-protection key for one direction of one epoch.
///
/// Both operations work in place on the caller's buffer: no allocation, no copy.
pub trait AeadKey: Send + Sync {
    /// Encrypts `in_out[..in_out.len() - tag_len]` in place and writes the tag into the last
    /// `tag_len` bytes of `in_out`.
    fn seal_in_place(&self, nonce: &[u8; 12], aad: &[u8], in_out: &mut [u8]) -> Result<(), CryptoError>;

    /// Authenticates and decrypts `in_out` (ciphertext followed by the tag) in place. On success
    /// the plaintext is `in_out[..in_out.len() - tag_len]`. On failure the contents of `in_out`
    /// are unspecified.
    fn open_in_place(&self, nonce: &[u8; 12], aad: &[u8], in_out: &mut [u8]) -> Result<(), CryptoError>;

    /// The tag length of this key's algorithm.
    fn tag_len(&self) -> usize;
}

/// An ephemeral key pair for one exchange: ECDHE, or the initiator's side of a hybrid group.
pub trait ActiveKeyExchange: Send + Sync {
    /// The group of this key pair.
    fn group(&self) -> KxGroup;

    /// Our public key as sent on the wire (an uncompressed point for NIST curves, 32 bytes for
    /// X25519, the ML-KEM encapsulation key with the curve key for a hybrid group).
    fn public_key(&self) -> &[u8];

    /// Completes the exchange with the peer's share (for a hybrid group, the responder's
    /// ciphertext and curve key). Invalid points (not on the curve, wrong length, compressed,
    /// the identity), an all-zero X25519 result and a share of the wrong length are errors.
    fn complete(self: Box<Self>, peer_public_key: &[u8]) -> Result<SharedSecret, CryptoError>;
}

/// The responder's half of a key exchange, done in one step
/// ([`CryptoProvider::accept_key_exchange`]): the share to send back, and the secret.
#[derive(Debug)]
pub struct AcceptedKeyExchange {
    /// Our share, as sent on the wire (for a hybrid group, the ML-KEM ciphertext with our
    /// elliptic-curve key).
    pub public_key: Vec<u8>,
    /// The shared secret.
    pub secret: SharedSecret,
}

/// A secret produced by a key exchange, wiped on drop.
pub struct SharedSecret(zeroize::Zeroizing<Vec<u8>>);

impl SharedSecret {
    /// Wraps secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(zeroize::Zeroizing::new(bytes))
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}

/// A running hash over a growing input, such as a handshake transcript: fed once, read at any
/// point, and forked when two continuations of one prefix are needed (a DTLS 1.3 transcript
/// read before and after a message, or kept across a HelloRetryRequest).
pub trait RunningHash: Send + Sync {
    /// The hash function.
    fn algorithm(&self) -> HashAlgorithm;

    /// Appends `data` to the input.
    fn update(&mut self, data: &[u8]);

    /// The hash of the input so far; the hash goes on from there.
    fn current(&self) -> Digest;

    /// An independent copy of the state: updates to one do not affect the other.
    fn fork(&self) -> Box<dyn RunningHash>;
}

impl fmt::Debug for dyn RunningHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningHash").field("algorithm", &self.algorithm()).finish_non_exhaustive()
    }
}

/// The cipher a record-number mask is made with (RFC 9147 §4.2.3): AES in ECB mode for the AES
/// suites, the ChaCha20 block function for ChaCha20-Poly1305.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MaskAlgorithm {
    /// AES-128 (the AES-128-GCM and AES-128-CCM suites).
    Aes128,
    /// AES-256 (AES-256-GCM).
    Aes256,
    /// ChaCha20 (ChaCha20-Poly1305).
    ChaCha20,
}

impl MaskAlgorithm {
    /// Key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Self::Aes128 => 16,
            Self::Aes256 | Self::ChaCha20 => 32,
        }
    }

    /// The mask cipher of a record-protection AEAD.
    pub const fn for_aead(aead: AeadAlgorithm) -> Self {
        match aead {
            AeadAlgorithm::Aes128Gcm | AeadAlgorithm::Aes128Ccm | AeadAlgorithm::Aes128Ccm8 => Self::Aes128,
            AeadAlgorithm::Aes256Gcm => Self::Aes256,
            AeadAlgorithm::ChaCha20Poly1305 => Self::ChaCha20,
        }
    }
}

/// A key that makes record-number masks (RFC 9147 §4.2.3): from the first 16 bytes of a
/// record's ciphertext, the bytes XORed over its encrypted sequence number. It is the same
/// computation as QUIC's header protection (RFC 9001 §5.4), which is why five bytes come back;
/// DTLS uses one or two of them.
pub trait MaskKey: Send + Sync {
    /// The mask for `sample`. For AES: `AES-ECB(key, sample)`; for ChaCha20: the keystream
    /// with the sample's first four bytes (little-endian) as the block counter and the other
    /// twelve as the nonce.
    fn mask(&self, sample: &[u8; 16]) -> Result<[u8; 5], CryptoError>;
}

/// The `HkdfLabel` prefix of DTLS 1.3 (RFC 9147 §5.9); TLS 1.3 uses `"tls13 "`.
pub const DTLS13_LABEL_PREFIX: &[u8] = b"dtls13";

/// `HKDF-Expand-Label(secret, label, context, out.len())` (RFC 8446 §7.1): HKDF-Expand with
/// the info `HkdfLabel { length, prefix || label, context }`. `prefix` is
/// [`DTLS13_LABEL_PREFIX`] for DTLS 1.3. The labels of the protocol are short: `prefix ||
/// label` and `context` must each fit their one-byte length.
pub fn hkdf_expand_label(
    provider: &dyn CryptoProvider,
    alg: HashAlgorithm,
    secret: &[u8],
    prefix: &[u8],
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let length = u16::try_from(out.len()).map_err(|_| CryptoError)?;
    let label_len = u8::try_from(prefix.len() + label.len()).map_err(|_| CryptoError)?;
    let context_len = u8::try_from(context.len()).map_err(|_| CryptoError)?;
    // 2 + 1 + 255 + 1 + 255 bytes at most: on the stack.
    let mut info = [0u8; 514];
    let mut n = 0;
    for part in [&length.to_be_bytes()[..], &[label_len], prefix, label, &[context_len], context] {
        info[n..n + part.len()].copy_from_slice(part);
        n += part.len();
    }
    provider.hkdf_expand(alg, secret, &info[..n], out)
}

/// Expands a TLS 1.3 traffic secret into record keys with the label `prefix` (RFC 8446 §7.3):
/// the AEAD `key` and `iv`, and DTLS 1.3's record-number key `sn` (RFC 9147 §4.2.3), each as
/// long as the buffer given.
pub(crate) fn expand_traffic_secret(
    provider: &dyn CryptoProvider,
    alg: HashAlgorithm,
    secret: &[u8],
    prefix: &[u8],
    key: &mut [u8],
    iv: &mut [u8],
    sn: &mut [u8],
) -> Result<(), CryptoError> {
    hkdf_expand_label(provider, alg, secret, prefix, b"key", &[], key)?;
    hkdf_expand_label(provider, alg, secret, prefix, b"iv", &[], iv)?;
    hkdf_expand_label(provider, alg, secret, prefix, b"sn", &[], sn)
}

/// A private key that signs handshake messages (ServerKeyExchange, CertificateVerify).
pub trait SigningKey: Send + Sync + fmt::Debug {
    /// The key's type.
    fn key_type(&self) -> crate::enums::KeyType;

    /// The schemes this key can sign with, in order of preference.
    fn schemes(&self) -> &[crate::enums::SignatureScheme];

    /// Signs `message` (the whole message: the scheme's hash is applied here).
    fn sign(&self, scheme: crate::enums::SignatureScheme, message: &[u8]) -> Result<Vec<u8>, CryptoError>;

    /// Picks the first of our schemes the peer offers.
    fn choose_scheme(&self, offered: &[crate::enums::SignatureScheme]) -> Option<crate::enums::SignatureScheme> {
        self.schemes().iter().copied().find(|s| offered.contains(s))
    }
}

/// The set of cryptographic primitives the protocol core needs.
///
/// Implementations must be usable from many threads at once.
pub trait CryptoProvider: Send + Sync + fmt::Debug {
    /// Fills `out` with cryptographically secure random bytes.
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError>;

    /// Hashes the concatenation of `parts`.
    fn hash(&self, alg: HashAlgorithm, parts: &[&[u8]]) -> Digest;

    /// HMAC of the concatenation of `parts` under `key`.
    fn hmac(&self, alg: HashAlgorithm, key: &[u8], parts: &[&[u8]]) -> Digest;

    /// The TLS 1.2 PRF (RFC 5246 §5) with the given hash: fills `out` with
    /// `P_hash(secret, label || seed)`.
    fn prf(
        &self,
        alg: HashAlgorithm,
        secret: &[u8],
        label: &[u8],
        seed: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError>;

    /// Starts a running hash (a transcript hash that can be read at any point and forked).
    fn start_hash(&self, alg: HashAlgorithm) -> Box<dyn RunningHash>;

    /// `HKDF-Extract(salt, ikm)` (RFC 5869 §2.2): the pseudorandom key, as long as the hash.
    fn hkdf_extract(&self, alg: HashAlgorithm, salt: &[u8], ikm: &[u8]) -> Digest;

    /// `HKDF-Expand(prk, info, out.len())` (RFC 5869 §2.3). `prk` is at least as long as the
    /// hash; `out` at most 255 times as long.
    fn hkdf_expand(&self, alg: HashAlgorithm, prk: &[u8], info: &[u8], out: &mut [u8]) -> Result<(), CryptoError>;

    /// Builds a record-number mask key (DTLS 1.3). `key` has [`MaskAlgorithm::key_len`] bytes.
    fn mask_key(&self, alg: MaskAlgorithm, key: &[u8]) -> Result<Box<dyn MaskKey>, CryptoError>;

    /// Builds a record-protection key. `key` has [`AeadAlgorithm::key_len`] bytes.
    fn aead_key(&self, alg: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError>;

    /// Starts an ephemeral key exchange in `group`: the initiator's side (a client's key
    /// share, or either side of a DTLS 1.2 ECDHE exchange).
    fn start_key_exchange(&self, group: KxGroup) -> Result<Box<dyn ActiveKeyExchange>, CryptoError>;

    /// The responder's side of a key exchange in `group`, given the initiator's share: what a
    /// DTLS 1.3 server does with the client's key share. For an elliptic curve this is a fresh
    /// key pair completed with the peer's key (the default does exactly that); for a hybrid
    /// group ([`KxGroup::is_hybrid`]) it encapsulates to the peer's ML-KEM key, and a provider
    /// that supports one must implement this. A malformed peer share is an error.
    fn accept_key_exchange(&self, group: KxGroup, peer_share: &[u8]) -> Result<AcceptedKeyExchange, CryptoError> {
        if group.is_hybrid() {
            return Err(CryptoError);
        }
        accept_with_key_pair(self.start_key_exchange(group)?, peer_share)
    }

    /// Loads a private key (PKCS#8, SEC1 or PKCS#1 DER) for signing.
    fn load_signing_key(&self, key: &rustls_pki_types::PrivateKeyDer<'_>) -> Result<Arc<dyn SigningKey>, CryptoError>;

    /// The algorithms certificate chains may be signed with (for path validation).
    fn certificate_signature_algorithms(
        &self,
    ) -> &'static [&'static dyn rustls_pki_types::SignatureVerificationAlgorithm];

    /// The algorithms that can verify a handshake signature made with `scheme`, one per
    /// possible public key type (TLS 1.2 does not bind ECDSA schemes to a curve). The first is
    /// the scheme's own (for ECDSA, on the scheme's curve): DTLS 1.3 uses only that one.
    fn handshake_signature_algorithms(
        &self,
        scheme: crate::enums::SignatureScheme,
    ) -> &'static [&'static dyn rustls_pki_types::SignatureVerificationAlgorithm];

    /// Whether this provider supports `alg`.
    fn supports_aead(&self, alg: AeadAlgorithm) -> bool {
        let _ = alg;
        true
    }

    /// Whether this provider supports `group`. By default, every elliptic curve and no hybrid
    /// group: a provider that implements one says so here and in
    /// [`accept_key_exchange`](Self::accept_key_exchange).
    fn supports_group(&self, group: KxGroup) -> bool {
        !group.is_hybrid()
    }
}

/// The default provider: aws-lc-rs, plus RustCrypto for AES-CCM.
#[cfg(feature = "aws-lc-rs")]
pub fn default_provider() -> Arc<dyn CryptoProvider> {
    Arc::new(aws_lc::AwsLcProvider)
}

/// The responder's side of a Diffie-Hellman exchange: a fresh key pair completed with the
/// peer's share ([`CryptoProvider::accept_key_exchange`] for the elliptic curves).
pub fn accept_with_key_pair(
    kx: Box<dyn ActiveKeyExchange>,
    peer_share: &[u8],
) -> Result<AcceptedKeyExchange, CryptoError> {
    let public_key = kx.public_key().to_vec();
    Ok(AcceptedKeyExchange { public_key, secret: kx.complete(peer_share)? })
}

/// Compares two byte strings in constant time (for the lengths given).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
