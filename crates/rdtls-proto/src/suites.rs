//! Cipher suites: what each one means for key exchange, record protection and the PRF.
//!
//! Only AEAD suites exist here (RFC 9325 §4.2). The table is shared by the PSK suites and the
//! certificate suites; the handshake branches on [`KeyExchange`], never on individual suites.

use core::fmt;

use crate::crypto::{AeadAlgorithm, HashAlgorithm};

/// How the premaster secret is established and how the server is authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyExchange {
    /// Plain pre-shared key (RFC 4279 §2).
    Psk,
    /// Ephemeral ECDH mixed with a pre-shared key (RFC 5489).
    EcdhePsk,
    /// Ephemeral ECDH signed with an ECDSA certificate key (RFC 8422).
    EcdheEcdsa,
    /// Ephemeral ECDH signed with an RSA certificate key (RFC 8422).
    EcdheRsa,
    /// A DTLS 1.3 suite: the key exchange and authentication are negotiated by extensions
    /// (key_share, pre_shared_key, signature_algorithms), not by the suite (RFC 8446 §4.1.1).
    Tls13,
}

impl KeyExchange {
    /// Whether this key exchange uses a pre-shared key.
    pub const fn uses_psk(self) -> bool {
        matches!(self, Self::Psk | Self::EcdhePsk)
    }

    /// Whether this key exchange uses ephemeral ECDH.
    pub const fn uses_ecdhe(self) -> bool {
        matches!(self, Self::EcdhePsk | Self::EcdheEcdsa | Self::EcdheRsa)
    }

    /// Whether the server authenticates with a certificate.
    pub const fn uses_certificate(self) -> bool {
        matches!(self, Self::EcdheEcdsa | Self::EcdheRsa)
    }

    /// Whether a certificate key of type `key` can serve this key exchange.
    pub fn accepts_key(self, key: crate::enums::KeyType) -> bool {
        use crate::enums::KeyType;
        match self {
            Self::EcdheEcdsa => matches!(key, KeyType::Ecdsa | KeyType::Ed25519),
            Self::EcdheRsa => key == KeyType::Rsa,
            _ => false,
        }
    }
}

/// A cipher suite we implement.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CipherSuite {
    /// The IANA code point.
    pub id: u16,
    /// The IANA name, e.g. `TLS_PSK_WITH_AES_128_GCM_SHA256`.
    pub name: &'static str,
    /// The OpenSSL name, e.g. `PSK-AES128-GCM-SHA256`.
    pub openssl_name: &'static str,
    /// Key exchange and authentication.
    pub key_exchange: KeyExchange,
    /// Record protection.
    pub aead: AeadAlgorithm,
    /// PRF and transcript hash.
    pub hash: HashAlgorithm,
}

impl CipherSuite {
    /// Length of the implicit (fixed) part of the nonce from the key block: 4 bytes for GCM and
    /// CCM (RFC 5288, RFC 6655), 12 for ChaCha20-Poly1305 (RFC 7905).
    pub const fn fixed_iv_len(&self) -> usize {
        match self.aead {
            AeadAlgorithm::ChaCha20Poly1305 => 12,
            _ => 4,
        }
    }

    /// Length of the explicit nonce carried in each record: 8 for GCM and CCM, 0 for ChaCha20.
    pub const fn explicit_nonce_len(&self) -> usize {
        match self.aead {
            AeadAlgorithm::ChaCha20Poly1305 => 0,
            _ => 8,
        }
    }

    /// Bytes a record grows by when protected (explicit nonce plus tag).
    pub const fn record_overhead(&self) -> usize {
        self.explicit_nonce_len() + self.aead.tag_len()
    }

    /// Whether this is a DTLS 1.3 suite (RFC 8446 §B.4), usable only in DTLS 1.3; every other
    /// suite is usable only in DTLS 1.2.
    pub const fn is_tls13(&self) -> bool {
        matches!(self.key_exchange, KeyExchange::Tls13)
    }

    /// The protocol version this suite belongs to.
    pub const fn protocol(&self) -> crate::enums::Protocol {
        if self.is_tls13() {
            crate::enums::Protocol::Dtls1_3
        } else {
            crate::enums::Protocol::Dtls1_2
        }
    }

    /// Looks a suite up by its code point.
    pub fn from_id(id: u16) -> Option<&'static Self> {
        ALL.iter().find(|s| s.id == id)
    }

    /// Looks a suite up by its IANA or OpenSSL name (case-insensitive).
    pub fn from_name(name: &str) -> Option<&'static Self> {
        ALL.iter().find(|s| s.name.eq_ignore_ascii_case(name) || s.openssl_name.eq_ignore_ascii_case(name))
    }
}

impl fmt::Debug for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

macro_rules! suite {
    ($konst:ident, $id:expr, $name:expr, $ossl:expr, $kx:ident, $aead:ident, $hash:ident) => {
        #[doc = concat!("`", $name, "` (", stringify!($id), ").")]
        pub const $konst: CipherSuite = CipherSuite {
            id: $id,
            name: $name,
            openssl_name: $ossl,
            key_exchange: KeyExchange::$kx,
            aead: AeadAlgorithm::$aead,
            hash: HashAlgorithm::$hash,
        };
    };
}

suite!(
    TLS_PSK_WITH_AES_128_GCM_SHA256,
    0x00a8,
    "TLS_PSK_WITH_AES_128_GCM_SHA256",
    "PSK-AES128-GCM-SHA256",
    Psk,
    Aes128Gcm,
    Sha256
);
suite!(
    TLS_PSK_WITH_AES_256_GCM_SHA384,
    0x00a9,
    "TLS_PSK_WITH_AES_256_GCM_SHA384",
    "PSK-AES256-GCM-SHA384",
    Psk,
    Aes256Gcm,
    Sha384
);
suite!(
    TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
    0xccab,
    "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256",
    "PSK-CHACHA20-POLY1305",
    Psk,
    ChaCha20Poly1305,
    Sha256
);
suite!(TLS_PSK_WITH_AES_128_CCM, 0xc0a4, "TLS_PSK_WITH_AES_128_CCM", "PSK-AES128-CCM", Psk, Aes128Ccm, Sha256);
suite!(TLS_PSK_WITH_AES_128_CCM_8, 0xc0a8, "TLS_PSK_WITH_AES_128_CCM_8", "PSK-AES128-CCM8", Psk, Aes128Ccm8, Sha256);
suite!(
    TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256,
    0xccac,
    "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-PSK-CHACHA20-POLY1305",
    EcdhePsk,
    ChaCha20Poly1305,
    Sha256
);
suite!(
    TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256,
    0xd001,
    "TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256",
    "ECDHE-PSK-AES128-GCM-SHA256",
    EcdhePsk,
    Aes128Gcm,
    Sha256
);

suite!(
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    0xc02b,
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    EcdheEcdsa,
    Aes128Gcm,
    Sha256
);
suite!(
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    0xc02c,
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    EcdheEcdsa,
    Aes256Gcm,
    Sha384
);
suite!(
    TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    0xcca9,
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    EcdheEcdsa,
    ChaCha20Poly1305,
    Sha256
);
suite!(
    TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
    0xc0ae,
    "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
    "ECDHE-ECDSA-AES128-CCM8",
    EcdheEcdsa,
    Aes128Ccm8,
    Sha256
);
suite!(
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    0xc02f,
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    EcdheRsa,
    Aes128Gcm,
    Sha256
);
suite!(
    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    0xc030,
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    EcdheRsa,
    Aes256Gcm,
    Sha384
);
suite!(
    TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0xcca8,
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-RSA-CHACHA20-POLY1305",
    EcdheRsa,
    ChaCha20Poly1305,
    Sha256
);

suite!(TLS13_AES_128_GCM_SHA256, 0x1301, "TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256", Tls13, Aes128Gcm, Sha256);
suite!(TLS13_AES_256_GCM_SHA384, 0x1302, "TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384", Tls13, Aes256Gcm, Sha384);
suite!(
    TLS13_CHACHA20_POLY1305_SHA256,
    0x1303,
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
    Tls13,
    ChaCha20Poly1305,
    Sha256
);
suite!(TLS13_AES_128_CCM_SHA256, 0x1304, "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_SHA256", Tls13, Aes128Ccm, Sha256);
suite!(
    TLS13_AES_128_CCM_8_SHA256,
    0x1305,
    "TLS_AES_128_CCM_8_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
    Tls13,
    Aes128Ccm8,
    Sha256
);

/// Every suite this crate implements, in our default order of preference: the DTLS 1.3 suites
/// (AES-GCM, ChaCha20, then the AES-CCM ones for constrained peers), then the DTLS 1.2 ones:
/// certificate suites (ECDHE, AES-GCM before ChaCha20 before CCM_8), then PSK suites. Each
/// version picks from the suites of its own.
pub static ALL: &[CipherSuite] = &[
    TLS13_AES_128_GCM_SHA256,
    TLS13_AES_256_GCM_SHA384,
    TLS13_CHACHA20_POLY1305_SHA256,
    TLS13_AES_128_CCM_SHA256,
    TLS13_AES_128_CCM_8_SHA256,
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
    TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256,
    TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256,
    TLS_PSK_WITH_AES_128_GCM_SHA256,
    TLS_PSK_WITH_AES_256_GCM_SHA384,
    TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
    TLS_PSK_WITH_AES_128_CCM,
    TLS_PSK_WITH_AES_128_CCM_8,
];

/// Code point of the renegotiation SCSV (RFC 5746 §3.3).
pub const TLS_EMPTY_RENEGOTIATION_INFO_SCSV: u16 = 0x00ff;
/// Code point of the fallback SCSV (RFC 7507).
pub const TLS_FALLBACK_SCSV: u16 = 0x5600;
