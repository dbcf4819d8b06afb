//! Counters of a listener and of a server: handshakes by outcome, cookies, what was dropped and
//! why, and the traffic, as real clients, a client with nothing in common and garbage see them.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls::proto::suites;
use rdtls::{Config, Connection, Listener, ListenerStats, Server, ServerEvent};

const T: Duration = Duration::from_secs(10);

fn server_config() -> Arc<Config> {
    Arc::new(
        Config::builder()
            .cipher_suites(&[&suites::TLS_PSK_WITH_AES_128_GCM_SHA256])
            .psk_server_key(b"key".to_vec())
            .build()
            .unwrap(),
    )
}

fn client_config() -> Arc<Config> {
    Arc::new(Config::builder().psk("id", b"key".to_vec()).build().unwrap())
}

/// A client that offers only a suite the server does not allow.
fn incompatible_client() -> Arc<Config> {
    Arc::new(
        Config::builder()
            .cipher_suites(&[&suites::TLS_PSK_WITH_AES_128_CCM_8])
            .psk("id", b"key".to_vec())
            .handshake_timeout(Duration::from_secs(3))
            .build()
            .unwrap(),
    )
}

/// Sends `n` datagrams of garbage to `to` from a socket of no connection.
fn garbage(to: SocketAddr, n: usize) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..n {
        s.send_to(&[0x17, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, i as u8, 0, 1, 0], to).unwrap();
    }
}

/// Waits until `cond` holds for the stats `read` gives (the counters are updated by the
/// serving thread as it goes), failing after a while with the last reading.
fn until(read: impl Fn() -> ListenerStats, cond: impl Fn(&ListenerStats) -> bool) -> ListenerStats {
    let deadline = Instant::now() + T;
    loop {
        let s = read();
        if cond(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "stats never got there: {s:?}");
        std::thread::yield_now();
    }
}

#[test]
fn a_listener_counts_handshakes_failures_cookies_drops_and_traffic() {
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap();
    let addr = listener.local_addr().unwrap();
    let clients = std::thread::spawn(move || {
        let mut ok = Vec::new();
        for _ in 0..2 {
            let mut c = Connection::connect(addr, client_config(), Some(T)).unwrap();
            c.send(b"hello").unwrap();
            ok.push(c);
        }
        let refused = Connection::connect(addr, incompatible_client(), Some(T)).unwrap_err();
        (ok, refused)
    });
    let mut buf = [0u8; 64];
    for _ in 0..2 {
        let mut c = listener.accept_timeout(T).unwrap();
        assert_eq!(c.recv(&mut buf, Some(T)).unwrap(), 5);
        c.send(b"fine").unwrap();
    }
    let (_ok, refused) = clients.join().unwrap();
    assert!(refused.to_string().contains("handshake_failure"), "{refused}");
    garbage(addr, 3);
    let s = until(|| listener.stats(), |s| s.dropped_unverified >= 3 && s.failed >= 1);
    assert_eq!((s.handshakes, s.established, s.half_open), (2, 2, 0), "{s:?}");
    assert_eq!((s.failed, s.failed_protocol), (1, 1), "{s:?}");
    assert_eq!(s.failed_timeout + s.failed_alert + s.failed_verification, 0, "{s:?}");
    assert_eq!(s.cookies_sent, 3, "one HelloVerifyRequest per client: {s:?}");
    assert!(s.datagrams_in >= 3 * 2 + 3 + 2 && s.datagrams_out >= 3 + 2 * 2, "{s:?}");
    assert!(s.bytes_in > s.datagrams_in * 13 && s.bytes_out > s.datagrams_out * 13, "{s:?}");
}

#[test]
fn a_server_counts_the_same() {
    let mut server = Server::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap();
    let addr = server.local_addr().unwrap();
    let clients = std::thread::spawn(move || {
        let mut c = Connection::connect(addr, client_config(), Some(T)).unwrap();
        c.send(b"hello").unwrap();
        let mut buf = [0u8; 64];
        let n = c.recv(&mut buf, Some(T)).unwrap();
        assert_eq!(&buf[..n], b"fine");
        let refused = Connection::connect(addr, incompatible_client(), Some(T)).unwrap_err();
        garbage(addr, 2);
        (c, refused)
    });
    let deadline = Instant::now() + T;
    while server.stats().dropped_unverified < 2 {
        assert!(Instant::now() < deadline, "{:?}", server.stats());
        if let Some(ServerEvent::Message(peer, _)) = server.poll(Some(Duration::from_millis(20))).unwrap() {
            server.send_to(peer, b"fine").unwrap();
        }
    }
    let (_c, _refused) = clients.join().unwrap();
    let s = server.stats();
    assert_eq!((s.handshakes, s.established, s.failed, s.failed_protocol, s.cookies_sent), (1, 1, 1, 1, 2), "{s:?}");
    assert!(s.datagrams_in >= 7 && s.bytes_out > 0, "{s:?}");
}
