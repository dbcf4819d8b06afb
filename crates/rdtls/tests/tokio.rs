//! The async layer over real loopback sockets (feature `tokio`).
#![cfg(feature = "tokio")]

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls::proto::enums::Protocol;
use rdtls::tokio::{Connection, Listener};
use rdtls::{Config, ListenerOptions};

const KEY: &[u8] = b"async test key";
const T: Duration = Duration::from_secs(20);

fn server_config() -> Arc<Config> {
    Arc::new(Config::builder().psk_server_key(KEY.to_vec()).build().unwrap())
}

fn client_config(name: &str) -> Arc<Config> {
    Arc::new(Config::builder().psk(name, KEY.to_vec()).build().unwrap())
}

fn spawn_echo(listener: Arc<Listener>) {
    tokio::spawn(async move {
        while let Ok(mut conn) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                while let Ok(n) = conn.recv_timeout(&mut buf, T).await {
                    if conn.send(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// Sends `msg` and expects it back. DTLS does not retransmit application data, and under this
/// file's load the kernel may drop the message or its echo from a full socket buffer: the
/// client resends as a UDP application would.
async fn expect_echo(c: &mut Connection, msg: &[u8]) {
    let mut buf = [0u8; 128];
    for _ in 0..10 {
        c.send(msg).await.unwrap();
        match c.recv_timeout(&mut buf, Duration::from_secs(2)).await {
            Ok(n) => {
                assert_eq!(&buf[..n], msg);
                return;
            }
            Err(e) if e.kind() == ErrorKind::TimedOut => {}
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no echo after 10 tries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_async_clients() {
    let listener = Arc::new(Listener::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap());
    let addr = listener.local_addr().unwrap();
    spawn_echo(listener.clone());
    let mut tasks = Vec::new();
    for i in 0..200 {
        tasks.push(tokio::spawn(async move {
            let mut c = Connection::connect(addr, client_config(&format!("a{i}")), Some(T)).await.expect("connect");
            expect_echo(&mut c, format!("async hello {i}").as_bytes()).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(listener.stats().failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_timeouts_close_and_per_connection_sockets() {
    let opts = ListenerOptions::default().connection_sockets(true);
    let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server_config(), opts).unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, server) = tokio::join!(Connection::connect(addr, client_config("t"), Some(T)), listener.accept());
    let (mut client, mut server) = (client.unwrap(), server.unwrap());
    assert_eq!(server.local_addr().unwrap(), addr, "its own socket on the listener's port");
    let mut buf = [0u8; 64];
    let start = Instant::now();
    let err = server.recv_timeout(&mut buf, Duration::from_millis(100)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(start.elapsed() >= Duration::from_millis(100));
    client.send(b"after the timeout").await.unwrap();
    let n = server.recv_timeout(&mut buf, T).await.unwrap();
    assert_eq!(&buf[..n], b"after the timeout");
    // Served from another task: connections are Send.
    let served = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).await.unwrap();
        server.send(&buf[..n]).await.unwrap();
        let err = server.recv(&mut buf).await.unwrap_err();
        (err.kind(), server.is_closed())
    });
    client.send(b"echo").await.unwrap();
    let n = client.recv_timeout(&mut buf, T).await.unwrap();
    assert_eq!(&buf[..n], b"echo");
    client.close().await.unwrap();
    let (kind, closed) = served.await.unwrap();
    assert_eq!(kind, ErrorKind::ConnectionReset);
    assert!(closed);
    listener.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_ipv6_and_shutdown_notifies_peers() {
    let listener = Listener::bind("[::1]:0".parse().unwrap(), server_config()).unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, server) = tokio::join!(Connection::connect(addr, client_config("v6"), Some(T)), listener.accept());
    let (mut client, _server) = (client.unwrap(), server.unwrap());
    listener.shutdown().await.unwrap();
    let mut buf = [0u8; 16];
    let err = client.recv_timeout(&mut buf, T).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_accept_and_connect_timeouts_and_a_stalled_handshake() {
    let listener = Arc::new(Listener::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap());
    let addr = listener.local_addr().unwrap();
    // accept with a timeout.
    assert!(tokio::time::timeout(Duration::from_millis(100), listener.accept()).await.is_err());
    // connect with a timeout to a silent port.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = Connection::connect(silent.local_addr().unwrap(), client_config("x"), Some(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    // A client that stops mid-handshake (ClientHello with a valid cookie, then silence).
    let stalled = tokio::task::spawn_blocking(move || {
        let now = Instant::now();
        let mut proto = rdtls::proto::Connection::client(client_config("staller"), now).unwrap();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
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
    })
    .await
    .unwrap();
    while listener.stats().half_open == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    spawn_echo(listener.clone());
    for i in 0..10 {
        let start = Instant::now();
        let mut c = Connection::connect(addr, client_config(&format!("q{i}")), Some(T)).await.unwrap();
        c.send(b"q").await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(c.recv_timeout(&mut buf, T).await.unwrap(), 1);
        assert!(start.elapsed() < Duration::from_secs(1), "delayed by the stalled handshake");
    }
    assert_eq!(listener.stats().half_open, 1);
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_reuseport_workers_and_hand_off() {
    reuseport_workers_and_hand_off(Protocol::Dtls1_2).await;
}

/// With DTLS 1.3 the client sends as soon as its Finished is out: its first message can reach
/// the listening socket before the connection's own socket exists. The listener reads its
/// socket once more before `accept` gets the connection, and the hand-off carries what was
/// queued for it, so nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_reuseport_workers_and_hand_off_dtls13() {
    reuseport_workers_and_hand_off(Protocol::Dtls1_3).await;
}

async fn reuseport_workers_and_hand_off(version: Protocol) {
    let opts = ListenerOptions::default().connection_sockets(true);
    let cfg = Arc::new(
        Config::builder()
            .protocol_versions(version, version)
            .psk_server_key(KEY.to_vec())
            .allow_session_export(true)
            .build()
            .unwrap(),
    );
    let workers = Listener::bind_workers("127.0.0.1:0".parse().unwrap(), cfg.clone(), opts, 3).unwrap();
    let addr = workers[0].local_addr().unwrap();
    let counts: Vec<_> = workers
        .into_iter()
        .map(|w| {
            let cfg = cfg.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_millis(1500), w.accept()).await {
                    // Hand each connection to another task through its descriptor and state.
                    let (fd, state) = conn.fly_away().unwrap();
                    let mut moved = Connection::from_fd(fd, &state, cfg.clone()).unwrap();
                    tokio::spawn(async move {
                        let mut buf = [0u8; 64];
                        let len = moved.recv_timeout(&mut buf, T).await.unwrap();
                        moved.send(&buf[..len]).await.unwrap();
                        // A resent message (see below) is echoed too, until the client is gone.
                        while let Ok(len) = moved.recv_timeout(&mut buf, Duration::from_secs(3)).await {
                            let _ = moved.send(&buf[..len]).await;
                        }
                    });
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut clients = Vec::new();
    for i in 0..30 {
        clients.push(tokio::spawn(async move {
            let config = Arc::new(
                Config::builder()
                    .protocol_versions(version, version)
                    .psk(format!("r{i}"), KEY.to_vec())
                    .build()
                    .unwrap(),
            );
            let mut c = Connection::connect(addr, config, Some(T)).await.unwrap();
            assert_eq!(c.protocol(), Some(version));
            expect_echo(&mut c, format!("m{i}").as_bytes()).await;
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    let mut per_worker = Vec::new();
    for c in counts {
        per_worker.push(c.await.unwrap());
    }
    assert_eq!(per_worker.iter().sum::<usize>(), 30);
    assert!(per_worker.iter().all(|&n| n > 0), "{per_worker:?}");
}
