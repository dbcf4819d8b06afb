//! DTLS-SRTP (RFC 5764) with wolfSSL 5.9 (`src/wolfssl/`, built with `WOLFSSL_SRTP` and
//! `HAVE_KEYING_MATERIAL`), DTLS 1.3 (where OpenSSL 3.0 has no DTLS) and 1.2, both roles: both
//! ends agree on the profile and export the same SRTP keying material.

#[allow(dead_code)]
mod certs;
#[allow(dead_code)]
#[path = "../src/wolfssl/mod.rs"]
mod wolfssl;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use certs::{Alg, Ca, Leaf, Usage};
use rdtls::proto::enums::Protocol;
use rdtls::{Client, Config, Server, ServerEvent, SrtpKeyingMaterial, SrtpProfile};
use rdtls_interop::loopback;
use wolfssl::{WolfConfig, WolfPeer};

const T: Duration = Duration::from_secs(20);

/// wolfSSL's list, ours, and the profile the server's rule gives.
const CASES: [(&str, &[SrtpProfile], SrtpProfile); 2] = [
    (
        "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80",
        &[SrtpProfile::Aes128CmHmacSha1_80, SrtpProfile::AeadAes128Gcm],
        SrtpProfile::Aes128CmHmacSha1_80,
    ),
    ("SRTP_AEAD_AES_256_GCM", &[SrtpProfile::AeadAes256Gcm], SrtpProfile::AeadAes256Gcm),
];

fn versioned(version: Protocol, wolf: WolfConfig) -> (rdtls::proto::ConfigBuilder, WolfConfig) {
    let wolf = if version == Protocol::Dtls1_2 { wolf.dtls12() } else { wolf };
    (Config::builder().protocol_versions(version, version), wolf)
}

fn check(ours: &SrtpKeyingMaterial, wolf: (Option<u16>, Option<Vec<u8>>), expected: SrtpProfile, version: Protocol) {
    assert_eq!(ours.profile(), expected, "{version:?}");
    assert_eq!(wolf.0, Some(expected.code_point()), "{version:?}: wolfSSL's profile");
    assert_eq!(wolf.1.as_deref(), Some(ours.as_bytes()), "{version:?}: wolfSSL's keying material");
}

fn our_client(version: Protocol, ca: &Ca, leaf: &Leaf) {
    for (wolf_list, ours, _) in CASES {
        let (b, wolf_cfg) = versioned(version, WolfConfig::server().certificate(&leaf.chain_pem(), &leaf.key_pem));
        let mut server = WolfPeer::bind(&wolf_cfg.srtp(wolf_list), loopback(0)).expect("wolfSSL server socket");
        let addr = server.local_addr();
        let wolf_side = thread::spawn(move || {
            server.handshake().expect("wolfSSL server handshake");
            (server.srtp_profile(), server.srtp_keying_material())
        });
        let config = Arc::new(b.root_store(ca.roots()).srtp_profiles(ours).build().unwrap());
        let client = Client::connect_with_name(addr, "localhost", config, Some(T)).expect("our client's handshake");
        let keys = client.srtp_keying_material().expect("SRTP agreed on");
        let wolf = wolf_side.join().expect("wolfSSL thread");
        // A wolfSSL server takes the first of the client's profiles it has.
        check(&keys, wolf, ours[0], version);
    }
}

fn our_server(version: Protocol, ca: &Ca, leaf: &Leaf) {
    for (wolf_list, ours, expected) in CASES {
        let (b, wolf_cfg) = versioned(version, WolfConfig::client().ca(ca.root_pem()).server_name("localhost"));
        let config = b.certificate(leaf.certified_key()).srtp_profiles(ours).build().unwrap();
        let mut server = Server::bind(loopback(0), Arc::new(config)).unwrap();
        let addr = server.local_addr().unwrap();
        let wolf_cfg = wolf_cfg.srtp(wolf_list);
        let wolf_side = thread::spawn(move || {
            let mut client = WolfPeer::connect(&wolf_cfg, addr).expect("wolfSSL client socket");
            client.handshake().expect("wolfSSL client handshake with our server");
            (client.srtp_profile(), client.srtp_keying_material())
        });
        let keys = loop {
            match server.poll(Some(T)).unwrap() {
                Some(ServerEvent::Connected(p)) => break server.connection(p).unwrap().srtp_keying_material().unwrap(),
                Some(_) => {}
                None => panic!("no handshake within {T:?}"),
            }
        };
        // Our server takes the first of its own profiles that wolfSSL offered.
        check(&keys, wolf_side.join().expect("wolfSSL thread"), expected, version);
    }
}

#[test]
fn dtls13_srtp_with_a_wolfssl_server() {
    let ca = Ca::root("rdtls SRTP interop root");
    our_client(Protocol::Dtls1_3, &ca, &ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server));
}

#[test]
fn dtls13_srtp_with_a_wolfssl_client() {
    let ca = Ca::root("rdtls SRTP interop root");
    our_server(Protocol::Dtls1_3, &ca, &ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server));
}

#[test]
fn dtls12_srtp_with_wolfssl_both_roles() {
    let ca = Ca::root("rdtls SRTP interop root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    our_client(Protocol::Dtls1_2, &ca, &leaf);
    our_server(Protocol::Dtls1_2, &ca, &leaf);
}
