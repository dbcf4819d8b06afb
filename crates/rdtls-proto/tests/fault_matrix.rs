//! The fault matrix: PSK and ECDHE-ECDSA, with and without client certificates, in DTLS 1.2 and
//! DTLS 1.3, 100 seeds each at 30% loss with reordering and duplication. Every handshake completes within the
//! handshake timeout, every application record arrives at most once, and reassembly memory
//! stays within its cap.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use rdtls_proto::crypto::KxGroup;
use rdtls_proto::enums::Protocol;
use rdtls_proto::suites;
use rdtls_proto::{ClientAuth, Config};
use support::pki::{Alg, Ca, Usage, Validity};
use support::{Link, Sim, To};

const SEEDS: u64 = 100;
const TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug)]
enum Mode {
    Psk,
    Ecdsa,
    EcdsaMutual,
}

fn run(
    mode: Mode,
    version: Protocol,
    seed: u64,
    ca: &Ca,
    server_leaf: &support::pki::Leaf,
    client_leaf: &support::pki::Leaf,
) {
    let (client, server, name) = match mode {
        Mode::Psk => (
            Config::builder().psk("fault", b"fault key".to_vec()),
            Config::builder().psk_server_key(b"fault key".to_vec()),
            None,
        ),
        Mode::Ecdsa | Mode::EcdsaMutual => {
            let mut c = Config::builder().root_store(ca.roots());
            if version == Protocol::Dtls1_2 {
                c = c.cipher_suites(&[&suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]);
            }
            let mut s = Config::builder().certificate(server_leaf.certified_key());
            if matches!(mode, Mode::EcdsaMutual) {
                c = c.client_certificate(client_leaf.certified_key());
                s = s.client_auth(ClientAuth::Required).root_store(ca.roots());
            }
            (c, s, Some("localhost"))
        }
    };
    // The stacks' MTU is the link's: a datagram over it is lost. The client offers the
    // elliptic curves only, so its ClientHello is one datagram: fragmented ones (a hybrid key
    // share) at this loss can take longer than the handshake timeout, a fault of the link the
    // matrix does not measure (tests/hybrid.rs runs them over lossy links).
    let mtu = 1200;
    let client = client.groups(&[KxGroup::X25519, KxGroup::Secp256r1, KxGroup::Secp384r1]);
    let client =
        client.protocol_versions(version, version).rng_seed(seed).handshake_timeout(TIMEOUT).mtu(mtu).build().unwrap();
    let server =
        server.protocol_versions(version, version).rng_seed(seed).handshake_timeout(TIMEOUT).mtu(mtu).build().unwrap();
    let link = Link { loss: 0.3, duplicate: 0.1, reorder: 0.3, ..Link::lossy(0.3, mtu) };
    let mut sim = Sim::with_server_name(seed, client, name, server, link, link);
    let mut peak_reassembly = 0;
    let done = loop {
        if sim.client.is_established() && sim.server_conn().is_some_and(|c| c.is_established()) {
            break true;
        }
        if sim.client_error.is_some() || sim.elapsed() > TIMEOUT || !sim.step() {
            break false;
        }
        peak_reassembly = peak_reassembly
            .max(sim.client.reassembly_bytes())
            .max(sim.server_conn().map_or(0, |c| c.reassembly_bytes()));
    };
    assert!(
        done,
        "{mode:?} {version} seed {seed}: no handshake after {:?}: {:?} {:?}",
        sim.elapsed(),
        sim.client_error,
        sim.server_errors
    );
    assert!(peak_reassembly <= 32 * 1024, "{mode:?} seed {seed}: {peak_reassembly} bytes buffered");
    // Application data through the same faults: at most once, never garbled.
    for i in 0..30u32 {
        let mut rec = Vec::new();
        sim.client.send(format!("c{i}").as_bytes(), &mut rec).unwrap();
        sim.send(To::Server, rec);
    }
    sim.run_for(Duration::from_secs(3));
    let mut seen = HashSet::new();
    for m in &sim.server_received {
        assert!(seen.insert(m.clone()), "{mode:?} seed {seed}: delivered twice: {m:?}");
        let s = std::str::from_utf8(m).unwrap();
        assert!(s.starts_with('c') && s[1..].parse::<u32>().unwrap() < 30);
    }
    assert_eq!(sim.client.protocol(), Some(version));
    assert!(
        sim.client_error.is_none() && sim.server_errors.is_empty(),
        "{mode:?} {version} seed {seed}: {:?} {:?}",
        sim.client_error,
        sim.server_errors
    );
}

fn matrix(mode: Mode, version: Protocol) {
    let ca = Ca::root("Fault Root");
    let server_leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server, Validity::Now);
    let client_leaf = ca.leaf(Alg::EcdsaP256, &["client"], Usage::Client, Validity::Now);
    for seed in 0..SEEDS {
        run(mode, version, seed, &ca, &server_leaf, &client_leaf);
    }
}

#[test]
fn psk_under_faults() {
    matrix(Mode::Psk, Protocol::Dtls1_2);
}

#[test]
fn ecdhe_ecdsa_under_faults() {
    matrix(Mode::Ecdsa, Protocol::Dtls1_2);
}

#[test]
fn ecdhe_ecdsa_with_client_certificates_under_faults() {
    matrix(Mode::EcdsaMutual, Protocol::Dtls1_2);
}

#[test]
fn dtls13_psk_under_faults() {
    matrix(Mode::Psk, Protocol::Dtls1_3);
}

#[test]
fn dtls13_ecdsa_under_faults() {
    matrix(Mode::Ecdsa, Protocol::Dtls1_3);
}

#[test]
fn dtls13_ecdsa_with_client_certificates_under_faults() {
    matrix(Mode::EcdsaMutual, Protocol::Dtls1_3);
}
