//! State-machine tests that need to forge records a well-behaved peer never sends. The records
//! forged here are mostly DTLS 1.2's (ChangeCipherSpec, plaintext Finished, renegotiation...),
//! with configurations pinned to DTLS 1.2; the DTLS 1.3 ones that need the connection's
//! internals are in `dtls13.rs` beside this file, the others in `tests/dtls13*.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::enums::{AlertDescription, ContentType, HandshakeType};
use crate::messages::write_message;
use crate::record::{RecordHeader, Records, HEADER_LEN};
use crate::{Config, Connection, Error, Event, HandshakeState};

const KEY: &[u8] = b"state machine key";

/// A configuration builder for DTLS 1.2 only.
fn builder() -> crate::ConfigBuilder {
    Config::builder().protocol_versions(crate::Protocol::Dtls1_2, crate::Protocol::Dtls1_2)
}

fn pair() -> (Connection, Connection, Instant) {
    let now = Instant::now();
    let c = builder().psk("sm", KEY.to_vec()).build().unwrap();
    let s = builder().psk_server_key(KEY.to_vec()).cookie_verification(false).build().unwrap();
    (Connection::client(Arc::new(c), now).unwrap(), Connection::server(Arc::new(s), now).unwrap(), now)
}

/// A DTLS 1.3 PSK pair (no tickets, no cookie, session export allowed), not connected yet.
fn pair13(now: Instant) -> (Connection, Connection) {
    let v13 = || Config::builder().protocol_versions(crate::Protocol::Dtls1_3, crate::Protocol::Dtls1_3);
    let c = v13().psk("sm", KEY.to_vec()).allow_session_export(true).build().unwrap();
    let s = v13().psk_server_key(KEY.to_vec()).cookie_verification(false).session_tickets(false);
    let s = s.allow_session_export(true).build().unwrap();
    (Connection::client(Arc::new(c), now).unwrap(), Connection::server(Arc::new(s), now).unwrap())
}

/// Collects every datagram `from` has to send.
fn drain(from: &mut Connection) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while from.poll_transmit(&mut buf).is_some() {
        out.push(buf.clone());
    }
    out
}

fn deliver(to: &mut Connection, now: Instant, datagrams: &[Vec<u8>]) -> Result<(), Error> {
    for d in datagrams {
        to.handle_datagram(now, &mut d.clone())?;
    }
    Ok(())
}

/// Splits datagrams into one datagram per record.
fn records(datagrams: &[Vec<u8>]) -> Vec<Vec<u8>> {
    datagrams
        .iter()
        .flat_map(|d| Records::new(d).map(|(_, r)| d[r.start - HEADER_LEN..r.end].to_vec()).collect::<Vec<_>>())
        .collect()
}

/// Runs `rounds` round trips: everything `a` sends to `b`, then everything `b` sends back.
fn exchange(a: &mut Connection, b: &mut Connection, now: Instant, rounds: usize) {
    for _ in 0..rounds {
        let d = drain(a);
        deliver(b, now, &d).unwrap();
        let d = drain(b);
        deliver(a, now, &d).unwrap();
    }
}

fn established() -> (Connection, Connection, Instant) {
    let (mut c, mut s, now) = pair();
    exchange(&mut c, &mut s, now, 4);
    assert!(c.is_established() && s.is_established());
    (c, s, now)
}

/// Makes `conn` send a handshake message in `epoch` (with its keys), as a misbehaving peer would.
fn forge_handshake(conn: &mut Connection, epoch: u16, msg_type: HandshakeType, seq: u16, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::new();
    write_message(&mut msg, msg_type, seq, body);
    let mut out = Vec::new();
    let _ = conn.write_record(ContentType::HANDSHAKE, u64::from(epoch), &msg, &mut out);
    out
}

/// A plaintext (epoch 0) record of `content_type` with `body`, numbered `seq`, in `version`.
fn plaintext_record(
    content_type: ContentType,
    version: crate::enums::ProtocolVersion,
    seq: u64,
    body: &[u8],
) -> Vec<u8> {
    let mut rec = Vec::new();
    RecordHeader { content_type, version, epoch: 0, seq, length: body.len() as u16 }.write(&mut rec);
    rec.extend_from_slice(body);
    rec
}

#[test]
fn renegotiation_is_refused_with_a_warning() {
    let (mut c, mut s, now) = established();
    // A ClientHello in epoch 1 after the handshake.
    let ch = forge_handshake(&mut c, 1, HandshakeType::CLIENT_HELLO, 2, &[0xfe, 0xfd]);
    deliver(&mut s, now, &[ch]).unwrap();
    let replies = drain(&mut s);
    assert_eq!(replies.len(), 1);
    deliver(&mut c, now, &replies).unwrap();
    assert_eq!(c.poll_event(), Some(Event::Connected));
    assert_eq!(c.poll_event(), Some(Event::WarningAlert(AlertDescription::NO_RENEGOTIATION)));
    assert!(s.is_established() && c.is_established());
    // A HelloRequest to the client likewise.
    let hr = forge_handshake(&mut s, 1, HandshakeType::HELLO_REQUEST, 7, &[]);
    deliver(&mut c, now, &[hr]).unwrap();
    let replies = drain(&mut c);
    deliver(&mut s, now, &replies).unwrap();
    assert!(std::iter::from_fn(|| s.poll_event()).any(|e| e == Event::WarningAlert(AlertDescription::NO_RENEGOTIATION)));
}

#[test]
fn finished_reordered_before_change_cipher_spec_still_completes() {
    let (mut c, mut s, now) = pair();
    exchange(&mut c, &mut s, now, 1);
    // Client flight 5 as separate records: ClientKeyExchange, ChangeCipherSpec, Finished.
    let recs = records(&drain(&mut c));
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[1][0], ContentType::CHANGE_CIPHER_SPEC.0);
    deliver(&mut s, now, &[recs[0].clone(), recs[2].clone()]).unwrap();
    assert_eq!(s.handshake_state(), HandshakeState::InProgress, "Finished must wait for CCS");
    deliver(&mut s, now, &[recs[1].clone()]).unwrap();
    assert_eq!(s.handshake_state(), HandshakeState::Complete);
}

#[test]
fn finished_without_change_cipher_spec_never_completes() {
    let (mut c, mut s, now) = pair();
    exchange(&mut c, &mut s, now, 1);
    let recs = records(&drain(&mut c));
    deliver(&mut s, now, &[recs[0].clone(), recs[2].clone(), recs[2].clone()]).unwrap();
    assert_eq!(s.handshake_state(), HandshakeState::InProgress);
    assert!(drain(&mut s).is_empty());
}

#[test]
fn finished_in_epoch_zero_is_fatal() {
    let (mut c, mut s, now) = pair();
    exchange(&mut c, &mut s, now, 1);
    let recs = records(&drain(&mut c));
    deliver(&mut s, now, &recs[..2]).unwrap();
    // A plaintext Finished at the right message_seq.
    let mut fin = Vec::new();
    write_message(&mut fin, HandshakeType::FINISHED, 2, &[0; 12]);
    let mut rec = plaintext_record(ContentType::HANDSHAKE, crate::enums::ProtocolVersion::DTLS1_2, 40, &fin);
    let err = s.handle_datagram(now, &mut rec).unwrap_err();
    assert_eq!(err, Error::unexpected("Finished outside epoch 1"));
    let alert = drain(&mut s);
    assert_eq!(alert.len(), 1);
    assert_eq!(&alert[0][13..], &[2, AlertDescription::UNEXPECTED_MESSAGE.0], "plaintext fatal alert");
}

#[test]
fn unknown_psk_identity_is_refused_with_its_alert() {
    let now = Instant::now();
    let c = builder().psk("mallory", KEY.to_vec()).build().unwrap();
    let s = builder()
        .psk_server_callback(|id| (id == b"alice").then(|| KEY.to_vec().into()))
        .cookie_verification(false)
        .build()
        .unwrap();
    let mut c = Connection::client(Arc::new(c), now).unwrap();
    let mut s = Connection::server(Arc::new(s), now).unwrap();
    exchange(&mut c, &mut s, now, 1);
    let d = drain(&mut c);
    assert_eq!(deliver(&mut s, now, &d), Err(Error::UnknownPskIdentity));
    assert_eq!(s.last_error(), Some(&Error::UnknownPskIdentity));
    assert!(Error::UnknownPskIdentity.is_authentication_failure());
    assert!(!Error::HandshakeTimeout.is_authentication_failure());
    assert!(!Error::decode("x").is_authentication_failure());
    let d = drain(&mut s);
    assert_eq!(deliver(&mut c, now, &d), Err(Error::AlertReceived(AlertDescription::UNKNOWN_PSK_IDENTITY)));
    assert!(c.is_closed() && s.is_closed());
}

#[test]
fn wrong_key_fails_with_bad_record_mac_once_the_finished_keeps_failing() {
    let now = Instant::now();
    let c = builder().psk("alice", b"wrong".to_vec()).build().unwrap();
    let s = builder().psk_server_key(KEY.to_vec()).cookie_verification(false).build().unwrap();
    let mut c = Connection::client(Arc::new(c), now).unwrap();
    let mut s = Connection::server(Arc::new(s), now).unwrap();
    exchange(&mut c, &mut s, now, 1);
    let flight5 = drain(&mut c);
    // The first undecryptable Finished records are dropped (they might have been corrupted in
    // transit); the third in a row is conclusive.
    deliver(&mut s, now, &flight5).unwrap();
    assert_eq!(s.stats().dropped_bad_auth, 1);
    assert!(drain(&mut s).is_empty());
    let mut later = now + Duration::from_millis(1200);
    c.handle_timeout(later).unwrap();
    let again = drain(&mut c);
    deliver(&mut s, later, &again).unwrap();
    assert_eq!(s.stats().dropped_bad_auth, 2);
    later += Duration::from_secs(3);
    c.handle_timeout(later).unwrap();
    let again = drain(&mut c);
    let err = deliver(&mut s, later, &again).unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved { alert: AlertDescription::BAD_RECORD_MAC, .. }), "{err:?}");
    assert!(err.to_string().contains("wrong pre-shared key"), "{err}");
    assert!(err.is_authentication_failure());
    let alert = drain(&mut s);
    assert_eq!(deliver(&mut c, later, &alert), Err(Error::AlertReceived(AlertDescription::BAD_RECORD_MAC)));
    assert!(!s.is_established() && !c.is_established());
}

#[test]
fn data_before_handshake_and_after_close_is_refused() {
    let (mut c, mut s, now) = pair();
    let mut out = Vec::new();
    assert_eq!(c.send(b"early", &mut out), Err(Error::InvalidOperation("the handshake has not completed")));
    let _ = (drain(&mut c), &mut s, now);
    let (mut c, mut s, now) = established();
    c.shutdown().unwrap();
    assert_eq!(c.handshake_state(), HandshakeState::NotStarted);
    assert!(c.send(b"late", &mut out).is_err());
    let close = drain(&mut c);
    assert_eq!(close.len(), 1);
    assert_eq!(deliver(&mut s, now, &close), Err(Error::RemoteClosed));
    assert_eq!(s.last_error().map(Error::kind), Some(crate::ErrorKind::RemoteClosedConnection));
    // The server answers with its own close_notify; nothing else is accepted afterwards.
    assert_eq!(drain(&mut s).len(), 1);
    assert!(s.send(b"x", &mut out).is_err());
}

#[test]
fn client_psk_callback_sees_the_server_hint() {
    let now = Instant::now();
    let seen = Arc::new(std::sync::Mutex::new(None));
    let seen2 = seen.clone();
    let c = builder()
        .psk_callback(move |hint| {
            *seen2.lock().unwrap() = hint.map(<[u8]>::to_vec);
            Some(crate::PskCredentials::new(b"from-hint".to_vec(), KEY.to_vec()))
        })
        .cipher_suites(&[&crate::suites::TLS_PSK_WITH_AES_128_CCM_8])
        .build()
        .unwrap();
    let s = builder()
        .psk_server_key(KEY.to_vec())
        .psk_identity_hint("the hint")
        .cookie_verification(false)
        .build()
        .unwrap();
    let mut c = Connection::client(Arc::new(c), now).unwrap();
    let mut s = Connection::server(Arc::new(s), now).unwrap();
    exchange(&mut c, &mut s, now, 3);
    assert!(c.is_established());
    assert_eq!(seen.lock().unwrap().as_deref(), Some(&b"the hint"[..]));
    assert_eq!(s.psk_identity(), Some(&b"from-hint"[..]));
}

#[test]
fn peer_retransmission_of_client_hello_resends_server_flight_once() {
    let (mut c, mut s, now) = pair();
    let ch = drain(&mut c);
    deliver(&mut s, now, &ch).unwrap();
    assert!(!drain(&mut s).is_empty());
    // The same ClientHello again, twice, shortly after: one resend, rate-limited.
    let later = now + Duration::from_millis(400);
    deliver(&mut s, later, &ch).unwrap();
    let again = drain(&mut s);
    assert!(!again.is_empty());
    deliver(&mut s, later, &ch).unwrap();
    assert!(drain(&mut s).is_empty(), "duplicates must not multiply traffic");
    assert_eq!(s.stats().retransmissions, 1);
}

/// A root, a server leaf for "localhost" and a client leaf, all ECDSA P-256.
fn test_pki() -> (crate::RootStore, crate::CertifiedKey, crate::CertifiedKey) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut roots = crate::RootStore::new();
    roots.add(ca.der()).unwrap();
    let leaf = |name: &str, eku| {
        let mut p = CertificateParams::new(vec![name.to_owned()]).unwrap();
        p.extended_key_usages = vec![eku];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca).unwrap();
        let provider = crate::crypto::default_provider();
        crate::CertifiedKey::from_pem_or_der(&*provider, cert.pem().as_bytes(), key.serialize_pem().as_bytes(), None)
            .unwrap()
    };
    (roots, leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth), leaf("client", ExtendedKeyUsagePurpose::ClientAuth))
}

/// pion/dtls CVE-2022-29222: a client that sends a Certificate but no CertificateVerify must not
/// be authenticated.
#[test]
fn client_certificate_without_certificate_verify_is_fatal() {
    let (roots, server_key, client_key) = test_pki();
    let now = Instant::now();
    let c = builder().root_store(roots.clone()).client_certificate(client_key).build().unwrap();
    let s = builder()
        .certificate(server_key)
        .root_store(roots)
        .client_auth(crate::ClientAuth::Required)
        .cookie_verification(false)
        .build()
        .unwrap();
    let name = crate::pki::ServerName::try_from("localhost").unwrap();
    let mut c = Connection::client_with_server_name(Arc::new(c), Some(name), now).unwrap();
    let mut s = Connection::server(Arc::new(s), now).unwrap();
    exchange(&mut c, &mut s, now, 1);
    // Flight 5, record by record: Certificate, ClientKeyExchange, CertificateVerify, CCS, Finished.
    let recs = records(&drain(&mut c));
    let types: Vec<u8> = recs.iter().map(|r| if r[0] == 22 && r[4] == 0 { r[13] } else { r[0] }).collect();
    assert_eq!(types, [11, 16, 15, 20, 22], "record kinds of flight 5");
    // Merely dropping CertificateVerify leaves a gap in message_seq: nothing completes.
    let without_cv: Vec<Vec<u8>> = recs.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, r)| r.clone()).collect();
    deliver(&mut s, now, &without_cv).unwrap();
    assert_eq!(s.handshake_state(), HandshakeState::InProgress);
    assert!(drain(&mut s).is_empty());
    // A malicious client numbers its Finished as the CertificateVerify would have been.
    let cv_seq = u16::from_be_bytes([recs[2][13 + 4], recs[2][13 + 5]]);
    let forged = forge_handshake(&mut c, 1, HandshakeType::FINISHED, cv_seq, &[0; 12]);
    let err = deliver(&mut s, now, &[forged]).unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved { alert: AlertDescription::UNEXPECTED_MESSAGE, .. }), "{err:?}");
    assert!(!s.is_established());
    assert_eq!(drain(&mut s).len(), 1, "the fatal alert");
}

#[test]
fn an_exported_session_resumes_elsewhere() {
    let now = Instant::now();
    let c = builder().psk("mover", KEY.to_vec()).build().unwrap();
    let s =
        builder().psk_server_key(KEY.to_vec()).cookie_verification(false).allow_session_export(true).build().unwrap();
    let s = Arc::new(s);
    let mut c = Connection::client(Arc::new(c), now).unwrap();
    let mut server = Connection::server(s.clone(), now).unwrap();
    exchange(&mut c, &mut server, now, 4);
    assert!(server.is_established());
    let mut rec = Vec::new();
    c.send(b"before", &mut rec).unwrap();
    let replayed = rec.clone();
    assert_eq!(server.handle_datagram(now, &mut rec).unwrap().iter().next(), Some(&b"before"[..]));

    let state = server.export_session().unwrap();
    let mut moved = Connection::import_session(s, &state, now).unwrap();
    assert!(moved.is_established());
    assert_eq!(moved.psk_identity(), Some(&b"mover"[..]));
    assert_eq!(moved.cipher_suite(), server.cipher_suite());
    // The replay window moved too: the old record is refused.
    assert!(moved.handle_datagram(now, &mut replayed.clone()).unwrap().is_empty());
    let mut rec = Vec::new();
    c.send(b"after", &mut rec).unwrap();
    assert_eq!(moved.handle_datagram(now, &mut rec).unwrap().iter().next(), Some(&b"after"[..]));
    // The old owner is closed: one key, one owner.
    assert!(server.is_closed());
    assert!(server.send(b"old owner", &mut Vec::new()).is_err());
    // The new owner's sequence numbers continue: the client accepts what it sends.
    let mut out2 = Vec::new();
    moved.send(b"new owner", &mut out2).unwrap();
    assert_eq!(c.handle_datagram(now, &mut out2).unwrap().iter().next(), Some(&b"new owner"[..]));

    // Export needs the configuration's consent and an established connection; imports check.
    assert!(c.export_session().is_err());
    assert_eq!(
        Connection::import_session(Arc::new(builder().psk("x", KEY.to_vec()).build().unwrap()), b"junk", now)
            .unwrap_err(),
        Error::InvalidInput("not an exported DTLS session")
    );
    let mut truncated = state.to_vec();
    truncated.pop();
    let cfg = Arc::new(builder().psk("x", KEY.to_vec()).build().unwrap());
    assert!(Connection::import_session(cfg, &truncated, now).is_err());
}

#[test]
fn handshake_timeout_must_be_within_edgeros_range() {
    for secs in [1, 121] {
        let err = builder().psk("x", KEY.to_vec()).handshake_timeout(Duration::from_secs(secs)).build();
        assert_eq!(err.unwrap_err(), Error::Config("handshake timeout must be between 2 and 120 seconds"));
    }
    for secs in [2, 60, 120] {
        assert!(builder().psk("x", KEY.to_vec()).handshake_timeout(Duration::from_secs(secs)).build().is_ok());
    }
}

#[test]
fn failed_decryption_limits_by_aead() {
    use crate::connection::default_failed_decryption_limit as limit;
    use crate::suites;
    assert_eq!(limit(Some(&suites::TLS_PSK_WITH_AES_128_GCM_SHA256)), 1 << 36);
    assert_eq!(limit(Some(&suites::TLS_PSK_WITH_CHACHA20_POLY1305_SHA256)), 1 << 36);
    assert_eq!(limit(Some(&suites::TLS_PSK_WITH_AES_128_CCM)), 1 << 23);
    // Not 2^16: 2 MB of forged records would close a CCM-8 connection.
    assert_eq!(limit(Some(&suites::TLS_PSK_WITH_AES_128_CCM_8)), 1 << 23);
    assert_eq!(limit(Some(&suites::TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8)), 1 << 23);
}

#[test]
fn too_many_authentication_failures_close_the_connection() {
    let now = Instant::now();
    let c = builder().psk("f", KEY.to_vec()).max_failed_decryptions(5).build().unwrap();
    let s =
        builder().psk_server_key(KEY.to_vec()).cookie_verification(false).max_failed_decryptions(5).build().unwrap();
    let mut c = Connection::client(Arc::new(c), now).unwrap();
    let mut s = Connection::server(Arc::new(s), now).unwrap();
    exchange(&mut c, &mut s, now, 4);
    let mut rec = Vec::new();
    c.send(b"x", &mut rec).unwrap();
    let last = rec.len() - 1;
    for i in 0..4 {
        let mut bad = rec.clone();
        bad[last] ^= 1 << i;
        assert!(s.handle_datagram(now, &mut bad).unwrap().is_empty());
    }
    let mut bad = rec.clone();
    bad[last] ^= 0x80;
    let err = s.handle_datagram(now, &mut bad).unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved { alert: AlertDescription::BAD_RECORD_MAC, .. }), "{err:?}");
    assert!(s.is_closed());
}

/// OpenSSL `test_dtls13_forged_plaintext_alert`, for 1.2: once the handshake is over, an
/// unauthenticated (epoch 0) alert is ignored.
#[test]
fn forged_plaintext_alert_after_the_handshake_is_ignored() {
    let (_c, mut s, now) = established();
    for desc in [AlertDescription::CLOSE_NOTIFY, AlertDescription::HANDSHAKE_FAILURE] {
        let mut rec = plaintext_record(ContentType::ALERT, crate::enums::ProtocolVersion::DTLS1_2, 99, &[2, desc.0]);
        assert!(s.handle_datagram(now, &mut rec).unwrap().is_empty());
        assert!(s.is_established(), "{desc:?} accepted");
    }
    assert_eq!(s.stats().dropped_unexpected, 2);
}

/// Unexpected messages for the negotiated key exchange are fatal (client order bugs:
/// CertificateRequest in a PSK handshake, ServerKeyExchange twice).
#[test]
fn out_of_order_server_messages_are_fatal() {
    let (mut c, mut s, now) = pair();
    let d = drain(&mut c);
    deliver(&mut s, now, &d).unwrap();
    let flight4 = records(&drain(&mut s));
    // ServerHello only, then a CertificateRequest (not allowed with PSK) at the next message_seq.
    deliver(&mut c, now, &flight4[..1]).unwrap();
    let mut forged = Vec::new();
    write_message(&mut forged, HandshakeType::CERTIFICATE_REQUEST, 1, &[1, 64, 0, 2, 4, 3, 0, 0]);
    let mut rec = plaintext_record(ContentType::HANDSHAKE, crate::enums::ProtocolVersion::DTLS1_2, 50, &forged);
    let err = c.handle_datagram(now, &mut rec).unwrap_err();
    assert_eq!(err, Error::unexpected("unexpected handshake message"));
}

/// The peer's Finished overtakes its ClientKeyExchange (OpenSSL retransmits a flight one message
/// per datagram): it is kept until the keys exist, and the handshake completes without waiting
/// for another retransmission.
#[test]
fn finished_before_the_key_exchange_is_kept_until_the_keys_exist() {
    let (mut c, mut s, now) = pair();
    exchange(&mut c, &mut s, now, 1);
    let recs = records(&drain(&mut c));
    // Finished (epoch 1), then ChangeCipherSpec, then ClientKeyExchange.
    deliver(&mut s, now, &[recs[2].clone(), recs[1].clone()]).unwrap();
    assert_eq!(s.handshake_state(), HandshakeState::InProgress);
    deliver(&mut s, now, &[recs[0].clone()]).unwrap();
    assert_eq!(s.handshake_state(), HandshakeState::Complete);
    assert_eq!(s.stats().dropped_epoch, 0);
}

#[test]
fn message_window_and_records_per_datagram_are_configurable() {
    let bad = builder().psk("x", KEY.to_vec()).message_window(0).build();
    assert_eq!(bad.unwrap_err(), Error::Config("the message window must be between 1 and 64 messages"));
    let bad = builder().psk("x", KEY.to_vec()).max_records_per_datagram(33).build();
    assert_eq!(bad.unwrap_err(), Error::Config("records per datagram must be between 1 and 32"));
    // One record per datagram: the second of two packed records is not even looked at.
    let now = Instant::now();
    let c = builder().psk("w", KEY.to_vec()).build().unwrap();
    let s =
        builder().psk_server_key(KEY.to_vec()).cookie_verification(false).max_records_per_datagram(1).build().unwrap();
    let mut c = Connection::client(Arc::new(c), now).unwrap();
    let mut s = Connection::server(Arc::new(s), now).unwrap();
    for _ in 0..4 {
        for d in records(&drain(&mut c)) {
            deliver(&mut s, now, &[d]).unwrap();
        }
        let d = drain(&mut s);
        deliver(&mut c, now, &d).unwrap();
    }
    assert!(s.is_established());
    let mut two = Vec::new();
    c.send(b"first", &mut two).unwrap();
    c.send(b"second", &mut two).unwrap();
    let got: Vec<Vec<u8>> = s.handle_datagram(now, &mut two).unwrap().iter().map(<[u8]>::to_vec).collect();
    assert_eq!(got, [b"first".to_vec()]);
}

#[test]
fn idle_server_frees_its_final_flight_once_the_client_cannot_retransmit() {
    let (mut c, mut s, now) = established();
    assert_eq!(c.poll_timeout(), None, "an established client has no timer");
    let hold = s.poll_timeout().expect("the server holds its final flight");
    assert_eq!(hold, now + s.config.handshake_timeout);
    s.handle_timeout(hold - Duration::from_millis(1)).unwrap();
    assert!(s.flight.is_some());
    s.handle_timeout(hold).unwrap();
    assert!(s.flight.is_none());
    assert_eq!(s.poll_timeout(), None);
    while s.poll_event().is_some() {}
    assert_eq!(s.events.capacity(), 0, "an idle connection keeps no event buffer");
    let mut record = Vec::new();
    c.send(b"still there", &mut record).unwrap();
    let got = s.handle_datagram(hold, &mut record).unwrap();
    assert_eq!(got.iter().next(), Some(&b"still there"[..]));
}

/// Qt's `dtlsConfiguration()`: the configuration a connection uses.
#[test]
fn a_connection_gives_back_its_configuration() {
    let cfg = Arc::new(builder().psk_server_key(KEY.to_vec()).build().unwrap());
    let conn = Connection::server(cfg.clone(), Instant::now()).unwrap();
    assert!(Arc::ptr_eq(conn.config(), &cfg));
}

/// RFC 6347 §4.2.1 gives the cookie `<0..2^8-1>`: a HelloVerifyRequest with an empty one is
/// answered with a new ClientHello that carries it back, empty (found by BoGo's
/// `DTLS-HelloVerifyRequest-0`; we had refused it).
#[test]
fn an_empty_hello_verify_request_cookie_is_sent_back() {
    let (mut c, _s, now) = pair();
    let first = records(&drain(&mut c));
    assert_eq!(first.len(), 1);
    let mut hvr = Vec::new();
    write_message(&mut hvr, HandshakeType::HELLO_VERIFY_REQUEST, 0, &[0xfe, 0xff, 0]);
    let mut rec = plaintext_record(ContentType::HANDSHAKE, crate::enums::ProtocolVersion(0xfeff), 0, &hvr);
    c.handle_datagram(now, &mut rec).unwrap();
    let again = records(&drain(&mut c));
    assert_eq!(again.len(), 1, "a second ClientHello");
    let body = &again[0][HEADER_LEN + 12..];
    // client_version, random, an empty session ID, then the cookie: empty.
    assert_eq!(body[2 + 32], 0, "no session ID");
    assert_eq!(body[2 + 32 + 1], 0, "the empty cookie, sent back");
    assert_eq!(u16::from_be_bytes([again[0][HEADER_LEN + 4], again[0][HEADER_LEN + 5]]), 1, "message_seq 1");
}

/// Found by BoGo (`DTLS12-SendExtraFinished-Reordered`, `-Packed`, and DTLS 1.3's): a message
/// of the peer's Finished epoch beyond its Finished is excess, refused with unexpected_message
/// before anything of ours is sent; after the handshake, a DTLS 1.3 message in the handshake
/// epoch beyond the Finished is too (a retransmission of the Finished is not).
#[test]
fn handshake_messages_after_the_peers_finished_are_refused() {
    let (mut c, mut s, now) = pair();
    let mut last = Vec::new();
    while !s.is_established() && last.is_empty() {
        let d = drain(&mut c);
        if c.epochs.write_epoch() == 1 {
            last = d;
        } else {
            deliver(&mut s, now, &d).unwrap();
            let d = drain(&mut s);
            deliver(&mut c, now, &d).unwrap();
        }
    }
    // An extra Finished, sent ahead of the client's last flight (ClientHello 0,
    // ClientKeyExchange 1, Finished 2: the extra one is 3).
    let extra = forge_handshake(&mut c, 1, HandshakeType::FINISHED, 3, &[0; 12]);
    s.handle_datagram(now, &mut extra.clone()).unwrap();
    let err = deliver(&mut s, now, &last).unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved { alert: AlertDescription::UNEXPECTED_MESSAGE, .. }), "{err}");
    assert!(!s.is_established() && s.is_closed());
    let alert = drain(&mut s);
    assert_eq!(alert.len(), 1, "the alert alone, not our Finished");

    // After a DTLS 1.2 handshake (`DTLS12-SendExtraFinished`): the client's Finished again is
    // a retransmission (dropped, or answered), a message after it is refused.
    let (mut c, mut s, now) = established();
    let last = s.peer_last_seq();
    assert_ne!(last, 0, "the client's Finished");
    let again = forge_handshake(&mut c, 1, HandshakeType::FINISHED, last, &[0; 12]);
    s.handle_datagram(now, &mut again.clone()).unwrap();
    assert!(!s.is_closed());
    let extra = forge_handshake(&mut c, 1, HandshakeType::FINISHED, last + 1, &[0; 12]);
    let err = s.handle_datagram(now, &mut extra.clone()).unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved { alert: AlertDescription::UNEXPECTED_MESSAGE, .. }), "{err}");

    let (mut c, mut s) = pair13(now);
    exchange(&mut c, &mut s, now, 1);
    let finished = drain(&mut c);
    deliver(&mut s, now, &finished).unwrap();
    assert!(s.is_established());
    // The Finished again (its ACK was lost) is acknowledged; a message after it is refused.
    deliver(&mut s, now, &finished).unwrap();
    let next = u16::try_from(s.tls13.as_deref().unwrap().peer_next_seq).unwrap();
    let extra = forge_handshake(&mut c, 2, HandshakeType::FINISHED, next, &[0; 32]);
    let err = s.handle_datagram(now, &mut extra.clone()).unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved { alert: AlertDescription::UNEXPECTED_MESSAGE, .. }), "{err}");
}

mod cid_sweep;
mod dtls13;
