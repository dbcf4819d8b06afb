//! The endpoint's table of connection IDs: the IDs of gone connections route nothing, and
//! a sweep keeps the table within about twice the IDs in use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::endpoint::CID_SWEEP_SLACK;
use crate::{Config, Connection, ConnectionHandle, DatagramEvent, Endpoint, Protocol};

/// Registers a connection from port `port` of a client; its handle and our ID.
fn register(ep: &mut Endpoint, client: &Arc<Config>, port: u16, now: Instant) -> (ConnectionHandle, Vec<u8>) {
    let mut hello = Vec::new();
    Connection::client(client.clone(), now).unwrap().poll_transmit(&mut hello).unwrap();
    let from = SocketAddr::from(([192, 0, 2, 1], port));
    let DatagramEvent::Incoming(incoming) = ep.handle(now, from, &hello, &mut Vec::new()) else {
        panic!("not admitted")
    };
    let (handle, conn) = ep.accept(incoming, now).unwrap();
    (handle, conn.connection_id().unwrap().to_vec())
}

/// Where the endpoint sends a `tls12_cid` record that names `id`, from an address no
/// connection has.
fn route(ep: &mut Endpoint, id: &[u8], now: Instant) -> DatagramEvent {
    let mut record = vec![25, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1];
    record.extend_from_slice(id);
    record.extend_from_slice(&[0, 0]);
    ep.handle(now, SocketAddr::from(([198, 51, 100, 7], 9)), &record, &mut Vec::new())
}

#[test]
fn ids_of_gone_connections_route_nothing_and_are_swept() {
    let now = Instant::now();
    let v12 = || Config::builder().protocol_versions(Protocol::Dtls1_2, Protocol::Dtls1_2);
    let server = v12().psk_server_key(b"key".to_vec()).cookie_verification(false).connection_id(3);
    let client = Arc::new(v12().psk("c", b"key".to_vec()).connection_id(0).build().unwrap());
    let mut ep = Endpoint::new(Arc::new(server.build().unwrap()), now).unwrap();
    ep.set_max_connections(usize::MAX);
    let mut live: Vec<_> = (0..1000).map(|i| register(&mut ep, &client, i, now)).collect();
    assert_eq!(ep.cid_entries(), 1000);
    let mut gone = Vec::new();
    let mut largest = 0;
    // Remove all but one, a new connection after every other removal (IDs may be drawn
    // again once free).
    for round in 0..1900u16 {
        let (handle, id) = live.swap_remove(usize::from(round) * 7 % live.len());
        ep.remove(handle);
        assert!(matches!(route(&mut ep, &id, now), DatagramEvent::Drop), "a gone connection's ID");
        gone.push(id);
        if round % 2 == 0 {
            live.push(register(&mut ep, &client, 2000 + round, now));
        }
        // At most as many gone IDs as live ones, and the slack.
        assert!(ep.cid_entries() <= 2 * live.len() + CID_SWEEP_SLACK + 1, "{}", ep.cid_entries());
        largest = largest.max(ep.cid_entries());
    }
    assert!(largest > live.len(), "gone IDs are left until a sweep");
    for (handle, id) in &live {
        assert!(matches!(route(&mut ep, id, now), DatagramEvent::Connection(h) if h == *handle));
    }
    // An ID drawn again belongs to its new connection only.
    for id in gone.iter().filter(|id| !live.iter().any(|(_, l)| l == *id)) {
        assert!(matches!(route(&mut ep, id, now), DatagramEvent::Drop));
    }
    assert_eq!(ep.connection_count(), live.len());
}
