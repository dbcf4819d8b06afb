//! Connection ID in DTLS 1.3 (RFC 9147 §9, on RFC 9146's extension): negotiated in the hellos,
//! carried in the unified header (the C bit) from the handshake epoch on, refused where it is
//! missing or wrong before any decryption, and an endpoint that follows a peer to a new address
//! only on its newest authenticated record.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rdtls_proto::enums::Protocol;
use rdtls_proto::{Config, ConfigBuilder, Connection, DatagramEvent, Endpoint};
use support::{delivered, pump, sealed};

const KEY: &[u8] = b"connection id key";
/// The C bit of a unified header's first byte (001CSLEE).
const C_BIT: u8 = 0b0001_0000;

fn dtls13() -> ConfigBuilder {
    Config::builder().protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
}

fn configs(client_cid: Option<usize>, server_cid: Option<usize>) -> (Arc<Config>, Arc<Config>) {
    let mut c = dtls13().psk("cid", KEY.to_vec());
    if let Some(n) = client_cid {
        c = c.connection_id(n);
    }
    let mut s = dtls13().psk_server_key(KEY.to_vec()).cookie_verification(false).allow_session_export(true);
    if let Some(n) = server_cid {
        s = s.connection_id(n);
    }
    (Arc::new(c.build().unwrap()), Arc::new(s.build().unwrap()))
}

fn pair(client_cid: Option<usize>, server_cid: Option<usize>) -> (Connection, Connection, Instant) {
    let (c, s) = configs(client_cid, server_cid);
    let now = Instant::now();
    let mut client = Connection::client(c, now).unwrap();
    let mut server = Connection::server(s, now).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    assert_eq!(client.protocol(), Some(Protocol::Dtls1_3));
    (client, server, now)
}

/// The ID a datagram's first record carries, if it is a unified header with the C bit and an
/// ID `len` bytes long.
fn cid_on_wire(datagram: &[u8], len: usize) -> Option<&[u8]> {
    let first = datagram[0];
    (first & 0b1110_0000 == 0b0010_0000 && first & C_BIT != 0).then(|| &datagram[1..1 + len])
}

#[test]
fn ids_both_ways_of_different_lengths_go_in_the_unified_header() {
    let (mut client, mut server, now) = pair(Some(8), Some(4));
    let (client_id, server_id) = (client.connection_id().unwrap().to_vec(), server.connection_id().unwrap().to_vec());
    assert_eq!(client.peer_connection_id(), Some(&server_id[..]));
    assert_eq!(server.peer_connection_id(), Some(&client_id[..]));
    let to_server = sealed(&mut client, b"ping");
    assert_eq!(cid_on_wire(&to_server, 4), Some(&server_id[..]));
    // First byte, the ID, 16-bit sequence number, length, then plaintext, inner type and tag.
    assert_eq!(to_server.len(), 1 + 4 + 2 + 2 + 4 + 1 + 16);
    assert_eq!(client.record_overhead(), 1 + 4 + 2 + 2 + 1 + 16);
    assert_eq!(delivered(&mut server, now, to_server), [b"ping".to_vec()]);
    let to_client = sealed(&mut server, b"pong");
    assert_eq!(cid_on_wire(&to_client, 8), Some(&client_id[..]));
    assert_eq!(delivered(&mut client, now, to_client), [b"pong".to_vec()]);
}

#[test]
fn the_handshake_epoch_already_carries_the_ids() {
    let (c, s) = configs(Some(6), Some(5));
    let now = Instant::now();
    let mut client = Connection::client(c, now).unwrap();
    let mut server = Connection::server(s, now).unwrap();
    let from_server = pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    // Every protected record of the server carries the client's ID: its encrypted flight
    // after the ServerHello, and what follows.
    let mut protected = 0;
    for datagram in &from_server {
        let mut rest = &datagram[..];
        while let Some(&first) = rest.first() {
            if first & 0b1110_0000 == 0b0010_0000 {
                assert_eq!(cid_on_wire(rest, 6), client.connection_id(), "{datagram:02x?}");
                protected += 1;
                // 001CSLEE with S and L set: ID, sequence number, length.
                let at = 1 + 6 + 2;
                let len = usize::from(u16::from_be_bytes([rest[at], rest[at + 1]]));
                rest = &rest[at + 2 + len..];
            } else {
                let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
                rest = &rest[13 + len..];
            }
        }
    }
    assert!(protected >= 1, "the server's encrypted flight");
}

#[test]
fn a_zero_length_id_asks_for_records_without_one() {
    let (mut client, mut server, now) = pair(Some(0), Some(4));
    assert_eq!(server.peer_connection_id(), Some(&[][..]));
    let to_server = sealed(&mut client, b"with the server's id");
    assert_eq!(cid_on_wire(&to_server, 4), server.connection_id());
    assert_eq!(delivered(&mut server, now, to_server), [b"with the server's id".to_vec()]);
    let to_client = sealed(&mut server, b"no id");
    assert_eq!(to_client[0] & C_BIT, 0);
    assert_eq!(delivered(&mut client, now, to_client), [b"no id".to_vec()]);
}

#[test]
fn without_both_asking_no_id_is_used() {
    for (c, s) in [(None, Some(4)), (Some(4), None), (None, None)] {
        let (mut client, mut server, now) = pair(c, s);
        assert_eq!((client.peer_connection_id(), server.peer_connection_id()), (None, None), "{c:?} {s:?}");
        let to_server = sealed(&mut client, b"plain header");
        assert_eq!(to_server[0] & C_BIT, 0, "{c:?} {s:?}");
        assert_eq!(delivered(&mut server, now, to_server), [b"plain header".to_vec()]);
    }
}

#[test]
fn a_record_without_the_id_or_with_another_is_dropped_before_decryption() {
    let (mut client, mut server, now) = pair(Some(4), Some(4));
    let record = sealed(&mut client, b"x");
    // The same record with the ID taken out (C bit cleared).
    let mut without = vec![record[0] & !C_BIT];
    without.extend_from_slice(&record[5..]);
    // And with another ID.
    let mut other = record.clone();
    other[1] ^= 0xff;
    for bad in [without, other] {
        let before = server.stats();
        assert!(delivered(&mut server, now, bad).is_empty());
        let after = server.stats();
        assert_eq!(after.dropped_malformed, before.dropped_malformed + 1);
        assert_eq!(after.dropped_bad_auth, before.dropped_bad_auth, "no decryption was tried");
    }
    assert_eq!(delivered(&mut server, now, record), [b"x".to_vec()]);
}

fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, last], port))
}

/// The endpoint's routing and following, as in the DTLS 1.2 test (`tests/cid.rs`).
fn arrive(
    ep: &mut Endpoint,
    server: &mut Connection,
    from: SocketAddr,
    now: Instant,
    mut datagram: Vec<u8>,
) -> (Vec<Vec<u8>>, bool) {
    let DatagramEvent::Connection(handle) = ep.handle(now, from, &datagram, &mut Vec::new()) else {
        panic!("not routed to the connection")
    };
    let got: Vec<Vec<u8>> = server.handle_datagram(now, &mut datagram).unwrap().iter().map(<[u8]>::to_vec).collect();
    let moved = ep.follow(handle, from, datagram.len(), server, now);
    (got, moved)
}

#[test]
fn an_endpoint_follows_a_rebinding_dtls13_peer_on_its_newest_record_only() {
    let (c, s) = configs(Some(0), Some(8));
    let now = Instant::now();
    let mut ep = Endpoint::new(s, now).unwrap();
    let (first, second, third) = (addr(1, 4000), addr(1, 4001), addr(9, 9999));
    let mut client = Connection::client(c, now).unwrap();
    let mut buf = Vec::new();
    assert!(client.poll_transmit(&mut buf).is_some());
    let DatagramEvent::Incoming(inc) = ep.handle(now, first, &buf, &mut Vec::new()) else { panic!("not admitted") };
    let (handle, mut server) = ep.accept(inc, now).unwrap();
    // The rest of the handshake goes through the endpoint: the client's Finished is routed by
    // its connection ID.
    let mut out = Vec::new();
    for _ in 0..8 {
        while server.poll_transmit(&mut out).is_some() {
            let _ = client.handle_datagram(now, &mut out);
        }
        while client.poll_transmit(&mut out).is_some() {
            assert!(
                matches!(ep.handle(now, first, &out, &mut Vec::new()), DatagramEvent::Connection(h) if h == handle)
            );
            let _ = server.handle_datagram(now, &mut out);
        }
    }
    assert!(client.is_established() && server.is_established());
    assert_eq!(client.protocol(), Some(Protocol::Dtls1_3));

    let before = sealed(&mut client, b"before");
    assert_eq!(arrive(&mut ep, &mut server, first, now, before.clone()), (vec![b"before".to_vec()], false));
    // The NAT rebinds: found by its ID from the new port, the connection follows.
    assert_eq!(
        arrive(&mut ep, &mut server, second, now, sealed(&mut client, b"after")),
        (vec![b"after".to_vec()], true)
    );
    assert_eq!(ep.remote(handle), Some(second));
    for i in 0..100u32 {
        let msg = i.to_be_bytes().to_vec();
        assert_eq!(arrive(&mut ep, &mut server, second, now, sealed(&mut client, &msg)), (vec![msg], false));
    }
    assert_eq!(ep.connection_count(), 1, "no new handshake");
    let held_back = sealed(&mut client, b"held back");
    assert_eq!(
        arrive(&mut ep, &mut server, second, now, sealed(&mut client, b"newer")),
        (vec![b"newer".to_vec()], false)
    );
    // A replay from a third address: dropped, no move. An authentic older record from there:
    // delivered, no move. A forged one: dropped, no move.
    let (got, moved) = arrive(&mut ep, &mut server, third, now, before);
    assert_eq!((got.len(), moved), (0, false));
    assert_eq!(arrive(&mut ep, &mut server, third, now, held_back), (vec![b"held back".to_vec()], false));
    let mut forged = sealed(&mut client, b"real");
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let (got, moved) = arrive(&mut ep, &mut server, third, now, forged);
    assert_eq!((got.len(), moved), (0, false));
    assert_eq!(ep.remote(handle), Some(second));
    // Answers carry nothing of the address; the client takes them from anywhere.
    assert_eq!(delivered(&mut client, now, sealed(&mut server, b"answer")), [b"answer".to_vec()]);
}

/// Runs a client and an endpoint's server connection until neither sends, routing what the
/// client sends through the endpoint (which must find the connection), and giving the server
/// the connection IDs its endpoint makes when the client asks for some.
fn exchange(ep: &mut Endpoint, h: rdtls_proto::ConnectionHandle, client: &mut Connection, server: &mut Connection) {
    let (mut now, from) = (Instant::now(), addr(7, 7000));
    let mut buf = Vec::new();
    for _ in 0..32 {
        let mut moved = false;
        while client.poll_transmit(&mut buf).is_some() {
            moved = true;
            assert!(matches!(ep.handle(now, from, &buf, &mut Vec::new()), DatagramEvent::Connection(x) if x == h));
            server.handle_datagram(now, &mut buf).unwrap();
        }
        while let Some(ev) = server.poll_endpoint_event() {
            if let Some(ids) = ep.handle_event(h, ev) {
                server.handle_event(ids);
            }
        }
        while server.poll_transmit(&mut buf).is_some() {
            moved = true;
            client.handle_datagram(now, &mut buf).unwrap();
        }
        if !moved {
            // Quiet: run the timers due within a quarter second (ACKs of post-handshake
            // messages wait a little for more to acknowledge), if any.
            let next = [client.poll_timeout(), server.poll_timeout()].into_iter().flatten().min();
            match next.filter(|t| *t <= now + std::time::Duration::from_millis(250)) {
                Some(t) => {
                    now = now.max(t);
                    client.handle_timeout(now).unwrap();
                    server.handle_timeout(now).unwrap();
                }
                None => break,
            }
        }
    }
}

/// An established DTLS 1.3 pair with 8-byte IDs both ways, the server behind an endpoint.
fn through_endpoint() -> (Endpoint, rdtls_proto::ConnectionHandle, Connection, Connection) {
    let (c, s) = configs(Some(8), Some(8));
    through_endpoint_with(c, s)
}

/// An established DTLS 1.3 pair of these configurations, the server behind an endpoint.
fn through_endpoint_with(
    c: Arc<Config>,
    s: Arc<Config>,
) -> (Endpoint, rdtls_proto::ConnectionHandle, Connection, Connection) {
    let now = Instant::now();
    let mut ep = Endpoint::new(s, now).unwrap();
    let mut client = Connection::client(c, now).unwrap();
    let mut buf = Vec::new();
    client.poll_transmit(&mut buf).unwrap();
    let DatagramEvent::Incoming(inc) = ep.handle(now, addr(7, 7000), &buf, &mut Vec::new()) else { panic!() };
    let (h, mut server) = ep.accept(inc, now).unwrap();
    exchange(&mut ep, h, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    (ep, h, client, server)
}

#[test]
fn a_client_asks_for_spare_ids_and_the_endpoint_routes_them() {
    let (mut ep, h, mut client, mut server) = through_endpoint();
    let now = Instant::now();
    let first = server.connection_id().unwrap().to_vec();
    client.request_connection_ids(now, 3).unwrap();
    assert!(client.request_connection_ids(now, 1).is_err(), "one request at a time");
    exchange(&mut ep, h, &mut client, &mut server);
    assert_eq!(client.spare_connection_ids(), 3);
    // The client switches to a spare: its records carry an ID the endpoint made, found all
    // the same, and accepted by the connection.
    assert!(client.use_spare_connection_id());
    let spare = client.peer_connection_id().unwrap().to_vec();
    assert_ne!(spare, first);
    assert_eq!(spare.len(), 8, "the endpoint's length");
    let record = sealed(&mut client, b"with a spare");
    assert_eq!(cid_on_wire(&record, 8), Some(&spare[..]));
    assert!(matches!(ep.handle(now, addr(7, 7000), &record, &mut Vec::new()), DatagramEvent::Connection(x) if x == h));
    assert_eq!(delivered(&mut server, now, record), [b"with a spare".to_vec()]);
    // A record re-labelled with the first ID is routed, but not authentic: the ID is in the
    // additional data.
    let mut relabelled = sealed(&mut client, b"x");
    relabelled[1..9].copy_from_slice(&first);
    assert!(delivered(&mut server, now, relabelled).is_empty());
    // An excessive request gets at most 8 IDs in all.
    client.request_connection_ids(now, 255).unwrap();
    exchange(&mut ep, h, &mut client, &mut server);
    assert_eq!(client.spare_connection_ids(), 2 + 5, "3 - 1 used, then 8 - 3 more");
    // When the connection goes, so do all its IDs.
    server.shutdown().unwrap();
    let ev = server.poll_endpoint_event().unwrap();
    assert!(ev.is_closed());
    assert!(ep.handle_event(h, ev).is_none());
    let stray = sealed(&mut client, b"late");
    assert!(matches!(ep.handle(now, addr(7, 7000), &stray, &mut Vec::new()), DatagramEvent::Drop));
}

#[test]
fn a_server_asks_its_client_for_spare_ids() {
    let (mut ep, h, mut client, mut server) = through_endpoint();
    let now = Instant::now();
    server.request_connection_ids(now, 2).unwrap();
    exchange(&mut ep, h, &mut client, &mut server);
    assert_eq!(server.spare_connection_ids(), 2);
    assert!(server.use_spare_connection_id());
    let spare = server.peer_connection_id().unwrap().to_vec();
    assert_ne!(spare, client.connection_id().unwrap());
    let record = sealed(&mut server, b"to a spare");
    assert_eq!(cid_on_wire(&record, 8), Some(&spare[..]));
    assert_eq!(delivered(&mut client, now, record), [b"to a spare".to_vec()]);
}

/// An exported DTLS 1.3 session carries its connection IDs: the pair, the IDs issued since,
/// the peer's spares. The importer accepts records with any of ours.
#[test]
fn an_exported_dtls13_session_keeps_every_id() {
    let (mut ep, h, mut client, mut server) = through_endpoint();
    let now = Instant::now();
    client.request_connection_ids(now, 2).unwrap();
    exchange(&mut ep, h, &mut client, &mut server);
    server.request_connection_ids(now, 3).unwrap();
    exchange(&mut ep, h, &mut client, &mut server);
    assert_eq!((client.spare_connection_ids(), server.spare_connection_ids()), (2, 3));
    let (own, peer) = (server.connection_id().unwrap().to_vec(), server.peer_connection_id().unwrap().to_vec());
    let (_, s) = configs(Some(8), Some(8));
    let state = server.export_session().unwrap();
    let mut imported = Connection::import_session(s, &state, now).unwrap();
    assert_eq!(imported.connection_id(), Some(&own[..]));
    assert_eq!(imported.peer_connection_id(), Some(&peer[..]));
    assert_eq!(imported.spare_connection_ids(), 3);
    assert!(client.use_spare_connection_id());
    assert_eq!(delivered(&mut imported, now, sealed(&mut client, b"spare id")), [b"spare id".to_vec()]);
    assert!(imported.use_spare_connection_id());
    assert_eq!(delivered(&mut client, now, sealed(&mut imported, b"back")), [b"back".to_vec()]);
}

/// A post-handshake message longer than the server's MTU (a NewConnectionId with several
/// 20-byte IDs, at 96 bytes) goes in fragments, which the client reassembles.
#[test]
fn a_post_handshake_message_split_over_records_is_reassembled() {
    let c = Arc::new(dtls13().psk("cid", KEY.to_vec()).connection_id(20).build().unwrap());
    let s = dtls13().psk_server_key(KEY.to_vec()).cookie_verification(false).connection_id(20).mtu(96);
    let (mut ep, h, mut client, mut server) = through_endpoint_with(c, Arc::new(s.build().unwrap()));
    client.request_connection_ids(Instant::now(), 8).unwrap();
    exchange(&mut ep, h, &mut client, &mut server);
    // At least five IDs: more than 96 bytes of message.
    assert!(client.spare_connection_ids() >= 5, "{}", client.spare_connection_ids());
    assert_eq!(client.stats().dropped_fragments, 0);
}
