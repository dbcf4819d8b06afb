//! The endpoint under a ClientHello flood, and the cookie's bindings: no per-peer state before
//! a valid cookie, no reply larger than its request.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dtls_proto::{Config, Connection, DatagramEvent, Endpoint};
use support::{Link, Rng, Sim};

fn server_config() -> Arc<Config> {
    Arc::new(Config::builder().psk_server_key(b"flood key".to_vec()).build().unwrap())
}

fn client() -> (Connection, Vec<u8>, Instant) {
    let now = Instant::now();
    let cfg = Arc::new(Config::builder().psk("flooder", b"flood key".to_vec()).build().unwrap());
    let mut c = Connection::client(cfg, now).unwrap();
    let mut ch = Vec::new();
    assert!(c.poll_transmit(&mut ch).is_some());
    (c, ch, now)
}

fn addr(i: u32) -> SocketAddr {
    SocketAddr::from(((0x0a00_0000 + i).to_be_bytes(), (1024 + i % 60000) as u16))
}

#[test]
fn ten_thousand_spoofed_client_hellos_create_no_state() {
    let (_, ch, now) = client();
    let mut ep = Endpoint::new(server_config(), now).unwrap();
    let mut resp = Vec::new();
    let mut rng = Rng::new(42);
    let (mut bytes_in, mut bytes_out) = (0usize, 0usize);
    for i in 0..10_000u32 {
        let t = now + Duration::from_millis(u64::from(i));
        match ep.handle(t, addr(i), &ch, &mut resp) {
            DatagramEvent::Respond => {
                assert!(resp.len() <= ch.len(), "HelloVerifyRequest {} > ClientHello {}", resp.len(), ch.len());
                bytes_in += ch.len();
                bytes_out += resp.len();
            }
            other => panic!("unexpected {other:?} for a cookie-less ClientHello"),
        }
        // And garbage of random sizes, which gets nothing at all.
        let len = rng.below(1400) as usize;
        let junk: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        assert!(matches!(ep.handle(t, addr(i + 20_000), &junk, &mut resp), DatagramEvent::Drop));
        assert!(resp.is_empty());
    }
    assert_eq!(ep.connection_count(), 0);
    assert!(bytes_out < bytes_in / 2, "amplification: {bytes_out} out for {bytes_in} in");

    // A real client still gets through the same endpoint's configuration.
    let c = Config::builder().psk("real", b"flood key".to_vec()).build().unwrap();
    let s = Config::builder().psk_server_key(b"flood key".to_vec()).build().unwrap();
    let mut sim = Sim::new(1, c, s, Link::PERFECT, Link::PERFECT);
    assert!(sim.run_handshake(Duration::from_secs(5)));
}

/// Runs the cookie exchange for `from` and returns the second ClientHello (with cookie).
fn second_client_hello(ep: &mut Endpoint, from: SocketAddr) -> Vec<u8> {
    let (mut c, ch1, now) = client();
    let mut resp = Vec::new();
    assert!(matches!(ep.handle(now, from, &ch1, &mut resp), DatagramEvent::Respond));
    // HelloVerifyRequest: record version DTLS 1.0, same record sequence as the ClientHello.
    assert_eq!(&resp[1..3], &[0xfe, 0xff]);
    assert_eq!(&resp[3..11], &ch1[3..11]);
    assert_eq!(resp[13], 3, "hello_verify_request");
    c.handle_datagram(now, &mut resp).unwrap();
    let mut ch2 = Vec::new();
    assert!(c.poll_transmit(&mut ch2).is_some());
    ch2
}

#[test]
fn cookie_is_bound_to_address_and_hello() {
    let now = Instant::now();
    let mut ep = Endpoint::new(server_config(), now).unwrap();
    let a = addr(1);
    let ch2 = second_client_hello(&mut ep, a);
    let mut resp = Vec::new();

    // Another address (or port) replaying the cookie gets a new HelloVerifyRequest, no state.
    let other_port = SocketAddr::new(a.ip(), a.port() + 1);
    for from in [addr(2), other_port] {
        assert!(matches!(ep.handle(now, from, &ch2, &mut resp), DatagramEvent::Respond));
    }
    // A second ClientHello that changes any parameter (here one byte of the random) fails.
    let mut changed = ch2.clone();
    changed[13 + 12 + 2] ^= 1;
    assert!(matches!(ep.handle(now, a, &changed, &mut resp), DatagramEvent::Respond));
    // A flipped cookie bit fails.
    let mut flipped = ch2.clone();
    let cookie_at = 13 + 12 + 2 + 32 + 1 + 1; // after version, random, empty session id, cookie length
    flipped[cookie_at + 10] ^= 0x80;
    assert!(matches!(ep.handle(now, a, &flipped, &mut resp), DatagramEvent::Respond));
    assert_eq!(ep.connection_count(), 0);

    // The genuine one is admitted.
    let DatagramEvent::Incoming(inc) = ep.handle(now, a, &ch2, &mut resp) else { panic!("not admitted") };
    assert_eq!(inc.remote(), a);
    let (_h, mut conn) = ep.accept(inc, now).unwrap();
    assert_eq!(ep.connection_count(), 1);
    let mut flight = Vec::new();
    assert!(conn.poll_transmit(&mut flight).is_some(), "server flight 4");
    assert_eq!(flight[13], 2, "server_hello");
}

#[test]
fn cookie_expires_and_survives_one_rotation() {
    let now = Instant::now();
    let cfg = Arc::new(
        Config::builder()
            .psk_server_key(b"k".to_vec())
            .cookie_timing(Duration::from_secs(60), Duration::from_secs(300))
            .build()
            .unwrap(),
    );
    let mut ep = Endpoint::new(cfg, now).unwrap();
    let a = addr(9);
    let ch2 = second_client_hello(&mut ep, a);
    let mut resp = Vec::new();
    // Expired after its 60 s lifetime.
    let late = now + Duration::from_secs(62);
    assert!(matches!(ep.handle(late, a, &ch2, &mut resp), DatagramEvent::Respond));

    // Issued just before a rotation, still valid just after it (the previous secret is kept).
    let mut ep = Endpoint::new(server_config(), now).unwrap();
    let t0 = now + Duration::from_secs(299);
    let (mut c, ch1, _) = client();
    assert!(matches!(ep.handle(t0, a, &ch1, &mut resp), DatagramEvent::Respond));
    c.handle_datagram(t0, &mut resp).unwrap();
    let mut ch2 = Vec::new();
    let _ = c.poll_transmit(&mut ch2);
    let t1 = now + Duration::from_secs(301);
    let mut probe = Vec::new();
    // Rotation happens on the next use of the verifier.
    let _ = ep.handle(t1, addr(77), &ch1, &mut probe);
    assert!(matches!(ep.handle(t1, a, &ch2, &mut resp), DatagramEvent::Incoming(_)));
    // Two rotations later the old secret is gone (and the cookie is also too old).
    let t2 = now + Duration::from_secs(700);
    let _ = ep.handle(t2, addr(78), &ch1, &mut probe);
    assert!(matches!(ep.handle(t2, a, &ch2, &mut resp), DatagramEvent::Respond));
}

/// Splits a one-record ClientHello datagram into two datagrams, each one fragment.
fn split_client_hello(datagram: &[u8], at: usize) -> (Vec<u8>, Vec<u8>) {
    let rec = &datagram[..13];
    let hs = &datagram[13..25];
    let body = &datagram[25..];
    let len = body.len();
    let frag = |seq: u8, off: usize, bytes: &[u8]| {
        let mut d = rec.to_vec();
        d[10] = d[10].wrapping_add(seq);
        d[11..13].copy_from_slice(&((12 + bytes.len()) as u16).to_be_bytes());
        d.extend_from_slice(&hs[..6]);
        d.extend_from_slice(&(off as u32).to_be_bytes()[1..]);
        d.extend_from_slice(&(bytes.len() as u32).to_be_bytes()[1..]);
        d.extend_from_slice(bytes);
        d
    };
    assert!(at < len);
    (frag(0, 0, &body[..at]), frag(1, at, &body[at..]))
}

/// A client whose ClientHello does not fit its MTU sends it in fragments: the cookie is checked
/// on the first fragment (it precedes everything variable), and the connection reassembles.
#[test]
fn fragmented_client_hello_passes_the_cookie_check_and_is_reassembled() {
    let (mut c, ch1, now) = client();
    let mut ep = Endpoint::new(server_config(), now).unwrap();
    let a = addr(21);
    let mut resp = Vec::new();
    let (f1, f2) = split_client_hello(&ch1, 60);
    assert!(matches!(ep.handle(now, a, &f1, &mut resp), DatagramEvent::Respond));
    assert!(resp.len() <= f1.len());
    let mut hvr = resp.clone();
    assert!(matches!(ep.handle(now, a, &f2, &mut resp), DatagramEvent::Drop), "no state for an unverified peer");
    c.handle_datagram(now, &mut hvr).unwrap();
    let mut ch2 = Vec::new();
    assert!(c.poll_transmit(&mut ch2).is_some());
    // The first fragment must carry the whole cookie (it ends 56 bytes into the body).
    let (short, _) = split_client_hello(&ch2, 50);
    assert!(matches!(ep.handle(now, a, &short, &mut resp), DatagramEvent::Drop));
    let (f1, f2) = split_client_hello(&ch2, 56);
    let DatagramEvent::Incoming(inc) = ep.handle(now, a, &f1, &mut resp) else { panic!("first fragment not admitted") };
    let (h, mut conn) = ep.accept(inc, now).unwrap();
    let mut out = Vec::new();
    assert!(conn.poll_transmit(&mut out).is_none(), "nothing to say before the whole ClientHello");
    let DatagramEvent::Connection(h2) = ep.handle(now, a, &f2, &mut resp) else { panic!("not routed") };
    assert_eq!(h, h2);
    conn.handle_datagram(now, &mut f2.clone()).unwrap();
    assert!(conn.poll_transmit(&mut out).is_some(), "server flight after reassembly");
    assert_eq!(out[13], 2, "server_hello");
    // And the handshake completes from there.
    let mut flights = vec![out.clone()];
    while conn.poll_transmit(&mut out).is_some() {
        flights.push(out.clone());
    }
    for mut d in flights {
        c.handle_datagram(now, &mut d).unwrap();
    }
    while c.poll_transmit(&mut out).is_some() {
        conn.handle_datagram(now, &mut out.clone()).unwrap();
    }
    while conn.poll_transmit(&mut out).is_some() {
        c.handle_datagram(now, &mut out.clone()).unwrap();
    }
    assert!(c.is_established() && conn.is_established());
}

#[test]
fn fragmented_or_malformed_client_hellos_are_dropped() {
    let (_, ch, now) = client();
    let mut ep = Endpoint::new(server_config(), now).unwrap();
    let mut resp = Vec::new();
    // Every truncation of a ClientHello is dropped without a reply.
    for cut in 0..ch.len() {
        assert!(matches!(ep.handle(now, addr(3), &ch[..cut], &mut resp), DatagramEvent::Drop), "cut {cut}");
    }
    // A later fragment of a ClientHello from an unknown peer cannot start anything.
    let (_, second) = split_client_hello(&ch, 40);
    assert!(matches!(ep.handle(now, addr(3), &second, &mut resp), DatagramEvent::Drop));
    // message_seq 5 cannot start a handshake.
    let mut seq5 = ch.clone();
    seq5[13 + 4..13 + 6].copy_from_slice(&[0, 5]);
    assert!(matches!(ep.handle(now, addr(3), &seq5, &mut resp), DatagramEvent::Drop));
    // Epoch 1 cannot start a handshake.
    let mut e1 = ch.clone();
    e1[3..5].copy_from_slice(&[0, 1]);
    assert!(matches!(ep.handle(now, addr(3), &e1, &mut resp), DatagramEvent::Drop));
    assert_eq!(ep.connection_count(), 0);
}

/// A client that restarts and reuses its address and port gets a new association through the
/// cookie exchange; forged ClientHellos without a valid cookie leave the old one alone.
#[test]
fn restarted_client_on_the_same_port_replaces_its_association() {
    let now = Instant::now();
    let mut ep = Endpoint::new(server_config(), now).unwrap();
    let a = addr(5);
    let ch2 = second_client_hello(&mut ep, a);
    let mut resp = Vec::new();
    let DatagramEvent::Incoming(inc) = ep.handle(now, a, &ch2, &mut resp) else { panic!() };
    assert_eq!(inc.replaces(), None);
    let (old, _conn) = ep.accept(inc, now).unwrap();
    // The same ClientHello again is a retransmission: it belongs to the existing connection.
    assert!(matches!(ep.handle(now, a, &ch2, &mut resp), DatagramEvent::Connection(h) if h == old));
    // A new ClientHello (new random) from the same address: cookie exchange, old one kept.
    let (mut c, ch1, _) = client();
    assert!(matches!(ep.handle(now, a, &ch1, &mut resp), DatagramEvent::Respond));
    assert_eq!(ep.remote(old), Some(a));
    c.handle_datagram(now, &mut resp).unwrap();
    let mut new_ch2 = Vec::new();
    let _ = c.poll_transmit(&mut new_ch2);
    let DatagramEvent::Incoming(inc) = ep.handle(now, a, &new_ch2, &mut resp) else { panic!("not admitted") };
    assert_eq!(inc.replaces(), Some(old));
    let (new, _conn) = ep.accept(inc, now).unwrap();
    assert_ne!(new, old);
    assert_eq!(ep.remote(old), None);
    assert_eq!(ep.connection_count(), 1);
    // Removing the stale handle later does not unregister the new connection.
    ep.remove(old);
    assert!(matches!(ep.handle(now, a, &new_ch2, &mut resp), DatagramEvent::Connection(h) if h == new));
}

#[test]
fn without_cookies_a_client_hello_is_admitted_directly_up_to_the_cap() {
    let now = Instant::now();
    let cfg = Arc::new(Config::builder().psk_server_key(b"k".to_vec()).cookie_verification(false).build().unwrap());
    let mut ep = Endpoint::new(cfg, now).unwrap();
    ep.set_max_connections(3);
    let (_, ch, _) = client();
    let mut resp = Vec::new();
    for i in 0..5u32 {
        match ep.handle(now, addr(100 + i), &ch, &mut resp) {
            DatagramEvent::Incoming(inc) => {
                assert!(i < 3);
                ep.accept(inc, now).unwrap();
            }
            DatagramEvent::Drop => assert!(i >= 3),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ep.connection_count(), 3);
    assert_eq!(ep.refused_full(), 2);
}
