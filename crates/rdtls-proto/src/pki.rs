//! Certificates, keys, trust anchors and peer verification.
//!
//! Chains are verified with `rustls-webpki` against the configured trust anchors; names (DNS or
//! IP) are checked against the certificate's subject alternative names. Failures are reported
//! as a list of [`CertificateError`]s, which the application may choose to ignore (Qt's
//! `ignoreVerificationErrors`), continue past (EdgerOS `rejectUnauthorized: false`), or treat as
//! fatal (the default).

use core::fmt;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use rustls_pki_types::pem::PemObject;
pub use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, ServerName, SignatureVerificationAlgorithm, TrustAnchor, UnixTime,
};
use webpki::{EndEntityCert, KeyUsage};

use crate::crypto::{CryptoProvider, SigningKey};
use crate::enums::{KeyType, SignatureScheme};
pub use crate::error::CertificateError;
use crate::error::Error;

/// The error a `webpki` failure reports.
fn from_webpki(e: webpki::Error) -> CertificateError {
    use webpki::Error as W;
    match e {
        W::UnknownIssuer | W::CaUsedAsEndEntity | W::EndEntityUsedAsCa => CertificateError::UnknownIssuer,
        W::CertExpired { .. } => CertificateError::Expired,
        W::CertNotValidYet { .. } => CertificateError::NotYetValid,
        W::CertNotValidForName(_) => CertificateError::HostNameMismatch,
        W::RequiredEkuNotFoundContext(_) => CertificateError::InvalidPurpose,
        W::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        W::CertRevoked => CertificateError::Revoked,
        other => CertificateError::Invalid(format!("{other:?}")),
    }
}

/// A certificate chain (end entity first) with its private key.
#[derive(Clone)]
pub struct CertifiedKey {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<dyn SigningKey>,
}

impl fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertifiedKey").field("chain_len", &self.chain.len()).field("key", &self.key).finish()
    }
}

impl CertifiedKey {
    /// Pairs a chain with a loaded key. The chain must hold at least the end-entity certificate.
    pub fn new(chain: Vec<CertificateDer<'static>>, key: Arc<dyn SigningKey>) -> Result<Self, Error> {
        let Some(ee) = chain.first() else {
            return Err(Error::Config("a certificate chain needs at least one certificate"));
        };
        EndEntityCert::try_from(ee).map_err(|_| Error::Config("the end-entity certificate cannot be parsed"))?;
        Ok(Self { chain, key })
    }

    /// Loads a chain and a key, each PEM or DER. The key may be PKCS#8, SEC1 or PKCS#1, or an
    /// encrypted PKCS#8 key when `password` is given (EdgerOS `passwd`).
    pub fn from_pem_or_der(
        provider: &dyn CryptoProvider,
        certs: &[u8],
        key: &[u8],
        password: Option<&str>,
    ) -> Result<Self, Error> {
        let chain = parse_certificates(certs)?;
        let key = parse_private_key(key, password)?;
        let key = provider.load_signing_key(&key).map_err(|_| Error::Config("unsupported or invalid private key"))?;
        Self::new(chain, key)
    }

    /// The chain, end entity first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The signing key.
    pub fn key(&self) -> &Arc<dyn SigningKey> {
        &self.key
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.key.key_type()
    }

    fn end_entity(&self) -> Option<EndEntityCert<'_>> {
        self.chain.first().and_then(|c| EndEntityCert::try_from(c).ok())
    }

    /// Whether the end-entity certificate names `name` (a DNS name or an IP address).
    pub fn is_valid_for(&self, name: &ServerName<'_>) -> bool {
        self.end_entity().is_some_and(|ee| ee.verify_is_valid_for_subject_name(name).is_ok())
    }
}

fn is_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Parses one or more certificates, PEM (any number of `CERTIFICATE` blocks) or one DER.
pub fn parse_certificates(data: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    if !is_pem(data) {
        return Ok(vec![CertificateDer::from(data.to_vec())]);
    }
    let certs = CertificateDer::pem_slice_iter(data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::Config("invalid PEM certificate"))?;
    if certs.is_empty() {
        return Err(Error::Config("no certificate found in PEM data"));
    }
    Ok(certs)
}

/// Parses a private key: PEM or DER; PKCS#8, SEC1 or PKCS#1; or encrypted PKCS#8 with
/// `password`.
pub fn parse_private_key(data: &[u8], password: Option<&str>) -> Result<PrivateKeyDer<'static>, Error> {
    let encrypted_der;
    let der: &[u8] = if is_pem(data) {
        if data.windows(29).any(|w| w == b"BEGIN ENCRYPTED PRIVATE KEY--") {
            let (_label, der) =
                pkcs8::der::pem::decode_vec(data).map_err(|_| Error::Config("invalid encrypted private key PEM"))?;
            encrypted_der = der;
            &encrypted_der
        } else {
            return PrivateKeyDer::from_pem_slice(data).map_err(|_| Error::Config("no private key found in PEM data"));
        }
    } else {
        data
    };
    if let Ok(info) = pkcs8::EncryptedPrivateKeyInfo::try_from(der) {
        let Some(password) = password else {
            return Err(Error::Config("the private key is encrypted: a password is needed"));
        };
        let doc = info.decrypt(password).map_err(|_| Error::Config("wrong password for the private key"))?;
        return Ok(PrivateKeyDer::Pkcs8(doc.as_bytes().to_vec().into()));
    }
    PrivateKeyDer::try_from(der.to_vec()).map_err(|_| Error::Config("unrecognised private key format"))
}

/// Trust anchors for verifying peers (EdgerOS `ca`, `loadDefaultCerts`).
#[derive(Clone, Debug, Default)]
pub struct RootStore {
    anchors: Vec<TrustAnchor<'static>>,
}

impl RootStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one trusted certificate (DER).
    pub fn add(&mut self, cert: &CertificateDer<'_>) -> Result<(), Error> {
        let anchor = webpki::anchor_from_trusted_cert(cert).map_err(|_| Error::Config("invalid trust anchor"))?;
        self.anchors.push(anchor.to_owned());
        Ok(())
    }

    /// Adds every certificate of PEM or DER data; returns how many were added.
    pub fn add_pem_or_der(&mut self, data: &[u8]) -> Result<usize, Error> {
        let certs = parse_certificates(data)?;
        for c in &certs {
            self.add(c)?;
        }
        Ok(certs.len())
    }

    /// Number of trust anchors.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    pub(crate) fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }
}

/// Whom a chain must be valid for.
pub(crate) enum Purpose<'a> {
    Server(Option<&'a ServerName<'a>>),
    Client,
}

/// Verifies a peer's chain; returns every problem found (empty: trusted).
pub(crate) fn verify_chain(
    provider: &dyn CryptoProvider,
    roots: &RootStore,
    chain: &[CertificateDer<'static>],
    purpose: Purpose<'_>,
    now: UnixTime,
) -> Vec<CertificateError> {
    let Some(ee_der) = chain.first() else {
        return vec![CertificateError::NoPeerCertificate];
    };
    let ee = match EndEntityCert::try_from(ee_der) {
        Ok(ee) => ee,
        Err(e) => return vec![from_webpki(e)],
    };
    let usage = match purpose {
        Purpose::Server(_) => KeyUsage::server_auth(),
        Purpose::Client => KeyUsage::client_auth(),
    };
    let mut errors = Vec::new();
    if let Err(e) = ee.verify_for_usage(
        provider.certificate_signature_algorithms(),
        roots.anchors(),
        &chain[1..],
        now,
        usage,
        None,
        None,
    ) {
        errors.push(from_webpki(e));
    }
    if let Purpose::Server(Some(name)) = purpose {
        if ee.verify_is_valid_for_subject_name(name).is_err() {
            errors.push(CertificateError::HostNameMismatch);
        }
    }
    errors
}

/// Verifies a handshake signature made by the end-entity certificate's key. DTLS 1.2 tries
/// every algorithm the provider lists for `scheme` (its ECDSA schemes name only the hash);
/// DTLS 1.3 (`curve_bound`) only the scheme's own, the first, so an ECDSA scheme is bound to
/// its curve (RFC 8446 §4.2.3).
pub(crate) fn verify_signature(
    provider: &dyn CryptoProvider,
    ee_der: &CertificateDer<'_>,
    scheme: SignatureScheme,
    message: &[u8],
    signature: &[u8],
    curve_bound: bool,
) -> bool {
    let Ok(ee) = EndEntityCert::try_from(ee_der) else { return false };
    let algs = provider.handshake_signature_algorithms(scheme);
    let algs = if curve_bound { &algs[..algs.len().min(1)] } else { algs };
    algs.iter().any(|alg| ee.verify_signature(*alg, message, signature).is_ok())
}

/// A server's certificates: a default, others chosen by the SNI name the client asks for
/// (EdgerOS `addcert`, also while the server runs), and, when the client sends no SNI, the
/// certificate valid for the local address the ClientHello arrived on (EdgerOS `ipcert`).
#[derive(Debug, Default)]
pub struct CertResolver {
    inner: RwLock<Certs>,
}

#[derive(Debug, Default)]
struct Certs {
    default: Option<Arc<CertifiedKey>>,
    by_name: HashMap<String, Vec<Arc<CertifiedKey>>>,
    /// Trust anchors for the client certificates of connections whose SNI name is the key
    /// (EdgerOS `addcert` with `ca`); other connections use the configuration's.
    roots_by_name: HashMap<String, Arc<RootStore>>,
    by_ip: bool,
}

impl CertResolver {
    /// A resolver with no certificates.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the certificate used when no other matches.
    pub fn set_default(&self, key: CertifiedKey) {
        self.write().default = Some(Arc::new(key));
    }

    /// Adds a certificate for an SNI host name (case-insensitive). Several keys of different
    /// types may serve one name.
    pub fn add(&self, name: &str, key: CertifiedKey) {
        self.write().by_name.entry(name.to_ascii_lowercase()).or_default().push(Arc::new(key));
    }

    /// Adds a certificate for an SNI host name with the trust anchors that verify the client
    /// certificates of connections asking for that name (EdgerOS `addcert` with `ca`), instead
    /// of the configuration's. Replaces anchors set earlier for the name.
    pub fn add_with_client_roots(&self, name: &str, key: CertifiedKey, client_roots: RootStore) {
        let name = name.to_ascii_lowercase();
        let mut certs = self.write();
        certs.by_name.entry(name.clone()).or_default().push(Arc::new(key));
        certs.roots_by_name.insert(name, Arc::new(client_roots));
    }

    /// The trust anchors for client certificates of a connection that asked for `sni`, if that
    /// name has its own.
    pub(crate) fn client_roots(&self, sni: &str) -> Option<Arc<RootStore>> {
        let certs = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        certs.roots_by_name.get(&sni.to_ascii_lowercase()).cloned()
    }

    /// Whether, without SNI, to look for a certificate valid for the local IP address.
    pub fn set_ip_certificates(&self, enabled: bool) {
        self.write().by_ip = enabled;
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Certs> {
        self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Picks a certificate whose key `usable` accepts for a ClientHello with `sni` received on
    /// `local_ip`. The flag says whether the SNI name chose it (the server then acknowledges
    /// the name in its ServerHello).
    pub(crate) fn resolve(
        &self,
        sni: Option<&str>,
        local_ip: Option<IpAddr>,
        usable: impl Fn(&CertifiedKey) -> bool,
    ) -> Option<(Arc<CertifiedKey>, bool)> {
        let certs = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(name) = sni {
            if let Some(keys) = certs.by_name.get(&name.to_ascii_lowercase()) {
                // The name is ours: only its own certificates serve it (another cipher suite
                // may suit them better than the default certificate would).
                return keys.iter().find(|k| usable(k)).map(|k| (k.clone(), true));
            }
        } else if let (true, Some(ip)) = (certs.by_ip, local_ip) {
            let name = ServerName::IpAddress(ip.into());
            let found = certs
                .by_name
                .values()
                .flatten()
                .chain(certs.default.iter())
                .find(|k| usable(k) && k.is_valid_for(&name));
            if let Some(k) = found {
                return Some((k.clone(), false));
            }
        }
        certs.default.clone().filter(|k| usable(k)).map(|k| (k, false))
    }

    /// Whether any certificate is configured.
    pub fn is_empty(&self) -> bool {
        let certs = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        certs.default.is_none() && certs.by_name.is_empty()
    }
}

#[cfg(all(test, feature = "aws-lc-rs"))]
mod tests {
    use super::*;
    use crate::crypto::aws_lc::AwsLcProvider;
    use rustls_pki_types::alg_id;

    /// DTLS 1.3 verifies with the first algorithm the provider lists for a scheme: for each
    /// ECDSA scheme that is the scheme's own curve and hash (RFC 8446 §4.2.3), while DTLS 1.2
    /// may use the others (its schemes name only the hash).
    #[test]
    fn the_first_algorithm_of_an_ecdsa_scheme_is_bound_to_its_curve() {
        let p = AwsLcProvider;
        for (scheme, curve, hash) in [
            (SignatureScheme::ECDSA_SECP256R1_SHA256, alg_id::ECDSA_P256, alg_id::ECDSA_SHA256),
            (SignatureScheme::ECDSA_SECP384R1_SHA384, alg_id::ECDSA_P384, alg_id::ECDSA_SHA384),
        ] {
            let algs = p.handshake_signature_algorithms(scheme);
            assert!(algs.len() > 1, "DTLS 1.2 accepts the other curve too");
            assert_eq!(algs[0].public_key_alg_id(), curve, "{scheme:?}");
            assert_eq!(algs[0].signature_alg_id(), hash, "{scheme:?}");
        }
    }
}
