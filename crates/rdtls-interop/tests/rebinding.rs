//! A client behind a NAT that rebinds (the fault proxy's rebinding mode) keeps its connection to
//! a `Listener`, blocking and tokio, thanks to Connection ID (RFC 9146): the listener routes
//! its records by ID from the new address, the connection follows on its newest authenticated
//! record, the application's handle goes on working, and no new handshake happens. DTLS 1.2
//! and 1.3, a socket per connection and not, with return routability checks (RFC 9853: the
//! connection follows once the client answered a challenge at its new address) and without.

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls::{Config, Connection, Listener, ListenerOptions};
use rdtls_interop::proxy::{FaultProxy, Faults};
use rdtls_proto::Protocol;

const KEY: &[u8] = b"0123456789abcdef";
const T: Duration = Duration::from_secs(10);
/// Messages before the rebinding, and after it.
const BEFORE: usize = 20;
const AFTER: usize = 100;

/// Both versions: DTLS 1.2 (RFC 9146) and 1.3 (RFC 9147 §9).
const VERSIONS: [Protocol; 2] = [Protocol::Dtls1_2, Protocol::Dtls1_3];

fn only(version: Protocol) -> rdtls_proto::ConfigBuilder {
    Config::builder().protocol_versions(version, version)
}

/// One run: the version, a socket per connection or not, return routability checks or not.
#[derive(Clone, Copy, Debug)]
struct Run {
    version: Protocol,
    own_sockets: bool,
    rrc: bool,
}

fn runs() -> impl Iterator<Item = Run> {
    VERSIONS.into_iter().flat_map(|version| {
        [(false, false), (true, false), (false, true), (true, true)].map(|(own_sockets, rrc)| Run {
            version,
            own_sockets,
            rrc,
        })
    })
}

fn server_config(run: Run) -> Arc<Config> {
    // Both versions, as by default: each client gets its own.
    let b = Config::builder().psk_server_key(KEY.to_vec()).connection_id(8);
    Arc::new(b.return_routability_check(run.rrc).build().unwrap())
}

fn client_config(run: Run) -> Arc<Config> {
    let b = only(run.version).psk("roamer", KEY.to_vec()).connection_id(8);
    Arc::new(b.return_routability_check(run.rrc).build().unwrap())
}

/// Sends `msg` until its echo comes back (loopback UDP can drop under load; DTLS does not
/// retransmit application data); returns how many times it was sent. Echoes of earlier
/// messages are skipped.
fn echo(client: &mut Connection, msg: &[u8]) -> usize {
    let mut buf = [0u8; 256];
    for sent in 1..=20 {
        client.send(msg).unwrap();
        let until = Instant::now() + Duration::from_millis(500);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match client.recv(&mut buf, Some(left.max(Duration::from_millis(1)))) {
                Ok(n) if &buf[..n] == msg => return sent,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => break,
                Err(e) => panic!("client receive failed: {e}"),
            }
        }
    }
    panic!("no echo of {:?}", String::from_utf8_lossy(msg));
}

/// What the server saw: the distinct messages, and the peer address with each.
#[derive(Default)]
struct Seen {
    messages: BTreeSet<Vec<u8>>,
    peers: Vec<SocketAddr>,
}

/// The client's side: `BEFORE` messages, a rebinding, `AFTER` more, then `last`. Returns the
/// server's view of the client before and after the rebinding.
fn run_client(proxy: &FaultProxy, run: Run) -> (SocketAddr, SocketAddr) {
    let mut client = Connection::connect(proxy.addr(), client_config(run), Some(T)).unwrap();
    assert_eq!(client.connection().protocol(), Some(run.version));
    assert_eq!(client.connection().return_routability_check(), run.rrc);
    assert_eq!(client.connection().connection_id().map(<[u8]>::len), Some(8), "a CID was negotiated");
    for i in 0..BEFORE {
        echo(&mut client, format!("before {i}").as_bytes());
    }
    let old = proxy.client_side().unwrap();
    let new = proxy.rebind().unwrap();
    // The datagram that tells of the move is served, not dropped (one datagram on an idle
    // loopback is not lost).
    let sent = echo(&mut client, b"after 0");
    if !run.rrc {
        assert_eq!(sent, 1, "the first message after the rebinding was lost");
    }
    // With return routability checks, the listener sends nothing but its challenge to the new
    // address until the client answers it: the first echo may have gone to the old one.
    for i in 1..AFTER {
        echo(&mut client, format!("after {i}").as_bytes());
    }
    echo(&mut client, b"last");
    (old, new)
}

fn check(seen: &Seen, (old, new): (SocketAddr, SocketAddr), stats: rdtls::ListenerStats, proxy: &FaultProxy) {
    assert_ne!(old, new);
    let expected: BTreeSet<Vec<u8>> = (0..BEFORE)
        .map(|i| format!("before {i}").into_bytes())
        .chain((0..AFTER).map(|i| format!("after {i}").into_bytes()))
        .chain([b"last".to_vec()])
        .collect();
    assert_eq!(seen.messages, expected, "every message reached the one connection");
    assert_eq!(seen.peers.first(), Some(&old));
    assert_eq!(seen.peers.last(), Some(&new), "the connection's peer is the new address");
    let moves = seen.peers.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(moves, 1, "the peer changed once: {:?}", seen.peers);
    assert_eq!(stats.handshakes, 1, "no new handshake: {stats:?}");
    assert_eq!(stats.moved, 1, "{stats:?}");
    assert_eq!(proxy.stats().rebinds, 1);
}

#[test]
fn a_listener_keeps_the_connection_of_a_client_behind_a_rebinding_nat() {
    for run in runs() {
        let own_sockets = run.own_sockets;
        // The observer hears of the move.
        let moves = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen_moves = moves.clone();
        let observer = rdtls::Observer::new(move |o| {
            if let rdtls::Observed::Moved { from, to } = o {
                seen_moves.lock().unwrap().push((*from, *to));
            }
        });
        let socket = rdtls::SocketOptions::default().observer(observer);
        let options = ListenerOptions::default().connection_sockets(own_sockets).socket(socket);
        let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server_config(run), options).unwrap();
        let proxy = FaultProxy::start(listener.local_addr().unwrap(), Faults::none(), Faults::none(), 1);
        let client = std::thread::scope(|s| {
            let client = s.spawn(|| run_client(&proxy, run));
            let mut server = listener.accept_timeout(T).unwrap();
            assert_eq!(server.connection().return_routability_check(), run.rrc);
            let mut seen = Seen::default();
            let mut buf = [0u8; 256];
            loop {
                let n = server.recv(&mut buf, Some(T)).unwrap();
                seen.messages.insert(buf[..n].to_vec());
                seen.peers.push(server.peer_addr().unwrap());
                server.send(&buf[..n]).unwrap();
                assert_eq!(listener.connection_count(), 1, "own sockets: {own_sockets}");
                if &buf[..n] == b"last" {
                    break;
                }
            }
            (client.join().unwrap(), seen)
        });
        let (addrs, seen) = client;
        check(&seen, addrs, listener.stats(), &proxy);
        assert_eq!(*moves.lock().unwrap(), [addrs], "the observer saw the move: {run:?}");
    }
}

#[test]
fn a_tokio_listener_keeps_the_connection_of_a_client_behind_a_rebinding_nat() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for run in runs() {
        let own_sockets = run.own_sockets;
        let options = ListenerOptions::default().connection_sockets(own_sockets);
        let (listener, proxy) = runtime.block_on(async {
            let listener =
                rdtls::tokio::Listener::bind_with("127.0.0.1:0".parse().unwrap(), server_config(run), options).unwrap();
            let proxy = FaultProxy::start(listener.local_addr().unwrap(), Faults::none(), Faults::none(), 2);
            (listener, proxy)
        });
        let (addrs, seen) = std::thread::scope(|s| {
            let client = s.spawn(|| run_client(&proxy, run));
            let seen = runtime.block_on(async {
                let mut server = tokio::time::timeout(T, listener.accept()).await.unwrap().unwrap();
                let mut seen = Seen::default();
                let mut buf = [0u8; 256];
                loop {
                    let n = tokio::time::timeout(T, server.recv(&mut buf)).await.unwrap().unwrap();
                    seen.messages.insert(buf[..n].to_vec());
                    seen.peers.push(server.peer_addr().unwrap());
                    server.send(&buf[..n]).await.unwrap();
                    assert_eq!(listener.connection_count(), 1, "own sockets: {own_sockets}");
                    if &buf[..n] == b"last" {
                        break;
                    }
                }
                seen
            });
            (client.join().unwrap(), seen)
        });
        check(&seen, addrs, listener.stats(), &proxy);
    }
}
