//! DTLS 1.3 resumption (RFC 8446 §2.2, §4.6.1; RFC 9147 §5.8): the server's NewSessionTicket
//! after the handshake, acknowledged and resent until then; the client's session from it; the
//! PSK handshake (psk_dhe_ke) that resumes it, with no certificate; tickets shared by servers,
//! and every case that gives a full handshake instead.

mod support;

use std::sync::Arc;
use std::time::Duration;

use rdtls_proto::crypto::KxGroup;
use rdtls_proto::pki::ServerName;
use rdtls_proto::resumption::{Session, TicketKeys};
use rdtls_proto::{Config, ConfigBuilder, Connection, Event, Protocol};
use support::pki::{Alg, ServerPki, Usage, Validity};
use support::{Clock, Link, Sim, To};

type Pki = ServerPki;

fn pki() -> Pki {
    ServerPki::new("Resumption 1.3 Root")
}

fn dtls13(clock: &Clock) -> ConfigBuilder {
    clock.apply(Config::builder()).protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
}

fn client(p: &Pki, clock: &Clock) -> ConfigBuilder {
    p.resuming_client(dtls13(clock))
}

fn server(p: &Pki, clock: &Clock) -> ConfigBuilder {
    p.server(dtls13(clock))
}

/// Bytes the server sent while the handshake ran.
fn server_bytes(sim: &Sim) -> usize {
    sim.trace.sent.iter().filter(|(_, to, _)| *to == To::Client).map(|(_, _, n)| n).sum()
}

/// Runs until the client holds a session from a NewSessionTicket (the ticket comes after the
/// handshake), and returns it.
fn ticket(sim: &mut Sim) -> Session {
    for _ in 0..200 {
        if sim.client.session().is_some() {
            break;
        }
        sim.run_for(Duration::from_millis(500));
    }
    let events: Vec<Event> = std::iter::from_fn(|| sim.client.poll_event()).collect();
    assert!(events.contains(&Event::NewSession), "{events:?}");
    let session = sim.client.session().cloned().expect("a session from the ticket");
    assert_eq!(session.protocol(), Protocol::Dtls1_3);
    assert!(!session.ticket().is_empty());
    session
}

fn first(c: Config, s: Config) -> (Sim, Session) {
    let mut sim = Sim::with_server_name(1, c, Some("localhost"), s, Link::PERFECT, Link::PERFECT);
    assert!(sim.run_handshake(Duration::from_secs(10)), "{:?} {:?}", sim.client_error, sim.server_errors);
    assert!(!sim.client.resumed());
    let session = ticket(&mut sim);
    (sim, session)
}

fn again(c: Config, s: Config, name: &str, session: Session, seed: u64, link: Link) -> Sim {
    let mut sim = Sim::with_server_name(seed, c.clone(), Some(name), s, link, link);
    let name = ServerName::try_from(name.to_owned()).unwrap();
    sim.client = Connection::resuming_client(Arc::new(c), Some(name), Some(session), sim.now).unwrap();
    assert!(sim.run_handshake(Duration::from_secs(120)), "{:?} {:?}", sim.client_error, sim.server_errors);
    sim
}

/// DTLS-SRTP is agreed on again in a resumed handshake (its EncryptedExtensions carry the
/// choice), with keys of its own.
#[test]
fn a_resumed_handshake_agrees_on_srtp_again() {
    use rdtls_proto::srtp::SrtpProfile;
    let (p, clock) = (pki(), Clock::new());
    let c = client(&p, &clock).srtp_profiles(&[SrtpProfile::AeadAes128Gcm]).build().unwrap();
    let s = server(&p, &clock).srtp_profiles(&SrtpProfile::ALL).build().unwrap();
    let (sim, session) = first(c.clone(), s.clone());
    let keys = sim.client.srtp_keying_material().unwrap();
    let sim = again(c, s, "localhost", session, 2, Link::PERFECT);
    assert!(sim.client.resumed());
    assert_eq!(sim.client.srtp_profile(), Some(SrtpProfile::AeadAes128Gcm));
    let resumed = sim.client.srtp_keying_material().unwrap();
    assert_eq!(resumed, sim.server_conn().unwrap().srtp_keying_material().unwrap());
    assert_ne!(resumed.as_bytes(), keys.as_bytes());
}

/// ALPN is negotiated again in a resumed handshake, not carried over: a server that shares
/// the ticket keys but prefers another protocol gets its own choice.
#[test]
fn a_resumed_handshake_negotiates_alpn_again() {
    let (p, clock) = (pki(), Clock::new());
    let provider = rdtls_proto::crypto::default_provider();
    let keys = Arc::new(TicketKeys::from_secret(&*provider, &[6; 32], Duration::from_secs(600)).unwrap());
    let c = client(&p, &clock).alpn_protocols(&["coap", "mqtt"]).build().unwrap();
    let s1 = server(&p, &clock).ticket_keys(keys.clone()).alpn_protocols(&["coap", "mqtt"]).build().unwrap();
    let s2 = server(&p, &clock).ticket_keys(keys).alpn_protocols(&["mqtt", "coap"]).build().unwrap();
    let (sim, session) = first(c.clone(), s1);
    assert_eq!(sim.client.alpn_protocol(), Some(&b"coap"[..]));
    let sim = again(c, s2, "localhost", session, 2, Link::PERFECT);
    assert!(sim.client.resumed());
    assert_eq!(sim.client.alpn_protocol(), Some(&b"mqtt"[..]));
    assert_eq!(sim.server_conn().unwrap().alpn_protocol(), Some(&b"mqtt"[..]));
}

#[test]
fn a_ticket_resumes_with_a_psk_handshake_and_no_certificate() {
    let (p, clock) = (pki(), Clock::new());
    let s = server(&p, &clock).build().unwrap();
    let (full, session) = first(client(&p, &clock).build().unwrap(), s.clone());
    let mut sim = again(client(&p, &clock).build().unwrap(), s, "localhost", session, 2, Link::PERFECT);
    assert!(sim.client.resumed());
    assert!(sim.server_conn().unwrap().resumed());
    assert_eq!(sim.client.protocol(), Some(Protocol::Dtls1_3));
    // The server's flight carries no certificate (nor its signature): the server sent at
    // least the certificate's size less than in the full handshake.
    let (resumed_bytes, full_bytes) = (server_bytes(&sim), server_bytes(&full));
    let cert = p.leaf.chain[0].as_ref().len();
    assert!(resumed_bytes + cert <= full_bytes, "resumed {resumed_bytes} B, full {full_bytes} B, certificate {cert} B");
    // Who the server is comes from the session.
    assert_eq!(sim.client.peer_certificates(), &p.leaf.chain[..]);
    assert_eq!(sim.server_conn().unwrap().requested_server_name(), Some("localhost"));
    // And a resumed connection gets a ticket of its own.
    let next = ticket(&mut sim);
    assert_ne!(next.ticket(), sim.client.session().map(|_| &[][..]).unwrap_or_default());
}

/// A handshake on an external PSK gets no ticket: resuming it would cost what using the PSK
/// again does (both are psk_dhe_ke handshakes).
#[test]
fn external_psk_handshakes_get_no_ticket() {
    let clock = Clock::new();
    let key = b"0123456789abcdef".to_vec();
    let c = dtls13(&clock).psk("sensor-9", key.clone()).session_resumption(true).build().unwrap();
    let s =
        dtls13(&clock).psk_server_callback(move |id| (id == b"sensor-9").then(|| key.clone().into())).build().unwrap();
    let mut sim = Sim::with_server_name(2, c, Some("localhost"), s, Link::PERFECT, Link::PERFECT);
    assert!(sim.run_handshake(Duration::from_secs(10)));
    sim.run_for(Duration::from_secs(5));
    assert!(sim.client.session().is_none());
    assert_eq!(sim.server_conn().unwrap().stats().retransmissions, 0);
}

/// A server connection handed off right after its handshake, its ticket not yet acknowledged:
/// the ticket travels with the exported state and the importer sends it again.
#[test]
fn a_ticket_awaiting_its_ack_travels_with_a_hand_off() {
    let (p, clock) = (pki(), Clock::new());
    let s = server(&p, &clock).allow_session_export(true).build().unwrap();
    // X25519 alone: the server's flight is one datagram after its HelloRetryRequest (a hybrid
    // group's ServerHello would take one more).
    let mut sim = Sim::with_server_name(
        10,
        client(&p, &clock).groups(&[KxGroup::X25519]).build().unwrap(),
        Some("localhost"),
        s.clone(),
        Link::PERFECT,
        Link::PERFECT,
    );
    // Everything the server sends after its flight is lost: its ticket stays unacknowledged.
    let mut from_server = 0;
    sim.filter = Some(Box::new(move |to, _| {
        from_server += u32::from(to == To::Client);
        to == To::Client && from_server >= 3
    }));
    assert!(sim.run_handshake(Duration::from_secs(10)));
    sim.run_for(Duration::from_millis(100));
    assert!(sim.client.session().is_none());
    sim.filter = None;
    let h = *sim.server_conns.keys().next().unwrap();
    let state = sim.server_conns.get_mut(&h).unwrap().export_session().unwrap();
    let imported = Connection::import_session(Arc::new(s), &state, sim.now).unwrap();
    sim.server_conns.insert(h, imported);
    let session = ticket(&mut sim);
    assert_eq!(session.server_name(), Some("localhost"));
    assert!(sim.server_conn().unwrap().poll_timeout().is_none(), "the ticket was acknowledged");
}

#[test]
fn a_lost_ticket_is_sent_again_until_acknowledged() {
    let (p, clock) = (pki(), Clock::new());
    let s = server(&p, &clock).build().unwrap();
    let mut sim = Sim::with_server_name(
        3,
        client(&p, &clock).build().unwrap(),
        Some("localhost"),
        s,
        Link::PERFECT,
        Link::PERFECT,
    );
    // The server sends its HelloRetryRequest (the cookie), its flight, then the ticket once the
    // client's Finished is in: the third datagram is lost.
    let mut from_server = 0;
    sim.filter = Some(Box::new(move |to, _| {
        from_server += u32::from(to == To::Client);
        to == To::Client && from_server == 3
    }));
    assert!(sim.run_handshake(Duration::from_secs(10)));
    assert_eq!(sim.trace.lost, 1);
    let session = ticket(&mut sim);
    assert_eq!(session.server_name(), Some("localhost"));
    assert!(sim.server_conn().unwrap().stats().retransmissions >= 1);
}

#[test]
fn servers_sharing_ticket_keys_resume_each_others_sessions_and_others_do_not() {
    let (p, clock) = (pki(), Clock::new());
    let provider = rdtls_proto::crypto::default_provider();
    let keys = Arc::new(TicketKeys::from_secret(&*provider, &[5; 32], Duration::from_secs(600)).unwrap());
    let a = server(&p, &clock).ticket_keys(keys.clone()).build().unwrap();
    let b = server(&p, &clock).ticket_keys(keys).build().unwrap();
    let (_, session) = first(client(&p, &clock).build().unwrap(), a);
    let sim = again(client(&p, &clock).build().unwrap(), b.clone(), "localhost", session.clone(), 2, Link::PERFECT);
    assert!(sim.client.resumed());

    // Another server's keys, another name, or two key periods on: a full handshake.
    let other = server(&p, &clock).build().unwrap();
    let sim = again(client(&p, &clock).build().unwrap(), other, "localhost", session.clone(), 3, Link::PERFECT);
    assert!(!sim.client.resumed() && !sim.server_conn().unwrap().resumed());
    let sim = again(client(&p, &clock).build().unwrap(), b.clone(), "other.example", session.clone(), 4, Link::PERFECT);
    assert!(!sim.client.resumed());
    clock.advance(Duration::from_secs(1200));
    let sim = again(client(&p, &clock).build().unwrap(), b, "localhost", session, 5, Link::PERFECT);
    assert!(!sim.client.resumed() && !sim.server_conn().unwrap().resumed());
}

#[test]
fn no_tickets_from_a_server_that_issues_none_nor_to_a_client_that_keeps_none() {
    let (p, clock) = (pki(), Clock::new());
    let off = server(&p, &clock).session_tickets(false).build().unwrap();
    let mut sim = Sim::with_server_name(
        6,
        client(&p, &clock).build().unwrap(),
        Some("localhost"),
        off,
        Link::PERFECT,
        Link::PERFECT,
    );
    assert!(sim.run_handshake(Duration::from_secs(10)));
    sim.run_for(Duration::from_secs(5));
    assert!(sim.client.session().is_none());
    // A client that does not keep sessions does not ask: the server sends no ticket.
    let on = server(&p, &clock).build().unwrap();
    let plain = dtls13(&clock).root_store(p.ca.roots()).build().unwrap();
    let mut sim = Sim::with_server_name(7, plain, Some("localhost"), on, Link::PERFECT, Link::PERFECT);
    assert!(sim.run_handshake(Duration::from_secs(10)));
    sim.run_for(Duration::from_secs(5));
    assert!(sim.client.session().is_none());
    assert_eq!(sim.server_conn().unwrap().stats().retransmissions, 0);
}

/// Every seed completes a resumed handshake at 30% loss with reordering and duplication, and
/// with the client's final flight dropped once.
#[test]
fn psk_handshakes_complete_through_loss() {
    let (p, clock) = (pki(), Clock::new());
    let patient = |b: ConfigBuilder| {
        b.handshake_timeout(Duration::from_secs(120))
            .retransmit_timeouts(Duration::from_secs(1), Duration::from_secs(4))
    };
    let s = patient(server(&p, &clock)).build().unwrap();
    let (_, session) = first(client(&p, &clock).build().unwrap(), s.clone());
    for seed in 0..100 {
        let c = patient(client(&p, &clock)).build().unwrap();
        let link = Link::lossy(0.3, 1400);
        let mut sim = Sim::with_server_name(seed, c.clone(), Some("localhost"), s.clone(), link, link);
        let name = ServerName::try_from("localhost".to_owned()).unwrap();
        sim.client = Connection::resuming_client(Arc::new(c), Some(name), Some(session.clone()), sim.now).unwrap();
        if seed % 2 == 0 {
            // The client's last flight (its Finished) is the first datagram it sends after the
            // server's flight: drop it once.
            let mut server_spoke = false;
            let mut dropped = false;
            sim.filter = Some(Box::new(move |to, _| {
                if to == To::Client {
                    server_spoke = true;
                    return false;
                }
                if server_spoke && !dropped {
                    dropped = true;
                    return true;
                }
                false
            }));
        }
        assert!(
            sim.run_handshake(Duration::from_secs(120)),
            "seed {seed}: {:?} {:?}",
            sim.client_error,
            sim.server_errors
        );
        assert!(sim.client.resumed() && sim.server_conn().unwrap().resumed(), "seed {seed}");
    }
}

/// A session of a client that authenticated with a certificate resumes with it (the server
/// reports the client's certificate again), and a server requiring client certificates takes
/// it. A ticket too long for a ClientHello under the MTU is not issued.
#[test]
fn client_certificates_survive_resumption_and_long_tickets_are_not_issued() {
    let (p, clock) = (pki(), Clock::new());
    let client_leaf = p.ca.leaf(Alg::EcdsaP256, &["device.example"], Usage::Client, Validity::Now);
    let mutual = |b: ConfigBuilder| b.client_auth(rdtls_proto::ClientAuth::Required).root_store(p.ca.roots());
    let s = mutual(server(&p, &clock)).build().unwrap();
    let c = client(&p, &clock).client_certificate(client_leaf.certified_key()).build().unwrap();
    let (full, session) = first(c.clone(), s.clone());
    assert_eq!(full.server_conn().unwrap().peer_certificates(), &client_leaf.chain[..]);
    let sim = again(c.clone(), s, "localhost", session, 2, Link::PERFECT);
    assert!(sim.client.resumed() && sim.server_conn().unwrap().resumed());
    assert_eq!(sim.server_conn().unwrap().peer_certificates(), &client_leaf.chain[..1]);

    let small = mutual(server(&p, &clock)).mtu(600).build().unwrap();
    let mut sim = Sim::with_server_name(3, c, Some("localhost"), small, Link::PERFECT, Link::PERFECT);
    assert!(sim.run_handshake(Duration::from_secs(10)));
    sim.run_for(Duration::from_secs(5));
    assert!(sim.client.session().is_none(), "a ticket longer than the MTU allows was issued");
}
