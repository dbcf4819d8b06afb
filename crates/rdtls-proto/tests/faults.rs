//! Corruption, truncation and packing on top of loss, duplication and reordering.
//!
//! A corrupted plaintext handshake message (epoch 0 is unauthenticated, and each message is
//! processed once) makes the two sides' transcripts or keys differ: that handshake cannot
//! succeed with any TLS stack, and must instead fail cleanly with a typed error, never hang or
//! panic. (On real networks the UDP checksum keeps this rare.) Everything else is recovered,
//! and nothing garbled or duplicated ever reaches the application.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use rdtls_proto::suites;
use rdtls_proto::Config;
use support::pki::{Alg, Ca, Usage, Validity};
use support::{Link, Sim, To};

fn nasty(mtu: usize) -> Link {
    Link { corrupt: 0.05, truncate: 0.05, pack: 0.2, duplicate: 0.1, reorder: 0.3, ..Link::lossy(0.1, mtu) }
}

fn exchange(sim: &mut Sim, seed: u64, at_least: usize) {
    for i in 0..40u32 {
        let mut rec = Vec::new();
        sim.client.send(format!("payload number {i}").as_bytes(), &mut rec).unwrap();
        sim.send(To::Server, rec);
    }
    sim.run_for(Duration::from_secs(3));
    let mut seen = HashSet::new();
    for m in &sim.server_received {
        let s = std::str::from_utf8(m).expect("never garbled");
        let n: u32 = s.strip_prefix("payload number ").expect("never garbled").parse().unwrap();
        assert!(n < 40);
        assert!(seen.insert(n), "seed {seed}: {n} delivered twice");
    }
    assert!(seen.len() >= at_least, "seed {seed}: only {} of 40 arrived", seen.len());
}

/// Runs a handshake through the faults: `true` if it completed; otherwise it must have failed
/// cleanly (a typed error, within the handshake timeout).
fn handshake_or_clean_failure(sim: &mut Sim, seed: u64) -> bool {
    if sim.run_handshake(Duration::from_secs(61)) {
        return true;
    }
    let failed_cleanly = sim.client_error.is_some() || !sim.server_errors.is_empty();
    assert!(failed_cleanly, "seed {seed}: neither completed nor failed after {:?}", sim.elapsed());
    assert!(sim.elapsed() <= Duration::from_secs(61), "seed {seed}: hung for {:?}", sim.elapsed());
    false
}

#[test]
fn psk_through_corruption_truncation_and_packing() {
    let mut completed = 0;
    for seed in 0..60 {
        // The stacks' MTU is the link's (a hybrid ClientHello is fragmented to fit it).
        let c = Config::builder().psk("f", b"faulty".to_vec()).rng_seed(seed).mtu(1200).build().unwrap();
        let s = Config::builder().psk_server_key(b"faulty".to_vec()).rng_seed(seed).mtu(1200).build().unwrap();
        let mut sim = Sim::new(seed, c, s, nasty(1200), nasty(1200));
        if handshake_or_clean_failure(&mut sim, seed) {
            completed += 1;
            exchange(&mut sim, seed, 15);
        }
    }
    assert!(completed >= 45, "only {completed} of 60 handshakes completed");
}

/// Once established, corruption and truncation only ever cost the damaged records: the
/// connection survives and delivers the rest intact.
#[test]
fn established_connections_survive_corruption() {
    for seed in 0..30 {
        let c = Config::builder().psk("f", b"faulty".to_vec()).rng_seed(seed).build().unwrap();
        let s = Config::builder().psk_server_key(b"faulty".to_vec()).rng_seed(seed).build().unwrap();
        let mut sim = Sim::new(seed, c, s, Link::PERFECT, Link::PERFECT);
        assert!(sim.run_handshake(Duration::from_secs(5)));
        sim.run_for(Duration::from_secs(1));
        sim.to_server = Link { corrupt: 0.3, truncate: 0.2, pack: 0.3, ..Link::PERFECT };
        // About half of the records survive both faults.
        exchange(&mut sim, seed, 5);
        assert!(sim.server_conn().unwrap().is_established(), "seed {seed}");
        assert!(sim.server_conn().unwrap().stats().dropped_bad_auth > 0 || sim.trace.corrupted == 0);
    }
}

#[test]
fn ecdsa_through_corruption_truncation_and_packing() {
    let ca = Ca::root("Root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server, Validity::Now);
    let mut faults = (0, 0, 0);
    let mut completed = 0;
    for seed in 0..60 {
        let c = Config::builder()
            .root_store(ca.roots())
            .cipher_suites(&[&suites::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256])
            .rng_seed(seed)
            .mtu(500)
            .build()
            .unwrap();
        let s = Config::builder().certificate(leaf.certified_key()).rng_seed(seed).mtu(500).build().unwrap();
        let mut sim = Sim::with_server_name(seed, c, Some("localhost"), s, nasty(500), nasty(500));
        if handshake_or_clean_failure(&mut sim, seed) {
            completed += 1;
            exchange(&mut sim, seed, 15);
        }
        faults.0 += sim.trace.corrupted;
        faults.1 += sim.trace.truncated;
        faults.2 += sim.trace.packed;
    }
    assert!(faults.0 > 50 && faults.1 > 50 && faults.2 > 100, "the faults happened: {faults:?}");
    assert!(completed >= 40, "only {completed} of 60 handshakes completed");
}
