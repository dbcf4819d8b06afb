//! A `Listener`'s accepted DTLS 1.3 connection answers its client's request for spare
//! connection IDs (RFC 9147 §9) with IDs its endpoint routes to it: the client switches to one
//! and its records still reach the same connection.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls::{Config, Listener};
use rdtls_proto::{Connection as Proto, Protocol};

const KEY: &[u8] = b"0123456789abcdef";
const T: Duration = Duration::from_secs(10);

fn dtls13() -> rdtls_proto::ConfigBuilder {
    Config::builder().protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
}

/// Sends what the client has to send, and takes what comes back, until `done` says so
/// (the client's timers run between).
fn run(client: &mut Proto, socket: &UdpSocket, to: SocketAddr, mut done: impl FnMut(&mut Proto, &[Vec<u8>]) -> bool) {
    let deadline = Instant::now() + T;
    let mut buf = vec![0u8; 4096];
    let mut tx = Vec::new();
    let mut got = Vec::new();
    socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    loop {
        while client.poll_transmit(&mut tx).is_some() {
            socket.send_to(&tx, to).unwrap();
        }
        if done(client, &got) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out");
        match socket.recv(&mut buf) {
            Ok(n) => {
                got.extend(client.handle_datagram(Instant::now(), &mut buf[..n]).unwrap().iter().map(<[u8]>::to_vec))
            }
            Err(_) => client.handle_timeout(Instant::now()).unwrap(),
        }
    }
}

#[test]
fn a_listener_gives_its_client_spare_ids_it_routes() {
    let config = Arc::new(dtls13().psk_server_key(KEY.to_vec()).connection_id(8).build().unwrap());
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), config).unwrap();
    let addr = listener.local_addr().unwrap();
    let client_cfg = Arc::new(dtls13().psk("spares", KEY.to_vec()).connection_id(8).build().unwrap());
    let mut client = Proto::client(client_cfg, Instant::now()).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    run(&mut client, &socket, addr, |c, _| c.is_established());
    let mut server = listener.accept_timeout(T).unwrap();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = server.recv(&mut buf, Some(T)) {
            server.send(&buf[..n]).unwrap();
            if &buf[..n] == b"last" {
                break;
            }
        }
    });
    let first = client.peer_connection_id().unwrap().to_vec();
    client.request_connection_ids(Instant::now(), 3).unwrap();
    run(&mut client, &socket, addr, |c, _| c.spare_connection_ids() == 3);
    assert!(client.use_spare_connection_id());
    let spare = client.peer_connection_id().unwrap().to_vec();
    assert_ne!(spare, first);
    let mut record = Vec::new();
    client.send(b"with a spare", &mut record).unwrap();
    assert_eq!(&record[1..9], &spare[..], "the record carries the spare");
    socket.send_to(&record, addr).unwrap();
    run(&mut client, &socket, addr, |_, got| got.iter().any(|m| m == b"with a spare"));
    client.send(b"last", &mut record).unwrap();
    socket.send_to(&record, addr).unwrap();
    echo.join().unwrap();
    assert_eq!(listener.stats().handshakes, 1);
}
