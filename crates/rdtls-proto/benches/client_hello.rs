//! Handshake parsing: `ClientHello::parse` on the body of a real first ClientHello from a client
//! with the default configuration (every suite, X25519 and P-256, extended master secret,
//! renegotiation info), and on the second one, which carries a cookie.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rdtls_proto::messages::{ClientHello, HS_HEADER_LEN};
use rdtls_proto::record::HEADER_LEN;
use rdtls_proto::{ClientVerifier, Config, Connection, Verification};

/// The first and second ClientHello datagrams of a default client, around a real cookie exchange.
fn client_hellos() -> (Vec<u8>, Vec<u8>) {
    let now = Instant::now();
    let client_cfg = Config::builder().psk("bench", b"benchmark key".to_vec()).build().expect("client config");
    let server_cfg = Config::builder().psk_server_key(b"benchmark key".to_vec()).build().expect("server config");
    let mut client = Connection::client(Arc::new(client_cfg), now).expect("client");
    let mut verifier = ClientVerifier::new(&server_cfg, now).expect("verifier");
    let peer = "192.0.2.1:5684".parse().expect("address");

    let mut first = Vec::new();
    client.poll_transmit(&mut first).expect("ClientHello");
    let mut hello_verify_request = Vec::new();
    let verdict = verifier.verify(now, &peer, &first, &mut hello_verify_request);
    assert_eq!(verdict, Verification::SendHelloVerifyRequest);
    client.handle_datagram(now, &mut hello_verify_request).expect("HelloVerifyRequest");
    let mut second = Vec::new();
    client.poll_transmit(&mut second).expect("second ClientHello");
    (first, second)
}

fn client_hello(c: &mut Criterion) {
    let (first, second) = client_hellos();
    let mut group = c.benchmark_group("client_hello_parse");
    for (name, datagram) in [("first", &first), ("with_cookie", &second)] {
        // The datagram is one record holding one unfragmented handshake message.
        let body = &datagram[HEADER_LEN + HS_HEADER_LEN..];
        let (hello, _) = ClientHello::parse(body).expect("a valid ClientHello");
        assert_eq!(hello.cookie.is_empty(), name == "first");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| b.iter(|| ClientHello::parse(black_box(body))));
    }
    group.finish();
}

criterion_group!(benches, client_hello);
criterion_main!(benches);
