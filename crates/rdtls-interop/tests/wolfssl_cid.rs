//! Connection ID interop with wolfSSL 5.9 (`src/wolfssl/`, built with `WOLFSSL_DTLS_CID`), DTLS
//! 1.2 (RFC 9146) and 1.3 (RFC 9147 §9), both roles, in the four cases: no ID, a zero-length ID
//! on one side, IDs both ways, IDs of different lengths each way. Each exchange: handshake
//! (ECDSA certificate), a message each way in records that carry the ID where one was asked for
//! (`tls12_cid`, or the unified header's C bit), close_notify; both ends report the IDs they
//! agreed on.

#[allow(dead_code)]
mod certs;
#[allow(dead_code)]
#[path = "../src/wolfssl/mod.rs"]
mod wolfssl;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use certs::{Alg, Ca, Leaf, Usage};
use rdtls::proto::enums::Protocol;
use rdtls::proto::ConfigBuilder;
use rdtls::{Client, Config, Server, ServerEvent};
use rdtls_interop::loopback;
use wolfssl::{WolfConfig, WolfPeer};

const T: Duration = Duration::from_secs(20);

/// One case: the length of the ID we ask for, and the ID wolfSSL asks for (`None`: that side
/// does not offer the extension).
struct Case {
    ours: Option<usize>,
    wolf: Option<&'static [u8]>,
}

impl Case {
    /// Whether the extension is used: both offered it.
    fn negotiated(&self) -> bool {
        self.ours.is_some() && self.wolf.is_some()
    }
}

const CASES: [Case; 7] = [
    Case { ours: None, wolf: None },
    Case { ours: Some(8), wolf: None },
    Case { ours: None, wolf: Some(b"wolf") },
    Case { ours: Some(0), wolf: Some(b"wolf") },
    Case { ours: Some(8), wolf: Some(b"") },
    Case { ours: Some(8), wolf: Some(b"wolf-cid") },
    Case { ours: Some(4), wolf: Some(b"wolf-10-id") },
];

fn ours(case: &Case, version: Protocol) -> ConfigBuilder {
    let b = Config::builder().protocol_versions(version, version);
    match case.ours {
        Some(n) => b.connection_id(n),
        None => b,
    }
}

fn wolf(config: WolfConfig, case: &Case, version: Protocol) -> WolfConfig {
    let config = if version == Protocol::Dtls1_2 { config.dtls12() } else { config };
    match case.wolf {
        Some(id) => config.connection_id(id),
        None => config,
    }
}

fn name(version: Protocol) -> &'static str {
    if version == Protocol::Dtls1_2 {
        "DTLSv1.2"
    } else {
        "DTLSv1.3"
    }
}

/// Checks what both ends agreed on: ours as (ours, theirs), wolfSSL's as (rx, tx).
fn check_ids(case: &Case, ours: (Option<Vec<u8>>, Option<Vec<u8>>), wolf: Option<(Vec<u8>, Vec<u8>)>) {
    let what = format!("ours {:?}, wolfSSL {:?}", case.ours, case.wolf.map(<[u8]>::len));
    if !case.negotiated() {
        // Our own ID is what we would have asked for; the peer's says whether one is used.
        assert_eq!(ours.1, None, "{what}: no ID without both offering");
        assert_eq!(ours.0.map(|id| id.len()), case.ours, "{what}");
        return;
    }
    let (our_id, their_id) = (ours.0.expect("our ID"), ours.1.expect("theirs"));
    assert_eq!(Some(our_id.len()), case.ours, "{what}");
    assert_eq!(their_id, case.wolf.unwrap(), "{what}: we put wolfSSL's ID on our records");
    let (rx, tx) = wolf.expect("wolfSSL uses the extension");
    assert_eq!(rx, case.wolf.unwrap(), "{what}");
    assert_eq!(tx, our_id, "{what}: wolfSSL puts ours on its records");
}

fn our_client(case: &Case, version: Protocol, ca: &Ca, leaf: &Leaf) {
    let wolf_cfg = wolf(WolfConfig::server().certificate(&leaf.chain_pem(), &leaf.key_pem), case, version);
    let mut server = WolfPeer::bind(&wolf_cfg, loopback(0)).expect("wolfSSL server socket");
    let addr = server.local_addr();
    let wolf_side = thread::spawn(move || {
        server.handshake().expect("wolfSSL server handshake");
        let message = server.recv().expect("wolfSSL recv").expect("a message");
        server.send(b"hello from wolfSSL").expect("wolfSSL send");
        let end = server.recv().expect("wolfSSL recv after the echo");
        assert_eq!(end, None, "close_notify");
        (server.version(), server.connection_ids(), message)
    });
    let config = Arc::new(ours(case, version).root_store(ca.roots()).build().unwrap());
    let mut client = Client::connect_with_name(addr, "localhost", config, Some(T)).expect("our client's handshake");
    let ids = {
        let c = client.connection();
        (c.connection_id().map(<[u8]>::to_vec), c.peer_connection_id().map(<[u8]>::to_vec))
    };
    client.send(b"hello from rdtls").unwrap();
    let mut buf = [0u8; 1500];
    let n = client.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], b"hello from wolfSSL");
    client.close().unwrap();
    let (wolf_version, wolf_ids, message) = wolf_side.join().expect("wolfSSL thread");
    assert_eq!(wolf_version, name(version));
    assert_eq!(message, b"hello from rdtls");
    check_ids(case, ids, wolf_ids);
}

fn our_server(case: &Case, version: Protocol, ca: &Ca, leaf: &Leaf) {
    let config = ours(case, version).certificate(leaf.certified_key()).build().unwrap();
    let mut server = Server::bind(loopback(0), Arc::new(config)).unwrap();
    let addr = server.local_addr().unwrap();
    let wolf_cfg = wolf(WolfConfig::client().ca(ca.root_pem()).server_name("localhost"), case, version);
    let wolf_side = thread::spawn(move || {
        let mut client = WolfPeer::connect(&wolf_cfg, addr).expect("wolfSSL client socket");
        client.handshake().expect("wolfSSL client handshake with our server");
        client.send(b"hello from wolfSSL").expect("wolfSSL send");
        let reply = client.recv().expect("wolfSSL recv").expect("our answer");
        let ids = client.connection_ids();
        client.close().expect("close_notify");
        (client.version(), ids, reply)
    });
    let (mut ids, mut got) = ((None, None), None);
    loop {
        match server.poll(Some(T)).unwrap() {
            Some(ServerEvent::Connected(p)) => {
                let c = server.connection(p).unwrap();
                ids = (c.connection_id().map(<[u8]>::to_vec), c.peer_connection_id().map(<[u8]>::to_vec));
            }
            Some(ServerEvent::Message(p, data)) => {
                server.send_to(p, format!("to {p}: ACK").as_bytes()).unwrap();
                got = Some(data);
            }
            Some(ServerEvent::Closed(_, _)) => break,
            Some(_) => {}
            None => panic!("no event from our server within {T:?}"),
        }
    }
    assert_eq!(got.as_deref(), Some(&b"hello from wolfSSL"[..]));
    let (wolf_version, wolf_ids, reply) = wolf_side.join().expect("wolfSSL thread");
    assert_eq!(wolf_version, name(version));
    assert!(reply.starts_with(b"to 127.0.0.1:"), "{}", String::from_utf8_lossy(&reply));
    check_ids(case, ids, wolf_ids);
}

#[test]
fn dtls12_connection_ids_with_a_wolfssl_server() {
    let ca = Ca::root("rdtls CID interop root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    for case in &CASES {
        our_client(case, Protocol::Dtls1_2, &ca, &leaf);
    }
}

#[test]
fn dtls12_connection_ids_with_a_wolfssl_client() {
    let ca = Ca::root("rdtls CID interop root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    for case in &CASES {
        our_server(case, Protocol::Dtls1_2, &ca, &leaf);
    }
}

#[test]
fn dtls13_connection_ids_with_a_wolfssl_server() {
    let ca = Ca::root("rdtls CID interop root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    for case in &CASES {
        our_client(case, Protocol::Dtls1_3, &ca, &leaf);
    }
}

#[test]
fn dtls13_connection_ids_with_a_wolfssl_client() {
    let ca = Ca::root("rdtls CID interop root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    for case in &CASES {
        our_server(case, Protocol::Dtls1_3, &ca, &leaf);
    }
}
