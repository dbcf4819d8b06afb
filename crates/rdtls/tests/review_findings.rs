//! Regressions for the security review's findings, through real loopback sockets: a forged
//! ClientHello from a connected peer's address (3), clients that verify certificates without a
//! name (4), and peers that vanish without a close_notify until the server is full (8).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls::{Config, Connection, Listener, ListenerOptions, SocketOptions};

const KEY: &[u8] = b"review findings key";
const T: Duration = Duration::from_secs(20);

fn client_config(name: &str) -> Arc<Config> {
    Arc::new(Config::builder().psk(name, KEY.to_vec()).build().unwrap())
}

/// Sends `msg` and expects it echoed by the server side `server`.
fn round_trip(client: &mut Connection, server: &mut Connection, msg: &[u8]) {
    client.send(msg).unwrap();
    let mut buf = [0u8; 256];
    let n = server.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], msg);
    server.send(&buf[..n]).unwrap();
    let n = client.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], msg);
}

#[test]
fn without_cookies_a_forged_client_hello_from_a_connected_peer_changes_nothing() {
    let server_cfg =
        Arc::new(Config::builder().psk_server_key(KEY.to_vec()).cookie_verification(false).build().unwrap());
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), server_cfg).unwrap();
    let addr = listener.local_addr().unwrap();
    // The client's socket allows a second socket on its address and port: the forger's.
    let options = SocketOptions::default().reuse_port(true);
    let socket = options.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let client_addr = socket.local_addr().unwrap();
    socket.connect(addr).unwrap();
    let mut client = Connection::handshake(socket, client_config("victim"), Some(T)).unwrap();
    let mut server = listener.accept_timeout(T).unwrap();
    assert_eq!(server.peer_addr().unwrap(), client_addr);
    round_trip(&mut client, &mut server, b"before");

    // A ClientHello with a new random, from the client's very address and port.
    let forger = options.bind(client_addr).unwrap();
    let mut proto = rdtls::proto::Connection::client(client_config("forger"), Instant::now()).unwrap();
    let mut hello = Vec::new();
    assert!(proto.poll_transmit(&mut hello).is_some());
    for _ in 0..3 {
        forger.send_to(&hello, addr).unwrap();
    }

    // The association is untouched: data flows both ways, nothing was replaced or failed.
    for i in 0..5 {
        round_trip(&mut client, &mut server, format!("after {i}").as_bytes());
    }
    assert!(!server.is_closed() && !client.is_closed());
    let stats = listener.stats();
    assert_eq!((stats.established, stats.half_open, stats.failed), (1, 0, 0), "{stats:?}");
    assert!(listener.try_accept().unwrap().is_none(), "no second connection for the forged hello");
}

// ===== certificates: the name checked is the one given, or the address connected to =====

struct Pki {
    roots: rdtls::RootStore,
    server: Arc<Config>,
}

/// A CA and a server certificate valid for `names` (DNS names or IP addresses).
fn pki(names: &[&str]) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*n).try_into().unwrap()),
        })
        .collect();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let provider = rdtls::proto::crypto::default_provider();
    let certified =
        rdtls::CertifiedKey::from_pem_or_der(&*provider, cert.pem().as_bytes(), key.serialize_pem().as_bytes(), None)
            .unwrap();
    let mut roots = rdtls::RootStore::new();
    roots.add_pem_or_der(ca.pem().as_bytes()).unwrap();
    Pki { roots, server: Arc::new(Config::builder().certificate(certified).build().unwrap()) }
}

fn serve_one(listener: Listener) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        if let Ok(mut c) = listener.accept_timeout(T) {
            let mut buf = [0u8; 64];
            if let Ok(n) = c.recv(&mut buf, Some(T)) {
                let _ = c.send(&buf[..n]);
            }
        }
    })
}

#[test]
fn connect_without_a_name_checks_the_servers_address() {
    // A certificate for the address the client connects to: accepted, blocking and async.
    let p = pki(&["127.0.0.1"]);
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), p.server.clone()).unwrap();
    let addr = listener.local_addr().unwrap();
    let t = serve_one(listener);
    let client_cfg = Arc::new(Config::builder().root_store(p.roots.clone()).build().unwrap());
    let mut c = Connection::connect(addr, client_cfg.clone(), Some(T)).unwrap();
    c.send(b"by address").unwrap();
    let mut buf = [0u8; 64];
    let n = c.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], b"by address");
    t.join().unwrap();

    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), p.server).unwrap();
    let addr = listener.local_addr().unwrap();
    let t = serve_one(listener);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut c = rdtls::tokio::Connection::connect(addr, client_cfg, Some(T)).await.unwrap();
        c.send(b"async").await.unwrap();
        let mut buf = [0u8; 64];
        let n = c.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"async");
    });
    t.join().unwrap();
}

#[test]
fn connect_without_a_name_refuses_a_certificate_for_another_name() {
    // A valid chain for "localhost" proves nothing about 127.0.0.1 (with the system roots it
    // would be any public CA's certificate for any name): refused, blocking and async.
    let p = pki(&["localhost"]);
    let client_cfg = Arc::new(Config::builder().root_store(p.roots.clone()).build().unwrap());
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), p.server.clone()).unwrap();
    let addr = listener.local_addr().unwrap();
    let err = Connection::connect(addr, client_cfg.clone(), Some(T)).unwrap_err();
    assert!(err.to_string().contains("host name did not match"), "{err}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = rt.block_on(rdtls::tokio::Connection::connect(addr, client_cfg.clone(), Some(T))).unwrap_err();
    assert!(err.to_string().contains("host name did not match"), "{err}");
    // With the name it is for, it is accepted.
    let t = serve_one(listener);
    let mut c = Connection::connect_with_name(addr, "localhost", client_cfg, Some(T)).unwrap();
    c.send(b"by name").unwrap();
    let mut buf = [0u8; 64];
    let n = c.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], b"by name");
    t.join().unwrap();
}

// ===== vanished peers =====

/// Completes a handshake and vanishes: no close_notify, the socket left unread (a device that
/// rebooted onto another port, a NAT that rebound, a crashed client).
fn vanish(addr: SocketAddr, name: &str) {
    let c = Connection::connect(addr, client_config(name), Some(T)).unwrap();
    std::mem::forget(c);
}

#[test]
fn churn_three_times_the_cap_of_vanishing_peers_and_newcomers_are_still_served() {
    const CAP: usize = 50;
    let server_cfg = Arc::new(Config::builder().psk_server_key(KEY.to_vec()).build().unwrap());
    // Stale at once, so the test need not wait: what matters is that the connection idle
    // longest goes first, and that nobody is refused.
    let opts = ListenerOptions::default().limits(CAP, 16, 16).stale_after(Some(Duration::ZERO));
    let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server_cfg, opts).unwrap();
    let addr = listener.local_addr().unwrap();

    // One peer stays and talks throughout.
    let mut steady = Connection::connect(addr, client_config("steady"), Some(T)).unwrap();
    let mut steady_server = listener.accept_timeout(T).unwrap();
    let mut accepted: Vec<Connection> = Vec::new();
    for i in 0..3 * CAP {
        vanish(addr, &format!("gone{i}"));
        accepted.push(listener.accept_timeout(T).expect("a newcomer was refused"));
        round_trip(&mut steady, &mut steady_server, format!("still here {i}").as_bytes());
        // An application drops connections that report an error; the listener's tables and
        // the live connections never exceed the cap.
        accepted.retain(|c| !c.is_closed());
        let stats = listener.stats();
        assert!(stats.established + stats.half_open <= CAP, "{i}: {stats:?}");
        assert!(accepted.len() < CAP, "{i}: {} live", accepted.len());
    }
    let stats = listener.stats();
    assert_eq!(stats.evicted_stale, 3 * CAP + 1 - CAP, "{stats:?}");
    assert_eq!(stats.refused, 0);
    // The one that kept talking was never evicted, and a new client is served.
    assert!(!steady_server.is_closed());
    let mut fresh = Connection::connect(addr, client_config("fresh"), Some(T)).unwrap();
    let mut fresh_server = listener.accept_timeout(T).unwrap();
    round_trip(&mut fresh, &mut fresh_server, b"welcome");
    round_trip(&mut steady, &mut steady_server, b"and me");
}

#[test]
fn without_a_stale_policy_a_full_listener_refuses_newcomers() {
    // What every server did before: vanished peers hold their places until shutdown.
    let server_cfg = Arc::new(Config::builder().psk_server_key(KEY.to_vec()).build().unwrap());
    let opts = ListenerOptions::default().limits(3, 16, 16).stale_after(None);
    let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server_cfg, opts).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for i in 0..3 {
        vanish(addr, &format!("gone{i}"));
        held.push(listener.accept_timeout(T).unwrap());
    }
    let err = Connection::connect(addr, client_config("late"), Some(Duration::from_millis(1500))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(listener.stats().refused > 0);
}

#[test]
fn a_full_listener_waits_for_the_stale_threshold_then_makes_room() {
    let server_cfg = Arc::new(Config::builder().psk_server_key(KEY.to_vec()).build().unwrap());
    let threshold = Duration::from_millis(300);
    let opts = ListenerOptions::default().limits(2, 16, 16).stale_after(Some(threshold));
    let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server_cfg, opts).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for i in 0..2 {
        vanish(addr, &format!("gone{i}"));
        held.push(listener.accept_timeout(T).unwrap());
    }
    // Nobody is silent for 300 ms yet: the newcomer's first ClientHello is refused; its
    // retransmission, a second later, finds a stale connection and takes its place.
    let started = Instant::now();
    let mut late = Connection::connect(addr, client_config("late"), Some(T)).unwrap();
    let mut late_server = listener.accept_timeout(T).unwrap();
    assert!(started.elapsed() >= threshold / 2, "admitted at once: {:?}", started.elapsed());
    round_trip(&mut late, &mut late_server, b"made room");
    let stats = listener.stats();
    assert!(stats.refused >= 1, "{stats:?}");
    assert_eq!(stats.evicted_stale, 1, "{stats:?}");
    assert_eq!(held.iter().filter(|c| c.is_closed()).count(), 1);
}

// ===== fast failure on a closed port =====

/// A loopback port nothing listens on.
fn closed_port() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

#[test]
fn connecting_to_a_closed_port_fails_fast_with_connection_refused() {
    let addr = closed_port();
    let started = Instant::now();
    let err = Connection::connect(addr, client_config("nobody"), Some(T)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(err.to_string().contains("nothing listens"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let started = Instant::now();
    let err = rt.block_on(rdtls::tokio::Connection::connect(addr, client_config("nobody"), Some(T))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}
