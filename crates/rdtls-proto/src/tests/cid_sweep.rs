//! The endpoint's table of connection IDs: the IDs of gone connections route nothing, and
//! a sweep keeps the table within about twice the IDs in use.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::cid::ConnectionIdGenerator;
use crate::endpoint::CID_SWEEP_SLACK;
use crate::{Config, Connection, ConnectionHandle, DatagramEvent, Endpoint, Error, Protocol};

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

fn endpoint(now: Instant) -> (Endpoint, Arc<Config>) {
    let v12 = || Config::builder().protocol_versions(Protocol::Dtls1_2, Protocol::Dtls1_2);
    let server = v12().psk_server_key(b"key".to_vec()).cookie_verification(false).connection_id(3);
    let client = Arc::new(v12().psk("c", b"key".to_vec()).connection_id(0).build().unwrap());
    let mut ep = Endpoint::new(Arc::new(server.build().unwrap()), now).unwrap();
    ep.set_max_connections(usize::MAX);
    (ep, client)
}

#[test]
fn ids_of_gone_connections_route_nothing_and_are_swept() {
    let now = Instant::now();
    let (mut ep, client) = endpoint(now);
    let mut live: Vec<_> = (0..1000).map(|i| register(&mut ep, &client, i, now)).collect();
    let (entries, busiest) = ep.cid_entries();
    assert_eq!(entries, 1000);
    // A gone connection's ID stays in the table, and routes nothing.
    let (handle, id) = live.swap_remove(0);
    ep.remove(handle);
    assert!(matches!(route(&mut ep, &id, now), DatagramEvent::Drop));
    assert_eq!(ep.cid_entries().0, 1000, "left for a sweep");
    let mut gone = vec![id];
    // Remove all but 49, a new connection after every other removal.
    for round in 1..1900u16 {
        let (handle, id) = live.swap_remove(usize::from(round) * 7 % live.len());
        ep.remove(handle);
        assert!(matches!(route(&mut ep, &id, now), DatagramEvent::Drop), "a gone connection's ID");
        gone.push(id);
        if round % 2 == 0 {
            live.push(register(&mut ep, &client, 2000 + round, now));
        }
        // At most as many gone IDs as live ones, and the slack.
        let (entries, _) = ep.cid_entries();
        assert!(entries <= 2 * live.len() + CID_SWEEP_SLACK + 1, "{entries} for {}", live.len());
    }
    // The table gave back what the busiest time made it grow to.
    assert_eq!(live.len(), 49);
    let (_, capacity) = ep.cid_entries();
    assert!(capacity * 2 <= busiest, "{capacity} of {busiest}");
    for (handle, id) in &live {
        assert!(matches!(route(&mut ep, id, now), DatagramEvent::Connection(h) if h == *handle));
    }
    for id in gone.iter().filter(|id| !live.iter().any(|(_, l)| l == *id)) {
        assert!(matches!(route(&mut ep, id, now), DatagramEvent::Drop));
    }
    assert_eq!(ep.connection_count(), live.len());
}

/// Hands out the IDs it is given, in order.
#[derive(Debug)]
struct Scripted(Mutex<VecDeque<[u8; 3]>>);

impl ConnectionIdGenerator for Scripted {
    fn generate(&self, id: &mut [u8], _: &mut dyn FnMut(&mut [u8]) -> Result<(), Error>) -> Result<(), Error> {
        id.copy_from_slice(&self.0.lock().unwrap().pop_front().expect("an ID left to hand out"));
        Ok(())
    }
}

#[test]
fn the_id_of_a_gone_connection_is_drawn_again_and_a_live_ones_is_not() {
    let now = Instant::now();
    let (mut ep, client) = endpoint(now);
    let (x, y) = ([1, 2, 3], [4, 5, 6]);
    ep.set_connection_id_generator(Arc::new(Scripted(Mutex::new([x, x, x, y].into()))));
    let (first, id) = register(&mut ep, &client, 1, now);
    assert_eq!(id, x);
    ep.remove(first);
    assert_eq!(ep.cid_entries().0, 1, "still there");
    // Free again: the new connection takes it, and it routes to that one.
    let (second, id) = register(&mut ep, &client, 2, now);
    assert_eq!(id, x);
    assert!(matches!(route(&mut ep, &x, now), DatagramEvent::Connection(h) if h == second));
    // Taken by a live connection: drawn again, the next one is used.
    let (third, id) = register(&mut ep, &client, 3, now);
    assert_eq!(id, y);
    assert!(matches!(route(&mut ep, &x, now), DatagramEvent::Connection(h) if h == second));
    assert!(matches!(route(&mut ep, &y, now), DatagramEvent::Connection(h) if h == third));
    assert_eq!(ep.cid_entries().0, 2);
}
