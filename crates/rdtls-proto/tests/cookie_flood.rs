//! The endpoint under a ClientHello flood, and the cookie's bindings: no per-peer state before
//! a valid cookie, no reply larger than its request. This is DTLS 1.2's cookie exchange
//! (HelloVerifyRequest), so every configuration is DTLS 1.2 only; DTLS 1.3's stateless
//! HelloRetryRequest has the same tests in `cookie13.rs`.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls_proto::{Config, Connection, DatagramEvent, Endpoint};
use support::{Link, Rng, Sim};

fn server_config() -> Arc<Config> {
    Arc::new(support::dtls12().psk_server_key(b"flood key".to_vec()).build().unwrap())
}

/// A server whose cookie timing the tests rely on, stated: cookies live 60 s, keys rotate every
/// 300 s (the defaults).
fn timed_config() -> Arc<Config> {
    Arc::new(
        support::dtls12()
            .psk_server_key(b"k".to_vec())
            .cookie_timing(Duration::from_secs(60), Duration::from_secs(300))
            .build()
            .unwrap(),
    )
}

fn client() -> (Connection, Vec<u8>, Instant) {
    let now = Instant::now();
    let cfg = Arc::new(support::dtls12().psk("flooder", b"flood key".to_vec()).build().unwrap());
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
    let c = support::dtls12().psk("real", b"flood key".to_vec()).build().unwrap();
    let s = support::dtls12().psk_server_key(b"flood key".to_vec()).build().unwrap();
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
    let cfg = timed_config();
    let mut ep = Endpoint::new(cfg, now).unwrap();
    let a = addr(9);
    let ch2 = second_client_hello(&mut ep, a);
    let mut resp = Vec::new();
    // Expired after its 60 s lifetime.
    let late = now + Duration::from_secs(62);
    assert!(matches!(ep.handle(late, a, &ch2, &mut resp), DatagramEvent::Respond));

    // Issued just before a rotation, still valid just after it (its period's key is derived again).
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

/// With cookie verification off, a restarted client is still asked for a cookie before it
/// replaces its old association (above); in DTLS 1.3 the new connection then starts from the
/// stateless HelloRetryRequest's cookie, as with verification on.
#[test]
fn a_restarted_client_replaces_its_association_with_cookie_verification_off() {
    use rdtls_proto::enums::Protocol;
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        let only = || Config::builder().protocol_versions(version, version);
        let server = only().psk_server_key(b"k".to_vec()).cookie_verification(false).build().unwrap();
        let client = Arc::new(only().psk("id", b"k".to_vec()).build().unwrap());
        let now = Instant::now();
        let mut ep = Endpoint::new(Arc::new(server), now).unwrap();
        let a = addr(7);
        let mut resp = Vec::new();
        let mut connect = |ep: &mut Endpoint| {
            let mut c = Connection::client(client.clone(), now).unwrap();
            // The ClientHello (in fragments, for DTLS 1.3's hybrid key share), then the one
            // after the endpoint's answer.
            let mut admitted = None;
            for _ in 0..2 {
                for d in support::drain(&mut c) {
                    match ep.handle(now, a, &d, &mut resp) {
                        DatagramEvent::Incoming(inc) => admitted = Some(inc),
                        DatagramEvent::Respond => {
                            c.handle_datagram(now, &mut resp.clone()).unwrap();
                        }
                        DatagramEvent::Held => {}
                        other => panic!("{version:?}: {other:?}"),
                    }
                }
            }
            let inc = admitted.unwrap_or_else(|| panic!("{version:?}: not admitted"));
            let replaces = inc.replaces();
            let (handle, mut s) = ep.accept(inc, now).unwrap_or_else(|e| panic!("{version:?}: {e:?}"));
            support::pump(now, &mut c, &mut s);
            assert!(c.is_established() && s.is_established(), "{version:?}");
            (handle, replaces)
        };
        let (old, _) = connect(&mut ep);
        let (new, replaced) = connect(&mut ep);
        assert_eq!(replaced, Some(old), "{version:?}");
        assert_ne!(new, old);
        assert_eq!(ep.connection_count(), 1);
    }
}

#[test]
fn without_cookies_a_client_hello_is_admitted_directly_up_to_the_cap() {
    let now = Instant::now();
    let cfg = Arc::new(support::dtls12().psk_server_key(b"k".to_vec()).cookie_verification(false).build().unwrap());
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

/// A client's ClientHello after the HelloVerifyRequest in `hvr`.
fn answer(c: &mut Connection, t: Instant, hvr: &[u8]) -> Vec<u8> {
    let mut hvr = hvr.to_vec();
    c.handle_datagram(t, &mut hvr).unwrap();
    let mut ch = Vec::new();
    assert!(c.poll_transmit(&mut ch).is_some());
    ch
}

/// Workers sharing a port (`SO_REUSEPORT`) each run a verifier; the kernel may send a client's
/// second ClientHello to another worker than its first. Every cookie must verify on every
/// worker, across rotations (finding 7 of the security review: each worker rotated to its own
/// random secret, so after the first rotation a worker refused the others' cookies).
#[test]
fn workers_sharing_a_secret_accept_each_others_cookies_across_rotations() {
    let start = Instant::now();
    let cfg = timed_config();
    let seed = [0x42; 32];
    // As `rdtls::Listener::bind_workers` sets them up: one moment, one secret.
    let mut workers: Vec<Endpoint> = (0..3)
        .map(|_| {
            let mut ep = Endpoint::new(cfg.clone(), start).unwrap();
            ep.verifier_mut().set_secret(start, seed);
            ep
        })
        .collect();
    assert_every_worker_verifies_every_cookie(&mut workers, start);
}

/// The same for servers started at different moments (other processes, other machines): they
/// share the secret and a time base (here a Unix time), and nothing else.
#[test]
fn servers_sharing_a_secret_and_time_base_accept_each_others_cookies() {
    let start = Instant::now();
    let cfg = Arc::new(support::dtls12().psk_server_key(b"k".to_vec()).build().unwrap());
    let unix_at_start = Duration::from_secs(1_796_000_000);
    let mut servers: Vec<Endpoint> = (0..3u64)
        .map(|i| {
            let created = start + Duration::from_millis(17_300 * i);
            let mut ep = Endpoint::new(cfg.clone(), created).unwrap();
            ep.verifier_mut().set_secret(created, [0x42; 32]);
            ep.verifier_mut().set_time_base(created, unix_at_start + (created - start));
            ep
        })
        .collect();
    assert_every_worker_verifies_every_cookie(&mut servers, start + Duration::from_secs(40));

    // A server with another secret, or another time base, does not take them.
    let mut stranger = Endpoint::new(cfg.clone(), start).unwrap();
    stranger.verifier_mut().set_time_base(start, unix_at_start);
    let mut skewed = Endpoint::new(cfg, start).unwrap();
    skewed.verifier_mut().set_secret(start, [0x42; 32]);
    skewed.verifier_mut().set_time_base(start, unix_at_start + Duration::from_secs(3_600));
    let t = start + Duration::from_secs(100);
    let (mut c, ch1, _) = client();
    let a = addr(5);
    let mut resp = Vec::new();
    assert!(matches!(servers[0].handle(t, a, &ch1, &mut resp), DatagramEvent::Respond));
    let ch2 = answer(&mut c, t, &resp);
    assert!(matches!(stranger.handle(t, a, &ch2, &mut resp), DatagramEvent::Respond));
    assert!(matches!(skewed.handle(t, a, &ch2, &mut resp), DatagramEvent::Respond));
    assert!(matches!(servers[2].handle(t, a, &ch2, &mut resp), DatagramEvent::Incoming(_)));
}

/// From `from`, every 50 s over three rotation periods and a half (1,050 s), a cookie issued by
/// each worker is accepted by every worker a second later.
fn assert_every_worker_verifies_every_cookie(workers: &mut [Endpoint], from: Instant) {
    let a = addr(3);
    let mut resp = Vec::new();
    for step in 0..22u64 {
        let t = from + Duration::from_secs(50 * step);
        for issuer in 0..workers.len() {
            let (mut c, ch1, _) = client();
            assert!(matches!(workers[issuer].handle(t, a, &ch1, &mut resp), DatagramEvent::Respond));
            let ch2 = answer(&mut c, t, &resp);
            for (v, w) in workers.iter_mut().enumerate() {
                let later = t + Duration::from_secs(1);
                let got = w.handle(later, a, &ch2, &mut resp);
                assert!(
                    matches!(got, DatagramEvent::Incoming(_)),
                    "at {} s, worker {v} refused worker {issuer}'s cookie: {got:?}",
                    50 * step
                );
            }
        }
    }
}

/// A client that had to follow two HelloVerifyRequests sends its ClientHello with
/// message_seq 2; the verifier answers and admits it, and the handshake completes.
#[test]
fn client_hello_after_a_second_hello_verify_request_is_served() {
    let (mut c, ch1, now) = client();
    let a = addr(11);
    let mut resp = Vec::new();
    // Two servers with different secrets: the first one's cookie means nothing to the second.
    let mut first = Endpoint::new(server_config(), now).unwrap();
    let mut ep = Endpoint::new(server_config(), now).unwrap();
    assert!(matches!(first.handle(now, a, &ch1, &mut resp), DatagramEvent::Respond));
    let ch2 = answer(&mut c, now, &resp);
    assert!(matches!(ep.handle(now, a, &ch2, &mut resp), DatagramEvent::Respond));
    assert_eq!(u16::from_be_bytes([resp[17], resp[18]]), 1, "the HelloVerifyRequest echoes message_seq 1");
    let ch3 = answer(&mut c, now, &resp);
    assert_eq!(u16::from_be_bytes([ch3[17], ch3[18]]), 2, "third ClientHello");
    let DatagramEvent::Incoming(inc) = ep.handle(now, a, &ch3, &mut resp) else { panic!("not admitted") };
    let (_, mut s) = ep.accept(inc, now).unwrap();
    let mut buf = Vec::new();
    for _ in 0..4 {
        while s.poll_transmit(&mut buf).is_some() {
            c.handle_datagram(now, &mut buf).unwrap();
        }
        while c.poll_transmit(&mut buf).is_some() {
            s.handle_datagram(now, &mut buf).unwrap();
        }
    }
    assert!(c.is_established() && s.is_established());
}

/// Qt's `cookieGeneratorParameters()` reads back what `setCookieGeneratorParameters()` set,
/// and a verifier given that secret (and time base) verifies the first one's cookies.
#[test]
fn the_cookie_secret_reads_back_and_works_elsewhere() {
    let now = Instant::now();
    let mut ep = Endpoint::new(server_config(), now).unwrap();
    let fresh = *ep.verifier_mut().secret();
    assert_ne!(fresh, [0; 32], "a fresh verifier has a random seed");
    ep.verifier_mut().set_secret(now, [0x5e; 32]);
    assert_eq!(*ep.verifier_mut().secret(), [0x5e; 32]);
    let mut other = Endpoint::new(server_config(), now).unwrap();
    let secret = *ep.verifier_mut().secret();
    other.verifier_mut().set_secret(now, secret);
    let (mut c, ch1, _) = client();
    let a = addr(21);
    let mut resp = Vec::new();
    assert!(matches!(ep.handle(now, a, &ch1, &mut resp), DatagramEvent::Respond));
    let ch2 = answer(&mut c, now, &resp);
    assert!(matches!(other.handle(now, a, &ch2, &mut resp), DatagramEvent::Incoming(_)));
}
