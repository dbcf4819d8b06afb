//! Interop with OpenSSL's command-line DTLS 1.2 peers, both roles, every PSK suite it has.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use dtls::{Client, Config, Server, ServerEvent};
use dtls_interop::{free_udp_port, loopback, psk, Peer, PSK_HEX};
use dtls_proto::suites;

const T: Duration = Duration::from_secs(20);

fn our_client_against_s_server(suite: &'static dtls::CipherSuite, extra: &[&str]) {
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

fn s_client_against_our_server(suite: &'static dtls::CipherSuite) {
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
