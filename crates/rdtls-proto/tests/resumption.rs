//! DTLS 1.2 session resumption (RFC 5246 §7.3, RFC 5077, RFC 6347 §4.2.4): the abbreviated
//! handshake by session ID and by ticket, tickets shared between servers, key rotation, and
//! every case that must give a full handshake instead of a failure. What crosses the wire is
//! checked: a resumed handshake carries no Certificate and no key exchange.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdtls_proto::enums::HandshakeType;
use rdtls_proto::pki::ServerName;
use rdtls_proto::resumption::{Session, SessionStore, TicketKeys};
use rdtls_proto::{Config, ConfigBuilder, Connection, Event, Protocol};
use support::pki::ServerPki;
use support::{Clock, Link, Sim, To};

type Pki = ServerPki;

fn pki() -> Pki {
    ServerPki::new("Resumption Root")
}

fn dtls12(clock: &Clock) -> ConfigBuilder {
    clock.apply(support::dtls12())
}

fn client(p: &Pki, clock: &Clock) -> ConfigBuilder {
    p.resuming_client(dtls12(clock))
}

fn server(p: &Pki, clock: &Clock) -> ConfigBuilder {
    p.server(dtls12(clock))
}

/// The handshake message types each direction sent in plaintext (epoch 0), in order.
type Seen = Arc<std::sync::Mutex<Vec<(To, HandshakeType)>>>;

fn watch(sim: &mut Sim) -> Seen {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    sim.filter = Some(Box::new(move |to, datagram| {
        let mut rest = datagram;
        // DTLS 1.2 record headers: type, version, epoch, sequence number, length.
        while rest.len() >= 13 {
            let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
            let epoch = u16::from_be_bytes([rest[3], rest[4]]);
            if rest[0] == 22 && epoch == 0 && rest.len() > 13 {
                let ty = HandshakeType(rest[13]);
                let mut log = log.lock().unwrap();
                if log.last() != Some(&(to, ty)) {
                    log.push((to, ty));
                }
            }
            rest = rest.get(13 + len..).unwrap_or_default();
        }
        false
    }));
    seen
}

/// A full handshake, then the client's session.
fn first(client_cfg: Config, server_cfg: Config, name: &str) -> (Sim, Session) {
    let mut sim = Sim::with_server_name(1, client_cfg, Some(name), server_cfg, Link::PERFECT, Link::PERFECT);
    assert!(sim.run_handshake(Duration::from_secs(10)), "{:?} {:?}", sim.client_error, sim.server_errors);
    assert!(!sim.client.resumed());
    let mut events = Vec::new();
    while let Some(e) = sim.client.poll_event() {
        events.push(e);
    }
    assert_eq!(events, [Event::Connected, Event::NewSession]);
    let session = sim.client.session().cloned().expect("a session");
    (sim, session)
}

/// A second connection that offers `session`, over `link`; returns the run and what crossed
/// the wire.
fn again(client_cfg: Config, server_cfg: Config, name: &str, session: Session, seed: u64, link: Link) -> (Sim, Seen) {
    let mut sim = Sim::with_server_name(seed, client_cfg.clone(), Some(name), server_cfg, link, link);
    let name = ServerName::try_from(name.to_owned()).unwrap();
    sim.client = Connection::resuming_client(Arc::new(client_cfg), Some(name), Some(session), sim.now).unwrap();
    let seen = watch(&mut sim);
    assert!(sim.run_handshake(Duration::from_secs(60)), "{:?} {:?}", sim.client_error, sim.server_errors);
    (sim, seen)
}

fn server_sent(seen: &Seen) -> Vec<HandshakeType> {
    // The cookie exchange comes before either kind of handshake.
    let hs = seen.lock().unwrap();
    hs.iter()
        .filter(|(to, t)| *to == To::Client && *t != HandshakeType::HELLO_VERIFY_REQUEST)
        .map(|(_, t)| *t)
        .collect()
}

fn assert_resumed(sim: &Sim, seen: &Seen, p: &Pki, ticket: bool) {
    assert!(sim.client.resumed());
    assert!(sim.server_conn().unwrap().resumed());
    let mut expected = vec![HandshakeType::SERVER_HELLO];
    if ticket {
        expected.push(HandshakeType::NEW_SESSION_TICKET);
    }
    assert_eq!(server_sent(seen), expected, "no Certificate, no key exchange");
    // The resumed connection still knows who the server is.
    assert_eq!(sim.client.peer_certificates(), &p.leaf.chain[..]);
    assert_eq!(sim.server_conn().unwrap().requested_server_name(), Some("localhost"));
}

fn assert_full(sim: &Sim, seen: &Seen) {
    assert!(!sim.client.resumed());
    assert!(!sim.server_conn().unwrap().resumed());
    assert!(server_sent(seen).contains(&HandshakeType::CERTIFICATE));
}

#[test]
fn a_ticket_resumes_without_certificates() {
    let (p, clock) = (pki(), Clock::new());
    let s = server(&p, &clock).build().unwrap();
    let (mut sim, session) = first(client(&p, &clock).build().unwrap(), s.clone(), "localhost");
    assert!(!session.ticket().is_empty());
    assert_eq!(session.session_id().len(), 32);
    // Found by BoGo (`Basic-Server-DTLS-*`): a session the client holds a ticket for is not
    // also kept in the server's cache.
    assert!(s.session_cache().unwrap().is_empty());
    assert!(!events(sim.server_conn_mut().unwrap()).contains(&Event::NewSession));
    let (mut sim, seen) = again(client(&p, &clock).build().unwrap(), s, "localhost", session, 2, Link::PERFECT);
    assert_resumed(&sim, &seen, &p, true);
    // The server renewed the ticket: a new session to keep.
    assert_eq!(events(&mut sim.client), [Event::Connected, Event::NewSession]);
    // The new session keeps the old one's birth: resumption does not extend a session.
    let renewed = sim.client.session().unwrap();
    assert!(!renewed.ticket().is_empty());
}

fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

#[test]
fn a_session_id_resumes_when_tickets_are_off() {
    let (p, clock) = (pki(), Clock::new());
    let s = server(&p, &clock).session_tickets(false).build().unwrap();
    let (mut sim, session) = first(client(&p, &clock).build().unwrap(), s.clone(), "localhost");
    assert!(session.ticket().is_empty());
    // Found by BoGo (`Basic-Server-NoTickets-DTLS-*`): the server says it cached the session
    // (and keeps no copy of it on the connection).
    let server_conn = sim.server_conn_mut().unwrap();
    assert!(events(server_conn).contains(&Event::NewSession));
    assert!(server_conn.session().is_none());
    assert_eq!(s.session_cache().unwrap().len(), 1);
    assert_eq!(session.session_id().len(), 32);
    let (mut sim, seen) = again(client(&p, &clock).build().unwrap(), s, "localhost", session.clone(), 2, Link::PERFECT);
    assert_resumed(&sim, &seen, &p, false);
    // Found by BoGo: the session resumed by its ID is the same session, not a new one to
    // announce; the connection still offers it for the next time.
    assert_eq!(events(&mut sim.client), [Event::Connected]);
    assert_eq!(sim.client.session().map(Session::session_id), Some(session.session_id()));
    // A resumption caches nothing new.
    assert!(!events(sim.server_conn_mut().unwrap()).contains(&Event::NewSession));
}

#[test]
fn a_ticket_alone_resumes_without_a_session_cache() {
    let (p, clock) = (pki(), Clock::new());
    let s = server(&p, &clock).session_cache_size(0).build().unwrap();
    let (_, session) = first(client(&p, &clock).build().unwrap(), s.clone(), "localhost");
    assert!(session.session_id().is_empty());
    let (sim, seen) = again(client(&p, &clock).build().unwrap(), s, "localhost", session, 2, Link::PERFECT);
    assert_resumed(&sim, &seen, &p, true);
}

#[test]
fn psk_sessions_resume_with_their_identity() {
    let clock = Clock::new();
    let c = dtls12(&clock).psk("device-7", b"0123456789abcdef".to_vec()).session_resumption(true).build().unwrap();
    let s = dtls12(&clock)
        .psk_server_callback(|id| (id == b"device-7").then(|| b"0123456789abcdef".to_vec().into()))
        .build()
        .unwrap();
    let (_, session) = first(c.clone(), s.clone(), "localhost");
    let (sim, seen) = again(c, s, "localhost", session, 2, Link::PERFECT);
    assert!(sim.client.resumed() && sim.server_conn().unwrap().resumed());
    assert_eq!(server_sent(&seen), [HandshakeType::SERVER_HELLO, HandshakeType::NEW_SESSION_TICKET]);
    assert_eq!(sim.server_conn().unwrap().psk_identity(), Some(&b"device-7"[..]));
}

#[test]
fn servers_that_share_a_ticket_secret_resume_each_others_sessions() {
    let (p, clock) = (pki(), Clock::new());
    let provider = rdtls_proto::crypto::default_provider();
    let secret = [7u8; 32];
    let keys = |b: ConfigBuilder| {
        b.ticket_keys(Arc::new(TicketKeys::from_secret(&*provider, &secret, Duration::from_secs(3600)).unwrap()))
    };
    let a = keys(server(&p, &clock)).session_cache_size(0).build().unwrap();
    let b = keys(server(&p, &clock)).session_cache_size(0).build().unwrap();
    let (_, session) = first(client(&p, &clock).build().unwrap(), a, "localhost");
    let (sim, seen) = again(client(&p, &clock).build().unwrap(), b, "localhost", session.clone(), 2, Link::PERFECT);
    assert_resumed(&sim, &seen, &p, true);

    // A server with another secret cannot open the ticket: a full handshake.
    let other = server(&p, &clock).session_cache_size(0).build().unwrap();
    let (sim, seen) = again(client(&p, &clock).build().unwrap(), other, "localhost", session, 3, Link::PERFECT);
    assert_full(&sim, &seen);
}

#[test]
fn tickets_open_for_one_period_after_theirs_and_tampered_ones_never() {
    let (p, clock) = (pki(), Clock::new());
    let provider = rdtls_proto::crypto::default_provider();
    let period = Duration::from_secs(600);
    let keys = Arc::new(TicketKeys::from_secret(&*provider, b"a shared secret of the fleet", period).unwrap());
    let s = server(&p, &clock)
        .ticket_keys(keys)
        .session_cache_size(0)
        .session_lifetime(Duration::from_secs(24 * 3600))
        .build()
        .unwrap();
    let (_, session) = first(client(&p, &clock).build().unwrap(), s.clone(), "localhost");

    // Tampered: one bit of the sealed session flipped.
    let mut bytes = session.to_bytes().to_vec();
    let t = session.ticket().to_vec();
    let at = bytes.windows(t.len()).position(|w| w == t).unwrap() + t.len() / 2;
    bytes[at] ^= 1;
    let tampered = Session::from_bytes(&bytes).unwrap();
    let (sim, seen) = again(client(&p, &clock).build().unwrap(), s.clone(), "localhost", tampered, 2, Link::PERFECT);
    assert_full(&sim, &seen);

    // The next period: the previous key still opens it.
    clock.advance(period);
    let (sim, seen) =
        again(client(&p, &clock).build().unwrap(), s.clone(), "localhost", session.clone(), 3, Link::PERFECT);
    assert_resumed(&sim, &seen, &p, true);

    // Two periods on: that key is gone.
    clock.advance(period);
    let (sim, seen) = again(client(&p, &clock).build().unwrap(), s, "localhost", session, 4, Link::PERFECT);
    assert_full(&sim, &seen);
}

#[test]
fn another_name_or_an_expired_session_gives_a_full_handshake() {
    let (p, clock) = (pki(), Clock::new());
    let s = server(&p, &clock).session_lifetime(Duration::from_secs(3600)).build().unwrap();
    let (_, session) = first(client(&p, &clock).build().unwrap(), s.clone(), "localhost");
    // The session was made for "localhost": not for another SNI name, even on this server.
    let (sim, seen) =
        again(client(&p, &clock).build().unwrap(), s.clone(), "other.example", session.clone(), 2, Link::PERFECT);
    assert_full(&sim, &seen);
    // Past its lifetime the client does not offer it.
    clock.advance(Duration::from_secs(3601));
    let (sim, seen) = again(client(&p, &clock).build().unwrap(), s, "localhost", session, 3, Link::PERFECT);
    assert_full(&sim, &seen);
}

#[test]
fn the_session_cache_is_bounded_and_evicts_the_least_recently_used() {
    let (p, clock) = (pki(), Clock::new());
    let s = server(&p, &clock).session_tickets(false).session_cache_size(2).build().unwrap();
    let sessions: Vec<Session> =
        (0..3).map(|_| first(client(&p, &clock).build().unwrap(), s.clone(), "localhost").1).collect();
    assert_eq!(s.session_cache().unwrap().len(), 2);
    // The first went out; the other two resume (and resuming adds nothing to the cache).
    for session in &sessions[1..] {
        let (sim, seen) =
            again(client(&p, &clock).build().unwrap(), s.clone(), "localhost", session.clone(), 3, Link::PERFECT);
        assert_resumed(&sim, &seen, &p, false);
    }
    let (sim, seen) =
        again(client(&p, &clock).build().unwrap(), s.clone(), "localhost", sessions[0].clone(), 2, Link::PERFECT);
    assert_full(&sim, &seen);
    // That full handshake's session evicted the least recently used: the second.
    let (sim, seen) =
        again(client(&p, &clock).build().unwrap(), s.clone(), "localhost", sessions[1].clone(), 4, Link::PERFECT);
    assert_full(&sim, &seen);
}

#[test]
fn sessions_survive_the_store_round_trip() {
    let (p, clock) = (pki(), Clock::new());
    let s = server(&p, &clock).build().unwrap();
    let (_, session) = first(client(&p, &clock).build().unwrap(), s.clone(), "localhost");
    let store = SessionStore::new(4);
    let addr = "192.0.2.7:4433".parse().unwrap();
    let now = clock.secs();
    store.insert("localhost", addr, session.clone());
    let restored = SessionStore::from_bytes(&store.to_bytes(), 4).unwrap();
    assert_eq!(restored.get("localhost", addr, now), Some(session.clone()));
    assert_eq!(restored.get("other.example", addr, now), None);
    assert_eq!(restored.get("localhost", "192.0.2.7:4434".parse().unwrap(), now), None);
    let (sim, seen) = again(
        client(&p, &clock).build().unwrap(),
        s,
        "localhost",
        restored.get("localhost", addr, now).unwrap(),
        2,
        Link::PERFECT,
    );
    assert_resumed(&sim, &seen, &p, true);
    // Bounded: a fifth server evicts the least recently used.
    for port in 1..=4 {
        store.insert("localhost", std::net::SocketAddr::new(addr.ip(), port), session.clone());
    }
    assert_eq!(store.len(), 4);
    assert_eq!(store.get("localhost", addr, now), None);
    assert!(SessionStore::from_bytes(b"not a store", 4).is_none());
}

/// RFC 6347 §4.2.4: in an abbreviated handshake the client sends the last flight, and must
/// answer the server's retransmission when it is lost. Every seed completes, at 30% loss with
/// reordering and duplication, and with every first copy of the client's final flight dropped.
#[test]
fn abbreviated_handshakes_complete_through_loss() {
    let (p, clock) = (pki(), Clock::new());
    // At 30% loss each way, a flight and its answer both get through in a round trip about
    // half the time: with the default backoff (1, 2, 4 ... 60 s) about one handshake in a
    // hundred runs out of rounds. A lossy deployment caps the backoff, as here.
    let patient = |b: ConfigBuilder| {
        b.handshake_timeout(Duration::from_secs(120))
            .retransmit_timeouts(Duration::from_secs(1), Duration::from_secs(4))
    };
    let s = patient(server(&p, &clock)).build().unwrap();
    let (_, session) = first(client(&p, &clock).build().unwrap(), s.clone(), "localhost");
    let seeds: Vec<u64> = match std::env::var("SEED") {
        Ok(v) => vec![v.parse().unwrap()],
        Err(_) => (0..100).collect(),
    };
    for seed in seeds {
        let c = patient(client(&p, &clock)).build().unwrap();
        let link = Link::lossy(0.3, 1400);
        let mut sim = Sim::with_server_name(seed, c.clone(), Some("localhost"), s.clone(), link, link);
        let name = ServerName::try_from("localhost".to_owned()).unwrap();
        sim.client = Connection::resuming_client(Arc::new(c), Some(name), Some(session.clone()), sim.now).unwrap();
        if seed % 2 == 0 {
            // Drop the client's final flight (its epoch-1 records) the first time it goes.
            let mut dropped = false;
            sim.filter = Some(Box::new(move |to, d| {
                // Only the client's final flight starts with ChangeCipherSpec.
                let final_flight = to == To::Server && d.first() == Some(&20);
                if final_flight && !dropped {
                    dropped = true;
                    return true;
                }
                false
            }));
        }
        let done = sim.run_handshake(Duration::from_secs(120));
        if std::env::var("SEED").is_ok() {
            for (t, to, n) in &sim.trace.sent {
                eprintln!("{t:>6} {to:?} {n}");
            }
            eprintln!("client {:?} {:?}", sim.client.handshake_state(), sim.client.stats());
            eprintln!("server {:?} lost {}", sim.server_conn().map(|c| c.stats()), sim.trace.lost);
        }
        assert!(done, "seed {seed}: {:?} {:?}", sim.client_error, sim.server_errors);
        assert!(sim.client.resumed(), "seed {seed}");
        assert!(sim.server_conn().unwrap().resumed(), "seed {seed}");
        assert_eq!(sim.client.protocol(), Some(Protocol::Dtls1_2));
    }
}

/// The client's final flight is lost: the server resends its flight, and the client, already
/// connected, answers with its final flight again (RFC 6347 §4.2.4), once per retransmission.
#[test]
fn a_lost_final_flight_is_sent_again_when_the_server_retransmits() {
    let (p, clock) = (pki(), Clock::new());
    let s = server(&p, &clock).build().unwrap();
    let (_, session) = first(client(&p, &clock).build().unwrap(), s.clone(), "localhost");
    let c = client(&p, &clock).build().unwrap();
    let mut sim = Sim::with_server_name(7, c.clone(), Some("localhost"), s, Link::PERFECT, Link::PERFECT);
    let name = ServerName::try_from("localhost".to_owned()).unwrap();
    sim.client = Connection::resuming_client(Arc::new(c), Some(name), Some(session), sim.now).unwrap();
    let finals = Arc::new(AtomicU64::new(0));
    let count = finals.clone();
    sim.filter = Some(Box::new(move |to, d| {
        // Only the client's final flight starts with ChangeCipherSpec: drop the first two.
        to == To::Server && d.first() == Some(&20) && count.fetch_add(1, Ordering::SeqCst) < 2
    }));
    assert!(sim.run_handshake(Duration::from_secs(30)), "{:?} {:?}", sim.client_error, sim.server_errors);
    assert_eq!(finals.load(Ordering::SeqCst), 3);
    assert!(sim.client.resumed() && sim.server_conn().unwrap().resumed());
}

/// A session vouches for the certificate its server showed under the name checked then: a
/// client never offers it to a server of another name.
#[test]
fn a_client_offers_a_session_only_to_a_server_of_its_name() {
    let (p, clock) = (pki(), Clock::new());
    let s = server(&p, &clock).build().unwrap();
    let (_, session) = first(client(&p, &clock).build().unwrap(), s.clone(), "localhost");
    assert_eq!(session.server_name(), Some("localhost"));
    let (sim, seen) = again(client(&p, &clock).build().unwrap(), s, "other.example", session, 2, Link::PERFECT);
    assert_full(&sim, &seen);
    // The new session is the other name's.
    assert_eq!(sim.client.session().unwrap().server_name(), Some("other.example"));
}

/// Servers that share ticket keys resume each other's sessions only where the session still
/// proves what the resuming server requires: a client certificate, a PSK identity it knows,
/// the same session context.
#[test]
fn shared_keys_do_not_carry_a_session_past_what_the_other_server_requires() {
    let (p, clock) = (pki(), Clock::new());
    let provider = rdtls_proto::crypto::default_provider();
    let keys = Arc::new(TicketKeys::from_secret(&*provider, &[3; 32], Duration::from_secs(3600)).unwrap());
    let shared = |b: ConfigBuilder| b.ticket_keys(keys.clone()).session_cache_size(0);
    let (_, session) =
        first(client(&p, &clock).build().unwrap(), shared(server(&p, &clock)).build().unwrap(), "localhost");

    // A server that requires client certificates: this session has none.
    let strict = shared(server(&p, &clock))
        .client_auth(rdtls_proto::ClientAuth::Required)
        .root_store(p.ca.roots())
        .build()
        .unwrap();
    let mut sim = Sim::with_server_name(
        2,
        client(&p, &clock).build().unwrap(),
        Some("localhost"),
        strict,
        Link::PERFECT,
        Link::PERFECT,
    );
    let name = ServerName::try_from("localhost".to_owned()).unwrap();
    sim.client = Connection::resuming_client(
        Arc::new(client(&p, &clock).build().unwrap()),
        Some(name),
        Some(session.clone()),
        sim.now,
    )
    .unwrap();
    sim.run_handshake(Duration::from_secs(10));
    assert!(!sim.client.resumed(), "resumed past client authentication");
    assert!(sim.server_conn().is_none_or(|c| !c.resumed()));

    // Another session context.
    let other = shared(server(&p, &clock)).session_id_context(b"other service").build().unwrap();
    let (sim, seen) = again(client(&p, &clock).build().unwrap(), other, "localhost", session, 3, Link::PERFECT);
    assert_full(&sim, &seen);

    // A PSK identity the other server does not know.
    let psk_client =
        dtls12(&clock).psk("guest", b"guest key 012345".to_vec()).session_resumption(true).build().unwrap();
    let psk_server = |known: &'static [u8]| {
        shared(dtls12(&clock))
            .psk_server_callback(move |id| (id == known).then(|| b"guest key 012345".to_vec().into()))
            .build()
            .unwrap()
    };
    let (_, guest) = first(psk_client.clone(), psk_server(b"guest"), "localhost");
    let (sim, _) = again(psk_client.clone(), psk_server(b"guest"), "localhost", guest.clone(), 4, Link::PERFECT);
    assert!(sim.client.resumed());
    let mut sim = Sim::with_server_name(
        5,
        psk_client.clone(),
        Some("localhost"),
        psk_server(b"admin"),
        Link::PERFECT,
        Link::PERFECT,
    );
    let name = ServerName::try_from("localhost".to_owned()).unwrap();
    sim.client = Connection::resuming_client(Arc::new(psk_client), Some(name), Some(guest), sim.now).unwrap();
    sim.run_handshake(Duration::from_secs(10));
    assert!(!sim.client.resumed() && sim.server_conn().is_none_or(|c| !c.resumed()));
}

/// A client that allows DTLS 1.3 offers its DTLS 1.2 session inside its DTLS 1.3 hello (RFC
/// 9147 §5.3): a DTLS 1.2 server resumes it, a DTLS 1.3 server ignores it. A client that
/// allows DTLS 1.3 alone never speaks 1.2 for a session.
#[test]
fn a_dtls12_session_goes_in_a_dtls13_hello() {
    let (p, clock) = (pki(), Clock::new());
    let s12 = server(&p, &clock).build().unwrap();
    let (_, session) = first(client(&p, &clock).build().unwrap(), s12.clone(), "localhost");
    let both = || clock.apply(Config::builder()).root_store(p.ca.roots()).session_resumption(true).build().unwrap();
    let (sim, seen) = again(both(), s12, "localhost", session.clone(), 2, Link::PERFECT);
    assert_resumed(&sim, &seen, &p, true);

    let s13 = clock.apply(Config::builder()).certificate(p.leaf.certified_key()).build().unwrap();
    let (sim, _) = again(both(), s13.clone(), "localhost", session.clone(), 3, Link::PERFECT);
    assert_eq!(sim.client.protocol(), Some(Protocol::Dtls1_3));
    assert!(!sim.client.resumed());

    let only13 = clock
        .apply(Config::builder())
        .protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
        .root_store(p.ca.roots())
        .build()
        .unwrap();
    let (sim, _) = again(only13, s13, "localhost", session, 4, Link::PERFECT);
    assert_eq!(sim.client.protocol(), Some(Protocol::Dtls1_3));
}
