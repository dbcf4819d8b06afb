//! Batched datagram I/O on the async connection (feature `tokio`) over real loopback sockets:
//! `send_batch(..).await`/`recv_batch(..).await` in every `Batching` mode, with sockets of the
//! connection's own and with the listener's shared socket.
//!
//! Loopback UDP drops under overload, so senders are paced by an application-level
//! acknowledgement per batch: nothing may be lost, and every test checks that everything
//! arrived exactly once, in order, byte for byte.
#![cfg(feature = "tokio")]

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls::tokio::{Connection, Listener};
use rdtls::udp::Batching;
use rdtls::ListenerOptions;

mod batching;
use batching::*;

const T: Duration = Duration::from_secs(10);
const MODES: [Batching; 3] = [Batching::Off, Batching::Mmsg, Batching::Offload];

/// A listener on `ip`, the server side of one connection and its client, both batching in
/// `mode`. `own`: the server connection gets its own socket; else it shares the listener's.
async fn pair(ip: &str, own: bool, mode: Batching) -> (Listener, Connection, Connection) {
    let options = ListenerOptions::default().connection_sockets(own);
    let listener = Listener::bind_with(format!("{ip}:0").parse().unwrap(), server_config(), options).unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, server) =
        tokio::join!(Connection::connect(addr, client_config("tokio-batch"), TIMEOUT), listener.accept());
    let (mut client, mut server) = (client.unwrap(), server.unwrap());
    client.set_batching(mode);
    server.set_batching(mode);
    assert_eq!((client.batching(), server.batching()), (mode, mode));
    (listener, server, client)
}

type Rounds = Arc<Vec<Vec<Vec<u8>>>>;

/// Sends each round with `send_batch` from `tx`; `rx`, served by another task, takes it with
/// `recv_batch`, checks every message, byte for byte and in order, then acknowledges it before
/// the next round is sent. Finally checks nothing more arrives. Returns both connections and
/// how many `recv_batch` calls it took.
async fn exchange(mut tx: Connection, mut rx: Connection, rounds: &Rounds) -> (Connection, Connection, usize) {
    let expected = rounds.clone();
    let receiver = tokio::spawn(async move {
        let mut calls = 0;
        for (r, round) in expected.iter().enumerate() {
            let mut i = 0;
            while i < round.len() {
                let messages = rx.recv_batch(TIMEOUT).await.unwrap_or_else(|e| panic!("round {r}, message {i}: {e}"));
                calls += 1;
                check_received(r, round, &mut i, messages);
            }
            rx.send(&(r as u64).to_be_bytes()).await.unwrap();
        }
        let e = rx.recv_batch(Some(Duration::from_millis(50))).await.map(|m| m.len()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        (rx, calls)
    });
    let mut buf = [0u8; 64];
    for (r, round) in rounds.iter().enumerate() {
        let refs: Vec<&[u8]> = round.iter().map(Vec::as_slice).collect();
        let mut sent = 0;
        while sent < refs.len() {
            let n = tx.send_batch(&refs[sent..]).await.unwrap();
            assert!(n > 0);
            sent += n;
        }
        let n = tx.recv_timeout(&mut buf, T).await.unwrap_or_else(|e| panic!("acknowledgement of round {r}: {e}"));
        assert_eq!(&buf[..n], (r as u64).to_be_bytes());
    }
    let (rx, calls) = receiver.await.unwrap();
    (tx, rx, calls)
}

/// 2,000 messages of 1,200 bytes, client to server, in batches of 32, then some back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_in_every_mode() {
    if cfg!(target_os = "linux") {
        assert!(offload_available(), "UDP GSO/GRO missing: the offload path would only test its fallback");
    }
    for mode in MODES {
        for ip in ["127.0.0.1", "[::1]"] {
            let (_listener, server, client) = pair(ip, true, mode).await;
            let (client, server, calls) = exchange(client, server, &Arc::new(rounds_of(0, TOTAL, 1_200))).await;
            match mode {
                // One datagram per receive.
                Batching::Off => assert_eq!(calls, TOTAL as usize, "{ip}"),
                // Each batch of 32 goes out as one GSO send and arrives as one GRO buffer.
                Batching::Offload if cfg!(target_os = "linux") => {
                    assert!(calls <= TOTAL as usize / 8, "{ip}: {calls} receives for {TOTAL} messages")
                }
                _ => assert!(calls <= TOTAL as usize, "{ip}"),
            }
            // And back, server to client.
            let (_server, _client, calls_back) =
                exchange(server, client, &Arc::new(rounds_of(TOTAL, 128, 1_200))).await;
            assert!(calls_back >= 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_sizes_in_one_send_batch_in_every_mode() {
    let rounds = Arc::new(mixed_rounds());
    for mode in MODES {
        for ip in ["127.0.0.1", "[::1]"] {
            let (_listener, server, client) = pair(ip, true, mode).await;
            let (client, server, _) = exchange(client, server, &rounds).await;
            exchange(server, client, &rounds).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_socket_connections_batch_both_ways() {
    for mode in MODES {
        // The server's connection sends and receives through the listener's socket.
        let (listener, server, client) = pair("127.0.0.1", false, mode).await;
        assert_eq!(server.local_addr().unwrap(), listener.local_addr().unwrap());
        let (client, server, _) = exchange(client, server, &Arc::new(rounds_of(0, 640, 1_200))).await;
        let (server, client, _) = exchange(server, client, &Arc::new(rounds_of(640, 640, 1_200))).await;
        exchange(server, client, &Arc::new(mixed_rounds())).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_batch_times_out_loses_nothing_and_follows_recv() {
    for mode in MODES {
        for own in [true, false] {
            let (_listener, mut server, mut client) = pair("127.0.0.1", own, mode).await;
            let what = format!("{mode:?}, own socket {own}");

            // Nothing sent: a timeout, on time.
            let started = Instant::now();
            let e = server.recv_batch(Some(Duration::from_millis(100))).await.map(|m| m.len()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{what}: {e}");
            assert!(started.elapsed() >= Duration::from_millis(100), "{what}");
            // A zero timeout only takes what is there.
            let e = server.recv_batch(Some(Duration::ZERO)).await.map(|m| m.len()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{what}: {e}");
            // A receive cancelled while it waits takes nothing either.
            assert!(tokio::time::timeout(Duration::from_millis(20), server.recv_batch(None)).await.is_err());

            // Then everything sent arrives, in order; a plain `recv` may take the first ones.
            let batch: Vec<Vec<u8>> = (0..PER_BATCH as u64).map(|n| message(n, 1_200)).collect();
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            assert_eq!(client.send_batch(&refs).await.unwrap(), PER_BATCH, "{what}");
            let mut buf = [0u8; 2048];
            let n = server.recv_timeout(&mut buf, T).await.unwrap();
            assert_eq!(&buf[..n], &batch[0][..], "{what}");
            let mut next = 1;
            while next < batch.len() {
                for m in server.recv_batch(TIMEOUT).await.unwrap() {
                    assert!(m == batch[next], "{what}: message {next}");
                    next += 1;
                }
            }
            let e = server.recv_batch(Some(Duration::from_millis(20))).await.map(|m| m.len()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{what}: {e}");

            // A batch sent after a timeout arrives whole; `pending` and `recv` after a batched
            // receive see the messages it left, in order.
            assert_eq!(client.send_batch(&refs).await.unwrap(), PER_BATCH, "{what}");
            let mut next = 0;
            while next < 2 {
                let n = server.recv_timeout(&mut buf, T).await.unwrap();
                assert_eq!(&buf[..n], &batch[next][..], "{what}: message {next}");
                next += 1;
            }
            while next < batch.len() {
                for m in server.recv_batch(TIMEOUT).await.unwrap() {
                    assert!(m == batch[next], "{what}: message {next}");
                    next += 1;
                }
            }
            assert_eq!(server.pending().await.unwrap(), 0, "{what}");

            // The peer's close_notify ends the batch receive like `recv`.
            client.close().await.unwrap();
            let e = server.recv_batch(TIMEOUT).await.map(|m| m.len()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{what}: {e}");
            let e = server.send_batch(&[&b"late"[..]]).await.unwrap_err();
            assert_ne!(e.kind(), io::ErrorKind::TimedOut, "{what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_batch_stops_at_a_message_it_cannot_send() {
    for mode in MODES {
        let (_listener, mut server, mut client) = pair("127.0.0.1", true, mode).await;
        let big = vec![0u8; 16_385];
        let ok = message(1, 100);
        // The messages before the bad one go out; the bad one fails on its own.
        assert_eq!(client.send_batch(&[&ok[..], &ok, &big, &ok]).await.unwrap(), 2);
        let e = client.send_batch(&[&big[..], &ok]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert_eq!(client.send_batch(&[]).await.unwrap(), 0);
        let mut got = 0;
        while got < 2 {
            for m in server.recv_batch(TIMEOUT).await.unwrap() {
                assert_eq!(m, &ok[..]);
                got += 1;
            }
        }
        let e = server.recv_batch(Some(Duration::from_millis(20))).await.map(|m| m.len()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    }
}

/// With GRO on, plain `recv` splits what the kernel coalesced, and the protocol's timers and
/// alerts work under `recv_batch` as under `recv`: a batch waiting forever still ends when the
/// peer closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_recv_after_offload_and_close_during_a_batch_wait() {
    let (_listener, server, mut client) = pair("127.0.0.1", true, Batching::Offload).await;
    let batch: Vec<Vec<u8>> = (0..PER_BATCH as u64).map(|n| message(n, 1_200)).collect();
    let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
    let served = tokio::spawn(async move {
        let mut server = server;
        let mut buf = [0u8; 2048];
        for expected in (0..PER_BATCH as u64).map(|n| message(n, 1_200)) {
            let n = server.recv_timeout(&mut buf, T).await.unwrap();
            assert!(buf[..n] == expected[..], "message {}", expected[0]);
        }
        server.send(b"all").await.unwrap();
        // Waits without a timeout: only the peer's close_notify ends it.
        let e = server.recv_batch(None).await.map(|m| m.len()).unwrap_err();
        (e.kind(), server.is_closed())
    });
    assert_eq!(client.send_batch(&refs).await.unwrap(), PER_BATCH);
    let mut buf = [0u8; 16];
    let n = client.recv_timeout(&mut buf, T).await.unwrap();
    assert_eq!(&buf[..n], b"all");
    client.close().await.unwrap();
    let (kind, closed) = served.await.unwrap();
    assert_eq!(kind, io::ErrorKind::ConnectionReset);
    assert!(closed);
}
