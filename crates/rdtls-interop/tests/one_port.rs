//! One server on one port, configured for DTLS 1.2 and 1.3, serves in one test OpenSSL's
//! `s_client` (DTLS 1.2), GnuTLS's `gnutls-cli` (DTLS 1.2), wolfSSL's client (DTLS 1.3), and our
//! own DTLS 1.2-only and DTLS 1.3 clients: each reports the version it should, on both sides.
//! Cookie verification is on: 1.2 clients get the HelloVerifyRequest, 1.3 clients the
//! HelloRetryRequest with a cookie, from the same stateless verifier.

#[allow(dead_code, unused_imports)]
#[path = "../src/wolfssl/mod.rs"]
mod wolfssl;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rdtls::proto::enums::Protocol;
use rdtls::proto::suites::{self, CipherSuite};
use rdtls::{Client, Config, Server, ServerEvent};
use rdtls_interop::{loopback, psk, require, Peer, PSK_HEX};
use wolfssl::{WolfConfig, WolfPeer};

const T: Duration = Duration::from_secs(20);

/// What the server saw of each client, by PSK identity: version and suite.
type Seen = Arc<Mutex<BTreeMap<String, (Option<Protocol>, Option<&'static CipherSuite>)>>>;

fn serve(mut server: Server, stop: Arc<AtomicBool>, seen: Seen) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut lines: BTreeMap<SocketAddr, Vec<u8>> = BTreeMap::new();
        while !stop.load(Ordering::Relaxed) {
            match server.poll(Some(Duration::from_millis(50))).unwrap() {
                Some(ServerEvent::Connected(peer)) => {
                    let c = server.connection(peer).expect("a connected peer has a connection");
                    let identity = String::from_utf8_lossy(c.psk_identity().unwrap_or_default()).into_owned();
                    seen.lock().unwrap().insert(identity, (c.protocol(), c.cipher_suite()));
                }
                Some(ServerEvent::Message(peer, part)) => {
                    let line = lines.entry(peer).or_default();
                    line.extend_from_slice(&part);
                    if line.ends_with(b"\n") {
                        line.clear();
                        server.send_to(peer, format!("to {peer}: ACK").as_bytes()).unwrap();
                    }
                }
                _ => {}
            }
        }
    })
}

/// Our client: version range and identity; checks its own view.
fn ours(addr: SocketAddr, oldest: Protocol, newest: Protocol, identity: &str) -> Protocol {
    let config = Config::builder().protocol_versions(oldest, newest).psk(identity, psk()).build().unwrap();
    let mut client = Client::connect(addr, Arc::new(config), Some(T)).expect("our client's handshake");
    client.send(b"hello from rdtls\n").unwrap();
    let mut buf = [0u8; 256];
    let n = client.recv(&mut buf, Some(T)).unwrap();
    assert!(buf[..n].ends_with(b": ACK"));
    let version = client.protocol().expect("a version");
    client.close().unwrap();
    version
}

#[test]
fn one_port_serves_openssl_gnutls_wolfssl_and_ours_in_both_versions() {
    require("openssl");
    require("gnutls-cli");
    let config = Config::builder()
        .protocol_versions(Protocol::Dtls1_2, Protocol::Dtls1_3)
        .psk_server_key(psk())
        .build()
        .unwrap();
    let server = Server::bind(loopback(0), Arc::new(config)).unwrap();
    let addr = server.local_addr().unwrap();
    let port = addr.port().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Seen = Arc::default();
    let t = serve(server, stop.clone(), seen.clone());

    // OpenSSL 3.0, DTLS 1.2.
    let target = format!("127.0.0.1:{port}");
    let mut s_client = Peer::spawn(
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
            "PSK-AES128-GCM-SHA256",
            "-ign_eof",
        ],
    );
    s_client.expect("Cipher is", T);
    s_client.send_line("hello from openssl");
    s_client.expect(": ACK", T);
    assert!(s_client.printed("Protocol  : DTLSv1.2"), "{}", s_client.output());

    // GnuTLS 3.7, DTLS 1.2 (plain PSK: its ECDHE-PSK client crashes after the handshake).
    let mut cli = Peer::spawn(
        "sh",
        &[
            "-c",
            "stdbuf -o0 gnutls-cli \"$@\"",
            "sh",
            "--udp",
            "-p",
            &port,
            "127.0.0.1",
            "--pskusername",
            "gnutls",
            "--pskkey",
            PSK_HEX,
            "--priority",
            "NONE:+VERS-DTLS1.2:+PSK:+AES-128-GCM:+AEAD:+SIGN-ALL:+COMP-NULL:+GROUP-ALL",
        ],
    );
    cli.expect("- Handshake was completed", T);
    cli.send_line("hello from gnutls");
    cli.expect(": ACK", T);
    assert!(cli.output().contains("- Description: (DTLS1.2-X.509)-(PSK)-(AES-128-GCM)"), "{}", cli.output());

    // wolfSSL 5.9, DTLS 1.3.
    let wolf = WolfConfig::client().psk("wolfssl", &psk());
    let mut w = WolfPeer::connect(&wolf, addr).expect("wolfSSL socket");
    w.handshake().expect("wolfSSL handshake");
    w.send(b"hello from wolfssl\n").expect("wolfSSL send");
    assert!(w.recv().expect("wolfSSL recv").expect("our answer").ends_with(b": ACK"));
    assert_eq!(w.version(), "DTLSv1.3");
    w.close().expect("close_notify");

    // Ours: 1.2 only, and 1.3 (offering 1.2 too).
    assert_eq!(ours(addr, Protocol::Dtls1_2, Protocol::Dtls1_2, "rdtls-1.2"), Protocol::Dtls1_2);
    assert_eq!(ours(addr, Protocol::Dtls1_2, Protocol::Dtls1_3, "rdtls-1.3"), Protocol::Dtls1_3);

    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    let seen = seen.lock().unwrap();
    let version = |id: &str| seen.get(id).unwrap_or_else(|| panic!("{id} not served: {seen:?}")).0;
    for (id, expected) in [
        ("openssl", Protocol::Dtls1_2),
        ("gnutls", Protocol::Dtls1_2),
        ("wolfssl", Protocol::Dtls1_3),
        ("rdtls-1.2", Protocol::Dtls1_2),
        ("rdtls-1.3", Protocol::Dtls1_3),
    ] {
        assert_eq!(version(id), Some(expected), "{id}");
    }
    assert_eq!(seen["wolfssl"].1, Some(&suites::TLS13_AES_128_GCM_SHA256));
    assert_eq!(seen["openssl"].1, Some(&suites::TLS_PSK_WITH_AES_128_GCM_SHA256));
}
