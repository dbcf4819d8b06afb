//! The post-quantum hybrid group through the socket layer: a client whose ClientHello carries
//! the X25519MLKEM768 share (two datagrams) reaches a listener with cookies on, which holds the
//! pieces in its endpoint's pool until the hello is whole; both ends report the group. A pool
//! capped below one ClientHello turns such clients away and keeps nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rdtls::proto::crypto::KxGroup;
use rdtls::proto::enums::Protocol;
use rdtls::{Config, Connection, Listener, ListenerOptions};

const T: Duration = Duration::from_secs(10);

fn listener(options: ListenerOptions) -> (Listener, SocketAddr) {
    let server = Arc::new(Config::builder().psk_server_key(b"pq key".to_vec()).build().unwrap());
    let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server, options).unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A DTLS 1.3 client that sends its hybrid and X25519 shares at once: two datagrams.
fn hybrid_client() -> Arc<Config> {
    Arc::new(
        Config::builder()
            .protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
            .key_share_groups(&[KxGroup::X25519MlKem768, KxGroup::X25519])
            .mtu(1200)
            .psk("pq", b"pq key".to_vec())
            .build()
            .unwrap(),
    )
}

#[test]
fn a_fragmented_hybrid_client_hello_is_held_until_whole_and_the_group_is_named() {
    let (listener, addr) = listener(ListenerOptions::default());
    let mut client = Connection::connect(addr, hybrid_client(), Some(T)).expect("handshake");
    let mut server = listener.accept_timeout(T).expect("accepted");
    assert_eq!(client.key_exchange_group(), Some(KxGroup::X25519MlKem768));
    assert_eq!(server.key_exchange_group(), Some(KxGroup::X25519MlKem768));
    client.send(b"after the quantum").unwrap();
    let mut buf = [0u8; 64];
    let n = server.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], b"after the quantum");
    let stats = listener.stats();
    // Both ClientHellos came in two pieces: the first piece of each was held.
    assert_eq!(stats.fragments_held, 2, "{stats:?}");
    assert_eq!(stats.cookies_sent, 1, "{stats:?}");
}

#[test]
fn a_pool_below_one_hello_turns_fragmented_hellos_away() {
    let (listener, addr) = listener(ListenerOptions::default().hello_pool_bytes(1024));
    let err = Connection::connect(addr, hybrid_client(), Some(Duration::from_millis(1500))).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    let stats = listener.stats();
    assert_eq!((stats.fragments_held, stats.half_open, stats.cookies_sent), (0, 0, 0), "{stats:?}");
    assert!(stats.dropped_unverified >= 2, "{stats:?}");
    // A client whose ClientHello is one datagram is served as ever.
    let curves = Arc::new(Config::builder().psk("pq", b"pq key".to_vec()).groups(&[KxGroup::X25519]).build().unwrap());
    let client = Connection::connect(addr, curves, Some(T)).expect("handshake");
    assert_eq!(client.key_exchange_group(), Some(KxGroup::X25519));
}
