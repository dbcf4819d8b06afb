//! The post-quantum hybrid group X25519MLKEM768 with wolfSSL 5.9 (built with ML-KEM), both
//! roles, cookies on, at the default MTU and with 400-byte datagrams (wolfSSL's client makes
//! none under 600 bytes: with it, ours are 400 and its 600). A relay between the two
//! records every datagram: the ClientHello that carries the hybrid share (1,216 bytes) is seen
//! to travel in pieces, none whole, and the receiving server reassembles it: wolfSSL (which
//! reads the cookie in the first piece: ours puts it first) or ours (in the endpoint's pool of
//! unverified ClientHellos, before its cookie check). Both sides report the hybrid group.

#[allow(dead_code)]
mod certs;
#[allow(dead_code)]
mod relay;
#[allow(dead_code)]
#[path = "../src/wolfssl/mod.rs"]
mod wolfssl;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use certs::{Alg, Ca, Usage};
use rdtls::proto::crypto::KxGroup;
use rdtls::proto::enums::Protocol;
use rdtls::{Client, Config, Server};
use rdtls_interop::{loopback, serve_one};
use relay::{Dir, Relay, CLIENT_HELLO};
use wolfssl::{Group, WolfConfig, WolfPeer};

const T: Duration = Duration::from_secs(20);
/// wolfSSL's name of the hybrid group.
const WOLF_HYBRID: &str = "X25519MLKEM768";

/// The ClientHellos a direction carried (plaintext datagrams only: after the hellos, DTLS 1.3
/// records have the unified header), each as the pieces it traveled in.
fn client_hellos(datagrams: &[Vec<u8>]) -> Vec<relay::Message> {
    let plain: Vec<Vec<u8>> = datagrams.iter().filter(|d| d.first() == Some(&22)).cloned().collect();
    relay::messages(&plain).into_iter().filter(|m| m.msg_type == CLIENT_HELLO).collect()
}

/// The ClientHello the server answered with its ServerHello (the last one, with the cookie)
/// carries the hybrid share (its key_share lists `11 ec 04 c0`: the group and the 1,216-byte
/// length) and traveled in pieces, each datagram at most `mtu` bytes.
fn assert_hybrid_hello_fragmented(who: &str, datagrams: &[Vec<u8>], mtu: usize) {
    let hellos = client_hellos(datagrams);
    let last = hellos.last().unwrap_or_else(|| panic!("{who}: no ClientHello"));
    assert!(last.body.windows(4).any(|w| w == [0x11, 0xec, 0x04, 0xc0]), "{who}: no hybrid share in the last hello");
    assert!(last.was_fragmented(), "{who}: ClientHello {} traveled whole: {:?}", last.message_seq, last.pieces);
    for d in datagrams.iter().filter(|d| d.first() == Some(&22)) {
        assert!(d.len() <= mtu, "{who}: a {}-byte datagram over the {mtu}-byte MTU", d.len());
    }
}

/// Our client, through the relay, against a wolfSSL server that takes the hybrid group alone
/// (its HelloRetryRequest, which carries its cookie, asks for it).
fn our_client(mtu: usize, ca: &Ca, leaf: &certs::Leaf) {
    let wolf = WolfConfig::server()
        .certificate(&leaf.chain_pem(), &leaf.key_pem)
        .groups(&[Group::X25519MlKem768])
        .cookie(true);
    let mut server = WolfPeer::bind(&wolf, loopback(0)).expect("wolfSSL server socket");
    let relay = Relay::start(server.local_addr());
    let wolf_side = thread::spawn(move || {
        server.handshake().expect("wolfSSL server handshake");
        let message = server.recv().expect("wolfSSL recv").expect("a message");
        server.send(&message).expect("wolfSSL echo");
        assert_eq!(server.recv().expect("wolfSSL recv"), None, "close_notify");
        server.group()
    });
    // A client of both versions (the default) whose first ClientHello cannot hold the hybrid
    // share at this MTU: it sends X25519's, and the second ClientHello the hybrid's.
    let config = Config::builder().root_store(ca.roots()).mtu(mtu).build().unwrap();
    let mut client = Client::connect_with_name(relay.addr(), "localhost", Arc::new(config), Some(T))
        .unwrap_or_else(|e| panic!("our client at MTU {mtu}: {e}"));
    {
        let conn = client.connection();
        assert_eq!(conn.protocol(), Some(Protocol::Dtls1_3));
        assert_eq!(conn.key_exchange_group(), Some(KxGroup::X25519MlKem768));
        assert!(conn.used_hello_retry_request());
    }
    client.send(b"post-quantum hello").unwrap();
    let mut buf = [0u8; 2048];
    let n = client.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], b"post-quantum hello");
    client.close().unwrap();
    assert_eq!(wolf_side.join().expect("wolfSSL thread").as_deref(), Some(WOLF_HYBRID));
    let to_server = relay.datagrams(Dir::ToServer);
    assert_hybrid_hello_fragmented("our client", &to_server, mtu);
    // The first ClientHello was whole (wolfSSL takes only an unfragmented one), the second in
    // pieces with the cookie in the first piece.
    let hellos = client_hellos(&to_server);
    assert!(!hellos[0].was_fragmented(), "the first ClientHello traveled whole: {:?}", hellos[0].pieces);
    let second = hellos.iter().find(|m| m.message_seq == 1).expect("a second ClientHello");
    let first_piece_end = second.pieces[0].1 as usize;
    let cookie_at = second.body.windows(2).position(|w| w == [0x00, 0x2c]).expect("a cookie extension");
    assert!(cookie_at + 6 < first_piece_end, "the cookie is in the first piece ({cookie_at} < {first_piece_end})");
}

/// A wolfSSL client offering the hybrid group (its share in its first ClientHello), through
/// the relay, against our server with its default configuration (cookies on) but the MTU.
/// wolfSSL's own datagrams: `wolf_mtu` (its default when `None`).
fn our_server(mtu: usize, wolf_mtu: Option<u16>, ca: &Ca, leaf: &certs::Leaf) {
    let config = Config::builder().certificate(leaf.certified_key()).mtu(mtu).build().unwrap();
    let mut server = Server::bind(loopback(0), Arc::new(config)).unwrap();
    let relay = Relay::start(server.local_addr().unwrap());
    let addr = relay.addr();
    let wolf = WolfConfig::client()
        .ca(ca.root_pem())
        .server_name("localhost")
        .groups(&[Group::X25519MlKem768, Group::X25519])
        .key_share(Group::X25519MlKem768);
    let wolf = match wolf_mtu {
        Some(m) => wolf.mtu(m),
        None => wolf,
    };
    let wolf_side = thread::spawn(move || {
        let mut client = WolfPeer::connect(&wolf, addr).expect("wolfSSL client socket");
        client.handshake().expect("wolfSSL client handshake with our server");
        client.send(b"post-quantum hello").expect("wolfSSL send");
        let reply = client.recv().expect("wolfSSL recv").expect("our answer");
        client.close().expect("close_notify");
        (client.version(), client.group(), reply)
    });
    let got = serve_one(&mut server, T, |c| {
        assert_eq!(c.protocol(), Some(Protocol::Dtls1_3));
        assert_eq!(c.key_exchange_group(), Some(KxGroup::X25519MlKem768), "MTU {mtu}");
    });
    assert_eq!(got.as_deref(), Some(&b"post-quantum hello"[..]));
    let (version, group, reply) = wolf_side.join().expect("wolfSSL thread");
    assert_eq!(version, "DTLSv1.3");
    assert_eq!(group.as_deref(), Some(WOLF_HYBRID));
    assert!(reply.starts_with(b"to 127.0.0.1:"), "{}", String::from_utf8_lossy(&reply));
    // wolfSSL's ClientHellos came in pieces; our endpoint held them until whole.
    assert_hybrid_hello_fragmented("wolfSSL's client", &relay.datagrams(Dir::ToServer), usize::MAX);
    assert!(server.stats().fragments_held > 0, "{:?}", server.stats());
    for d in relay.datagrams(Dir::ToClient) {
        assert!(d.len() <= mtu, "a {}-byte datagram of ours over the {mtu}-byte MTU", d.len());
    }
}

#[test]
fn x25519mlkem768_our_client_with_a_wolfssl_server_default_mtu_and_400() {
    let ca = Ca::root("rdtls pq interop root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    for mtu in [1400, 400] {
        our_client(mtu, &ca, &leaf);
    }
}

#[test]
fn x25519mlkem768_wolfssl_client_with_our_server_default_mtu_and_400_600() {
    let ca = Ca::root("rdtls pq interop root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    // wolfSSL's client cannot make datagrams under 600 bytes (at 500 it fails with
    // BUFFER_E): at 400 ours are 400 bytes (a ServerHello of 1,174 bytes in four pieces) and
    // wolfSSL's 600.
    for (mtu, wolf_mtu) in [(1400, None), (400, Some(600))] {
        our_server(mtu, wolf_mtu, &ca, &leaf);
    }
}
