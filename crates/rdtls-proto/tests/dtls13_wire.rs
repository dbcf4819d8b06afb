//! What DTLS 1.3 puts on the wire besides being correct, pinned by BoringSSL's conformance
//! suite (BoGo, `docs/bogo.md`), which found the first two as defects: a flight of ours
//! acknowledges the peer's without an extra ACK; post-handshake messages are acknowledged by
//! the ACK timer (RFC 9147 §7.1), not at once; encrypted handshake fragments share records and
//! fill datagrams; retransmission timers are exact when jitter is off; and the connection says
//! whether a HelloRetryRequest was used.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls_proto::crypto::KxGroup;
use rdtls_proto::enums::AlertDescription;
use rdtls_proto::pki::ServerName;
use rdtls_proto::{ClientAuth, Config, ConfigBuilder, Connection, Protocol};
use support::pki::ServerPki;
use support::{drain, pump};

const KEY: &[u8] = b"dtls 1.3 wire policy key";

fn v13() -> ConfigBuilder {
    Config::builder().protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3).cookie_verification(false)
}

fn psk_pair(now: Instant) -> (Connection, Connection) {
    let c = v13().psk("wire", KEY.to_vec()).retransmit_jitter(false).build().unwrap();
    let s = v13().psk_server_key(KEY.to_vec()).retransmit_jitter(false).build().unwrap();
    (Connection::client(Arc::new(c), now).unwrap(), Connection::server(Arc::new(s), now).unwrap())
}

/// The records of a datagram: (first header byte, length of what follows the header).
fn records(datagram: &[u8]) -> Vec<(u8, usize)> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while let Some(&first) = rest.first() {
        let (header, len) = if first & 0xe0 == 0x20 {
            // The unified header: here always with a length and a 16-bit sequence number.
            assert_eq!(first & 0x0c, 0x0c, "S and L bits");
            (5, usize::from(u16::from_be_bytes([rest[3], rest[4]])))
        } else {
            (13, usize::from(u16::from_be_bytes([rest[11], rest[12]])))
        };
        out.push((first, len));
        rest = &rest[header + len..];
    }
    out
}

/// The one record of the one datagram in `datagrams`.
fn only_record(datagrams: &[Vec<u8>]) -> (u8, usize) {
    assert_eq!(datagrams.len(), 1, "one datagram");
    let recs = records(&datagrams[0]);
    assert_eq!(recs.len(), 1, "one record: {recs:?}");
    recs[0]
}

fn deliver(to: &mut Connection, now: Instant, datagrams: &[Vec<u8>]) {
    for d in datagrams {
        let mut d = d.clone();
        to.handle_datagram(now, &mut d).unwrap();
    }
}

/// A certificate client (trusting `pki`, with `client` on top of DTLS 1.3 and the MTU) and
/// server, connected as far as the server's flight: returns them and that flight.
fn cert_flight(
    pki: &ServerPki,
    now: Instant,
    mtu: usize,
    client: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
    server: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> (Connection, Connection, Vec<Vec<u8>>) {
    let c = client(pki.resuming_client(v13()).mtu(mtu)).build().unwrap();
    let s = server(pki.server(v13()).mtu(mtu)).build().unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = Connection::client_with_server_name(Arc::new(c), Some(name), now).unwrap();
    let mut server = Connection::server(Arc::new(s), now).unwrap();
    let hello = drain(&mut client);
    deliver(&mut server, now, &hello);
    let flight = drain(&mut server);
    assert!(flight.len() >= 2, "a certificate flight over several datagrams: {}", flight.len());
    (client, server, flight)
}

#[test]
fn our_finished_acknowledges_the_servers_flight_without_an_ack() {
    let now = Instant::now();
    let (mut client, mut server) = psk_pair(now);
    let hello = drain(&mut client);
    deliver(&mut server, now, &hello);
    let flight = drain(&mut server);
    deliver(&mut client, now, &flight);
    assert!(client.is_established());
    // One datagram, one record: the Finished. Before BoGo, an ACK of the server's Finished
    // record rode along, which the Finished had already acknowledged.
    let finished = drain(&mut client);
    assert_eq!(only_record(&finished).0 & 0x03, 2, "in the handshake epoch");
    // The server's flight again (duplicated on the way) draws no ACK either: the client's
    // Finished, resent until acknowledged, answers it (found by BoGo,
    // `MixCompleteMessageWithFragments-DTLS-TLS13`: one ACK per duplicate record went out).
    deliver(&mut client, now, &flight);
    assert!(drain(&mut client).is_empty());
    // The server acknowledges it at once: the client waits for that ACK.
    deliver(&mut server, now, &finished);
    let ack = drain(&mut server);
    assert_eq!(ack.len(), 1);
    // The Finished again (as if that ACK were lost) is acknowledged on the ACK timer, with
    // whatever else came by then (found by BoGo, `DTLS-Retransmit-Server-ACKFinishedAfterAppData`).
    let resend_at = now + Duration::from_secs(1);
    client.handle_timeout(resend_at).unwrap();
    let again = drain(&mut client);
    assert_eq!(again.len(), 1, "the client's Finished again");
    deliver(&mut server, resend_at, &again);
    assert!(drain(&mut server).is_empty(), "not at once");
    server.handle_timeout(resend_at + Duration::from_millis(250)).unwrap();
    let ack = drain(&mut server);
    assert_eq!(ack.len(), 1, "on the timer");
    deliver(&mut client, resend_at, &ack);
    assert_eq!(client.poll_timeout(), None, "nothing left to retransmit");
}

#[test]
fn a_post_handshake_message_is_acknowledged_by_the_ack_timer() {
    let now = Instant::now();
    let (mut client, mut server) = psk_pair(now);
    pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    client.update_keys(now, false).unwrap();
    let key_update = drain(&mut client);
    deliver(&mut server, now, &key_update);
    // Not at once: a quarter of the retransmission timeout later (RFC 9147 §7.1), so that a
    // flight of post-handshake messages takes one ACK.
    assert!(drain(&mut server).is_empty());
    let ack_at = now + Duration::from_millis(250);
    assert!(server.poll_timeout().is_some_and(|t| t <= ack_at));
    server.handle_timeout(ack_at - Duration::from_millis(1)).unwrap();
    assert!(drain(&mut server).is_empty(), "not before the timer");
    server.handle_timeout(ack_at).unwrap();
    let ack = drain(&mut server);
    assert_eq!(ack.len(), 1);
    assert_eq!(records(&ack[0]).len(), 1);
    // The client's KeyUpdate is acknowledged: its timer stops, and it sends with new keys.
    deliver(&mut client, ack_at, &ack);
    assert_eq!(client.poll_timeout(), None);
    assert_eq!(client.stats().key_updates_sent, 1);
}

#[test]
fn encrypted_handshake_fragments_share_records_and_fill_datagrams() {
    let pki = ServerPki::new("Wire Root");
    let now = Instant::now();
    let mtu = 400;
    let (mut client, _server, flight) = cert_flight(&pki, now, mtu, |c| c, |s| s.session_tickets(false));
    // The ServerHello (1,174 bytes with the hybrid group's ciphertext) takes the first
    // datagrams, a plaintext record each; then EncryptedExtensions, Certificate,
    // CertificateVerify and Finished go in as few records as the datagrams allow: one per
    // datagram, the first beside the ServerHello's last piece.
    let mut encrypted_seen = false;
    for (i, d) in flight.iter().enumerate() {
        let encrypted = records(d).iter().filter(|(first, _)| first & 0xe0 == 0x20).count();
        assert_eq!(encrypted, usize::from(encrypted_seen || encrypted > 0), "datagram {i}: {:?}", records(d));
        encrypted_seen |= encrypted > 0;
        if i + 1 < flight.len() {
            assert_eq!(d.len(), mtu, "datagram {i} ends with room for more");
        }
    }
    deliver(&mut client, now, &flight);
    assert!(client.is_established());
}

#[test]
fn without_jitter_retransmission_timers_are_exact() {
    let now = Instant::now();
    let (mut client, _server) = psk_pair(now);
    let _ = drain(&mut client);
    assert_eq!(client.poll_timeout(), Some(now + Duration::from_secs(1)));
    let first = now + Duration::from_secs(1);
    client.handle_timeout(first).unwrap();
    assert_eq!(drain(&mut client).len(), 1, "the ClientHello again");
    assert_eq!(client.poll_timeout(), Some(first + Duration::from_secs(2)), "doubled");

    // With jitter (the default), up to 10% later.
    let c = v13().psk("wire", KEY.to_vec()).build().unwrap();
    let mut jittered = Connection::client(Arc::new(c), now).unwrap();
    let _ = drain(&mut jittered);
    let at = jittered.poll_timeout().unwrap() - now;
    assert!(at >= Duration::from_secs(1) && at <= Duration::from_millis(1100), "{at:?}");
}

#[test]
fn both_sides_say_whether_a_hello_retry_request_was_used() {
    let now = Instant::now();
    let (mut client, mut server) = psk_pair(now);
    pump(now, &mut client, &mut server);
    assert!(!client.used_hello_retry_request() && !server.used_hello_retry_request());

    // The client's key share (X25519) is not one the server takes: a retry for P-256.
    let c = v13().psk("wire", KEY.to_vec()).groups(&[KxGroup::X25519, KxGroup::Secp256r1]).build().unwrap();
    let s = v13().psk_server_key(KEY.to_vec()).groups(&[KxGroup::Secp256r1]).build().unwrap();
    let mut client = Connection::client(Arc::new(c), now).unwrap();
    let mut server = Connection::server(Arc::new(s), now).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    assert!(client.used_hello_retry_request() && server.used_hello_retry_request());
}

/// Found by BoGo: an MTU set during or after the handshake was forgotten once it ended, so
/// post-handshake flights (tickets, KeyUpdates) went out at the configured size.
#[test]
fn an_mtu_set_on_the_connection_outlives_the_handshake() {
    let now = Instant::now();
    let (mut client, mut server) = psk_pair(now);
    client.set_mtu(300).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.is_established());
    assert_eq!(client.mtu(), 300, "kept past the handshake");
    server.set_mtu(256).unwrap();
    assert_eq!(server.mtu(), 256, "set after the handshake");
    server.set_mtu(0).unwrap();
    assert_eq!(server.mtu(), 1400, "0 restores the configured value");
}

/// Found by BoGo (`DTLS13-HelloVerifyRequest`): a DTLS 1.3 server asks for a cookie with a
/// HelloRetryRequest, never a HelloVerifyRequest; a client that took a HelloVerifyRequest and
/// then gets a DTLS 1.3 ServerHello aborts instead of completing a handshake whose transcript
/// lacks a message it answered.
#[test]
fn a_dtls13_server_hello_after_a_hello_verify_request_is_refused() {
    let now = Instant::now();
    let both = Config::builder().protocol_versions(Protocol::Dtls1_2, Protocol::Dtls1_3);
    let c = both.psk("wire", KEY.to_vec()).build().unwrap();
    let mut client = Connection::client(Arc::new(c), now).unwrap();
    let s = v13().psk_server_key(KEY.to_vec()).build().unwrap();
    let mut server = Connection::server(Arc::new(s), now).unwrap();
    // The server's answer to the first ClientHello, held back while a HelloVerifyRequest (a
    // DTLS 1.2 server's, or an attacker's) reaches the client first.
    let hello1 = drain(&mut client);
    deliver(&mut server, now, &hello1);
    let flight = drain(&mut server);
    // A HelloVerifyRequest (DTLS 1.2 framing): version DTLS 1.0, cookie "abc".
    let body = [0xfe, 0xff, 3, b'a', b'b', b'c'];
    let mut hvr = vec![22, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12 + body.len() as u8];
    hvr.extend_from_slice(&[3, 0, 0, body.len() as u8, 0, 0, 0, 0, 0, 0, 0, body.len() as u8]);
    hvr.extend_from_slice(&body);
    client.handle_datagram(now, &mut hvr).unwrap();
    let hello = drain(&mut client);
    assert_eq!(hello.len(), 1, "the ClientHello again, with the cookie");
    // The ServerHello as it would follow the HelloVerifyRequest: message_seq 1.
    let mut first = flight[0].clone();
    assert_eq!(first[13], 2, "a ServerHello");
    first[17..19].copy_from_slice(&1u16.to_be_bytes());
    let err = client.handle_datagram(now, &mut first).unwrap_err();
    assert!(format!("{err}").contains("HelloVerifyRequest"), "{err}");
    assert!(client.is_closed());
}

/// Found by BoGo (`TrailingMessageData-TLS13-ClientCertificate-DTLS` and others): once the
/// server has sent its Finished it writes in the application epoch, so the alert that refuses
/// the client's second flight (and any ACK of part of it) comes in epoch 3, which the client
/// reads from the moment it sends that flight. It came in epoch 2, which a client that keeps
/// only its newest read epoch (BoringSSL's runner) cannot read.
#[test]
fn a_server_answers_the_clients_second_flight_in_the_application_epoch() {
    let pki = ServerPki::new("Wire Root");
    let now = Instant::now();
    let roots = pki.ca.roots();
    let required = |s: ConfigBuilder| s.root_store(roots).client_auth(ClientAuth::Required);
    let (mut client, mut server, flight) = cert_flight(&pki, now, 1400, |c| c, required);
    deliver(&mut client, now, &flight);
    // No certificate to give: an empty Certificate, then Finished; the server refuses it.
    let second = drain(&mut client);
    for d in &second {
        let mut d = d.clone();
        let _ = server.handle_datagram(now, &mut d);
    }
    assert!(server.is_closed());
    let alert = drain(&mut server);
    assert_eq!(only_record(&alert).0 & 0x03, 3, "in the application epoch");
    let mut d = alert[0].clone();
    let _ = client.handle_datagram(now, &mut d);
    assert_eq!(client.last_error(), Some(&rdtls_proto::Error::AlertReceived(AlertDescription::CERTIFICATE_REQUIRED)));
}

/// Length of an encrypted ACK record's body naming `n` records (AES-128-GCM: the list, the
/// inner content type, the tag).
fn ack_len(n: usize) -> usize {
    2 + 16 * n + 1 + 16
}

/// Found by BoGo (`DTLS-Retransmit-Client-ACKPostHandshakeTwice-TLS13` and others): an ACK
/// names every record received since our last flight, not only those since the last ACK, so
/// that a lost ACK costs nothing; the retransmission of an acknowledged message is named too.
#[test]
fn each_ack_names_every_record_since_our_last_flight() {
    let now = Instant::now();
    let (mut client, mut server) = psk_pair(now);
    pump(now, &mut client, &mut server);
    client.update_keys(now, false).unwrap();
    let key_update = drain(&mut client);
    deliver(&mut server, now, &key_update);
    let first_ack_at = now + Duration::from_millis(250);
    server.handle_timeout(first_ack_at).unwrap();
    // The KeyUpdate's record alone: the client's Finished was named by the ACK that ended
    // the handshake, and that list went with it (an idle connection keeps none).
    assert_eq!(only_record(&drain(&mut server)).1, ack_len(1));
    // That ACK is lost: the client sends its KeyUpdate again, in a new record.
    let resend_at = now + Duration::from_secs(1);
    client.handle_timeout(resend_at).unwrap();
    let again = drain(&mut client);
    assert_eq!(again.len(), 1);
    deliver(&mut server, resend_at, &again);
    server.handle_timeout(resend_at + Duration::from_millis(250)).unwrap();
    let ack = drain(&mut server);
    assert_eq!(records(&ack[0]), [(ack[0][0], ack_len(2))], "the first record and the new one");
    deliver(&mut client, resend_at, &ack);
    assert_eq!(client.poll_timeout(), None, "acknowledged");
}

/// Found by BoGo (`DTLS-Retransmit-PartialProgress-Client-TLS13`): the client's ACK of part
/// of the server's flight names the plaintext records of the ServerHello too, which arrived
/// before the client knew the version (so the server does not send them again).
#[test]
fn an_ack_of_part_of_the_servers_flight_names_the_plaintext_records() {
    let pki = ServerPki::new("Wire Root");
    let now = Instant::now();
    let x25519 = |c: ConfigBuilder| c.groups(&[KxGroup::X25519]).retransmit_jitter(false);
    let (mut client, _server, flight) = cert_flight(&pki, now, 400, x25519, |s| s);
    // Only the first datagram arrives: the ServerHello (plaintext) and what follows it.
    let first = records(&flight[0]);
    let plaintext = first.iter().filter(|(b, _)| *b == 22).count();
    assert!(plaintext >= 1 && plaintext < first.len(), "{first:?}");
    deliver(&mut client, now, &flight[..1]);
    assert!(drain(&mut client).is_empty(), "not at once");
    client.handle_timeout(now + Duration::from_millis(250)).unwrap();
    let (header, len) = only_record(&drain(&mut client));
    assert_eq!(header & 0x03, 2, "in the handshake epoch");
    assert_eq!(len, ack_len(first.len()), "every record of the datagram: {first:?}");
}

/// A PSK pair whose server only takes P-256 while the client's first share is X25519: the
/// server (stateful, no cookies) answers the first ClientHello with a HelloRetryRequest.
fn retry_pair(now: Instant, client_mtu: usize) -> (Connection, Connection) {
    let c = v13()
        .psk("wire", KEY.to_vec())
        .groups(&[KxGroup::X25519, KxGroup::Secp256r1])
        .mtu(client_mtu)
        .retransmit_jitter(false)
        .build()
        .unwrap();
    let s = v13().psk_server_key(KEY.to_vec()).groups(&[KxGroup::Secp256r1]).retransmit_jitter(false).build().unwrap();
    (Connection::client(Arc::new(c), now).unwrap(), Connection::server(Arc::new(s), now).unwrap())
}

/// A [`retry_pair`] whose client has answered the HelloRetryRequest, with a 200-byte MTU:
/// the pair and the second ClientHello, in several datagrams.
fn second_hello_in_pieces(now: Instant) -> (Connection, Connection, Vec<Vec<u8>>) {
    let (mut client, mut server) = retry_pair(now, 200);
    let hello = drain(&mut client);
    deliver(&mut server, now, &hello);
    let hrr = drain(&mut server);
    deliver(&mut client, now, &hrr);
    let second = drain(&mut client);
    assert!(second.len() >= 2, "the second ClientHello in pieces: {}", second.len());
    (client, server, second)
}

/// A plaintext ACK record naming the records `(epoch, seq)`.
fn plaintext_ack(record_seq: u8, named: &[(u64, u64)]) -> Vec<u8> {
    let mut body = ((16 * named.len()) as u16).to_be_bytes().to_vec();
    for (epoch, seq) in named {
        body.extend_from_slice(&epoch.to_be_bytes());
        body.extend_from_slice(&seq.to_be_bytes());
    }
    let mut record = vec![26, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, record_seq];
    record.extend_from_slice(&(body.len() as u16).to_be_bytes());
    record.extend_from_slice(&body);
    record
}

/// The sequence number of a DTLS 1.2-framed record at the start of a datagram.
fn plain_seq(datagram: &[u8]) -> u64 {
    u64::from_be_bytes([0, 0, datagram[5], datagram[6], datagram[7], datagram[8], datagram[9], datagram[10]])
}

/// Found by BoGo (`DTLS-Retransmit-Server-ACK*-TLS13`, `-PartialProgress-Server-TLS13`): a
/// server that keeps state retransmits its HelloRetryRequest on a timer like any flight, until
/// the client acknowledges it with a plaintext ACK or any part of the second ClientHello
/// arrives; a part of that ClientHello is acknowledged in plaintext, a quarter of the
/// retransmission timeout later. Before, the HelloRetryRequest was left to the client's own
/// retransmission, and plaintext ACKs were neither read nor sent.
#[test]
fn a_stateful_hello_retry_request_is_retransmitted_until_acknowledged() {
    let now = Instant::now();
    let deadline = now + Duration::from_secs(60);
    let (mut client, mut server) = retry_pair(now, 1400);
    let hello = drain(&mut client);
    deliver(&mut server, now, &hello);
    let hrr = drain(&mut server);
    assert_eq!(hrr.len(), 1);
    assert_eq!(hrr[0][0], 22, "plaintext");
    let rto = now + Duration::from_secs(1);
    assert_eq!(server.poll_timeout(), Some(rto));
    server.handle_timeout(rto).unwrap();
    let again = drain(&mut server);
    assert_eq!(again.len(), 1, "the HelloRetryRequest again");
    assert_eq!(again[0][25..], hrr[0][25..], "the same message");
    assert_eq!(server.poll_timeout(), Some(rto + Duration::from_secs(2)), "the timer doubled");
    // A plaintext ACK of an epoch-2 record is not one a plaintext ACK may carry: ignored.
    let mut forged = plaintext_ack(1, &[(2, 0)]);
    server.handle_datagram(rto, &mut forged).unwrap();
    assert_eq!(server.poll_timeout(), Some(rto + Duration::from_secs(2)));
    // The client's ACK of the retransmitted record stops the timer; the deadline remains.
    let mut ack = plaintext_ack(2, &[(0, plain_seq(&again[0]))]);
    server.handle_datagram(rto, &mut ack).unwrap();
    assert_eq!(server.poll_timeout(), Some(deadline));

    // Part of the second ClientHello does the same, and is acknowledged in plaintext.
    let (mut client, mut server, second) = second_hello_in_pieces(now);
    deliver(&mut server, now, &second[..1]);
    let ack_at = now + Duration::from_millis(250);
    assert_eq!(server.poll_timeout(), Some(ack_at), "the ACK timer, and no retransmission");
    server.handle_timeout(ack_at).unwrap();
    let ack = drain(&mut server);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0][0], 26, "a plaintext ACK");
    assert_eq!(ack[0][13..], plaintext_ack(0, &[(0, plain_seq(&second[0]))])[13..], "naming the piece");
    assert_eq!(server.poll_timeout(), Some(deadline));
    // The rest completes the handshake.
    deliver(&mut server, ack_at, &second[1..]);
    pump(ack_at, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    assert!(server.used_hello_retry_request());
}

/// Found by BoGo (`DTLS-Retransmit-PartialProgress-Client-TLS13`): an encrypted part of the
/// server's flight acknowledges the client's ClientHello (it is not sent again), and the ACK
/// timer is a quarter of the current retransmission timeout, which had doubled (RFC 9147
/// §7.1), not of the initial one.
#[test]
fn part_of_the_servers_flight_stops_the_hello_and_the_ack_waits_a_quarter_of_the_current_timeout() {
    let pki = ServerPki::new("Wire Root");
    let now = Instant::now();
    let c = pki.resuming_client(v13()).mtu(400).groups(&[KxGroup::X25519]).retransmit_jitter(false).build().unwrap();
    let s = pki.server(v13()).mtu(400).build().unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = Connection::client_with_server_name(Arc::new(c), Some(name), now).unwrap();
    let mut server = Connection::server(Arc::new(s), now).unwrap();
    let hello = drain(&mut client);
    // The hello is lost once: the timer doubles to 2 s.
    let resend = now + Duration::from_secs(1);
    client.handle_timeout(resend).unwrap();
    let hello_again = drain(&mut client);
    assert_eq!(hello_again.len(), hello.len());
    assert_eq!(client.poll_timeout(), Some(resend + Duration::from_secs(2)));
    deliver(&mut server, resend, &hello_again);
    let flight = drain(&mut server);
    assert!(records(&flight[0]).iter().any(|(b, _)| b & 0xe0 == 0x20), "encrypted records in the first datagram");
    deliver(&mut client, resend, &flight[..1]);
    // The ACK in half a second (2 s / 4), and no more ClientHello.
    let ack_at = resend + Duration::from_millis(500);
    assert_eq!(client.poll_timeout(), Some(ack_at));
    client.handle_timeout(ack_at).unwrap();
    let ack = drain(&mut client);
    assert_eq!(ack.len(), 1);
    assert_eq!(client.poll_timeout(), Some(now + Duration::from_secs(60)), "only the handshake deadline");
    // The rest of the flight completes the handshake.
    deliver(&mut client, ack_at, &flight[1..]);
    assert!(client.is_established());
}

/// Found by BoGo (`DTLS-Retransmit-Client-TLS13`): after a HelloRetryRequest the client
/// knows it speaks DTLS 1.3, and a plaintext ACK of part of its second ClientHello spares that
/// part from retransmission (before, plaintext ACKs were dropped and the whole hello went
/// again).
#[test]
fn a_plaintext_ack_of_part_of_the_second_hello_spares_that_part() {
    let now = Instant::now();
    let (mut client, _server, second) = second_hello_in_pieces(now);
    // The server acknowledges the first piece.
    let mut ack = plaintext_ack(3, &[(0, plain_seq(&second[0]))]);
    client.handle_datagram(now, &mut ack).unwrap();
    let rto = now + Duration::from_secs(1);
    assert_eq!(client.poll_timeout(), Some(rto));
    client.handle_timeout(rto).unwrap();
    let again = drain(&mut client);
    assert_eq!(again.len(), second.len() - 1, "all but the acknowledged piece");
    let offset = |d: &[u8]| u32::from_be_bytes([0, d[19], d[20], d[21]]);
    assert_eq!(offset(&again[0]), offset(&second[1]));
    // Before the version is known, a plaintext ACK changes nothing (anyone can send one).
    let (mut client, _) = retry_pair(now, 200);
    let hello = drain(&mut client);
    let mut ack = plaintext_ack(0, &[(0, plain_seq(&hello[0]))]);
    client.handle_datagram(now, &mut ack).unwrap();
    client.handle_timeout(rto).unwrap();
    assert_eq!(drain(&mut client).len(), hello.len());
}
