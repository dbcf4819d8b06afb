//! The async layer over real loopback sockets (feature `tokio`).
#![cfg(feature = "tokio")]

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dtls::tokio::{Connection, Listener};
use dtls::{Config, ListenerOptions};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_async_clients() {
    let listener = Arc::new(Listener::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap());
    let addr = listener.local_addr().unwrap();
    spawn_echo(listener.clone());
    let mut tasks = Vec::new();
    for i in 0..200 {
        tasks.push(tokio::spawn(async move {
            let mut c = Connection::connect(addr, client_config(&format!("a{i}")), Some(T)).await.expect("connect");
            let msg = format!("async hello {i}");
            c.send(msg.as_bytes()).await.unwrap();
            let mut buf = [0u8; 128];
            let n = c.recv_timeout(&mut buf, T).await.unwrap();
            assert_eq!(&buf[..n], msg.as_bytes());
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
