//! Adversarial cost: the CPU a datagram can make the core spend, for the worst inputs we can
//! build, against the cost of ordinary input of the same kind. Budgets are ratios measured on
//! the machine that runs the test (each side's minimum over interleaved rounds), never
//! wall-clock limits, so they hold on a slow machine and in debug builds.
//!
//! These guard the findings of the security review: reassembly bookkeeping that grew without
//! bound (1), quadratic duplicate-extension checks before the cookie (2).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls_proto::codec::Put;
use rdtls_proto::enums::{ExtensionType, HandshakeType};
use rdtls_proto::messages::{put_extension, ClientHello, HandshakeHeader};
use rdtls_proto::record::RecordHeader;
use rdtls_proto::{ClientVerifier, Config, Connection, DatagramEvent, Endpoint, Protocol, Verification};

mod support;
use support::Rng;

/// Runs `a` and `b` alternately for `rounds` rounds and returns each one's fastest run.
fn fastest(rounds: usize, mut a: impl FnMut() -> Duration, mut b: impl FnMut() -> Duration) -> (Duration, Duration) {
    let (mut best_a, mut best_b) = (Duration::MAX, Duration::MAX);
    for round in 0..rounds {
        // Alternate which goes first, so neither always runs on a warmer cache.
        if round % 2 == 0 {
            best_a = best_a.min(a());
            best_b = best_b.min(b());
        } else {
            best_b = best_b.min(b());
            best_a = best_a.min(a());
        }
    }
    (best_a, best_b)
}

fn ratio(worst: Duration, base: Duration) -> f64 {
    worst.as_secs_f64() / base.as_secs_f64().max(1e-9)
}

// ===== reassembly =====

const RECORDS_PER_DATAGRAM: usize = 32;
const DATAGRAMS: usize = 2_000;
/// Declared length of the message the fragments belong to: the largest one we reassemble.
const MESSAGE_LEN: u32 = 16 * 1024;

/// A client, and a server connection that took its ClientHello and waits for its next flight;
/// with the server's flight, not yet delivered.
fn server_awaiting_flight() -> (Connection, Connection, Vec<Vec<u8>>) {
    let now = Instant::now();
    let client_cfg = Arc::new(Config::builder().psk("cost", b"cost key".to_vec()).build().unwrap());
    let server_cfg =
        Arc::new(Config::builder().psk_server_key(b"cost key".to_vec()).cookie_verification(false).build().unwrap());
    let mut client = Connection::client(client_cfg, now).unwrap();
    let mut server = Connection::server(server_cfg, now).unwrap();
    let mut buf = Vec::new();
    // The ClientHello: one datagram (with the curve's share alone when the hybrid's would not
    // fit the MTU).
    let mut hello = 0;
    while client.poll_transmit(&mut buf).is_some() {
        server.handle_datagram(now, &mut buf).unwrap();
        hello += 1;
    }
    assert_eq!(hello, 1);
    let mut flight = Vec::new();
    while server.poll_transmit(&mut buf).is_some() {
        flight.push(buf.clone());
    }
    (client, server, flight)
}

/// One datagram of epoch-0 handshake records, one fragment each: `(message_seq, offset, bytes)`.
fn fragments_datagram(seq: &mut u64, frags: &[(u16, u32, &[u8])]) -> Vec<u8> {
    let mut d = Vec::new();
    for &(message_seq, offset, bytes) in frags {
        let mut body = Vec::new();
        HandshakeHeader {
            msg_type: HandshakeType::CERTIFICATE,
            length: MESSAGE_LEN,
            message_seq,
            fragment_offset: offset,
            fragment_length: bytes.len() as u32,
        }
        .write(&mut body);
        body.extend_from_slice(bytes);
        RecordHeader {
            content_type: rdtls_proto::enums::ContentType::HANDSHAKE,
            version: rdtls_proto::enums::ProtocolVersion::DTLS1_2,
            epoch: 0,
            seq: *seq,
            length: body.len() as u16,
        }
        .write(&mut d);
        *seq += 1;
        d.extend_from_slice(&body);
    }
    d
}

/// The attack of finding 1: one-byte fragments of two future messages, at scattered and
/// overlapping offsets, so every fragment is new and none joins another (then ones that
/// overlap and join what is held), 32 records a datagram.
fn hostile_datagrams(rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut seq = 1;
    (0..DATAGRAMS)
        .map(|i| {
            let frags: Vec<(u16, u32, &[u8])> = (0..RECORDS_PER_DATAGRAM)
                .map(|k| {
                    let message_seq = 2 + (k % 2) as u16;
                    let offset = if i % 4 == 3 {
                        // Overlap: odd offsets between held even ones.
                        (rng.below(u64::from(MESSAGE_LEN) / 2) * 2 + 1) as u32
                    } else {
                        (rng.below(u64::from(MESSAGE_LEN) / 2) * 2) as u32
                    };
                    (message_seq, offset, &b"x"[..])
                })
                .collect();
            fragments_datagram(&mut seq, &frags)
        })
        .collect()
}

/// What a well-behaved peer sends: the same datagrams, records and fragment sizes, but each
/// fragment continues the one before it (the two messages are tiled in order).
fn well_formed_datagrams() -> Vec<Vec<u8>> {
    let mut seq = 1;
    let mut next = [0u32; 2];
    (0..DATAGRAMS)
        .map(|_| {
            let frags: Vec<(u16, u32, &[u8])> = (0..RECORDS_PER_DATAGRAM)
                .map(|k| {
                    let m = k % 2;
                    let offset = next[m] % MESSAGE_LEN;
                    next[m] += 1;
                    (2 + m as u16, offset, &b"x"[..])
                })
                .collect();
            fragments_datagram(&mut seq, &frags)
        })
        .collect()
}

/// Feeds every datagram to a fresh server connection; returns the time taken and the most
/// bytes reassembly held at any point.
fn feed(datagrams: &[Vec<u8>]) -> (Duration, usize) {
    let (_, mut server, _) = server_awaiting_flight();
    let mut copies: Vec<Vec<u8>> = datagrams.to_vec();
    let mut peak = 0;
    let start = Instant::now();
    for d in &mut copies {
        let got = server.handle_datagram(start, d).expect("fragments are not fatal");
        assert!(got.is_empty());
        peak = peak.max(server.reassembly_bytes());
    }
    let took = start.elapsed();
    assert!(!server.is_closed());
    (took, peak)
}

#[test]
fn hostile_fragments_cost_at_most_three_times_well_formed_ones() {
    let hostile = hostile_datagrams(&mut Rng::new(7));
    let well_formed = well_formed_datagrams();
    let mut peak = 0;
    let (worst, base) = fastest(
        7,
        || {
            let (t, p) = feed(&hostile);
            peak = peak.max(p);
            t
        },
        || feed(&well_formed).0,
    );
    let r = ratio(worst, base);
    eprintln!(
        "reassembly: {DATAGRAMS} hostile datagrams {worst:?}, well-formed {base:?}, ratio {r:.2}, peak {peak} bytes"
    );
    assert!(r <= 3.0, "hostile fragments cost {r:.2}x well-formed ones ({worst:?} vs {base:?})");
    assert!(peak <= 32 * 1024, "reassembly held {peak} bytes");
}

#[test]
fn hostile_fragments_leave_the_handshake_able_to_complete() {
    // After a flood of hostile fragments for later messages, which fills the reassembly budget,
    // the real client's flight still completes the handshake: the messages the handshake waits
    // for displace later ones.
    let now = Instant::now();
    let (mut client, mut server, flight) = server_awaiting_flight();
    let mut buf = Vec::new();
    for mut d in hostile_datagrams(&mut Rng::new(9)).into_iter().take(300) {
        // The same attack on the messages after the client's flight (1 and 2 here).
        retarget(&mut d, 4);
        server.handle_datagram(now, &mut d).unwrap();
    }
    assert_eq!(server.reassembly_bytes(), 32 * 1024, "the hostile messages fill the budget");
    assert!(server.stats().dropped_fragments > 0, "the range cap refused scattered fragments");
    for mut d in flight {
        client.handle_datagram(now, &mut d).unwrap();
    }
    while client.poll_transmit(&mut buf).is_some() {
        server.handle_datagram(now, &mut buf).unwrap();
    }
    while server.poll_transmit(&mut buf).is_some() {
        client.handle_datagram(now, &mut buf).unwrap();
    }
    assert!(client.is_established() && server.is_established());
}

/// Moves every fragment of a datagram built by [`fragments_datagram`] `by` messages later.
fn retarget(datagram: &mut [u8], by: u16) {
    let mut pos = 0;
    while pos < datagram.len() {
        let len = usize::from(u16::from_be_bytes([datagram[pos + 11], datagram[pos + 12]]));
        let at = pos + 13 + 4;
        let seq = u16::from_be_bytes([datagram[at], datagram[at + 1]]) + by;
        datagram[at..at + 2].copy_from_slice(&seq.to_be_bytes());
        pos += 13 + len;
    }
}

// ===== the ClientHello before the cookie =====

/// A ClientHello datagram: `extensions` empty extensions of distinct types, or one extension
/// of `pad` bytes, with `cookie`.
fn client_hello(extensions: usize, pad: usize, cookie: &[u8]) -> Vec<u8> {
    client_hello_of(false, extensions, pad, cookie)
}

/// [`client_hello`], offering DTLS 1.3 (`tls13`: TLS_AES_128_GCM_SHA256 and X25519, with no
/// key share, so that a server asks for one) or DTLS 1.2 (PSK-AES128-GCM-SHA256) only. Its
/// TLS 1.3 extensions come last, after the empty ones: wherever the scan stops, it has read
/// every header first.
fn client_hello_of(tls13: bool, extensions: usize, pad: usize, cookie: &[u8]) -> Vec<u8> {
    let padding = (pad > 0).then(|| (ExtensionType(0xfff0), vec![0u8; pad]));
    client_hello_with(tls13, extensions, padding, cookie)
}

/// [`client_hello_of`] with `extra`, an extension of any type and body, in place of padding.
fn client_hello_with(
    tls13: bool,
    extensions: usize,
    extra: Option<(ExtensionType, Vec<u8>)>,
    cookie: &[u8],
) -> Vec<u8> {
    let mut body = Vec::new();
    body.put_u16(0xfefd);
    body.extend_from_slice(&[0x5a; 32]);
    body.put_vec8(&[]);
    body.put_vec8(cookie);
    body.put_vec16(if tls13 { &[0x13, 0x01] } else { &[0x00, 0xa8] });
    body.put_vec8(&[0]);
    body.put_len16(|b| {
        if tls13 {
            for i in 0..extensions {
                put_extension(b, ExtensionType(1000 + i as u16), |_| {});
            }
            put_extension(b, ExtensionType::SUPPORTED_GROUPS, |b| b.put_vec16(&[0x00, 0x1d]));
            put_extension(b, ExtensionType::KEY_SHARE, |b| b.put_vec16(&[]));
            put_extension(b, ExtensionType::SIGNATURE_ALGORITHMS, |b| b.put_vec16(&[0x04, 0x03]));
            put_extension(b, ExtensionType::SUPPORTED_VERSIONS, |b| b.put_vec8(&[0xfe, 0xfc]));
            if let Some((ty, data)) = &extra {
                put_extension(b, *ty, |b| b.extend_from_slice(data));
            }
            return;
        }
        for i in 0..extensions {
            put_extension(b, ExtensionType(1000 + i as u16), |_| {});
        }
        if let Some((ty, data)) = &extra {
            put_extension(b, *ty, |b| b.extend_from_slice(data));
        }
    });
    let mut hs = Vec::new();
    rdtls_proto::messages::write_message(&mut hs, HandshakeType::CLIENT_HELLO, 0, &body);
    let mut d = Vec::new();
    RecordHeader {
        content_type: rdtls_proto::enums::ContentType::HANDSHAKE,
        version: rdtls_proto::enums::ProtocolVersion::DTLS1_0,
        epoch: 0,
        seq: 0,
        length: hs.len() as u16,
    }
    .write(&mut d);
    d.extend_from_slice(&hs);
    d
}

fn peer() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 4444))
}

#[test]
fn the_largest_client_hello_costs_the_verifier_what_the_smallest_does() {
    // A DTLS 1.2 verifier reads the fields the cookie binds and nothing else, so its cost does
    // not grow with the ClientHello. (With DTLS 1.3 on it must find supported_versions among
    // the extensions: see the test after this one.)
    let now = Instant::now();
    let cfg = Config::builder()
        .protocol_versions(Protocol::Dtls1_2, Protocol::Dtls1_2)
        .psk_server_key(b"k".to_vec())
        .build()
        .unwrap();
    let mut verifier = ClientVerifier::new(&cfg, now).unwrap();
    // The costliest path: the secret changed (so a cookie is tried under the previous one
    // too), and the cookie has a current timestamp but a wrong MAC, so both MACs are computed
    // and then a new cookie: three HMACs, where a ClientHello without a cookie takes one.
    verifier.set_secret(now, [1; 32]);
    let forged_cookie = [[0u8; 4].as_slice(), &[0xee; 16]].concat();
    // The worst ClientHello we can build: the largest we take (16 KiB), made of 4,080
    // distinct empty extensions, with that cookie, followed by more records up to a 64 KiB
    // datagram.
    let mut worst = client_hello(4_080, 0, &forged_cookie);
    assert!(worst.len() - 25 <= 16 * 1024 && worst.len() - 25 > 16 * 1024 - 64, "{}", worst.len());
    let tail = client_hello(12_000, 0, &[0xee; 20]);
    while worst.len() + tail.len() <= 65_507 {
        worst.extend_from_slice(&tail);
    }
    assert!(worst.len() > 60_000, "{}", worst.len());
    let minimal = client_hello(0, 0, &[]);
    let mut resp = Vec::new();
    // A larger one is refused outright.
    assert_eq!(verifier.verify(now, &peer(), &tail, &mut resp), Verification::Drop);
    assert_eq!(verifier.verify(now, &peer(), &worst, &mut resp), Verification::SendHelloVerifyRequest);
    assert_eq!(verifier.verify(now, &peer(), &minimal, &mut resp), Verification::SendHelloVerifyRequest);
    let run = |v: &mut ClientVerifier, d: &[u8]| {
        let mut resp = Vec::new();
        let start = Instant::now();
        for _ in 0..200 {
            std::hint::black_box(v.verify(now, &peer(), d, &mut resp));
        }
        start.elapsed() / 200
    };
    let mut v2 = ClientVerifier::new(&cfg, now).unwrap();
    v2.set_secret(now, [1; 32]);
    let (w, m) = fastest(15, || run(&mut verifier, &worst), || run(&mut v2, &minimal));
    let r = ratio(w, m);
    eprintln!(
        "verifier: worst ClientHello ({} bytes) {w:?}, minimal ({} bytes) {m:?}, ratio {r:.2}",
        worst.len(),
        minimal.len()
    );
    assert!(r <= 10.0, "the worst ClientHello costs {r:.2}x a minimal one ({w:?} vs {m:?})");

    // Through the endpoint too (it also looks for a restarted client's random).
    let mut ep1 = Endpoint::new(Arc::new(cfg.clone()), now).unwrap();
    let mut ep2 = Endpoint::new(Arc::new(cfg), now).unwrap();
    ep1.verifier_mut().set_secret(now, [1; 32]);
    ep2.verifier_mut().set_secret(now, [1; 32]);
    let run = |ep: &mut Endpoint, d: &[u8]| {
        let mut resp = Vec::new();
        let start = Instant::now();
        for _ in 0..200 {
            assert!(matches!(ep.handle(now, peer(), d, &mut resp), DatagramEvent::Respond));
        }
        start.elapsed() / 200
    };
    let (w, m) = fastest(15, || run(&mut ep1, &worst), || run(&mut ep2, &minimal));
    let r = ratio(w, m);
    eprintln!("endpoint: worst ClientHello {w:?}, minimal {m:?}, ratio {r:.2}");
    assert!(r <= 10.0, "the worst ClientHello costs the endpoint {r:.2}x a minimal one");
}

/// With DTLS 1.3 on, the verifier walks the extension headers of every whole ClientHello to
/// find supported_versions (a client may put it last), and for a DTLS 1.3 one also parses it
/// whole and hashes it into the HelloRetryRequest's cookie: its cost grows with the ClientHello.
/// What bounds a flood is then the cost per byte received, and no ClientHello may cost more
/// per byte than the smallest one of its version does.
#[test]
fn with_dtls13_on_no_client_hello_costs_the_verifier_more_per_byte_than_the_smallest() {
    let now = Instant::now();
    let cfg = Config::builder().psk_server_key(b"k".to_vec()).build().unwrap();
    assert_eq!(cfg.protocol_versions(), (Protocol::Dtls1_2, Protocol::Dtls1_3));
    let run = |v: &mut ClientVerifier, d: &[u8], expect: Verification| {
        let mut resp = Vec::new();
        assert_eq!(v.verify(now, &peer(), d, &mut resp), expect);
        let start = Instant::now();
        for _ in 0..100 {
            std::hint::black_box(v.verify(now, &peer(), d, &mut resp));
        }
        start.elapsed() / 100
    };
    for (tls13, expect) in [(false, Verification::SendHelloVerifyRequest), (true, Verification::SendHelloRetryRequest)]
    {
        // As many distinct empty extensions as 16 KiB hold, then a datagram filled up to 64 KiB
        // with further records (which the verifier does not read).
        let mut worst = client_hello_of(tls13, 4_060, 0, &[]);
        assert!(worst.len() - 25 <= 16 * 1024 && worst.len() - 25 > 16 * 1024 - 128, "{}", worst.len());
        let filler = client_hello_of(tls13, 1_000, 0, &[]);
        while worst.len() + filler.len() <= 65_507 {
            worst.extend_from_slice(&filler);
        }
        // The smallest the verifier answers: a HelloRetryRequest is never larger than its
        // ClientHello, and a real one carries a key share, which this one pads for.
        let minimal = client_hello_of(tls13, 0, if tls13 { 64 } else { 0 }, &[]);
        let mut a = ClientVerifier::new(&cfg, now).unwrap();
        let mut b = ClientVerifier::new(&cfg, now).unwrap();
        let (w, m) = fastest(9, || run(&mut a, &worst, expect), || run(&mut b, &minimal, expect));
        let (per_byte_w, per_byte_m) = (w.as_secs_f64() / worst.len() as f64, m.as_secs_f64() / minimal.len() as f64);
        eprintln!(
            "verifier, DTLS 1.3 on, {} ClientHello: worst ({} bytes) {w:?}, minimal ({} bytes) {m:?}; per byte {:.2} vs {:.2} ns",
            if tls13 { "DTLS 1.3" } else { "DTLS 1.2" },
            worst.len(),
            minimal.len(),
            per_byte_w * 1e9,
            per_byte_m * 1e9
        );
        assert!(per_byte_w <= per_byte_m, "the worst ClientHello costs more per byte than a minimal one");
    }
}

/// The lists a DTLS 1.3 verifier reads whole before the cookie, at their longest in a 16 KiB
/// ClientHello: 8,000 one-byte ALPN names and 8,000 SRTP profiles cost no more per byte than
/// the smallest ClientHello (each list is one allocation, not one per entry).
#[test]
fn the_longest_alpn_and_srtp_lists_cost_the_verifier_no_more_per_byte_than_the_smallest_hello() {
    let now = Instant::now();
    let cfg = Config::builder().psk_server_key(b"k".to_vec()).build().unwrap();
    let names: Vec<Vec<u8>> = (0..8_000u32).map(|i| vec![(i % 251) as u8 + 1]).collect();
    let mut alpn = Vec::new();
    rdtls_proto::alpn::ProtocolList::new(&names).unwrap().emit(&mut alpn);
    let mut srtp = Vec::new();
    rdtls_proto::srtp::UseSrtp { profiles: (0..8_000).collect(), mki: vec![7; 255] }.emit(&mut srtp);
    let minimal = client_hello_of(true, 0, 64, &[]);
    for (name, ty, body) in [
        ("ALPN", ExtensionType::APPLICATION_LAYER_PROTOCOL_NEGOTIATION, alpn),
        ("use_srtp", ExtensionType::USE_SRTP, srtp),
    ] {
        let worst = client_hello_with(true, 0, Some((ty, body)), &[]);
        assert!(worst.len() > 16_000 && worst.len() - 25 <= 16 * 1024, "{name}: {}", worst.len());
        let run = |v: &mut ClientVerifier, d: &[u8]| {
            let mut resp = Vec::new();
            assert_eq!(v.verify(now, &peer(), d, &mut resp), Verification::SendHelloRetryRequest, "{name}");
            let start = Instant::now();
            for _ in 0..100 {
                std::hint::black_box(v.verify(now, &peer(), d, &mut resp));
            }
            start.elapsed() / 100
        };
        let mut a = ClientVerifier::new(&cfg, now).unwrap();
        let mut b = ClientVerifier::new(&cfg, now).unwrap();
        let (w, m) = fastest(9, || run(&mut a, &worst), || run(&mut b, &minimal));
        let (per_byte_w, per_byte_m) = (w.as_secs_f64() / worst.len() as f64, m.as_secs_f64() / minimal.len() as f64);
        eprintln!("verifier, {name}: {w:?} for {} bytes, minimal {m:?} for {}", worst.len(), minimal.len());
        assert!(
            per_byte_w <= per_byte_m,
            "{name}: {:.2} ns per byte against {:.2}",
            per_byte_w * 1e9,
            per_byte_m * 1e9
        );
    }
}

#[test]
fn duplicate_extension_checks_are_linear() {
    // After the cookie, the whole ClientHello is parsed: its cost grows with the number of
    // extensions, linearly (16 times the extensions may cost at most 32 times the time; the
    // quadratic check this replaces cost 256 times).
    let few = client_hello(1_000, 0, &[]);
    let many = client_hello(16_000, 0, &[]);
    let body = |d: &[u8]| d[25..].to_vec();
    let (few, many) = (body(&few), body(&many));
    assert!(ClientHello::parse(&many).is_some());
    let run = |b: &[u8]| {
        let start = Instant::now();
        for _ in 0..20 {
            std::hint::black_box(ClientHello::parse(b));
        }
        start.elapsed() / 20
    };
    let (m, f) = fastest(9, || run(&many), || run(&few));
    let r = ratio(m, f);
    eprintln!("ClientHello parse: 16,000 extensions {m:?}, 1,000 extensions {f:?}, ratio {r:.2}");
    assert!(r <= 32.0, "16x the extensions cost {r:.2}x the time");
    // A duplicate among many is still found.
    let mut dup = client_hello(2_000, 0, &[]);
    let at = dup.len() - 4; // the last extension's type: make it the first one's
    dup[at..at + 2].copy_from_slice(&1000u16.to_be_bytes());
    assert!(ClientHello::parse(&dup[25..]).is_none());
}

#[test]
fn duplicate_key_share_checks_are_linear() {
    // A DTLS 1.3 key_share may carry thousands of 1-byte shares (5 bytes each); at most one per
    // group is allowed, and checking that costs linear time, not quadratic.
    use rdtls_proto::enums::ProtocolVersion;
    use rdtls_proto::messages::tls13::{KeyShare, KeyShareEntry, Tls13Extensions};
    use rdtls_proto::messages::HelloExtensions;
    let hello = |shares: u16, duplicate: bool| {
        let mut entries: Vec<_> = (0..shares).map(|g| KeyShareEntry { group: g, key_exchange: vec![1] }).collect();
        if duplicate {
            entries.last_mut().expect("shares").group = 0;
        }
        let ch = ClientHello {
            client_version: ProtocolVersion::DTLS1_2,
            random: [0; 32],
            session_id: Vec::new(),
            cookie: Vec::new(),
            cipher_suites: vec![0x1301],
            compression_methods: vec![0],
            extensions: HelloExtensions {
                tls13: Tls13Extensions { key_share: Some(KeyShare::Offered(entries)), ..Default::default() },
                ..Default::default()
            },
        };
        let mut body = Vec::new();
        ch.emit(&mut body);
        body
    };
    let (few, many) = (hello(800, false), hello(12_800, false));
    assert!(ClientHello::parse(&many).is_some());
    let run = |b: &[u8]| {
        let start = Instant::now();
        for _ in 0..20 {
            std::hint::black_box(ClientHello::parse(b));
        }
        start.elapsed() / 20
    };
    let (m, f) = fastest(9, || run(&many), || run(&few));
    let r = ratio(m, f);
    eprintln!("ClientHello parse: 12,800 key shares {m:?}, 800 key shares {f:?}, ratio {r:.2}");
    assert!(r <= 32.0, "16x the key shares cost {r:.2}x the time");
    // The duplicate group is found: the hello is marked, for a DTLS 1.3 server to refuse.
    let (dup, _) = ClientHello::parse(&hello(12_800, true)).unwrap();
    assert!(dup.extensions.tls13.malformed, "the duplicate group is found");
}

/// A server's ALPN choice looks each offered name up among its own (RFC 7301 lets a client
/// offer thousands in a 16 KiB ClientHello, a server's list may hold a few hundred): the
/// longest configured list against the longest offer of names it does not have costs at most
/// four times what one configured name does (comparing every pair cost 175 times, in a debug
/// build).
#[test]
fn the_servers_alpn_choice_costs_no_more_with_the_longest_list() {
    let now = Instant::now();
    let names: Vec<[u8; 2]> = (0..5_400u16).map(|i| (i | 0x8000).to_be_bytes()).collect();
    let mut alpn = Vec::new();
    rdtls_proto::alpn::ProtocolList::new(&names).unwrap().emit(&mut alpn);
    let hello = client_hello_with(false, 0, Some((ExtensionType::APPLICATION_LAYER_PROTOCOL_NEGOTIATION, alpn)), &[]);
    assert!(hello.len() > 16_000, "{}", hello.len());
    // 341 two-byte names fill the 1,024 bytes a configured list may take.
    let longest: Vec<[u8; 2]> = (0..341u16).map(u16::to_be_bytes).collect();
    let server = |ours: &[[u8; 2]]| {
        let b = Config::builder().protocol_versions(Protocol::Dtls1_2, Protocol::Dtls1_2);
        Arc::new(b.psk_server_key(b"k".to_vec()).cookie_verification(false).alpn_protocols(ours).build().unwrap())
    };
    let (long, one) = (server(&longest), server(&longest[..1]));
    let run = |cfg: &Arc<Config>| {
        let start = Instant::now();
        for _ in 0..20 {
            let mut conn = Connection::server(cfg.clone(), now).unwrap();
            let err = conn.handle_datagram(now, &mut hello.clone()).unwrap_err();
            assert!(err.to_string().contains("application protocol"), "{err}");
        }
        start.elapsed() / 20
    };
    let (l, o) = fastest(9, || run(&long), || run(&one));
    eprintln!("ALPN choice: {l:?} with 341 names of ours, {o:?} with one");
    assert!(l <= 4 * o, "{l:?} against {o:?}");
}
