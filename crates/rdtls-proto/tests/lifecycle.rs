//! A connection's life as the application and the endpoint see it: every way of ending reports
//! its error once (returned, one `Closed` event, `last_error`), and tells the endpoint once, so
//! the endpoint forgets the connection without the caller removing it by hand.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls_proto::crypto::KxGroup;
use rdtls_proto::enums::AlertDescription;
use rdtls_proto::{Config, Connection, DatagramEvent, Endpoint, Error, Event, HandshakeState};
use support::pump;

fn server_config() -> Arc<Config> {
    Arc::new(Config::builder().psk_server_key(b"key".to_vec()).cookie_verification(false).build().unwrap())
}

fn client_config(key: &[u8]) -> Arc<Config> {
    client_config_from(Config::builder(), key)
}

fn client_config_from(builder: rdtls_proto::ConfigBuilder, key: &[u8]) -> Arc<Config> {
    Arc::new(builder.psk("id", key.to_vec()).handshake_timeout(Duration::from_secs(5)).build().unwrap())
}

/// A client and the server connection an endpoint accepted for it, at `addr`.
fn accepted(
    ep: &mut Endpoint,
    now: Instant,
    addr: SocketAddr,
    key: &[u8],
) -> (Connection, rdtls_proto::ConnectionHandle, Connection) {
    accepted_with(ep, now, addr, client_config(key))
}

/// [`accepted`] for a client of `config`.
fn accepted_with(
    ep: &mut Endpoint,
    now: Instant,
    addr: SocketAddr,
    config: Arc<Config>,
) -> (Connection, rdtls_proto::ConnectionHandle, Connection) {
    let mut client = Connection::client(config, now).unwrap();
    let mut ch = Vec::new();
    assert!(client.poll_transmit(&mut ch).is_some());
    let mut resp = Vec::new();
    let DatagramEvent::Incoming(inc) = ep.handle(now, addr, &ch, &mut resp) else { panic!("not admitted") };
    let (h, server) = ep.accept(inc, now).unwrap();
    (client, h, server)
}

fn closed_events(conn: &mut Connection) -> Vec<Error> {
    std::iter::from_fn(|| conn.poll_event())
        .filter_map(|e| match e {
            Event::Closed(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn a_peer_close_is_reported_once_and_the_endpoint_forgets_the_connection() {
    let now = Instant::now();
    let mut ep = Endpoint::new(server_config(), now).unwrap();
    let addr: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let (mut client, h, mut server) = accepted(&mut ep, now, addr, b"key");
    pump(now, &mut client, &mut server);
    assert!(server.is_established());
    assert_eq!(server.poll_endpoint_event(), None, "an open connection has nothing to report");

    client.shutdown().unwrap();
    let mut alert = Vec::new();
    assert!(client.poll_transmit(&mut alert).is_some());
    assert_eq!(server.handle_datagram(now, &mut alert).unwrap_err(), Error::RemoteClosed);
    assert_eq!(closed_events(&mut server), vec![Error::RemoteClosed], "one Closed event");
    assert_eq!(server.last_error(), Some(&Error::RemoteClosed));
    assert!(server.is_closed() && !server.is_established());
    // Later calls answer with why it closed, and no further event.
    let mut again = alert.clone();
    assert_eq!(server.handle_datagram(now, &mut again).unwrap_err(), Error::RemoteClosed);
    assert!(closed_events(&mut server).is_empty());

    // The endpoint learns it once; then the address and handle are free.
    let event = server.poll_endpoint_event().expect("the endpoint is told");
    assert!(event.is_closed());
    assert_eq!(server.poll_endpoint_event(), None, "told once");
    assert_eq!(ep.connection_count(), 1);
    ep.handle_event(h, event);
    assert_eq!((ep.connection_count(), ep.remote(h)), (0, None));
    // A new handshake from the same address is a new peer.
    let (_c, h2, _s) = accepted(&mut ep, now, addr, b"key");
    assert_ne!(h2, h);
}

#[test]
fn a_failed_handshake_tells_the_endpoint_and_keeps_its_handshake_state() {
    let now = Instant::now();
    let mut ep = Endpoint::new(server_config(), now).unwrap();
    // DTLS 1.3 checks the key in the first ClientHello (its PSK binder): refused at once, with
    // decrypt_error, and no connection is made.
    // X25519 alone, so the ClientHello is one datagram (a fragmented one is admitted on its
    // first fragment with cookies off, and refused when the rest arrives).
    let config = client_config_from(Config::builder().groups(&[KxGroup::X25519]), b"other key");
    let mut client = Connection::client(config, now).unwrap();
    let mut ch = Vec::new();
    assert!(client.poll_transmit(&mut ch).is_some());
    let DatagramEvent::Incoming(inc) = ep.handle(now, "192.0.2.2:4000".parse().unwrap(), &ch, &mut Vec::new()) else {
        panic!("not admitted")
    };
    let refused = ep.accept(inc, now).unwrap_err();
    assert!(matches!(refused.error, Error::PeerMisbehaved { alert: AlertDescription::DECRYPT_ERROR, .. }));
    assert_eq!(refused.response[13..], [2, AlertDescription::DECRYPT_ERROR.0], "a fatal alert to send");
    assert_eq!(ep.connection_count(), 0);
    // DTLS 1.2 checks it only in the Finished: the client's Finished never authenticates, and
    // after a few such records the server ends the handshake.
    let dtls12 = client_config_from(support::dtls12(), b"other key");
    let (mut client, h, mut server) = accepted_with(&mut ep, now, "192.0.2.2:4000".parse().unwrap(), dtls12);
    pump(now, &mut client, &mut server);
    while !server.is_closed() && !client.is_closed() {
        // The client retransmits its Finished; each copy fails to authenticate at the server.
        let t = client.poll_timeout().expect("the client retransmits");
        client.handle_timeout(t).unwrap();
        pump(t, &mut client, &mut server);
        assert!(t < now + Duration::from_secs(5), "the server gives up before the client's timeout");
    }
    assert!(server.is_closed(), "{:?}", server.last_error());
    let error = server.last_error().cloned().expect("an error");
    assert_eq!(closed_events(&mut server), vec![error]);
    assert_eq!(server.handshake_state(), HandshakeState::InProgress, "the state it failed in");
    let event = server.poll_endpoint_event().expect("the endpoint is told");
    ep.handle_event(h, event);
    assert_eq!(ep.connection_count(), 0);
}

#[test]
fn our_own_shutdown_and_a_timeout_tell_the_endpoint_too() {
    let now = Instant::now();
    let mut ep = Endpoint::new(server_config(), now).unwrap();
    let (mut client, h, mut server) = accepted(&mut ep, now, "192.0.2.3:4000".parse().unwrap(), b"key");
    pump(now, &mut client, &mut server);
    server.shutdown().unwrap();
    assert_eq!((server.last_error(), server.handshake_state()), (None, HandshakeState::NotStarted));
    assert!(closed_events(&mut server).is_empty(), "our own shutdown is no event");
    ep.handle_event(h, server.poll_endpoint_event().expect("told"));

    let (_client, h, mut server) = accepted(&mut ep, now, "192.0.2.4:4000".parse().unwrap(), b"key");
    let late = now + Duration::from_secs(3600);
    assert_eq!(server.handle_timeout(late).unwrap_err(), Error::HandshakeTimeout);
    assert_eq!(closed_events(&mut server), vec![Error::HandshakeTimeout]);
    ep.handle_event(h, server.poll_endpoint_event().expect("told"));
    assert_eq!(ep.connection_count(), 0);
}
