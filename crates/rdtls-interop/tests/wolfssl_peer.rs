//! The wolfSSL DTLS 1.3 peer (`src/wolfssl/`) against itself: a wolfSSL client and a wolfSSL
//! server on loopback, each on its own thread and socket, with an external PSK and with ECDSA
//! P-256 certificates (server-only and mutual). This is the proof that the peer works before we
//! have DTLS 1.3 of our own to put on the other side.
//!
//! A last exchange loses the server's HelloRetryRequest on the way, so the client's
//! retransmission timer (the peer's `poll` and `wolfSSL_dtls_got_timeout` path) has to recover.
//!
//! Each exchange: handshake (with the server's HelloRetryRequest cookie, wolfSSL's default), one
//! message from the client, the same bytes back from the server, close_notify from the client,
//! which the server reads as the end. Both sides must report DTLS 1.3 and the suite configured,
//! and log the same four traffic secrets under the same client random.

#[allow(dead_code)]
mod certs;
#[allow(dead_code)]
#[path = "../src/wolfssl/mod.rs"]
mod wolfssl;

use std::net::SocketAddr;
use std::thread;

use certs::{Alg, Ca, Usage};
use rdtls_interop::{loopback, psk, FaultProxy, Faults, Marker, Target};
use wolfssl::{Group, PskModes, WolfConfig, WolfError, WolfPeer};

/// What one side saw.
#[derive(Debug)]
struct Outcome {
    version: String,
    cipher: String,
    group: Option<String>,
    psk_identity: Option<String>,
    /// The client: the server's answer; the server: the client's message.
    received: Vec<u8>,
    key_log: Vec<String>,
}

impl Outcome {
    fn of(peer: &WolfPeer, received: Vec<u8>) -> Self {
        Self {
            version: peer.version(),
            cipher: peer.cipher(),
            group: peer.group(),
            psk_identity: peer.psk_identity(),
            received,
            key_log: peer.key_log(),
        }
    }
}

const MESSAGE: &[u8] = b"hello over DTLS 1.3 from the wolfSSL client";

/// Runs one exchange; returns (client, server).
fn exchange(client: &WolfConfig, server: &WolfConfig) -> (Outcome, Outcome) {
    exchange_via(client, server, |addr| addr)
}

/// Runs one exchange with the client sending to `route(server address)`; returns (client,
/// server).
fn exchange_via(
    client: &WolfConfig,
    server: &WolfConfig,
    route: impl FnOnce(SocketAddr) -> SocketAddr,
) -> (Outcome, Outcome) {
    let mut server = WolfPeer::bind(server, loopback(0)).expect("server socket");
    let addr = route(server.local_addr());
    let server = thread::spawn(move || {
        server.handshake().expect("server handshake");
        let message = server.recv().expect("server recv").expect("a message before close_notify");
        server.send(&message).expect("server send");
        let end = server.recv().expect("server recv after the echo");
        assert_eq!(end, None, "the client's close_notify, not more data");
        Outcome::of(&server, message)
    });
    let mut client = WolfPeer::connect(client, addr).expect("client socket");
    client.handshake().expect("client handshake");
    client.send(MESSAGE).expect("client send");
    let echo = client.recv().expect("client recv").expect("the echo, not close_notify");
    client.close().expect("client close_notify");
    let client = Outcome::of(&client, echo);
    (client, server.join().expect("server thread"))
}

/// Checks what both sides must agree on: version, suite, message, key log.
fn check(client: &Outcome, server: &Outcome, cipher: &str) {
    for (side, o) in [("client", client), ("server", server)] {
        assert_eq!(o.version, "DTLSv1.3", "{side}: {o:?}");
        assert_eq!(o.cipher, cipher, "{side}: {o:?}");
        assert_eq!(o.received, MESSAGE, "{side} received");
    }
    let labels = [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ];
    let mut randoms = Vec::new();
    for (side, o) in [("client", client), ("server", server)] {
        for label in labels {
            let lines: Vec<&String> = o.key_log.iter().filter(|l| l.split(' ').next() == Some(label)).collect();
            assert_eq!(lines.len(), 1, "{side}: one {label} line in {:#?}", o.key_log);
            let fields: Vec<&str> = lines[0].split(' ').collect();
            assert_eq!(fields.len(), 3, "{side}: {}", lines[0]);
            let (random, secret) = (fields[1], fields[2]);
            assert!(random.len() == 64 && hex::decode(random).is_ok(), "{side}: client random in {}", lines[0]);
            assert!(secret.len() == 64 && hex::decode(secret).is_ok(), "{side}: 32-byte secret in {}", lines[0]);
            randoms.push(random.to_owned());
        }
    }
    randoms.dedup();
    assert_eq!(randoms.len(), 1, "one client random on both sides: {randoms:?}");
    // Both ends derive the same secrets, so their lines are the same.
    assert_eq!(client.key_log, server.key_log, "the two sides' key logs");
}

#[test]
fn psk_dhe() {
    const CIPHER: &str = "TLS13-AES128-GCM-SHA256";
    let key = psk();
    let client = WolfConfig::client()
        .ciphers(CIPHER)
        .psk("wolf-client", &key)
        .psk_modes(PskModes::DheOnly)
        .groups(&[Group::X25519]);
    let server = WolfConfig::server()
        .ciphers(CIPHER)
        .psk("wolf-client", &key)
        .psk_modes(PskModes::DheOnly)
        .groups(&[Group::X25519]);
    let (client, server) = exchange(&client, &server);
    check(&client, &server, CIPHER);
    assert_eq!(server.psk_identity.as_deref(), Some("wolf-client"), "{server:?}");
    // psk_dhe_ke: the PSK with an X25519 exchange.
    assert_eq!(client.group.as_deref(), Some("X25519"), "{client:?}");
    assert_eq!(server.group.as_deref(), Some("X25519"), "{server:?}");
}

#[test]
fn ecdsa_p256_certificate() {
    const CIPHER: &str = "TLS13-CHACHA20-POLY1305-SHA256";
    let ca = Ca::root("wolfSSL test root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    let client = WolfConfig::client().ciphers(CIPHER).ca(ca.root_pem()).server_name("localhost");
    let server = WolfConfig::server().ciphers(CIPHER).certificate(&leaf.chain_pem(), &leaf.key_pem);
    let (client, server) = exchange(&client, &server);
    check(&client, &server, CIPHER);
    assert_eq!(client.psk_identity, None);
    assert!(client.group.is_some(), "an (EC)DHE group: {client:?}");
}

/// The client checks the name: a certificate for `localhost` does not do for another name, the
/// client says so with an alert and the server fails on it (no timeout on either side).
#[test]
fn ecdsa_p256_wrong_server_name() {
    let ca = Ca::root("wolfSSL test root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    let client = WolfConfig::client().ca(ca.root_pem()).server_name("elsewhere.example");
    let server = WolfConfig::server().certificate(&leaf.chain_pem(), &leaf.key_pem);
    let mut server = WolfPeer::bind(&server, loopback(0)).expect("server socket");
    let addr = server.local_addr();
    let server = thread::spawn(move || server.handshake());
    let mut client = WolfPeer::connect(&client, addr).expect("client socket");
    let err = client.handshake().expect_err("a certificate for another name");
    let mismatch = wolfssl_sys::wolfSSL_ErrorCodes_DOMAIN_NAME_MISMATCH;
    assert!(matches!(err, WolfError::Call { code, .. } if code == mismatch), "client: {err}");
    let err = server.join().expect("server thread").expect_err("the client's alert");
    assert!(matches!(err, WolfError::Call { .. }), "server: {err}");
}

#[test]
fn ecdsa_p256_mutual() {
    const CIPHER: &str = "TLS13-AES128-GCM-SHA256";
    let ca = Ca::root("wolfSSL test root");
    let server_leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    let client_leaf = ca.leaf(Alg::EcdsaP256, &["wolf-client"], Usage::Client);
    let client = WolfConfig::client()
        .ciphers(CIPHER)
        .ca(ca.root_pem())
        .server_name("localhost")
        .certificate(&client_leaf.chain_pem(), &client_leaf.key_pem)
        .groups(&[Group::P256]);
    let server = WolfConfig::server()
        .ciphers(CIPHER)
        .certificate(&server_leaf.chain_pem(), &server_leaf.key_pem)
        .ca(ca.root_pem())
        .require_client_cert()
        .groups(&[Group::P256]);
    let (client, server) = exchange(&client, &server);
    check(&client, &server, CIPHER);
    assert_eq!(server.group.as_deref(), Some("SECP256R1"), "{server:?}");
}

/// The first HelloRetryRequest is lost: the client retransmits its ClientHello when its timer
/// (1 s, wolfSSL's initial timeout) expires, and the stateless server answers it again.
#[test]
fn lost_hello_retry_request() {
    const CIPHER: &str = "TLS13-AES128-GCM-SHA256";
    /// ServerHello, whose plaintext (epoch 0) form is also the HelloRetryRequest's.
    const SERVER_HELLO: u8 = 2;
    let key = psk();
    let client = WolfConfig::client().ciphers(CIPHER).psk("wolf-client", &key);
    let server = WolfConfig::server().ciphers(CIPHER).psk("wolf-client", &key);
    let lose_hrr = Faults::none().target(Target::datagram(Marker::Handshake(SERVER_HELLO)));
    let mut proxy = None;
    let (client, server) = exchange_via(&client, &server, |addr| {
        let p = proxy.insert(FaultProxy::start(addr, Faults::none(), lose_hrr, 1));
        p.addr()
    });
    check(&client, &server, CIPHER);
    let stats = proxy.expect("proxy").stop();
    assert_eq!(stats.to_client.targeted, 1, "{stats:?}");
    // At least: ClientHello, its retransmission, the ClientHello with the cookie, Finished, the
    // message, close_notify (more if a slow machine made a timer fire).
    assert!(stats.to_server.received >= 6, "{stats:?}");
}
