//! DTLS 1.3 resumption with wolfSSL 5.9 (`src/wolfssl/`, built with session tickets), both
//! roles: a wolfSSL client keeps the session of our server's NewSessionTicket and resumes it
//! with a PSK handshake; our client keeps the session of wolfSSL's ticket and resumes it on
//! another connection of the same wolfSSL server. Each resumed handshake is checked on both
//! sides (wolfSSL's `wolfSSL_session_reused`, our `resumed`), with data both ways after.

#[allow(dead_code)]
mod certs;
#[allow(dead_code)]
#[path = "../src/wolfssl/mod.rs"]
mod wolfssl;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use certs::{Alg, Ca, Usage};
use rdtls::proto::enums::Protocol;
use rdtls::proto::resumption::SessionStore;
use rdtls::proto::ConfigBuilder;
use rdtls::{Client, Config, Server, ServerEvent};
use rdtls_interop::loopback;
use wolfssl::{WolfConfig, WolfPeer};

const T: Duration = Duration::from_secs(20);

fn ours() -> ConfigBuilder {
    Config::builder().protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
}

#[test]
fn a_wolfssl_client_resumes_with_our_server() {
    let ca = Ca::root("wolfSSL resumption root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    let config = ours().certificate(leaf.certified_key()).build().unwrap();
    let mut server = Server::bind(loopback(0), Arc::new(config)).unwrap();
    let addr = server.local_addr().unwrap();
    let wolf = WolfConfig::client().ca(ca.root_pem()).server_name("localhost");
    let wolf_side = thread::spawn(move || {
        let mut outcomes = Vec::new();
        let mut session = None;
        for round in 0..2 {
            let mut client = match &session {
                None => WolfPeer::connect(&wolf, addr),
                Some(s) => WolfPeer::connect_resuming(&wolf, addr, s),
            }
            .expect("wolfSSL client socket");
            client.handshake().expect("wolfSSL client handshake");
            client.send(format!("round {round}").as_bytes()).expect("wolfSSL send");
            // Our ticket comes before the answer: reading the answer takes it in.
            let reply = client.recv().expect("wolfSSL recv").expect("our answer");
            outcomes.push((client.resumed(), reply));
            session = client.session();
            assert!(session.is_some(), "wolfSSL kept no session");
            client.close().expect("close_notify");
        }
        outcomes
    });
    let mut resumed = Vec::new();
    while resumed.len() < 2 {
        match server.poll(Some(T)).unwrap() {
            Some(ServerEvent::Connected(p)) => resumed.push(server.connection(p).unwrap().resumed()),
            Some(ServerEvent::Message(p, _)) => {
                server.send_to(p, format!("to {p}: ACK").as_bytes()).unwrap();
            }
            Some(_) => {}
            None => panic!("no event from our server within {T:?}"),
        }
    }
    // Serve the second round's message too.
    let mut answered = false;
    while !answered {
        match server.poll(Some(T)).unwrap() {
            Some(ServerEvent::Message(p, _)) => {
                server.send_to(p, format!("to {p}: ACK").as_bytes()).unwrap();
                answered = true;
            }
            Some(_) => {}
            None => panic!("no second message within {T:?}"),
        }
    }
    let outcomes = wolf_side.join().expect("wolfSSL thread");
    assert_eq!(resumed, [false, true], "our server resumed the second handshake");
    assert_eq!(outcomes.iter().map(|(r, _)| *r).collect::<Vec<_>>(), [false, true], "wolfSSL resumed the second");
    assert!(outcomes.iter().all(|(_, reply)| reply.starts_with(b"to 127.0.0.1:")));
}

#[test]
fn our_client_resumes_with_a_wolfssl_server() {
    let ca = Ca::root("wolfSSL resumption root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    let wolf = WolfConfig::server().certificate(&leaf.chain_pem(), &leaf.key_pem);
    let first = WolfPeer::bind(&wolf, loopback(0)).expect("wolfSSL server socket");
    // Its second connection shares the first's context, and so its ticket key.
    let second = WolfPeer::bind_sharing(&first, &wolf, loopback(0)).expect("second wolfSSL server socket");
    let store = Arc::new(SessionStore::new(4));
    let config = Arc::new(ours().root_store(ca.roots()).session_store(store.clone()).build().unwrap());
    let serve = |mut server: WolfPeer| {
        thread::spawn(move || {
            server.handshake().expect("wolfSSL server handshake");
            let message = server.recv().expect("wolfSSL recv").expect("a message");
            server.send(&message).expect("wolfSSL echo");
            assert_eq!(server.recv().expect("wolfSSL recv after the echo"), None, "close_notify");
            server.resumed()
        })
    };
    let mut resumed = Vec::new();
    for server in [first, second] {
        let addr = server.local_addr();
        if let Some((_, _, session)) = store.entries().pop() {
            // The session of the first connection, offered to the second server's address.
            store.insert("localhost", addr, session);
        }
        let wolf_side = serve(server);
        let mut client = Client::connect_with_name(addr, "localhost", config.clone(), Some(T)).expect("handshake");
        client.send(b"hello wolfSSL").unwrap();
        let mut buf = [0u8; 64];
        let n = client.recv(&mut buf, Some(T)).unwrap();
        assert_eq!(&buf[..n], b"hello wolfSSL");
        assert_eq!(client.peer_certificates(), std::slice::from_ref(&leaf.der));
        resumed.push((client.resumed(), client.session().is_some()));
        client.close().unwrap();
        resumed.push((wolf_side.join().expect("wolfSSL thread"), true));
    }
    // Ours, wolfSSL's, for each connection: the second resumed on both sides.
    assert_eq!(resumed, [(false, true), (false, true), (true, true), (true, true)]);
}
