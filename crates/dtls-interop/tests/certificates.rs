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

mod certs;
#[allow(dead_code)]
mod relay;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use dtls::proto::crypto::default_provider;
use dtls::proto::pki::CertificateDer;
use dtls::{CertificateError, CertifiedKey, Client, ClientAuth, Config, Server, ServerEvent};
use dtls_interop::{free_udp_port, loopback, require, Peer};
use dtls_proto::suites;

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
        let root = Ca::root("dtls-interop root");
        let intermediate = root.intermediate("dtls-interop intermediate");
        let other_root = Ca::root("dtls-interop untrusted root");
        Pki {
            server_ecdsa: root.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server),
            server_rsa: root.leaf(Alg::Rsa2048, &["localhost"], Usage::Server),
            server_via_intermediate: intermediate.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server),
            client_ecdsa: root.leaf(Alg::EcdsaP256, &["client.dtls-interop.test"], Usage::Client),
            client_rsa: root.leaf(Alg::Rsa2048, &["rsa-client.dtls-interop.test"], Usage::Client),
            server_other_name: root.leaf(Alg::EcdsaP256, &["other.dtls-interop.test"], Usage::Server),
            server_unknown_ca: other_root.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server),
            client_unknown_ca: other_root.leaf(Alg::EcdsaP256, &["client.dtls-interop.test"], Usage::Client),
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
    suite: &'static dtls::CipherSuite,
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
fn client_config(suite: &'static dtls::CipherSuite, client_cert: Option<&Leaf>, mtu: Option<usize>) -> Arc<Config> {
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
    suite: &'static dtls::CipherSuite,
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
        suite: Option<&'static dtls::CipherSuite>,
        certs: Vec<CertificateDer<'static>>,
        sni: Option<String>,
    },
    /// A whole line (several records joined until a newline), answered with `to <peer>: ACK`.
    Line { peer: SocketAddr, data: Vec<u8> },
    /// The association ended (`None`: closed by us).
    Closed { error: Option<dtls::Error> },
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
    suite: &'static dtls::CipherSuite,
    sni: Option<&str>,
    client_certs: &[&CertificateDer<'_>],
) -> SocketAddr {
    match server.next("a handshake", peer) {
        Seen::Connected { peer: addr, suite: got, certs, sni: got_sni } => {
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
fn expect_refused(server: &OurServer, peer: &Peer, error: dtls::Error) {
    match server.next("a refused handshake", peer) {
        Seen::Closed { error: Some(got), .. } => assert_eq!(got, error),
        other => panic!("expected a refused handshake, got {other:?}; the peer printed:\n{}", peer.output()),
    }
}

/// The `dtls::Error` inside an error returned by our blocking client.
fn inner_error(e: &std::io::Error) -> &dtls::Error {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<dtls::Error>())
        .unwrap_or_else(|| panic!("not a DTLS error: {e:?}"))
}

// ===== OpenSSL =====

/// OpenSSL's `-mtu` is the link MTU: over IPv4 its datagrams are 28 bytes (IP and UDP headers)
/// shorter. 256 is close to the smallest it accepts (228).
const OPENSSL_LINK_MTU: usize = 256;
const OPENSSL_DATAGRAM_MTU: usize = OPENSSL_LINK_MTU - 28;

/// Starts `s_server` for one association on `port` with the certificate files `f` and `extra`.
fn s_server(port: u16, suite: &dtls::CipherSuite, f: &PeerFiles, extra: &[&str]) -> Peer {
    let port = port.to_string();
    #[rustfmt::skip]
    let mut args = vec![
        "s_server", "-dtls1_2", "-listen", "-accept", &port, "-naccept", "1",
        "-cert", &f.cert, "-key", &f.key, "-cipher", suite.openssl_name,
    ];
    if let Some(chain) = &f.intermediates {
        args.extend(["-cert_chain", chain.as_str()]);
    }
    args.extend_from_slice(extra);
    let mut server = Peer::spawn("openssl", &args);
    server.wait_started("ACCEPT", T);
    server
}

/// Exchanges a line each way with `s_server`, then closes.
fn talk_to_s_server(client: &mut Client, server: &mut Peer) {
    client.send(b"hello from rust").unwrap();
    server.expect("hello from rust", T);
    server.send_line("hello from openssl");
    // s_server sends what it reads from stdin, possibly split over several records.
    let mut got = Vec::new();
    let mut buf = [0u8; 1500];
    while !got.ends_with(b"\n") {
        let n = client.recv(&mut buf, Some(T)).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"hello from openssl\n");
    client.close().unwrap();
    server.expect("DONE", T);
}

/// Our client against `s_server` with the suite's certificate: the handshake (our client checks
/// the chain and the name `localhost`), the suite, the server certificate, data both ways.
fn our_client_against_s_server(s: &Suite) {
    let leaf = s.server_leaf();
    let f = PeerFiles::new("s-server", leaf);
    let port = free_udp_port();
    let mut server = s_server(port, s.suite, &f, &[]);
    let config = client_config(s.suite, None, None);
    let mut client = Client::connect_with_name(loopback(port), "localhost", config, Some(T))
        .unwrap_or_else(|e| panic!("{e}; s_server printed:\n{}", server.output()));
    assert_eq!(client.connection().cipher_suite(), Some(s.suite));
    assert_eq!(client.connection().peer_certificates(), std::slice::from_ref(&leaf.der));
    assert!(client.connection().peer_verification_errors().is_empty());
    talk_to_s_server(&mut client, &mut server);
    server.expect(&format!("CIPHER is {}", s.suite.openssl_name), T);
}

/// Starts `s_client` towards `port`, trusting the test root and checking the name `localhost`
/// (also sent as SNI), with `extra`.
fn s_client(port: u16, suite: &dtls::CipherSuite, f: &PeerFiles, extra: &[&str]) -> Peer {
    let target = format!("127.0.0.1:{port}");
    #[rustfmt::skip]
    let mut args = vec![
        "s_client", "-dtls1_2", "-connect", &target, "-servername", "localhost", "-CAfile", &f.root,
        "-verify_return_error", "-verify_hostname", "localhost", "-cipher", suite.openssl_name, "-ign_eof",
    ];
    args.extend_from_slice(extra);
    Peer::spawn("openssl", &args)
}

/// Checks what `s_client` printed about a successful handshake with our server.
fn s_client_verified(client: &Peer, suite: &dtls::CipherSuite) {
    client.expect(&format!("Cipher is {}", suite.openssl_name), T);
    client.expect("Verify return code: 0 (ok)", T);
    assert!(client.printed("Verification: OK"), "{}", client.output());
    assert!(client.printed("Verified peername: localhost"), "{}", client.output());
}

/// `s_client` against our server with the suite's certificate: it verifies our chain and name.
fn s_client_against_our_server(s: &Suite) {
    let leaf = s.server_leaf();
    let f = PeerFiles::new("s-client", &pki().client_ecdsa);
    let server = OurServer::start(server_config(s.suite, leaf, ClientAuth::None, None));
    let mut client = s_client(server.addr.port(), s.suite, &f, &[]);
    let peer = expect_connected(&server, &client, s.suite, Some("localhost"), &[]);
    s_client_verified(&client, s.suite);
    assert_eq!(pem_after(&client.output(), "Server certificate"), Some(pem_body(&leaf.cert_pem)));
    client.send_line("hello from openssl");
    expect_line(&server, &client, peer, "hello from openssl");
    client.expect(&format!("to {peer}: ACK"), T);
    server.finish();
}

// ===== GnuTLS =====

/// gnutls' `--mtu`: the largest datagram it sends (record headers included).
const GNUTLS_MTU: usize = 150;

/// Starts `gnutls-serv` as a DTLS echo server on `port` with the chain and key of `f`.
fn gnutls_serv(port: u16, priority: &str, f: &PeerFiles, extra: &[&str]) -> Peer {
    let port_s = port.to_string();
    #[rustfmt::skip]
    let mut args = vec![
        "--udp", "--echo", "-p", &port_s, "--x509certfile", &f.chain, "--x509keyfile", &f.key, "--priority", priority,
    ];
    args.extend_from_slice(extra);
    let mut server = Peer::spawn("gnutls-serv", &args);
    server.wait_started(&format!("listening on IPv4 0.0.0.0 port {port}...done"), T);
    server
}

/// Sends two messages to the echo server and checks they come back.
fn talk_to_gnutls_serv(client: &mut Client, server: &Peer) {
    let mut buf = [0u8; 1500];
    for msg in ["hello from rust", "second message from rust"] {
        client.send(msg.as_bytes()).unwrap();
        let n = client.recv(&mut buf, Some(T)).unwrap();
        assert_eq!(&buf[..n], msg.as_bytes());
        server.expect(&format!("*** Processing {} bytes command: {msg}", msg.len()), T);
    }
    client.close().unwrap();
}

/// Our client against `gnutls-serv` with the suite's certificate.
fn our_client_against_gnutls_serv(s: &Suite) {
    let leaf = s.server_leaf();
    let f = PeerFiles::new("gnutls-serv", leaf);
    let port = free_udp_port();
    // Without --disable-client-cert gnutls-serv asks for a certificate: our client has none and
    // answers with an empty Certificate, which gnutls-serv accepts.
    let server = gnutls_serv(port, &s.priority(), &f, &[]);
    let config = client_config(s.suite, None, None);
    let mut client = Client::connect_with_name(loopback(port), "localhost", config, Some(T))
        .unwrap_or_else(|e| panic!("{e}; gnutls-serv printed:\n{}", server.output()));
    assert_eq!(client.connection().cipher_suite(), Some(s.suite));
    assert_eq!(client.connection().peer_certificates(), std::slice::from_ref(&leaf.der));
    talk_to_gnutls_serv(&mut client, &server);
}

/// Marker `gnutls_cli` makes the shell print when gnutls-cli exits, followed by its status.
const CLI_EXIT: &str = "gnutls-cli exit status: ";

/// Starts `gnutls-cli` unbuffered towards `port`, trusting the test root and checking the name
/// `localhost` (also sent as SNI), under a shell that prints [`CLI_EXIT`] and the exit status.
fn gnutls_cli(port: u16, priority: &str, f: &PeerFiles, extra: &[&str]) -> Peer {
    require("gnutls-cli");
    require("stdbuf");
    let port = port.to_string();
    #[rustfmt::skip]
    let mut args = vec![
        "-c", "stdbuf -o0 gnutls-cli \"$@\"; echo \"gnutls-cli exit status: $?\"", "sh",
        "--udp", "-p", &port, "127.0.0.1", "--x509cafile", &f.root, "--verify-hostname", "localhost",
        "--sni-hostname", "localhost", "--priority", priority,
    ];
    args.extend_from_slice(extra);
    Peer::spawn("sh", &args)
}

/// The session description gnutls-cli printed, e.g.
/// `(DTLS1.2-X.509)-(ECDHE-SECP256R1)-(ECDSA-SHA256)-(AES-128-GCM)`.
fn gnutls_description(cli: &Peer) -> String {
    cli.expect("- Description: ", T);
    let out = cli.output();
    let line = out.lines().find(|l| l.starts_with("- Description: ")).expect("description");
    line["- Description: ".len()..].to_owned()
}

/// Checks what gnutls-cli printed about a successful handshake with our server.
fn gnutls_cli_verified(cli: &Peer, s: &Suite, chain_len: usize) {
    cli.expect("- Handshake was completed", T);
    let out = cli.output();
    assert!(out.contains("- Status: The certificate is trusted."), "{out}");
    assert!(out.contains(&format!("- Got a certificate list of {chain_len} certificates.")), "{out}");
    let description = gnutls_description(cli);
    // e.g. (DTLS1.2-X.509)-(ECDHE-X25519)-(RSA-PSS-RSAE-SHA256)-(AES-128-GCM)
    let (kx, auth) = s.gnutls_kx.split_once('-').expect("ECDHE-<auth>");
    assert!(description.starts_with(&format!("(DTLS1.2-X.509)-({kx}-")), "{description}");
    assert!(description.contains(&format!(")-({auth}-")), "{description}");
    assert!(description.ends_with(&format!("-({})", s.gnutls_cipher)), "{description}");
}

/// `gnutls-cli` against our server with the suite's certificate: it verifies our chain and name.
fn gnutls_cli_against_our_server(s: &Suite) {
    let leaf = s.server_leaf();
    let f = PeerFiles::new("gnutls-cli", &pki().client_ecdsa);
    let server = OurServer::start(server_config(s.suite, leaf, ClientAuth::None, None));
    let mut cli = gnutls_cli(server.addr.port(), &s.priority(), &f, &[]);
    let peer = expect_connected(&server, &cli, s.suite, Some("localhost"), &[]);
    gnutls_cli_verified(&cli, s, 1);
    cli.send_line("hello from gnutls");
    expect_line(&server, &cli, peer, "hello from gnutls");
    cli.expect(&format!("to {peer}: ACK"), T);
    assert!(!cli.printed(CLI_EXIT), "{}", cli.output());
    server.finish();
}

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

mod mutual {
    use super::*;

    #[test]
    fn openssl_our_client_ecdsa() {
        mutual_our_client_against_s_server(Alg::EcdsaP256);
    }
    #[test]
    fn openssl_our_client_rsa() {
        mutual_our_client_against_s_server(Alg::Rsa2048);
    }
    #[test]
    fn openssl_our_server_ecdsa() {
        mutual_s_client_against_our_server(Alg::EcdsaP256);
    }
    #[test]
    fn openssl_our_server_rsa() {
        mutual_s_client_against_our_server(Alg::Rsa2048);
    }
    #[test]
    fn gnutls_our_client_ecdsa() {
        mutual_our_client_against_gnutls_serv(Alg::EcdsaP256);
    }
    #[test]
    fn gnutls_our_client_rsa() {
        mutual_our_client_against_gnutls_serv(Alg::Rsa2048);
    }
    #[test]
    fn gnutls_our_server_ecdsa() {
        mutual_gnutls_cli_against_our_server(Alg::EcdsaP256);
    }
    #[test]
    fn gnutls_our_server_rsa() {
        mutual_gnutls_cli_against_our_server(Alg::Rsa2048);
    }
}

// ===== a chain with an intermediate CA; the other side trusts only the root =====

mod chain {
    use super::*;

    /// s_server sends its leaf and the intermediate (`-cert_chain`, no `-CAfile`).
    #[test]
    fn openssl_our_client() {
        let leaf = &pki().server_via_intermediate;
        let f = PeerFiles::new("s-server-chain", leaf);
        let port = free_udp_port();
        let mut server = s_server(port, ECDSA_GCM.suite, &f, &[]);
        let config = client_config(ECDSA_GCM.suite, None, None);
        let mut client = Client::connect_with_name(loopback(port), "localhost", config, Some(T))
            .unwrap_or_else(|e| panic!("{e}; s_server printed:\n{}", server.output()));
        let intermediate = pki().intermediate.cert_der();
        assert_eq!(client.connection().peer_certificates(), [leaf.der.clone(), intermediate]);
        talk_to_s_server(&mut client, &mut server);
    }

    /// Our server sends its leaf and the intermediate; s_client verifies the three-level chain.
    #[test]
    fn openssl_our_server() {
        let leaf = &pki().server_via_intermediate;
        let f = PeerFiles::new("s-client-chain", &pki().client_ecdsa);
        let server = OurServer::start(server_config(ECDSA_GCM.suite, leaf, ClientAuth::None, None));
        let mut cli = s_client(server.addr.port(), ECDSA_GCM.suite, &f, &[]);
        let peer = expect_connected(&server, &cli, ECDSA_GCM.suite, Some("localhost"), &[]);
        s_client_verified(&cli, ECDSA_GCM.suite);
        let out = cli.output();
        for line in [
            "depth=2 CN = dtls-interop root",
            "depth=1 CN = dtls-interop intermediate",
            "depth=0 CN = localhost",
            " 0 s:CN = localhost\n   i:CN = dtls-interop intermediate",
            " 1 s:CN = dtls-interop intermediate\n   i:CN = dtls-interop root",
        ] {
            assert!(out.contains(line), "no {line:?} in:\n{out}");
        }
        assert!(!out.contains(" 2 s:"), "s_client got more than two certificates:\n{out}");
        cli.send_line("hello from openssl");
        expect_line(&server, &cli, peer, "hello from openssl");
        cli.expect(&format!("to {peer}: ACK"), T);
        server.finish();
    }

    /// gnutls-serv sends every certificate of its file: the leaf and the intermediate.
    #[test]
    fn gnutls_our_client() {
        let leaf = &pki().server_via_intermediate;
        let f = PeerFiles::new("gnutls-serv-chain", leaf);
        let port = free_udp_port();
        let server = gnutls_serv(port, &ECDSA_GCM.priority(), &f, &[]);
        let config = client_config(ECDSA_GCM.suite, None, None);
        let mut client = Client::connect_with_name(loopback(port), "localhost", config, Some(T))
            .unwrap_or_else(|e| panic!("{e}; gnutls-serv printed:\n{}", server.output()));
        let intermediate = pki().intermediate.cert_der();
        assert_eq!(client.connection().peer_certificates(), [leaf.der.clone(), intermediate]);
        talk_to_gnutls_serv(&mut client, &server);
    }

    /// Our server sends its leaf and the intermediate; gnutls-cli verifies them.
    #[test]
    fn gnutls_our_server() {
        let leaf = &pki().server_via_intermediate;
        let f = PeerFiles::new("gnutls-cli-chain", &pki().client_ecdsa);
        let server = OurServer::start(server_config(ECDSA_GCM.suite, leaf, ClientAuth::None, None));
        let mut cli = gnutls_cli(server.addr.port(), &ECDSA_GCM.priority(), &f, &[]);
        let peer = expect_connected(&server, &cli, ECDSA_GCM.suite, Some("localhost"), &[]);
        gnutls_cli_verified(&cli, &ECDSA_GCM, 2);
        let out = cli.output();
        assert!(
            out.contains(
                "- Certificate[1] info:\n - subject `CN=dtls-interop intermediate', issuer `CN=dtls-interop root'"
            ),
            "{out}"
        );
        cli.send_line("hello from gnutls");
        expect_line(&server, &cli, peer, "hello from gnutls");
        cli.expect(&format!("to {peer}: ACK"), T);
        server.finish();
    }
}

// ===== refused certificates =====

mod negative {
    use super::*;

    /// Our client against s_server presenting `leaf`: the handshake fails with
    /// `PeerVerification(errors)` and s_server reports our alert, `alert`.
    fn our_client_refuses_s_server(leaf: &Leaf, errors: Vec<CertificateError>, alert: &str) {
        let f = PeerFiles::new("s-server-refused", leaf);
        let port = free_udp_port();
        let server = s_server(port, ECDSA_GCM.suite, &f, &[]);
        let config = client_config(ECDSA_GCM.suite, None, None);
        let e = Client::connect_with_name(loopback(port), "localhost", config, Some(T)).unwrap_err();
        assert_eq!(*inner_error(&e), dtls::Error::PeerVerification(errors), "{e}");
        server.expect(alert, T);
    }

    /// A certificate for another name: bad_certificate.
    #[test]
    fn openssl_other_name() {
        let errors = vec![CertificateError::HostNameMismatch];
        our_client_refuses_s_server(&pki().server_other_name, errors, "sslv3 alert bad certificate");
    }

    /// A certificate from an unknown CA: unknown_ca.
    #[test]
    fn openssl_unknown_ca() {
        let errors = vec![CertificateError::UnknownIssuer];
        our_client_refuses_s_server(&pki().server_unknown_ca, errors, "tlsv1 alert unknown ca");
    }

    /// Our server with `ClientAuth::Required` against s_client with `extra`: our server fails the
    /// handshake with `PeerVerification(errors)`, and s_client reports our alert, `alert`.
    fn our_server_refuses_s_client(client: &Leaf, extra: &[&str], errors: Vec<CertificateError>, alert: &str) {
        let f = PeerFiles::new("s-client-refused", client);
        let server = OurServer::start(server_config(ECDSA_GCM.suite, &pki().server_ecdsa, ClientAuth::Required, None));
        let cli = s_client(server.addr.port(), ECDSA_GCM.suite, &f, extra);
        expect_refused(&server, &cli, dtls::Error::PeerVerification(errors));
        cli.expect(alert, T);
        server.finish();
    }

    /// No client certificate: handshake_failure.
    #[test]
    fn openssl_no_client_certificate() {
        let errors = vec![CertificateError::NoPeerCertificate];
        our_server_refuses_s_client(&pki().client_ecdsa, &[], errors, "sslv3 alert handshake failure");
    }

    /// A client certificate from an unknown CA: unknown_ca.
    #[test]
    fn openssl_client_certificate_unknown_ca() {
        let client = &pki().client_unknown_ca;
        let f = PeerFiles::new("s-client-key", client);
        let errors = vec![CertificateError::UnknownIssuer];
        our_server_refuses_s_client(client, &["-cert", &f.cert, "-key", &f.key], errors, "tlsv1 alert unknown ca");
    }

    /// Our client against gnutls-serv presenting `leaf`. gnutls-serv names the alert it received
    /// only in its record-layer debug output (`-d 5`).
    fn our_client_refuses_gnutls_serv(leaf: &Leaf, errors: Vec<CertificateError>, alert: &str) {
        let f = PeerFiles::new("gnutls-serv-refused", leaf);
        let port = free_udp_port();
        let server = gnutls_serv(port, &ECDSA_GCM.priority(), &f, &["-d", "5"]);
        let config = client_config(ECDSA_GCM.suite, None, None);
        let e = Client::connect_with_name(loopback(port), "localhost", config, Some(T)).unwrap_err();
        assert_eq!(*inner_error(&e), dtls::Error::PeerVerification(errors), "{e}");
        server.expect(alert, T);
    }

    #[test]
    fn gnutls_other_name() {
        let errors = vec![CertificateError::HostNameMismatch];
        our_client_refuses_gnutls_serv(
            &pki().server_other_name,
            errors,
            "Alert[2|42] - Certificate is bad - was received",
        );
    }

    #[test]
    fn gnutls_unknown_ca() {
        let errors = vec![CertificateError::UnknownIssuer];
        our_client_refuses_gnutls_serv(&pki().server_unknown_ca, errors, "Alert[2|48] - CA is unknown - was received");
    }

    /// Our server with `ClientAuth::Required` against gnutls-cli with `extra`.
    fn our_server_refuses_gnutls_cli(client: &Leaf, extra: &[&str], errors: Vec<CertificateError>, alert: &str) {
        let f = PeerFiles::new("gnutls-cli-refused", client);
        let server = OurServer::start(server_config(ECDSA_GCM.suite, &pki().server_ecdsa, ClientAuth::Required, None));
        let cli = gnutls_cli(server.addr.port(), &ECDSA_GCM.priority(), &f, extra);
        expect_refused(&server, &cli, dtls::Error::PeerVerification(errors));
        cli.expect(alert, T);
        cli.expect(CLI_EXIT, T);
        server.finish();
    }

    #[test]
    fn gnutls_no_client_certificate() {
        let errors = vec![CertificateError::NoPeerCertificate];
        our_server_refuses_gnutls_cli(&pki().client_ecdsa, &[], errors, "*** Received alert [40]: Handshake failed");
    }

    #[test]
    fn gnutls_client_certificate_unknown_ca() {
        let client = &pki().client_unknown_ca;
        let f = PeerFiles::new("gnutls-cli-key", client);
        let errors = vec![CertificateError::UnknownIssuer];
        #[rustfmt::skip]
        our_server_refuses_gnutls_cli(client, &["--x509certfile", &f.cert, "--x509keyfile", &f.key], errors, "*** Received alert [48]: CA is unknown");
    }

    /// The control of `mutual::gnutls_our_client_*`: with `--verify-client-cert`, gnutls-serv
    /// does verify our certificate and refuses one from an unknown CA (access_denied).
    #[test]
    fn gnutls_serv_refuses_our_unknown_ca() {
        let f = PeerFiles::new("gnutls-serv-verifies", &pki().server_ecdsa);
        let port = free_udp_port();
        #[rustfmt::skip]
        let server = gnutls_serv(port, &ECDSA_GCM.priority(), &f, &[
            "--require-client-cert", "--verify-client-cert", "--x509cafile", &f.root,
        ]);
        let config = client_config(ECDSA_GCM.suite, Some(&pki().client_unknown_ca), None);
        let e = Client::connect_with_name(loopback(port), "localhost", config, Some(T)).unwrap_err();
        assert_eq!(
            *inner_error(&e),
            dtls::Error::AlertReceived(dtls::proto::enums::AlertDescription::ACCESS_DENIED),
            "{e}; gnutls-serv printed:\n{}",
            server.output()
        );
    }
}

// ===== fragmented certificate flights, both ways, through a recording relay =====

mod fragmentation {
    use super::*;

    /// Our client's MTU. Our ClientHello is never fragmented (by design: servers that verify
    /// cookies, and small stacks, drop fragmented ClientHellos), and with a certificate suite,
    /// SNI and a cookie it is 154 bytes long: the MTU must hold it, and is still well below
    /// the size of the client Certificate message (409 bytes).
    const OUR_CLIENT_MTU: usize = 200;
    /// Our server's MTU.
    const OUR_SERVER_MTU: usize = 120;
    /// OpenSSL 3.0 checks that a record fits the MTU before protecting it, without counting the
    /// AEAD expansion (`dtls1_do_write` counts a MAC and CBC padding, zero for AEAD suites):
    /// when it packs its encrypted Finished after the last handshake messages of a flight, the
    /// datagram can exceed the MTU by up to the explicit nonce and tag of AES-GCM, 24 bytes.
    /// Seen: s_client at 228 sent ClientKeyExchange, CertificateVerify, ChangeCipherSpec and
    /// Finished in one 234-byte datagram.
    const OPENSSL_AEAD_SLACK: usize = 8 + 16;

    /// `(content type, epoch, length)` of each record of a datagram.
    fn records(datagram: &[u8]) -> Vec<(u8, u16, usize)> {
        let (mut out, mut rest) = (Vec::new(), datagram);
        while rest.len() >= relay::RECORD_HEADER_LEN {
            let (epoch, len) =
                (u16::from_be_bytes([rest[3], rest[4]]), usize::from(u16::from_be_bytes([rest[11], rest[12]])));
            out.push((rest[0], epoch, len));
            rest = &rest[(relay::RECORD_HEADER_LEN + len).min(rest.len())..];
        }
        out
    }

    /// Checks one direction of a relayed handshake: every datagram is within `mtu` (but for a
    /// datagram carrying an encrypted record, which may exceed it by `aead_slack`), and the
    /// Certificate message traveled only in pieces, none of them whole, that reassemble to
    /// `chain`.
    fn assert_certificate_fragmented(
        who: &str,
        datagrams: &[Vec<u8>],
        mtu: usize,
        aead_slack: usize,
        chain: &[&CertificateDer<'_>],
    ) {
        assert!(!datagrams.is_empty(), "{who} sent nothing");
        for d in datagrams.iter().filter(|d| d.len() > mtu) {
            let recs = records(d);
            let encrypted = recs.iter().any(|&(_, epoch, _)| epoch > 0);
            assert!(
                encrypted && d.len() <= mtu + aead_slack,
                "{who} sent a {}-byte datagram over its MTU of {mtu}: records {recs:?}",
                d.len()
            );
            println!("{who} sent a {}-byte datagram over its MTU of {mtu} (records {recs:?})", d.len());
        }
        let m = relay::message(datagrams, CERTIFICATE);
        assert!(m.was_fragmented(), "{who} sent its Certificate whole: {:?}", m.pieces);
        assert_eq!(m.body, certificate_body(chain), "{who}'s Certificate reassembled to other bytes");
        let largest = datagrams.iter().map(Vec::len).max().unwrap_or(0);
        println!(
            "{who}: {} datagrams, largest {largest} (MTU {mtu}); Certificate ({} bytes) in {} fragments {:?}",
            datagrams.len(),
            m.body.len(),
            m.pieces.len(),
            m.pieces
        );
    }

    /// One side of a relayed handshake: who, its MTU, what it may exceed it by, its chain.
    type Side<'a> = (&'a str, usize, usize, &'a [&'a CertificateDer<'a>]);

    /// Checks both directions of a relayed mutual-authentication handshake: the cookie exchange
    /// happened, and each side's Certificate traveled only in fragments within its MTU.
    fn assert_certificates_fragmented(relay: &Relay, server: Side<'_>, client: Side<'_>) {
        let (to_server, to_client) = (relay.datagrams(Dir::ToServer), relay.datagrams(Dir::ToClient));
        relay::assert_cookie_exchange(&to_server, &to_client);
        assert_certificate_fragmented(server.0, &to_client, server.1, server.2, server.3);
        assert_certificate_fragmented(client.0, &to_server, client.1, client.2, client.3);
    }

    /// s_server (link MTU 256: 228-byte datagrams) sends its leaf and intermediate in fragments
    /// and we reassemble them; our client (MTU 200) sends its certificate in fragments and
    /// s_server reassembles and verifies it.
    #[test]
    fn openssl_our_client() {
        let (leaf, client) = (&pki().server_via_intermediate, &pki().client_ecdsa);
        let f = PeerFiles::new("s-server-frag", leaf);
        let port = free_udp_port();
        let mtu = OPENSSL_LINK_MTU.to_string();
        #[rustfmt::skip]
        let mut server = s_server(port, ECDSA_GCM.suite, &f, &[
            "-mtu", &mtu, "-Verify", "1", "-verify_return_error", "-verifyCAfile", &f.root,
        ]);
        let relay = Relay::start(loopback(port));
        let config = client_config(ECDSA_GCM.suite, Some(client), Some(OUR_CLIENT_MTU));
        let mut conn = Client::connect_with_name(relay.addr(), "localhost", config, Some(T))
            .unwrap_or_else(|e| panic!("{e}; s_server printed:\n{}", server.output()));
        let intermediate = pki().intermediate.cert_der();
        assert_eq!(conn.connection().peer_certificates(), [leaf.der.clone(), intermediate.clone()]);
        talk_to_s_server(&mut conn, &mut server);
        assert_eq!(pem_after(&server.output(), "Client certificate"), Some(pem_body(&client.cert_pem)));
        assert_certificates_fragmented(
            &relay,
            ("s_server", OPENSSL_DATAGRAM_MTU, OPENSSL_AEAD_SLACK, &[&leaf.der, &intermediate]),
            ("our client", OUR_CLIENT_MTU, 0, &[&client.der]),
        );
    }

    /// Our server (MTU 120) sends its leaf and intermediate in fragments and s_client
    /// reassembles and verifies them; s_client (228-byte datagrams) sends its certificate and
    /// the root in fragments and our server reassembles and verifies them.
    #[test]
    fn openssl_our_server() {
        let (leaf, client) = (&pki().server_via_intermediate, &pki().client_ecdsa);
        let f = PeerFiles::new("s-client-frag", client);
        let server = OurServer::start(server_config(ECDSA_GCM.suite, leaf, ClientAuth::Required, Some(OUR_SERVER_MTU)));
        let relay = Relay::start(server.addr);
        let mtu = OPENSSL_LINK_MTU.to_string();
        #[rustfmt::skip]
        let mut cli = s_client(relay.addr().port(), ECDSA_GCM.suite, &f, &[
            "-mtu", &mtu, "-cert", &f.cert, "-key", &f.key,
        ]);
        let root = pki().root.root_der();
        let peer = expect_connected(&server, &cli, ECDSA_GCM.suite, Some("localhost"), &[&client.der, &root]);
        s_client_verified(&cli, ECDSA_GCM.suite);
        cli.send_line("fragmented hello from openssl");
        expect_line(&server, &cli, peer, "fragmented hello from openssl");
        cli.expect(&format!("to {peer}: ACK"), T);
        server.finish();
        let intermediate = pki().intermediate.cert_der();
        assert_certificates_fragmented(
            &relay,
            ("our server", OUR_SERVER_MTU, 0, &[&leaf.der, &intermediate]),
            ("s_client", OPENSSL_DATAGRAM_MTU, OPENSSL_AEAD_SLACK, &[&client.der, &root]),
        );
    }

    /// gnutls-serv (150-byte datagrams) and our client (MTU 200), both certificates fragmented.
    #[test]
    fn gnutls_our_client() {
        let (leaf, client) = (&pki().server_via_intermediate, &pki().client_ecdsa);
        let f = PeerFiles::new("gnutls-serv-frag", leaf);
        let port = free_udp_port();
        let mtu = GNUTLS_MTU.to_string();
        #[rustfmt::skip]
        let server = gnutls_serv(port, &ECDSA_GCM.priority(), &f, &[
            "--mtu", &mtu, "--require-client-cert", "--verify-client-cert", "--x509cafile", &f.root,
        ]);
        let relay = Relay::start(loopback(port));
        let config = client_config(ECDSA_GCM.suite, Some(client), Some(OUR_CLIENT_MTU));
        let mut conn = Client::connect_with_name(relay.addr(), "localhost", config, Some(T))
            .unwrap_or_else(|e| panic!("{e}; gnutls-serv printed:\n{}", server.output()));
        let intermediate = pki().intermediate.cert_der();
        assert_eq!(conn.connection().peer_certificates(), [leaf.der.clone(), intermediate.clone()]);
        talk_to_gnutls_serv(&mut conn, &server);
        assert_certificates_fragmented(
            &relay,
            ("gnutls-serv", GNUTLS_MTU, 0, &[&leaf.der, &intermediate]),
            ("our client", OUR_CLIENT_MTU, 0, &[&client.der]),
        );
    }

    /// Our server (MTU 120) and gnutls-cli (150-byte datagrams), both certificates fragmented.
    #[test]
    fn gnutls_our_server() {
        let (leaf, client) = (&pki().server_via_intermediate, &pki().client_ecdsa);
        let f = PeerFiles::new("gnutls-cli-frag", client);
        let server = OurServer::start(server_config(ECDSA_GCM.suite, leaf, ClientAuth::Required, Some(OUR_SERVER_MTU)));
        let relay = Relay::start(server.addr);
        let mtu = GNUTLS_MTU.to_string();
        #[rustfmt::skip]
        let mut cli = gnutls_cli(relay.addr().port(), &ECDSA_GCM.priority(), &f, &[
            "--mtu", &mtu, "--x509certfile", &f.cert, "--x509keyfile", &f.key,
        ]);
        let peer = expect_connected(&server, &cli, ECDSA_GCM.suite, Some("localhost"), &[&client.der]);
        gnutls_cli_verified(&cli, &ECDSA_GCM, 2);
        cli.send_line("fragmented hello from gnutls");
        expect_line(&server, &cli, peer, "fragmented hello from gnutls");
        cli.expect(&format!("to {peer}: ACK"), T);
        server.finish();
        let intermediate = pki().intermediate.cert_der();
        assert_certificates_fragmented(
            &relay,
            ("our server", OUR_SERVER_MTU, 0, &[&leaf.der, &intermediate]),
            ("gnutls-cli", GNUTLS_MTU, 0, &[&client.der]),
        );
    }
}

// ===== private key formats =====

mod key_formats {
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
            dtls::proto::enums::KeyType::Rsa => &suites::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            _ => ECDSA_GCM.suite,
        };
        let config = Config::builder().cipher_suites(&[suite]).certificate(loaded).build().unwrap();
        let server = Server::bind(loopback(0), Arc::new(config)).unwrap();
        let addr = server.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, t) = serve(server, stop.clone());
        let mut client =
            Client::connect_with_name(addr, "localhost", client_config(suite, None, None), Some(T)).unwrap();
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
            assert_eq!(wrong, dtls::Error::Config("wrong password for the private key"));
            assert_eq!(wrong.to_string(), "invalid configuration: wrong password for the private key");
            let empty = load(key, Some(""));
            assert_eq!(empty, dtls::Error::Config("wrong password for the private key"));
            let missing = load(key, None);
            assert_eq!(missing, dtls::Error::Config("the private key is encrypted: a password is needed"));
            assert_eq!(
                missing.to_string(),
                "invalid configuration: the private key is encrypted: a password is needed"
            );
        }
    }
}
