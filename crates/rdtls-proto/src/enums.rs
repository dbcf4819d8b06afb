//! Open protocol enumerations: unknown values still parse and are carried as-is.

use core::fmt;

macro_rules! open_enum {
    ($(#[$m:meta])* $name:ident($ty:ty) { $($(#[$vm:meta])* $variant:ident = $val:expr => $s:expr,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $ty);

        impl $name {
            $($(#[$vm])* pub const $variant: Self = Self($val);)*

            /// The registry name of this value, if it is one we know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some($s),)*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    };
}

open_enum! {
    /// TLS record content type.
    ContentType(u8) {
        /// change_cipher_spec (20)
        CHANGE_CIPHER_SPEC = 20 => "change_cipher_spec",
        /// alert (21)
        ALERT = 21 => "alert",
        /// handshake (22)
        HANDSHAKE = 22 => "handshake",
        /// application_data (23)
        APPLICATION_DATA = 23 => "application_data",
        /// tls12_cid (25), RFC 9146
        TLS12_CID = 25 => "tls12_cid",
        /// ack (26), RFC 9147 §7
        ACK = 26 => "ack",
        /// return_routability_check (27), RFC 9853
        RETURN_ROUTABILITY_CHECK = 27 => "return_routability_check",
    }
}

open_enum! {
    /// Handshake message type.
    HandshakeType(u8) {
        /// hello_request (0)
        HELLO_REQUEST = 0 => "hello_request",
        /// client_hello (1)
        CLIENT_HELLO = 1 => "client_hello",
        /// server_hello (2)
        SERVER_HELLO = 2 => "server_hello",
        /// hello_verify_request (3)
        HELLO_VERIFY_REQUEST = 3 => "hello_verify_request",
        /// new_session_ticket (4)
        NEW_SESSION_TICKET = 4 => "new_session_ticket",
        /// end_of_early_data (5), TLS 1.3 only
        END_OF_EARLY_DATA = 5 => "end_of_early_data",
        /// encrypted_extensions (8), TLS 1.3
        ENCRYPTED_EXTENSIONS = 8 => "encrypted_extensions",
        /// certificate (11)
        CERTIFICATE = 11 => "certificate",
        /// server_key_exchange (12)
        SERVER_KEY_EXCHANGE = 12 => "server_key_exchange",
        /// certificate_request (13)
        CERTIFICATE_REQUEST = 13 => "certificate_request",
        /// server_hello_done (14)
        SERVER_HELLO_DONE = 14 => "server_hello_done",
        /// certificate_verify (15)
        CERTIFICATE_VERIFY = 15 => "certificate_verify",
        /// client_key_exchange (16)
        CLIENT_KEY_EXCHANGE = 16 => "client_key_exchange",
        /// finished (20)
        FINISHED = 20 => "finished",
        /// key_update (24), TLS 1.3
        KEY_UPDATE = 24 => "key_update",
        /// request_connection_id (9), DTLS 1.3 (RFC 9147 §9)
        REQUEST_CONNECTION_ID = 9 => "request_connection_id",
        /// new_connection_id (10), DTLS 1.3 (RFC 9147 §9)
        NEW_CONNECTION_ID = 10 => "new_connection_id",
        /// message_hash (254): the stand-in for the first ClientHello in the transcript after
        /// a HelloRetryRequest (RFC 8446 §4.4.1)
        MESSAGE_HASH = 254 => "message_hash",
    }
}

open_enum! {
    /// Alert description (RFC 5246 §7.2, RFC 4279, RFC 5746).
    AlertDescription(u8) {
        /// close_notify (0)
        CLOSE_NOTIFY = 0 => "close_notify",
        /// unexpected_message (10)
        UNEXPECTED_MESSAGE = 10 => "unexpected_message",
        /// bad_record_mac (20)
        BAD_RECORD_MAC = 20 => "bad_record_mac",
        /// record_overflow (22)
        RECORD_OVERFLOW = 22 => "record_overflow",
        /// handshake_failure (40)
        HANDSHAKE_FAILURE = 40 => "handshake_failure",
        /// bad_certificate (42)
        BAD_CERTIFICATE = 42 => "bad_certificate",
        /// unsupported_certificate (43)
        UNSUPPORTED_CERTIFICATE = 43 => "unsupported_certificate",
        /// certificate_revoked (44)
        CERTIFICATE_REVOKED = 44 => "certificate_revoked",
        /// certificate_expired (45)
        CERTIFICATE_EXPIRED = 45 => "certificate_expired",
        /// certificate_unknown (46)
        CERTIFICATE_UNKNOWN = 46 => "certificate_unknown",
        /// illegal_parameter (47)
        ILLEGAL_PARAMETER = 47 => "illegal_parameter",
        /// unknown_ca (48)
        UNKNOWN_CA = 48 => "unknown_ca",
        /// access_denied (49)
        ACCESS_DENIED = 49 => "access_denied",
        /// decode_error (50)
        DECODE_ERROR = 50 => "decode_error",
        /// decrypt_error (51)
        DECRYPT_ERROR = 51 => "decrypt_error",
        /// too_many_cids_requested (52), RFC 9147 §9
        TOO_MANY_CIDS_REQUESTED = 52 => "too_many_cids_requested",
        /// protocol_version (70)
        PROTOCOL_VERSION = 70 => "protocol_version",
        /// insufficient_security (71)
        INSUFFICIENT_SECURITY = 71 => "insufficient_security",
        /// internal_error (80)
        INTERNAL_ERROR = 80 => "internal_error",
        /// inappropriate_fallback (86)
        INAPPROPRIATE_FALLBACK = 86 => "inappropriate_fallback",
        /// user_canceled (90)
        USER_CANCELED = 90 => "user_canceled",
        /// no_renegotiation (100)
        NO_RENEGOTIATION = 100 => "no_renegotiation",
        /// missing_extension (109)
        MISSING_EXTENSION = 109 => "missing_extension",
        /// unsupported_extension (110)
        UNSUPPORTED_EXTENSION = 110 => "unsupported_extension",
        /// unrecognized_name (112)
        UNRECOGNIZED_NAME = 112 => "unrecognized_name",
        /// unknown_psk_identity (115)
        UNKNOWN_PSK_IDENTITY = 115 => "unknown_psk_identity",
        /// certificate_required (116)
        CERTIFICATE_REQUIRED = 116 => "certificate_required",
        /// no_application_protocol (120), RFC 7301
        NO_APPLICATION_PROTOCOL = 120 => "no_application_protocol",
    }
}

open_enum! {
    /// Alert level.
    AlertLevel(u8) {
        /// warning (1)
        WARNING = 1 => "warning",
        /// fatal (2)
        FATAL = 2 => "fatal",
    }
}

open_enum! {
    /// Hello extension type.
    ExtensionType(u16) {
        /// server_name (0)
        SERVER_NAME = 0 => "server_name",
        /// supported_groups (10)
        SUPPORTED_GROUPS = 10 => "supported_groups",
        /// ec_point_formats (11)
        EC_POINT_FORMATS = 11 => "ec_point_formats",
        /// signature_algorithms (13)
        SIGNATURE_ALGORITHMS = 13 => "signature_algorithms",
        /// use_srtp (14), RFC 5764: DTLS-SRTP
        USE_SRTP = 14 => "use_srtp",
        /// application_layer_protocol_negotiation (16), RFC 7301: ALPN
        APPLICATION_LAYER_PROTOCOL_NEGOTIATION = 16 => "application_layer_protocol_negotiation",
        /// encrypt_then_mac (22)
        ENCRYPT_THEN_MAC = 22 => "encrypt_then_mac",
        /// extended_master_secret (23)
        EXTENDED_MASTER_SECRET = 23 => "extended_master_secret",
        /// session_ticket (35)
        SESSION_TICKET = 35 => "session_ticket",
        /// pre_shared_key (41), TLS 1.3
        PRE_SHARED_KEY = 41 => "pre_shared_key",
        /// early_data (42), TLS 1.3
        EARLY_DATA = 42 => "early_data",
        /// supported_versions (43), TLS 1.3
        SUPPORTED_VERSIONS = 43 => "supported_versions",
        /// cookie (44), TLS 1.3
        COOKIE = 44 => "cookie",
        /// psk_key_exchange_modes (45), TLS 1.3
        PSK_KEY_EXCHANGE_MODES = 45 => "psk_key_exchange_modes",
        /// certificate_authorities (47), TLS 1.3: checked for framing, otherwise ignored
        CERTIFICATE_AUTHORITIES = 47 => "certificate_authorities",
        /// key_share (51), TLS 1.3
        KEY_SHARE = 51 => "key_share",
        /// connection_id (54), RFC 9146 (the draft's 254 is neither sent nor read)
        CONNECTION_ID = 54 => "connection_id",
        /// rrc (61), RFC 9853: return routability checks, with a connection ID
        RRC = 61 => "rrc",
        /// renegotiation_info (0xff01)
        RENEGOTIATION_INFO = 0xff01 => "renegotiation_info",
    }
}

/// A DTLS protocol version as carried on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtocolVersion(pub u16);

impl ProtocolVersion {
    /// DTLS 1.0 ({254, 255}).
    pub const DTLS1_0: Self = Self(0xfeff);
    /// DTLS 1.2 ({254, 253}).
    pub const DTLS1_2: Self = Self(0xfefd);
    /// DTLS 1.3 ({254, 252}), only ever in `supported_versions` (RFC 9147 §5.3).
    pub const DTLS1_3: Self = Self(0xfefc);

    /// Whether this is one of the DTLS versions (the encoding counts down: 1.2 < 1.0 numerically).
    pub fn is_dtls(self) -> bool {
        self.0 >> 8 == 0xfe
    }
}

impl fmt::Debug for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::DTLS1_0 => f.write_str("DTLSv1.0"),
            Self::DTLS1_2 => f.write_str("DTLSv1.2"),
            Self::DTLS1_3 => f.write_str("DTLSv1.3"),
            Self(v) => write!(f, "ProtocolVersion({v:#06x})"),
        }
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A DTLS protocol version: the one a connection negotiated, or a bound of the versions a
/// configuration allows. Ordered from oldest to newest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// DTLS 1.2 (RFC 6347).
    Dtls1_2,
    /// DTLS 1.3 (RFC 9147).
    Dtls1_3,
}

impl Protocol {
    /// The version as carried on the wire (DTLS 1.3 only in `supported_versions`).
    pub const fn wire(self) -> ProtocolVersion {
        match self {
            Self::Dtls1_2 => ProtocolVersion::DTLS1_2,
            Self::Dtls1_3 => ProtocolVersion::DTLS1_3,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dtls1_2 => "DTLSv1.2",
            Self::Dtls1_3 => "DTLSv1.3",
        })
    }
}

open_enum! {
    /// A signature scheme (TLS 1.2 `SignatureAndHashAlgorithm`, with the TLS 1.3 code points
    /// for RSA-PSS and Ed25519 that TLS 1.2 peers also use).
    SignatureScheme(u16) {
        /// rsa_pkcs1_sha256 (0x0401)
        RSA_PKCS1_SHA256 = 0x0401 => "rsa_pkcs1_sha256",
        /// rsa_pkcs1_sha384 (0x0501)
        RSA_PKCS1_SHA384 = 0x0501 => "rsa_pkcs1_sha384",
        /// ecdsa_secp256r1_sha256 (0x0403; in TLS 1.2, ECDSA with SHA-256 on any curve)
        ECDSA_SECP256R1_SHA256 = 0x0403 => "ecdsa_secp256r1_sha256",
        /// ecdsa_secp384r1_sha384 (0x0503; in TLS 1.2, ECDSA with SHA-384 on any curve)
        ECDSA_SECP384R1_SHA384 = 0x0503 => "ecdsa_secp384r1_sha384",
        /// rsa_pss_rsae_sha256 (0x0804)
        RSA_PSS_RSAE_SHA256 = 0x0804 => "rsa_pss_rsae_sha256",
        /// rsa_pss_rsae_sha384 (0x0805)
        RSA_PSS_RSAE_SHA384 = 0x0805 => "rsa_pss_rsae_sha384",
        /// ed25519 (0x0807)
        ED25519 = 0x0807 => "ed25519",
    }
}

impl SignatureScheme {
    /// The schemes we offer and accept, in order of preference.
    pub const SUPPORTED: &'static [Self] = &[
        Self::ECDSA_SECP256R1_SHA256,
        Self::ECDSA_SECP384R1_SHA384,
        Self::ED25519,
        Self::RSA_PSS_RSAE_SHA256,
        Self::RSA_PSS_RSAE_SHA384,
        Self::RSA_PKCS1_SHA256,
        Self::RSA_PKCS1_SHA384,
    ];

    /// The key type this scheme signs with.
    pub fn key_type(self) -> Option<KeyType> {
        match self {
            Self::ECDSA_SECP256R1_SHA256 | Self::ECDSA_SECP384R1_SHA384 => Some(KeyType::Ecdsa),
            Self::RSA_PKCS1_SHA256 | Self::RSA_PKCS1_SHA384 | Self::RSA_PSS_RSAE_SHA256 | Self::RSA_PSS_RSAE_SHA384 => {
                Some(KeyType::Rsa)
            }
            Self::ED25519 => Some(KeyType::Ed25519),
            _ => None,
        }
    }
}

/// The type of a certificate's key, which decides the cipher suites it can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// ECDSA (serves ECDHE_ECDSA suites).
    Ecdsa,
    /// Ed25519 (serves ECDHE_ECDSA suites, RFC 8422 §5.5).
    Ed25519,
    /// RSA (serves ECDHE_RSA suites).
    Rsa,
}

/// Which end of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// We sent the ClientHello.
    Client,
    /// We answered it.
    Server,
}
