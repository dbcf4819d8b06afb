//! The endpoint's pool of fragmented ClientHellos from sources not verified yet: a DTLS 1.3
//! ClientHello with a post-quantum key share arrives in pieces and its cookie is checked once
//! it is whole. The pool stays within its memory cap under a flood of spoofed first fragments
//! while a real client completes, keeps one message per source, forgets a message the moment
//! its cookie fails, takes fragments in any order, and lets the latest piece of a source win
//! (a late copy of an older hello costs the newer one its pieces, which the client's
//! retransmission brings again; nothing can pin a source's place). Its cost per datagram is bounded: a spoofed fragment costs about what an
//! unfragmented ClientHello's cookie check does.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls_proto::crypto::KxGroup;
use rdtls_proto::hello_pool::{DEFAULT_HELLO_POOL_BYTES, HELLO_POOL_ENTRY_OVERHEAD, HELLO_POOL_LIFETIME};
use rdtls_proto::{Config, Connection, DatagramEvent, Endpoint, Protocol};
use support::drain;

const KEY: &[u8] = b"pool key";

fn server() -> Arc<Config> {
    Arc::new(Config::builder().psk_server_key(KEY.to_vec()).build().unwrap())
}

fn client(now: Instant) -> Connection {
    named_client(now, "pool")
}

/// A DTLS 1.3 client with this PSK identity (its length sets the ClientHello's) that sends
/// its hybrid and X25519 shares in every ClientHello: two datagrams at a 1,200-byte MTU.
fn named_client(now: Instant, identity: &str) -> Connection {
    let cfg = Config::builder()
        .protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
        .key_share_groups(&[KxGroup::X25519MlKem768, KxGroup::X25519])
        .mtu(1200)
        .psk(identity, KEY.to_vec());
    Connection::client(Arc::new(cfg.build().unwrap()), now).unwrap()
}

fn addr(i: u32) -> SocketAddr {
    SocketAddr::from(((0x0a00_0000 + i).to_be_bytes(), (1024 + i % 60_000) as u16))
}

/// Where the handshake header starts in a datagram of one plaintext record.
const HS_AT: usize = 13;

/// The first fragment of a ClientHello that claims `length` bytes: a record of `piece` bytes
/// of body, whose random makes it distinct.
fn spoofed_first_fragment(i: u32, length: u32, piece: usize) -> Vec<u8> {
    let mut body = vec![0u8; piece];
    body[..2].copy_from_slice(&[0xfe, 0xfd]);
    body[2..6].copy_from_slice(&i.to_be_bytes());
    let mut d = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0];
    d.extend_from_slice(&((12 + piece) as u16).to_be_bytes());
    d.push(1);
    d.extend_from_slice(&length.to_be_bytes()[1..]);
    d.extend_from_slice(&[0, 0, 0, 0, 0]);
    d.extend_from_slice(&(piece as u32).to_be_bytes()[1..]);
    d.extend_from_slice(&body);
    d
}

/// The cookie exchange for a client at `from`: returns its second ClientHello's datagrams.
fn second_hello(ep: &mut Endpoint, now: Instant, from: SocketAddr, c: &mut Connection) -> Vec<Vec<u8>> {
    let hello = drain(c);
    assert_eq!(hello.len(), 2, "a hybrid ClientHello in two datagrams");
    let mut resp = Vec::new();
    let pending = ep.pending_hellos();
    assert!(matches!(ep.handle(now, from, &hello[0], &mut resp), DatagramEvent::Held));
    assert_eq!(ep.pending_hellos(), pending + 1);
    assert!(matches!(ep.handle(now, from, &hello[1], &mut resp), DatagramEvent::Respond));
    assert_eq!(ep.pending_hellos(), pending, "a completed message leaves the pool");
    let total: usize = hello.iter().map(Vec::len).sum();
    assert!(resp.len() < total, "the HelloRetryRequest is smaller than the ClientHello's pieces");
    c.handle_datagram(now, &mut resp).unwrap();
    drain(c)
}

#[test]
fn ten_thousand_spoofed_first_fragments_keep_the_pool_within_its_cap_and_a_real_client_completes() {
    let now = Instant::now();
    let mut ep = Endpoint::new(server(), now).unwrap();
    let mut resp = Vec::new();
    let mut peak = 0;
    // First fragments of 8 KiB ClientHellos (the largest the pool takes), and of 1.5 KB ones.
    let flood: Vec<Vec<u8>> =
        (0..10_000u32).map(|i| spoofed_first_fragment(i, if i % 2 == 0 { 8192 } else { 1500 }, 1000)).collect();
    let mut c = client(now);
    let real = addr(99_999);
    let mut hello = drain(&mut c);
    for (i, d) in flood.iter().enumerate() {
        let t = now + Duration::from_micros(i as u64 * 20);
        assert!(matches!(ep.handle(t, addr(i as u32), d, &mut resp), DatagramEvent::Held), "#{i}");
        assert!(resp.is_empty(), "nothing is sent to a spoofed source");
        peak = peak.max(ep.hello_pool_bytes());
        // The real client's pieces arrive in the middle of the flood, with spoofed fragments
        // between them.
        if i == 5_000 {
            assert!(matches!(ep.handle(t, real, &hello[0], &mut resp), DatagramEvent::Held));
        }
        if i == 5_010 {
            assert!(matches!(ep.handle(t, real, &hello[1], &mut resp), DatagramEvent::Respond));
            c.handle_datagram(t, &mut resp).unwrap();
            hello = drain(&mut c);
        }
        if i == 6_000 {
            assert!(matches!(ep.handle(t, real, &hello[0], &mut resp), DatagramEvent::Held));
        }
        if i == 6_003 {
            let DatagramEvent::Incoming(inc) = ep.handle(t, real, &hello[1], &mut resp) else {
                panic!("the real client's second ClientHello is not admitted")
            };
            let (_h, mut server) = ep.accept(inc, t).unwrap();
            support::pump(t, &mut c, &mut server);
            assert!(c.is_established() && server.is_established());
        }
    }
    assert!(peak <= DEFAULT_HELLO_POOL_BYTES, "the pool held {peak} bytes");
    assert!(peak > DEFAULT_HELLO_POOL_BYTES - 8192 - HELLO_POOL_ENTRY_OVERHEAD, "the flood filled it: {peak}");
    assert!(ep.hello_pool_evictions() > 9_000, "{} evictions", ep.hello_pool_evictions());
    assert!(ep.pending_hellos() <= DEFAULT_HELLO_POOL_BYTES / (1500 + HELLO_POOL_ENTRY_OVERHEAD));
    assert_eq!(ep.connection_count(), 1, "state for the real client alone");
}

#[test]
fn one_message_per_source_and_a_failed_cookie_leaves_nothing() {
    let now = Instant::now();
    let mut ep = Endpoint::new(server(), now).unwrap();
    let mut resp = Vec::new();
    let a = addr(1);
    // A new ClientHello (another length) from the same source takes the place of the
    // unfinished one.
    let mut first = client(now);
    let mut second = named_client(now, "another client");
    let (h1, h2) = (drain(&mut first), drain(&mut second));
    assert!(matches!(ep.handle(now, a, &h1[0], &mut resp), DatagramEvent::Held));
    let held = ep.hello_pool_bytes();
    assert!(matches!(ep.handle(now, a, &h2[0], &mut resp), DatagramEvent::Held));
    assert_eq!(ep.pending_hellos(), 1);
    assert!(ep.hello_pool_bytes() <= held + 64, "one entry's worth");
    // The first's second piece is of another message again: it takes the place back, and
    // that message stays incomplete.
    assert!(matches!(ep.handle(now, a, &h1[1], &mut resp), DatagramEvent::Held));
    assert_eq!(ep.pending_hellos(), 1);
    // The cookie exchange, then a second ClientHello whose cookie was made for another
    // address: once whole it fails the check and nothing of it remains.
    let mut c = client(now);
    let ch2 = second_hello(&mut ep, now, addr(2), &mut c);
    assert!(matches!(ep.handle(now, addr(3), &ch2[0], &mut resp), DatagramEvent::Held));
    assert!(matches!(ep.handle(now, addr(3), &ch2[1], &mut resp), DatagramEvent::Drop));
    assert!(resp.is_empty());
    assert_eq!(ep.pending_hellos(), 1, "only source 1's unfinished message");
    assert_eq!(ep.connection_count(), 0);
}

#[test]
fn pieces_in_any_order_make_the_hello_and_the_latest_piece_of_a_source_wins() {
    let now = Instant::now();
    let mut ep = Endpoint::new(server(), now).unwrap();
    let mut resp = Vec::new();
    let a = addr(5);
    let mut c = client(now);
    let hello1 = drain(&mut c);
    let mut resp1 = Vec::new();
    // The first ClientHello, last piece first.
    assert!(matches!(ep.handle(now, a, &hello1[1], &mut resp1), DatagramEvent::Held));
    assert!(matches!(ep.handle(now, a, &hello1[0], &mut resp1), DatagramEvent::Respond));
    c.handle_datagram(now, &mut resp1).unwrap();
    let hello2 = drain(&mut c);
    assert_eq!(hello2.len(), 2);
    // The second's last piece, then a late copy of the first's first piece (network
    // duplication), then the second's first piece: the latest piece takes the source's place
    // each time, so the second hello is not whole yet; the client's retransmission of it is.
    assert!(matches!(ep.handle(now, a, &hello2[1], &mut resp), DatagramEvent::Held));
    assert!(matches!(ep.handle(now, a, &hello1[0], &mut resp), DatagramEvent::Held));
    assert!(matches!(ep.handle(now, a, &hello2[0], &mut resp), DatagramEvent::Held));
    assert_eq!(ep.pending_hellos(), 1);
    let DatagramEvent::Incoming(inc) = ep.handle(now, a, &hello2[1], &mut resp) else { panic!("not admitted") };
    let (_h, mut server) = ep.accept(inc, now).unwrap();
    support::pump(now, &mut c, &mut server);
    assert!(c.is_established() && server.is_established());
    // The client's retransmitted pieces now belong to its connection.
    assert!(matches!(ep.handle(now, a, &hello2[1], &mut resp), DatagramEvent::Connection(_)));
}

#[test]
fn a_spoofed_piece_cannot_pin_a_source_s_place() {
    // Pieces of a "second ClientHello" (message_seq 1) from a victim's address, between and
    // after the victim's own pieces of its first: the victim's hello still completes.
    let now = Instant::now();
    let mut ep = Endpoint::new(server(), now).unwrap();
    let mut resp = Vec::new();
    let victim = addr(9);
    let mut spoof = spoofed_first_fragment(1, 1500, 900);
    spoof[HS_AT + 5] = 1; // message_seq 1
    let mut c = client(now);
    let hello = drain(&mut c);
    assert!(matches!(ep.handle(now, victim, &spoof, &mut resp), DatagramEvent::Held));
    assert!(matches!(ep.handle(now, victim, &hello[0], &mut resp), DatagramEvent::Held));
    assert!(matches!(ep.handle(now, victim, &spoof, &mut resp), DatagramEvent::Held));
    // The victim's pieces come again (its retransmission): the latest wins, and completes.
    assert!(matches!(ep.handle(now, victim, &hello[0], &mut resp), DatagramEvent::Held));
    assert!(matches!(ep.handle(now, victim, &hello[1], &mut resp), DatagramEvent::Respond));
    assert_eq!(ep.pending_hellos(), 0);
}

#[test]
fn entries_expire_and_a_small_cap_turns_fragmented_hellos_away() {
    let now = Instant::now();
    let mut ep = Endpoint::new(server(), now).unwrap();
    let mut resp = Vec::new();
    let mut c = client(now);
    let hello = drain(&mut c);
    assert!(matches!(ep.handle(now, addr(1), &hello[0], &mut resp), DatagramEvent::Held));
    // Any datagram for the pool after the lifetime clears what went quiet.
    let later = now + HELLO_POOL_LIFETIME + Duration::from_millis(1);
    assert!(matches!(ep.handle(later, addr(2), &spoofed_first_fragment(2, 1500, 900), &mut resp), DatagramEvent::Held));
    assert_eq!(ep.pending_hellos(), 1);
    // The first source's second piece alone is no ClientHello.
    assert!(matches!(ep.handle(later, addr(1), &hello[1], &mut resp), DatagramEvent::Held));
    assert_eq!(ep.pending_hellos(), 2);
    // Below one message, the pool holds nothing.
    ep.set_hello_pool_limit(1024);
    assert_eq!((ep.pending_hellos(), ep.hello_pool_bytes()), (0, 0));
    assert!(matches!(ep.handle(later, addr(1), &hello[0], &mut resp), DatagramEvent::Drop));
    assert_eq!(ep.pending_hellos(), 0);
}

#[test]
fn dtls12_servers_and_servers_without_cookies_do_not_pool() {
    let now = Instant::now();
    let mut resp = Vec::new();
    // A DTLS 1.2 server checks a fragmented ClientHello's cookie from its first piece (the
    // cookie binds only fields before it); a client of both versions gets its
    // HelloVerifyRequest at once.
    let dtls12 = Arc::new(support::dtls12().psk_server_key(KEY.to_vec()).build().unwrap());
    let mut ep = Endpoint::new(dtls12, now).unwrap();
    let both = Config::builder()
        .psk("pool", KEY.to_vec())
        .key_share_groups(&[KxGroup::X25519MlKem768, KxGroup::X25519])
        .build()
        .unwrap();
    let mut c = Connection::client(Arc::new(both), now).unwrap();
    let hello = drain(&mut c);
    assert_eq!(hello.len(), 2);
    assert!(matches!(ep.handle(now, addr(1), &hello[0], &mut resp), DatagramEvent::Respond));
    assert!(matches!(ep.handle(now, addr(1), &hello[1], &mut resp), DatagramEvent::Drop));
    assert_eq!(ep.pending_hellos(), 0);
    // Without cookies the connection starts on the first piece and reassembles the rest.
    let open = Arc::new(Config::builder().psk_server_key(KEY.to_vec()).cookie_verification(false).build().unwrap());
    let mut ep = Endpoint::new(open, now).unwrap();
    let mut c = client(now);
    let hello = drain(&mut c);
    let DatagramEvent::Incoming(inc) = ep.handle(now, addr(1), &hello[0], &mut resp) else { panic!("not admitted") };
    let (_h, mut server) = ep.accept(inc, now).unwrap();
    assert!(matches!(ep.handle(now, addr(1), &hello[1], &mut resp), DatagramEvent::Connection(_)));
    let mut rest = hello[1].clone();
    server.handle_datagram(now, &mut rest).unwrap();
    support::pump(now, &mut c, &mut server);
    assert!(c.is_established() && server.is_established());
    assert_eq!(ep.pending_hellos(), 0);
}

#[test]
fn a_spoofed_fragment_costs_about_what_a_cookie_check_does() {
    // The attacker's cheapest input per byte of state: a first fragment claiming a large
    // ClientHello, from a new source each time, every one evicting another. Against it, the
    // cookie check of whole (unfragmented) DTLS 1.3 ClientHellos, each answered with a
    // HelloRetryRequest: the work every server already does per spoofed datagram.
    let now = Instant::now();
    let flood: Vec<Vec<u8>> = (0..4_000u32).map(|i| spoofed_first_fragment(i, 8192, 1200)).collect();
    let cfg = Config::builder()
        .protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
        .groups(&[KxGroup::X25519])
        .psk("pool", KEY.to_vec())
        .build()
        .unwrap();
    let whole = drain(&mut Connection::client(Arc::new(cfg), now).unwrap()).pop().unwrap();
    let run = |hellos: &dyn Fn(usize) -> Vec<u8>| {
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let mut ep = Endpoint::new(server(), now).unwrap();
            let start = Instant::now();
            for i in 0..4_000 {
                let _ = ep.handle(now, addr(i as u32), &hellos(i), &mut Vec::new());
            }
            best = best.min(start.elapsed());
        }
        best
    };
    let fragments = run(&|i| flood[i].clone());
    let checks = run(&|_| whole.clone());
    let ratio = fragments.as_secs_f64() / checks.as_secs_f64();
    eprintln!("4,000 spoofed fragments {fragments:?}, 4,000 cookie checks {checks:?}, ratio {ratio:.2}");
    assert!(ratio <= 2.0, "a spoofed fragment costs {ratio:.2}x a cookie check");
}
