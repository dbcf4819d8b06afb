//! Batched datagram I/O over real loopback sockets: `send_batch`/`recv_batch` in every
//! `Batching` mode, over IPv4 and IPv6, with sockets of the connection's own and with the
//! listener's shared socket, and the `rdtls::udp` primitives (sendmmsg, recvmmsg, GSO, GRO).
//!
//! Loopback UDP drops under overload, so senders are paced by an application-level
//! acknowledgement per batch: nothing may be lost, and every test checks that everything
//! arrived exactly once, in order, byte for byte.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use rdtls::udp::{Batching, RecvBatch, Socket};
use rdtls::{Connection, Listener, ListenerOptions};

mod batching;
use batching::*;

/// A listener on `ip`, the server side of one connection and its client. `own`: the server
/// connection gets its own socket; else it shares the listener's.
fn pair(ip: &str, own: bool) -> (Listener, Connection, Connection) {
    let options = ListenerOptions::default().connection_sockets(own);
    let listener = Listener::bind_with(format!("{ip}:0").parse().unwrap(), server_config(), options).unwrap();
    let addr = listener.local_addr().unwrap();
    let client = thread::spawn(move || Connection::connect(addr, client_config("batch"), TIMEOUT));
    let server = listener.accept_timeout(Duration::from_secs(10)).unwrap();
    (listener, server, client.join().unwrap().unwrap())
}

/// Sends each round with `send_batch` from `tx`; `rx` takes it with `recv_batch`, checks every
/// message, byte for byte and in order, then acknowledges it before the next round is sent.
/// Finally checks nothing more arrives. Returns how many `recv_batch` calls it took.
fn exchange(tx: &mut Connection, rx: &mut Connection, rounds: &[Vec<Vec<u8>>]) -> usize {
    thread::scope(|s| {
        let receiver = s.spawn(|| {
            let mut calls = 0;
            for (r, round) in rounds.iter().enumerate() {
                let mut i = 0;
                while i < round.len() {
                    let messages = rx.recv_batch(TIMEOUT).unwrap_or_else(|e| panic!("round {r}, message {i}: {e}"));
                    calls += 1;
                    check_received(r, round, &mut i, messages);
                }
                rx.send(&(r as u64).to_be_bytes()).unwrap();
            }
            let e = rx.recv_batch(Some(Duration::from_millis(50))).map(|m| m.len()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
            calls
        });
        let mut buf = [0u8; 64];
        for (r, round) in rounds.iter().enumerate() {
            let refs: Vec<&[u8]> = round.iter().map(Vec::as_slice).collect();
            let mut sent = 0;
            while sent < refs.len() {
                let n = tx.send_batch(&refs[sent..]).unwrap();
                assert!(n > 0);
                sent += n;
            }
            let n = tx.recv(&mut buf, TIMEOUT).unwrap_or_else(|e| panic!("acknowledgement of round {r}: {e}"));
            assert_eq!(&buf[..n], (r as u64).to_be_bytes());
        }
        receiver.join().unwrap()
    })
}

/// 2,000 messages of 1,200 bytes, client to server, in batches of 32, in `mode`.
fn stream(ip: &str, mode: Batching) -> usize {
    let (_listener, mut server, mut client) = pair(ip, true);
    client.set_batching(mode);
    server.set_batching(mode);
    assert_eq!((client.batching(), server.batching()), (mode, mode));
    let rounds = rounds_of(0, TOTAL, 1_200);
    let calls = exchange(&mut client, &mut server, &rounds);
    // And back, server to client.
    let calls_back = exchange(&mut server, &mut client, &rounds[..4]);
    assert!(calls_back >= 1);
    calls
}

#[test]
fn stream_without_batching() {
    for ip in ["127.0.0.1", "[::1]"] {
        let calls = stream(ip, Batching::Off);
        // One datagram per receive.
        assert_eq!(calls, TOTAL as usize, "{ip}");
    }
}

#[test]
fn stream_with_mmsg() {
    for ip in ["127.0.0.1", "[::1]"] {
        stream(ip, Batching::Mmsg);
    }
}

#[test]
fn stream_with_gso_and_gro() {
    if cfg!(target_os = "linux") {
        assert!(offload_available(), "UDP GSO/GRO missing: the offload path would only test its fallback");
    }
    for ip in ["127.0.0.1", "[::1]"] {
        let calls = stream(ip, Batching::Offload);
        if cfg!(target_os = "linux") {
            // Each batch of 32 goes out as one GSO send and arrives as one GRO buffer.
            assert!(calls <= TOTAL as usize / 8, "{ip}: {calls} receives for {TOTAL} messages");
        }
    }
}

#[test]
fn mixed_sizes_in_every_mode() {
    if cfg!(target_os = "linux") {
        assert!(offload_available());
    }
    let rounds = mixed_rounds();
    for mode in [Batching::Offload, Batching::Mmsg, Batching::Off] {
        for ip in ["127.0.0.1", "[::1]"] {
            let (_listener, mut server, mut client) = pair(ip, true);
            client.set_batching(mode);
            server.set_batching(mode);
            exchange(&mut client, &mut server, &rounds);
            exchange(&mut server, &mut client, &rounds);
        }
    }
}

#[test]
fn shared_socket_connections_batch_both_ways() {
    let rounds: Vec<Vec<Vec<u8>>> =
        (0..20u64).map(|r| (0..PER_BATCH as u64).map(|i| message(r * 100 + i, 1_200)).collect()).collect();
    for mode in [Batching::Offload, Batching::Mmsg, Batching::Off] {
        for ip in ["127.0.0.1", "[::1]"] {
            // The server's connection sends and receives through the listener's socket.
            let (listener, mut server, mut client) = pair(ip, false);
            assert_eq!(server.local_addr().unwrap(), listener.local_addr().unwrap());
            client.set_batching(mode);
            server.set_batching(mode);
            exchange(&mut client, &mut server, &rounds);
            exchange(&mut server, &mut client, &rounds);
            exchange(&mut server, &mut client, &mixed_rounds());
        }
    }
}

#[test]
fn recv_batch_times_out_loses_nothing_and_follows_recv() {
    for mode in [Batching::Offload, Batching::Mmsg, Batching::Off] {
        for own in [true, false] {
            let (_listener, mut server, mut client) = pair("127.0.0.1", own);
            client.set_batching(mode);
            server.set_batching(mode);

            // Nothing sent: a timeout, on time.
            let started = Instant::now();
            let e = server.recv_batch(Some(Duration::from_millis(100))).map(|m| m.len()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
            assert!(started.elapsed() >= Duration::from_millis(100));
            // A zero timeout only takes what is there.
            let e = server.recv_batch(Some(Duration::ZERO)).map(|m| m.len()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");

            // Then everything sent arrives, in order; a plain `recv` may take the first ones.
            let batch: Vec<Vec<u8>> = (0..PER_BATCH as u64).map(|n| message(n, 1_200)).collect();
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            assert_eq!(client.send_batch(&refs).unwrap(), PER_BATCH);
            let mut buf = [0u8; 2048];
            let n = server.recv(&mut buf, TIMEOUT).unwrap();
            assert_eq!(&buf[..n], &batch[0][..]);
            let mut next = 1;
            while next < batch.len() {
                for m in server.recv_batch(TIMEOUT).unwrap() {
                    assert!(m == batch[next], "{mode:?}, own socket {own}: message {next}");
                    next += 1;
                }
            }
            let e = server.recv_batch(Some(Duration::from_millis(20))).map(|m| m.len()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");

            // The peer's close_notify ends the batch receive like `recv`.
            client.close().unwrap();
            let e = server.recv_batch(TIMEOUT).map(|m| m.len()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{mode:?}, own socket {own}: {e}");
            let e = server.send_batch(&[&b"late"[..]]).unwrap_err();
            assert_ne!(e.kind(), io::ErrorKind::TimedOut);
        }
    }
}

#[test]
fn send_batch_stops_at_a_message_it_cannot_send() {
    let (_listener, mut server, mut client) = pair("127.0.0.1", true);
    let big = vec![0u8; 16_385];
    let ok = message(1, 100);
    // The messages before the bad one go out; the bad one fails on its own.
    assert_eq!(client.send_batch(&[&ok[..], &ok, &big, &ok]).unwrap(), 2);
    let e = client.send_batch(&[&big[..], &ok]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    assert_eq!(client.send_batch(&[]).unwrap(), 0);
    let mut got = 0;
    while got < 2 {
        for m in server.recv_batch(TIMEOUT).unwrap() {
            assert_eq!(m, &ok[..]);
            got += 1;
        }
    }
}

/// The datagrams `recv_many` returns until `count` arrived, with their sources.
fn receive(socket: &Socket, batch: &mut RecvBatch, count: usize) -> (Vec<(Vec<u8>, SocketAddr)>, usize) {
    let mut got = Vec::new();
    let mut calls = 0;
    while got.len() < count {
        let n = socket.recv_many(batch, TIMEOUT).unwrap();
        assert_eq!(n, batch.len());
        assert_eq!(batch.datagrams().count(), n);
        got.extend(batch.datagrams().map(|(d, from)| (d.to_vec(), from)));
        calls += 1;
    }
    (got, calls)
}

#[test]
fn udp_segments_many_and_gro_byte_for_byte() {
    if cfg!(target_os = "linux") {
        assert!(offload_available());
    }
    for ip in ["127.0.0.1", "[::1]"] {
        let rx = Socket::bind(format!("{ip}:0").parse().unwrap()).unwrap();
        let tx = UdpSocket::bind(format!("{ip}:0")).unwrap();
        let (to, from) = (rx.local_addr().unwrap(), tx.local_addr().unwrap());
        let unconnected = Socket::new(tx.try_clone().unwrap()).unwrap();
        let gso = unconnected.gso_supported();
        let gro = rx.set_gro(true).unwrap();

        // Ten segments of 1,000 bytes and a last one of 500.
        let buf: Vec<u8> = (0..10_500u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(unconnected.send_segments(&buf, 1_000, Some(to)).unwrap(), buf.len());
        let mut batch = RecvBatch::for_gro(4);
        let (got, calls) = receive(&rx, &mut batch, 11);
        if gso && gro {
            // Handed over whole, split again by the GRO segment size.
            assert_eq!(calls, 1);
        }
        assert_eq!(got.len(), 11);
        for (i, (d, source)) in got.iter().enumerate() {
            let end = (i * 1_000 + 1_000).min(buf.len());
            assert_eq!(d[..], buf[i * 1_000..end], "{ip}: segment {i}");
            assert_eq!(*source, from);
        }
        // In place: datagrams_mut covers the same bytes.
        let total: usize = batch.datagrams_mut().map(|(d, _, _)| d.len()).sum();
        assert_eq!(total, batch.datagrams().map(|(d, _)| d.len()).sum::<usize>());

        // Without GRO the kernel delivers the segments as separate datagrams; a connected
        // socket needs no destination.
        assert!(!rx.set_gro(false).unwrap());
        tx.connect(to).unwrap();
        let tx = Socket::new(tx).unwrap();
        assert_eq!(tx.send_segments(&buf, 1_000, None).unwrap(), buf.len());
        let mut small = RecvBatch::new(16, 2_048);
        let (got, _) = receive(&rx, &mut small, 11);
        let flat: Vec<u8> = got.iter().flat_map(|(d, _)| d.iter().copied()).collect();
        assert_eq!(flat, buf);
        assert!(got.iter().all(|(d, s)| d.len() <= 1_000 && *s == from));

        // sendmmsg: 60 datagrams of distinct sizes, in order.
        let datagrams: Vec<Vec<u8>> = (1..=60u64).map(|n| message(n, n as usize * 20)).collect();
        let refs: Vec<&[u8]> = datagrams.iter().map(Vec::as_slice).collect();
        assert_eq!(tx.send_many(&refs, None).unwrap(), 60);
        let (got, _) = receive(&rx, &mut small, 60);
        assert!(got.iter().map(|(d, _)| d).eq(datagrams.iter()));

        // An empty datagram is a datagram.
        assert_eq!(tx.send_many(&[&[]], None).unwrap(), 1);
        let (got, _) = receive(&rx, &mut small, 1);
        assert_eq!(got, [(Vec::new(), from)]);

        // Nothing there within the timeout: TimedOut, and the batch is empty.
        let e = rx.recv_many(&mut small, Some(Duration::ZERO)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(small.is_empty());
    }
}

#[test]
fn recv_many_honours_its_timeout() {
    let rx = Socket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let started = Instant::now();
    let e = rx.recv_many(&mut RecvBatch::new(8, 1_500), Some(Duration::from_millis(50))).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(started.elapsed() >= Duration::from_millis(50));
}
