//! Handshakes over a seeded, impaired network on virtual time: every PSK suite completes under
//! 20% loss with reordering and duplication, at MTU 576 and 1500, replayably.

mod support;

use std::time::Duration;

use rdtls_proto::suites::{self, CipherSuite};
use rdtls_proto::{Config, Error, HandshakeState};
use support::{Link, Sim, To};

const KEY: &[u8] = b"an example pre-shared key";

fn configs(suite: &'static CipherSuite, mtu: usize, seed: u64) -> (Config, Config) {
    let client = Config::builder().cipher_suites(&[suite]).psk("sim-client", KEY.to_vec()).mtu(mtu).rng_seed(seed);
    let server = Config::builder()
        .cipher_suites(&[suite])
        .psk_server_callback(|id| (id == b"sim-client").then(|| KEY.to_vec().into()))
        .psk_identity_hint("sim hint")
        .mtu(mtu)
        .rng_seed(seed);
    (client.build().unwrap(), server.build().unwrap())
}

/// Runs one lossy handshake and a data exchange; panics with the seed on failure.
fn lossy_run(suite: &'static CipherSuite, mtu: usize, seed: u64) -> support::Trace {
    let (c, s) = configs(suite, mtu, seed);
    let link = Link::lossy(0.2, mtu);
    let mut sim = Sim::new(seed, c, s, link, link);
    let done = sim.run_handshake(Duration::from_secs(60));
    assert!(
        done,
        "{suite} mtu {mtu} seed {seed}: handshake did not complete in {:?}: client {:?} {:?}, server errors {:?}",
        sim.elapsed(),
        sim.client.handshake_state(),
        sim.client_error,
        sim.server_errors
    );
    assert_eq!(sim.client.cipher_suite(), Some(suite));
    assert_eq!(sim.server_conn().unwrap().psk_identity(), Some(&b"sim-client"[..]));
    assert!(sim.client.extended_master_secret());
    assert_eq!(sim.trace.oversize, 0, "a datagram exceeded the MTU");
    assert!(sim.trace.sent.iter().all(|&(_, _, n)| n <= mtu));

    // Application data both ways: each record arrives at most once, intact.
    for i in 0..20u32 {
        let mut rec = Vec::new();
        sim.client.send(format!("c{i}").as_bytes(), &mut rec).unwrap();
        sim.send(To::Server, rec);
        let mut rec = Vec::new();
        sim.server_conn_mut().unwrap().send(format!("s{i}").as_bytes(), &mut rec).unwrap();
        sim.send(To::Client, rec);
    }
    sim.run_for(Duration::from_secs(2));
    for (got, prefix) in [(&sim.server_received, "c"), (&sim.client_received, "s")] {
        let mut seen = std::collections::HashSet::new();
        for m in got {
            let s = std::str::from_utf8(m).unwrap();
            assert!(s.starts_with(prefix) && s[1..].parse::<u32>().unwrap() < 20, "garbled {s:?}");
            assert!(seen.insert(s.to_owned()), "{suite} seed {seed}: {s} delivered twice");
        }
        // 20% loss, 20 records: at least a few must arrive.
        assert!(seen.len() >= 5, "{suite} seed {seed}: only {} of 20 records arrived", seen.len());
    }
    assert!(sim.client_error.is_none() && sim.server_errors.is_empty());
    sim.trace
}

const SEEDS: u64 = 50;

macro_rules! suite_tests {
    ($($name:ident => $suite:expr,)*) => {$(
        #[test]
        fn $name() {
            for mtu in [576, 1500] {
                for seed in 0..SEEDS {
                    lossy_run(&$suite, mtu, seed);
                }
            }
        }
    )*};
}

suite_tests! {
    psk_aes128_gcm => suites::TLS_PSK_WITH_AES_128_GCM_SHA256,
    psk_aes256_gcm => suites::TLS_PSK_WITH_AES_256_GCM_SHA384,
    psk_chacha20 => suites::TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
    psk_aes128_ccm => suites::TLS_PSK_WITH_AES_128_CCM,
    psk_aes128_ccm8 => suites::TLS_PSK_WITH_AES_128_CCM_8,
    ecdhe_psk_chacha20 => suites::TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256,
    ecdhe_psk_aes128_gcm => suites::TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256,
}

#[test]
fn same_seed_same_run() {
    let a = lossy_run(&suites::TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256, 576, 7);
    let b = lossy_run(&suites::TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256, 576, 7);
    assert_eq!(a, b, "a run must be a pure function of its seed");
    let c = lossy_run(&suites::TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256, 576, 8);
    assert_ne!(a, c);
}

/// Tiny MTU, 128-byte identity, 64-byte key and a long hint: every flight is fragmented, and
/// fragments are lost, duplicated and reordered.
#[test]
fn fragmented_flights_under_loss() {
    let identity = vec![b'i'; 128];
    let key = vec![0x5a; 64];
    for seed in 0..SEEDS {
        let id2 = identity.clone();
        let key2 = key.clone();
        let client = Config::builder()
            .cipher_suites(&[&suites::TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256])
            .psk(identity.clone(), key.clone())
            .mtu(96)
            .rng_seed(seed)
            .build()
            .unwrap();
        let server = Config::builder()
            .cipher_suites(&[&suites::TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256])
            .psk_server_callback(move |id| (id == id2.as_slice()).then(|| key2.clone().into()))
            .psk_identity_hint(vec![b'h'; 200])
            .mtu(96)
            .rng_seed(seed)
            .build()
            .unwrap();
        // The ClientHello (about 150 bytes) is never fragmented, so the client-to-server path
        // carries it; every other message is fragmented to 96 bytes.
        let mut sim = Sim::new(seed, client, server, Link::lossy(0.2, 200), Link::lossy(0.2, 96));
        assert!(
            sim.run_handshake(Duration::from_secs(60)),
            "seed {seed}: {:?} {:?}",
            sim.client_error,
            sim.server_errors
        );
        let to_client: Vec<_> = sim.trace.sent.iter().filter(|(_, to, _)| *to == To::Client).collect();
        assert!(to_client.len() >= 5, "server flight should be fragmented into many datagrams");
        assert!(to_client.iter().all(|(_, _, n)| *n <= 96));
        let to_server: Vec<_> = sim.trace.sent.iter().filter(|(_, to, _)| *to == To::Server).collect();
        assert!(to_server.iter().filter(|(_, _, n)| *n <= 96).count() >= 3, "client flight 5 should be fragmented");
        assert_eq!(sim.server_conn().unwrap().psk_identity(), Some(identity.as_slice()));
        assert_eq!(sim.client.reassembly_bytes(), 0);
    }
}

/// With every server datagram lost, the client retransmits at 1, 3, 7, 15, 31 s (each timeout
/// doubled, up to 10% jitter) and gives up at the 60 s handshake timeout.
#[test]
fn retransmission_backoff_and_handshake_timeout() {
    let (c, s) = configs(&suites::TLS_PSK_WITH_AES_128_GCM_SHA256, 1500, 1);
    let mut dead = Link::PERFECT;
    dead.loss = 1.0;
    let mut sim = Sim::new(1, c, s, Link::PERFECT, dead);
    assert!(!sim.run_handshake(Duration::from_secs(120)));
    assert_eq!(sim.client_error, Some(Error::HandshakeTimeout));
    assert_eq!(sim.client.handshake_state(), HandshakeState::InProgress);
    assert!(sim.client.is_closed());
    let client_sends: Vec<f64> =
        sim.trace.sent.iter().filter(|(_, to, _)| *to == To::Server).map(|(t, _, _)| *t as f64 / 1000.0).collect();
    let expected = [0.0, 1.0, 3.0, 7.0, 15.0, 31.0];
    assert_eq!(client_sends.len(), expected.len(), "sends at {client_sends:?}");
    let mut prev = 0.0;
    for (i, (&got, &want)) in client_sends.iter().zip(&expected).enumerate() {
        let gap = want - prev;
        assert!(got >= want - 0.001 && got <= prev + gap * 1.1 + 0.01 + (got - want).max(0.0), "send {i} at {got}");
        prev = got;
    }
    assert!(sim.elapsed() >= Duration::from_secs(60) && sim.elapsed() < Duration::from_secs(61));
}

/// The server's final flight is lost: the client's retransmitted flight makes the server send it
/// again, and both complete.
#[test]
fn lost_final_flight_is_resent_on_peer_retransmission() {
    let (c, s) = configs(&suites::TLS_PSK_WITH_AES_128_GCM_SHA256, 1500, 3);
    let mut sim = Sim::new(3, c, s, Link::PERFECT, Link::PERFECT);
    // Drop the first datagram to the client that starts with ChangeCipherSpec: the server's
    // final flight.
    let mut dropped = false;
    sim.filter = Some(Box::new(move |to, d| {
        let hit = !dropped && to == To::Client && d.first() == Some(&20);
        dropped |= hit;
        hit
    }));
    assert!(sim.run_handshake(Duration::from_secs(10)));
    assert!(sim.server_conn().unwrap().stats().retransmissions >= 1);
    assert!(sim.elapsed() >= Duration::from_secs(1), "completion needs the client's retransmission timer");
}
