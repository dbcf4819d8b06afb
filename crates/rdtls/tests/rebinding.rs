//! A `Server` whose client's address changes mid-stream (a NAT rebinding): with a Connection ID
//! the connection follows it on its newest authenticated record, reports `Moved`, and answers
//! at the new address; no new handshake.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls::{Config, Server, ServerEvent};
use rdtls_proto::Protocol;

const KEY: &[u8] = b"0123456789abcdef";
const T: Duration = Duration::from_secs(5);

fn dtls12() -> rdtls_proto::ConfigBuilder {
    Config::builder().protocol_versions(Protocol::Dtls1_2, Protocol::Dtls1_2)
}

/// Serves until `until` says stop, answering each message with itself; returns the events.
fn serve(server: &mut Server, mut until: impl FnMut(&[ServerEvent]) -> bool) -> Vec<ServerEvent> {
    let mut events = Vec::new();
    let deadline = Instant::now() + T;
    while !until(&events) {
        assert!(Instant::now() < deadline, "timed out; events so far: {events:?}");
        if let Some(e) = server.poll(Some(Duration::from_millis(20))).unwrap() {
            if let ServerEvent::Message(peer, data) = &e {
                server.send_to(*peer, data).unwrap();
            }
            events.push(e);
        }
    }
    events
}

/// Receives one datagram on `socket` and returns the application data it carried.
fn recv_data(client: &mut rdtls_proto::Connection, socket: &UdpSocket) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 2048];
    let n = socket.recv(&mut buf).unwrap();
    client.handle_datagram(Instant::now(), &mut buf[..n]).unwrap().iter().map(<[u8]>::to_vec).collect()
}

#[test]
fn a_server_follows_its_client_to_a_new_port() {
    let server_cfg = Arc::new(dtls12().psk_server_key(KEY.to_vec()).connection_id(6).build().unwrap());
    let mut server = Server::bind("127.0.0.1:0".parse().unwrap(), server_cfg).unwrap();
    let addr = server.local_addr().unwrap();
    let client_cfg = Arc::new(dtls12().psk("roamer", KEY.to_vec()).connection_id(0).build().unwrap());
    let mut client = rdtls_proto::Connection::client(client_cfg, Instant::now()).unwrap();
    let (first, second) = (UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap());
    for s in [&first, &second] {
        s.connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    }
    let (first_addr, second_addr): (SocketAddr, SocketAddr) =
        (first.local_addr().unwrap(), second.local_addr().unwrap());

    // The handshake from the first port, with the server served in between.
    let mut tx = Vec::new();
    let mut buf = vec![0u8; 2048];
    let deadline = Instant::now() + T;
    while !client.is_established() {
        assert!(Instant::now() < deadline, "no handshake");
        while client.poll_transmit(&mut tx).is_some() {
            first.send(&tx).unwrap();
        }
        let _ = server.poll(Some(Duration::from_millis(5))).unwrap();
        if let Ok(n) = first.recv(&mut buf) {
            client.handle_datagram(Instant::now(), &mut buf[..n]).unwrap();
        }
    }
    while client.poll_transmit(&mut tx).is_some() {
        first.send(&tx).unwrap();
    }
    assert_eq!(client.peer_connection_id().map(<[u8]>::len), Some(6));

    // A message from the first port, then the NAT rebinds: the next comes from the second.
    tx.clear();
    client.send(b"from the first port", &mut tx).unwrap();
    first.send(&tx).unwrap();
    serve(&mut server, |e| e.iter().any(|e| matches!(e, ServerEvent::Message(..))));
    assert_eq!(recv_data(&mut client, &first), [b"from the first port".to_vec()]);
    tx.clear();
    client.send(b"from the second port", &mut tx).unwrap();
    second.send(&tx).unwrap();
    let events = serve(&mut server, |e| e.iter().any(|e| matches!(e, ServerEvent::Message(..))));
    assert!(
        matches!(events[..], [ServerEvent::Moved { from, to }, ServerEvent::Message(peer, _)]
            if from == first_addr && to == second_addr && peer == second_addr),
        "{events:?}"
    );
    // The answer goes to the new port, and the connection is the same one.
    assert_eq!(recv_data(&mut client, &second), [b"from the second port".to_vec()]);
    assert_eq!(server.connection_count(), 1);
    assert!(server.connection(first_addr).is_none() && server.connection(second_addr).is_some());
}
