//! How a [`WolfPeer`](super::WolfPeer) is set up: role, suites, credentials, groups, MTU.

use std::time::Duration;

use wolfssl_sys as sys;

/// The side of the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Client,
    Server,
}

/// The protocol version a peer speaks (one only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    Dtls12,
    Dtls13,
}

/// A key exchange group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Group {
    X25519,
    P256,
    P384,
    /// ML-KEM-768 with X25519 (0x11EC).
    X25519MlKem768,
    /// ML-KEM-768 with P-256 (0x11EB).
    P256MlKem768,
}

impl Group {
    pub(super) fn code(self) -> u16 {
        let code = match self {
            Self::X25519 => sys::WOLFSSL_ECC_X25519,
            Self::P256 => sys::WOLFSSL_ECC_SECP256R1,
            Self::P384 => sys::WOLFSSL_ECC_SECP384R1,
            Self::X25519MlKem768 => sys::WOLFSSL_X25519MLKEM768,
            Self::P256MlKem768 => sys::WOLFSSL_SECP256R1MLKEM768,
        };
        u16::try_from(code).expect("group codes are 16 bits")
    }
}

/// The PSK key exchange modes (RFC 8446 §4.2.9) wolfSSL offers (client) or accepts (server).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PskModes {
    /// wolfSSL's default: psk_dhe_ke and psk_ke.
    Both,
    /// psk_dhe_ke only (`wolfSSL_only_dhe_psk`).
    DheOnly,
    /// psk_ke only (`wolfSSL_no_dhe_psk`).
    PlainOnly,
}

/// What a [`WolfPeer`](super::WolfPeer) does. Start from [`WolfConfig::client`] or [`WolfConfig::server`].
#[derive(Clone)]
pub(crate) struct WolfConfig {
    pub(super) role: Role,
    pub(super) version: Version,
    pub(super) ciphers: String,
    pub(super) psk: Option<(String, Vec<u8>)>,
    pub(super) psk_modes: PskModes,
    pub(super) cert: Option<(String, String)>,
    pub(super) ca_pem: Option<String>,
    pub(super) require_client_cert: bool,
    pub(super) server_name: Option<String>,
    pub(super) groups: Vec<Group>,
    pub(super) key_share: Option<Group>,
    pub(super) mtu: Option<u16>,
    pub(super) cookie: bool,
    pub(super) connection_id: Option<Vec<u8>>,
    pub(super) alpn: Option<String>,
    pub(super) srtp: Option<String>,
    pub(super) timeout: Duration,
}

impl WolfConfig {
    fn new(role: Role) -> Self {
        Self {
            role,
            version: Version::Dtls13,
            ciphers: "TLS13-AES128-GCM-SHA256".to_owned(),
            psk: None,
            psk_modes: PskModes::Both,
            cert: None,
            ca_pem: None,
            require_client_cert: false,
            server_name: None,
            groups: Vec::new(),
            key_share: None,
            mtu: None,
            cookie: true,
            connection_id: None,
            alpn: None,
            srtp: None,
            timeout: Duration::from_secs(20),
        }
    }

    /// A DTLS 1.3 client (`wolfDTLSv1_3_client_method`).
    pub(crate) fn client() -> Self {
        Self::new(Role::Client)
    }

    /// A DTLS 1.3 server (`wolfDTLSv1_3_server_method`).
    pub(crate) fn server() -> Self {
        Self::new(Role::Server)
    }

    /// DTLS 1.2 instead (`wolfDTLSv1_2_client_method`, `wolfDTLSv1_2_server_method`), with
    /// certificates (this harness has no DTLS 1.2 PSK callbacks) and the cipher list in
    /// OpenSSL's names, `ECDHE-ECDSA-AES128-GCM-SHA256` unless [`ciphers`](Self::ciphers) says.
    pub(crate) fn dtls12(mut self) -> Self {
        self.version = Version::Dtls12;
        self.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256".to_owned();
        self
    }

    /// Offer Connection ID (RFC 9146; `wolfSSL_dtls_cid_use`) and ask the peer to put `id` on
    /// the records it sends us (`wolfSSL_dtls_cid_set`; empty: a zero-length ID, so plain
    /// records our way). wolfSSL takes IDs of at most 10 bytes (`DTLS_CID_MAX_SIZE`), its own and
    /// its peer's.
    pub(crate) fn connection_id(mut self, id: &[u8]) -> Self {
        self.connection_id = Some(id.to_vec());
        self
    }

    /// ALPN (RFC 7301, `wolfSSL_UseALPN`): the comma-separated protocols a client offers or a
    /// server accepts; the handshake fails when the peer has none of them.
    pub(crate) fn alpn(mut self, protocols: &str) -> Self {
        self.alpn = Some(protocols.to_owned());
        self
    }

    /// DTLS-SRTP (RFC 5764, `wolfSSL_set_tlsext_use_srtp`): the `:`-separated profiles, in
    /// OpenSSL's names, a client offers or a server accepts.
    pub(crate) fn srtp(mut self, profiles: &str) -> Self {
        self.srtp = Some(profiles.to_owned());
        self
    }

    /// wolfSSL's cipher list, `:`-separated, in wolfSSL's names (`TLS13-AES128-GCM-SHA256`,
    /// `TLS13-AES256-GCM-SHA384`, `TLS13-CHACHA20-POLY1305-SHA256`, `TLS13-AES128-CCM-SHA256`,
    /// `TLS13-AES128-CCM-8-SHA256`). Default: `TLS13-AES128-GCM-SHA256`.
    pub(crate) fn ciphers(mut self, list: &str) -> Self {
        self.ciphers = list.to_owned();
        self
    }

    /// An external PSK: the client offers `identity` with `key`; the server accepts only
    /// `identity`. The PSK is bound to the hash of the first suite of [`ciphers`](Self::ciphers)
    /// (wolfSSL's TLS 1.3 PSK callbacks name one suite per PSK).
    pub(crate) fn psk(mut self, identity: &str, key: &[u8]) -> Self {
        self.psk = Some((identity.to_owned(), key.to_vec()));
        self
    }

    /// The PSK key exchange modes. Default: [`PskModes::Both`].
    pub(crate) fn psk_modes(mut self, modes: PskModes) -> Self {
        self.psk_modes = modes;
        self
    }

    /// This peer's certificate chain (leaf first) and private key, as PEM.
    pub(crate) fn certificate(mut self, chain_pem: &str, key_pem: &str) -> Self {
        self.cert = Some((chain_pem.to_owned(), key_pem.to_owned()));
        self
    }

    /// Trust anchors (PEM) to verify the peer's certificate with. A client without them does not
    /// verify the server (`WOLFSSL_VERIFY_NONE`); a server with them asks for a client
    /// certificate and verifies one if sent.
    pub(crate) fn ca(mut self, ca_pem: &str) -> Self {
        self.ca_pem = Some(ca_pem.to_owned());
        self
    }

    /// Server: fail the handshake without a client certificate (needs [`ca`](Self::ca)).
    pub(crate) fn require_client_cert(mut self) -> Self {
        self.require_client_cert = true;
        self
    }

    /// Client: send SNI `name` and check the server's certificate against it.
    pub(crate) fn server_name(mut self, name: &str) -> Self {
        self.server_name = Some(name.to_owned());
        self
    }

    /// Supported groups, in preference order (`wolfSSL_set_groups`). Default: wolfSSL's.
    pub(crate) fn groups(mut self, groups: &[Group]) -> Self {
        self.groups = groups.to_vec();
        self
    }

    /// Client: the group of the key share in the first ClientHello (`wolfSSL_UseKeyShare`).
    pub(crate) fn key_share(mut self, group: Group) -> Self {
        self.key_share = Some(group);
        self
    }

    /// The largest datagram wolfSSL writes (`wolfSSL_dtls_set_mtu`).
    pub(crate) fn mtu(mut self, mtu: u16) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Server: whether to answer the first ClientHello with a HelloRetryRequest carrying a
    /// cookie (wolfSSL's DTLS 1.3 default, `wolfSSL_disable_hrr_cookie` turns it off).
    pub(crate) fn cookie(mut self, on: bool) -> Self {
        self.cookie = on;
        self
    }

    /// How long each call of [`WolfPeer`](super::WolfPeer) may take. Default: 20 s.
    pub(crate) fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}
