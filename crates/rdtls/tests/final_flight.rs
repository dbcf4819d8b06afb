//! A listener answers a client whose copy of the server's final flight was lost, even while
//! the application has not read (or even accepted) the connection, and frees that flight's
//! state on its own once the client can no longer need it. A DTLS 1.2 matter: in DTLS 1.3 the
//! client's Finished ends the handshake, and the server only acknowledges it.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls::{Config, Listener};
use rdtls_proto::enums::ContentType;
use rdtls_proto::record::Records;

const KEY: &[u8] = b"0123456789abcdef";

fn dtls12() -> rdtls_proto::ConfigBuilder {
    Config::builder().protocol_versions(rdtls_proto::Protocol::Dtls1_2, rdtls_proto::Protocol::Dtls1_2)
}

fn holds_ccs(datagram: &[u8]) -> bool {
    Records::new(datagram).any(|(h, _)| h.content_type == ContentType::CHANGE_CIPHER_SPEC)
}

#[test]
fn a_lost_final_flight_is_resent_without_the_application_reading() {
    let server_cfg = Arc::new(dtls12().psk_server_key(KEY.to_vec()).build().unwrap());
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), server_cfg).unwrap();
    let client_cfg = Arc::new(
        dtls12()
            .psk("lossy", KEY.to_vec())
            .retransmit_timeouts(Duration::from_millis(100), Duration::from_millis(400))
            .build()
            .unwrap(),
    );
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(listener.local_addr().unwrap()).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut client = rdtls_proto::Connection::client(client_cfg, Instant::now()).unwrap();
    let (mut tx, mut rx) = (Vec::new(), vec![0u8; 2048]);
    let (mut dropped, mut resent_flights) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.is_established() {
        assert!(Instant::now() < deadline, "the client never completed: the final flight was not resent");
        while client.poll_transmit(&mut tx).is_some() {
            socket.send(&tx).unwrap();
        }
        match socket.recv(&mut rx) {
            // The server's first final flight (ChangeCipherSpec + Finished) is lost.
            Ok(n) if holds_ccs(&rx[..n]) && dropped == 0 => dropped += 1,
            Ok(n) => {
                resent_flights += usize::from(holds_ccs(&rx[..n]));
                client.handle_datagram(Instant::now(), &mut rx[..n]).unwrap();
            }
            Err(_) => {
                let due = client.poll_timeout().is_some_and(|t| t <= Instant::now());
                if due {
                    client.handle_timeout(Instant::now()).unwrap();
                }
            }
        }
    }
    assert_eq!((dropped, resent_flights), (1, 1));
    // Nobody has called accept or recv: the listener answered by itself. The connection is
    // there and works.
    let mut server = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    tx.clear();
    client.send(b"after the loss", &mut tx).unwrap();
    socket.send(&tx).unwrap();
    let mut buf = [0u8; 64];
    let n = server.recv(&mut buf, Some(Duration::from_secs(5))).unwrap();
    assert_eq!(&buf[..n], b"after the loss");
}

#[test]
fn an_unread_connection_frees_its_final_flight_after_the_hold() {
    // The final flight is held for one handshake timeout (2 s, the shortest allowed).
    let server_cfg = Arc::new(
        Config::builder().psk_server_key(KEY.to_vec()).handshake_timeout(Duration::from_secs(2)).build().unwrap(),
    );
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), server_cfg).unwrap();
    let client_cfg = Arc::new(Config::builder().psk("idle", KEY.to_vec()).build().unwrap());
    let _client =
        rdtls::Connection::connect(listener.local_addr().unwrap(), client_cfg, Some(Duration::from_secs(5))).unwrap();
    let server = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    let hold = server.connection().poll_timeout().expect("the final flight is held");
    // The application never reads: the listener's own sweep must run the timer.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.connection().poll_timeout().is_some() {
        assert!(Instant::now() < deadline, "the final flight was never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(Instant::now() >= hold, "freed before the hold ended");
}
