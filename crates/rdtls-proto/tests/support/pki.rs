//! Test certificates, generated with `rcgen` on each run: a root CA, intermediates, and leaf
//! certificates of each key type, valid, expired, not yet valid, or for other names.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rdtls_proto::crypto::default_provider;
use rdtls_proto::pki::{CertificateDer, CertifiedKey, RootStore};

/// The key algorithm of a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    EcdsaP256,
    EcdsaP384,
    Rsa2048,
    Ed25519,
}

impl Alg {
    fn key(self) -> KeyPair {
        match self {
            Self::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            Self::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            Self::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048),
            Self::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
        }
        .expect("key generation")
    }
}

/// When a leaf is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    Now,
    Expired,
    NotYet,
}

/// What a leaf is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    Server,
    Client,
}

/// A certificate authority that can issue leaves and intermediates.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// Certificates between a leaf and the root, nearest first (empty for the root itself).
    chain: Vec<CertificateDer<'static>>,
    root: CertificateDer<'static>,
}

impl Ca {
    /// A self-signed root.
    pub fn root(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, Alg::EcdsaP256.key()).expect("root");
        let root = issuer.der().clone();
        Self { issuer, chain: Vec::new(), root }
    }

    /// An intermediate CA issued by this one.
    pub fn intermediate(&self, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::signed_by(params, Alg::EcdsaP256.key(), &self.issuer).expect("intermediate");
        let mut chain = vec![issuer.der().clone()];
        chain.extend(self.chain.iter().cloned());
        Self { issuer, chain, root: self.root.clone() }
    }

    /// A root store trusting this CA's root.
    pub fn roots(&self) -> RootStore {
        let mut roots = RootStore::new();
        roots.add(&self.root).expect("anchor");
        roots
    }

    /// The root certificate as PEM.
    pub fn root_pem(&self) -> String {
        pem("CERTIFICATE", &self.root)
    }

    /// Issues a leaf for `names` (DNS names or IP addresses). Returns the chain (leaf first, then
    /// intermediates) and the key pair.
    pub fn leaf(&self, alg: Alg, names: &[&str], usage: Usage, validity: Validity) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().expect("dns name")),
            })
            .collect();
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        let (from, to) = match validity {
            Validity::Now => ((2020, 1, 1), (2090, 1, 1)),
            Validity::Expired => ((2001, 1, 1), (2002, 1, 1)),
            Validity::NotYet => ((2090, 1, 1), (2091, 1, 1)),
        };
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        let key = alg.key();
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        let mut chain = vec![cert.der().clone()];
        chain.extend(self.chain.iter().cloned());
        Leaf { chain, key }
    }
}

/// A leaf certificate with its chain and key.
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: KeyPair,
}

impl Leaf {
    /// The chain as PEM.
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(|c| pem("CERTIFICATE", c)).collect()
    }

    /// The key as PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Loaded for our configuration.
    pub fn certified_key(&self) -> CertifiedKey {
        CertifiedKey::from_pem_or_der(
            &*default_provider(),
            self.chain_pem().as_bytes(),
            self.key_pem().as_bytes(),
            None,
        )
        .expect("certified key")
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    ::pem::encode(&::pem::Pem::new(label, der.to_vec()))
}

/// A root and a server certificate (ECDSA P-256) for `localhost` and `other.example`: what the
/// resumption tests of both versions run on.
pub struct ServerPki {
    pub ca: Ca,
    pub leaf: Leaf,
}

impl ServerPki {
    pub fn new(root: &str) -> Self {
        let ca = Ca::root(root);
        let leaf = ca.leaf(Alg::EcdsaP256, &["localhost", "other.example"], Usage::Server, Validity::Now);
        Self { ca, leaf }
    }

    /// `base` as a client that trusts the root and keeps sessions.
    pub fn resuming_client(&self, base: rdtls_proto::ConfigBuilder) -> rdtls_proto::ConfigBuilder {
        base.root_store(self.ca.roots()).session_resumption(true)
    }

    /// `base` as a server with the certificate.
    pub fn server(&self, base: rdtls_proto::ConfigBuilder) -> rdtls_proto::ConfigBuilder {
        base.certificate(self.leaf.certified_key())
    }
}
