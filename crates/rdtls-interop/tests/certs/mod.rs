//! Test certificates for the certificate interop tests, generated with `rcgen` on each run and
//! written as PEM files for the peer programs: a root CA, an intermediate CA, and leaf
//! certificates (ECDSA P-256 or RSA-2048) for servers and for clients.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rdtls::proto::crypto::default_provider;
use rdtls::proto::pki::CertificateDer;
use rdtls::{CertifiedKey, RootStore};

/// The key algorithm of a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alg {
    EcdsaP256,
    Rsa2048,
}

impl Alg {
    fn key(self) -> KeyPair {
        match self {
            Self::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            Self::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048),
        }
        .expect("key generation")
    }
}

/// What a leaf certificate is for (its extended key usage).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Usage {
    Server,
    Client,
}

/// A certificate authority that issues leaves and intermediates.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// PEM of the CA certificates between a leaf and the root, nearest first (empty for a root).
    chain_pem: String,
    root_der: CertificateDer<'static>,
    root_pem: String,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2090, 1, 1);
    params
}

impl Ca {
    /// A self-signed root CA (ECDSA P-256).
    pub(crate) fn root(name: &str) -> Self {
        let issuer = CertifiedIssuer::self_signed(ca_params(name), Alg::EcdsaP256.key()).expect("root");
        let (root_der, root_pem) = (issuer.der().clone(), issuer.pem());
        Self { issuer, chain_pem: String::new(), root_der, root_pem }
    }

    /// An intermediate CA (ECDSA P-256) issued by this one.
    pub(crate) fn intermediate(&self, name: &str) -> Self {
        let issuer = CertifiedIssuer::signed_by(ca_params(name), Alg::EcdsaP256.key(), &self.issuer).expect("ca");
        let chain_pem = format!("{}{}", issuer.pem(), self.chain_pem);
        Self { issuer, chain_pem, root_der: self.root_der.clone(), root_pem: self.root_pem.clone() }
    }

    /// This CA's own certificate.
    pub(crate) fn cert_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// The root certificate.
    pub(crate) fn root_der(&self) -> CertificateDer<'static> {
        self.root_der.clone()
    }

    /// A root store trusting only this CA's root.
    pub(crate) fn roots(&self) -> RootStore {
        let mut roots = RootStore::new();
        roots.add(&self.root_der).expect("anchor");
        roots
    }

    /// The root certificate as PEM.
    pub(crate) fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// Issues a leaf for `names` (DNS names or IP addresses), valid from 2020 to 2090.
    pub(crate) fn leaf(&self, alg: Alg, names: &[&str], usage: Usage) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().expect("dns name")),
            })
            .collect();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2090, 1, 1);
        let key = alg.key();
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        Leaf {
            name: names.first().copied().unwrap_or("leaf").to_owned(),
            der: cert.der().clone(),
            cert_pem: cert.pem(),
            intermediates_pem: self.chain_pem.clone(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }
}

/// A leaf certificate, the CA certificates between it and its root, and its private key.
pub(crate) struct Leaf {
    /// The first name, also the common name.
    pub(crate) name: String,
    pub(crate) der: CertificateDer<'static>,
    pub(crate) cert_pem: String,
    pub(crate) intermediates_pem: String,
    /// The key as PKCS#8 PEM.
    pub(crate) key_pem: String,
    /// The key as PKCS#8 DER.
    pub(crate) key_der: Vec<u8>,
}

impl Leaf {
    /// The leaf followed by its intermediates, as PEM.
    pub(crate) fn chain_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.intermediates_pem)
    }

    /// Loaded for our configuration: the whole chain and the PKCS#8 key.
    pub(crate) fn certified_key(&self) -> CertifiedKey {
        CertifiedKey::from_pem_or_der(&*default_provider(), self.chain_pem().as_bytes(), self.key_pem.as_bytes(), None)
            .expect("certified key")
    }
}

/// A directory of its own under the system temporary directory, removed with its files when
/// dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(what: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("rdtls-interop-{what}-{}-{n}", std::process::id()));
        // A leftover of an earlier process with the same id would hold stale files.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    /// Writes `contents` to `name` in this directory; returns the path as a string for a
    /// command line.
    pub(crate) fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.0.join(name);
        fs::write(&path, contents).expect("write temp file");
        path_str(&path)
    }

    /// The path of `name` in this directory.
    pub(crate) fn path(&self, name: &str) -> String {
        path_str(&self.0.join(name))
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("UTF-8 temp path").to_owned()
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
