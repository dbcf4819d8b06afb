//! Regressions for the security review's findings that the core owns: a forged ClientHello that
//! tore down an association (3), certificates accepted with no name to check (4), a nonce
//! reused at the end of the sequence space (5), unsolicited ServerHello extensions (6), and the
//! smaller ones (final flight resent for unauthenticated look-alikes, server_name acknowledged
//! for a name that chose nothing). Reassembly and ClientHello cost are in `adversarial_cost.rs`,
//! cookie rotation across workers in `cookie_flood.rs`. The findings were DTLS 1.2's, and
//! these tests forge and read DTLS 1.2 messages, records and exported sessions: every
//! configuration is DTLS 1.2 only (`support::dtls12`).

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls_proto::enums::{AlertDescription, ExtensionType, HandshakeType};
use rdtls_proto::messages::{HandshakeHeader, ServerHello};
use rdtls_proto::record::{RecordHeader, Records, MAX_SEQ};
use rdtls_proto::{CertificateError, Config, Connection, DatagramEvent, Endpoint, Error, HandshakeState};
use support::pki::{Alg, Ca, Usage, Validity};
use support::pump;

fn psk_pair(server: Config) -> (Connection, Connection, Instant) {
    let now = Instant::now();
    let client = Connection::client(Arc::new(support::dtls12().psk("id", b"key".to_vec()).build().unwrap()), now);
    (client.unwrap(), Connection::server(Arc::new(server), now).unwrap(), now)
}

fn psk_server() -> Config {
    support::dtls12().psk_server_key(b"key".to_vec()).cookie_verification(false).build().unwrap()
}

// ===== finding 3: a forged ClientHello must not tear down an association =====

#[test]
fn without_cookies_a_forged_client_hello_leaves_the_association_alone() {
    let now = Instant::now();
    let mut ep = Endpoint::new(Arc::new(psk_server()), now).unwrap();
    let a: SocketAddr = "192.0.2.7:5000".parse().unwrap();
    let client_cfg = Arc::new(support::dtls12().psk("id", b"key".to_vec()).build().unwrap());
    let mut client = Connection::client(client_cfg.clone(), now).unwrap();
    let mut ch = Vec::new();
    assert!(client.poll_transmit(&mut ch).is_some());
    let mut resp = Vec::new();
    let DatagramEvent::Incoming(inc) = ep.handle(now, a, &ch, &mut resp) else { panic!("cookies are off") };
    let (old, mut server) = ep.accept(inc, now).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());

    // Anyone can send a ClientHello with a new random from the client's address and port.
    let mut forger = Connection::client(client_cfg.clone(), now).unwrap();
    let mut forged = Vec::new();
    assert!(forger.poll_transmit(&mut forged).is_some());
    match ep.handle(now, a, &forged, &mut resp) {
        // The would-be restart must prove it receives at this address first; the
        // HelloVerifyRequest goes to the real client, which ignores it.
        DatagramEvent::Respond => assert!(resp.len() <= forged.len()),
        other => panic!("a forged ClientHello was not asked for a cookie: {other:?}"),
    }
    let mut hvr = resp.clone();
    assert!(client.handle_datagram(now, &mut hvr).unwrap().is_empty());
    assert!(client.is_established());
    assert_eq!(ep.remote(old), Some(a), "the association is still registered");

    // The client's data still reaches its connection.
    let mut record = Vec::new();
    client.send(b"still here", &mut record).unwrap();
    assert!(matches!(ep.handle(now, a, &record, &mut resp), DatagramEvent::Connection(h) if h == old));
    let got = server.handle_datagram(now, &mut record).unwrap();
    assert_eq!(got.iter().next(), Some(&b"still here"[..]));

    // A client that really restarted on the same port completes the cookie exchange and then
    // replaces its old association.
    let mut restarted = Connection::client(client_cfg, now).unwrap();
    let mut ch1 = Vec::new();
    assert!(restarted.poll_transmit(&mut ch1).is_some());
    assert!(matches!(ep.handle(now, a, &ch1, &mut resp), DatagramEvent::Respond));
    restarted.handle_datagram(now, &mut resp).unwrap();
    let mut ch2 = Vec::new();
    assert!(restarted.poll_transmit(&mut ch2).is_some());
    let DatagramEvent::Incoming(inc) = ep.handle(now, a, &ch2, &mut resp) else { panic!("restart not admitted") };
    assert_eq!(inc.replaces(), Some(old));
    let (new, mut server2) = ep.accept(inc, now).unwrap();
    assert_eq!(ep.remote(old), None);
    pump(now, &mut restarted, &mut server2);
    assert!(restarted.is_established() && server2.is_established());
    assert!(matches!(ep.handle(now, a, &ch2, &mut resp), DatagramEvent::Connection(h) if h == new));
}

// ===== finding 4: no certificate without a name to check =====

struct Certs {
    ca: Ca,
    server: Config,
}

fn cert_server() -> Certs {
    let ca = Ca::root("Findings Root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost", "127.0.0.1"], Usage::Server, Validity::Now);
    let server = support::dtls12().certificate(leaf.certified_key()).cookie_verification(false).build().unwrap();
    Certs { ca, server }
}

#[test]
fn a_client_with_no_server_name_refuses_a_valid_certificate() {
    let Certs { ca, server } = cert_server();
    let now = Instant::now();
    let client_cfg = Arc::new(support::dtls12().root_store(ca.roots()).build().unwrap());
    let mut client = Connection::client(client_cfg, now).unwrap();
    let mut server = Connection::server(Arc::new(server), now).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.is_closed() && !server.is_established());
    assert_eq!(client.last_error(), Some(&Error::PeerVerification(vec![CertificateError::NoServerName])));
    assert_eq!(server.last_error(), Some(&Error::AlertReceived(AlertDescription::BAD_CERTIFICATE)));
}

#[test]
fn a_client_checks_the_name_or_address_it_is_given_or_opts_out_loudly() {
    let now = Instant::now();
    let Certs { ca, server } = cert_server();
    let server = Arc::new(server);
    let run = |client_cfg: Config, name: Option<&str>| {
        let name = name.map(|n| rdtls_proto::pki::ServerName::try_from(n.to_owned()).unwrap());
        let mut client = Connection::client_with_server_name(Arc::new(client_cfg), name, now).unwrap();
        let mut s = Connection::server(server.clone(), now).unwrap();
        pump(now, &mut client, &mut s);
        client
    };
    // The address the client connects to, as the socket layer gives it.
    let c = run(support::dtls12().root_store(ca.roots()).build().unwrap(), Some("127.0.0.1"));
    assert!(c.is_established(), "{:?}", c.last_error());
    let c = run(support::dtls12().root_store(ca.roots()).build().unwrap(), Some("localhost"));
    assert!(c.is_established(), "{:?}", c.last_error());
    let c = run(support::dtls12().root_store(ca.roots()).build().unwrap(), Some("other.example"));
    assert_eq!(c.last_error(), Some(&Error::PeerVerification(vec![CertificateError::HostNameMismatch])));
    // The explicit opt-out.
    let c = run(support::dtls12().root_store(ca.roots()).danger_accept_any_server_name(true).build().unwrap(), None);
    assert!(c.is_established(), "{:?}", c.last_error());
    // Qt's way: pause on the error, ignore it, resume.
    let cfg = support::dtls12().root_store(ca.roots()).verify_peer(rdtls_proto::VerifyPeer::Pause).build().unwrap();
    let mut client = Connection::client(Arc::new(cfg), now).unwrap();
    let mut s = Connection::server(server.clone(), now).unwrap();
    pump(now, &mut client, &mut s);
    assert_eq!(client.handshake_state(), HandshakeState::PeerVerificationFailed);
    assert_eq!(client.peer_verification_errors(), &[CertificateError::NoServerName]);
    client.ignore_verification_errors(&[CertificateError::NoServerName]);
    assert!(client.resume_handshake(now).unwrap());
    pump(now, &mut client, &mut s);
    assert!(client.is_established() && s.is_established());
}

// ===== finding 5: every record writer refuses to wrap the sequence number =====

/// Offset of the write sequence number in an exported session (see `export_session`).
const EXPORT_SEQ_AT: usize = 8 + 1 + 2 + 1 + 48 + 32 + 32;

/// An established pair whose server's next record sequence number in epoch 1 is `next_seq`
/// (moved there through a session export and import).
fn pair_with_server_at(next_seq: u64) -> (Connection, Connection, Instant) {
    let server_cfg = support::dtls12()
        .psk_server_key(b"key".to_vec())
        .cookie_verification(false)
        .allow_session_export(true)
        .build()
        .unwrap();
    let (mut client, mut server, now) = psk_pair(server_cfg.clone());
    pump(now, &mut client, &mut server);
    assert!(server.is_established());
    let mut state = server.export_session().unwrap();
    state[EXPORT_SEQ_AT..EXPORT_SEQ_AT + 6].copy_from_slice(&next_seq.to_be_bytes()[2..]);
    let server = Connection::import_session(Arc::new(server_cfg), &state, now).unwrap();
    (client, server, now)
}

#[test]
fn at_the_end_of_the_sequence_space_nothing_more_is_sealed() {
    let (mut client, mut server, now) = pair_with_server_at(MAX_SEQ - 1);

    let mut seen = Vec::new();
    for _ in 0..2 {
        let mut record = Vec::new();
        server.send(b"last", &mut record).unwrap();
        seen.push(RecordHeader::parse(&record).unwrap().seq);
        assert_eq!(client.handle_datagram(now, &mut record).unwrap().iter().next(), Some(&b"last"[..]));
    }
    assert_eq!(seen, [MAX_SEQ - 1, MAX_SEQ]);
    let mut record = Vec::new();
    assert_eq!(server.send(b"one too many", &mut record), Err(Error::SequenceExhausted));
    assert!(record.is_empty());
    assert!(server.is_closed());
    assert_eq!(server.last_error(), Some(&Error::SequenceExhausted));
    // Not even the close_notify or an alert: its nonce would be (epoch 1, seq 0)'s.
    let mut out = Vec::new();
    assert_eq!(server.poll_transmit(&mut out), None);
}

#[test]
fn close_notify_after_the_last_sequence_number_is_not_sealed() {
    let (_client, mut server, _) = pair_with_server_at(MAX_SEQ);
    let mut record = Vec::new();
    server.send(b"last", &mut record).unwrap();
    // The alert path (which wrote past the end before) must refuse too.
    server.shutdown().unwrap();
    let mut out = Vec::new();
    assert_eq!(server.poll_transmit(&mut out), None, "a record was sealed past 2^48 - 1: {out:02x?}");
}

#[test]
fn an_exhausted_connection_cannot_be_exported_to_start_over() {
    let (_client, mut server, _) = pair_with_server_at(MAX_SEQ);
    let mut record = Vec::new();
    server.send(b"last", &mut record).unwrap();
    // The importer would seal (epoch 1, seq 0) again under the same key.
    assert_eq!(server.export_session().map(|_| ()), Err(Error::SequenceExhausted));
}

// ===== finding 6: unsolicited ServerHello extensions =====

/// Appends an extension of `ty` with `ext` as its body to the ServerHello alone in the first
/// record of `datagram`, fixing every length.
fn add_server_hello_extension(datagram: &mut Vec<u8>, ty: ExtensionType, ext: &[u8]) {
    let rec = RecordHeader::parse(datagram).unwrap();
    let body_at = 13 + 12;
    let body_end = 13 + usize::from(rec.length);
    assert_eq!(HandshakeType(datagram[13]), HandshakeType::SERVER_HELLO);
    let sh = ServerHello::parse(&datagram[body_at..body_end]).unwrap();
    let mut body = datagram[body_at..body_end].to_vec();
    let fixed = 2 + 32 + 1 + sh.session_id.len() + 2 + 1;
    if body.len() == fixed {
        body.extend_from_slice(&[0, 0]);
    }
    let ext_len = u16::from_be_bytes([body[fixed], body[fixed + 1]]) + 4 + ext.len() as u16;
    body[fixed..fixed + 2].copy_from_slice(&ext_len.to_be_bytes());
    body.extend_from_slice(&ty.0.to_be_bytes());
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(ext);
    let mut hs = Vec::new();
    rdtls_proto::messages::write_message(&mut hs, HandshakeType::SERVER_HELLO, 0, &body);
    let mut out = Vec::new();
    RecordHeader { length: hs.len() as u16, ..rec }.write(&mut out);
    out.extend_from_slice(&hs);
    out.extend_from_slice(&datagram[body_end..]);
    *datagram = out;
}

fn client_meets_server_hello_with(
    ty: ExtensionType,
    client_cfg: Config,
    server_cfg: Config,
    name: Option<&str>,
) -> Connection {
    let now = Instant::now();
    let name = name.map(|n| rdtls_proto::pki::ServerName::try_from(n.to_owned()).unwrap());
    let mut client = Connection::client_with_server_name(Arc::new(client_cfg), name, now).unwrap();
    let mut server = Connection::server(Arc::new(server_cfg), now).unwrap();
    let mut buf = Vec::new();
    assert!(client.poll_transmit(&mut buf).is_some());
    server.handle_datagram(now, &mut buf).unwrap();
    assert!(server.poll_transmit(&mut buf).is_some());
    // A well-formed body for the extensions that have one.
    let ext: &[u8] = match ty {
        ExtensionType::EC_POINT_FORMATS => &[1, 0],
        ExtensionType::SUPPORTED_VERSIONS => &[0xfe, 0xfc],
        ExtensionType::KEY_SHARE => &[0, 0x1d, 0, 1, 7],
        ExtensionType::CONNECTION_ID => &[2, 0xc1, 0xd0],
        _ => &[],
    };
    add_server_hello_extension(&mut buf, ty, ext);
    let _ = client.handle_datagram(now, &mut buf);
    client
}

#[test]
fn unsolicited_server_hello_extensions_abort_with_unsupported_extension() {
    let psk_client = || support::dtls12().psk("id", b"key".to_vec()).build().unwrap();
    let unsupported = Error::PeerMisbehaved {
        alert: AlertDescription::UNSUPPORTED_EXTENSION,
        reason: "server sent an extension we did not offer",
    };
    // An extension nobody offered, server_name when we sent no name, a connection ID we did
    // not ask for, and the DTLS 1.3 extensions a client that offered only 1.2 never asked for.
    for ty in [
        ExtensionType(0x3a3a),
        ExtensionType::SERVER_NAME,
        ExtensionType::CONNECTION_ID,
        ExtensionType::ENCRYPT_THEN_MAC,
        ExtensionType::SUPPORTED_VERSIONS,
        ExtensionType::KEY_SHARE,
    ] {
        let mut c = client_meets_server_hello_with(ty, psk_client(), psk_server(), None);
        assert!(c.is_closed(), "{ty:?} accepted");
        assert_eq!(c.last_error(), Some(&unsupported), "{ty:?}");
        // The alert on the wire: fatal (2), unsupported_extension (110).
        let mut alert = Vec::new();
        assert!(c.poll_transmit(&mut alert).is_some());
        assert_eq!(&alert[13..], &[2, AlertDescription::UNSUPPORTED_EXTENSION.0]);
    }
    // ec_point_formats answers an offer of ECDHE suites only.
    let plain_psk = support::dtls12()
        .psk("id", b"key".to_vec())
        .cipher_suites(&[&rdtls_proto::suites::TLS_PSK_WITH_AES_128_GCM_SHA256])
        .build()
        .unwrap();
    let c = client_meets_server_hello_with(ExtensionType::EC_POINT_FORMATS, plain_psk, psk_server(), None);
    assert_eq!(c.last_error(), Some(&unsupported));
}

// ===== server_name acknowledged only when the name chose the certificate =====

fn server_hello_of(client_cfg: Config, server_cfg: Config, name: &str) -> ServerHello {
    let now = Instant::now();
    let name = rdtls_proto::pki::ServerName::try_from(name.to_owned()).unwrap();
    let mut client = Connection::client_with_server_name(Arc::new(client_cfg), Some(name), now).unwrap();
    let mut server = Connection::server(Arc::new(server_cfg), now).unwrap();
    let mut buf = Vec::new();
    assert!(client.poll_transmit(&mut buf).is_some());
    server.handle_datagram(now, &mut buf).unwrap();
    assert!(server.poll_transmit(&mut buf).is_some());
    let (_, range) = Records::new(&buf).next().unwrap();
    ServerHello::parse(&buf[range.start + 12..range.end]).unwrap()
}

#[test]
fn server_name_is_acknowledged_only_when_it_chose_the_certificate() {
    let ca = Ca::root("SNI Root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server, Validity::Now);
    let client = || support::dtls12().root_store(ca.roots()).build().unwrap();
    // One certificate, no SNI store: the name chose nothing, so nothing is acknowledged (what
    // OpenSSL does without a servername callback; pion/dtls 2.x aborts otherwise).
    let one = support::dtls12().certificate(leaf.certified_key()).build().unwrap();
    assert_eq!(server_hello_of(client(), one, "localhost").extensions.server_name, None);
    // An SNI store that has the name: acknowledged.
    let by_name = support::dtls12().sni_certificate("localhost", leaf.certified_key()).build().unwrap();
    assert_eq!(server_hello_of(client(), by_name, "localhost").extensions.server_name, Some(Vec::new()));
    // A store without it, falling back to the default: not acknowledged.
    let other = ca.leaf(Alg::EcdsaP256, &["other.example"], Usage::Server, Validity::Now);
    let fallback = support::dtls12()
        .certificate(leaf.certified_key())
        .sni_certificate("other.example", other.certified_key())
        .build()
        .unwrap();
    assert_eq!(server_hello_of(client(), fallback, "localhost").extensions.server_name, None);
}

// ===== the final flight answers only authenticated retransmissions =====

#[test]
fn forged_epoch0_look_alikes_of_the_client_flight_draw_no_final_flight() {
    let (mut client, mut server, now) = psk_pair(psk_server());
    // Run the handshake, but lose the server's final flight.
    let mut buf = Vec::new();
    assert!(client.poll_transmit(&mut buf).is_some());
    server.handle_datagram(now, &mut buf).unwrap();
    while server.poll_transmit(&mut buf).is_some() {
        client.handle_datagram(now, &mut buf).unwrap();
    }
    let mut client_flight = Vec::new();
    while client.poll_transmit(&mut buf).is_some() {
        client_flight.push(buf.clone());
        server.handle_datagram(now, &mut buf).unwrap();
    }
    assert!(server.is_established() && !client.is_established());
    while server.poll_transmit(&mut buf).is_some() {} // lost

    // An off-path forger sends epoch-0 copies of the client's ClientKeyExchange: each used to
    // draw the whole final flight (up to 16 times).
    let mut cke = Vec::new();
    for d in &client_flight {
        for (h, range) in Records::new(d) {
            if h.epoch == 0 && d[range.start] == HandshakeType::CLIENT_KEY_EXCHANGE.0 {
                cke = d[range.start - 13..range.end].to_vec();
            }
        }
    }
    assert!(!cke.is_empty());
    let (hs, _) = HandshakeHeader::parse(&mut rdtls_proto::codec::Reader::new(&cke[13..])).unwrap();
    assert_eq!(hs.msg_type, HandshakeType::CLIENT_KEY_EXCHANGE);
    for i in 0..20 {
        let t = now + Duration::from_secs(1 + i);
        let mut forged = cke.clone();
        server.handle_datagram(t, &mut forged).unwrap();
        assert_eq!(server.poll_transmit(&mut buf), None, "forgery {i} drew a datagram");
    }

    // The client's own retransmission (its Finished is authenticated) does.
    let t = now + Duration::from_secs(30);
    client.handle_timeout(t).unwrap();
    let mut resent = 0;
    while client.poll_transmit(&mut buf).is_some() {
        server.handle_datagram(t, &mut buf).unwrap();
        while server.poll_transmit(&mut buf).is_some() {
            resent += 1;
            client.handle_datagram(t, &mut buf).unwrap();
        }
    }
    assert!(resent > 0);
    assert!(client.is_established());
}

// ===== finding 8: vanished peers must not fill a server for good =====

#[test]
fn a_full_endpoint_evicts_the_longest_idle_connection_past_the_stale_threshold() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(Arc::new(psk_server()), t0).unwrap();
    ep.set_max_connections(3);
    ep.set_stale_after(Some(Duration::from_secs(600)));
    let client_cfg = Arc::new(support::dtls12().psk("id", b"key".to_vec()).build().unwrap());
    let hello = || {
        let mut c = Connection::client(client_cfg.clone(), t0).unwrap();
        let mut ch = Vec::new();
        assert!(c.poll_transmit(&mut ch).is_some());
        (c, ch)
    };
    let addr = |i: u16| SocketAddr::from(([198, 51, 100, 1], 6000 + i));
    let mut resp = Vec::new();
    let mut conns = Vec::new();
    for i in 0..3 {
        let (mut c, ch) = hello();
        let DatagramEvent::Incoming(inc) = ep.handle(t0, addr(i), &ch, &mut resp) else { panic!() };
        assert_eq!(inc.evicts(), None);
        let (h, mut s) = ep.accept(inc, t0).unwrap();
        pump(t0, &mut c, &mut s);
        conns.push((h, c, s));
    }
    // Peers 1 and 2 stay active; peer 0 vanishes without a close_notify.
    for (i, at) in [(1usize, 300u64), (2, 60)] {
        let mut record = Vec::new();
        conns[i].1.send(b"alive", &mut record).unwrap();
        let t = t0 + Duration::from_secs(at);
        assert!(matches!(ep.handle(t, addr(i as u16), &record, &mut resp), DatagramEvent::Connection(_)));
    }
    // Full, and nobody idle for 10 minutes yet: the newcomer is refused.
    let (_, ch) = hello();
    assert!(matches!(ep.handle(t0 + Duration::from_secs(599), addr(9), &ch, &mut resp), DatagramEvent::Drop));
    assert_eq!(ep.refused_full(), 1);
    // Later, the one idle longest makes room.
    let t = t0 + Duration::from_secs(700);
    let (mut c, ch) = hello();
    let DatagramEvent::Incoming(inc) = ep.handle(t, addr(9), &ch, &mut resp) else { panic!("refused") };
    assert_eq!(inc.evicts(), Some(conns[0].0));
    let (_, mut s) = ep.accept(inc, t).unwrap();
    pump(t, &mut c, &mut s);
    assert!(c.is_established());
    assert_eq!(ep.evicted(), 1);
    assert_eq!(ep.connection_count(), 3);
    assert_eq!(ep.remote(conns[0].0), None);
    assert_eq!(ep.remote(conns[1].0), Some(addr(1)));
    // Peer 2 (last seen at 60 s) is next; with the policy off, nobody is.
    let (_, ch) = hello();
    let DatagramEvent::Incoming(inc) = ep.handle(t, addr(10), &ch, &mut resp) else { panic!("refused") };
    assert_eq!(inc.evicts(), Some(conns[2].0));
    drop(inc);
    ep.set_stale_after(None);
    assert!(matches!(ep.handle(t, addr(10), &ch, &mut resp), DatagramEvent::Drop));
}

/// A threshold too long for an `Instant` to hold (`Duration::MAX`: never stale) refuses the
/// newcomer of a full endpoint, as a long one does; it does not overflow.
#[test]
fn a_stale_threshold_past_what_an_instant_holds_never_evicts() {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(Arc::new(psk_server()), t0).unwrap();
    ep.set_max_connections(1);
    ep.set_stale_after(Some(Duration::MAX));
    let client_cfg = Arc::new(support::dtls12().psk("id", b"key".to_vec()).build().unwrap());
    let hello = || {
        let mut ch = Vec::new();
        assert!(Connection::client(client_cfg.clone(), t0).unwrap().poll_transmit(&mut ch).is_some());
        ch
    };
    let addr = |i: u16| SocketAddr::from(([198, 51, 100, 2], 7000 + i));
    let mut resp = Vec::new();
    let DatagramEvent::Incoming(inc) = ep.handle(t0, addr(0), &hello(), &mut resp) else { panic!() };
    ep.accept(inc, t0).unwrap();
    for later in [1, 86_400 * 365 * 100] {
        let t = t0 + Duration::from_secs(later);
        assert!(matches!(ep.handle(t, addr(1), &hello(), &mut resp), DatagramEvent::Drop));
    }
    assert_eq!((ep.refused_full(), ep.evicted()), (2, 0));
}

// ===== a repeated message does not hide the new ones packed after it =====

/// The handshake messages (header and body) in the epoch-0 handshake records of `datagrams`.
fn epoch0_messages(datagrams: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for d in datagrams {
        for (h, range) in Records::new(d) {
            if h.epoch == 0 && h.content_type == rdtls_proto::enums::ContentType::HANDSHAKE {
                out.push(d[range].to_vec());
            }
        }
    }
    out
}

#[test]
fn a_record_repacking_an_old_message_with_new_ones_is_read_to_its_end() {
    // A client that repacks its messages on retransmission sends its ClientHello again in the
    // same record as its ClientKeyExchange; the server already has the ClientHello. The
    // ClientKeyExchange after it must still be read (it was skipped, and the handshake waited
    // for yet another retransmission).
    let (mut client, mut server, now) = psk_pair(psk_server());
    let mut buf = Vec::new();
    assert!(client.poll_transmit(&mut buf).is_some());
    let hello = epoch0_messages(&[buf.clone()]);
    server.handle_datagram(now, &mut buf).unwrap();
    while server.poll_transmit(&mut buf).is_some() {
        client.handle_datagram(now, &mut buf).unwrap();
    }
    let mut flight = Vec::new();
    while client.poll_transmit(&mut buf).is_some() {
        flight.push(buf.clone());
    }
    let cke = epoch0_messages(&flight);
    assert_eq!(cke.len(), 1, "PSK: the ClientKeyExchange is the one epoch-0 message");
    let mut body = hello[0].clone();
    body.extend_from_slice(&cke[0]);
    let mut repacked = Vec::new();
    RecordHeader {
        content_type: rdtls_proto::enums::ContentType::HANDSHAKE,
        version: rdtls_proto::enums::ProtocolVersion::DTLS1_2,
        epoch: 0,
        seq: 7,
        length: body.len() as u16,
    }
    .write(&mut repacked);
    repacked.extend_from_slice(&body);
    server.handle_datagram(now, &mut repacked).unwrap();
    // The rest of the flight (ChangeCipherSpec and Finished) completes the handshake.
    for d in &flight {
        let mut rest = Vec::new();
        for (h, range) in Records::new(d) {
            if h.epoch != 0 || h.content_type != rdtls_proto::enums::ContentType::HANDSHAKE {
                rest.extend_from_slice(&d[range.start - 13..range.end]);
            }
        }
        if !rest.is_empty() {
            server.handle_datagram(now, &mut rest).unwrap();
        }
    }
    assert!(server.is_established(), "{:?}", server.stats());
}
