//! DTLS 1.3 interop with wolfSSL 5.9 (`src/wolfssl/`), both roles: our client against the
//! wolfSSL server (which always answers with a stateless HelloRetryRequest and a cookie), and
//! the wolfSSL client against our server (whose cookie exchange is our stateless
//! HelloRetryRequest). Each exchange: handshake, one message each way, close_notify.

#[allow(dead_code)]
mod certs;
#[allow(dead_code)]
#[path = "../src/wolfssl/mod.rs"]
mod wolfssl;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use certs::{Alg, Ca, Usage};
use rdtls::proto::crypto::KxGroup;
use rdtls::proto::enums::Protocol;
use rdtls::proto::suites::{self, CipherSuite};
use rdtls::proto::ConfigBuilder;
use rdtls::{Client, ClientAuth, Config, Server, ServerEvent};
use rdtls_interop::{loopback, psk};
use wolfssl::{Group, PskModes, WolfConfig, WolfPeer};

const T: Duration = Duration::from_secs(20);

fn ours() -> ConfigBuilder {
    Config::builder().protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
}

/// wolfSSL's name of a DTLS 1.3 suite.
fn wolf_name(suite: &CipherSuite) -> &'static str {
    match suite.id {
        0x1301 => "TLS13-AES128-GCM-SHA256",
        0x1302 => "TLS13-AES256-GCM-SHA384",
        0x1303 => "TLS13-CHACHA20-POLY1305-SHA256",
        0x1304 => "TLS13-AES128-CCM-SHA256",
        0x1305 => "TLS13-AES128-CCM-8-SHA256",
        _ => panic!("not a DTLS 1.3 suite: {suite}"),
    }
}

/// Our client against a wolfSSL server: handshake, a message each way, close_notify.
fn our_client(config: Config, server_name: Option<&str>, wolf: WolfConfig, suite: &'static CipherSuite) {
    let mut server = WolfPeer::bind(&wolf, loopback(0)).expect("wolfSSL server socket");
    let addr = server.local_addr();
    let wolf_side = thread::spawn(move || {
        server.handshake().expect("wolfSSL server handshake");
        let message = server.recv().expect("wolfSSL recv").expect("a message");
        server.send(b"hello from wolfSSL").expect("wolfSSL send");
        let end = server.recv().expect("wolfSSL recv after the echo");
        assert_eq!(end, None, "close_notify");
        (server.version(), server.cipher(), message)
    });
    let config = Arc::new(config);
    let mut client = match server_name {
        Some(name) => Client::connect_with_name(addr, name, config, Some(T)),
        None => Client::connect(addr, config, Some(T)),
    }
    .expect("our client's handshake with wolfSSL");
    assert_eq!(client.connection().protocol(), Some(Protocol::Dtls1_3));
    assert_eq!(client.connection().cipher_suite(), Some(suite));
    client.send(b"hello from rdtls").unwrap();
    let mut buf = [0u8; 1500];
    let n = client.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], b"hello from wolfSSL");
    client.close().unwrap();
    let (version, cipher, message) = wolf_side.join().expect("wolfSSL thread");
    assert_eq!(version, "DTLSv1.3");
    assert_eq!(cipher, wolf_name(suite));
    assert_eq!(message, b"hello from rdtls");
}

/// A wolfSSL client against our server: handshake, a message each way, close_notify.
fn our_server(config: Config, wolf: WolfConfig, suite: &'static CipherSuite) -> Server {
    let mut server = Server::bind(loopback(0), Arc::new(config)).unwrap();
    let addr = server.local_addr().unwrap();
    let wolf_side = thread::spawn(move || {
        let mut client = WolfPeer::connect(&wolf, addr).expect("wolfSSL client socket");
        client.handshake().expect("wolfSSL client handshake with our server");
        client.send(b"hello from wolfSSL").expect("wolfSSL send");
        let reply = client.recv().expect("wolfSSL recv").expect("our answer");
        client.close().expect("close_notify");
        (client.version(), client.cipher(), reply)
    });
    let got = rdtls_interop::serve_one(&mut server, T, |c| {
        assert_eq!(c.protocol(), Some(Protocol::Dtls1_3));
        assert_eq!(c.cipher_suite(), Some(suite));
    });
    assert_eq!(got.as_deref(), Some(&b"hello from wolfSSL"[..]));
    let (version, cipher, reply) = wolf_side.join().expect("wolfSSL thread");
    assert_eq!(version, "DTLSv1.3");
    assert_eq!(cipher, wolf_name(suite));
    assert!(reply.starts_with(b"to 127.0.0.1:"), "{}", String::from_utf8_lossy(&reply));
    server
}

const SUITES: [&CipherSuite; 5] = [
    &suites::TLS13_AES_128_GCM_SHA256,
    &suites::TLS13_AES_256_GCM_SHA384,
    &suites::TLS13_CHACHA20_POLY1305_SHA256,
    &suites::TLS13_AES_128_CCM_SHA256,
    &suites::TLS13_AES_128_CCM_8_SHA256,
];

#[test]
fn our_psk_client_every_suite() {
    let key = psk();
    for suite in SUITES {
        let wolf = WolfConfig::server().ciphers(wolf_name(suite)).psk("rdtls-client", &key);
        our_client(ours().cipher_suites(&[suite]).psk("rdtls-client", key.clone()).build().unwrap(), None, wolf, suite);
    }
}

#[test]
fn our_psk_server_every_suite() {
    let key = psk();
    for suite in SUITES {
        let wolf = WolfConfig::client().ciphers(wolf_name(suite)).psk("wolf-client", &key);
        let config = ours()
            .cipher_suites(&[suite])
            .psk_server_callback(move |id| (id == b"wolf-client").then(|| psk().into()))
            .build()
            .unwrap();
        our_server(config, wolf, suite);
    }
}

#[test]
fn psk_ke_without_ecdhe() {
    let key = psk();
    let suite = &suites::TLS13_AES_128_GCM_SHA256;
    let wolf = WolfConfig::client().ciphers(wolf_name(suite)).psk("wolf-client", &key).psk_modes(PskModes::PlainOnly);
    our_server(ours().psk_server_key(key.clone()).build().unwrap(), wolf, suite);
}

#[test]
fn certificates_both_roles() {
    let ca = Ca::root("rdtls 1.3 interop root");
    for alg in [Alg::EcdsaP256, Alg::Rsa2048] {
        let leaf = ca.leaf(alg, &["localhost"], Usage::Server);
        let suite = &suites::TLS13_AES_128_GCM_SHA256;
        let wolf = WolfConfig::server().ciphers(wolf_name(suite)).certificate(&leaf.chain_pem(), &leaf.key_pem);
        our_client(ours().root_store(ca.roots()).build().unwrap(), Some("localhost"), wolf, suite);
        let wolf = WolfConfig::client().ciphers(wolf_name(suite)).ca(ca.root_pem()).server_name("localhost");
        our_server(ours().certificate(leaf.certified_key()).build().unwrap(), wolf, suite);
    }
}

#[test]
fn mutual_authentication_both_roles() {
    let ca = Ca::root("rdtls 1.3 mutual root");
    let server_leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    let client_leaf = ca.leaf(Alg::EcdsaP256, &["client"], Usage::Client);
    let suite = &suites::TLS13_CHACHA20_POLY1305_SHA256;
    let wolf = WolfConfig::server()
        .ciphers(wolf_name(suite))
        .certificate(&server_leaf.chain_pem(), &server_leaf.key_pem)
        .ca(ca.root_pem())
        .require_client_cert();
    let config = ours().cipher_suites(&[suite]).root_store(ca.roots()).client_certificate(client_leaf.certified_key());
    our_client(config.build().unwrap(), Some("localhost"), wolf, suite);
    let wolf = WolfConfig::client()
        .ciphers(wolf_name(suite))
        .ca(ca.root_pem())
        .server_name("localhost")
        .certificate(&client_leaf.chain_pem(), &client_leaf.key_pem);
    let config = ours()
        .cipher_suites(&[suite])
        .certificate(server_leaf.certified_key())
        .root_store(ca.roots())
        .client_auth(ClientAuth::Required);
    our_server(config.build().unwrap(), wolf, suite);
}

/// Each side offers a group the other does not prefer: a HelloRetryRequest asks for one.
#[test]
fn hello_retry_request_for_a_group_both_roles() {
    let key = psk();
    let suite = &suites::TLS13_AES_128_GCM_SHA256;
    // Our client sends an X25519 share; wolfSSL only takes P-384.
    let wolf = WolfConfig::server().ciphers(wolf_name(suite)).psk("c", &key).groups(&[Group::P384]);
    let config = ours().psk("c", key.clone()).groups(&[KxGroup::X25519, KxGroup::Secp384r1]);
    our_client(config.build().unwrap(), None, wolf, suite);
    // wolfSSL's client sends X25519; we only take P-256 (through our stateless retry, and
    // through the stateful one with cookies off).
    for cookies in [true, false] {
        let wolf = WolfConfig::client().ciphers(wolf_name(suite)).psk("c", &key).groups(&[Group::X25519, Group::P256]);
        let config = ours().psk_server_key(key.clone()).groups(&[KxGroup::Secp256r1]).cookie_verification(cookies);
        our_server(config.build().unwrap(), wolf, suite);
    }
}

/// A KeyUpdate from each side in the middle of a stream, ours asking wolfSSL to update too:
/// every message arrives, and our side counts the updates of both.
#[test]
fn key_updates_from_each_side() {
    let key = psk();
    let suite = &suites::TLS13_AES_128_GCM_SHA256;
    let wolf = WolfConfig::server().ciphers(wolf_name(suite)).psk("ku", &key);
    let mut server = WolfPeer::bind(&wolf, loopback(0)).expect("wolfSSL server socket");
    let addr = server.local_addr();
    let wolf_side = thread::spawn(move || {
        server.handshake().expect("wolfSSL handshake");
        let mut got = Vec::new();
        for i in 0..6 {
            let m = server.recv().expect("wolfSSL recv").expect("a message");
            got.push(m);
            if i == 3 {
                server.update_keys().expect("wolfSSL KeyUpdate");
            }
            server.send(format!("reply {i}").as_bytes()).expect("wolfSSL send");
        }
        assert_eq!(server.recv().expect("recv after the stream"), None, "close_notify");
        got
    });
    let config = Arc::new(ours().psk("ku", key.clone()).build().unwrap());
    let mut client = Client::connect(addr, config, Some(T)).expect("handshake");
    let mut buf = [0u8; 1500];
    for i in 0..6 {
        if i == 1 {
            client.update_keys(true).unwrap();
        }
        client.send(format!("message {i}").as_bytes()).unwrap();
        let n = client.recv(&mut buf, Some(T)).unwrap();
        assert_eq!(&buf[..n], format!("reply {i}").as_bytes());
        if i == 1 {
            // wolfSSL answered our request with a KeyUpdate, which we acknowledge when the ACK
            // timer fires (a quarter of a second); wolfSSL starts no other KeyUpdate before
            // that ACK. Let it go out before wolfSSL's own update at message 3.
            let idle = client.recv(&mut buf, Some(Duration::from_millis(400)));
            assert!(matches!(idle, Err(e) if e.kind() == std::io::ErrorKind::TimedOut));
        }
    }
    // Post-handshake messages are acknowledged by the ACK timer (a quarter of the
    // retransmission timeout), and a KeyUpdate waits for the ACK of the one before: the
    // updates of both sides finish a few timer periods after the stream.
    let deadline = Instant::now() + Duration::from_secs(5);
    let done = |s: &rdtls_proto::Stats| s.key_updates_sent >= 2 && s.key_updates_received >= 2;
    while !done(&client.connection().stats()) && Instant::now() < deadline {
        assert!(
            matches!(client.recv(&mut buf, Some(Duration::from_millis(100))), Err(e) if e.kind() == std::io::ErrorKind::TimedOut)
        );
    }
    let stats = client.connection().stats();
    client.close().unwrap();
    let got = wolf_side.join().expect("wolfSSL thread");
    assert_eq!(got, (0..6).map(|i| format!("message {i}").into_bytes()).collect::<Vec<_>>());
    // Ours, then our answer to wolfSSL's (which asks for one).
    assert_eq!(stats.key_updates_sent, 2, "{stats:?}");
    // wolfSSL's answer to our request, then its own.
    assert_eq!(stats.key_updates_received, 2, "{stats:?}");
}

/// Both roles through the fault proxy: our datagrams at most 400 bytes (our RSA certificate
/// flight fragmented for wolfSSL to reassemble; the proxy drops anything of ours larger), 20%
/// loss each way during the handshake, then the data and close_notify on a clean path (they are
/// not retransmitted). wolfSSL keeps its own MTU: it cannot fragment to 400 bytes (its
/// fragments leave room far below the MTU, and it fails with BUFFER_E). With wolfSSL as the
/// client, its direction stays clean: wolfSSL 5.9's client never resent a lost Finished (60 s
/// with four datagrams from it, while our server resent its flight a dozen times), so a loss
/// there can only end in a timeout. (The same test with loss both ways, and a retry, shows it.)
#[test]
fn fragmented_at_400_bytes_with_20_percent_loss_both_roles() {
    use rdtls_interop::{Direction, FaultProxy, Faults};
    let ca = Ca::root("rdtls 1.3 lossy root");
    let leaf = ca.leaf(Alg::Rsa2048, &["localhost"], Usage::Server);
    let suite = &suites::TLS13_AES_128_GCM_SHA256;
    let lossy = || Faults::none().loss(0.2);
    for seed in [1u64, 2] {
        // Our client, wolfSSL's server.
        let wolf = WolfConfig::server().ciphers(wolf_name(suite)).certificate(&leaf.chain_pem(), &leaf.key_pem);
        let mut server = WolfPeer::bind(&wolf, loopback(0)).expect("wolfSSL server socket");
        let mut proxy = FaultProxy::start(server.local_addr(), lossy().mtu(400), lossy(), seed);
        let proxy_ref = &proxy;
        thread::scope(|s| {
            let proxy = proxy_ref;
            let wolf_side = s.spawn(move || {
                server.handshake().expect("wolfSSL handshake through loss");
                let m = server.recv().expect("recv").expect("a message");
                server.send(&m).expect("echo");
                assert_eq!(server.recv().expect("recv"), None, "close_notify");
            });
            let config = Arc::new(ours().mtu(400).root_store(ca.roots()).build().unwrap());
            let mut client =
                Client::connect_with_name(proxy.addr(), "localhost", config, Some(Duration::from_secs(60)))
                    .expect("our handshake through loss");
            // The path is cleared for the data; our Finished may have been lost before: it is
            // resent until wolfSSL acknowledges it (data sent before that could be dropped).
            proxy.set_faults(Direction::ToServer, Faults::none());
            proxy.set_faults(Direction::ToClient, Faults::none());
            let mut buf = [0u8; 1500];
            while client.connection().poll_timeout().is_some() {
                let r = client.recv(&mut buf, Some(Duration::from_millis(100)));
                assert!(r.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::TimedOut), "{r:?}");
            }
            client.send(b"through the storm").unwrap();
            let n = client.recv(&mut buf, Some(T)).unwrap();
            assert_eq!(&buf[..n], b"through the storm");
            client.close().unwrap();
            wolf_side.join().expect("wolfSSL side");
        });
        let stats = proxy.stop();
        assert!(stats.to_server.dropped + stats.to_client.dropped > 0, "seed {seed}: nothing was lost: {stats:?}");

        // wolfSSL's client, our server.
        let config = Arc::new(ours().mtu(400).certificate(leaf.certified_key()).build().unwrap());
        let mut server = Server::bind(loopback(0), config).unwrap();
        let mut proxy = FaultProxy::start(server.local_addr().unwrap(), Faults::none(), lossy().mtu(400), seed);
        // X25519: with the hybrid group wolfSSL offers first, our ServerHello alone is four
        // pieces at this MTU, and through this loss wolfSSL's client did not complete within
        // its 20 s (tests/wolfssl_pq.rs has the hybrid group at 400 bytes without loss).
        let wolf = WolfConfig::client()
            .ciphers(wolf_name(suite))
            .ca(ca.root_pem())
            .server_name("localhost")
            .groups(&[Group::X25519]);
        thread::scope(|s| {
            let proxy = &proxy;
            let wolf_side = s.spawn(move || {
                let mut client = WolfPeer::connect(&wolf, proxy.addr()).expect("wolfSSL socket");
                client.handshake().expect("wolfSSL handshake through loss");
                proxy.set_faults(Direction::ToServer, Faults::none());
                proxy.set_faults(Direction::ToClient, Faults::none());
                // Our server greets once it has wolfSSL's Finished (which wolfSSL resends
                // while it waits here, if it was lost).
                assert_eq!(client.recv().expect("recv").as_deref(), Some(&b"welcome"[..]));
                client.send(b"through the storm").expect("send");
                let reply = client.recv().expect("recv").expect("the answer");
                client.close().expect("close_notify");
                reply
            });
            let mut answered = false;
            loop {
                match server.poll(Some(Duration::from_secs(60))).unwrap() {
                    Some(ServerEvent::Connected(p)) => {
                        server.send_to(p, b"welcome").unwrap();
                    }
                    Some(ServerEvent::Message(p, data)) => {
                        assert_eq!(data, b"through the storm");
                        server.send_to(p, b"calm").unwrap();
                        answered = true;
                    }
                    Some(ServerEvent::Closed(_, _)) if answered => break,
                    Some(ServerEvent::Closed(p, e)) => panic!("{p} closed before the message: {e:?}"),
                    Some(_) => {}
                    None => panic!("no event within 60 s: {:?}", proxy.stats()),
                }
            }
            assert_eq!(wolf_side.join().expect("wolfSSL side"), b"calm");
        });
        let stats = proxy.stop();
        assert!(stats.to_server.dropped + stats.to_client.dropped > 0, "seed {seed}: nothing was lost: {stats:?}");
    }
}
