//! Interop with GnuTLS's command-line DTLS 1.2 peers (`gnutls-serv` and `gnutls-cli` 3.7), both
//! roles, every PSK suite of ours that GnuTLS has, cookie exchange on.
//!
//! GnuTLS has no TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256 (0xD001); a test below checks that, so
//! the day it appears the missing case is noticed.
//!
//! Peer behaviour relied on (observed with gnutls-bin 3.7.9):
//! - `gnutls-serv --udp` binds the wildcard address, does the cookie exchange, serves one
//!   association at a time and never forgets a vanished peer: one server per test, on its own port.
//!   With `--echo` it sends back every record it receives.
//! - `gnutls-cli` block-buffers stdout when piped: it runs under `stdbuf -o0`.
//! - `gnutls-cli` 3.7.9 crashes (SIGSEGV in `gnutls_psk_server_get_username`, called on a client
//!   session while printing session info) right after a successful ECDHE-PSK handshake, before it
//!   reads stdin. See [`gnutls_cli_against_our_server`] for what is asserted then.

mod relay;

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rdtls::{Client, Config, Server, ServerEvent};
use rdtls_interop::{free_udp_port, loopback, psk, require, Peer, PSK_HEX};
use rdtls_proto::suites;
use rdtls_proto::PskCredentials;

use relay::{Dir, Relay};

const T: Duration = Duration::from_secs(20);

/// How GnuTLS names one of our suites: the key exchange and cipher of its priority string.
struct Gnutls {
    suite: &'static rdtls::CipherSuite,
    kx: &'static str,
    cipher: &'static str,
}

impl Gnutls {
    /// A priority string that allows exactly this suite, over DTLS 1.2 only.
    fn priority(&self) -> String {
        format!("NONE:+VERS-DTLS1.2:+{}:+{}:+AEAD:+SIGN-ALL:+COMP-NULL:+GROUP-ALL", self.kx, self.cipher)
    }

    fn ecdhe(&self) -> bool {
        self.kx == "ECDHE-PSK"
    }
}

/// A GnuTLS PSK password file (`identity:hexkey` lines), removed when dropped.
struct PskFile(PathBuf);

impl PskFile {
    fn new(port: u16, identity: &str) -> Self {
        let path = std::env::temp_dir().join(format!("rdtls-interop-gnutls-{}-{port}.psk", std::process::id()));
        fs::write(&path, format!("{identity}:{PSK_HEX}\n")).expect("write PSK file");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for PskFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Starts `gnutls-serv` as a DTLS echo server on `port` and waits until its IPv4 socket is bound.
fn gnutls_serv(port: u16, passwd: &PskFile, hint: &str, priority: &str, extra: &[&str]) -> Peer {
    let port_s = port.to_string();
    let mut args =
        vec!["--udp", "--echo", "-p", &port_s, "--pskpasswd", passwd.path(), "--pskhint", hint, "--priority", priority];
    args.extend_from_slice(extra);
    let mut server = Peer::spawn("gnutls-serv", &args);
    server.wait_started(&format!("listening on IPv4 0.0.0.0 port {port}...done"), T);
    server
}

/// Marker `gnutls_cli` makes the shell print when gnutls-cli exits, followed by its status.
const CLI_EXIT: &str = "gnutls-cli exit status: ";

/// Starts `gnutls-cli` unbuffered, under a shell that prints [`CLI_EXIT`] and the exit status
/// (128 + signal for a crash) when it ends.
fn gnutls_cli(args: &[&str]) -> Peer {
    require("gnutls-cli");
    require("stdbuf");
    let mut full = vec!["-c", "stdbuf -o0 gnutls-cli \"$@\"; echo \"gnutls-cli exit status: $?\"", "sh"];
    full.extend_from_slice(args);
    Peer::spawn("sh", &full)
}

/// Waits until `peer` printed `a` (returns true) or `b` (returns false); panics after `T`.
fn printed_either(peer: &Peer, a: &str, b: &str) -> bool {
    let deadline = Instant::now() + T;
    loop {
        if peer.printed(a) {
            return true;
        }
        if peer.printed(b) {
            return false;
        }
        assert!(Instant::now() < deadline, "peer printed neither {a:?} nor {b:?}:\n{}", peer.output());
        thread::sleep(Duration::from_millis(20));
    }
}

// ===== our client against gnutls-serv =====

fn our_client_against_gnutls_serv(g: &Gnutls) {
    let port = free_udp_port();
    let passwd = PskFile::new(port, "rust-client");
    let server = gnutls_serv(port, &passwd, "gnutls-hint", &g.priority(), &[]);
    let hints = Arc::new(Mutex::new(Vec::new()));
    let config = Config::builder()
        .cipher_suites(&[g.suite])
        .psk_callback({
            let hints = hints.clone();
            move |hint| {
                hints.lock().unwrap().push(hint.map(<[u8]>::to_vec));
                Some(PskCredentials::new("rust-client", psk()))
            }
        })
        .build()
        .unwrap();
    let mut client = Client::connect(loopback(port), Arc::new(config), Some(T)).unwrap();
    assert_eq!(client.connection().cipher_suite(), Some(g.suite));
    assert_eq!(client.connection().psk_identity(), Some(&b"rust-client"[..]));
    assert_eq!(*hints.lock().unwrap(), [Some(b"gnutls-hint".to_vec())], "hint seen by the PSK callback");

    // The echo server returns each record as it came; two records check both directions keep
    // their sequence numbers in step.
    let mut buf = [0u8; 1500];
    for msg in ["hello from rust", "second message from rust"] {
        client.send(msg.as_bytes()).unwrap();
        let n = client.recv(&mut buf, Some(T)).unwrap();
        assert_eq!(&buf[..n], msg.as_bytes());
        server.expect(&format!("*** Processing {} bytes command: {msg}", msg.len()), T);
    }
    client.close().unwrap();
    assert!(client.connection().is_closed());
}

// ===== gnutls-cli against our server =====

/// What the server thread saw.
#[derive(Debug)]
enum Seen {
    Connected {
        peer: std::net::SocketAddr,
        suite: Option<&'static rdtls::CipherSuite>,
        identity: Option<Vec<u8>>,
    },
    /// A whole line (several records joined until a newline), answered with `to <peer>: ACK`.
    Line {
        peer: std::net::SocketAddr,
        data: Vec<u8>,
    },
    Closed {
        peer: std::net::SocketAddr,
        error: String,
    },
}

/// Fails a test that waited for `what` from the server thread and got `got`.
fn unexpected(what: &str, got: Result<Seen, mpsc::RecvTimeoutError>, cli: &Peer) -> ! {
    let got = match got {
        Ok(Seen::Closed { peer, error }) => format!("{peer} closed the association: {error}"),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("{e:?}"),
    };
    panic!("expected {what}, got {got}; gnutls-cli printed:\n{}", cli.output())
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
                        identity: conn.psk_identity().map(<[u8]>::to_vec),
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
                Some(ServerEvent::Closed(peer, e)) => Seen::Closed { peer, error: format!("{e:?}") },
                // A peer verified before its handshake: the outcome comes as above.
                Some(ServerEvent::Verified { .. }) => continue,
                Some(other) => panic!("unexpected {other:?}"),
            };
            if tx.send(seen).is_err() {
                return;
            }
        }
    });
    (rx, t)
}

/// Our server, gnutls-cli as the client: the handshake, the negotiated suite and identity on our
/// side, the session description gnutls-cli prints, then a line from gnutls-cli and our reply.
///
/// After an ECDHE-PSK handshake gnutls-cli 3.7.9 crashes while printing session info, before it
/// reads stdin, so no application data can flow. What is asserted then: our server completed the
/// handshake (so it verified gnutls-cli's Finished, encrypted under the new keys) with the right
/// suite and identity; gnutls-cli printed its session description with ECDHE and the cipher, and
/// our PSK hint, which it does only after `gnutls_handshake` succeeded (so it verified our
/// Finished); and it then died of SIGSEGV (status 139) — the known bug, nothing else. A gnutls-cli
/// without the bug gets the full exchange.
fn gnutls_cli_against_our_server(g: &Gnutls) {
    let config = Config::builder()
        .cipher_suites(&[g.suite])
        .psk_identity_hint("rust-hint")
        .psk_server_callback(|identity| (identity == b"gnutls-client").then(|| psk().into()))
        .build()
        .unwrap();
    let server = Server::bind(loopback(0), Arc::new(config)).unwrap();
    let port = server.local_addr().unwrap().port().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let (seen, t) = serve(server, stop.clone());
    let priority = g.priority();
    let mut cli = gnutls_cli(&[
        "--udp",
        "-p",
        &port,
        "127.0.0.1",
        "--pskusername",
        "gnutls-client",
        "--pskkey",
        PSK_HEX,
        "--priority",
        &priority,
    ]);

    let peer = match seen.recv_timeout(T) {
        Ok(Seen::Connected { peer, suite, identity }) => {
            assert_eq!(suite, Some(g.suite));
            assert_eq!(identity.as_deref(), Some(&b"gnutls-client"[..]));
            peer
        }
        other => unexpected("a handshake", other, &cli),
    };
    cli.expect("- PSK authentication. PSK hint 'rust-hint'", T);
    let kx = if g.ecdhe() { "ECDHE-" } else { "PSK)" };
    let description = cli.output().lines().find(|l| l.starts_with("- Description: ")).map(str::to_owned);
    let description = description.unwrap_or_else(|| panic!("no session description:\n{}", cli.output()));
    assert!(description.starts_with("- Description: (DTLS1.2"), "{description}");
    assert!(description.contains(&format!("-({kx}")), "{description}");
    assert!(description.ends_with(&format!("-({})", g.cipher)), "{description}");

    if printed_either(&cli, "- Handshake was completed", CLI_EXIT) {
        cli.send_line("hello from gnutls");
        match seen.recv_timeout(T) {
            Ok(Seen::Line { peer: p, data }) => {
                assert_eq!(p, peer);
                assert_eq!(data, b"hello from gnutls\n");
            }
            other => unexpected("a line", other, &cli),
        }
        // gnutls-cli prints received data as is, with no newline of its own.
        cli.expect(&format!("to {peer}: ACK"), T);
        assert!(!cli.printed(CLI_EXIT), "{}", cli.output());
    } else {
        assert!(g.ecdhe(), "gnutls-cli exited after a {} handshake:\n{}", g.suite.name, cli.output());
        assert!(cli.printed(&format!("{CLI_EXIT}139")), "not the known SIGSEGV:\n{}", cli.output());
        let out = cli.output();
        let hint_line = out.find("PSK hint 'rust-hint'").expect("hint line");
        assert!(!out[hint_line..].contains("\n- "), "it printed more session info than 3.7.9 does:\n{out}");
        println!(
            "gnutls-cli crashed after the {} handshake (known 3.7.9 bug; {description}): no application data",
            g.suite.name
        );
    }
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    // Nothing else happened: gnutls-cli did not close or fail the association meanwhile.
    let rest: Vec<Seen> = seen.try_iter().collect();
    assert!(rest.is_empty(), "unexpected server events: {rest:?}");
}

macro_rules! both_roles {
    ($($name:ident => $suite:expr, $kx:literal, $cipher:literal;)*) => {
        const SUITES: &[Gnutls] = &[$(Gnutls { suite: &$suite, kx: $kx, cipher: $cipher },)*];
        mod our_client {
            use super::*;
            $( #[test] fn $name() { our_client_against_gnutls_serv(&Gnutls { suite: &$suite, kx: $kx, cipher: $cipher }); } )*
        }
        mod our_server {
            use super::*;
            $( #[test] fn $name() { gnutls_cli_against_our_server(&Gnutls { suite: &$suite, kx: $kx, cipher: $cipher }); } )*
        }
    };
}

both_roles! {
    psk_aes128_gcm => suites::TLS_PSK_WITH_AES_128_GCM_SHA256, "PSK", "AES-128-GCM";
    psk_aes256_gcm => suites::TLS_PSK_WITH_AES_256_GCM_SHA384, "PSK", "AES-256-GCM";
    psk_chacha20 => suites::TLS_PSK_WITH_CHACHA20_POLY1305_SHA256, "PSK", "CHACHA20-POLY1305";
    psk_aes128_ccm => suites::TLS_PSK_WITH_AES_128_CCM, "PSK", "AES-128-CCM";
    psk_aes128_ccm8 => suites::TLS_PSK_WITH_AES_128_CCM_8, "PSK", "AES-128-CCM-8";
    ecdhe_psk_chacha20 => suites::TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-PSK", "CHACHA20-POLY1305";
}

/// `0xc0, 0xa8`, as `gnutls-cli --list` prints a code point.
fn code_point(id: u16) -> String {
    let [hi, lo] = id.to_be_bytes();
    format!("0x{hi:02x}, 0x{lo:02x}")
}

/// The suite lines `gnutls-cli --list` prints for `priority` (`None`: every suite it has).
fn listed(priority: Option<&str>) -> Vec<String> {
    require("gnutls-cli");
    let mut cmd = std::process::Command::new("gnutls-cli");
    cmd.arg("--list");
    if let Some(p) = priority {
        cmd.args(["--priority", p]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "gnutls-cli --list --priority {priority:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().lines().filter(|l| l.starts_with("TLS_")).map(str::to_owned).collect()
}

/// Each priority string above allows exactly the suite it stands for, and for DTLS 1.2.
#[test]
fn priority_strings_pin_one_suite() {
    for g in SUITES {
        let lines = listed(Some(&g.priority()));
        assert_eq!(lines.len(), 1, "{}: {lines:?}", g.priority());
        assert!(lines[0].contains(&code_point(g.suite.id)), "{} is not {}: {lines:?}", g.priority(), g.suite.name);
    }
}

/// Our only PSK suite missing above: GnuTLS does not implement it (if this fails, add the case).
#[test]
fn gnutls_lacks_ecdhe_psk_aes128_gcm() {
    let id = code_point(suites::TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256.id);
    let all = listed(None);
    assert!(all.iter().any(|l| l.contains(&code_point(suites::TLS_PSK_WITH_AES_128_GCM_SHA256.id))), "{all:?}");
    assert!(!all.iter().any(|l| l.contains(&id)), "GnuTLS now has {id}: {all:?}");
    assert!(listed(Some("NONE:+VERS-DTLS1.2:+ECDHE-PSK:+AES-128-GCM:+AEAD:+SIGN-ALL:+COMP-NULL:+GROUP-ALL")).is_empty());
    assert_eq!(
        suites::ALL.iter().filter(|s| s.key_exchange.uses_psk()).count(),
        SUITES.len() + 1,
        "a PSK suite was added to the crate: test it against GnuTLS or list it as missing"
    );
}

// ===== handshake fragmentation, both ways, through a recording relay =====

/// The suite of the fragmentation tests: plain PSK, so the messages that must be fragmented
/// (ServerKeyExchange carrying a long hint, ClientKeyExchange carrying a long identity) hold
/// nothing but those strings and their reassembled bytes can be checked exactly.
const FRAG_SUITE: Gnutls = Gnutls { suite: &suites::TLS_PSK_WITH_AES_128_GCM_SHA256, kx: "PSK", cipher: "AES-128-GCM" };
/// gnutls-serv's `--mtu`: the largest datagram it sends (record headers included).
const GNUTLS_SERV_MTU: usize = 150;
/// gnutls-cli's `--mtu`: low enough that GnuTLS fragments even its ClientHellos (about 135 and
/// 155 bytes), which our server verifies from the first fragment and then reassembles.
const GNUTLS_CLI_MTU: usize = 120;
/// Our MTU in both tests.
const OUR_MTU: usize = 120;

/// A `len`-byte printable string starting with `prefix`.
fn long_name(prefix: &str, len: usize) -> String {
    let mut s = prefix.to_owned();
    s.extend(('a'..='z').cycle().take(len - prefix.len()));
    s
}

/// gnutls-serv fragments its ServerKeyExchange (a 250-byte hint at a 150-byte MTU) and we
/// reassemble it; we fragment our ClientKeyExchange (a 200-byte identity at our 120-byte MTU)
/// and gnutls-serv reassembles it.
#[test]
fn fragmentation_gnutls_serv_and_our_client() {
    let hint = long_name("gnutls-hint-", 250);
    let identity = long_name("rust-client-", 200);
    let port = free_udp_port();
    let passwd = PskFile::new(port, &identity);
    let mtu = GNUTLS_SERV_MTU.to_string();
    let server = gnutls_serv(port, &passwd, &hint, &FRAG_SUITE.priority(), &["--mtu", &mtu]);
    let relay = Relay::start(loopback(port));
    let config = Config::builder()
        .cipher_suites(&[FRAG_SUITE.suite])
        .psk_callback({
            let (hint, identity) = (hint.clone(), identity.clone());
            move |h| (h == Some(hint.as_bytes())).then(|| PskCredentials::new(identity.as_bytes(), psk()))
        })
        .mtu(OUR_MTU)
        .build()
        .unwrap();
    let mut client = Client::connect(relay.addr(), Arc::new(config), Some(T)).unwrap();
    assert_eq!(client.connection().cipher_suite(), Some(FRAG_SUITE.suite));
    client.send(b"fragmented hello").unwrap();
    let mut buf = [0u8; 1500];
    let n = client.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], b"fragmented hello");
    server.expect("*** Processing 16 bytes command: fragmented hello", T);
    client.close().unwrap();

    let (to_server, to_client) = (relay.datagrams(Dir::ToServer), relay.datagrams(Dir::ToClient));
    relay::assert_cookie_exchange(&to_server, &to_client);
    let hint_ske = relay::vec16(hint.as_bytes());
    relay::assert_fragmented("gnutls-serv", &to_client, GNUTLS_SERV_MTU, relay::SERVER_KEY_EXCHANGE, &hint_ske);
    let identity_cke = relay::vec16(identity.as_bytes());
    relay::assert_fragmented("our client", &to_server, OUR_MTU, relay::CLIENT_KEY_EXCHANGE, &identity_cke);
}

/// We fragment our ServerKeyExchange (a 250-byte hint at our 120-byte MTU) and gnutls-cli
/// reassembles it; gnutls-cli fragments its ClientKeyExchange (a 250-byte identity at a 180-byte
/// MTU) and we reassemble it.
#[test]
fn fragmentation_gnutls_cli_and_our_server() {
    let hint = long_name("rust-hint-", 250);
    let identity = long_name("gnutls-client-", 250);
    let config = Config::builder()
        .cipher_suites(&[FRAG_SUITE.suite])
        .psk_identity_hint(hint.as_bytes())
        .psk_server_callback({
            let identity = identity.clone();
            move |id| (id == identity.as_bytes()).then(|| psk().into())
        })
        .mtu(OUR_MTU)
        .build()
        .unwrap();
    let server = Server::bind(loopback(0), Arc::new(config)).unwrap();
    let relay = Relay::start(server.local_addr().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let (seen, t) = serve(server, stop.clone());
    let (port, mtu, priority) = (relay.addr().port().to_string(), GNUTLS_CLI_MTU.to_string(), FRAG_SUITE.priority());
    let mut cli = gnutls_cli(&[
        "--udp",
        "--mtu",
        &mtu,
        "-p",
        &port,
        "127.0.0.1",
        "--pskusername",
        &identity,
        "--pskkey",
        PSK_HEX,
        "--priority",
        &priority,
    ]);
    match seen.recv_timeout(T) {
        Ok(Seen::Connected { suite, identity: id, .. }) => {
            assert_eq!(suite, Some(FRAG_SUITE.suite));
            assert_eq!(id.as_deref(), Some(identity.as_bytes()));
        }
        other => unexpected("a handshake", other, &cli),
    }
    cli.expect(&format!("- PSK authentication. PSK hint '{hint}'"), T);
    cli.expect("- Handshake was completed", T);
    cli.send_line("fragmented hello");
    let peer = match seen.recv_timeout(T) {
        Ok(Seen::Line { peer, data }) => {
            assert_eq!(data, b"fragmented hello\n");
            peer
        }
        other => unexpected("a line", other, &cli),
    };
    cli.expect(&format!("to {peer}: ACK"), T);
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    let rest: Vec<Seen> = seen.try_iter().collect();
    assert!(rest.is_empty(), "unexpected server events: {rest:?}");

    let (to_server, to_client) = (relay.datagrams(Dir::ToServer), relay.datagrams(Dir::ToClient));
    relay::assert_cookie_exchange(&to_server, &to_client);
    let hint_ske = relay::vec16(hint.as_bytes());
    relay::assert_fragmented("our server", &to_client, OUR_MTU, relay::SERVER_KEY_EXCHANGE, &hint_ske);
    let identity_cke = relay::vec16(identity.as_bytes());
    relay::assert_fragmented("gnutls-cli", &to_server, GNUTLS_CLI_MTU, relay::CLIENT_KEY_EXCHANGE, &identity_cke);
    // Both ClientHellos traveled in fragments only.
    let hellos: Vec<_> =
        relay::messages(&to_server).into_iter().filter(|m| m.msg_type == relay::CLIENT_HELLO).collect();
    assert_eq!(hellos.len(), 2);
    assert!(hellos.iter().all(relay::Message::was_fragmented), "{hellos:?}");
}
