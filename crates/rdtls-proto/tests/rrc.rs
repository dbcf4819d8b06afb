//! Return routability checks (RFC 9853), DTLS 1.2 and 1.3: the `rrc` extension beside a
//! connection ID, the `path_challenge`/`path_response` exchange, and an endpoint that probes a
//! peer's new address before following it, sending there no more than three times what came
//! from there until the answer is back; an address that never answers (an on-path attacker
//! aiming our traffic at a victim) gets no more than that, and the peer stays.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rdtls_proto::enums::{ContentType, Protocol};
use rdtls_proto::{
    Config, ConfigBuilder, Connection, ConnectionHandle, DatagramEvent, Endpoint, Event, AMPLIFICATION_FACTOR,
    PATH_VALIDATION_TIMEOUT,
};
use support::{pump, sealed};

const KEY: &[u8] = b"return routability";

fn only(version: Protocol) -> ConfigBuilder {
    Config::builder().protocol_versions(version, version)
}

fn configs(version: Protocol, client_rrc: bool, server_rrc: bool) -> (Arc<Config>, Arc<Config>) {
    let c = only(version).psk("rrc", KEY.to_vec()).connection_id(0).return_routability_check(client_rrc);
    let s = only(version).psk_server_key(KEY.to_vec()).cookie_verification(false).connection_id(8);
    (Arc::new(c.build().unwrap()), Arc::new(s.return_routability_check(server_rrc).build().unwrap()))
}

fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

fn transmits(conn: &mut Connection) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    std::iter::from_fn(|| conn.poll_transmit(&mut buf).map(|_| buf.clone())).collect()
}

#[test]
fn negotiated_only_when_both_ask_and_never_without_a_connection_id() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        for (c, s) in [(true, true), (true, false), (false, true)] {
            let (cc, sc) = configs(version, c, s);
            let now = Instant::now();
            let mut client = Connection::client(cc, now).unwrap();
            let mut server = Connection::server(sc, now).unwrap();
            pump(now, &mut client, &mut server);
            assert!(client.is_established() && server.is_established());
            let both = c && s;
            assert_eq!(client.return_routability_check(), both, "{version:?} {c} {s}");
            assert_eq!(server.return_routability_check(), both, "{version:?} {c} {s}");
            if !both {
                assert!(client.challenge_path(now).is_err(), "no checks without agreeing on them");
            }
        }
    }
    let err = Config::builder().psk("x", KEY.to_vec()).return_routability_check(true).build().unwrap_err();
    assert!(err.to_string().contains("need a connection ID"), "{err}");
}

#[test]
fn a_challenge_is_answered_once_with_its_cookie() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        let (cc, sc) = configs(version, true, true);
        let now = Instant::now();
        let mut client = Connection::client(cc, now).unwrap();
        let mut server = Connection::server(sc, now).unwrap();
        pump(now, &mut client, &mut server);
        events(&mut client);
        events(&mut server);
        server.challenge_path(now).unwrap();
        assert!(server.path_challenge_pending() && !server.path_validated());
        let challenge = transmits(&mut server);
        assert_eq!(challenge.len(), 1, "the challenge alone");
        if version == Protocol::Dtls1_2 {
            // Our client asked for a zero-length ID: an ordinary record, its type in the clear.
            assert_eq!(challenge[0][0], ContentType::RETURN_ROUTABILITY_CHECK.0);
            assert_eq!(challenge[0].len(), 13 + 8 + 9 + 16, "header, explicit nonce, type + cookie, tag");
        }
        // A copy (a duplicate on the way) is answered too: one answer per challenge received.
        for copy in [challenge[0].clone(), challenge[0].clone()] {
            let mut d = copy;
            assert!(client.handle_datagram(now, &mut d).unwrap().is_empty());
        }
        let answers = transmits(&mut client);
        assert_eq!(answers.len(), 1, "the duplicate was dropped as a replay: one answer");
        let mut answer = answers[0].clone();
        assert!(server.handle_datagram(now, &mut answer).unwrap().is_empty());
        assert!(server.path_validated() && !server.path_challenge_pending());
        assert_eq!(events(&mut server), [Event::PathValidated]);
        // The same answer again: not ours any more (replayed, or late), nothing happens.
        let mut again = answers[0].clone();
        server.handle_datagram(now, &mut again).unwrap();
        assert_eq!(events(&mut server), []);

        // A challenge nobody answers fails after the timeout.
        server.challenge_path(now).unwrap();
        transmits(&mut server);
        assert_eq!(server.poll_timeout(), Some(now + PATH_VALIDATION_TIMEOUT));
        server.handle_timeout(now + PATH_VALIDATION_TIMEOUT).unwrap();
        assert_eq!(events(&mut server), [Event::PathValidationFailed]);
        assert!(!server.path_validated() && !server.path_challenge_pending());
        assert!(server.is_established(), "a failed check does not end the connection");
    }
}

fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, last], port))
}

/// A server connection behind an endpoint, and what it sent where.
struct Side {
    ep: Endpoint,
    h: ConnectionHandle,
    conn: Connection,
}

impl Side {
    /// A client and its server behind an endpoint, established from `at` with return
    /// routability checks agreed; the server's events so far drained.
    fn established(version: Protocol, at: SocketAddr, now: Instant) -> (Self, Connection) {
        let (cc, sc) = configs(version, true, true);
        let mut ep = Endpoint::new(sc, now).unwrap();
        let mut client = Connection::client(cc, now).unwrap();
        let mut buf = Vec::new();
        client.poll_transmit(&mut buf).unwrap();
        let DatagramEvent::Incoming(inc) = ep.handle(now, at, &buf, &mut Vec::new()) else { panic!("not admitted") };
        let (h, mut conn) = ep.accept(inc, now).unwrap();
        pump(now, &mut client, &mut conn);
        assert!(client.is_established() && conn.is_established() && conn.return_routability_check());
        events(&mut conn);
        (Self { ep, h, conn }, client)
    }

    /// A datagram from `from` reaches the endpoint and the connection; returns the data and
    /// whether the connection moved.
    fn arrive(&mut self, from: SocketAddr, now: Instant, mut datagram: Vec<u8>) -> (Vec<Vec<u8>>, bool) {
        let len = datagram.len();
        let DatagramEvent::Connection(h) = self.ep.handle(now, from, &datagram, &mut Vec::new()) else {
            panic!("not routed to the connection")
        };
        assert_eq!(h, self.h);
        let got = self.conn.handle_datagram(now, &mut datagram).unwrap().iter().map(<[u8]>::to_vec).collect();
        let moved = self.ep.follow(h, from, len, &mut self.conn, now);
        (got, moved)
    }

    /// What the connection has to send, each with where the endpoint sends it.
    fn out(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        transmits(&mut self.conn)
            .into_iter()
            .map(|d| (self.ep.destination(self.h, d.len(), &self.conn).unwrap(), d))
            .collect()
    }

    /// The application sends `data`: where it goes.
    fn send(&mut self, data: &[u8]) -> (SocketAddr, usize) {
        let d = sealed(&mut self.conn, data);
        (self.ep.destination(self.h, d.len(), &self.conn).unwrap(), d.len())
    }
}

#[test]
fn an_endpoint_follows_a_new_address_only_once_it_answers_and_sends_little_there_before() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        let now = Instant::now();
        let (old, new, victim) = (addr(1, 4000), addr(1, 4001), addr(66, 80));
        let (mut server, mut client) = Side::established(version, old, now);
        let h = server.h;

        assert_eq!(server.arrive(old, now, sealed(&mut client, b"m0")), (vec![b"m0".to_vec()], false));
        // The NAT rebinds. The data is delivered, but the peer is not followed yet: a challenge
        // goes to the new address, and little else does.
        let first = sealed(&mut client, b"m1");
        let from_new = first.len() as u64;
        assert_eq!(server.arrive(new, now, first), (vec![b"m1".to_vec()], false));
        assert_eq!(server.ep.remote(h), Some(old));
        let out = server.out();
        assert_eq!(out.len(), 1);
        let (to, challenge) = out[0].clone();
        assert_eq!(to, new, "the challenge goes to the address to check");
        let mut to_new = challenge.len() as u64;
        let mut to_old = 0;
        for i in 0..30 {
            let (to, len) = server.send(format!("reply {i:03} {}", "x".repeat(80)).as_bytes());
            match to {
                a if a == new => to_new += len as u64,
                a if a == old => to_old += len as u64,
                a => panic!("sent to {a}"),
            }
        }
        assert!(to_new <= AMPLIFICATION_FACTOR * from_new, "{version:?}: {to_new} bytes to {new} after {from_new}");
        assert!(to_old > 0, "beyond the limit, the old address");

        // The client, now at the new address, answers; its answer moves the connection.
        let mut c = challenge.clone();
        client.handle_datagram(now, &mut c).unwrap();
        let answer = transmits(&mut client);
        assert_eq!(answer.len(), 1);
        assert_eq!(server.arrive(new, now, answer[0].clone()), (vec![], true));
        assert_eq!(server.ep.remote(h), Some(new));
        assert!(events(&mut server.conn).contains(&Event::PathValidated));
        for _ in 0..10 {
            assert_eq!(server.send(&[0; 500]).0, new, "no limit once validated");
        }
        for i in 0..100u32 {
            let msg = i.to_be_bytes().to_vec();
            assert_eq!(server.arrive(new, now, sealed(&mut client, &msg)), (vec![msg], false));
        }
        assert_eq!(server.ep.connection_count(), 1);

        // An on-path attacker copies the client's next datagram and races it from a victim's
        // address: the endpoint probes the victim, which never answers.
        let stolen = sealed(&mut client, b"m2");
        let from_victim = stolen.len() as u64;
        assert_eq!(server.arrive(victim, now, stolen.clone()), (vec![b"m2".to_vec()], false));
        let out = server.out();
        assert_eq!(out.iter().map(|(to, _)| *to).collect::<Vec<_>>(), [victim]);
        let mut at_victim: u64 = out.iter().map(|(_, d)| d.len() as u64).sum();
        for _ in 0..30 {
            let (to, len) = server.send(&[7; 100]);
            if to == victim {
                at_victim += len as u64;
            } else {
                assert_eq!(to, new);
            }
        }
        assert!(at_victim <= AMPLIFICATION_FACTOR * from_victim, "{at_victim} bytes at the victim after {from_victim}");
        // The real copy comes late from the client's address: a replay, dropped; the client's
        // newer records keep coming from there.
        assert_eq!(server.arrive(new, now, stolen), (vec![], false));
        assert_eq!(server.arrive(new, now, sealed(&mut client, b"m3")), (vec![b"m3".to_vec()], false));
        let later = now + PATH_VALIDATION_TIMEOUT;
        server.conn.handle_timeout(later).unwrap();
        assert!(events(&mut server.conn).contains(&Event::PathValidationFailed));
        assert_eq!(server.ep.remote(h), Some(new), "the peer stays");
        assert_eq!(server.send(&[1; 100]).0, new, "the probe is over");
    }
}

/// A session handed to another process keeps its connection IDs and the agreement on return
/// routability checks: the importer still probes before it follows.
#[test]
fn an_exported_session_keeps_its_ids_and_its_checks() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        let c = only(version).psk("rrc", KEY.to_vec()).connection_id(4).return_routability_check(true);
        let s = only(version).psk_server_key(KEY.to_vec()).cookie_verification(false).connection_id(6);
        let s = Arc::new(s.return_routability_check(true).allow_session_export(true).build().unwrap());
        let now = Instant::now();
        let mut client = Connection::client(Arc::new(c.build().unwrap()), now).unwrap();
        let mut server = Connection::server(s.clone(), now).unwrap();
        pump(now, &mut client, &mut server);
        // Let the client's last flight be acknowledged (DTLS 1.3) before the export.
        pump(now, &mut client, &mut server);
        let ids = (server.connection_id().unwrap().to_vec(), server.peer_connection_id().unwrap().to_vec());
        let state = server.export_session().unwrap();
        let mut imported = Connection::import_session(s, &state, now).unwrap();
        assert_eq!(imported.connection_id(), Some(&ids.0[..]), "{version:?}");
        assert_eq!(imported.peer_connection_id(), Some(&ids.1[..]));
        assert!(imported.return_routability_check(), "{version:?}");
        let mut record = sealed(&mut client, b"after the hand-off");
        assert_eq!(
            imported.handle_datagram(now, &mut record).unwrap().iter().collect::<Vec<_>>(),
            [b"after the hand-off"]
        );
        imported.challenge_path(now).unwrap();
        let challenge = transmits(&mut imported);
        let mut c = challenge[0].clone();
        client.handle_datagram(now, &mut c).unwrap();
        let mut answer = transmits(&mut client).remove(0);
        imported.handle_datagram(now, &mut answer).unwrap();
        assert!(imported.path_validated());
    }
}

/// The answer to a check may come back another way; the move still waits for an authentic,
/// new record from the address checked: a forgery that only carries the connection ID, sent from
/// there, moves nothing.
#[test]
fn an_answered_check_moves_only_on_an_authentic_record_from_the_address_checked() {
    for version in [Protocol::Dtls1_2, Protocol::Dtls1_3] {
        let now = Instant::now();
        let (old, new) = (addr(1, 4000), addr(1, 4001));
        let (mut server, mut client) = Side::established(version, old, now);
        let h = server.h;

        assert_eq!(server.arrive(new, now, sealed(&mut client, b"m1")), (vec![b"m1".to_vec()], false));
        let out = server.out();
        assert_eq!((out.len(), out[0].0), (1, new), "the challenge, to the address checked");
        let mut challenge = out[0].1.clone();
        client.handle_datagram(now, &mut challenge).unwrap();
        let answer = transmits(&mut client).remove(0);
        // The answer comes from the old address: the check is answered, nobody moved yet.
        assert_eq!(server.arrive(old, now, answer), (vec![], false));
        assert!(server.conn.path_validated());
        assert_eq!(server.ep.remote(h), Some(old));
        // A forgery from the new address (the ID, then garbage): no move.
        let mut forged = sealed(&mut client, b"forged");
        let last = forged.len() - 1;
        forged[last] ^= 0x55;
        assert_eq!(server.arrive(new, now, forged), (vec![], false));
        assert_eq!(server.ep.remote(h), Some(old), "{version:?}");
        // The client's next record from there: the move.
        assert_eq!(server.arrive(new, now, sealed(&mut client, b"m2")), (vec![b"m2".to_vec()], true));
        assert_eq!(server.ep.remote(h), Some(new));
    }
}
