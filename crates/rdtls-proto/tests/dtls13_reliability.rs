//! DTLS 1.3 reliability on the wire (RFC 9147 §7): the records each side sends are decrypted
//! from both key logs, so the tests see what an observer with the keys sees. A lost record is
//! resent alone once the ACK names the others; a lost ACK of the client's Finished is made good
//! by the client's retransmission and the server's new ACK; every ACK names, in strictly
//! increasing order, only handshake records the peer sent, in an epoch it could use.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdtls_proto::codec::Reader;
use rdtls_proto::crypto::default_provider;
use rdtls_proto::crypto::KxGroup;
use rdtls_proto::enums::{ContentType, HandshakeType, Protocol};
use rdtls_proto::messages::tls13::{parse_ack, RecordNumber};
use rdtls_proto::messages::HandshakeHeader;
use rdtls_proto::record::{Header, ReplayWindow, UnifiedProtection};
use rdtls_proto::suites::{self, CipherSuite};
use rdtls_proto::{Config, ConfigBuilder, KeyLog};
use support::pki::{Alg, Ca, Usage, Validity};
use support::{Link, Sim, To};

const SUITE: &CipherSuite = &suites::TLS13_AES_128_GCM_SHA256;

/// Collects key log lines (both ends log the same ones).
#[derive(Debug, Default)]
struct Secrets(Mutex<HashMap<String, Vec<u8>>>);

impl KeyLog for Secrets {
    fn log(&self, label: &str, _client_random: &[u8; 32], secret: &[u8]) {
        self.0.lock().unwrap().insert(label.to_owned(), secret.to_vec());
    }
}

/// One record as an observer with the keys sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    epoch: u64,
    seq: u64,
    content_type: ContentType,
    /// Handshake fragments: (type, message_seq, offset, length).
    fragments: Vec<(HandshakeType, u16, u32, u32)>,
    /// An ACK's record numbers.
    acked: Vec<RecordNumber>,
}

/// Decrypts what each direction sends, record by record, in the order sent.
struct Observer {
    secrets: Arc<Secrets>,
    windows: HashMap<(To, u64), ReplayWindow>,
}

impl Observer {
    fn secret_label(to: To, epoch: u64) -> &'static str {
        match (to, epoch) {
            (To::Server, 2) => "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            (To::Client, 2) => "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            (To::Server, _) => "CLIENT_TRAFFIC_SECRET_0",
            (To::Client, _) => "SERVER_TRAFFIC_SECRET_0",
        }
    }

    fn decode(&mut self, to: To, datagram: &[u8]) -> Vec<Seen> {
        let mut out = Vec::new();
        let mut buf = datagram.to_vec();
        let mut pos = 0;
        while pos < buf.len() {
            let rest = &mut buf[pos..];
            let total = rest.len();
            let Some((header, fragment, tail)) = Header::split(rest, 0) else { break };
            let (len, tail_len) = (fragment.len(), tail.len());
            let start = pos + total - tail_len - len;
            let end = start + len;
            let seen = match header {
                Header::Plain(h) => Some((0, h.seq, h.content_type, 0..len)),
                Header::Unified(u) => {
                    let epoch = u64::from(u.epoch_bits);
                    let secret = self.secrets.0.lock().unwrap().get(Self::secret_label(to, epoch)).cloned();
                    let secret = secret.expect("the secret of this epoch was logged before use");
                    let keys =
                        UnifiedProtection::from_traffic_secret(&*default_provider(), SUITE.aead, SUITE.hash, &secret)
                            .unwrap();
                    let window = self.windows.entry((to, epoch)).or_default();
                    let opened = keys.open(&u, fragment, window).expect("the observer decrypts it");
                    Some((epoch, opened.seq, opened.content_type, opened.plaintext))
                }
                _ => None,
            };
            let Some((epoch, seq, content_type, plain)) = seen else { break };
            let body = &buf[start + plain.start..start + plain.end];
            let mut s = Seen { epoch, seq, content_type, fragments: Vec::new(), acked: Vec::new() };
            if content_type == ContentType::HANDSHAKE {
                let mut r = Reader::new(body);
                while let Some((h, _)) = HandshakeHeader::parse(&mut r) {
                    s.fragments.push((h.msg_type, h.message_seq, h.fragment_offset, h.fragment_length));
                }
            } else if content_type == ContentType::ACK {
                s.acked = parse_ack(body).expect("a well-formed ACK");
            }
            out.push(s);
            pos = end;
        }
        out
    }
}

/// The wire as seen by the observer: every record each side sent, in order, and the
/// datagrams the test dropped.
#[derive(Default)]
struct Wire {
    sent: Vec<(To, Seen)>,
    dropped: Vec<(To, Vec<Seen>)>,
}

/// A simulation whose filter decrypts each datagram and asks `drop` whether to lose it.
fn observed(
    client: ConfigBuilder,
    name: Option<&str>,
    server: ConfigBuilder,
    link: Link,
    seed: u64,
    mut drop: impl FnMut(To, &[Seen], &Wire) -> bool + 'static,
) -> (Sim, Arc<Mutex<Wire>>) {
    let secrets = Arc::new(Secrets::default());
    let v13 = |b: ConfigBuilder| {
        b.protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
            .cipher_suites(&[SUITE])
            .key_log(secrets.clone())
            .rng_seed(seed)
            .handshake_timeout(Duration::from_secs(120))
            .build()
            .unwrap()
    };
    let mut sim = Sim::with_server_name(seed, v13(client), name, v13(server), link, link);
    let wire = Arc::new(Mutex::new(Wire::default()));
    let mut observer = Observer { secrets, windows: HashMap::new() };
    let w = wire.clone();
    sim.filter = Some(Box::new(move |to, datagram| {
        let seen = observer.decode(to, datagram);
        let mut wire = w.lock().unwrap();
        let lose = drop(to, &seen, &wire);
        if lose {
            wire.dropped.push((to, seen.clone()));
        }
        wire.sent.extend(seen.into_iter().map(|s| (to, s)));
        lose
    }));
    (sim, wire)
}

fn certificates() -> (ConfigBuilder, ConfigBuilder) {
    let ca = Ca::root("Reliability Root");
    let leaf = ca.leaf(Alg::Rsa2048, &["localhost"], Usage::Server, Validity::Now);
    (Config::builder().root_store(ca.roots()), Config::builder().certificate(leaf.certified_key()))
}

#[test]
fn a_lost_certificate_record_is_resent_alone() {
    let (client, server) = certificates();
    // Small datagrams: the server's flight (an RSA certificate) spans several.
    let link = Link::lossy(0.0, 400);
    let mut dropped_one = false;
    let (mut sim, wire) = observed(client.mtu(400), Some("localhost"), server.mtu(400), link, 1, move |to, seen, _| {
        let has = |t| seen.iter().any(|s| s.fragments.iter().any(|f| f.0 == t));
        // A datagram with a piece of the Certificate, after the one with the ServerHello (the
        // client can read what follows it).
        if to == To::Client && has(HandshakeType::CERTIFICATE) && !has(HandshakeType::SERVER_HELLO) && !dropped_one {
            dropped_one = true;
            return true;
        }
        false
    });
    assert!(sim.run_handshake(Duration::from_secs(30)), "{:?} {:?}", sim.client_error, sim.server_errors);
    let wire = wire.lock().unwrap();
    let (_, lost) = &wire.dropped[0];
    let lost_fragments: Vec<_> = lost.iter().flat_map(|s| s.fragments.clone()).collect();
    // The server's handshake records: the first flight, then only what was lost, again.
    let server_epoch2: Vec<&Seen> = wire
        .sent
        .iter()
        .filter(|(to, s)| *to == To::Client && s.epoch == 2 && s.content_type == ContentType::HANDSHAKE)
        .map(|(_, s)| s)
        .collect();
    let first_flight_end =
        server_epoch2.iter().position(|s| s.fragments.iter().any(|f| f.0 == HandshakeType::FINISHED)).unwrap();
    let resent: Vec<_> = server_epoch2[first_flight_end + 1..].iter().flat_map(|s| s.fragments.clone()).collect();
    assert!(!resent.is_empty(), "the lost record was resent");
    // Byte for byte: a resent range may be cut differently (records are packed anew).
    let within_lost = |&(t, seq, off, len): &(HandshakeType, u16, u32, u32)| {
        lost_fragments
            .iter()
            .any(|&(lt, lseq, loff, llen)| lt == t && lseq == seq && loff <= off && off + len <= loff + llen)
    };
    assert!(
        resent.iter().all(within_lost),
        "only the lost fragments are resent: lost {lost_fragments:?}, resent {resent:?}"
    );
    let bytes = |v: &[(HandshakeType, u16, u32, u32)]| v.iter().map(|f| f.3).sum::<u32>();
    assert_eq!(bytes(&resent), bytes(&lost_fragments), "every lost byte is resent, once");
    // The client's ACK named what it had, which is what spared the rest.
    let client_acks: Vec<&Seen> = wire
        .sent
        .iter()
        .filter(|(to, s)| *to == To::Server && s.content_type == ContentType::ACK)
        .map(|(_, s)| s)
        .collect();
    assert!(!client_acks.is_empty(), "the client acknowledged the partial flight");
}

#[test]
fn a_lost_ack_of_the_client_finished_is_made_good() {
    let mut dropped = false;
    let (mut sim, wire) = observed(
        Config::builder().psk("ack", b"ack key".to_vec()),
        None,
        Config::builder().psk_server_key(b"ack key".to_vec()),
        Link::PERFECT,
        2,
        move |to, seen, _| {
            if to == To::Client && !dropped && seen.iter().any(|s| s.content_type == ContentType::ACK) {
                dropped = true;
                return true;
            }
            false
        },
    );
    assert!(sim.run_handshake(Duration::from_secs(30)));
    sim.run_for(Duration::from_secs(10));
    let wire = wire.lock().unwrap();
    let acks: Vec<&Seen> = wire
        .sent
        .iter()
        .filter(|(to, s)| *to == To::Client && s.content_type == ContentType::ACK)
        .map(|(_, s)| s)
        .collect();
    assert!(acks.len() >= 2, "the server acknowledged the retransmitted Finished again: {acks:?}");
    assert!(sim.client.stats().retransmissions >= 1);
    assert_eq!(sim.client.poll_timeout(), None, "the client stopped resending once acknowledged");
    assert!(sim.client_error.is_none() && sim.server_errors.is_empty());
}

/// Every ACK of many lossy handshakes: strictly increasing record numbers, each a handshake
/// record the other side sent, in an epoch no higher than the ACK's own.
#[test]
fn acks_name_only_handshake_records_in_order() {
    let mut acks_seen = 0;
    for seed in 0..30 {
        let (client, server) = certificates();
        let link = Link { loss: 0.25, duplicate: 0.1, reorder: 0.3, ..Link::lossy(0.25, 500) };
        // ClientHellos in one datagram (X25519 alone): the rules checked are those of the
        // encrypted flights, and three-fragment hellos at this loss can take longer than the
        // handshake may (tests/hybrid.rs has fragmented hellos over lossy links).
        let client = client.groups(&[KxGroup::X25519]);
        let (mut sim, wire) =
            observed(client.mtu(500), Some("localhost"), server.mtu(500), link, seed, |_, _, _| false);
        assert!(sim.run_handshake(Duration::from_secs(120)), "seed {seed}");
        sim.run_for(Duration::from_secs(10));
        let wire = wire.lock().unwrap();
        let mut kinds: HashMap<(To, u64, u64), ContentType> = HashMap::new();
        for (to, s) in &wire.sent {
            kinds.insert((*to, s.epoch, s.seq), s.content_type);
        }
        for (to, s) in wire.sent.iter().filter(|(_, s)| s.content_type == ContentType::ACK) {
            acks_seen += 1;
            assert!(!s.acked.is_empty(), "seed {seed}: an empty ACK");
            assert!(s.acked.windows(2).all(|w| w[0] < w[1]), "seed {seed}: not increasing: {:?}", s.acked);
            let peer = if *to == To::Client { To::Server } else { To::Client };
            for n in &s.acked {
                assert_eq!(
                    kinds.get(&(peer, n.epoch, n.seq)),
                    Some(&ContentType::HANDSHAKE),
                    "seed {seed}: ACK names {n:?}, not a handshake record of the peer"
                );
                assert!(n.epoch <= s.epoch.max(2), "seed {seed}: ACK in epoch {} names epoch {}", s.epoch, n.epoch);
            }
        }
    }
    assert!(acks_seen >= 30, "at least the ACK of each client Finished: {acks_seen}");
}
