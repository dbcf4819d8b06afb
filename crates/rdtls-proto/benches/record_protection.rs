//! Record protection: sealing and opening one 1200-byte application data record through an
//! established [`Connection`] pair, for each AEAD family.
//!
//! - `record_seal/<suite>`: [`Connection::send`] into a reused buffer (header, explicit nonce,
//!   in-place encryption, tag).
//! - `record_open/<suite>`: [`Connection::handle_datagram`] on a fresh copy of a new record
//!   (framing, replay check, in-place decryption, window update). Each iteration opens a record
//!   with a new sequence number, as the replay window would drop a repeated one unopened.
//!
//! Throughput is reported in bytes of application data.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use rdtls_proto::suites::{
    CipherSuite, TLS_PSK_WITH_AES_128_CCM_8, TLS_PSK_WITH_AES_128_GCM_SHA256, TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
};
use rdtls_proto::{Config, Connection, HandshakeState};

/// Application data per record: a typical payload that fits a 1280-byte IPv6 path with room for
/// IP, UDP and record overhead.
const PAYLOAD_LEN: usize = 1200;

const SUITES: [(&str, &CipherSuite); 3] = [
    ("AES-128-GCM", &TLS_PSK_WITH_AES_128_GCM_SHA256),
    ("ChaCha20-Poly1305", &TLS_PSK_WITH_CHACHA20_POLY1305_SHA256),
    ("AES-128-CCM-8", &TLS_PSK_WITH_AES_128_CCM_8),
];

/// Runs a PSK handshake for `suite` in memory and returns the (client, server) pair.
fn established(suite: &'static CipherSuite, now: Instant) -> (Connection, Connection) {
    let client_cfg = Config::builder().psk("bench", b"benchmark key".to_vec()).cipher_suites(&[suite]).build();
    let server_cfg = Config::builder().psk_server_key(b"benchmark key".to_vec()).cookie_verification(false).build();
    let mut client = Connection::client(Arc::new(client_cfg.expect("client config")), now).expect("client");
    let mut server = Connection::server(Arc::new(server_cfg.expect("server config")), now).expect("server");
    let mut buf = Vec::new();
    for _ in 0..8 {
        while client.poll_transmit(&mut buf).is_some() {
            server.handle_datagram(now, &mut buf).expect("server handshake");
        }
        while server.poll_transmit(&mut buf).is_some() {
            client.handle_datagram(now, &mut buf).expect("client handshake");
        }
        if client.handshake_state() == HandshakeState::Complete && server.handshake_state() == HandshakeState::Complete
        {
            assert_eq!(client.cipher_suite(), Some(suite));
            return (client, server);
        }
    }
    panic!("the {suite} handshake did not complete");
}

fn record_protection(c: &mut Criterion) {
    let now = Instant::now();
    let payload = vec![0x5a; PAYLOAD_LEN];
    let mut pairs: Vec<_> = SUITES.iter().map(|&(name, suite)| (name, established(suite, now))).collect();

    // Sanity check outside the measurements: a sealed record opens to the payload.
    for (name, (client, server)) in &mut pairs {
        let mut record = Vec::new();
        client.send(&payload, &mut record).expect("send");
        assert_eq!(record.len(), PAYLOAD_LEN + client.record_overhead(), "{name}");
        let received = server.handle_datagram(now, &mut record).expect("open");
        assert_eq!(received.iter().collect::<Vec<_>>(), [&payload[..]], "{name}");
    }

    let mut seal = c.benchmark_group("record_seal");
    seal.throughput(Throughput::Bytes(PAYLOAD_LEN as u64));
    for (name, (client, _)) in &mut pairs {
        let mut record = Vec::with_capacity(PAYLOAD_LEN + 64);
        seal.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                record.clear();
                client.send(black_box(&payload), &mut record).expect("send");
                black_box(record.len())
            })
        });
    }
    seal.finish();

    let mut open = c.benchmark_group("record_open");
    open.throughput(Throughput::Bytes(PAYLOAD_LEN as u64));
    for (name, (client, server)) in &mut pairs {
        let mut sealed = Vec::with_capacity(PAYLOAD_LEN + 64);
        open.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_batched_ref(
                || {
                    sealed.clear();
                    client.send(&payload, &mut sealed).expect("send");
                    sealed.clone()
                },
                |datagram| {
                    let received = server.handle_datagram(now, datagram).expect("open");
                    black_box(received.len())
                },
                BatchSize::SmallInput,
            )
        });
    }
    open.finish();
}

criterion_group!(benches, record_protection);
criterion_main!(benches);
