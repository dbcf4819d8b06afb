//! Interop with OpenSSL's command-line DTLS 1.2 peers, both roles, every PSK suite it has.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rdtls::{Client, Config, Server, ServerEvent};
use rdtls_interop::{free_udp_port, loopback, psk, Peer, PSK_HEX};
use rdtls_proto::suites;

const T: Duration = Duration::from_secs(20);

fn our_client_against_s_server(suite: &'static rdtls::CipherSuite, extra: &[&str]) {
    let port = free_udp_port().to_string();
    let mut args = vec![
        "s_server",
        "-dtls1_2",
        "-listen",
        "-accept",
        &port,
        "-naccept",
        "1",
        "-nocert",
        "-psk",
        PSK_HEX,
        "-psk_hint",
        "openssl-hint",
        "-cipher",
        suite.openssl_name,
    ];
    args.extend_from_slice(extra);
    let mut server = Peer::spawn("openssl", &args);
    server.wait_started("ACCEPT", T);
    let config = Arc::new(Config::builder().cipher_suites(&[suite]).psk("rust-client", psk()).build().unwrap());
    let mut client = Client::connect(loopback(port.parse().unwrap()), config, Some(T)).unwrap();
    assert_eq!(client.connection().cipher_suite(), Some(suite));
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

fn s_client_against_our_server(suite: &'static rdtls::CipherSuite) {
    let config = Arc::new(
        Config::builder()
            .cipher_suites(&[suite])
            .psk_identity_hint("rust-hint")
            .psk_server_callback(|identity| (identity == b"openssl-client").then(|| psk().into()))
            .build()
            .unwrap(),
    );
    let mut server = Server::bind(loopback(0), config).unwrap();
    let port = server.local_addr().unwrap().port().to_string();
    let t = thread::spawn(move || {
        let mut peer = None;
        // s_client sends what it reads from stdin, possibly split over several records.
        let mut data = Vec::new();
        loop {
            match server.poll(Some(T)).unwrap() {
                Some(ServerEvent::Connected(p)) => peer = Some(p),
                Some(ServerEvent::Message(p, part)) => {
                    data.extend_from_slice(&part);
                    if !data.ends_with(b"\n") {
                        continue;
                    }
                    let reply = format!("to {p}: ACK");
                    server.send_to(p, reply.as_bytes()).unwrap();
                    let suite = server.connection(p).unwrap().cipher_suite();
                    return (peer, data, suite);
                }
                Some(ServerEvent::Closed(p, e)) => panic!("{p} closed: {e:?}"),
                // A peer verified before its handshake: the outcome comes as above.
                Some(ServerEvent::Verified { .. }) => continue,
                Some(other) => panic!("unexpected {other:?}"),
                None => panic!("no message from s_client"),
            }
        }
    });
    let target = format!("127.0.0.1:{port}");
    let mut client = Peer::spawn(
        "openssl",
        &[
            "s_client",
            "-dtls1_2",
            "-connect",
            &target,
            "-psk",
            PSK_HEX,
            "-psk_identity",
            "openssl-client",
            "-cipher",
            suite.openssl_name,
            "-ign_eof",
        ],
    );
    client.expect("Cipher is", T);
    client.send_line("hello from openssl");
    let (peer, data, negotiated) = t.join().unwrap();
    assert!(peer.is_some(), "no Connected event");
    assert_eq!(data, b"hello from openssl\n");
    assert_eq!(negotiated, Some(suite));
    client.expect(": ACK", T);
    assert!(client.printed(suite.openssl_name), "{}", client.output());
}

macro_rules! both_roles {
    ($($name:ident => $suite:expr,)*) => {
        mod our_client { use super::*; $( #[test] fn $name() { our_client_against_s_server(&$suite, &[]); } )* }
        mod our_server { use super::*; $( #[test] fn $name() { s_client_against_our_server(&$suite); } )* }
    };
}

both_roles! {
    psk_aes128_gcm => suites::TLS_PSK_WITH_AES_128_GCM_SHA256,
    psk_aes256_gcm => suites::TLS_PSK_WITH_AES_256_GCM_SHA384,
    psk_chacha20 => suites::TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
    psk_aes128_ccm => suites::TLS_PSK_WITH_AES_128_CCM,
    psk_aes128_ccm8 => suites::TLS_PSK_WITH_AES_128_CCM_8,
    ecdhe_psk_chacha20 => suites::TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256,
}

// ===== handshake fragmentation, both ways, through a recording relay =====

mod relay;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use relay::{Dir, Relay};

/// The suite of the fragmentation tests: plain PSK, so the messages that must be fragmented
/// (ServerKeyExchange carrying a long hint, ClientKeyExchange carrying a long identity) hold
/// nothing but those strings and their reassembled bytes can be checked exactly.
const FRAG_SUITE: &rdtls::CipherSuite = &suites::TLS_PSK_WITH_AES_128_GCM_SHA256;
/// OpenSSL's `-mtu` is the link MTU: over IPv4 its datagrams are 28 bytes (IP and UDP headers)
/// shorter. 256 is close to the smallest it accepts (228).
const OPENSSL_LINK_MTU: usize = 256;
const OPENSSL_DATAGRAM_MTU: usize = OPENSSL_LINK_MTU - 28;
/// Our MTU in both tests.
const OUR_MTU: usize = 120;

/// A `len`-byte printable string starting with `prefix`.
fn long_name(prefix: &str, len: usize) -> String {
    let mut s = prefix.to_owned();
    s.extend(('a'..='z').cycle().take(len - prefix.len()));
    s
}

/// s_server fragments its ServerKeyExchange (a 250-byte hint in 228-byte datagrams) and we
/// reassemble it; we fragment our ClientKeyExchange (a 200-byte identity at our 120-byte MTU)
/// and s_server reassembles it.
#[test]
fn fragmentation_s_server_and_our_client() {
    let hint = long_name("openssl-hint-", 250);
    let identity = long_name("rust-client-", 200);
    let port = free_udp_port();
    let (port_s, mtu) = (port.to_string(), OPENSSL_LINK_MTU.to_string());
    #[rustfmt::skip]
    let mut server = Peer::spawn("openssl", &[
        "s_server", "-dtls1_2", "-listen", "-accept", &port_s, "-naccept", "1", "-nocert", "-mtu", &mtu,
        "-psk", PSK_HEX, "-psk_identity", &identity, "-psk_hint", &hint, "-cipher", FRAG_SUITE.openssl_name,
    ]);
    server.wait_started("ACCEPT", T);
    let relay = Relay::start(loopback(port));
    let config = Config::builder()
        .cipher_suites(&[FRAG_SUITE])
        .psk_callback({
            let (hint, identity) = (hint.clone(), identity.clone());
            move |h| (h == Some(hint.as_bytes())).then(|| rdtls_proto::PskCredentials::new(identity.as_bytes(), psk()))
        })
        .mtu(OUR_MTU)
        .build()
        .unwrap();
    let mut client = Client::connect(relay.addr(), Arc::new(config), Some(T)).unwrap();
    assert_eq!(client.connection().cipher_suite(), Some(FRAG_SUITE));
    client.send(b"fragmented hello from rust").unwrap();
    server.expect("fragmented hello from rust", T);
    server.send_line("fragmented hello from openssl");
    let mut got = Vec::new();
    let mut buf = [0u8; 1500];
    while !got.ends_with(b"\n") {
        let n = client.recv(&mut buf, Some(T)).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"fragmented hello from openssl\n");
    client.close().unwrap();
    server.expect("DONE", T);
    assert!(!server.printed("PSK warning"), "s_server saw another identity:\n{}", server.output());

    let (to_server, to_client) = (relay.datagrams(Dir::ToServer), relay.datagrams(Dir::ToClient));
    relay::assert_cookie_exchange(&to_server, &to_client);
    let hint_ske = relay::vec16(hint.as_bytes());
    relay::assert_fragmented("s_server", &to_client, OPENSSL_DATAGRAM_MTU, relay::SERVER_KEY_EXCHANGE, &hint_ske);
    let identity_cke = relay::vec16(identity.as_bytes());
    relay::assert_fragmented("our client", &to_server, OUR_MTU, relay::CLIENT_KEY_EXCHANGE, &identity_cke);
}

/// We fragment our ServerKeyExchange (a 250-byte hint at our 120-byte MTU) and s_client
/// reassembles it; s_client fragments its ClientKeyExchange (a 250-byte identity in 228-byte
/// datagrams) and we reassemble it.
#[test]
fn fragmentation_s_client_and_our_server() {
    let hint = long_name("rust-hint-", 250);
    let identity = long_name("openssl-client-", 250);
    let config = Config::builder()
        .cipher_suites(&[FRAG_SUITE])
        .psk_identity_hint(hint.as_bytes())
        .psk_server_callback({
            let identity = identity.clone();
            move |id| (id == identity.as_bytes()).then(|| psk().into())
        })
        .mtu(OUR_MTU)
        .build()
        .unwrap();
    let mut server = Server::bind(loopback(0), Arc::new(config)).unwrap();
    let relay = Relay::start(server.local_addr().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let t = thread::spawn({
        let stop = stop.clone();
        move || {
            let (mut connected, mut data) = (None, Vec::new());
            let deadline = Instant::now() + T;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match server.poll(Some(Duration::from_millis(50))).unwrap() {
                    Some(ServerEvent::Connected(p)) => {
                        let conn = server.connection(p).unwrap();
                        connected = Some((p, conn.cipher_suite(), conn.psk_identity().map(<[u8]>::to_vec)));
                    }
                    Some(ServerEvent::Message(p, part)) => {
                        data.extend_from_slice(&part);
                        if data.ends_with(b"\n") {
                            server.send_to(p, format!("to {p}: ACK").as_bytes()).unwrap();
                        }
                    }
                    Some(ServerEvent::Closed(p, e)) => panic!("{p} closed: {e:?}"),
                    // A peer verified before its handshake: the outcome comes as above.
                    Some(ServerEvent::Verified { .. }) => continue,
                    Some(other) => panic!("unexpected {other:?}"),
                    None => {}
                }
            }
            (connected, data)
        }
    });
    let (target, mtu) = (relay.addr().to_string(), OPENSSL_LINK_MTU.to_string());
    #[rustfmt::skip]
    let mut client = Peer::spawn("openssl", &[
        "s_client", "-dtls1_2", "-connect", &target, "-mtu", &mtu, "-psk", PSK_HEX, "-psk_identity", &identity,
        "-cipher", FRAG_SUITE.openssl_name, "-ign_eof",
    ]);
    client.expect("Cipher is", T);
    client.send_line("fragmented hello from openssl");
    client.expect(": ACK", T);
    stop.store(true, Ordering::Relaxed);
    let (connected, data) = t.join().unwrap();
    let (peer, suite, id) = connected.expect("no Connected event");
    assert_eq!(suite, Some(FRAG_SUITE));
    assert_eq!(id.as_deref(), Some(identity.as_bytes()));
    assert_eq!(data, b"fragmented hello from openssl\n");
    client.expect(&format!("to {peer}: ACK"), T);

    let (to_server, to_client) = (relay.datagrams(Dir::ToServer), relay.datagrams(Dir::ToClient));
    relay::assert_cookie_exchange(&to_server, &to_client);
    let hint_ske = relay::vec16(hint.as_bytes());
    relay::assert_fragmented("our server", &to_client, OUR_MTU, relay::SERVER_KEY_EXCHANGE, &hint_ske);
    let identity_cke = relay::vec16(identity.as_bytes());
    relay::assert_fragmented("s_client", &to_server, OPENSSL_DATAGRAM_MTU, relay::CLIENT_KEY_EXCHANGE, &identity_cke);
}

// ===== the key log: the line OpenSSL writes is the line we write =====

/// A fresh path in the temporary directory for a key log.
fn key_log_path(who: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("dtls-keylog-{who}-{}-{}", std::process::id(), free_udp_port()));
    let _ = std::fs::remove_file(&path);
    path
}

/// The `CLIENT_RANDOM` lines of a key log file.
fn client_random_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("CLIENT_RANDOM "))
        .map(str::to_owned)
        .collect()
}

/// Wireshark decrypts a capture with either side's key log: ours must hold exactly the line
/// OpenSSL's `-keylogfile` holds (the client's random and the master secret), both roles.
#[test]
fn our_key_log_line_is_openssls() {
    let suite = &suites::TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256;
    // Our client, OpenSSL's server.
    let (ours, theirs) = (key_log_path("ours-client"), key_log_path("openssl-server"));
    let port = free_udp_port().to_string();
    let theirs_arg = theirs.to_string_lossy().into_owned();
    let args = [
        "s_server",
        "-dtls1_2",
        "-listen",
        "-accept",
        &port,
        "-naccept",
        "1",
        "-nocert",
        "-psk",
        PSK_HEX,
        "-cipher",
        suite.openssl_name,
        "-keylogfile",
        &theirs_arg,
    ];
    let mut server = Peer::spawn("openssl", &args);
    server.wait_started("ACCEPT", T);
    let log = rdtls::KeyLogFile::create(&ours).unwrap();
    let config = Arc::new(Config::builder().cipher_suites(&[suite]).psk("rust", psk()).key_log(log).build().unwrap());
    let mut client = Client::connect(loopback(port.parse().unwrap()), config, Some(T)).unwrap();
    client.send(b"logged\n").unwrap();
    server.expect("logged", T);
    client.close().unwrap();
    server.expect("DONE", T);
    let ours_lines = client_random_lines(&ours);
    assert_eq!(ours_lines.len(), 1, "{ours_lines:?}");
    assert_eq!(ours_lines, client_random_lines(&theirs), "our client's line is OpenSSL's server's");

    // OpenSSL's client, our server.
    let (ours, theirs) = (key_log_path("ours-server"), key_log_path("openssl-client"));
    let log = rdtls::KeyLogFile::create(&ours).unwrap();
    let config =
        Arc::new(Config::builder().cipher_suites(&[suite]).psk_server_key(psk()).key_log(log).build().unwrap());
    let mut server = Server::bind(loopback(0), config).unwrap();
    let target = format!("127.0.0.1:{}", server.local_addr().unwrap().port());
    let t = thread::spawn(move || loop {
        match server.poll(Some(T)).unwrap() {
            Some(ServerEvent::Message(p, _)) => {
                server.send_to(p, b"ok\n").unwrap();
                return;
            }
            Some(_) => {}
            None => panic!("no message from s_client"),
        }
    });
    let theirs_arg = theirs.to_string_lossy().into_owned();
    let mut client = Peer::spawn(
        "openssl",
        &[
            "s_client",
            "-dtls1_2",
            "-connect",
            &target,
            "-psk",
            PSK_HEX,
            "-psk_identity",
            "openssl",
            "-cipher",
            suite.openssl_name,
            "-keylogfile",
            &theirs_arg,
            "-ign_eof",
        ],
    );
    client.expect("Cipher is", T);
    client.send_line("logged");
    t.join().unwrap();
    client.expect("ok", T);
    let ours_lines = client_random_lines(&ours);
    assert_eq!(ours_lines.len(), 1, "{ours_lines:?}");
    assert_eq!(ours_lines, client_random_lines(&theirs), "our server's line is OpenSSL's client's");
    let _ = std::fs::remove_file(&ours);
    let _ = std::fs::remove_file(&theirs);
}
