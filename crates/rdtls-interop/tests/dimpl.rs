//! DTLS 1.3 against dimpl 0.9 (a pure-Rust sans-IO stack; certificates only in 1.3, ECDSA),
//! in memory on one thread: both roles, the three suites it has in 1.3, mutual authentication,
//! a HelloRetryRequest for a group, and close_notify. dimpl does no PKI validation: its peer
//! certificate is checked here, against the one our side presented.

#[allow(dead_code)]
mod certs;

use std::sync::Arc;
use std::time::{Duration, Instant};

use certs::{Alg, Ca, Leaf, Usage};
use dimpl::crypto::{Dtls13CipherSuite, NamedGroup};
use dimpl::{Dtls, DtlsCertificate, Output};
use rdtls::proto::crypto::KxGroup;
use rdtls::proto::enums::Protocol;
use rdtls::proto::pki::ServerName;
use rdtls::proto::suites::{self, CipherSuite};
use rdtls::proto::{ClientAuth, Config, ConfigBuilder, Connection};

/// What dimpl reported, and what our side negotiated.
#[derive(Debug, Default)]
struct Seen {
    suite: Option<&'static CipherSuite>,
    connected: bool,
    peer_cert: Option<Vec<u8>>,
    data: Vec<Vec<u8>>,
    close_notify: bool,
}

fn drain_dimpl(d: &mut Dtls, to_ours: &mut Vec<Vec<u8>>, seen: &mut Seen) -> Option<Instant> {
    let mut buf = vec![0u8; 4096];
    loop {
        match d.poll_output(&mut buf) {
            Output::Packet(p) => to_ours.push(p.to_vec()),
            Output::BufferTooSmall { needed } => buf.resize(needed, 0),
            Output::Timeout(t) => return Some(t),
            Output::Connected => seen.connected = true,
            Output::PeerCert(c) => seen.peer_cert = Some(c.to_vec()),
            Output::ApplicationData(a) => seen.data.push(a.to_vec()),
            Output::CloseNotify => seen.close_notify = true,
            _ => {}
        }
    }
}

/// Moves datagrams both ways until nothing moves; fires due timers on virtual time.
fn pump(ours: &mut Connection, d: &mut Dtls, now: &mut Instant, seen: &mut Seen, received: &mut Vec<Vec<u8>>) {
    let mut buf = Vec::new();
    for _ in 0..64 {
        let mut moved = false;
        while ours.poll_transmit(&mut buf).is_some() {
            moved = true;
            d.handle_packet(&buf).expect("dimpl handles our datagram");
        }
        let mut to_ours = Vec::new();
        let timer = drain_dimpl(d, &mut to_ours, seen);
        for mut p in to_ours {
            moved = true;
            let r = ours.handle_datagram(*now, &mut p).expect("we handle dimpl's datagram");
            received.extend(r.iter().map(<[u8]>::to_vec));
        }
        if moved {
            continue;
        }
        // Nothing in flight: let the earliest timer fire (a retransmission, an ACK).
        let next = [ours.poll_timeout(), timer].into_iter().flatten().min();
        match next {
            Some(t) if t <= *now + Duration::from_secs(5) => {
                *now = (*now).max(t);
                ours.handle_timeout(*now).expect("our timer");
                d.handle_timeout(*now).expect("dimpl's timer");
            }
            _ => return,
        }
    }
}

fn dimpl_config(suite: Dtls13CipherSuite, groups: &[NamedGroup], require_client_cert: bool) -> Arc<dimpl::Config> {
    Arc::new(
        dimpl::Config::builder()
            .dtls13_cipher_suites(&[suite])
            .kx_groups(groups)
            .require_client_certificate(require_client_cert)
            .use_server_cookie(true)
            .build()
            .expect("dimpl config"),
    )
}

/// A dimpl instance in `role` (client: `active`), started: its first timer call sets it up.
fn dimpl(cfg: Arc<dimpl::Config>, cert: DtlsCertificate, active: bool, now: Instant) -> Dtls {
    let mut d = Dtls::new_13(cfg, cert, now);
    d.set_active(active);
    d.handle_timeout(now).expect("dimpl starts");
    d
}

fn dimpl_cert(leaf: &Leaf) -> DtlsCertificate {
    DtlsCertificate { certificate: leaf.der.to_vec(), private_key: leaf.key_der.clone() }
}

fn ours() -> ConfigBuilder {
    Config::builder().protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
}

fn dimpl_suite(suite: &CipherSuite) -> Dtls13CipherSuite {
    Dtls13CipherSuite::from_u16(suite.id)
}

/// Handshake, a message each way, close_notify from our side; returns what dimpl saw.
fn exchange(ours: &mut Connection, d: &mut Dtls, now: &mut Instant) -> Seen {
    let mut seen = Seen::default();
    let mut received = Vec::new();
    pump(ours, d, now, &mut seen, &mut received);
    assert!(ours.is_established(), "our side: {:?}", ours.last_error());
    assert!(seen.connected, "dimpl did not connect");
    assert_eq!(ours.protocol(), Some(Protocol::Dtls1_3));
    seen.suite = ours.cipher_suite();
    let mut out = Vec::new();
    ours.send(b"hello from rdtls", &mut out).unwrap();
    d.handle_packet(&out).expect("dimpl reads our data");
    d.send_application_data(b"hello from dimpl").expect("dimpl sends");
    pump(ours, d, now, &mut seen, &mut received);
    assert_eq!(seen.data, vec![b"hello from rdtls".to_vec()]);
    assert_eq!(received, vec![b"hello from dimpl".to_vec()]);
    ours.shutdown().unwrap();
    pump(ours, d, now, &mut seen, &mut received);
    assert!(seen.close_notify, "dimpl saw our close_notify");
    seen
}

#[test]
fn our_client_against_dimpl_in_each_suite() {
    let ca = Ca::root("dimpl interop root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    for suite in
        [&suites::TLS13_AES_128_GCM_SHA256, &suites::TLS13_AES_256_GCM_SHA384, &suites::TLS13_CHACHA20_POLY1305_SHA256]
    {
        let mut now = Instant::now();
        let cfg = dimpl_config(dimpl_suite(suite), &[NamedGroup::X25519, NamedGroup::Secp256r1], false);
        let mut d = dimpl(cfg, dimpl_cert(&leaf), false, now);
        let config = Arc::new(ours().cipher_suites(&[suite]).root_store(ca.roots()).build().unwrap());
        let name = ServerName::try_from("localhost").unwrap().to_owned();
        let mut client = Connection::client_with_server_name(config, Some(name), now).unwrap();
        let seen = exchange(&mut client, &mut d, &mut now);
        assert_eq!(seen.suite, Some(suite));
        assert_eq!(client.peer_certificates()[0].as_ref(), leaf.der.as_ref());
    }
}

#[test]
fn dimpl_client_against_our_server_in_each_suite() {
    let ca = Ca::root("dimpl interop root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    let client_leaf = ca.leaf(Alg::EcdsaP256, &["dimpl"], Usage::Client);
    for suite in
        [&suites::TLS13_AES_128_GCM_SHA256, &suites::TLS13_AES_256_GCM_SHA384, &suites::TLS13_CHACHA20_POLY1305_SHA256]
    {
        let mut now = Instant::now();
        let cfg = dimpl_config(dimpl_suite(suite), &[NamedGroup::X25519, NamedGroup::Secp256r1], false);
        let mut d = dimpl(cfg, dimpl_cert(&client_leaf), true, now);
        let config = Arc::new(
            ours()
                .cipher_suites(&[suite])
                .certificate(leaf.certified_key())
                .cookie_verification(false)
                .build()
                .unwrap(),
        );
        let mut server = Connection::server(config, now).unwrap();
        let seen = exchange(&mut server, &mut d, &mut now);
        assert_eq!(seen.suite, Some(suite));
        assert_eq!(seen.peer_cert.as_deref(), Some(leaf.der.as_ref()), "dimpl saw our certificate");
    }
}

#[test]
fn mutual_authentication_both_ways() {
    let ca = Ca::root("dimpl mutual root");
    let server_leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    let client_leaf = ca.leaf(Alg::EcdsaP256, &["client"], Usage::Client);
    let suite = Dtls13CipherSuite::AES_128_GCM_SHA256;
    // dimpl's server requires our certificate.
    let mut now = Instant::now();
    let mut d = dimpl(dimpl_config(suite, &[NamedGroup::X25519], true), dimpl_cert(&server_leaf), false, now);
    let config =
        Arc::new(ours().root_store(ca.roots()).client_certificate(client_leaf.certified_key()).build().unwrap());
    let name = ServerName::try_from("localhost").unwrap().to_owned();
    let mut client = Connection::client_with_server_name(config, Some(name), now).unwrap();
    let seen = exchange(&mut client, &mut d, &mut now);
    assert_eq!(seen.peer_cert.as_deref(), Some(client_leaf.der.as_ref()));
    // Our server requires dimpl's, and verifies its chain.
    let mut now = Instant::now();
    let mut d = dimpl(dimpl_config(suite, &[NamedGroup::X25519], false), dimpl_cert(&client_leaf), true, now);
    let config = Arc::new(
        ours()
            .certificate(server_leaf.certified_key())
            .root_store(ca.roots())
            .client_auth(ClientAuth::Required)
            .cookie_verification(false)
            .build()
            .unwrap(),
    );
    let mut server = Connection::server(config, now).unwrap();
    exchange(&mut server, &mut d, &mut now);
    assert_eq!(server.peer_certificates()[0].as_ref(), client_leaf.der.as_ref());
    assert!(server.peer_verification_errors().is_empty());
}

/// dimpl's client sends an X25519 share; our server takes only P-256 and asks for it.
#[test]
fn hello_retry_request_for_a_group() {
    let ca = Ca::root("dimpl retry root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    let client_leaf = ca.leaf(Alg::EcdsaP256, &["dimpl"], Usage::Client);
    let mut now = Instant::now();
    let cfg = dimpl_config(Dtls13CipherSuite::AES_128_GCM_SHA256, &[NamedGroup::X25519, NamedGroup::Secp256r1], false);
    let mut d = dimpl(cfg, dimpl_cert(&client_leaf), true, now);
    let config = Arc::new(
        ours()
            .certificate(leaf.certified_key())
            .groups(&[KxGroup::Secp256r1])
            .cookie_verification(false)
            .build()
            .unwrap(),
    );
    let mut server = Connection::server(config, now).unwrap();
    exchange(&mut server, &mut d, &mut now);
}
