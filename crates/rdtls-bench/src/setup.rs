//! The same credentials and cipher suites for both stacks.

use std::sync::Arc;

use openssl::pkey::PKey;
use openssl::ssl::{
    SslContext, SslContextBuilder, SslMethod, SslOptions, SslSessionCacheMode, SslVerifyMode, SslVersion,
};
use openssl::x509::X509;
use rdtls_proto::crypto::{default_provider, KxGroup};
use rdtls_proto::pki::{CertificateDer, CertifiedKey, RootStore};
use rdtls_proto::suites::{TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_PSK_WITH_AES_128_GCM_SHA256};
use rdtls_proto::Config;

pub(crate) const PSK_IDENTITY: &[u8] = b"client1";
pub(crate) const PSK_KEY: &[u8] = &[0x1a; 16];
pub(crate) const SERVER_NAME: &str = "bench.example";

/// Which handshake a figure measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// TLS_PSK_WITH_AES_128_GCM_SHA256.
    Psk,
    /// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 with a P-256 certificate and X25519.
    Ecdsa,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Psk => "PSK-AES128-GCM",
            Self::Ecdsa => "ECDHE-ECDSA-AES128-GCM",
        }
    }
}

/// A P-256 server certificate issued by a throwaway CA (DER), and the CA.
pub(crate) struct Credentials {
    pub(crate) ca: Vec<u8>,
    pub(crate) cert: Vec<u8>,
    pub(crate) key_pkcs8: Vec<u8>,
    /// The same three in PEM, for wolfSSL.
    pub(crate) ca_pem: String,
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

impl Credentials {
    pub(crate) fn generate() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "rdtls-bench CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("server key");
        let params = CertificateParams::new(vec![SERVER_NAME.to_owned()]).expect("server params");
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        Self {
            ca: ca_cert.der().to_vec(),
            cert: cert.der().to_vec(),
            key_pkcs8: key.serialize_der(),
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

pub(crate) fn base(kind: Kind) -> rdtls_proto::ConfigBuilder {
    let suite = match kind {
        Kind::Psk => &TLS_PSK_WITH_AES_128_GCM_SHA256,
        Kind::Ecdsa => &TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    };
    // No resumption on either side (a server's default session cache would be counted in
    // its memory): every handshake is a full one, as OpenSSL's below.
    Config::builder()
        .cipher_suites(&[suite])
        .groups(&[KxGroup::X25519])
        .mtu(1400)
        .session_cache_size(0)
        .session_tickets(false)
}

/// Our server configuration for full handshakes.
pub(crate) fn ours_server(kind: Kind, creds: &Credentials, cookie: bool) -> Arc<Config> {
    let b = base_server(kind, creds).cookie_verification(cookie);
    Arc::new(b.build().expect("our server config"))
}

/// Our server's configuration builder: the suite and the credentials.
pub(crate) fn base_server(kind: Kind, creds: &Credentials) -> rdtls_proto::ConfigBuilder {
    let b = base(kind);
    match kind {
        Kind::Psk => b.psk_server_key(PSK_KEY.to_vec()),
        Kind::Ecdsa => {
            let provider = default_provider();
            let key =
                CertifiedKey::from_pem_or_der(&*provider, &creds.cert, &creds.key_pkcs8, None).expect("our server key");
            b.certificate(key)
        }
    }
}

/// Our client configuration. It offers P-256 after X25519: the server's certificate is on
/// P-256, and OpenSSL signs with an ECDSA key only if the client lists its curve (RFC 8422).
pub(crate) fn ours_client(kind: Kind, creds: &Credentials) -> Arc<Config> {
    Arc::new(base_client(kind, creds).build().expect("our client config"))
}

/// Our client's configuration builder.
pub(crate) fn base_client(kind: Kind, creds: &Credentials) -> rdtls_proto::ConfigBuilder {
    let b = base(kind).groups(&[KxGroup::X25519, KxGroup::Secp256r1]);
    match kind {
        Kind::Psk => b.psk(PSK_IDENTITY, PSK_KEY.to_vec()),
        Kind::Ecdsa => {
            let mut roots = RootStore::new();
            roots.add(&CertificateDer::from(creds.ca.clone())).expect("CA");
            b.root_store(roots)
        }
    }
}

fn ossl_base(kind: Kind) -> SslContextBuilder {
    let mut b = SslContextBuilder::new(SslMethod::dtls()).expect("OpenSSL context");
    b.set_min_proto_version(Some(SslVersion::DTLS1_2)).expect("DTLS 1.2");
    b.set_max_proto_version(Some(SslVersion::DTLS1_2)).expect("DTLS 1.2");
    b.set_cipher_list(match kind {
        Kind::Psk => "PSK-AES128-GCM-SHA256",
        Kind::Ecdsa => "ECDHE-ECDSA-AES128-GCM-SHA256",
    })
    .expect("cipher list");
    if kind == Kind::Ecdsa {
        // X25519 for the key exchange; P-256 listed too, as the certificate's curve must be.
        b.set_groups_list("X25519:P-256").expect("groups");
    }
    // No resumption on either side: every handshake is a full one, and no session is cached.
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    b.set_options(SslOptions::NO_TICKET | SslOptions::NO_QUERY_MTU);
    b
}

/// OpenSSL's server context builder with the benchmark's suites and the server's credentials.
pub(crate) fn ossl_server_base(kind: Kind, creds: &Credentials) -> SslContextBuilder {
    let mut b = ossl_base(kind);
    match kind {
        Kind::Psk => b.set_psk_server_callback(|_, _identity, psk| {
            psk[..PSK_KEY.len()].copy_from_slice(PSK_KEY);
            Ok(PSK_KEY.len())
        }),
        Kind::Ecdsa => {
            b.set_certificate(&X509::from_der(&creds.cert).expect("certificate")).expect("set certificate");
            b.set_private_key(&PKey::private_key_from_der(&creds.key_pkcs8).expect("key")).expect("set key");
        }
    }
    b
}

/// OpenSSL's server context; with `cookie`, SSL_OP_COOKIE_EXCHANGE with an HMAC-SHA256 cookie.
pub(crate) fn ossl_server(kind: Kind, creds: &Credentials, cookie: bool) -> SslContext {
    let mut b = ossl_server_base(kind, creds);
    if cookie {
        b.set_options(SslOptions::COOKIE_EXCHANGE);
        let secret: [u8; 32] = rand_secret();
        b.set_cookie_generate_cb(move |_, out| {
            let mac = cookie_mac(&secret);
            out[..mac.len()].copy_from_slice(&mac);
            Ok(mac.len())
        });
        b.set_cookie_verify_cb(move |_, cookie| openssl::memcmp::eq(cookie, &cookie_mac(&secret)));
    }
    b.build()
}

/// What a cookie is computed over: the peer's address and port (a fixed one in memory).
fn cookie_mac(secret: &[u8; 32]) -> Vec<u8> {
    let key = PKey::hmac(secret).expect("HMAC key");
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).expect("HMAC");
    signer.update(&[127, 0, 0, 1, 0x11, 0x5c]).expect("HMAC update");
    let mut mac = signer.sign_to_vec().expect("HMAC final");
    mac.truncate(16);
    mac
}

fn rand_secret() -> [u8; 32] {
    let mut s = [0u8; 32];
    openssl::rand::rand_bytes(&mut s).expect("random");
    s
}

/// OpenSSL's client context.
pub(crate) fn ossl_client(kind: Kind) -> SslContext {
    ossl_client_builder(kind).build()
}

/// OpenSSL's client context builder.
pub(crate) fn ossl_client_builder(kind: Kind) -> SslContextBuilder {
    let mut b = ossl_base(kind);
    match kind {
        Kind::Psk => b.set_psk_client_callback(|_, _hint, identity, psk| {
            identity[..PSK_IDENTITY.len()].copy_from_slice(PSK_IDENTITY);
            identity[PSK_IDENTITY.len()] = 0;
            psk[..PSK_KEY.len()].copy_from_slice(PSK_KEY);
            Ok(PSK_KEY.len())
        }),
        // Only the server's CPU is measured; the client skips chain verification.
        Kind::Ecdsa => b.set_verify(SslVerifyMode::NONE),
    }
    b
}
