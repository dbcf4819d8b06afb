//! Certificate handshakes on the simulated network: every ECDHE-ECDSA and ECDHE-RSA suite,
//! chains with intermediates, client authentication, SNI and IP certificates, and the
//! verification failures, each with its alert and typed error.

mod support;

use std::sync::Arc;
use std::time::Duration;

use rdtls_proto::enums::AlertDescription;
use rdtls_proto::suites::{self, CipherSuite};
use rdtls_proto::{
    CertResolver, CertificateError, ClientAuth, Config, Error, Event, HandshakeState, Protocol, VerifyPeer,
};
use support::pki::{Alg, Ca, Usage, Validity};
use support::{Link, Sim};

fn client_config(ca: &Ca) -> rdtls_proto::ConfigBuilder {
    Config::builder().root_store(ca.roots())
}

fn handshake(client: Config, name: Option<&str>, server: Config) -> Sim {
    let mut sim = Sim::with_server_name(1, client, name, server, Link::PERFECT, Link::PERFECT);
    sim.run_handshake(Duration::from_secs(10));
    sim
}

fn run_suite(suite: &'static CipherSuite, alg: Alg) {
    let ca = Ca::root("Test Root");
    let leaf = ca.leaf(alg, &["localhost", "127.0.0.1"], Usage::Server, Validity::Now);
    for (seed, mtu) in [(1u64, 1500usize), (2, 576), (3, 576), (4, 300)] {
        let client = client_config(&ca).cipher_suites(&[suite]).mtu(mtu).build().unwrap();
        let server =
            Config::builder().cipher_suites(&[suite]).certificate(leaf.certified_key()).mtu(mtu).build().unwrap();
        // Lossy and reordering for the small MTUs: the certificate flight is fragmented.
        let link = if mtu < 1500 { Link::lossy(0.2, mtu) } else { Link::PERFECT };
        let mut sim = Sim::with_server_name(seed, client, Some("localhost"), server, link, link);
        assert!(
            sim.run_handshake(Duration::from_secs(60)),
            "{suite} {alg:?} mtu {mtu}: {:?} {:?}",
            sim.client_error,
            sim.server_errors
        );
        assert_eq!(sim.client.cipher_suite(), Some(suite));
        assert_eq!(sim.client.peer_certificates(), &leaf.chain[..]);
        assert!(sim.client.peer_verification_errors().is_empty());
        assert!(sim.trace.sent.iter().all(|&(_, _, n)| n <= mtu));
    }
}

#[test]
fn every_ecdhe_ecdsa_suite_with_a_p256_certificate() {
    for suite in [
        &suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        &suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        &suites::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        &suites::TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
    ] {
        run_suite(suite, Alg::EcdsaP256);
    }
}

#[test]
fn ecdsa_p384_and_ed25519_certificates() {
    run_suite(&suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, Alg::EcdsaP384);
    run_suite(&suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, Alg::Ed25519);
}

#[test]
fn every_ecdhe_rsa_suite_with_an_rsa_2048_certificate() {
    for suite in [
        &suites::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        &suites::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        &suites::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ] {
        run_suite(suite, Alg::Rsa2048);
    }
}

#[test]
fn every_group() {
    let ca = Ca::root("Root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server, Validity::Now);
    for group in [
        rdtls_proto::crypto::KxGroup::X25519,
        rdtls_proto::crypto::KxGroup::Secp256r1,
        rdtls_proto::crypto::KxGroup::Secp384r1,
    ] {
        let client = client_config(&ca).groups(&[group]).build().unwrap();
        let server = Config::builder().certificate(leaf.certified_key()).build().unwrap();
        let sim = handshake(client, Some("localhost"), server);
        assert!(sim.client.is_established(), "{group:?}: {:?}", sim.client_error);
    }
}

#[test]
fn chain_with_an_intermediate() {
    let root = Ca::root("Root");
    let inter = root.intermediate("Intermediate");
    let leaf = inter.leaf(Alg::EcdsaP256, &["dtls.example"], Usage::Server, Validity::Now);
    assert_eq!(leaf.chain.len(), 2);
    let sim = handshake(
        client_config(&root).build().unwrap(),
        Some("dtls.example"),
        Config::builder().certificate(leaf.certified_key()).build().unwrap(),
    );
    assert!(sim.client.is_established(), "{:?}", sim.client_error);
    assert_eq!(sim.client.peer_certificates().len(), 2);
}

/// Runs a handshake that the client must refuse; returns the client's error and the alert the
/// server received.
fn refused(client: Config, name: Option<&str>, server: Config) -> (Error, Vec<Error>) {
    let mut sim = handshake(client, name, server);
    // Let the alert reach the server.
    sim.run_for(Duration::from_millis(100));
    assert!(!sim.client.is_established());
    (sim.client_error.clone().expect("client error"), sim.server_errors.clone())
}

#[test]
fn expired_wrong_name_unknown_ca_not_yet_valid() {
    let ca = Ca::root("Root");
    let other = Ca::root("Other Root");
    let cases = [
        (ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server, Validity::Expired), &ca, CertificateError::Expired),
        (ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server, Validity::NotYet), &ca, CertificateError::NotYetValid),
        (
            ca.leaf(Alg::EcdsaP256, &["elsewhere"], Usage::Server, Validity::Now),
            &ca,
            CertificateError::HostNameMismatch,
        ),
        (
            other.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server, Validity::Now),
            &ca,
            CertificateError::UnknownIssuer,
        ),
        (ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Client, Validity::Now), &ca, CertificateError::InvalidPurpose),
    ];
    for (leaf, trusted, expected) in cases {
        let (err, server) = refused(
            client_config(trusted).build().unwrap(),
            Some("localhost"),
            Config::builder().certificate(leaf.certified_key()).build().unwrap(),
        );
        assert_eq!(err, Error::PeerVerification(vec![expected.clone()]));
        assert_eq!(err.kind(), rdtls_proto::ErrorKind::PeerVerification);
        assert_eq!(server, [Error::AlertReceived(expected.alert())], "{expected:?}");
    }
}

#[test]
fn server_key_exchange_signed_with_the_wrong_key() {
    let ca = Ca::root("Root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server, Validity::Now);
    let impostor = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server, Validity::Now);
    // The genuine certificate with someone else's key.
    let provider = rdtls_proto::crypto::default_provider();
    let wrong = rdtls_proto::CertifiedKey::new(leaf.chain.clone(), impostor.certified_key().key().clone()).unwrap();
    let _ = provider;
    let (err, server) = refused(
        client_config(&ca).build().unwrap(),
        Some("localhost"),
        Config::builder().certificate(wrong).build().unwrap(),
    );
    assert!(matches!(err, Error::PeerMisbehaved { alert: AlertDescription::DECRYPT_ERROR, .. }), "{err:?}");
    assert_eq!(server, [Error::AlertReceived(AlertDescription::DECRYPT_ERROR)]);
}

fn mutual(client_leaf: Option<&support::pki::Leaf>, mode: ClientAuth) -> Sim {
    mutual_in(Protocol::Dtls1_3, client_leaf, mode)
}

/// [`mutual`] with a client that offers DTLS 1.2 up to `newest`.
fn mutual_in(newest: Protocol, client_leaf: Option<&support::pki::Leaf>, mode: ClientAuth) -> Sim {
    let ca = Ca::root("Root");
    let server_leaf = ca.leaf(Alg::Rsa2048, &["localhost"], Usage::Server, Validity::Now);
    let mut client = client_config(&ca).protocol_versions(Protocol::Dtls1_2, newest);
    if let Some(l) = client_leaf {
        client = client.client_certificate(l.certified_key());
    }
    let server = Config::builder()
        .certificate(server_leaf.certified_key())
        .client_auth(mode)
        .root_store(ca.roots())
        .build()
        .unwrap();
    handshake(client.build().unwrap(), Some("localhost"), server)
}

#[test]
fn mutual_authentication() {
    // The client's certificate must come from the server's trusted CA: issue it from the same
    // root by building the client leaf inside the same CA.
    let ca = Ca::root("Root");
    let server_leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server, Validity::Now);
    for alg in [Alg::EcdsaP256, Alg::Rsa2048, Alg::Ed25519] {
        let client_leaf = ca.leaf(alg, &["client.example"], Usage::Client, Validity::Now);
        let client = client_config(&ca).client_certificate(client_leaf.certified_key()).build().unwrap();
        let server = Config::builder()
            .certificate(server_leaf.certified_key())
            .client_auth(ClientAuth::Required)
            .root_store(ca.roots())
            .build()
            .unwrap();
        let sim = handshake(client, Some("localhost"), server);
        assert!(sim.client.is_established(), "{alg:?}: {:?} {:?}", sim.client_error, sim.server_errors);
        assert_eq!(sim.server_conn().unwrap().peer_certificates(), &client_leaf.chain[..]);
    }
}

#[test]
fn client_without_certificate_when_one_is_required() {
    // The server's alert: DTLS 1.2 has only handshake_failure; DTLS 1.3 has certificate_required
    // (RFC 8446 §4.4.2.4).
    for (newest, alert) in [
        (Protocol::Dtls1_2, AlertDescription::HANDSHAKE_FAILURE),
        (Protocol::Dtls1_3, AlertDescription::CERTIFICATE_REQUIRED),
    ] {
        let sim = mutual_in(newest, None, ClientAuth::Required);
        assert_eq!(sim.server_errors, [Error::PeerVerification(vec![CertificateError::NoPeerCertificate])]);
        assert_eq!(sim.client_error, Some(Error::AlertReceived(alert)), "{newest:?}");
    }
    // Optional: the same client is accepted, unauthenticated.
    let sim = mutual(None, ClientAuth::Optional);
    assert!(sim.client.is_established(), "{:?}", sim.server_errors);
    assert!(sim.server_conn().unwrap().peer_certificates().is_empty());
}

#[test]
fn client_certificate_from_an_untrusted_ca_is_refused() {
    let stranger = Ca::root("Stranger");
    let leaf = stranger.leaf(Alg::EcdsaP256, &["client"], Usage::Client, Validity::Now);
    let sim = mutual(Some(&leaf), ClientAuth::Optional);
    assert_eq!(sim.server_errors, [Error::PeerVerification(vec![CertificateError::UnknownIssuer])]);
    assert_eq!(sim.client_error, Some(Error::AlertReceived(AlertDescription::UNKNOWN_CA)));
}

#[test]
fn pause_ignore_and_resume_only_for_the_ignored_errors() {
    let ca = Ca::root("Root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["elsewhere"], Usage::Server, Validity::Expired);
    let server = || Config::builder().certificate(leaf.certified_key()).build().unwrap();
    let client = || client_config(&ca).verify_peer(VerifyPeer::Pause).build().unwrap();

    let mut sim = Sim::with_server_name(1, client(), Some("localhost"), server(), Link::PERFECT, Link::PERFECT);
    sim.run_for(Duration::from_millis(200));
    assert_eq!(sim.client.handshake_state(), HandshakeState::PeerVerificationFailed);
    let errors = vec![CertificateError::Expired, CertificateError::HostNameMismatch];
    assert_eq!(sim.client.peer_verification_errors(), &errors[..]);
    let events: Vec<_> = std::iter::from_fn(|| sim.client.poll_event()).collect();
    assert!(events.contains(&Event::PeerVerificationFailed(errors.clone())));

    // Ignoring only one of the two errors does not resume.
    sim.client.ignore_verification_errors(&[CertificateError::Expired]);
    assert_eq!(sim.client.resume_handshake(sim.now), Ok(false));
    assert_eq!(sim.client.handshake_state(), HandshakeState::PeerVerificationFailed);
    // Ignoring both does, and the handshake completes.
    sim.client.ignore_verification_errors(&errors);
    assert_eq!(sim.client.resume_handshake(sim.now), Ok(true));
    assert!(sim.run_handshake(Duration::from_secs(5)), "{:?} {:?}", sim.client_error, sim.server_errors);
    assert_eq!(sim.client.peer_verification_errors(), &errors[..], "the errors stay on record");

    // Aborting instead sends the first error's alert.
    let mut sim = Sim::with_server_name(2, client(), Some("localhost"), server(), Link::PERFECT, Link::PERFECT);
    sim.run_for(Duration::from_millis(200));
    assert_eq!(sim.client.handshake_state(), HandshakeState::PeerVerificationFailed);
    sim.client.abort_handshake().unwrap();
    sim.run_for(Duration::from_millis(200));
    assert_eq!(sim.server_errors, [Error::AlertReceived(AlertDescription::CERTIFICATE_EXPIRED)]);
    assert_eq!(sim.client.last_error(), Some(&Error::PeerVerification(errors.clone())));

    // Or refuses the chain with an alert of the application's choosing; only while paused,
    // and only with an error alert.
    let mut sim = Sim::with_server_name(3, client(), Some("localhost"), server(), Link::PERFECT, Link::PERFECT);
    assert!(matches!(
        sim.client.reject_peer_certificate(AlertDescription::CERTIFICATE_UNKNOWN),
        Err(Error::InvalidOperation(_))
    ));
    sim.run_for(Duration::from_millis(200));
    assert_eq!(sim.client.handshake_state(), HandshakeState::PeerVerificationFailed);
    assert!(matches!(
        sim.client.reject_peer_certificate(AlertDescription::CLOSE_NOTIFY),
        Err(Error::InvalidOperation(_))
    ));
    sim.client.reject_peer_certificate(AlertDescription::CERTIFICATE_UNKNOWN).unwrap();
    sim.run_for(Duration::from_millis(200));
    assert_eq!(sim.server_errors, [Error::AlertReceived(AlertDescription::CERTIFICATE_UNKNOWN)]);
    assert_eq!(sim.client.last_error(), Some(&Error::PeerVerification(errors)));
    assert!(sim.client.is_closed());
}

#[test]
fn errors_ignored_up_front_and_continue_mode() {
    let ca = Ca::root("Root");
    let stranger = Ca::root("Stranger");
    let leaf = stranger.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server, Validity::Now);
    let server = || Config::builder().certificate(leaf.certified_key()).build().unwrap();
    // Qt: ignoreVerificationErrors before the handshake.
    let client = client_config(&ca).ignore_verification_errors(&[CertificateError::UnknownIssuer]).build().unwrap();
    let sim = handshake(client, Some("localhost"), server());
    assert!(sim.client.is_established());
    assert_eq!(sim.client.peer_verification_errors(), [CertificateError::UnknownIssuer]);
    // EdgerOS rejectUnauthorized: false — no trust anchors at all, errors recorded.
    let client = Config::builder().verify_peer(VerifyPeer::Continue).build().unwrap();
    let sim = handshake(client, Some("localhost"), server());
    assert!(sim.client.is_established());
    assert_eq!(sim.client.peer_verification_errors(), [CertificateError::UnknownIssuer]);
}

#[test]
fn sni_picks_the_certificate_and_certificates_can_be_added_while_running() {
    let ca = Ca::root("Root");
    let default = ca.leaf(Alg::EcdsaP256, &["default.example"], Usage::Server, Validity::Now);
    let a = ca.leaf(Alg::EcdsaP256, &["a.example"], Usage::Server, Validity::Now);
    let b = ca.leaf(Alg::Rsa2048, &["b.example"], Usage::Server, Validity::Now);
    let resolver = Arc::new(CertResolver::new());
    resolver.set_default(default.certified_key());
    resolver.add("a.example", a.certified_key());
    let server = Config::builder().cert_resolver(resolver.clone()).build().unwrap();
    let sim = handshake(client_config(&ca).build().unwrap(), Some("a.example"), server.clone());
    assert!(sim.client.is_established(), "{:?}", sim.client_error);
    assert_eq!(sim.client.peer_certificates()[0], a.chain[0]);
    assert_eq!(sim.server_conn().unwrap().requested_server_name(), Some("a.example"));
    // Unknown name: the default certificate, which does not match: refused by the client.
    let (err, _) = refused(client_config(&ca).build().unwrap(), Some("b.example"), server.clone());
    assert_eq!(err, Error::PeerVerification(vec![CertificateError::HostNameMismatch]));
    // Added while the server runs (EdgerOS addcert): the same configuration now serves it.
    resolver.add("b.example", b.certified_key());
    let sim = handshake(client_config(&ca).build().unwrap(), Some("b.example"), server.clone());
    assert!(sim.client.is_established(), "{:?}", sim.client_error);
    assert_eq!(sim.client.peer_certificates()[0], b.chain[0]);
    // The RSA certificate with a suite for it: DTLS 1.3 suites sign with any key type; a DTLS
    // 1.2 client gets an ECDHE-RSA suite.
    assert_eq!(sim.client.cipher_suite().map(|s| s.key_exchange), Some(suites::KeyExchange::Tls13));
    let client = client_config(&ca).protocol_versions(Protocol::Dtls1_2, Protocol::Dtls1_2).build().unwrap();
    let sim = handshake(client, Some("b.example"), server);
    assert_eq!(sim.client.peer_certificates()[0], b.chain[0]);
    assert_eq!(sim.client.cipher_suite().map(|s| s.key_exchange), Some(suites::KeyExchange::EcdheRsa));
}

#[test]
fn without_sni_the_certificate_for_the_local_address_is_used() {
    let ca = Ca::root("Root");
    let default = ca.leaf(Alg::EcdsaP256, &["default.example"], Usage::Server, Validity::Now);
    let by_ip = ca.leaf(Alg::EcdsaP256, &["192.0.2.10"], Usage::Server, Validity::Now);
    let resolver = Arc::new(CertResolver::new());
    resolver.set_default(default.certified_key());
    resolver.add("ip-cert", by_ip.certified_key());
    resolver.set_ip_certificates(true);
    let server = Config::builder().cert_resolver(resolver).build().unwrap();
    let mut sim = Sim::with_server_name(
        1,
        client_config(&ca).build().unwrap(),
        Some("192.0.2.10"),
        server,
        Link::PERFECT,
        Link::PERFECT,
    );
    sim.endpoint.set_local_ip(Some("192.0.2.10".parse().unwrap()));
    assert!(sim.run_handshake(Duration::from_secs(5)), "{:?}", sim.client_error);
    assert_eq!(sim.client.peer_certificates()[0], by_ip.chain[0]);
    assert_eq!(sim.server_conn().unwrap().requested_server_name(), None, "no SNI for an IP address");
}

#[test]
fn psk_and_certificates_in_one_server_configuration() {
    let ca = Ca::root("Root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server, Validity::Now);
    let server =
        || Config::builder().certificate(leaf.certified_key()).psk_server_key(b"both".to_vec()).build().unwrap();
    for newest in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        let client = Config::builder().protocol_versions(Protocol::Dtls1_2, newest).psk("p", b"both".to_vec());
        let sim = handshake(client.build().unwrap(), None, server());
        assert!(sim.client.is_established(), "{newest:?}: {:?}", sim.client_error);
        assert_eq!(sim.server_conn().unwrap().psk_identity(), Some(&b"p"[..]), "{newest:?}");
        assert!(sim.client.peer_certificates().is_empty(), "{newest:?}: a PSK handshake has no certificate");
        let client = client_config(&ca).protocol_versions(Protocol::Dtls1_2, newest);
        let sim = handshake(client.build().unwrap(), Some("localhost"), server());
        assert!(sim.client.is_established(), "{newest:?}: {:?}", sim.client_error);
        assert_eq!(sim.client.peer_certificates()[0], leaf.chain[0], "{newest:?}");
        assert_eq!(sim.server_conn().unwrap().psk_identity(), None, "{newest:?}");
        assert_eq!(sim.client.protocol(), Some(newest));
    }
}

/// EdgerOS `addcert` with `ca`: a name's own trust anchors verify the client certificates of
/// connections that ask for that name; other connections keep the configuration's.
#[test]
fn a_names_own_client_roots_verify_its_clients() {
    let ours = Ca::root("Main");
    let tenant = Ca::root("Tenant");
    let default = ours.leaf(Alg::EcdsaP256, &["main.example"], Usage::Server, Validity::Now);
    let tenant_server = ours.leaf(Alg::EcdsaP256, &["tenant.example"], Usage::Server, Validity::Now);
    let tenant_client = tenant.leaf(Alg::EcdsaP256, &["device-1"], Usage::Client, Validity::Now);
    let resolver = Arc::new(CertResolver::new());
    resolver.set_default(default.certified_key());
    resolver.add_with_client_roots("tenant.example", tenant_server.certified_key(), tenant.roots());
    let server =
        || Config::builder().cert_resolver(resolver.clone()).root_store(ours.roots()).client_auth(ClientAuth::Required);
    let client = || client_config(&ours).client_certificate(tenant_client.certified_key()).build().unwrap();

    // Asking for the tenant's name: its CA vouches for the client.
    let sim = handshake(client(), Some("tenant.example"), server().build().unwrap());
    assert!(sim.client.is_established(), "{:?} {:?}", sim.client_error, sim.server_errors);
    assert_eq!(sim.server_conn().unwrap().peer_certificates(), &tenant_client.chain[..]);
    // Asking for the main name: the configuration's anchors do not know the tenant's CA.
    let sim = handshake(client(), Some("main.example"), server().build().unwrap());
    assert_eq!(sim.server_errors, [Error::PeerVerification(vec![CertificateError::UnknownIssuer])]);
    assert_eq!(sim.client_error, Some(Error::AlertReceived(AlertDescription::UNKNOWN_CA)));
}
