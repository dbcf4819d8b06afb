//! The listener under a ClientHello flood from many source addresses while real clients
//! connect; and the connection cap evicting half-open handshakes first.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rdtls::{Config, Connection, Listener, ListenerOptions};

const KEY: &[u8] = b"flood test key";
const T: Duration = Duration::from_secs(30);

fn client_config(name: &str) -> Arc<Config> {
    Arc::new(Config::builder().psk(name, KEY.to_vec()).build().unwrap())
}

fn client_hello() -> Vec<u8> {
    let mut c = rdtls::proto::Connection::client(client_config("flood"), Instant::now()).unwrap();
    let mut ch = Vec::new();
    let _ = c.poll_transmit(&mut ch);
    ch
}

#[test]
fn a_hundred_thousand_client_hellos_and_garbage_while_fifty_clients_connect() {
    let server_cfg = Arc::new(Config::builder().psk_server_key(KEY.to_vec()).build().unwrap());
    // The 50 real clients all come from 127.0.0.1 at once: allow them as many handshakes.
    let opts = ListenerOptions::default().limits(10_000, 1_000, 64);
    let listener = Arc::new(Listener::bind_with("0.0.0.0:0".parse().unwrap(), server_cfg, opts).unwrap());
    let port = listener.local_addr().unwrap().port();
    let target: SocketAddr = ([127, 0, 0, 1], port).into();
    let stop = Arc::new(AtomicBool::new(false));

    // The flood: 100,000 ClientHellos (and as much garbage) from 250 loopback addresses
    // (127.0.1.1 - 127.0.1.250: all of 127/8 is loopback), none of which ever answers.
    let ch = client_hello();
    let flood = {
        let stop = stop.clone();
        thread::spawn(move || {
            let sockets: Vec<UdpSocket> =
                (1..=250u8).map(|i| UdpSocket::bind(SocketAddr::from(([127, 0, 1, i], 0))).unwrap()).collect();
            let garbage: Vec<u8> = (0..200u32).map(|i| (i * 31 + 7) as u8).collect();
            let mut sent = 0usize;
            while sent < 100_000 && !stop.load(Ordering::Relaxed) {
                let s = &sockets[sent % sockets.len()];
                let _ = s.send_to(&ch, target);
                let _ = s.send_to(&garbage[..(sent % 200)], target);
                sent += 1;
                if sent % 2000 == 0 {
                    // Give the receive queue a moment; the kernel would drop the excess anyway.
                    thread::yield_now();
                }
            }
            sent
        })
    };

    // The real clients, meanwhile, from 127.0.0.1. Application data is not retransmitted by
    // DTLS and the flood overflows socket buffers, so clients repeat until they hear the echo.
    let acceptor = {
        let listener = listener.clone();
        thread::spawn(move || {
            let mut echoers = Vec::new();
            while echoers.len() < 50 {
                let mut c = listener.accept_timeout(T).expect("accept");
                echoers.push(thread::spawn(move || {
                    let mut buf = [0u8; 64];
                    let mut echoed = 0;
                    while let Ok(n) = c.recv(&mut buf, Some(Duration::from_secs(5))) {
                        c.send(&buf[..n]).unwrap();
                        echoed += 1;
                    }
                    echoed
                }));
            }
            echoers
        })
    };
    let clients: Vec<_> = (0..50)
        .map(|i| {
            thread::spawn(move || {
                let name = format!("real{i}");
                let mut c = Connection::connect(target, client_config(&name), Some(T)).expect("real client");
                let deadline = Instant::now() + T;
                let mut buf = [0u8; 64];
                loop {
                    assert!(Instant::now() < deadline, "{name}: no echo");
                    c.send(name.as_bytes()).unwrap();
                    if let Ok(n) = c.recv(&mut buf, Some(Duration::from_millis(200))) {
                        assert_eq!(&buf[..n], name.as_bytes());
                        break;
                    }
                }
                c
            })
        })
        .collect();
    let clients: Vec<Connection> = clients.into_iter().map(|c| c.join().expect("client")).collect();
    let echoers = acceptor.join().unwrap();
    let sent = flood.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    assert_eq!(sent, 100_000);
    assert_eq!(clients.len(), 50);
    assert_eq!(echoers.len(), 50);
    // Per-peer state exists for the real clients only.
    let stats = listener.stats();
    assert_eq!(stats.half_open, 0, "{stats:?}");
    assert_eq!(stats.established, 50, "{stats:?}");
    assert_eq!((stats.refused, stats.failed, stats.evicted), (0, 0, 0), "{stats:?}");
    drop(clients);
    for e in echoers {
        assert!(e.join().unwrap() >= 1);
    }
}

/// Runs the cookie exchange and sends the second ClientHello, then goes silent.
fn stall(addr: SocketAddr) -> UdpSocket {
    let now = Instant::now();
    let mut proto = rdtls::proto::Connection::client(client_config("staller"), now).unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(addr).unwrap();
    sock.set_read_timeout(Some(T)).unwrap();
    let (mut out, mut buf) = (Vec::new(), vec![0u8; 2048]);
    // Each ClientHello in as many datagrams as it takes (two with a hybrid key share).
    while proto.poll_transmit(&mut out).is_some() {
        sock.send(&out).unwrap();
    }
    let n = sock.recv(&mut buf).unwrap();
    proto.handle_datagram(now, &mut buf[..n]).unwrap();
    while proto.poll_transmit(&mut out).is_some() {
        sock.send(&out).unwrap();
    }
    sock
}

#[test]
fn the_connection_cap_evicts_half_open_handshakes_first() {
    let server_cfg = Arc::new(Config::builder().psk_server_key(KEY.to_vec()).build().unwrap());
    let opts = ListenerOptions::default().limits(3, 10, 10);
    let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server_cfg, opts).unwrap();
    let addr = listener.local_addr().unwrap();
    // One established connection, two stalled handshakes: the cap (3) is full.
    let mut first = Connection::connect(addr, client_config("first"), Some(T)).unwrap();
    let mut first_server = listener.accept_timeout(T).unwrap();
    let _s1 = stall(addr);
    let _s2 = stall(addr);
    let deadline = Instant::now() + T;
    while listener.stats().half_open < 2 {
        assert!(Instant::now() < deadline);
        thread::yield_now();
    }
    // A newcomer evicts the oldest half-open handshake, never the established connection.
    let mut late = Connection::connect(addr, client_config("late"), Some(T)).unwrap();
    let _late_server = listener.accept_timeout(T).unwrap();
    let stats = listener.stats();
    assert_eq!((stats.evicted, stats.half_open, stats.established), (1, 1, 2), "{stats:?}");
    first.send(b"still here").unwrap();
    let mut buf = [0u8; 32];
    let n = first_server.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], b"still here");
    late.send(b"x").unwrap();
}
