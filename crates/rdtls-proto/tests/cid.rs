//! Connection ID in DTLS 1.2 (RFC 9146): negotiation in the four cases (none, a zero-length ID
//! on one side, IDs both ways, different lengths each way), the `tls12_cid` records on the wire,
//! and an endpoint that follows a peer to a new address only on its newest authenticated
//! record (§6).

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rdtls_proto::enums::ContentType;
use rdtls_proto::record::{Records, HEADER_LEN};
use rdtls_proto::{Config, Connection, DatagramEvent, Endpoint, Error};
use support::{delivered, dtls12, pump, sealed};

const KEY: &[u8] = b"connection id key";

/// A DTLS 1.2 PSK pair; `client_cid` and `server_cid` are the lengths each asks for.
fn configs(client_cid: Option<usize>, server_cid: Option<usize>) -> (Arc<Config>, Arc<Config>) {
    let mut c = dtls12().psk("cid", KEY.to_vec());
    if let Some(n) = client_cid {
        c = c.connection_id(n);
    }
    let mut s = dtls12().psk_server_key(KEY.to_vec()).cookie_verification(false);
    if let Some(n) = server_cid {
        s = s.connection_id(n);
    }
    (Arc::new(c.build().unwrap()), Arc::new(s.build().unwrap()))
}

/// An established pair.
fn pair(client_cid: Option<usize>, server_cid: Option<usize>) -> (Connection, Connection, Instant) {
    let (c, s) = configs(client_cid, server_cid);
    let now = Instant::now();
    let mut client = Connection::client(c, now).unwrap();
    let mut server = Connection::server(s, now).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    (client, server, now)
}

/// The connection ID a datagram's first record carries, if it is a `tls12_cid` record of a
/// connection ID `len` bytes long.
fn cid_on_wire(datagram: &[u8], len: usize) -> Option<&[u8]> {
    (datagram[0] == ContentType::TLS12_CID.0).then(|| &datagram[11..11 + len])
}

#[test]
fn ids_both_ways_of_different_lengths_go_on_every_protected_record() {
    let (mut client, mut server, now) = pair(Some(8), Some(4));
    let (client_id, server_id) = (client.connection_id().unwrap().to_vec(), server.connection_id().unwrap().to_vec());
    assert_eq!((client_id.len(), server_id.len()), (8, 4));
    assert_eq!(client.peer_connection_id(), Some(&server_id[..]));
    assert_eq!(server.peer_connection_id(), Some(&client_id[..]));
    // Each side's records carry the other's ID: 13 bytes, the ID, the inner type, the tag.
    let to_server = sealed(&mut client, b"ping");
    assert_eq!(cid_on_wire(&to_server, 4), Some(&server_id[..]));
    assert_eq!(to_server.len(), HEADER_LEN + 4 + 8 + 4 + 1 + 16, "explicit nonce, plaintext, type, tag");
    assert_eq!(delivered(&mut server, now, to_server), [b"ping".to_vec()]);
    let to_client = sealed(&mut server, b"pong");
    assert_eq!(cid_on_wire(&to_client, 8), Some(&client_id[..]));
    assert_eq!(delivered(&mut client, now, to_client), [b"pong".to_vec()]);
}

#[test]
fn the_finished_messages_already_travel_in_tls12_cid_records() {
    let (c, s) = configs(Some(8), Some(4));
    let now = Instant::now();
    let mut client = Connection::client(c, now).unwrap();
    let mut server = Connection::server(s, now).unwrap();
    let from_server = pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    // The server's last flight: ChangeCipherSpec (epoch 0, ordinary), then its Finished in
    // epoch 1, which carries the client's ID.
    let last = from_server.last().unwrap();
    let types: Vec<u8> = Records::new(last).map(|(h, _)| h.content_type.0).collect();
    assert_eq!(types.first(), Some(&ContentType::CHANGE_CIPHER_SPEC.0), "{types:?}");
    let ccs_len = HEADER_LEN + 1;
    assert_eq!(cid_on_wire(&last[ccs_len..], 8), client.connection_id());
}

#[test]
fn a_zero_length_id_asks_for_ordinary_records_one_way() {
    // The client asks for ordinary records but sends with the server's ID (RFC 9146 §3).
    let (mut client, mut server, now) = pair(Some(0), Some(4));
    assert_eq!(server.peer_connection_id(), Some(&[][..]));
    let to_server = sealed(&mut client, b"with the server's id");
    assert_eq!(cid_on_wire(&to_server, 4), server.connection_id());
    assert_eq!(delivered(&mut server, now, to_server), [b"with the server's id".to_vec()]);
    let to_client = sealed(&mut server, b"ordinary");
    assert_eq!(to_client[0], ContentType::APPLICATION_DATA.0);
    assert_eq!(delivered(&mut client, now, to_client), [b"ordinary".to_vec()]);
    // And the mirror image: the server asks for nothing.
    let (mut client, mut server, now) = pair(Some(4), Some(0));
    let to_server = sealed(&mut client, b"ordinary");
    assert_eq!(to_server[0], ContentType::APPLICATION_DATA.0);
    assert_eq!(delivered(&mut server, now, to_server), [b"ordinary".to_vec()]);
    let to_client = sealed(&mut server, b"with the client's id");
    assert_eq!(cid_on_wire(&to_client, 4), client.connection_id());
}

#[test]
fn without_both_asking_no_id_is_used() {
    for (c, s) in [(None, Some(4)), (Some(4), None), (None, None)] {
        let (mut client, mut server, now) = pair(c, s);
        assert_eq!((client.peer_connection_id(), server.peer_connection_id()), (None, None), "{c:?} {s:?}");
        let to_server = sealed(&mut client, b"plain");
        assert_eq!(to_server[0], ContentType::APPLICATION_DATA.0, "{c:?} {s:?}");
        assert_eq!(delivered(&mut server, now, to_server), [b"plain".to_vec()]);
    }
}

#[test]
fn an_ordinary_record_where_the_id_was_negotiated_is_dropped() {
    let (mut client, mut server, now) = pair(Some(4), Some(4));
    // The same data sealed by a pair without IDs cannot be told apart by keys (they differ),
    // so forge the simplest case: strip the ID from a real record and call it application
    // data. It no longer authenticates, and anyway ordinary records are refused here.
    let record = sealed(&mut client, b"x");
    let mut plain = Vec::new();
    plain.push(ContentType::APPLICATION_DATA.0);
    plain.extend_from_slice(&record[1..11]);
    plain.extend_from_slice(&record[15..]);
    let before = server.stats().dropped_malformed;
    assert!(server.handle_datagram(now, &mut plain).unwrap().is_empty());
    assert_eq!(server.stats().dropped_malformed, before + 1);
    assert_eq!(server.stats().dropped_bad_auth, 0, "refused before any decryption");
    // A tls12_cid record with another ID: dropped too.
    let mut other = sealed(&mut client, b"y");
    other[11] ^= 0xff;
    assert!(server.handle_datagram(now, &mut other).unwrap().is_empty());
    assert_eq!(server.stats().dropped_malformed, before + 2);
}

#[test]
fn the_id_is_set_only_before_it_is_sent_and_only_at_its_length() {
    let (c, s) = configs(Some(4), Some(4));
    let now = Instant::now();
    let mut server = Connection::server(s.clone(), now).unwrap();
    assert!(matches!(server.set_connection_id(&[1, 2, 3]), Err(Error::InvalidInput(_))));
    server.set_connection_id(&[1, 2, 3, 4]).unwrap();
    assert_eq!(server.connection_id(), Some(&[1, 2, 3, 4][..]));
    let mut client = Connection::client(c, now).unwrap();
    assert!(matches!(client.set_connection_id(&[1, 2, 3, 4]), Err(Error::InvalidOperation(_))));
    pump(now, &mut client, &mut server);
    assert_eq!(client.peer_connection_id(), Some(&[1, 2, 3, 4][..]));
    assert!(matches!(server.set_connection_id(&[5, 6, 7, 8]), Err(Error::InvalidOperation(_))));
    let (_, none) = configs(None, None);
    let mut plain = Connection::server(none, now).unwrap();
    assert!(plain.set_connection_id(&[]).is_err());
    assert!(dtls12().psk("x", KEY.to_vec()).connection_id(21).build().is_err(), "at most 20 bytes");
}

fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, last], port))
}

/// A client that completed its handshake with an endpoint from `from`; the server connection
/// and its handle.
fn through_endpoint(
    ep: &mut Endpoint,
    client_cfg: Arc<Config>,
    from: SocketAddr,
    now: Instant,
) -> (Connection, rdtls_proto::ConnectionHandle, Connection) {
    let mut client = Connection::client(client_cfg, now).unwrap();
    let mut buf = Vec::new();
    assert!(client.poll_transmit(&mut buf).is_some());
    let DatagramEvent::Incoming(inc) = ep.handle(now, from, &buf, &mut Vec::new()) else { panic!("not admitted") };
    let (handle, mut server) = ep.accept(inc, now).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    (client, handle, server)
}

/// What the endpoint does with a datagram from `from`: the connection's messages, and
/// whether the connection followed the peer there.
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
    let got: Vec<Vec<u8>> = match server.handle_datagram(now, &mut datagram) {
        Ok(r) => r.iter().map(<[u8]>::to_vec).collect(),
        Err(e) => panic!("{e}"),
    };
    let moved = ep.follow(handle, from, datagram.len(), server, now);
    (got, moved)
}

#[test]
fn an_endpoint_follows_a_rebinding_peer_on_its_newest_record_only() {
    let (c, s) = configs(Some(0), Some(6));
    let now = Instant::now();
    let mut ep = Endpoint::new(s, now).unwrap();
    let (first, second, third) = (addr(1, 4000), addr(1, 4001), addr(9, 9999));
    let (mut client, handle, mut server) = through_endpoint(&mut ep, c, first, now);
    assert_eq!(server.connection_id().map(<[u8]>::len), Some(6));
    let before = sealed(&mut client, b"before");
    let (got, moved) = arrive(&mut ep, &mut server, first, now, before.clone());
    assert_eq!((got, moved), (vec![b"before".to_vec()], false));

    // The NAT rebinds: the same connection goes on from a new port, found by its ID.
    let (got, moved) = arrive(&mut ep, &mut server, second, now, sealed(&mut client, b"after"));
    assert_eq!((got, moved), (vec![b"after".to_vec()], true));
    assert_eq!(ep.remote(handle), Some(second));
    assert_eq!(ep.connection_at(first), None, "the old address is free");
    for i in 0..100u32 {
        let msg = i.to_be_bytes().to_vec();
        let (got, moved) = arrive(&mut ep, &mut server, second, now, sealed(&mut client, &msg));
        assert_eq!((got, moved), (vec![msg], false));
    }
    assert_eq!(ep.connection_count(), 1, "no new handshake");
    let held_back = sealed(&mut client, b"held back"); // overtaken by the next one
    let (got, moved) = arrive(&mut ep, &mut server, second, now, sealed(&mut client, b"newer"));
    assert_eq!((got, moved), (vec![b"newer".to_vec()], false));

    // A replay of an old record from a third address: dropped, and the peer stays.
    let (got, moved) = arrive(&mut ep, &mut server, third, now, before);
    assert_eq!((got.len(), moved), (0, false));
    assert_eq!(server.stats().dropped_replayed, 1);
    // An authentic but older record (reordered) from the third address: delivered, as UDP
    // delivers late data, but it does not move the peer either.
    let (got, moved) = arrive(&mut ep, &mut server, third, now, held_back);
    assert_eq!((got, moved), (vec![b"held back".to_vec()], false));
    assert_eq!(ep.remote(handle), Some(second));
    // A forged record with the ID from the third address: not authentic, no move.
    let mut forged = sealed(&mut client, b"real");
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let (got, moved) = arrive(&mut ep, &mut server, third, now, forged);
    assert_eq!((got.len(), moved), (0, false));
    assert_eq!(ep.remote(handle), Some(second));

    // The connection's answers go to the new address; and when it closes, its ID is free.
    server.shutdown().unwrap();
    let event = server.poll_endpoint_event().unwrap();
    ep.handle_event(handle, event);
    let stray = sealed(&mut client, b"late");
    assert!(matches!(ep.handle(now, second, &stray, &mut Vec::new()), DatagramEvent::Drop));
}

#[test]
fn an_exported_session_keeps_its_connection_ids() {
    let c = dtls12().psk("cid", KEY.to_vec()).connection_id(8);
    let s = dtls12().psk_server_key(KEY.to_vec()).cookie_verification(false).connection_id(4);
    let (c, s) = (Arc::new(c.build().unwrap()), Arc::new(s.allow_session_export(true).build().unwrap()));
    let now = Instant::now();
    let mut client = Connection::client(c, now).unwrap();
    let mut server = Connection::server(s, now).unwrap();
    pump(now, &mut client, &mut server);
    let (server_id, client_id) = (server.connection_id().unwrap().to_vec(), client.connection_id().unwrap().to_vec());
    let state = server.export_session().unwrap();
    assert!(state.starts_with(b"DTLSSES2"));
    // Imported under a configuration that asks for no ID: the session's IDs still hold.
    let plain = Arc::new(dtls12().psk_server_key(KEY.to_vec()).build().unwrap());
    let mut resumed = Connection::import_session(plain, &state, now).unwrap();
    assert_eq!(resumed.connection_id(), Some(&server_id[..]));
    assert_eq!(resumed.peer_connection_id(), Some(&client_id[..]));
    let to_server = sealed(&mut client, b"to the new owner");
    assert_eq!(delivered(&mut resumed, now, to_server), [b"to the new owner".to_vec()]);
    let to_client = sealed(&mut resumed, b"from the new owner");
    assert_eq!(cid_on_wire(&to_client, 8), Some(&client_id[..]));
    assert_eq!(delivered(&mut client, now, to_client), [b"from the new owner".to_vec()]);
    // Without IDs the format is the old one.
    let c = Arc::new(dtls12().psk("cid", KEY.to_vec()).build().unwrap());
    let s = dtls12().psk_server_key(KEY.to_vec()).cookie_verification(false).allow_session_export(true);
    let mut client = Connection::client(c, now).unwrap();
    let mut server = Connection::server(Arc::new(s.build().unwrap()), now).unwrap();
    pump(now, &mut client, &mut server);
    assert!(server.export_session().unwrap().starts_with(b"DTLSSES1"));
}

/// The default IDs are random; sharded ones carry the endpoint's shard in their first byte; a
/// generator of the application's own replaces them, and the endpoint routes by what it made.
#[test]
fn an_endpoint_makes_its_ids_with_its_generator() {
    use rdtls_proto::cid::{shard_of, ConnectionIdGenerator, ShardedIds};

    #[derive(Debug)]
    struct Fixed;
    impl ConnectionIdGenerator for Fixed {
        fn generate(&self, id: &mut [u8], random: &mut dyn FnMut(&mut [u8]) -> Result<(), Error>) -> Result<(), Error> {
            id[..2].copy_from_slice(b"AB");
            random(&mut id[2..])
        }
    }

    let (c, s) = configs(Some(0), Some(6));
    let now = Instant::now();
    let mut ep = Endpoint::new(s.clone(), now).unwrap();
    // By default every byte is random: the first bytes of a few IDs are not all alike.
    let firsts: std::collections::BTreeSet<u8> = (0..16)
        .map(|i| through_endpoint(&mut ep, c.clone(), addr(2, 100 + i), now).2.connection_id().unwrap()[0])
        .collect();
    assert!(firsts.len() > 1, "{firsts:?}");
    ep.set_connection_id_generator(Arc::new(ShardedIds::new(5)));
    let (_, _, server) = through_endpoint(&mut ep, c.clone(), addr(1, 2), now);
    assert_eq!(server.connection_id().and_then(shard_of), Some(5));

    ep.set_connection_id_generator(Arc::new(Fixed));
    let (mut client, handle, mut server) = through_endpoint(&mut ep, c, addr(1, 3), now);
    let id = server.connection_id().unwrap().to_vec();
    assert_eq!(&id[..2], b"AB");
    assert_eq!(client.peer_connection_id(), Some(&id[..]));
    let (got, moved) = arrive(&mut ep, &mut server, addr(1, 4), now, sealed(&mut client, b"routed"));
    assert_eq!((got, moved), (vec![b"routed".to_vec()], true));
    assert_eq!(ep.remote(handle), Some(addr(1, 4)));
}
