//! Shared by the EdgerOS examples: a throw-away certificate authority for the loopback
//! scenarios, PEM loading as EdgerOS's `cert`/`key`/`passwd`/`ca` options take it, and a
//! stop switch on standard input for the server modes. Each example uses part of it.
#![allow(dead_code)]

use std::error::Error;
use std::io::{self, BufRead};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rdtls::{CertifiedKey, RootStore};

/// Certificates and keys (PEM), as an EdgerOS application would read them with
/// `fs.readString('./cert.pem')`.
pub(crate) struct Pki {
    /// The CA certificate (EdgerOS `ca`).
    pub(crate) ca: String,
    /// The server certificate, valid for `localhost`, `127.0.0.1` and `::1` (EdgerOS `cert`).
    pub(crate) server_cert: String,
    /// Its private key (EdgerOS `key`).
    pub(crate) server_key: String,
    /// A certificate for the SNI name [`SNI_NAME`] (EdgerOS `addcert`).
    pub(crate) sni_cert: String,
    /// Its private key.
    pub(crate) sni_key: String,
    /// A client certificate, for mutual authentication.
    pub(crate) client_cert: String,
    /// Its private key.
    pub(crate) client_key: String,
}

/// The virtual host name the SNI certificate serves (EdgerOS's `addcert` example).
pub(crate) const SNI_NAME: &str = "demo.mysite.com";

impl Pki {
    /// A new CA and certificates signed by it (ECDSA P-256).
    pub(crate) fn generate() -> Result<Self, Box<dyn Error>> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name.push(DnType::CommonName, "dtls examples CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
        let leaf = |names: &[&str], purpose: ExtendedKeyUsagePurpose| -> Result<(String, String), Box<dyn Error>> {
            let mut params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
            params.distinguished_name.push(DnType::CommonName, names[0]);
            params.extended_key_usages = vec![purpose];
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &ca)?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        let (server_cert, server_key) = leaf(&["localhost", "127.0.0.1", "::1"], ExtendedKeyUsagePurpose::ServerAuth)?;
        let (sni_cert, sni_key) = leaf(&[SNI_NAME], ExtendedKeyUsagePurpose::ServerAuth)?;
        let (client_cert, client_key) = leaf(&["edgeros-client"], ExtendedKeyUsagePurpose::ClientAuth)?;
        Ok(Self { ca: ca.pem(), server_cert, server_key, sni_cert, sni_key, client_cert, client_key })
    }
}

/// EdgerOS `cert` + `key` + `passwd`: a certificate chain and its private key (PEM or DER; the
/// key PKCS#8, SEC1 or PKCS#1, or encrypted PKCS#8 with a password).
pub(crate) fn certified_key(cert: &[u8], key: &[u8], passwd: Option<&str>) -> Result<CertifiedKey, rdtls::Error> {
    let provider = rdtls::proto::crypto::default_provider();
    CertifiedKey::from_pem_or_der(&*provider, cert, key, passwd)
}

/// EdgerOS `ca`: trust anchors from PEM (any number of certificates) or DER.
pub(crate) fn roots(ca: &[u8]) -> Result<RootStore, rdtls::Error> {
    let mut roots = RootStore::new();
    roots.add_pem_or_der(ca)?;
    Ok(roots)
}

/// Reads a file named on the command line.
pub(crate) fn read(path: impl AsRef<Path>) -> Result<Vec<u8>, Box<dyn Error>> {
    let path = path.as_ref();
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

/// A flag set when standard input says "quit" or ends (Ctrl-D): the server modes' stop switch.
pub(crate) fn stop_on_quit() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    println!("type quit or Ctrl-D to shut down");
    thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            match line {
                Ok(l) if l.trim() == "quit" => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        flag.store(true, Ordering::Relaxed);
    });
    stop
}
