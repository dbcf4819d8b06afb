//! Application-Layer Protocol Negotiation (RFC 7301) in both versions' handshakes: the offer,
//! the server's choice in its own order, the refusal of an offer it cannot meet (before the
//! server keeps anything), the client's check of the answer, the cookie exchanges and the
//! fallback to DTLS 1.2, resumption (which negotiates again: `tests/resumption13.rs` shows a
//! new choice), and session export. OpenSSL (DTLS 1.2) and wolfSSL (DTLS 1.3) agree too
//! (`crates/rdtls-interop/tests/alpn.rs`, `wolfssl_alpn.rs`).

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rdtls_proto::alpn::{AlpnChoice, AlpnSelector, ProtocolList};
use rdtls_proto::crypto::KxGroup;
use rdtls_proto::enums::{AlertDescription, Protocol};
use rdtls_proto::pki::ServerName;
use rdtls_proto::{Config, ConfigBuilder, Connection, DatagramEvent, Endpoint, Error};
use support::{drain, grow_hello, hello_extensions, pump, server_hello_extensions_at};

const KEY: &[u8] = b"alpn test key";

fn only(version: Protocol) -> ConfigBuilder {
    Config::builder().protocol_versions(version, version)
}

fn configs(version: Protocol, client: &[&str], server: &[&str]) -> (Arc<Config>, Arc<Config>) {
    let c = only(version).psk("app", KEY.to_vec()).alpn_protocols(client);
    let s = only(version).psk_server_key(KEY.to_vec()).cookie_verification(false).alpn_protocols(server);
    (Arc::new(c.build().unwrap()), Arc::new(s.allow_session_export(true).build().unwrap()))
}

fn names(list: &[&str]) -> ProtocolList {
    ProtocolList::new(list).unwrap()
}

/// A handshake; returns both ends, the client's first datagram and the server's first flight.
fn connect(version: Protocol, client: &[&str], server: &[&str]) -> (Connection, Connection, Vec<u8>, Vec<Vec<u8>>) {
    let (c, s) = configs(version, client, server);
    let now = Instant::now();
    let mut client = Connection::client(c, now).unwrap();
    let mut server = Connection::server(s, now).unwrap();
    let hello = drain(&mut client).remove(0);
    server.handle_datagram(now, &mut hello.clone()).unwrap();
    let flight = drain(&mut server);
    for d in &flight {
        client.handle_datagram(now, &mut d.clone()).unwrap();
    }
    pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    (client, server, hello, flight)
}

#[test]
fn both_versions_agree_on_the_servers_preferred_protocol() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        let (client, server, hello, flight) = connect(version, &["coap", "mqtt", "h2"], &["h3", "mqtt", "coap"]);
        // The offer, in the client's order.
        assert_eq!(hello_extensions(&hello).alpn, Some(names(&["coap", "mqtt", "h2"])), "{version:?}");
        assert_eq!(client.alpn_protocol(), Some(&b"mqtt"[..]), "{version:?}");
        assert_eq!(server.alpn_protocol(), Some(&b"mqtt"[..]), "{version:?}");
        // DTLS 1.2 answers in the ServerHello; DTLS 1.3 in the encrypted extensions, never in
        // its ServerHello.
        let answer = hello_extensions(&flight[0]).alpn;
        let expected = (version == Protocol::Dtls1_2).then(|| names(&["mqtt"]));
        assert_eq!(answer, expected, "{version:?}");
    }
}

#[test]
fn without_protocols_on_one_side_there_is_no_alpn() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        for (client, server) in [(&[][..], &["coap"][..]), (&["coap"], &[])] {
            let (c, s, hello, _) = connect(version, client, server);
            assert_eq!(hello_extensions(&hello).alpn.is_some(), !client.is_empty());
            assert_eq!((c.alpn_protocol(), s.alpn_protocol()), (None, None), "{version:?} {client:?} {server:?}");
        }
    }
}

#[test]
fn a_server_refuses_an_offer_it_cannot_meet_with_no_application_protocol() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        let (c, s) = configs(version, &["coap"], &["mqtt"]);
        let now = Instant::now();
        let mut client = Connection::client(c, now).unwrap();
        let mut server = Connection::server(s, now).unwrap();
        let mut hello = drain(&mut client).remove(0);
        let err = server.handle_datagram(now, &mut hello).unwrap_err();
        let alert = AlertDescription::NO_APPLICATION_PROTOCOL;
        assert!(matches!(err, Error::PeerIncompatible { alert: a, .. } if a == alert), "{version:?} {err:?}");
        // On the wire: one plaintext fatal alert, no_application_protocol (120).
        // Refused before anything of the handshake was kept.
        assert_eq!((server.cipher_suite(), server.psk_identity()), (None, None), "{version:?}");
        let sent = drain(&mut server);
        assert_eq!(sent.len(), 1, "{version:?}");
        assert_eq!((sent[0][0], &sent[0][13..]), (21, &[2, 120][..]), "{version:?}");
        assert!(client.handle_datagram(now, &mut sent[0].clone()).is_err());
        assert!(client.is_closed());
    }
}

#[test]
fn a_client_refuses_a_protocol_it_did_not_offer_or_an_answer_to_no_offer() {
    // A protocol we did not offer: the ServerHello's "mqtt" becomes "mqtx".
    let (c, s) = configs(Protocol::Dtls1_2, &["coap", "mqtt"], &["mqtt"]);
    let now = Instant::now();
    let mut client = Connection::client(c, now).unwrap();
    let mut server = Connection::server(s, now).unwrap();
    server.handle_datagram(now, &mut drain(&mut client).remove(0)).unwrap();
    let mut flight = drain(&mut server);
    let at = flight[0].windows(5).position(|w| w == b"\x04mqtt").unwrap();
    flight[0][at + 4] = b'x';
    let err = client.handle_datagram(now, &mut flight[0]).unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved { alert: AlertDescription::ILLEGAL_PARAMETER, .. }), "{err:?}");

    // An answer to no offer: added to the ServerHello.
    let (c, s) = configs(Protocol::Dtls1_2, &[], &["mqtt"]);
    let mut client = Connection::client(c, now).unwrap();
    let mut server = Connection::server(s, now).unwrap();
    server.handle_datagram(now, &mut drain(&mut client).remove(0)).unwrap();
    let mut flight = drain(&mut server);
    let exts_len_at = server_hello_extensions_at(&flight[0]);
    grow_hello(&mut flight[0], exts_len_at, exts_len_at + 2, b"\x00\x10\x00\x07\x00\x05\x04mqtt");
    assert_eq!(hello_extensions(&flight[0]).alpn, Some(names(&["mqtt"])));
    let err = client.handle_datagram(now, &mut flight[0]).unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved { alert: AlertDescription::UNSUPPORTED_EXTENSION, .. }), "{err:?}");
}

/// Through the cookie exchanges (a HelloVerifyRequest in DTLS 1.2, a HelloRetryRequest in
/// 1.3: the second ClientHello offers the same), and through a DTLS 1.3 client's fallback to a
/// DTLS 1.2 server.
#[test]
fn the_offer_survives_the_cookie_exchange_and_the_fallback() {
    let both = |b: ConfigBuilder| b.protocol_versions(Protocol::Dtls1_2, Protocol::Dtls1_3);
    for (client_versions, server_version) in [
        (Protocol::Dtls1_2, Protocol::Dtls1_2),
        (Protocol::Dtls1_3, Protocol::Dtls1_3),
        (Protocol::Dtls1_3, Protocol::Dtls1_2),
    ] {
        let c = match client_versions {
            Protocol::Dtls1_2 => only(Protocol::Dtls1_2),
            _ => both(Config::builder()),
        };
        let c = c.psk("app", KEY.to_vec()).alpn_protocols(&["coap", "mqtt"]).build().unwrap();
        let s = only(server_version).psk_server_key(KEY.to_vec()).alpn_protocols(&["mqtt"]).build().unwrap();
        assert!(s.cookie_verification());
        let now = Instant::now();
        let mut client = Connection::client(Arc::new(c), now).unwrap();
        let mut server = Connection::server(Arc::new(s), now).unwrap();
        pump(now, &mut client, &mut server);
        assert!(client.is_established() && server.is_established(), "{server_version:?}");
        assert_eq!(client.protocol(), Some(server_version));
        assert_eq!((client.alpn_protocol(), server.alpn_protocol()), (Some(&b"mqtt"[..]), Some(&b"mqtt"[..])));
    }
}

#[test]
fn resumption_agrees_again() {
    let c = support::dtls12().psk("app", KEY.to_vec()).session_resumption(true).alpn_protocols(&["coap"]);
    let s = support::dtls12().psk_server_key(KEY.to_vec()).cookie_verification(false).alpn_protocols(&["coap"]);
    let (c, s) = (Arc::new(c.build().unwrap()), Arc::new(s.build().unwrap()));
    let now = Instant::now();
    let mut client = Connection::client(c.clone(), now).unwrap();
    let mut server = Connection::server(s.clone(), now).unwrap();
    pump(now, &mut client, &mut server);
    let session = client.session().cloned().unwrap();
    let mut client = Connection::resuming_client(c, None, Some(session), now).unwrap();
    let mut server = Connection::server(s, now).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.resumed() && server.resumed());
    assert_eq!((client.alpn_protocol(), server.alpn_protocol()), (Some(&b"coap"[..]), Some(&b"coap"[..])));
}

#[test]
fn session_export_keeps_the_protocol() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        let (_, mut server, _, _) = connect(version, &["coap"], &["coap"]);
        let config = configs(version, &[], &[]).1;
        let state = server.export_session().unwrap();
        let imported = Connection::import_session(config.clone(), &state, Instant::now()).unwrap();
        assert_eq!(imported.alpn_protocol(), Some(&b"coap"[..]), "{version:?}");
        // The section (tag 3, its length, the name) holds 1 to 255 bytes; sections come each
        // once, in order.
        let at = state.len() - 4 - 3;
        assert_eq!(state[at..], [3, 0, 4, b'c', b'o', b'a', b'p'], "{version:?}");
        let with = |section: &[u8]| [&state[..at], section].concat();
        let import = |data: &[u8]| Connection::import_session(config.clone(), data, Instant::now());
        assert!(import(&with(&[3, 0, 0])).is_err(), "{version:?}: empty");
        assert!(import(&with(&[&[3, 1, 0][..], &[b'a'; 256]].concat())).is_err(), "{version:?}: 256 bytes");
        assert!(import(&with(&[3, 0, 1, b'a', 3, 0, 1, b'b'])).is_err(), "{version:?}: twice");
        assert!(import(&with(&[3, 0, 1, b'a', 1, 0, 2, 0, 7])).is_err(), "{version:?}: out of order");
        assert_eq!(import(&with(&[3, 0, 1, b'a'])).unwrap().alpn_protocol(), Some(&b"a"[..]));
    }
}

#[test]
fn a_configuration_lists_valid_names_once() {
    let build = |list: &[&[u8]]| Config::builder().psk("x", KEY.to_vec()).alpn_protocols(list).build();
    assert!(build(&[b"coap", b"mqtt"]).is_ok());
    for bad in [&[&b"coap"[..], b"coap"][..], &[b""], &[&[b'a'; 256][..]]] {
        assert!(matches!(build(bad), Err(Error::Config(_))), "{bad:?}");
    }
}

/// One call of a selector: the offer, and the server name.
type Call = (Vec<Vec<u8>>, Option<String>);

/// Answers what it was made with; records each call.
#[derive(Debug)]
struct Selector {
    choice: AlpnChoice,
    calls: Mutex<Vec<Call>>,
}

impl AlpnSelector for Selector {
    fn select(&self, offered: &ProtocolList, server_name: Option<&str>) -> AlpnChoice {
        let offer = offered.iter().map(<[u8]>::to_vec).collect();
        self.calls.lock().unwrap().push((offer, server_name.map(str::to_owned)));
        self.choice.clone()
    }
}

/// A handshake of a client that names `iot.example` and offers `coap, mqtt`, with a server
/// whose selector answers `choice` (its list would pick `coap`); each step's result, the
/// server's first flight and the selector. `retry`: the client's only key share is of a group
/// the server does not take, so a DTLS 1.3 server asks again (HelloRetryRequest); `cookie`:
/// the server asks for a cookie first (a stateless HelloVerifyRequest or HelloRetryRequest).
fn select(
    version: Protocol,
    choice: AlpnChoice,
    retry: bool,
    cookie: bool,
) -> (Connection, Connection, Vec<Vec<u8>>, Arc<Selector>) {
    let selector = Arc::new(Selector { choice, calls: Mutex::new(Vec::new()) });
    let groups: &[KxGroup] = if retry { &[KxGroup::X25519, KxGroup::Secp256r1] } else { &[KxGroup::X25519] };
    let c = only(version).psk("app", KEY.to_vec()).alpn_protocols(&["coap", "mqtt"]).groups(groups);
    let s = only(version).psk_server_key(KEY.to_vec()).cookie_verification(cookie).alpn_protocols(&["coap"]);
    let s = s.alpn_selector(selector.clone()).groups(&[if retry { KxGroup::Secp256r1 } else { KxGroup::X25519 }]);
    let now = Instant::now();
    let name = ServerName::try_from("iot.example").unwrap();
    let mut client = Connection::client_with_server_name(Arc::new(c.build().unwrap()), Some(name), now).unwrap();
    let s = Arc::new(s.build().unwrap());
    let mut first = Vec::new();
    let mut server = if cookie {
        // Through an endpoint, which asks for the cookie statelessly; the connection starts
        // with the second ClientHello.
        let mut endpoint = Endpoint::new(s, now).unwrap();
        let from: SocketAddr = "192.0.2.1:5684".parse().unwrap();
        let mut response = Vec::new();
        let hello = drain(&mut client).remove(0);
        assert!(matches!(endpoint.handle(now, from, &hello, &mut response), DatagramEvent::Respond));
        first.push(response.clone());
        client.handle_datagram(now, &mut response).unwrap();
        let hello = drain(&mut client).remove(0);
        let DatagramEvent::Incoming(incoming) = endpoint.handle(now, from, &hello, &mut response) else {
            panic!("the second ClientHello is not admitted")
        };
        endpoint.accept(incoming, now).unwrap().1
    } else {
        Connection::server(s, now).unwrap()
    };
    while !client.is_established() || !server.is_established() {
        let to_server = drain(&mut client);
        let steps = to_server.len();
        for d in to_server {
            if server.handle_datagram(now, &mut d.clone()).is_err() {
                break;
            }
        }
        let flight = drain(&mut server);
        if first.is_empty() {
            first.clone_from(&flight);
        }
        for d in &flight {
            let _ = client.handle_datagram(now, &mut d.clone());
        }
        if steps == 0 || client.is_closed() || server.is_closed() {
            break;
        }
    }
    (client, server, first, selector)
}

#[test]
fn an_applications_selector_chooses_declines_or_refuses() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        // A protocol the list would not pick; asked once, with the offer and the name.
        let (client, server, flight, selector) = select(version, AlpnChoice::Protocol(b"mqtt".to_vec()), false, false);
        assert_eq!((client.alpn_protocol(), server.alpn_protocol()), (Some(&b"mqtt"[..]), Some(&b"mqtt"[..])));
        let offer = vec![b"coap".to_vec(), b"mqtt".to_vec()];
        assert_eq!(*selector.calls.lock().unwrap(), [(offer, Some("iot.example".to_owned()))], "{version:?}");
        if version == Protocol::Dtls1_2 {
            assert_eq!(hello_extensions(&flight[0]).alpn, Some(names(&["mqtt"])));
        }

        // Declined: no protocol, and no answer in DTLS 1.2's ServerHello.
        let (client, server, flight, _) = select(version, AlpnChoice::Decline, false, false);
        assert!(client.is_established() && server.is_established(), "{version:?}");
        assert_eq!((client.alpn_protocol(), server.alpn_protocol()), (None, None), "{version:?}");
        if version == Protocol::Dtls1_2 {
            assert_eq!(hello_extensions(&flight[0]).alpn, None);
        }

        // Refused: no_application_protocol (120), as when the list has nothing in common; a
        // protocol the client did not offer (an empty name too) is our mistake: internal_error
        // (80). Either way one plaintext fatal alert, and the client ends with it.
        // A DTLS 1.3 server that would ask for another key share refuses before it asks.
        for (choice, alert, retry) in [
            (AlpnChoice::Refuse, AlertDescription::NO_APPLICATION_PROTOCOL, false),
            (AlpnChoice::Refuse, AlertDescription::NO_APPLICATION_PROTOCOL, true),
            (AlpnChoice::Protocol(b"h2".to_vec()), AlertDescription::INTERNAL_ERROR, false),
            (AlpnChoice::Protocol(b"h2".to_vec()), AlertDescription::INTERNAL_ERROR, true),
            (AlpnChoice::Protocol(Vec::new()), AlertDescription::INTERNAL_ERROR, false),
        ] {
            let (client, server, flight, _) = select(version, choice.clone(), retry, false);
            assert!(server.is_closed() && client.is_closed(), "{version:?} {choice:?}");
            assert_eq!(flight.len(), 1, "{version:?} {choice:?}");
            assert_eq!((flight[0][0], &flight[0][13..]), (21, &[2, alert.0][..]), "{version:?} {choice:?}");
            assert_eq!(client.last_error(), Some(&Error::AlertReceived(alert)), "{version:?} {choice:?}");
        }
    }
    // A server that asks for another key share (DTLS 1.3), or for a cookie first (both
    // versions), decides once.
    for (version, retry, cookie) in
        [(Protocol::Dtls1_3, true, false), (Protocol::Dtls1_3, false, true), (Protocol::Dtls1_2, false, true)]
    {
        let (client, server, flight, selector) = select(version, AlpnChoice::Protocol(b"mqtt".to_vec()), retry, cookie);
        if version == Protocol::Dtls1_3 {
            // The server's first message is a HelloRetryRequest: a ServerHello with RFC 8446's
            // special random (after the record header, the handshake header and the version).
            assert_eq!(flight[0][27..31], [0xcf, 0x21, 0xad, 0x74], "a HelloRetryRequest first");
        }
        let agreed = (client.alpn_protocol(), server.alpn_protocol());
        assert_eq!(agreed, (Some(&b"mqtt"[..]), Some(&b"mqtt"[..])), "{version:?} {retry} {cookie}");
        assert_eq!(selector.calls.lock().unwrap().len(), 1, "{version:?} {retry} {cookie}");
    }
}

/// RFC 8446 §4.1.2: the second ClientHello offers what the first did. A DTLS 1.3 server that
/// chose a protocol for the first refuses a second that no longer offers it.
#[test]
fn a_second_client_hello_must_still_offer_the_protocol_chosen() {
    let c = only(Protocol::Dtls1_3).psk("app", KEY.to_vec()).alpn_protocols(&["coap", "mqtt"]);
    let c = c.groups(&[KxGroup::X25519, KxGroup::Secp256r1]).build().unwrap();
    let s = only(Protocol::Dtls1_3).psk_server_key(KEY.to_vec()).cookie_verification(false);
    let s = s.alpn_protocols(&["mqtt"]).groups(&[KxGroup::Secp256r1]).build().unwrap();
    let now = Instant::now();
    let mut client = Connection::client(Arc::new(c), now).unwrap();
    let mut server = Connection::server(Arc::new(s), now).unwrap();
    server.handle_datagram(now, &mut drain(&mut client).remove(0)).unwrap();
    let retry = drain(&mut server);
    assert_eq!(retry[0][27..31], [0xcf, 0x21, 0xad, 0x74], "a HelloRetryRequest");
    client.handle_datagram(now, &mut retry[0].clone()).unwrap();
    // The second ClientHello offers "mqtx" where it offered "mqtt" (same length).
    let mut second = drain(&mut client).remove(0);
    let at = second.windows(5).position(|w| w == b"\x04mqtt").unwrap();
    second[at + 4] = b'x';
    let err = server.handle_datagram(now, &mut second).unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved { alert: AlertDescription::ILLEGAL_PARAMETER, .. }), "{err:?}");
}
