//! Errors.
//!
//! Every [`Error`] a [`Connection`](crate::Connection) returns is fatal: the connection is over,
//! and any alert owed to the peer has been queued for sending. Records that are merely invalid
//! (malformed, replayed, failing authentication) are never errors: they are dropped silently,
//! as RFC 6347 §4.1.2.7 asks, and counted in [`Stats`](crate::Stats).

use core::fmt;

use crate::enums::AlertDescription;

/// The category of an error, matching Qt's `QDtlsError` values one to one (plus `Timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `QDtlsError::InvalidInputParameters`: the caller passed an invalid argument.
    InvalidInputParameters,
    /// `QDtlsError::InvalidOperation`: the call is not valid in the connection's state.
    InvalidOperation,
    /// `QDtlsError::UnderlyingSocketError`: a socket operation failed (socket layers only).
    UnderlyingSocketError,
    /// `QDtlsError::RemoteClosedConnectionError`: the peer sent close_notify.
    RemoteClosedConnection,
    /// `QDtlsError::PeerVerificationError`: the peer's identity could not be established.
    PeerVerification,
    /// `QDtlsError::TlsInitializationError`: the configuration or crypto could not be set up.
    TlsInitialization,
    /// `QDtlsError::TlsFatalError`: the protocol failed; the connection is over.
    TlsFatal,
    /// `QDtlsError::TlsNonFatalError`: a warning-level problem; the connection goes on.
    TlsNonFatal,
    /// The handshake did not complete within the configured handshake timeout.
    Timeout,
}

/// A fatal error of a DTLS connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The peer closed the connection with close_notify.
    RemoteClosed,
    /// The peer sent a fatal alert.
    AlertReceived(AlertDescription),
    /// The peer broke the protocol; we sent `alert` (unless the failure happened before a peer
    /// was known).
    PeerMisbehaved {
        /// The alert we sent.
        alert: AlertDescription,
        /// What was wrong.
        reason: &'static str,
    },
    /// The peer offered nothing we can agree on (versions, cipher suites, groups, extensions).
    PeerIncompatible {
        /// The alert we sent.
        alert: AlertDescription,
        /// What was missing.
        reason: &'static str,
    },
    /// The peer's certificate chain was not accepted.
    PeerVerification(Vec<CertificateError>),
    /// The client's PSK identity is unknown to the server's PSK callback.
    UnknownPskIdentity,
    /// No PSK is configured, or the client PSK callback declined to give one.
    NoPsk,
    /// The handshake did not complete within the handshake timeout.
    HandshakeTimeout,
    /// The 48-bit record sequence number space of the epoch is exhausted.
    SequenceExhausted,
    /// A cryptographic operation failed locally.
    Crypto,
    /// The call is not valid now (e.g. sending before the handshake completed).
    InvalidOperation(&'static str),
    /// An argument is invalid (e.g. a datagram larger than a record can carry).
    InvalidInput(&'static str),
    /// The configuration cannot work (e.g. PSK suites without a PSK).
    Config(&'static str),
}

impl Error {
    /// The Qt-style category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::RemoteClosed => ErrorKind::RemoteClosedConnection,
            Self::PeerVerification(_) => ErrorKind::PeerVerification,
            Self::AlertReceived(_)
            | Self::PeerMisbehaved { .. }
            | Self::PeerIncompatible { .. }
            | Self::UnknownPskIdentity
            | Self::SequenceExhausted => ErrorKind::TlsFatal,
            Self::NoPsk | Self::Crypto | Self::Config(_) => ErrorKind::TlsInitialization,
            Self::HandshakeTimeout => ErrorKind::Timeout,
            Self::InvalidOperation(_) => ErrorKind::InvalidOperation,
            Self::InvalidInput(_) => ErrorKind::InvalidInputParameters,
        }
    }

    /// Whether the peer failed to authenticate: its certificate or PSK identity was refused, a
    /// signature or Finished did not verify, or its encrypted handshake records never
    /// authenticated (the two sides derived different keys, most often a wrong pre-shared key).
    pub fn is_authentication_failure(&self) -> bool {
        match self {
            Self::PeerVerification(_) | Self::UnknownPskIdentity | Self::NoPsk => true,
            Self::PeerMisbehaved { alert, .. } => {
                *alert == AlertDescription::BAD_RECORD_MAC || *alert == AlertDescription::DECRYPT_ERROR
            }
            _ => false,
        }
    }

    /// The alert this error sends to the peer, if any.
    pub(crate) fn alert_to_send(&self) -> Option<AlertDescription> {
        match self {
            Self::PeerMisbehaved { alert, .. } | Self::PeerIncompatible { alert, .. } => Some(*alert),
            Self::UnknownPskIdentity => Some(AlertDescription::UNKNOWN_PSK_IDENTITY),
            Self::PeerVerification(errors) => {
                Some(errors.first().map_or(AlertDescription::BAD_CERTIFICATE, CertificateError::alert))
            }
            Self::NoPsk | Self::Crypto | Self::Config(_) => Some(AlertDescription::INTERNAL_ERROR),
            // No record can be sealed any more, an alert included.
            Self::SequenceExhausted => None,
            _ => None,
        }
    }

    pub(crate) const fn decode(reason: &'static str) -> Self {
        Self::PeerMisbehaved { alert: AlertDescription::DECODE_ERROR, reason }
    }

    pub(crate) const fn unexpected(reason: &'static str) -> Self {
        Self::PeerMisbehaved { alert: AlertDescription::UNEXPECTED_MESSAGE, reason }
    }

    pub(crate) const fn illegal(reason: &'static str) -> Self {
        Self::PeerMisbehaved { alert: AlertDescription::ILLEGAL_PARAMETER, reason }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RemoteClosed => f.write_str("the remote host closed the connection"),
            Self::AlertReceived(a) => write!(f, "the peer sent a fatal alert: {a}"),
            Self::PeerMisbehaved { alert, reason } => write!(f, "protocol error ({alert} sent): {reason}"),
            Self::PeerIncompatible { alert, reason } => write!(f, "peer is incompatible ({alert} sent): {reason}"),
            Self::UnknownPskIdentity => f.write_str("the client's PSK identity is unknown"),
            Self::PeerVerification(errors) => {
                f.write_str("the peer's certificate was not accepted: ")?;
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Self::NoPsk => f.write_str("no pre-shared key is available for this handshake"),
            Self::HandshakeTimeout => f.write_str("the handshake timed out"),
            Self::SequenceExhausted => f.write_str("record sequence numbers exhausted"),
            Self::Crypto => f.write_str("a cryptographic operation failed"),
            Self::InvalidOperation(what) => write!(f, "invalid operation: {what}"),
            Self::InvalidInput(what) => write!(f, "invalid input: {what}"),
            Self::Config(what) => write!(f, "invalid configuration: {what}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::crypto::CryptoError> for Error {
    fn from(_: crate::crypto::CryptoError) -> Self {
        Self::Crypto
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match &e {
            Error::RemoteClosed => K::ConnectionReset,
            Error::HandshakeTimeout => K::TimedOut,
            Error::InvalidInput(_) => K::InvalidInput,
            Error::InvalidOperation(_) => K::NotConnected,
            Error::Config(_) => K::InvalidInput,
            Error::AlertReceived(_) => K::ConnectionAborted,
            Error::PeerMisbehaved { .. } | Error::PeerIncompatible { .. } | Error::UnknownPskIdentity => K::InvalidData,
            _ => K::Other,
        };
        Self::new(kind, e)
    }
}

/// Why a peer's certificate chain was not accepted (Qt's `QSslError` values that apply).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertificateError {
    /// The peer sent no certificate (Qt: `NoPeerCertificate`).
    NoPeerCertificate,
    /// No path to a trusted root (Qt: `UnableToGetLocalIssuerCertificate`, `SelfSignedCertificate`).
    UnknownIssuer,
    /// A certificate in the chain has expired (Qt: `CertificateExpired`).
    Expired,
    /// A certificate in the chain is not valid yet (Qt: `CertificateNotYetValid`).
    NotYetValid,
    /// The certificate is not valid for the expected host name or address (Qt: `HostNameMismatch`).
    HostNameMismatch,
    /// No host name or address was given to check the server's certificate against (Qt:
    /// `HostNameMismatch`): give one, or opt out with
    /// [`ConfigBuilder::danger_accept_any_server_name`](crate::ConfigBuilder::danger_accept_any_server_name).
    NoServerName,
    /// The certificate may not be used for this purpose (Qt: `InvalidPurpose`).
    InvalidPurpose,
    /// A signature in the chain does not verify (Qt: `CertificateSignatureFailed`).
    BadSignature,
    /// The certificate is revoked (Qt: `CertificateRevoked`).
    Revoked,
    /// The certificate could not be parsed or is otherwise invalid (Qt: `UnspecifiedError`).
    Invalid(String),
}

impl CertificateError {
    /// The alert that reports this error to the peer.
    pub fn alert(&self) -> AlertDescription {
        match self {
            Self::NoPeerCertificate => AlertDescription::HANDSHAKE_FAILURE,
            Self::UnknownIssuer => AlertDescription::UNKNOWN_CA,
            Self::Expired | Self::NotYetValid => AlertDescription::CERTIFICATE_EXPIRED,
            Self::Revoked => AlertDescription::CERTIFICATE_REVOKED,
            Self::InvalidPurpose => AlertDescription::UNSUPPORTED_CERTIFICATE,
            Self::HostNameMismatch | Self::NoServerName | Self::BadSignature | Self::Invalid(_) => {
                AlertDescription::BAD_CERTIFICATE
            }
        }
    }
}

impl fmt::Display for CertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPeerCertificate => f.write_str("the peer did not present any certificate"),
            Self::UnknownIssuer => f.write_str("the issuer certificate could not be found"),
            Self::Expired => f.write_str("the certificate has expired"),
            Self::NotYetValid => f.write_str("the certificate is not yet valid"),
            Self::HostNameMismatch => {
                f.write_str("the host name did not match any of the valid hosts for this certificate")
            }
            Self::NoServerName => f.write_str(
                "no server name or address to check the certificate against (give one, or opt out with \
                 danger_accept_any_server_name)",
            ),
            Self::InvalidPurpose => f.write_str("the certificate cannot be used for the given purpose"),
            Self::BadSignature => f.write_str("the signature of the certificate is invalid"),
            Self::Revoked => f.write_str("the certificate has been revoked"),
            Self::Invalid(why) => write!(f, "the certificate is invalid: {why}"),
        }
    }
}
