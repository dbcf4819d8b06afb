//! The post-quantum hybrid groups in DTLS 1.3 (X25519MLKEM768, SecP256r1MLKEM768): offered
//! first by default with a curve's share beside them, negotiated in both roles, asked for by
//! the stateless HelloRetryRequest, never used by DTLS 1.2; their ClientHello is fragmented
//! and gets through lossy links; a malformed share is refused.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls_proto::crypto::KxGroup;
use rdtls_proto::enums::{AlertDescription, Protocol};
use rdtls_proto::messages::tls13::KeyShare;
use rdtls_proto::messages::{ClientHello, HandshakeHeader};
use rdtls_proto::record::HEADER_LEN;
use rdtls_proto::{Config, ConfigBuilder, Connection, Error, DEFAULT_GROUPS};
use support::pki::ServerPki;
use support::{drain, pump, Link, Sim};

const KEY: &[u8] = b"post-quantum psk";

fn v13() -> ConfigBuilder {
    Config::builder().protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
}

/// The ClientHello carried by `datagrams` (plaintext fragments, one record each), reassembled.
fn client_hello(datagrams: &[Vec<u8>]) -> ClientHello {
    let mut body = Vec::new();
    for d in datagrams {
        let mut r = rdtls_proto::codec::Reader::new(&d[HEADER_LEN..]);
        let (h, frag) = HandshakeHeader::parse(&mut r).expect("a handshake fragment");
        assert_eq!(h.fragment_offset as usize, body.len(), "fragments in order");
        body.extend_from_slice(frag);
        assert!(h.length as usize >= body.len());
    }
    ClientHello::parse(&body).expect("a ClientHello").0
}

/// The groups and key shares of the first ClientHello of a client of `cfg`, and its datagrams'
/// sizes.
fn first_hello(cfg: Config) -> (Vec<u16>, Vec<(u16, usize)>, Vec<usize>) {
    let mut client = Connection::client(Arc::new(cfg), Instant::now()).unwrap();
    let hello = drain(&mut client);
    let ch = client_hello(&hello);
    let Some(KeyShare::Offered(shares)) = &ch.extensions.tls13.key_share else { panic!("no key_share") };
    let shares = shares.iter().map(|e| (e.group, e.key_exchange.len())).collect();
    (ch.extensions.supported_groups.clone().unwrap(), shares, hello.iter().map(Vec::len).collect())
}

#[test]
fn the_default_client_offers_x25519mlkem768_first_and_keeps_its_first_hello_in_one_datagram() {
    assert_eq!(DEFAULT_GROUPS[0], KxGroup::X25519MlKem768);
    let cfg = v13().psk("pq", KEY.to_vec()).build().unwrap();
    assert_eq!(cfg.key_share_groups(), [KxGroup::X25519MlKem768, KxGroup::X25519]);
    // A DTLS 1.3 client of certificates: both shares fit the default MTU.
    let roots = ServerPki::new("R").ca.roots();
    let (groups, shares, sizes) = first_hello(v13().root_store(roots).build().unwrap());
    assert_eq!(groups, [0x11EC, 29, 23, 24]);
    assert_eq!(shares, [(0x11EC, 1216), (29, 32)]);
    assert_eq!(sizes.len(), 1);
    assert!(sizes[0] > 1300 && sizes[0] <= 1400, "{sizes:?}");
    // A client of both versions with a PSK: its suites and extensions leave no room for the
    // hybrid share at the default MTU, so X25519's goes alone.
    let (groups, shares, sizes) = first_hello(Config::builder().psk("pq", KEY.to_vec()).build().unwrap());
    assert_eq!(groups, [0x11EC, 29, 23, 24]);
    assert_eq!(shares, [(29, 32)]);
    assert_eq!(sizes.len(), 1);
    // With room, both go.
    let (_, shares, sizes) = first_hello(Config::builder().psk("pq", KEY.to_vec()).mtu(1600).build().unwrap());
    assert_eq!(shares, [(0x11EC, 1216), (29, 32)]);
    assert_eq!(sizes.len(), 1);
    // Listed key shares go whatever the MTU: the hello is fragmented, each datagram within it.
    let both = [KxGroup::X25519MlKem768, KxGroup::X25519];
    let (_, shares, sizes) =
        first_hello(v13().psk("pq", KEY.to_vec()).key_share_groups(&both).mtu(1000).build().unwrap());
    assert_eq!(shares, [(0x11EC, 1216), (29, 32)]);
    assert_eq!(sizes.len(), 2);
    assert_eq!(sizes[0], 1000, "the first datagram is full");
    assert!(sizes[1] <= 1000);
}

#[test]
fn each_hybrid_group_is_negotiated_through_the_cookie_exchange() {
    for group in [KxGroup::X25519MlKem768, KxGroup::Secp256r1MlKem768] {
        for mtu in [1400, 400] {
            let groups = [group, KxGroup::X25519];
            let c = v13().psk("pq", KEY.to_vec()).groups(&groups).mtu(mtu).build().unwrap();
            let s = v13().psk_server_key(KEY.to_vec()).groups(&groups).mtu(mtu).build().unwrap();
            let mut sim = Sim::new(3, c, s, Link::PERFECT, Link::PERFECT);
            assert!(sim.run_handshake(Duration::from_secs(10)), "{group:?} at {mtu}: {:?}", sim.client_error);
            assert_eq!(sim.client.key_exchange_group(), Some(group));
            assert_eq!(sim.server_conn().unwrap().key_exchange_group(), Some(group));
            // The cookie's retry is the only one: the client's share was taken.
            assert!(sim.client.used_hello_retry_request());
            let sizes: Vec<usize> = sim.trace.sent.iter().map(|(_, _, n)| *n).collect();
            assert!(sizes.iter().all(|&n| n <= mtu), "{group:?} at {mtu}: datagrams {sizes:?}");
            let mut out = Vec::new();
            sim.client.send(b"after the quantum", &mut out).unwrap();
            sim.send(support::To::Server, out);
            sim.run_for(Duration::from_secs(1));
            assert_eq!(sim.server_received, [b"after the quantum".to_vec()]);
        }
    }
}

#[test]
fn the_stateless_retry_asks_for_the_hybrid_when_the_client_sent_only_a_curve_share() {
    // The client lists the hybrid first but sends only an X25519 share. The server's retry,
    // sent anyway for its cookie, asks for the hybrid: post-quantum at no extra round trip.
    let c = v13().psk("pq", KEY.to_vec()).key_share_groups(&[KxGroup::X25519]).build().unwrap();
    let s = v13().psk_server_key(KEY.to_vec()).build().unwrap();
    let mut sim = Sim::new(4, c, s, Link::PERFECT, Link::PERFECT);
    assert!(sim.run_handshake(Duration::from_secs(10)));
    assert_eq!(sim.client.key_exchange_group(), Some(KxGroup::X25519MlKem768));
    assert!(sim.client.used_hello_retry_request(), "the cookie's retry, which asked for the hybrid");

    // Without a cookie exchange, a share the server accepts is taken rather than paying a
    // round trip for the hybrid.
    let now = Instant::now();
    let c = v13().psk("pq", KEY.to_vec()).key_share_groups(&[KxGroup::X25519]).build().unwrap();
    let s = v13().psk_server_key(KEY.to_vec()).cookie_verification(false).build().unwrap();
    let mut client = Connection::client(Arc::new(c), now).unwrap();
    let mut server = Connection::server(Arc::new(s), now).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.is_established());
    assert_eq!(client.key_exchange_group(), Some(KxGroup::X25519));
    assert!(!client.used_hello_retry_request());

    // A server without the hybrid takes the client's X25519 share from the default two.
    let c = v13().psk("pq", KEY.to_vec()).build().unwrap();
    let s = v13().psk_server_key(KEY.to_vec()).groups(&[KxGroup::X25519]).cookie_verification(false).build().unwrap();
    let mut client = Connection::client(Arc::new(c), now).unwrap();
    let mut server = Connection::server(Arc::new(s), now).unwrap();
    pump(now, &mut client, &mut server);
    assert_eq!(server.key_exchange_group(), Some(KxGroup::X25519));
    assert!(!server.used_hello_retry_request());
}

#[test]
fn an_empty_key_share_list_is_answered_with_a_retry_for_the_hybrid() {
    let now = Instant::now();
    let c = v13().psk("pq", KEY.to_vec()).key_share_groups(&[]).build().unwrap();
    let s = v13().psk_server_key(KEY.to_vec()).cookie_verification(false).build().unwrap();
    let mut client = Connection::client(Arc::new(c), now).unwrap();
    let mut server = Connection::server(Arc::new(s), now).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    assert_eq!(client.key_exchange_group(), Some(KxGroup::X25519MlKem768));
    assert!(client.used_hello_retry_request() && server.used_hello_retry_request());
}

#[test]
fn key_share_groups_must_be_configured_groups() {
    let err = v13().groups(&[KxGroup::X25519]).key_share_groups(&[KxGroup::X25519MlKem768]).build().unwrap_err();
    assert!(err.to_string().contains("key share group is not one of the configured groups"), "{err}");
    let err = v13().key_share_groups(&[KxGroup::X25519, KxGroup::X25519]).build().unwrap_err();
    assert!(err.to_string().contains("listed twice"), "{err}");
    let err = v13().groups(&[KxGroup::X25519, KxGroup::X25519]).build().unwrap_err();
    assert!(err.to_string().contains("listed twice"), "{err}");
}

#[test]
fn dtls12_never_offers_or_picks_a_hybrid_group() {
    let now = Instant::now();
    // A DTLS 1.2 client lists the curves alone.
    let c = support::dtls12().psk("pq", KEY.to_vec()).build().unwrap();
    let mut client = Connection::client(Arc::new(c), now).unwrap();
    let hello = drain(&mut client);
    assert_eq!(hello.len(), 1);
    let ch = client_hello(&hello);
    assert_eq!(ch.extensions.supported_groups.as_deref(), Some(&[29, 23, 24][..]));

    // A client of both versions offers the hybrid; a DTLS 1.2 server answers with a curve.
    let pki = ServerPki::new("Hybrid Root");
    let c = Config::builder().root_store(pki.ca.roots()).build().unwrap();
    let s = pki.server(support::dtls12()).cookie_verification(false).build().unwrap();
    let name = rdtls_proto::pki::ServerName::try_from("localhost").unwrap();
    let mut client = Connection::client_with_server_name(Arc::new(c), Some(name), now).unwrap();
    let mut server = Connection::server(Arc::new(s), now).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.is_established(), "{:?}", client.last_error());
    assert_eq!(client.protocol(), Some(Protocol::Dtls1_2));
    assert_eq!(client.key_exchange_group(), Some(KxGroup::X25519));
    assert_eq!(server.key_exchange_group(), Some(KxGroup::X25519));

    // With hybrid groups alone, DTLS 1.2 has no group: its ECDHE suites are not offered.
    let c = support::dtls12().psk("pq", KEY.to_vec()).groups(&[KxGroup::X25519MlKem768]).build().unwrap();
    let mut client = Connection::client(Arc::new(c), now).unwrap();
    let ch = client_hello(&drain(&mut client));
    assert_eq!(ch.extensions.supported_groups, None);
    assert!(ch
        .cipher_suites
        .iter()
        .all(|s| !rdtls_proto::suites::ALL.iter().any(|x| x.id == *s && x.key_exchange.uses_ecdhe())));
}

#[test]
fn a_malformed_hybrid_share_is_refused_with_illegal_parameter() {
    let now = Instant::now();
    // One datagram (a large MTU) with the hybrid share alone, its ML-KEM key spoiled: its
    // first coefficient 4095, not reduced modulo 3329 (FIPS 203's check on the key).
    // Certificates, so that no PSK binder over the hello fails first.
    let pki = ServerPki::new("Malformed Root");
    let c = v13().root_store(pki.ca.roots()).key_share_groups(&[KxGroup::X25519MlKem768]).mtu(3000).build().unwrap();
    let s = pki.server(v13()).cookie_verification(false).build().unwrap();
    let mut client = Connection::client(Arc::new(c), now).unwrap();
    let mut server = Connection::server(Arc::new(s), now).unwrap();
    let mut hello = drain(&mut client).pop().unwrap();
    let at = hello.windows(4).position(|w| w == [0x11, 0xEC, 0x04, 0xC0]).expect("the hybrid share") + 4;
    hello[at] = 0xff;
    hello[at + 1] |= 0x0f;
    let err = server.handle_datagram(now, &mut hello).unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved { alert: AlertDescription::ILLEGAL_PARAMETER, .. }), "{err:?}");
    let alert = drain(&mut server);
    assert_eq!(alert.len(), 1);
    assert_eq!(alert[0][HEADER_LEN..], [2, AlertDescription::ILLEGAL_PARAMETER.0]);
}

#[test]
fn fragmented_hellos_get_through_lossy_links() {
    // Loss, duplication and reordering both ways, cookies on: the hybrid ClientHello in two
    // datagrams (1,400 bytes) or four (400), each transmission's pieces adding up in the
    // server's pool, every handshake complete.
    for seed in 0..40 {
        for mtu in [1400, 400] {
            let link = Link { loss: 0.1, duplicate: 0.05, reorder: 0.2, ..Link::lossy(0.1, mtu) };
            let pki = ServerPki::new("Lossy Hybrid Root");
            let c = v13().root_store(pki.ca.roots()).mtu(mtu).rng_seed(seed).build().unwrap();
            let s = pki.server(v13()).mtu(mtu).rng_seed(seed).build().unwrap();
            let mut sim = Sim::with_server_name(seed, c, Some("localhost"), s, link, link);
            assert!(
                sim.run_handshake(Duration::from_secs(60)),
                "seed {seed} mtu {mtu}: {:?} {:?}",
                sim.client_error,
                sim.server_errors
            );
            assert_eq!(sim.client.key_exchange_group(), Some(KxGroup::X25519MlKem768));
            assert!(sim.endpoint.hello_pool_bytes() <= rdtls_proto::hello_pool::DEFAULT_HELLO_POOL_BYTES);
        }
    }
}
