//! Application-Layer Protocol Negotiation (RFC 7301) against OpenSSL, both roles, DTLS 1.2:
//! the server's choice (its list's, or its selector's by the name the client asked for) is the
//! one both ends report, a selector may decline, and a server with no protocol in common
//! refuses the client with no_application_protocol.
//!
//! Peer behaviour relied on (OpenSSL 3.0): `s_client -alpn` prints `ALPN protocol: NAME` (or
//! `No ALPN negotiated`); `s_server -alpn` takes the first of its own protocols the client
//! offered (RFC 7301's usual rule) and prints `ALPN protocols advertised by the client: ...`.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rdtls::{AlpnChoice, AlpnSelector, Client, Config, Server, ServerEvent};
use rdtls_interop::{free_udp_port, loopback, psk, Peer, PSK_HEX};
use rdtls_proto::alpn::ProtocolList;
use rdtls_proto::enums::AlertDescription;
use rdtls_proto::suites;

const T: Duration = Duration::from_secs(20);

fn config(protocols: &[&str]) -> rdtls_proto::ConfigBuilder {
    Config::builder().cipher_suites(&[&suites::TLS_PSK_WITH_AES_128_GCM_SHA256]).alpn_protocols(protocols)
}

/// What our server's first handshake agreed on, or the error it ended with.
type Outcome = Result<Option<Vec<u8>>, String>;

/// Our server, and the outcome of its first handshake.
fn our_server(protocols: &[&str]) -> (u16, thread::JoinHandle<Outcome>) {
    our_server_with(config(protocols))
}

fn our_server_with(config: rdtls_proto::ConfigBuilder) -> (u16, thread::JoinHandle<Outcome>) {
    let config = config.psk_server_key(psk()).build().unwrap();
    let mut server = Server::bind(loopback(0), Arc::new(config)).unwrap();
    let port = server.local_addr().unwrap().port();
    let ours = thread::spawn(move || loop {
        match server.poll(Some(T)).unwrap() {
            Some(ServerEvent::Connected(p)) => {
                return Ok(server.connection(p).unwrap().alpn_protocol().map(<[u8]>::to_vec))
            }
            Some(ServerEvent::Refused(_, e)) => return Err(e.to_string()),
            Some(ServerEvent::Closed(_, reason)) => return Err(format!("{reason:?}")),
            Some(_) => {}
            None => panic!("no handshake within {T:?}"),
        }
    });
    (port, ours)
}

fn s_client(port: u16, alpn: &str) -> Peer {
    s_client_with(port, &["-alpn", alpn])
}

fn s_client_with(port: u16, more: &[&str]) -> Peer {
    let target = format!("127.0.0.1:{port}");
    let args = ["s_client", "-dtls1_2", "-connect", &target, "-psk", PSK_HEX, "-psk_identity", "alpn"];
    Peer::spawn("openssl", &[&args[..], more, &["-ign_eof"]].concat())
}

fn s_server(port: &str, alpn: &str) -> Peer {
    let args = ["s_server", "-dtls1_2", "-listen", "-accept", port, "-naccept", "1", "-nocert", "-psk", PSK_HEX];
    let mut server = Peer::spawn("openssl", &[&args[..], &["-alpn", alpn]].concat());
    server.wait_started("ACCEPT", T);
    server
}

#[test]
fn s_client_gets_our_servers_choice() {
    let (port, ours) = our_server(&["mqtt", "coap"]);
    let client = s_client(port, "coap,mqtt,h2");
    assert_eq!(ours.join().unwrap(), Ok(Some(b"mqtt".to_vec())));
    client.expect("ALPN protocol: mqtt", T);
}

#[test]
fn our_server_refuses_s_client_with_no_application_protocol() {
    let (port, ours) = our_server(&["mqtt"]);
    let client = s_client(port, "h2,coap");
    let closed = ours.join().unwrap().unwrap_err();
    assert!(closed.contains("no_application_protocol"), "{closed}");
    // OpenSSL names the alert it got.
    client.expect("no application protocol", T);
}

/// `mqtt` for clients that name `iot.example`, whatever they prefer; no ALPN for others.
#[derive(Debug)]
struct ByName;

impl AlpnSelector for ByName {
    fn select(&self, offered: &ProtocolList, server_name: Option<&str>) -> AlpnChoice {
        match server_name {
            Some("iot.example") if offered.contains(b"mqtt") => AlpnChoice::Protocol(b"mqtt".to_vec()),
            _ => AlpnChoice::Decline,
        }
    }
}

#[test]
fn our_servers_selector_chooses_by_name_or_declines_for_s_client() {
    // The list alone would take "coap", s_client's first.
    let (port, ours) = our_server_with(config(&["coap"]).alpn_selector(Arc::new(ByName)));
    let client = s_client_with(port, &["-alpn", "coap,mqtt", "-servername", "iot.example"]);
    assert_eq!(ours.join().unwrap(), Ok(Some(b"mqtt".to_vec())));
    client.expect("ALPN protocol: mqtt", T);

    let (port, ours) = our_server_with(config(&["coap"]).alpn_selector(Arc::new(ByName)));
    let client = s_client_with(port, &["-alpn", "coap,mqtt", "-servername", "other.example"]);
    assert_eq!(ours.join().unwrap(), Ok(None));
    client.expect("No ALPN negotiated", T);
}

#[test]
fn our_client_gets_s_servers_choice() {
    let port = free_udp_port().to_string();
    let server = s_server(&port, "mqtt,coap");
    let config = config(&["coap", "mqtt"]).psk("alpn-client", psk()).build().unwrap();
    let mut client = Client::connect(loopback(port.parse().unwrap()), Arc::new(config), Some(T)).unwrap();
    assert_eq!(client.alpn_protocol(), Some(b"mqtt".to_vec()));
    server.expect("ALPN protocols advertised by the client: coap, mqtt", T);
    client.close().unwrap();
    server.expect("DONE", T);
}

#[test]
fn our_client_is_refused_by_s_server_without_a_common_protocol() {
    let port = free_udp_port().to_string();
    let _server = s_server(&port, "mqtt");
    let config = config(&["h2"]).psk("alpn-client", psk()).build().unwrap();
    let err = Client::connect(loopback(port.parse().unwrap()), Arc::new(config), Some(T)).unwrap_err();
    let alert = AlertDescription::NO_APPLICATION_PROTOCOL.to_string();
    assert!(err.to_string().contains(&alert), "{err}");
}
