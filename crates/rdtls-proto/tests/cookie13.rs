//! The DTLS 1.3 stateless cookie (RFC 9147 §5.1): a ClientHello without one is answered with a
//! HelloRetryRequest no larger than itself and no state; the cookie carries the first
//! ClientHello's hash and is bound to the client's address and random; a second worker that
//! shares the secret accepts it.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls_proto::crypto::KxGroup;
use rdtls_proto::enums::Protocol;
use rdtls_proto::messages::{ServerHello, HS_HEADER_LEN};
use rdtls_proto::record::HEADER_LEN;
use rdtls_proto::{Config, Connection, DatagramEvent, Endpoint};

fn server_config(groups: &[KxGroup]) -> Arc<Config> {
    Arc::new(
        Config::builder()
            .protocol_versions(Protocol::Dtls1_2, Protocol::Dtls1_3)
            .groups(groups)
            .psk_server_key(b"flood key".to_vec())
            .build()
            .unwrap(),
    )
}

/// A DTLS 1.3 client and its first ClientHello, in one datagram: the client offers the
/// elliptic curves only (fragmented ClientHellos with a post-quantum share: tests/hello_pool.rs).
fn client(now: Instant) -> (Connection, Vec<u8>) {
    let cfg = Config::builder()
        .protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
        .groups(&[KxGroup::X25519, KxGroup::Secp256r1, KxGroup::Secp384r1])
        .psk("flooder", b"flood key".to_vec())
        .build()
        .unwrap();
    let mut c = Connection::client(Arc::new(cfg), now).unwrap();
    let mut ch = Vec::new();
    assert!(c.poll_transmit(&mut ch).is_some());
    (c, ch)
}

fn addr(i: u32) -> SocketAddr {
    SocketAddr::from(((0x0a00_0000 + i).to_be_bytes(), (1024 + i % 60000) as u16))
}

/// The HelloRetryRequest in a response datagram.
fn retry_request(resp: &[u8]) -> ServerHello {
    assert_eq!(resp[HEADER_LEN], 2, "server_hello");
    let hrr = ServerHello::parse(&resp[HEADER_LEN + HS_HEADER_LEN..]).expect("a ServerHello");
    assert!(hrr.is_retry_request());
    hrr
}

#[test]
fn ten_thousand_spoofed_dtls13_client_hellos_create_no_state() {
    let now = Instant::now();
    // One server whose group the client's share has (a cookie-only retry), one that asks for
    // another group (the retry carries the group too).
    for groups in [&[KxGroup::X25519][..], &[KxGroup::Secp384r1, KxGroup::X25519][..]] {
        let mut ep = Endpoint::new(server_config(groups), now).unwrap();
        let (_, ch) = client(now);
        let mut resp = Vec::new();
        let (mut bytes_in, mut bytes_out) = (0usize, 0usize);
        for i in 0..10_000u32 {
            let t = now + Duration::from_millis(u64::from(i));
            assert!(matches!(ep.handle(t, addr(i), &ch, &mut resp), DatagramEvent::Respond), "#{i}");
            assert!(resp.len() <= ch.len(), "HelloRetryRequest {} > ClientHello {}", resp.len(), ch.len());
            bytes_in += ch.len();
            bytes_out += resp.len();
        }
        let hrr = retry_request(&resp);
        assert!(hrr.extensions.tls13.cookie.is_some());
        assert_eq!(ep.connection_count(), 0);
        assert!(bytes_out < bytes_in, "amplification: {bytes_out} out for {bytes_in} in");
    }
}

/// The cookie exchange for `from`: returns the client and its second ClientHello.
fn second_client_hello(ep: &mut Endpoint, from: SocketAddr, now: Instant) -> (Connection, Vec<u8>) {
    let (mut c, ch1) = client(now);
    let mut resp = Vec::new();
    assert!(matches!(ep.handle(now, from, &ch1, &mut resp), DatagramEvent::Respond));
    // Same record sequence number as the ClientHello; DTLS 1.2 on the record layer.
    assert_eq!(&resp[1..3], &[0xfe, 0xfd]);
    assert_eq!(&resp[3..11], &ch1[3..11]);
    retry_request(&resp);
    c.handle_datagram(now, &mut resp).unwrap();
    let mut ch2 = Vec::new();
    assert!(c.poll_transmit(&mut ch2).is_some());
    (c, ch2)
}

#[test]
fn the_cookie_is_bound_to_address_and_random_and_expires() {
    let now = Instant::now();
    let mut ep = Endpoint::new(server_config(&[KxGroup::X25519]), now).unwrap();
    let a = addr(1);
    let (_, ch2) = second_client_hello(&mut ep, a, now);
    let mut resp = Vec::new();
    // From another address or port: dropped (a retry cannot be answered twice), no state.
    for from in [addr(2), SocketAddr::new(a.ip(), a.port() + 1)] {
        assert!(matches!(ep.handle(now, from, &ch2, &mut resp), DatagramEvent::Drop));
    }
    // Another random: dropped.
    let mut changed = ch2.clone();
    changed[HEADER_LEN + HS_HEADER_LEN + 2] ^= 1;
    assert!(matches!(ep.handle(now, a, &changed, &mut resp), DatagramEvent::Drop));
    // A flipped bit at the end of the cookie's MAC: find the cookie extension (type 44).
    let at = ch2.windows(2).rposition(|w| w == [0x00, 0x2c]).expect("cookie extension");
    let len = usize::from(u16::from_be_bytes([ch2[at + 4], ch2[at + 5]]));
    let mut flipped = ch2.clone();
    flipped[at + 6 + len - 1] ^= 1;
    assert!(matches!(ep.handle(now, a, &flipped, &mut resp), DatagramEvent::Drop));
    // Too late: dropped.
    assert!(matches!(ep.handle(now + Duration::from_secs(62), a, &ch2, &mut resp), DatagramEvent::Drop));
    assert_eq!(ep.connection_count(), 0);
    // The genuine one, in time, is admitted, and the server goes on with its ServerHello.
    let DatagramEvent::Incoming(inc) = ep.handle(now + Duration::from_secs(1), a, &ch2, &mut resp) else {
        panic!("not admitted")
    };
    let (_h, mut conn) = ep.accept(inc, now).unwrap();
    let mut flight = Vec::new();
    assert!(conn.poll_transmit(&mut flight).is_some());
    assert_eq!(flight[HEADER_LEN], 2, "server_hello");
    assert!(!ServerHello::parse(&flight[HEADER_LEN + HS_HEADER_LEN..][..86]).is_some_and(|s| s.is_retry_request()));
}

#[test]
fn a_worker_sharing_the_secret_accepts_the_cookie_and_completes() {
    let now = Instant::now();
    let cfg = server_config(&[KxGroup::X25519]);
    let mut first = Endpoint::new(cfg.clone(), now).unwrap();
    let mut second = Endpoint::new(cfg, now).unwrap();
    let secret = *first.verifier_mut().secret();
    second.verifier_mut().set_secret(now, secret);
    let a = addr(7);
    let (mut client, mut ch2) = second_client_hello(&mut first, a, now);
    let mut resp = Vec::new();
    let DatagramEvent::Incoming(inc) = second.handle(now, a, &ch2, &mut resp) else { panic!("not admitted") };
    let (_h, mut server) = second.accept(inc, now).unwrap();
    server.handle_datagram(now, &mut ch2).unwrap();
    support::pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    assert_eq!(server.protocol(), Some(Protocol::Dtls1_3));
}
