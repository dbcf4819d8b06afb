//! The sans-IO side of an address change: the endpoint moves an established connection to the
//! peer's new address (a NAT rebinding, a move between networks), and data keeps flowing.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rdtls_proto::{Config, Connection, DatagramEvent, Endpoint};
use support::pump;

fn psk_server() -> Config {
    Config::builder().psk_server_key(b"key".to_vec()).cookie_verification(false).build().unwrap()
}

#[test]
fn an_established_connection_moves_to_a_new_peer_address_and_keeps_exchanging_data() {
    let now = Instant::now();
    let mut ep = Endpoint::new(Arc::new(psk_server()), now).unwrap();
    let client_cfg = Arc::new(Config::builder().psk("id", b"key".to_vec()).build().unwrap());
    let mut client = Connection::client(client_cfg.clone(), now).unwrap();
    let (a, b): (SocketAddr, SocketAddr) = ("192.0.2.7:5000".parse().unwrap(), "198.51.100.9:61000".parse().unwrap());
    let mut ch = Vec::new();
    assert!(client.poll_transmit(&mut ch).is_some());
    let mut resp = Vec::new();
    let DatagramEvent::Incoming(inc) = ep.handle(now, a, &ch, &mut resp) else { panic!() };
    let (h, mut server) = ep.accept(inc, now).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());

    // The peer's NAT rebinds: its datagrams now come from `b`.
    ep.migrate(h, b).unwrap();
    assert_eq!(ep.remote(h), Some(b));
    for i in 0..3u8 {
        let mut record = Vec::new();
        client.send(&[b'm', i], &mut record).unwrap();
        assert!(matches!(ep.handle(now, b, &record, &mut resp), DatagramEvent::Connection(x) if x == h));
        assert_eq!(server.handle_datagram(now, &mut record).unwrap().iter().next(), Some(&[b'm', i][..]));
        let mut reply = Vec::new();
        server.send(&[b'r', i], &mut reply).unwrap();
        assert_eq!(client.handle_datagram(now, &mut reply).unwrap().iter().next(), Some(&[b'r', i][..]));
    }
    // The old address is nobody's now: its records reach no connection.
    let mut stray = Vec::new();
    client.send(b"from the old address", &mut stray).unwrap();
    assert!(matches!(ep.handle(now, a, &stray, &mut resp), DatagramEvent::Drop));
    // A move onto another connection's address, or of an unknown handle, changes nothing.
    let mut other = Connection::client(client_cfg, now).unwrap();
    assert!(other.poll_transmit(&mut ch).is_some());
    let DatagramEvent::Incoming(inc) = ep.handle(now, a, &ch, &mut resp) else { panic!() };
    let (h2, _s2) = ep.accept(inc, now).unwrap();
    assert!(ep.migrate(h, a).is_err());
    assert!(ep.migrate(rdtls_proto::ConnectionHandle(999), a).is_err());
    assert_eq!((ep.remote(h), ep.remote(h2)), (Some(b), Some(a)));
    ep.remove(h);
    assert!(ep.migrate(h, b).is_err());
}
