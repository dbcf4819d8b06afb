//! Counters of a listener and of a server: handshakes by outcome, cookies, what was dropped and
//! why, and the traffic, as real clients, a client with nothing in common and garbage see them.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls::proto::crypto::KxGroup;
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

/// Clients of the elliptic curves only: their ClientHellos are one datagram each (with a
/// hybrid key share they are two, and a DTLS 1.2 server drops the second piece of the first),
/// so each datagram counts where the script says.
fn client_config() -> Arc<Config> {
    Arc::new(
        Config::builder().psk("id", b"key".to_vec()).groups(&[KxGroup::X25519, KxGroup::Secp256r1]).build().unwrap(),
    )
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
    // Kept open: a connection its owner drops is closed, and the listener forgets it at once.
    let mut accepted = Vec::new();
    for _ in 0..2 {
        let mut c = listener.accept_timeout(T).unwrap();
        assert_eq!(c.recv(&mut buf, Some(T)).unwrap(), 5);
        c.send(b"fine").unwrap();
        accepted.push(c);
    }
    let (_ok, refused) = clients.join().unwrap();
    assert!(refused.to_string().contains("handshake_failure"), "{refused}");
    garbage(addr, 3);
    // Datagrams are counted by whichever thread reads them (the listener's, or a connection's
    // on its own socket), possibly after the failure is: wait for the traffic counters too.
    let s = until(
        || listener.stats(),
        |s| {
            s.dropped_unverified >= 3
                && s.failed >= 1
                && s.datagrams_in >= 3 * 2 + 3 + 2
                && s.datagrams_out >= 3 + 2 * 2
        },
    );
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

/// Sends `n` ClientHellos without a cookie from `from` (each a new client), as a flood of
/// spoofed sources would.
fn cookieless_flood(from: &UdpSocket, to: SocketAddr, n: usize) {
    for _ in 0..n {
        let mut c = rdtls::proto::Connection::client(client_config(), Instant::now()).unwrap();
        let mut d = Vec::new();
        c.poll_transmit(&mut d).unwrap();
        from.send_to(&d, to).unwrap();
    }
}

/// Opens a handshake from a new socket on `ip`: answers the HelloVerifyRequest with the cookie,
/// then goes silent. Returns the socket so the address stays taken.
fn half_open(ip: [u8; 4], to: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind(SocketAddr::from((ip, 0))).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let now = Instant::now();
    let mut c = rdtls::proto::Connection::client(client_config(), now).unwrap();
    let mut d = Vec::new();
    c.poll_transmit(&mut d).unwrap();
    s.send_to(&d, to).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = s.recv_from(&mut buf).unwrap();
    c.handle_datagram(now, &mut buf[..n]).unwrap();
    d.clear();
    c.poll_transmit(&mut d).expect("a ClientHello with the cookie");
    s.send_to(&d, to).unwrap();
    s
}

/// The run the statistics exist for: good clients, a client with the wrong key, one with nothing
/// in common, garbage, a flood of cookieless ClientHellos and a flood of verified ones past the
/// per-address limit; every counter ends where that run puts it.
#[test]
fn a_scripted_run_puts_every_counter_where_it_belongs() {
    let server = Arc::new(
        Config::builder()
            .cipher_suites(&[&suites::TLS_PSK_WITH_AES_128_GCM_SHA256])
            .psk_server_key(b"key".to_vec())
            .handshake_timeout(Duration::from_secs(2))
            .build()
            .unwrap(),
    );
    let options = rdtls::ListenerOptions::default().limits(64, 16, 2);
    let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server, options).unwrap();
    let addr = listener.local_addr().unwrap();
    let clients = std::thread::spawn(move || {
        let ok: Vec<_> = (0..2).map(|_| Connection::connect(addr, client_config(), Some(T)).unwrap()).collect();
        let wrong = Config::builder()
            .psk("id", b"not the key".to_vec())
            .groups(&[KxGroup::X25519])
            // Its Finished is retransmitted quickly so that its third failure to authenticate,
            // which decides, reaches the server well before the server's handshake timeout.
            .retransmit_timeouts(Duration::from_millis(100), Duration::from_millis(200))
            .build()
            .unwrap();
        let wrong = Connection::connect(addr, Arc::new(wrong), Some(T)).unwrap_err();
        let nothing_in_common = Connection::connect(addr, incompatible_client(), Some(T)).unwrap_err();
        (ok, wrong, nothing_in_common)
    });
    let _accepted: Vec<_> = (0..2).map(|_| listener.accept_timeout(T).unwrap()).collect();
    let (_ok, wrong, nothing_in_common) = clients.join().unwrap();
    assert!(nothing_in_common.to_string().contains("handshake_failure"), "{nothing_in_common}");
    let before_floods = until(|| listener.stats(), |s| s.failed == 2);
    assert_eq!(
        (before_floods.failed_verification, before_floods.failed_protocol),
        (1, 1),
        "{wrong}: {before_floods:?}"
    );

    garbage(addr, 3);
    let flooder = UdpSocket::bind("127.0.0.3:0").unwrap();
    cookieless_flood(&flooder, addr, 40);
    // Four verified handshakes from one address: two fit under the per-address limit, two are
    // refused; the two that fit then time out.
    let _held: Vec<_> = (0..4).map(|_| half_open([127, 0, 0, 4], addr)).collect();
    let s = until(|| listener.stats(), |s| s.failed == 4 && s.half_open == 0 && s.dropped_unverified >= 3);
    assert_eq!((s.handshakes, s.established, s.half_open), (2, 2, 0), "{s:?}");
    assert_eq!(s.refused, 2, "verified ClientHellos past the per-address limit: {s:?}");
    assert_eq!((s.failed_timeout, s.failed_verification, s.failed_protocol, s.failed_alert), (2, 1, 1, 0), "{s:?}");
    assert_eq!(s.cookies_sent, 4 + 40 + 4, "one HelloVerifyRequest per ClientHello without a cookie: {s:?}");
    assert_eq!(s.dropped_unverified, 3, "the garbage: {s:?}");
    // The wrong-key client's Finished, sent and retransmitted until the third failure decides.
    assert_eq!((s.dropped_bad_auth, s.dropped_replayed, s.dropped_malformed), (3, 0, 0), "{s:?}");
    assert!(s.datagrams_in >= 4 * 2 + 3 + 40 + 4 * 2, "{s:?}");
}
