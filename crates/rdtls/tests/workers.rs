//! `SO_REUSEPORT` workers that route by connection ID: 200 clients handshake with two workers,
//! then each goes on from a new port (a NAT rebinding). The kernel spreads the new addresses
//! over the workers without regard to who serves whom; a worker that reads another's datagram
//! hands it over in-process, and every connection follows its peer. None is lost, none
//! handshakes again.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rdtls::{Config, Listener, ListenerOptions};
use rdtls_proto::{Connection as Proto, Protocol};

const KEY: &[u8] = b"0123456789abcdef";
const T: Duration = Duration::from_secs(20);
const CLIENTS: usize = 200;
const AFTER: usize = 3;

fn dtls12() -> rdtls_proto::ConfigBuilder {
    Config::builder().protocol_versions(Protocol::Dtls1_2, Protocol::Dtls1_2)
}

fn flush(client: &mut Proto, socket: &UdpSocket, to: SocketAddr) {
    let mut tx = Vec::new();
    while client.poll_transmit(&mut tx).is_some() {
        socket.send_to(&tx, to).unwrap();
    }
}

fn handshake(client: &mut Proto, socket: &UdpSocket, to: SocketAddr) {
    let deadline = Instant::now() + T;
    let mut buf = vec![0u8; 4096];
    socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    while !client.is_established() {
        assert!(Instant::now() < deadline, "no handshake");
        flush(client, socket, to);
        match socket.recv(&mut buf) {
            Ok(n) => {
                client.handle_datagram(Instant::now(), &mut buf[..n]).unwrap();
            }
            Err(_) => client.handle_timeout(Instant::now()).unwrap(),
        }
    }
    flush(client, socket, to);
}

/// Sends `message` from `socket` until its echo comes back there (loopback UDP may drop under
/// load, and DTLS does not retransmit application data); returns how many times it was sent.
fn echo(client: &mut Proto, socket: &UdpSocket, to: SocketAddr, message: &[u8]) -> usize {
    let mut buf = vec![0u8; 4096];
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    for sent in 1..=50 {
        let mut record = Vec::new();
        client.send(message, &mut record).unwrap();
        socket.send_to(&record, to).unwrap();
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            assert_eq!(from, to, "the answer comes from the listener's address");
            let received = client.handle_datagram(Instant::now(), &mut buf[..n]).unwrap();
            if received.iter().any(|m| m == message) {
                return sent;
            }
        }
    }
    panic!("no echo of {:?}", String::from_utf8_lossy(message));
}

/// What one server-side connection saw.
#[derive(Debug)]
struct Served {
    worker: usize,
    messages: BTreeSet<Vec<u8>>,
    last_peer: SocketAddr,
}

#[test]
fn two_workers_keep_two_hundred_rebinding_connections() {
    let config = Arc::new(dtls12().psk_server_key(KEY.to_vec()).connection_id(8).build().unwrap());
    let workers =
        Listener::bind_workers("127.0.0.1:0".parse().unwrap(), config, ListenerOptions::default(), 2).unwrap();
    let addr = workers[0].local_addr().unwrap();
    let workers = Arc::new(workers);
    let accepted = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(Mutex::new(Vec::new()));
    let acceptors: Vec<_> = (0..2)
        .map(|w| {
            let (workers, accepted, served) = (workers.clone(), accepted.clone(), served.clone());
            thread::spawn(move || {
                let mut echoers = Vec::new();
                while accepted.load(Ordering::SeqCst) < CLIENTS {
                    let Ok(mut conn) = workers[w].accept_timeout(Duration::from_millis(50)) else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let served = served.clone();
                    echoers.push(thread::spawn(move || {
                        let mut messages = BTreeSet::new();
                        let mut buf = [0u8; 64];
                        loop {
                            let n = conn.recv(&mut buf, Some(T)).unwrap();
                            messages.insert(buf[..n].to_vec());
                            conn.send(&buf[..n]).unwrap();
                            if buf[..n].ends_with(b"last") {
                                break;
                            }
                        }
                        let last_peer = conn.peer_addr().unwrap();
                        // Stays open until every client is done: answers to resent messages.
                        while conn.recv(&mut buf, Some(Duration::from_millis(300))).is_ok() {}
                        lock_push(&served, Served { worker: w, messages, last_peer });
                    }));
                }
                for e in echoers {
                    e.join().unwrap();
                }
            })
        })
        .collect();

    let client_cfg = Arc::new(dtls12().psk("roamer", KEY.to_vec()).connection_id(0).build().unwrap());
    let mut moved_to = Vec::new();
    let mut resent = 0;
    for i in 0..CLIENTS {
        let mut client = Proto::client(client_cfg.clone(), Instant::now()).unwrap();
        let before = UdpSocket::bind("127.0.0.1:0").unwrap();
        handshake(&mut client, &before, addr);
        echo(&mut client, &before, addr, format!("{i} before").as_bytes());
        let after = UdpSocket::bind("127.0.0.1:0").unwrap();
        for k in 0..AFTER {
            resent += echo(&mut client, &after, addr, format!("{i} after {k}").as_bytes()) - 1;
        }
        echo(&mut client, &after, addr, format!("{i} last").as_bytes());
        moved_to.push(after.local_addr().unwrap());
    }
    for a in acceptors {
        a.join().unwrap();
    }
    // The datagram that tells of the move is served at once, not dropped: a resend is a rare
    // loss on a loaded machine, not the rule.
    assert!(resent <= CLIENTS / 20, "{resent} messages after a move needed resending");

    let served = std::mem::take(&mut *served.lock().unwrap());
    assert_eq!(served.len(), CLIENTS);
    for s in &served {
        let i: usize = String::from_utf8_lossy(s.messages.first().unwrap()).split(' ').next().unwrap().parse().unwrap();
        let expected: BTreeSet<Vec<u8>> = [format!("{i} before"), format!("{i} last")]
            .into_iter()
            .chain((0..AFTER).map(|k| format!("{i} after {k}")))
            .map(String::into_bytes)
            .collect();
        assert_eq!(s.messages, expected, "worker {}", s.worker);
        assert_eq!(s.last_peer, moved_to[i], "connection {i} follows its client");
    }
    let stats: Vec<_> = workers.iter().map(Listener::stats).collect();
    let sum = |f: fn(&rdtls::ListenerStats) -> usize| stats.iter().map(f).sum::<usize>();
    assert_eq!(stats.iter().map(|s| s.handshakes).sum::<u64>(), CLIENTS as u64, "no second handshake: {stats:?}");
    assert_eq!(sum(|s| s.moved), CLIENTS, "{stats:?}");
    assert!(stats.iter().all(|s| s.handshakes > 0), "both workers serve: {stats:?}");
    // The kernel picks a worker by address: about half the new addresses reach the other one.
    assert!(sum(|s| s.handed_off) >= CLIENTS / 10, "handed over: {stats:?}");
}

fn lock_push(v: &Mutex<Vec<Served>>, s: Served) {
    v.lock().unwrap().push(s);
}
