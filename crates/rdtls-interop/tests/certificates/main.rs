//! Interop of the certificate suites with OpenSSL's (`openssl s_server`/`s_client -dtls1_2`)
//! and GnuTLS's (`gnutls-serv`/`gnutls-cli --udp`) command-line peers, both roles: every
//! ECDHE-ECDSA and ECDHE-RSA suite, host name checks both ways, mutual authentication, a chain
//! with an intermediate CA, fragmented certificate flights, refused certificates, and the private
//! key formats we load.
//!
//! Certificates are generated on each run (see `certs/mod.rs`) and written as PEM files into a
//! temporary directory for the peers. Server certificates name `localhost` only: our client checks
//! that name (`connect_with_name`), and so do the peers (`s_client -verify_hostname localhost`,
//! `gnutls-cli --verify-hostname localhost`) while connecting to 127.0.0.1, so a peer that checked
//! the address instead would fail.
//!
//! Peer behaviour relied on (OpenSSL 3.0, gnutls-bin 3.7.9), besides what `openssl.rs` and
//! `gnutls.rs` say:
//! - `s_server`/`s_client` with `-CAfile` complete their own chain from that file: they send the
//!   root after their leaf. Without `-CAfile` (or with `-verifyCAfile`, which only verifies the
//!   peer) they send exactly `-cert` and `-cert_chain`.
//! - `gnutls-serv` asks every client for a certificate unless told otherwise, and verifies it
//!   only with `--verify-client-cert`; it sends every certificate of `--x509certfile`.

#[path = "../certs/mod.rs"]
mod certs;
#[allow(dead_code)]
#[path = "../relay/mod.rs"]
mod relay;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rdtls::proto::crypto::default_provider;
use rdtls::proto::pki::CertificateDer;
use rdtls::{CertificateError, CertifiedKey, Client, ClientAuth, Config, Server, ServerEvent};
use rdtls_interop::{free_udp_port, loopback, require, Peer};
use rdtls_proto::suites;

use certs::{Alg, Ca, Leaf, TempDir, Usage};
use relay::{Dir, Relay};

const T: Duration = Duration::from_secs(20);

// ===== the test PKI =====

/// Every certificate the tests use, generated once per run.
struct Pki {
    /// The root every test trusts.
    root: Ca,
    /// An intermediate CA under `root`.
    intermediate: Ca,
    /// `localhost` server leaves issued by `root`.
    server_ecdsa: Leaf,
    server_rsa: Leaf,
    /// A `localhost` server leaf issued by `intermediate`.
    server_via_intermediate: Leaf,
    /// Client leaves issued by `root`.
    client_ecdsa: Leaf,
    client_rsa: Leaf,
    /// A server leaf issued by `root` for another name.
    server_other_name: Leaf,
    /// A `localhost` server leaf issued by a root nobody trusts.
    server_unknown_ca: Leaf,
    /// A client leaf issued by a root nobody trusts.
    client_unknown_ca: Leaf,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let root = Ca::root("rdtls-interop root");
        let intermediate = root.intermediate("rdtls-interop intermediate");
        let other_root = Ca::root("rdtls-interop untrusted root");
        Pki {
            server_ecdsa: root.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server),
            server_rsa: root.leaf(Alg::Rsa2048, &["localhost"], Usage::Server),
            server_via_intermediate: intermediate.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server),
            client_ecdsa: root.leaf(Alg::EcdsaP256, &["client.rdtls-interop.test"], Usage::Client),
            client_rsa: root.leaf(Alg::Rsa2048, &["rsa-client.rdtls-interop.test"], Usage::Client),
            server_other_name: root.leaf(Alg::EcdsaP256, &["other.rdtls-interop.test"], Usage::Server),
            server_unknown_ca: other_root.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server),
            client_unknown_ca: other_root.leaf(Alg::EcdsaP256, &["client.rdtls-interop.test"], Usage::Client),
            root,
            intermediate,
        }
    })
}

/// The files a peer program reads, in a temporary directory removed with it.
struct PeerFiles {
    _dir: TempDir,
    /// The trusted root (PEM).
    root: String,
    /// The peer's leaf certificate alone (PEM).
    cert: String,
    /// The peer's intermediates (PEM), if it has any.
    intermediates: Option<String>,
    /// The leaf followed by its intermediates (PEM).
    chain: String,
    /// The private key (PKCS#8 PEM).
    key: String,
}

impl PeerFiles {
    fn new(what: &str, leaf: &Leaf) -> Self {
        let dir = TempDir::new(what);
        Self {
            root: dir.write("root.pem", pki().root.root_pem()),
            cert: dir.write("cert.pem", &leaf.cert_pem),
            intermediates: (!leaf.intermediates_pem.is_empty())
                .then(|| dir.write("intermediates.pem", &leaf.intermediates_pem)),
            chain: dir.write("chain.pem", leaf.chain_pem()),
            key: dir.write("key.pem", &leaf.key_pem),
            _dir: dir,
        }
    }
}

/// The body of a Certificate handshake message carrying `chain` (RFC 5246 §7.4.2).
fn certificate_body(chain: &[&CertificateDer<'_>]) -> Vec<u8> {
    let u24 = |n: usize| u32::try_from(n).expect("short").to_be_bytes()[1..].to_vec();
    let list: Vec<u8> = chain.iter().flat_map(|c| [u24(c.len()), c.to_vec()].concat()).collect();
    [u24(list.len()), list].concat()
}

/// Handshake type `certificate`.
const CERTIFICATE: u8 = 11;

/// The base64 body of the first PEM certificate printed after `marker` in `text`.
fn pem_after(text: &str, marker: &str) -> Option<String> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let begin = rest.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = rest.find("-----END CERTIFICATE-----")?;
    Some(rest[begin..end].split_whitespace().collect())
}

/// The base64 body of a PEM certificate.
fn pem_body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().concat()
}

// ===== the suites =====

/// One of our certificate suites, with how GnuTLS names it.
struct Suite {
    suite: &'static rdtls::CipherSuite,
    gnutls_kx: &'static str,
    gnutls_cipher: &'static str,
}

impl Suite {
    /// A GnuTLS priority string that allows exactly this suite, over DTLS 1.2 only.
    fn priority(&self) -> String {
        gnutls_priority(self.gnutls_kx, self.gnutls_cipher)
    }

    /// The server certificate this suite needs.
    fn server_leaf(&self) -> &'static Leaf {
        match self.suite.key_exchange {
            suites::KeyExchange::EcdheEcdsa => &pki().server_ecdsa,
            suites::KeyExchange::EcdheRsa => &pki().server_rsa,
            other => panic!("not a certificate suite: {other:?}"),
        }
    }
}

fn gnutls_priority(kx: &str, cipher: &str) -> String {
    format!("NONE:+VERS-DTLS1.2:+{kx}:+{cipher}:+AEAD:+SIGN-ALL:+COMP-NULL:+GROUP-ALL")
}

/// The suite of the tests that are not about suites.
const ECDSA_GCM: Suite = Suite {
    suite: &suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    gnutls_kx: "ECDHE-ECDSA",
    gnutls_cipher: "AES-128-GCM",
};

// ===== our side =====

/// Our client's configuration: `suite` only, trusting the test root, with `client_cert` if any.
fn client_config(suite: &'static rdtls::CipherSuite, client_cert: Option<&Leaf>, mtu: Option<usize>) -> Arc<Config> {
    let mut b = Config::builder().cipher_suites(&[suite]).root_store(pki().root.roots());
    if let Some(leaf) = client_cert {
        b = b.client_certificate(leaf.certified_key());
    }
    if let Some(mtu) = mtu {
        b = b.mtu(mtu);
    }
    Arc::new(b.build().unwrap())
}

/// Our server's configuration: `suite` only, certificate `leaf`, and client authentication.
fn server_config(
    suite: &'static rdtls::CipherSuite,
    leaf: &Leaf,
    client_auth: ClientAuth,
    mtu: Option<usize>,
) -> Arc<Config> {
    let mut b = Config::builder()
        .cipher_suites(&[suite])
        .certificate(leaf.certified_key())
        .root_store(pki().root.roots())
        .client_auth(client_auth);
    if let Some(mtu) = mtu {
        b = b.mtu(mtu);
    }
    Arc::new(b.build().unwrap())
}

/// What the server thread saw.
#[derive(Debug)]
enum Seen {
    Connected {
        peer: SocketAddr,
        suite: Option<&'static rdtls::CipherSuite>,
        certs: Vec<CertificateDer<'static>>,
        sni: Option<String>,
        /// The handshake resumed a session.
        resumed: bool,
    },
    /// A whole line (several records joined until a newline), answered with `to <peer>: ACK`.
    Line { peer: SocketAddr, data: Vec<u8> },
    /// The association ended (`None`: closed by us).
    Closed { error: Option<rdtls::Error> },
}

/// Runs `server` on a thread until `stop`, reporting what it sees; answers every line.
fn serve(mut server: Server, stop: Arc<AtomicBool>) -> (Receiver<Seen>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        let mut data = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let seen = match server.poll(Some(Duration::from_millis(50))).unwrap() {
                None => continue,
                Some(ServerEvent::Connected(peer)) => {
                    let conn = server.connection(peer).expect("connected peer has a connection");
                    Seen::Connected {
                        peer,
                        suite: conn.cipher_suite(),
                        certs: conn.peer_certificates().to_vec(),
                        sni: conn.requested_server_name().map(str::to_owned),
                        resumed: conn.resumed(),
                    }
                }
                Some(ServerEvent::Message(peer, part)) => {
                    data.extend_from_slice(&part);
                    if !data.ends_with(b"\n") {
                        continue;
                    }
                    server.send_to(peer, format!("to {peer}: ACK").as_bytes()).unwrap();
                    Seen::Line { peer, data: std::mem::take(&mut data) }
                }
                Some(ServerEvent::Closed(_, error)) => Seen::Closed { error },
                // A peer verified, a handshake that could not start: the outcome comes as above.
                Some(ServerEvent::Verified { .. } | ServerEvent::Refused(..)) => continue,
                Some(other) => panic!("unexpected {other:?}"),
            };
            if tx.send(seen).is_err() {
                return;
            }
        }
    });
    (rx, t)
}

/// Our server on a thread, stopped and joined when dropped.
struct OurServer {
    addr: SocketAddr,
    seen: Receiver<Seen>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OurServer {
    fn start(config: Arc<Config>) -> Self {
        let server = Server::bind(loopback(0), config).unwrap();
        let addr = server.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, thread) = serve(server, stop.clone());
        Self { addr, seen, stop, thread: Some(thread) }
    }

    /// The next event, or a panic naming `what` was expected, with what `peer` printed.
    fn next(&self, what: &str, peer: &Peer) -> Seen {
        self.seen
            .recv_timeout(T)
            .unwrap_or_else(|e| panic!("expected {what}, got {e:?}; the peer printed:\n{}", peer.output()))
    }

    /// Stops the server; panics if it saw anything more.
    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let rest: Vec<Seen> = self.seen.try_iter().collect();
        assert!(rest.is_empty(), "unexpected server events: {rest:?}");
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Expects a completed handshake; returns the peer address, checking suite, SNI and the client
/// certificates our server received.
fn expect_connected(
    server: &OurServer,
    peer: &Peer,
    suite: &'static rdtls::CipherSuite,
    sni: Option<&str>,
    client_certs: &[&CertificateDer<'_>],
) -> SocketAddr {
    match server.next("a handshake", peer) {
        Seen::Connected { peer: addr, suite: got, certs, sni: got_sni, .. } => {
            assert_eq!(got, Some(suite));
            assert_eq!(got_sni.as_deref(), sni);
            let certs: Vec<&CertificateDer<'_>> = certs.iter().collect();
            assert_eq!(certs, client_certs, "client certificates our server received");
            addr
        }
        other => panic!("expected a handshake, got {other:?}; the peer printed:\n{}", peer.output()),
    }
}

/// Expects one line from the peer.
fn expect_line(server: &OurServer, peer: &Peer, from: SocketAddr, line: &str) {
    match server.next("a line", peer) {
        Seen::Line { peer: addr, data } => {
            assert_eq!(addr, from);
            assert_eq!(String::from_utf8_lossy(&data), format!("{line}\n"));
        }
        other => panic!("expected a line, got {other:?}; the peer printed:\n{}", peer.output()),
    }
}

/// Expects our server to refuse the peer's handshake with `error`.
fn expect_refused(server: &OurServer, peer: &Peer, error: rdtls::Error) {
    match server.next("a refused handshake", peer) {
        Seen::Closed { error: Some(got), .. } => assert_eq!(got, error),
        other => panic!("expected a refused handshake, got {other:?}; the peer printed:\n{}", peer.output()),
    }
}

/// The `rdtls::Error` inside an error returned by our blocking client.
fn inner_error(e: &std::io::Error) -> &rdtls::Error {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rdtls::Error>())
        .unwrap_or_else(|| panic!("not a DTLS error: {e:?}"))
}

mod peers;
use peers::*;

macro_rules! suites {
    ($($name:ident => $suite:expr, $kx:literal, $cipher:literal;)*) => {
        const SUITES: &[Suite] = &[$(Suite { suite: &$suite, gnutls_kx: $kx, gnutls_cipher: $cipher },)*];
        mod suite {
            use super::*;
            mod openssl_our_client {
                use super::*;
                $( #[test] fn $name() { our_client_against_s_server(&Suite { suite: &$suite, gnutls_kx: $kx, gnutls_cipher: $cipher }); } )*
            }
            mod openssl_our_server {
                use super::*;
                $( #[test] fn $name() { s_client_against_our_server(&Suite { suite: &$suite, gnutls_kx: $kx, gnutls_cipher: $cipher }); } )*
            }
            mod gnutls_our_client {
                use super::*;
                $( #[test] fn $name() { our_client_against_gnutls_serv(&Suite { suite: &$suite, gnutls_kx: $kx, gnutls_cipher: $cipher }); } )*
            }
            mod gnutls_our_server {
                use super::*;
                $( #[test] fn $name() { gnutls_cli_against_our_server(&Suite { suite: &$suite, gnutls_kx: $kx, gnutls_cipher: $cipher }); } )*
            }
        }
    };
}

suites! {
    ecdhe_ecdsa_aes128_gcm => suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "ECDHE-ECDSA", "AES-128-GCM";
    ecdhe_ecdsa_aes256_gcm => suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "ECDHE-ECDSA", "AES-256-GCM";
    ecdhe_ecdsa_chacha20 => suites::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-ECDSA", "CHACHA20-POLY1305";
    ecdhe_ecdsa_aes128_ccm8 => suites::TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, "ECDHE-ECDSA", "AES-128-CCM-8";
    ecdhe_rsa_aes128_gcm => suites::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "ECDHE-RSA", "AES-128-GCM";
    ecdhe_rsa_aes256_gcm => suites::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "ECDHE-RSA", "AES-256-GCM";
    ecdhe_rsa_chacha20 => suites::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-RSA", "CHACHA20-POLY1305";
}

/// Every certificate suite of ours is in the matrix above.
#[test]
fn every_certificate_suite_is_tested() {
    let mut ours: Vec<u16> = suites::ALL.iter().filter(|s| s.key_exchange.uses_certificate()).map(|s| s.id).collect();
    let mut tested: Vec<u16> = SUITES.iter().map(|s| s.suite.id).collect();
    ours.sort_unstable();
    tested.sort_unstable();
    assert_eq!(ours, tested, "a certificate suite was added to the crate: add it to the interop matrix");
}

/// `openssl ciphers` resolves each `-cipher` name above to exactly its suite, a TLS 1.2 suite
/// (what DTLS 1.2 uses), CCM included (OpenSSL's DEFAULT list leaves CCM out).
#[test]
fn openssl_cipher_names_pin_one_suite() {
    require("openssl");
    for s in SUITES {
        let out = std::process::Command::new("openssl")
            .args(["ciphers", "-tls1_2", "-s", "-stdname", "-ciphersuites", "", s.suite.openssl_name])
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl ciphers {}: {out:?}", s.suite.openssl_name);
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{}: {text}", s.suite.openssl_name);
        assert!(
            lines[0].starts_with(&format!("{} ", s.suite.name)),
            "{} is not {}: {text}",
            s.suite.openssl_name,
            s.suite.name
        );
    }
}

/// `0xc0, 0x2b`, as `gnutls-cli --list` prints a code point.
fn code_point(id: u16) -> String {
    let [hi, lo] = id.to_be_bytes();
    format!("0x{hi:02x}, 0x{lo:02x}")
}

/// Each GnuTLS priority string above allows exactly its suite, over DTLS 1.2 only.
#[test]
fn gnutls_priority_strings_pin_one_suite() {
    require("gnutls-cli");
    for s in SUITES {
        let out =
            std::process::Command::new("gnutls-cli").args(["--list", "--priority", &s.priority()]).output().unwrap();
        assert!(out.status.success(), "gnutls-cli --list --priority {}: {out:?}", s.priority());
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TLS_")).collect();
        assert_eq!(lines.len(), 1, "{}: {lines:?}", s.priority());
        assert!(lines[0].contains(&code_point(s.suite.id)), "{} is not {}: {lines:?}", s.priority(), s.suite.name);
        assert!(text.contains("Protocols: VERS-DTLS1.2\n"), "{text}");
    }
}

// ===== mutual authentication =====

/// The client certificate of a mutual-authentication test.
fn client_leaf(alg: Alg) -> &'static Leaf {
    match alg {
        Alg::EcdsaP256 => &pki().client_ecdsa,
        Alg::Rsa2048 => &pki().client_rsa,
    }
}

/// Our client presents a certificate to `s_server -Verify 1 -verify_return_error -CAfile`, which
/// verifies it against the test root and prints it; our client sees the server's chain as
/// s_server completes it from `-CAfile` (leaf and root).
fn mutual_our_client_against_s_server(alg: Alg) {
    let (leaf, client) = (&pki().server_ecdsa, client_leaf(alg));
    let f = PeerFiles::new("s-server-mutual", leaf);
    let port = free_udp_port();
    let mut server = s_server(port, ECDSA_GCM.suite, &f, &["-Verify", "1", "-verify_return_error", "-CAfile", &f.root]);
    let config = client_config(ECDSA_GCM.suite, Some(client), None);
    let mut client_conn = Client::connect_with_name(loopback(port), "localhost", config, Some(T))
        .unwrap_or_else(|e| panic!("{e}; s_server printed:\n{}", server.output()));
    let root = pki().root.root_der();
    assert_eq!(client_conn.connection().peer_certificates(), [leaf.der.clone(), root]);
    talk_to_s_server(&mut client_conn, &mut server);
    let out = server.output();
    assert_eq!(pem_after(&out, "Client certificate"), Some(pem_body(&client.cert_pem)), "{out}");
    assert!(out.contains(&format!("depth=0 CN = {}\nverify return:1", client.name)), "{out}");
    assert!(!out.contains("verify error"), "{out}");
}

/// `s_client -cert -key` presents its certificate to our server with `ClientAuth::Required`,
/// which verifies it and reports the chain s_client sent (its leaf, then the root it completes
/// the chain with from `-CAfile`).
fn mutual_s_client_against_our_server(alg: Alg) {
    let client = client_leaf(alg);
    let f = PeerFiles::new("s-client-mutual", client);
    let server = OurServer::start(server_config(ECDSA_GCM.suite, &pki().server_ecdsa, ClientAuth::Required, None));
    let mut cli = s_client(server.addr.port(), ECDSA_GCM.suite, &f, &["-cert", &f.cert, "-key", &f.key]);
    let root = pki().root.root_der();
    let peer = expect_connected(&server, &cli, ECDSA_GCM.suite, Some("localhost"), &[&client.der, &root]);
    s_client_verified(&cli, ECDSA_GCM.suite);
    cli.send_line("hello from openssl");
    expect_line(&server, &cli, peer, "hello from openssl");
    cli.expect(&format!("to {peer}: ACK"), T);
    server.finish();
}

/// Our client presents a certificate to `gnutls-serv --require-client-cert --verify-client-cert`
/// (which refuses one from an unknown CA: see `negative::gnutls_serv_refuses_our_unknown_ca`).
fn mutual_our_client_against_gnutls_serv(alg: Alg) {
    let (leaf, client) = (&pki().server_ecdsa, client_leaf(alg));
    let f = PeerFiles::new("gnutls-serv-mutual", leaf);
    let port = free_udp_port();
    #[rustfmt::skip]
    let server = gnutls_serv(port, &ECDSA_GCM.priority(), &f, &[
        "--require-client-cert", "--verify-client-cert", "--x509cafile", &f.root,
    ]);
    let config = client_config(ECDSA_GCM.suite, Some(client), None);
    let mut client_conn = Client::connect_with_name(loopback(port), "localhost", config, Some(T))
        .unwrap_or_else(|e| panic!("{e}; gnutls-serv printed:\n{}", server.output()));
    assert_eq!(client_conn.connection().peer_certificates(), std::slice::from_ref(&leaf.der));
    talk_to_gnutls_serv(&mut client_conn, &server);
}

/// `gnutls-cli --x509certfile --x509keyfile` presents its certificate to our server with
/// `ClientAuth::Required`, which verifies it and reports exactly that certificate.
fn mutual_gnutls_cli_against_our_server(alg: Alg) {
    let client = client_leaf(alg);
    let f = PeerFiles::new("gnutls-cli-mutual", client);
    let server = OurServer::start(server_config(ECDSA_GCM.suite, &pki().server_ecdsa, ClientAuth::Required, None));
    let mut cli = gnutls_cli(
        server.addr.port(),
        &ECDSA_GCM.priority(),
        &f,
        &["--x509certfile", &f.cert, "--x509keyfile", &f.key],
    );
    let peer = expect_connected(&server, &cli, ECDSA_GCM.suite, Some("localhost"), &[&client.der]);
    gnutls_cli_verified(&cli, &ECDSA_GCM, 1);
    assert!(cli.printed("- Successfully sent 1 certificate(s) to server."), "{}", cli.output());
    cli.send_line("hello from gnutls");
    expect_line(&server, &cli, peer, "hello from gnutls");
    cli.expect(&format!("to {peer}: ACK"), T);
    server.finish();
}

mod mutual;

// ===== a chain with an intermediate CA; the other side trusts only the root =====

mod chain;

// ===== refused certificates =====

mod negative;

// ===== fragmented certificate flights, both ways, through a recording relay =====

mod fragmentation;

// ===== private key formats =====

mod key_formats;

// ===== session resumption, by ticket and by session ID =====

mod resumption;
