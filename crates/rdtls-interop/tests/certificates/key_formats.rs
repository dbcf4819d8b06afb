use super::*;
use std::process::Command;

const PASSWORD: &str = "correct horse battery staple";

/// Runs `openssl <args> -in key.pem -out <file>` on `leaf`'s PKCS#8 PEM key; returns the file.
fn openssl_convert(leaf: &Leaf, args: &[&str]) -> Vec<u8> {
    require("openssl");
    let dir = TempDir::new("key-format");
    let (input, output) = (dir.write("key.pem", &leaf.key_pem), dir.path("converted"));
    let out = Command::new("openssl").args(args).args(["-in", &input, "-out", &output]).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
    std::fs::read(&output).unwrap()
}

/// `key` is PEM whose first line is `-----BEGIN {label}-----`.
fn assert_pem(key: &[u8], label: &str) {
    let text = std::str::from_utf8(key).expect("PEM is text");
    assert!(text.starts_with(&format!("-----BEGIN {label}-----\n")), "not {label}:\n{text}");
}

/// The structure of a DER private key, from its first fields: PKCS#8 `PrivateKeyInfo`
/// (version 0, then an AlgorithmIdentifier SEQUENCE), SEC1 `ECPrivateKey` (version 1, then
/// an OCTET STRING), PKCS#1 `RSAPrivateKey` (version 0, then the modulus INTEGER), or PKCS#8
/// `EncryptedPrivateKeyInfo` (an AlgorithmIdentifier SEQUENCE first).
fn der_kind(key: &[u8]) -> &'static str {
    assert_eq!(key[0], 0x30, "not a DER SEQUENCE: {key:02x?}");
    let skip = if key[1] < 0x80 { 2 } else { 2 + usize::from(key[1] & 0x7f) };
    match &key[skip..skip + 4] {
        [0x02, 0x01, 0x00, 0x30] => "PKCS#8",
        [0x02, 0x01, 0x01, 0x04] => "SEC1",
        [0x02, 0x01, 0x00, 0x02] => "PKCS#1",
        [0x30, ..] => "encrypted PKCS#8",
        other => panic!("unknown DER key structure {other:02x?}"),
    }
}

/// Loads `cert` and `key` with `CertifiedKey::from_pem_or_der` and completes a handshake: our
/// server with the loaded key, our client checking the chain and `localhost`.
fn handshake_with(leaf: &Leaf, cert: &[u8], key: &[u8], password: Option<&str>) {
    let loaded = CertifiedKey::from_pem_or_der(&*default_provider(), cert, key, password).unwrap();
    let suite = match loaded.key_type() {
        rdtls::proto::enums::KeyType::Rsa => &suites::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        _ => ECDSA_GCM.suite,
    };
    let config = Config::builder().cipher_suites(&[suite]).certificate(loaded).build().unwrap();
    let server = Server::bind(loopback(0), Arc::new(config)).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (seen, t) = serve(server, stop.clone());
    let mut client = Client::connect_with_name(addr, "localhost", client_config(suite, None, None), Some(T)).unwrap();
    assert_eq!(client.connection().cipher_suite(), Some(suite));
    assert_eq!(client.connection().peer_certificates(), std::slice::from_ref(&leaf.der));
    client.send(b"signed with a loaded key\n").unwrap();
    let mut buf = [0u8; 256];
    let n = client.recv(&mut buf, Some(T)).unwrap();
    let peer = client.local_addr().unwrap().port();
    assert!(String::from_utf8_lossy(&buf[..n]).ends_with(&format!(":{peer}: ACK")), "{:?}", &buf[..n]);
    client.close().unwrap();
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    let events: Vec<Seen> = seen.try_iter().collect();
    assert!(matches!(events.first(), Some(Seen::Connected { .. })), "{events:?}");
    assert!(
        matches!(events.get(1), Some(Seen::Line { data, .. }) if data == b"signed with a loaded key\n"),
        "{events:?}"
    );
}

fn ecdsa() -> &'static Leaf {
    &pki().server_ecdsa
}

fn rsa() -> &'static Leaf {
    &pki().server_rsa
}

#[test]
fn ecdsa_pkcs8_pem() {
    assert_pem(ecdsa().key_pem.as_bytes(), "PRIVATE KEY");
    handshake_with(ecdsa(), ecdsa().cert_pem.as_bytes(), ecdsa().key_pem.as_bytes(), None);
}

#[test]
fn ecdsa_sec1_pem_pkey_traditional() {
    let key = openssl_convert(ecdsa(), &["pkey", "-traditional"]);
    assert_pem(&key, "EC PRIVATE KEY");
    handshake_with(ecdsa(), ecdsa().cert_pem.as_bytes(), &key, None);
}

#[test]
fn ecdsa_sec1_pem_openssl_ec() {
    let key = openssl_convert(ecdsa(), &["ec"]);
    assert_pem(&key, "EC PRIVATE KEY");
    handshake_with(ecdsa(), ecdsa().cert_pem.as_bytes(), &key, None);
}

/// PKCS#8 DER key and DER certificate.
#[test]
fn ecdsa_pkcs8_der() {
    let key = openssl_convert(ecdsa(), &["pkcs8", "-topk8", "-nocrypt", "-outform", "DER"]);
    assert_eq!(der_kind(&key), "PKCS#8");
    assert_eq!(der_kind(&ecdsa().key_der), "PKCS#8");
    handshake_with(ecdsa(), &ecdsa().der, &key, None);
}

/// SEC1 DER key and DER certificate.
#[test]
fn ecdsa_sec1_der() {
    let key = openssl_convert(ecdsa(), &["ec", "-outform", "DER"]);
    assert_eq!(der_kind(&key), "SEC1");
    handshake_with(ecdsa(), &ecdsa().der, &key, None);
}

#[test]
fn ecdsa_encrypted_pkcs8_pem() {
    let pass = format!("pass:{PASSWORD}");
    let key = openssl_convert(ecdsa(), &["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", &pass]);
    assert_pem(&key, "ENCRYPTED PRIVATE KEY");
    handshake_with(ecdsa(), ecdsa().cert_pem.as_bytes(), &key, Some(PASSWORD));
}

#[test]
fn ecdsa_encrypted_pkcs8_der() {
    let pass = format!("pass:{PASSWORD}");
    #[rustfmt::skip]
    let key = openssl_convert(ecdsa(), &["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", &pass, "-outform", "DER"]);
    assert_eq!(der_kind(&key), "encrypted PKCS#8");
    handshake_with(ecdsa(), &ecdsa().der, &key, Some(PASSWORD));
}

#[test]
fn rsa_pkcs8_pem() {
    assert_pem(rsa().key_pem.as_bytes(), "PRIVATE KEY");
    handshake_with(rsa(), rsa().cert_pem.as_bytes(), rsa().key_pem.as_bytes(), None);
}

#[test]
fn rsa_pkcs1_pem() {
    let key = openssl_convert(rsa(), &["rsa", "-traditional"]);
    assert_pem(&key, "RSA PRIVATE KEY");
    handshake_with(rsa(), rsa().cert_pem.as_bytes(), &key, None);
}

#[test]
fn rsa_pkcs8_der() {
    let key = openssl_convert(rsa(), &["pkcs8", "-topk8", "-nocrypt", "-outform", "DER"]);
    assert_eq!(der_kind(&key), "PKCS#8");
    handshake_with(rsa(), &rsa().der, &key, None);
}

#[test]
fn rsa_pkcs1_der() {
    let key = openssl_convert(rsa(), &["rsa", "-traditional", "-outform", "DER"]);
    assert_eq!(der_kind(&key), "PKCS#1");
    handshake_with(rsa(), &rsa().der, &key, None);
}

#[test]
fn rsa_encrypted_pkcs8_pem() {
    let pass = format!("pass:{PASSWORD}");
    let key = openssl_convert(rsa(), &["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", &pass]);
    assert_pem(&key, "ENCRYPTED PRIVATE KEY");
    handshake_with(rsa(), rsa().cert_pem.as_bytes(), &key, Some(PASSWORD));
}

/// An encrypted key with a wrong password or none: a clear configuration error.
#[test]
fn encrypted_pkcs8_wrong_or_missing_password() {
    let pass = format!("pass:{PASSWORD}");
    let pem = openssl_convert(ecdsa(), &["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", &pass]);
    #[rustfmt::skip]
    let der = openssl_convert(ecdsa(), &["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", &pass, "-outform", "DER"]);
    let load = |key: &[u8], password| {
        CertifiedKey::from_pem_or_der(&*default_provider(), ecdsa().cert_pem.as_bytes(), key, password).unwrap_err()
    };
    for key in [&pem, &der] {
        let wrong = load(key, Some("Tr0ub4dor&3"));
        assert_eq!(wrong, rdtls::Error::Config("wrong password for the private key"));
        assert_eq!(wrong.to_string(), "invalid configuration: wrong password for the private key");
        let empty = load(key, Some(""));
        assert_eq!(empty, rdtls::Error::Config("wrong password for the private key"));
        let missing = load(key, None);
        assert_eq!(missing, rdtls::Error::Config("the private key is encrypted: a password is needed"));
        assert_eq!(missing.to_string(), "invalid configuration: the private key is encrypted: a password is needed");
    }
}
