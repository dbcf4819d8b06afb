//! The socket layer over real loopback sockets: concurrency, limits, timeouts, close, IPv6,
//! socket options, per-connection sockets, hand-off across threads, SO_REUSEPORT workers.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rdtls::{Config, Connection, Listener, ListenerOptions, SocketOptions};

const KEY: &[u8] = b"socket layer test key";
const T: Duration = Duration::from_secs(20);

fn server_config() -> Arc<Config> {
    Arc::new(Config::builder().psk_server_key(KEY.to_vec()).build().unwrap())
}

fn client_config(name: &str) -> Arc<Config> {
    Arc::new(Config::builder().psk(name, KEY.to_vec()).build().unwrap())
}

/// An echo server: accepts until stopped, one thread per connection.
struct Echo {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Echo {
    fn start(listener: Arc<Listener>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept_timeout(Duration::from_millis(100)) {
                    Ok(mut conn) => {
                        thread::spawn(move || {
                            let mut buf = [0u8; 2048];
                            while let Ok(n) = conn.recv(&mut buf, Some(T)) {
                                if conn.send(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn echo_once(addr: SocketAddr, name: &str) {
    let mut c = Connection::connect(addr, client_config(name), Some(T)).expect("connect");
    let msg = format!("hello from {name}");
    let mut buf = [0u8; 2048];
    // Application data is not retransmitted by DTLS: under this load the kernel may drop a
    // datagram from a full socket buffer (the handshake recovers; a message does not), so the
    // client resends its message as a UDP application would. Each echo is the message itself.
    for _ in 0..10 {
        c.send(msg.as_bytes()).unwrap();
        match c.recv(&mut buf, Some(Duration::from_secs(2))) {
            Ok(n) => {
                assert_eq!(&buf[..n], msg.as_bytes());
                return;
            }
            Err(e) if e.kind() == ErrorKind::TimedOut => {}
            Err(e) => panic!("{name}: {e}"),
        }
    }
    panic!("{name}: no echo after 10 tries");
}

#[test]
fn two_hundred_concurrent_clients() {
    let listener = Arc::new(Listener::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap());
    let addr = listener.local_addr().unwrap();
    let _echo = Echo::start(listener.clone());
    let clients: Vec<_> = (0..200).map(|i| thread::spawn(move || echo_once(addr, &format!("c{i}")))).collect();
    for c in clients {
        c.join().expect("client");
    }
    assert_eq!(listener.stats().failed, 0);
}

/// Runs the cookie exchange and sends the second ClientHello, then goes silent: the listener
/// now holds a half-open handshake for this socket's address.
fn stall(addr: SocketAddr, from: &str) -> UdpSocket {
    let now = Instant::now();
    let mut proto = rdtls::proto::Connection::client(client_config("staller"), now).unwrap();
    let sock = UdpSocket::bind(from).unwrap();
    sock.connect(addr).unwrap();
    sock.set_read_timeout(Some(T)).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
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

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn stalled_handshakes_delay_nobody_and_the_limits_hold() {
    let opts = ListenerOptions::default().limits(100, 3, 2);
    let listener = Arc::new(Listener::bind_with("0.0.0.0:0".parse().unwrap(), server_config(), opts).unwrap());
    let port = listener.local_addr().unwrap().port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let _echo = Echo::start(listener.clone());
    // Two half-open handshakes from 127.0.0.1: the per-address cap; a third is refused.
    let _a = stall(addr, "127.0.0.1:0");
    let _b = stall(addr, "127.0.0.1:0");
    wait_until("two half-open handshakes", || listener.stats().half_open == 2);
    let _c = stall(addr, "127.0.0.1:0");
    wait_until("a refusal", || listener.stats().refused == 1);
    // A third address makes the global half-open cap (3) full.
    let _d = stall(addr, "127.0.0.3:0");
    wait_until("three half-open handshakes", || listener.stats().half_open == 3);
    let _e = stall(addr, "127.0.0.4:0");
    wait_until("a second refusal", || listener.stats().refused == 2);
    assert_eq!(listener.stats().half_open, 3);
    assert_eq!(listener.stats().established, 0);
}

#[test]
fn a_stalled_handshake_does_not_delay_others() {
    let listener = Arc::new(Listener::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap());
    let addr = listener.local_addr().unwrap();
    let _echo = Echo::start(listener.clone());
    let _stalled = stall(addr, "127.0.0.1:0");
    wait_until("the stalled handshake", || listener.stats().half_open == 1);
    for i in 0..10 {
        let start = Instant::now();
        echo_once(addr, &format!("quick{i}"));
        assert!(start.elapsed() < Duration::from_secs(1), "client {i} took {:?}", start.elapsed());
    }
    assert_eq!(listener.stats().half_open, 1, "the stalled one is still pending");
}

#[test]
fn timeouts_fire_and_lose_nothing() {
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap();
    let addr = listener.local_addr().unwrap();
    // accept with a timeout and nobody connecting.
    let start = Instant::now();
    let err = listener.accept_timeout(Duration::from_millis(100)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(start.elapsed() >= Duration::from_millis(100));
    // connect with a timeout to a port where nothing answers.
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    let err = Connection::connect(dead.local_addr().unwrap(), client_config("x"), Some(Duration::from_millis(300)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(start.elapsed() < Duration::from_secs(2));
    // recv with a timeout loses nothing: the message sent after the timeout is received.
    let mut client = Connection::connect(addr, client_config("t"), Some(T)).unwrap();
    let mut server = listener.accept_timeout(T).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(server.recv(&mut buf, Some(Duration::from_millis(50))).unwrap_err().kind(), ErrorKind::TimedOut);
    assert_eq!(client.recv(&mut buf, Some(Duration::from_millis(50))).unwrap_err().kind(), ErrorKind::TimedOut);
    client.send(b"after the timeout").unwrap();
    let n = server.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], b"after the timeout");
    server.send(b"back").unwrap();
    // pending() never waits: poll it until the datagram has crossed loopback.
    wait_until("the reply", || client.pending().unwrap() > 0);
    assert_eq!(client.pending().unwrap(), 4);
    let n = client.recv(&mut buf, Some(Duration::ZERO)).unwrap();
    assert_eq!(&buf[..n], b"back");
    assert_eq!(client.pending().unwrap(), 0);
    // send with a timeout.
    assert_eq!(client.send_timeout(b"s", Some(Duration::from_millis(100))).unwrap(), 1);
}

#[test]
fn close_is_a_remote_close_for_the_peer() {
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut client = Connection::connect(addr, client_config("closer"), Some(T)).unwrap();
    let mut server = listener.accept_timeout(T).unwrap();
    client.send(b"last words").unwrap();
    client.close().unwrap();
    let mut buf = [0u8; 64];
    let n = server.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], b"last words", "data before close_notify is delivered");
    let err = server.recv(&mut buf, Some(T)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(server.is_closed());
    assert!(server.send(b"x").is_err());
    assert!(server.take_error().is_some());
}

#[test]
fn ipv6_loopback() {
    let listener = Listener::bind("[::1]:0".parse().unwrap(), server_config()).unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = Arc::new(listener);
    let _echo = Echo::start(listener);
    echo_once(addr, "v6");
}

#[test]
fn socket_options_read_back() {
    let opts = SocketOptions::default().ttl(17).send_buffer_size(64 * 1024).recv_buffer_size(128 * 1024);
    let listener = Listener::bind_with(
        "127.0.0.1:0".parse().unwrap(),
        server_config(),
        ListenerOptions::default().socket(opts.clone()),
    )
    .unwrap();
    let info = listener.socket_info().unwrap();
    assert_eq!(info.ttl, 17);
    // Linux doubles the buffer sizes it is given (bookkeeping overhead).
    assert!(info.send_buffer_size >= 64 * 1024, "{info:?}");
    assert!(info.recv_buffer_size >= 128 * 1024, "{info:?}");
    let v6 = Listener::bind_with(
        "[::1]:0".parse().unwrap(),
        server_config(),
        ListenerOptions::default().socket(SocketOptions::default().ipv6_only(true).ttl(9)),
    )
    .unwrap();
    let info = v6.socket_info().unwrap();
    assert_eq!((info.ipv6_only, info.ttl), (Some(true), 9));
    // The device option (root only on Linux; tests run as root).
    let lo = Listener::bind_with(
        "127.0.0.1:0".parse().unwrap(),
        server_config(),
        ListenerOptions::default().socket(SocketOptions::default().bind_device("lo")),
    )
    .unwrap();
    assert_eq!(lo.socket_info().unwrap().bind_device.as_deref(), Some("lo"));
    // And back to every interface (EdgerOS bindToDevice() with no argument).
    lo.set_socket_options(&SocketOptions::default().unbind_device()).unwrap();
    assert_eq!(lo.socket_info().unwrap().bind_device, None);
    // Out-of-range values are clear errors.
    for bad in [
        SocketOptions::default().send_buffer_size(512),
        SocketOptions::default().recv_buffer_size(17 * 1024 * 1024),
        SocketOptions::default().ttl(0),
    ] {
        let err = Listener::bind_with(
            "127.0.0.1:0".parse().unwrap(),
            server_config(),
            ListenerOptions::default().socket(bad),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("between"), "{err}");
    }
    // A client's options, and changing them later.
    let client_opts = SocketOptions::default().ttl(33);
    let l = Listener::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap();
    let c = Connection::connect_with(l.local_addr().unwrap(), None, client_config("o"), &client_opts, Some(T)).unwrap();
    assert_eq!(c.socket_info().unwrap().ttl, 33);
    c.set_socket_options(&SocketOptions::default().ttl(44)).unwrap();
    assert_eq!(c.socket_info().unwrap().ttl, 44);
}

#[test]
fn per_connection_sockets_move_across_threads() {
    let opts = ListenerOptions::default().connection_sockets(true);
    let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server_config(), opts).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut clients: Vec<Connection> =
        (0..3).map(|i| Connection::connect(addr, client_config(&format!("own{i}")), Some(T)).unwrap()).collect();
    let mut workers = Vec::new();
    for _ in 0..3 {
        let mut conn = listener.accept_timeout(T).unwrap();
        // Its own socket, on the listener's address and port, connected to the peer.
        assert_eq!(conn.local_addr().unwrap(), addr);
        // Handed to a worker thread (EdgerOS flyAway/createByFd within a process).
        workers.push(thread::spawn(move || {
            let mut buf = [0u8; 64];
            let n = conn.recv(&mut buf, Some(T)).unwrap();
            conn.send(&buf[..n]).unwrap();
            conn.peer_addr().unwrap()
        }));
    }
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(format!("ping {i}").as_bytes()).unwrap();
        let mut buf = [0u8; 64];
        let n = c.recv(&mut buf, Some(T)).unwrap();
        assert_eq!(&buf[..n], format!("ping {i}").as_bytes());
    }
    let mut peers: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let mut expected: Vec<_> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
    peers.sort();
    expected.sort();
    assert_eq!(peers, expected);
}

#[test]
fn reuseport_workers_all_serve() {
    let workers =
        Listener::bind_workers("127.0.0.1:0".parse().unwrap(), server_config(), ListenerOptions::default(), 4).unwrap();
    let addr = workers[0].local_addr().unwrap();
    assert!(workers.iter().all(|w| w.local_addr().unwrap() == addr));
    let counts: Vec<_> = workers
        .into_iter()
        .map(|w| {
            thread::spawn(move || {
                let mut n = 0;
                while let Ok(mut c) = w.accept_timeout(Duration::from_millis(1500)) {
                    let mut buf = [0u8; 64];
                    let len = c.recv(&mut buf, Some(T)).unwrap();
                    c.send(&buf[..len]).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let clients: Vec<_> = (0..64).map(|i| thread::spawn(move || echo_once(addr, &format!("w{i}")))).collect();
    for c in clients {
        c.join().unwrap();
    }
    let counts: Vec<usize> = counts.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(counts.iter().sum::<usize>(), 64);
    assert!(counts.iter().all(|&n| n > 0), "every worker serves: {counts:?}");
}

#[test]
fn idle_connections_are_closed_and_shutdown_notifies_every_peer() {
    let opts = ListenerOptions::default().idle_timeout(Some(Duration::from_millis(300)));
    let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server_config(), opts).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut idle = Connection::connect(addr, client_config("idle"), Some(T)).unwrap();
    let _server_side = listener.accept_timeout(T).unwrap();
    let mut buf = [0u8; 16];
    let err = idle.recv(&mut buf, Some(T)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "the server closed the idle connection: {err}");

    let mut listener = Listener::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut a = Connection::connect(addr, client_config("a"), Some(T)).unwrap();
    let mut b = Connection::connect(addr, client_config("b"), Some(T)).unwrap();
    let accepted = listener.accept_timeout(T).unwrap();
    listener.shutdown().unwrap();
    for c in [&mut a, &mut b] {
        assert_eq!(c.recv(&mut buf, Some(T)).unwrap_err().kind(), ErrorKind::ConnectionReset);
    }
    assert!(accepted.is_closed());
    assert_eq!(listener.accept_timeout(Duration::from_millis(10)).unwrap_err().kind(), ErrorKind::NotConnected);
}

#[test]
fn dual_stack_listener_serves_ipv4_and_ipv6() {
    let opts = ListenerOptions::default().socket(SocketOptions::default().ipv6_only(false));
    let listener = Arc::new(Listener::bind_with("[::]:0".parse().unwrap(), server_config(), opts).unwrap());
    let port = listener.local_addr().unwrap().port();
    let _echo = Echo::start(listener.clone());
    echo_once(([127, 0, 0, 1], port).into(), "via-v4");
    echo_once(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)), "via-v6");
}

/// Californium CVE-2020-27222: a failed handshake leaves nothing stuck; the same address
/// connects right after, and so does another.
#[test]
fn a_failed_handshake_leaves_no_stuck_state() {
    let listener = Arc::new(Listener::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap());
    let addr = listener.local_addr().unwrap();
    let _echo = Echo::start(listener.clone());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let from = sock.local_addr().unwrap();
    sock.connect(addr).unwrap();
    // DTLS 1.3 (the default) refuses the wrong key at the first ClientHello (its PSK binder,
    // decrypt_error); DTLS 1.2 at the client's Finished (bad_record_mac).
    let wrong = Arc::new(Config::builder().psk("wrong", b"not the key".to_vec()).build().unwrap());
    let err = Connection::handshake(sock, wrong, Some(T)).unwrap_err();
    assert!(err.to_string().contains("decrypt_error"), "{err}");
    wait_until("the failure to be counted", || listener.stats().failed == 1);
    let sock = UdpSocket::bind(from).unwrap();
    sock.connect(addr).unwrap();
    let wrong12 = Config::builder().protocol_versions(rdtls_proto::Protocol::Dtls1_2, rdtls_proto::Protocol::Dtls1_2);
    let wrong12 = Arc::new(wrong12.psk("wrong", b"not the key".to_vec()).build().unwrap());
    let err = Connection::handshake(sock, wrong12, Some(T)).unwrap_err();
    assert!(err.to_string().contains("bad_record_mac"), "{err}");
    wait_until("the failure to be counted", || listener.stats().failed == 2);
    // The same address and port, now with the right key.
    let sock = UdpSocket::bind(from).unwrap();
    sock.connect(addr).unwrap();
    let mut again = Connection::handshake(sock, client_config("right"), Some(T)).unwrap();
    again.send(b"ok").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(again.recv(&mut buf, Some(T)).unwrap(), 2);
    echo_once(addr, "another");
}

/// With per-connection sockets, what a client sends right after its handshake may reach the
/// listener's socket before the connection's own socket exists; it is not lost.
#[test]
fn per_connection_sockets_lose_nothing_sent_right_after_the_handshake() {
    let opts = ListenerOptions::default().connection_sockets(true);
    let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server_config(), opts).unwrap();
    let addr = listener.local_addr().unwrap();
    for round in 0..30 {
        let mut client = Connection::connect(addr, client_config(&format!("early{round}")), Some(T)).unwrap();
        client.send(b"immediately").unwrap();
        let mut server = listener.accept_timeout(T).unwrap();
        let mut buf = [0u8; 32];
        let n = server.recv(&mut buf, Some(Duration::from_secs(5))).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(&buf[..n], b"immediately");
    }
}

#[cfg(unix)]
#[test]
fn descriptors_and_live_option_changes() {
    use std::os::fd::AsRawFd;
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap();
    assert!(listener.as_raw_fd() >= 0);
    listener.set_socket_options(&SocketOptions::default().ttl(21)).unwrap();
    assert_eq!(listener.socket_info().unwrap().ttl, 21);
    let c = Connection::connect(listener.local_addr().unwrap(), client_config("fd"), Some(T)).unwrap();
    let s = listener.accept_timeout(T).unwrap();
    assert!(
        c.as_raw_fd() >= 0 && s.as_raw_fd() == listener.as_raw_fd(),
        "shared-socket connections use the listener's"
    );
}

/// The serving thread wakes `accept` callers once per batch of datagrams, and only when some
/// are blocked: every blocked caller still gets its connection, and a connection that arrives
/// while nobody waits is there for the next call.
#[test]
fn every_blocked_accept_gets_a_connection() {
    let listener = Arc::new(Listener::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap());
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let acceptors: Vec<_> = (0..4)
        .map(|_| {
            let (listener, tx) = (listener.clone(), tx.clone());
            thread::spawn(move || {
                let conn = listener.accept().expect("accept");
                tx.send(conn.peer_addr().unwrap()).unwrap();
                conn
            })
        })
        .collect();
    // The clients connect at once, so that several connections may complete in one batch.
    let clients: Vec<_> = (0..4)
        .map(|i| thread::spawn(move || Connection::connect(addr, client_config(&format!("blocked{i}")), Some(T))))
        .collect();
    let clients: Vec<Connection> = clients.into_iter().map(|c| c.join().unwrap().expect("connect")).collect();
    let mut peers: Vec<SocketAddr> = (0..4).map(|_| rx.recv_timeout(T).expect("an accept returned")).collect();
    let mut expected: Vec<SocketAddr> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
    peers.sort();
    expected.sort();
    assert_eq!(peers, expected, "each blocked accept took a different client");
    // Kept open: the listener counts them established.
    let _accepted: Vec<Connection> = acceptors.into_iter().map(|a| a.join().unwrap()).collect();
    // Nobody waits now: the next connection is queued (the listener counts it established
    // once it is), and a later accept takes it.
    let late = Connection::connect(addr, client_config("late"), Some(T)).unwrap();
    let deadline = Instant::now() + T;
    while listener.stats().established < 5 {
        assert!(Instant::now() < deadline, "the late connection was never queued");
        thread::yield_now();
    }
    let conn = listener.try_accept().unwrap().expect("queued while nobody waited");
    assert_eq!(conn.peer_addr().unwrap(), late.local_addr().unwrap());
}
