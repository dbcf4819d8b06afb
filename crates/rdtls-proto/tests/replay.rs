//! Anti-replay (RFC 6347 §4.1.2.6): duplicates, too-old, far-future and forged records; the
//! window moves only on authenticated records.

mod support;

use std::time::Duration;

use rdtls_proto::suites::{self, CipherSuite};
use rdtls_proto::Config;
use support::{Link, Sim};

fn established(suite: &'static CipherSuite) -> Sim {
    let c = Config::builder().cipher_suites(&[suite]).psk("r", b"replay key".to_vec()).build().unwrap();
    let s = Config::builder().cipher_suites(&[suite]).psk_server_key(b"replay key".to_vec()).build().unwrap();
    let mut sim = Sim::new(5, c, s, Link::PERFECT, Link::PERFECT);
    assert!(sim.run_handshake(Duration::from_secs(5)));
    sim.run_for(Duration::from_secs(1));
    sim
}

fn record(sim: &mut Sim, text: &str) -> Vec<u8> {
    let mut r = Vec::new();
    sim.client.send(text.as_bytes(), &mut r).unwrap();
    r
}

/// Delivers a datagram to the server connection, returning the plaintexts.
fn deliver(sim: &mut Sim, datagram: &[u8]) -> Vec<Vec<u8>> {
    let mut d = datagram.to_vec();
    let now = sim.now;
    let conn = sim.server_conn_mut().unwrap();
    conn.handle_datagram(now, &mut d).unwrap().iter().map(<[u8]>::to_vec).collect()
}

const ALL: [&CipherSuite; 3] = [
    &suites::TLS_PSK_WITH_AES_128_GCM_SHA256,
    &suites::TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
    &suites::TLS_PSK_WITH_AES_128_CCM_8,
];

#[test]
fn duplicates_are_dropped() {
    for suite in ALL {
        let mut sim = established(suite);
        let a = record(&mut sim, "a");
        assert_eq!(deliver(&mut sim, &a), [b"a".to_vec()]);
        let before = sim.server_conn().unwrap().stats();
        assert!(deliver(&mut sim, &a).is_empty());
        assert_eq!(sim.server_conn().unwrap().stats().dropped_replayed, before.dropped_replayed + 1);
    }
}

#[test]
fn reordering_within_the_window_is_accepted_and_too_old_is_dropped() {
    for suite in ALL {
        let mut sim = established(suite);
        let recs: Vec<Vec<u8>> = (0..70).map(|i| record(&mut sim, &format!("m{i}"))).collect();
        assert_eq!(deliver(&mut sim, &recs[69]), [b"m69".to_vec()]);
        assert_eq!(deliver(&mut sim, &recs[68]), [b"m68".to_vec()]);
        // 64 behind the highest is outside the window.
        assert!(deliver(&mut sim, &recs[5]).is_empty(), "too old");
        assert!(deliver(&mut sim, &recs[0]).is_empty(), "too old");
        assert_eq!(deliver(&mut sim, &recs[6]), [b"m6".to_vec()], "63 behind is inside");
        assert!(deliver(&mut sim, &recs[6]).is_empty(), "and only once");
        assert_eq!(sim.server_conn().unwrap().stats().dropped_replayed, 3);
    }
}

#[test]
fn forged_records_never_move_the_window() {
    for suite in ALL {
        let mut sim = established(suite);
        let a = record(&mut sim, "a");
        let b = record(&mut sim, "b");
        // A forged record with the highest possible sequence number (CVE-2016-2181 style).
        let mut far = a.clone();
        far[5..11].copy_from_slice(&[0xff; 6]);
        assert!(deliver(&mut sim, &far).is_empty());
        // A forged record with a flipped ciphertext bit at the genuine sequence number.
        let mut flipped = b.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(deliver(&mut sim, &flipped).is_empty());
        assert_eq!(sim.server_conn().unwrap().stats().dropped_bad_auth, 2);
        // Genuine traffic goes on, including the very record the forgery imitated.
        assert_eq!(deliver(&mut sim, &b), [b"b".to_vec()]);
        assert_eq!(deliver(&mut sim, &a), [b"a".to_vec()]);
        let c = record(&mut sim, "c");
        assert_eq!(deliver(&mut sim, &c), [b"c".to_vec()]);
    }
}

#[test]
fn plaintext_and_unknown_epoch_application_data_is_dropped() {
    let mut sim = established(&suites::TLS_PSK_WITH_AES_128_GCM_SHA256);
    // Epoch 0 application data after the handshake (pion GHSA-7gfg-6934-mqq2).
    let mut plain = vec![23, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 99, 0, 5];
    plain.extend_from_slice(b"owned");
    assert!(deliver(&mut sim, &plain).is_empty());
    // Epoch 2 does not exist.
    let mut e2 = record(&mut sim, "x");
    e2[3..5].copy_from_slice(&[0, 2]);
    assert!(deliver(&mut sim, &e2).is_empty());
    let stats = sim.server_conn().unwrap().stats();
    assert_eq!((stats.dropped_unexpected, stats.dropped_epoch), (1, 1));
    assert!(sim.server_conn().unwrap().is_established());
}

#[test]
fn several_records_per_datagram_and_truncation() {
    let mut sim = established(&suites::TLS_PSK_WITH_AES_128_GCM_SHA256);
    let mut dgram = record(&mut sim, "one");
    dgram.extend(record(&mut sim, "two"));
    let third = record(&mut sim, "three");
    dgram.extend_from_slice(&third[..third.len() - 3]);
    assert_eq!(deliver(&mut sim, &dgram), [b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(sim.server_conn().unwrap().stats().dropped_malformed, 1);
    // The cut record was never authenticated, so the intact copy still gets through.
    assert_eq!(deliver(&mut sim, &third), [b"three".to_vec()]);
}

#[test]
fn every_single_byte_corruption_is_dropped_silently() {
    let mut sim = established(&suites::TLS_PSK_WITH_AES_128_CCM_8);
    let good = record(&mut sim, "payload");
    for i in 0..good.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[i] ^= bit;
            let mut d = bad.clone();
            let now = sim.now;
            let got = sim.server_conn_mut().unwrap().handle_datagram(now, &mut d).expect("never an error");
            assert!(got.is_empty(), "corruption at byte {i} accepted");
        }
    }
    assert!(sim.server_conn().unwrap().is_established());
    assert_eq!(deliver(&mut sim, &good), [b"payload".to_vec()]);
}
