//! ALPN (RFC 7301) with wolfSSL 5.9 (`src/wolfssl/`, built with `HAVE_ALPN`) over DTLS 1.3, the
//! version OpenSSL 3.0 does not have: both ends report the protocol both sides have, in both
//! roles, each side fails the handshake of a peer with no protocol in common
//! (no_application_protocol, RFC 7301 §3.2; wolfSSL with `WOLFSSL_ALPN_FAILED_ON_MISMATCH`),
//! and our server's selector chooses or declines for a wolfSSL client.

#[allow(dead_code)]
mod certs;
#[allow(dead_code)]
#[path = "../src/wolfssl/mod.rs"]
mod wolfssl;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use certs::{Alg, Ca, Usage};
use rdtls::proto::alpn::ProtocolList;
use rdtls::proto::enums::Protocol;
use rdtls::{AlpnChoice, AlpnSelector, Client, Config, Server, ServerEvent};
use rdtls_interop::loopback;
use wolfssl::{WolfConfig, WolfPeer};

const T: Duration = Duration::from_secs(20);

fn dtls13() -> rdtls::proto::ConfigBuilder {
    Config::builder().protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
}

#[test]
fn our_client_and_a_wolfssl_server_agree_or_both_refuse() {
    let ca = Ca::root("rdtls ALPN interop root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    for (wolf_list, ours, agreed) in [("h2,mqtt", &["coap", "mqtt"][..], Some(&b"mqtt"[..])), ("h2", &["coap"], None)] {
        let wolf_cfg = WolfConfig::server().certificate(&leaf.chain_pem(), &leaf.key_pem).alpn(wolf_list);
        let mut server = WolfPeer::bind(&wolf_cfg, loopback(0)).expect("wolfSSL server socket");
        let addr = server.local_addr();
        let wolf_side = thread::spawn(move || server.handshake().map(|()| server.alpn_protocol()));
        let config = Arc::new(dtls13().root_store(ca.roots()).alpn_protocols(ours).build().unwrap());
        let client = Client::connect_with_name(addr, "localhost", config, Some(T));
        let wolf = wolf_side.join().expect("wolfSSL thread");
        match (agreed, client) {
            (Some(protocol), Ok(client)) => {
                assert_eq!(client.alpn_protocol().as_deref(), Some(protocol));
                assert_eq!(wolf.expect("wolfSSL's handshake").as_deref(), Some(protocol));
            }
            (None, Err(err)) => {
                assert!(err.to_string().contains("no_application_protocol"), "{err}");
                assert!(wolf.is_err(), "wolfSSL refused too");
            }
            (agreed, Ok(_)) => panic!("our client connected; expected {agreed:?}"),
            (agreed, Err(err)) => panic!("our client failed: {err}; expected {agreed:?}"),
        }
    }
}

#[test]
fn a_wolfssl_client_and_our_server_agree_or_both_refuse() {
    let ca = Ca::root("rdtls ALPN interop root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    for (wolf_list, ours, agreed) in [("coap,mqtt", &["h2", "mqtt"][..], Some(&b"mqtt"[..])), ("coap", &["h2"], None)] {
        let config = dtls13().certificate(leaf.certified_key()).alpn_protocols(ours).build().unwrap();
        let mut server = Server::bind(loopback(0), Arc::new(config)).unwrap();
        let addr = server.local_addr().unwrap();
        let wolf_cfg = WolfConfig::client().ca(ca.root_pem()).server_name("localhost").alpn(wolf_list);
        let wolf_side = thread::spawn(move || {
            let mut client = WolfPeer::connect(&wolf_cfg, addr).expect("wolfSSL client socket");
            client.handshake().map(|()| client.alpn_protocol())
        });
        let ours = loop {
            match server.poll(Some(T)).unwrap() {
                Some(ServerEvent::Connected(p)) => {
                    break Ok(server.connection(p).unwrap().alpn_protocol().map(<[u8]>::to_vec))
                }
                Some(ServerEvent::Refused(_, e)) => break Err(e.to_string()),
                Some(_) => {}
                None => panic!("no handshake within {T:?}"),
            }
        };
        let wolf = wolf_side.join().expect("wolfSSL thread");
        match agreed {
            Some(protocol) => {
                assert_eq!(ours.expect("our server's handshake").as_deref(), Some(protocol));
                assert_eq!(wolf.expect("wolfSSL's handshake").as_deref(), Some(protocol));
            }
            None => {
                let err = ours.expect_err("no protocol in common");
                assert!(err.contains("no_application_protocol"), "{err}");
                assert!(wolf.is_err(), "wolfSSL sees the refusal");
            }
        }
    }
}

/// Answers what it was made with, for the client that names `localhost`.
#[derive(Debug)]
struct Fixed(AlpnChoice);

impl AlpnSelector for Fixed {
    fn select(&self, offered: &ProtocolList, server_name: Option<&str>) -> AlpnChoice {
        assert_eq!(server_name, Some("localhost"));
        assert_eq!(offered.iter().collect::<Vec<_>>(), [&b"coap"[..], b"mqtt"]);
        self.0.clone()
    }
}

/// Our server's selector decides in place of its list (which would take `coap`): a choice the
/// wolfSSL client reports too, or no protocol, which it takes.
#[test]
fn our_servers_selector_chooses_or_declines_for_a_wolfssl_client() {
    let ca = Ca::root("rdtls ALPN interop root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    for (choice, agreed) in [(AlpnChoice::Protocol(b"mqtt".to_vec()), Some(&b"mqtt"[..])), (AlpnChoice::Decline, None)]
    {
        let config = dtls13().certificate(leaf.certified_key()).alpn_protocols(&["coap"]);
        let config = config.alpn_selector(Arc::new(Fixed(choice))).build().unwrap();
        let mut server = Server::bind(loopback(0), Arc::new(config)).unwrap();
        let addr = server.local_addr().unwrap();
        let wolf_cfg = WolfConfig::client().ca(ca.root_pem()).server_name("localhost").alpn("coap,mqtt");
        let wolf_side = thread::spawn(move || {
            let mut client = WolfPeer::connect(&wolf_cfg, addr).expect("wolfSSL client socket");
            client.handshake().map(|()| client.alpn_protocol())
        });
        let ours = loop {
            match server.poll(Some(T)).unwrap() {
                Some(ServerEvent::Connected(p)) => break server.connection(p).unwrap().alpn_protocol(),
                Some(ServerEvent::Refused(_, e)) => panic!("refused: {e}"),
                Some(_) => {}
                None => panic!("no handshake within {T:?}"),
            }
        };
        let wolf = wolf_side.join().expect("wolfSSL thread").expect("wolfSSL's handshake");
        assert_eq!(ours, agreed);
        assert_eq!(wolf.as_deref(), agreed);
    }
}
