//! Options shared by the subcommands, and the configurations built from them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use rdtls::proto::crypto::{default_provider, KxGroup};
use rdtls::proto::enums::Protocol;
use rdtls::proto::srtp::SrtpProfile;
use rdtls::proto::suites::{self, CipherSuite};
use rdtls::proto::{CertifiedKey, ConfigBuilder, RootStore};

use crate::log::unhex;

/// TLS options common to clients and servers.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TlsArgs {
    /// Pre-shared key in hex. A server accepts any identity with it (as Qt's example does); a
    /// client sends its association name as the identity.
    #[arg(long, value_name = "HEX")]
    pub(crate) psk_key: Option<String>,
    /// A PSK identity and its key in hex (repeatable).
    #[arg(long = "psk", value_name = "IDENTITY:HEX")]
    pub(crate) psks: Vec<String>,
    /// Certificate chain, PEM or DER (repeatable on servers, each followed by its --key).
    #[arg(long = "cert", value_name = "FILE")]
    pub(crate) certs: Vec<PathBuf>,
    /// Private key for the preceding --cert: PKCS#8, SEC1 or PKCS#1, PEM or DER, or encrypted PKCS#8.
    #[arg(long = "key", value_name = "FILE")]
    pub(crate) keys: Vec<PathBuf>,
    /// Password of an encrypted private key (for the preceding --cert).
    #[arg(long = "key-password", value_name = "PW")]
    pub(crate) key_passwords: Vec<String>,
    /// Trusted CA certificates, PEM or DER (repeatable).
    #[arg(long = "ca", value_name = "FILE")]
    pub(crate) cas: Vec<PathBuf>,
    /// Largest datagram for handshake messages.
    #[arg(long, value_name = "N")]
    pub(crate) mtu: Option<usize>,
    /// Cipher suites in order of preference, IANA or OpenSSL names, separated by ',' or ':'.
    #[arg(long, value_name = "LIST")]
    pub(crate) ciphers: Option<String>,
    /// Key exchange groups in order of preference, separated by ',' or ':': X25519MLKEM768,
    /// SecP256r1MLKEM768 (post-quantum hybrids, DTLS 1.3 only), x25519, secp256r1, secp384r1.
    /// Default: X25519MLKEM768,x25519,secp256r1,secp384r1. DTLS 1.2 uses the curves alone.
    #[arg(long, value_name = "LIST")]
    pub(crate) groups: Option<String>,
    /// Handshake timeout in seconds (2 to 120; default 60).
    #[arg(long, value_name = "SECS")]
    pub(crate) handshake_timeout: Option<f64>,
    /// Append each connection's secrets to FILE in the NSS key log format, for Wireshark
    /// (default: the file SSLKEYLOGFILE names, if set). Anyone who reads it decrypts the
    /// traffic: for debugging only.
    #[arg(long, value_name = "FILE")]
    pub(crate) keylog: Option<PathBuf>,
    /// Protocol version: a server of `any` accepts DTLS 1.2 and 1.3 clients; a client of `any`
    /// offers DTLS 1.3 and falls back to 1.2.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Any)]
    pub(crate) protocol: ProtocolArg,
    /// Ask the peer to send its records with an N-byte connection ID (0 to 20; RFC 9146 for
    /// DTLS 1.2, RFC 9147 §9 for 1.3), so that the association survives the peer's address
    /// changing (a NAT rebinding).
    #[arg(long, value_name = "N")]
    pub(crate) cid: Option<usize>,
    /// With `--cid`: return routability checks (RFC 9853). A server then follows a peer to a
    /// new address only once the peer answered a challenge there, and sends there no more than
    /// three times what came from there meanwhile.
    #[arg(long, requires = "cid")]
    pub(crate) rrc: bool,
    /// DTLS-SRTP (RFC 5764): SRTP protection profiles in order of preference, separated by ','
    /// or ':' (SRTP_AEAD_AES_128_GCM, SRTP_AEAD_AES_256_GCM, SRTP_AES128_CM_HMAC_SHA1_80,
    /// SRTP_AES128_CM_HMAC_SHA1_32; OpenSSL's SRTP_AES128_CM_SHA1_80 names too). A client
    /// offers them, a server takes the first of them the client offered; the established line
    /// names the profile agreed on.
    #[arg(long, value_name = "LIST")]
    pub(crate) srtp_profiles: Option<String>,
    /// Application-layer protocols (ALPN, RFC 7301) in order of preference, separated by ','
    /// (`coap,mqtt`). A client offers them; a server takes the first of them the client
    /// offered and refuses a client that offered only others (no_application_protocol). The
    /// established line names the protocol agreed on.
    #[arg(long, value_name = "LIST")]
    pub(crate) alpn: Option<String>,
}

/// The `--protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ProtocolArg {
    /// DTLS 1.2 only.
    #[value(name = "1.2")]
    V1_2,
    /// DTLS 1.3 only.
    #[value(name = "1.3")]
    V1_3,
    /// DTLS 1.3, or 1.2 with a peer that has no 1.3.
    Any,
}

impl ProtocolArg {
    /// The oldest and newest versions allowed.
    pub(crate) fn versions(self) -> (Protocol, Protocol) {
        match self {
            Self::V1_2 => (Protocol::Dtls1_2, Protocol::Dtls1_2),
            Self::V1_3 => (Protocol::Dtls1_3, Protocol::Dtls1_3),
            Self::Any => (Protocol::Dtls1_2, Protocol::Dtls1_3),
        }
    }
}

/// `IDENTITY:HEX` pairs.
pub(crate) fn parse_psks(list: &[String]) -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    list.iter()
        .map(|p| {
            let (id, key) = p.rsplit_once(':').with_context(|| format!("--psk '{p}' is not IDENTITY:HEX"))?;
            Ok((id.as_bytes().to_vec(), unhex(key).with_context(|| format!("--psk '{p}'"))?))
        })
        .collect()
}

/// Parses a cipher list.
pub(crate) fn parse_ciphers(list: &str) -> anyhow::Result<Vec<&'static CipherSuite>> {
    let mut out = Vec::new();
    for name in list.split([',', ':']).map(str::trim).filter(|n| !n.is_empty()) {
        match CipherSuite::from_name(name) {
            Some(s) => out.push(s),
            None => {
                let known: Vec<&str> = suites::ALL.iter().map(|s| s.openssl_name).collect();
                bail!("unknown cipher suite '{name}'; known: {}", known.join(", "));
            }
        }
    }
    anyhow::ensure!(!out.is_empty(), "--ciphers is empty");
    Ok(out)
}

/// Parses the list of option `flag`: names separated by ',' or ':', at least one.
pub(crate) fn parse_list<T>(flag: &str, list: &str) -> anyhow::Result<Vec<T>>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let items = list
        .split([',', ':'])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| n.parse::<T>().map_err(|e| anyhow::anyhow!("{flag}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!items.is_empty(), "{flag} is empty");
    Ok(items)
}

/// The handshake timeout, checked against EdgerOS's range.
pub(crate) fn handshake_timeout(secs: Option<f64>) -> anyhow::Result<Option<Duration>> {
    match secs {
        None => Ok(None),
        Some(s) if s.is_finite() && (2.0..=120.0).contains(&s) => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => bail!("--handshake-timeout {s}: must be between 2 and 120 seconds"),
    }
}

/// Loads trust anchors from files.
pub(crate) fn root_store(files: &[PathBuf]) -> anyhow::Result<RootStore> {
    let mut roots = RootStore::new();
    for f in files {
        let data = std::fs::read(f).with_context(|| format!("cannot read CA file {}", f.display()))?;
        roots.add_pem_or_der(&data).with_context(|| format!("invalid CA file {}", f.display()))?;
    }
    Ok(roots)
}

/// Loads a certificate chain and its key.
pub(crate) fn certified_key(cert: &PathBuf, key: &PathBuf, password: Option<&str>) -> anyhow::Result<CertifiedKey> {
    let certs = std::fs::read(cert).with_context(|| format!("cannot read certificate {}", cert.display()))?;
    let keyd = std::fs::read(key).with_context(|| format!("cannot read key {}", key.display()))?;
    CertifiedKey::from_pem_or_der(&*default_provider(), &certs, &keyd, password)
        .with_context(|| format!("cannot load {} with {}", cert.display(), key.display()))
}

/// Applies the options every role shares.
pub(crate) fn common(args: &TlsArgs, mut b: ConfigBuilder) -> anyhow::Result<ConfigBuilder> {
    let (oldest, newest) = args.protocol.versions();
    b = b.protocol_versions(oldest, newest);
    if let Some(n) = args.cid {
        b = b.connection_id(n).return_routability_check(args.rrc);
    }
    if let Some(mtu) = args.mtu {
        b = b.mtu(mtu);
    }
    if let Some(list) = &args.ciphers {
        b = b.cipher_suites(&parse_ciphers(list)?);
    }
    if let Some(list) = &args.groups {
        b = b.groups(&parse_list::<KxGroup>("--groups", list)?);
    }
    if let Some(list) = &args.srtp_profiles {
        b = b.srtp_profiles(&parse_list::<SrtpProfile>("--srtp-profiles", list)?);
    }
    if let Some(list) = &args.alpn {
        let protocols: Vec<&str> = list.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
        anyhow::ensure!(!protocols.is_empty(), "--alpn is empty");
        b = b.alpn_protocols(&protocols);
    }
    if let Some(t) = handshake_timeout(args.handshake_timeout)? {
        b = b.handshake_timeout(t);
    }
    if !args.cas.is_empty() {
        b = b.root_store(root_store(&args.cas)?);
    }
    let key_log = match &args.keylog {
        Some(path) => Some(rdtls::KeyLogFile::create(path)?),
        None => rdtls::KeyLogFile::from_env()?,
    };
    if let Some(log) = key_log {
        tracing::warn!("key log: connection secrets go to {} (for debugging only)", log.path().display());
        b = b.key_log(log);
    }
    Ok(b)
}
