//! The stateless cookie check (`ClientVerifier::verify`, Qt's `verifyClient`) on a real
//! ClientHello datagram:
//!
//! - `cookie/hello_verify_request`: a ClientHello without a cookie: parse, compute the cookie
//!   (HMAC-SHA256 over the address and the hello) and write the HelloVerifyRequest;
//! - `cookie/verified`: the second ClientHello, echoing that cookie: parse, recompute and compare.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use rdtls_proto::{ClientVerifier, Config, Connection, Verification};

fn cookie(c: &mut Criterion) {
    let now = Instant::now();
    let client_cfg = Config::builder().psk("bench", b"benchmark key".to_vec()).build().expect("client config");
    let server_cfg = Config::builder().psk_server_key(b"benchmark key".to_vec()).build().expect("server config");
    let mut client = Connection::client(Arc::new(client_cfg), now).expect("client");
    let mut verifier = ClientVerifier::new(&server_cfg, now).expect("verifier");
    let peer: SocketAddr = "192.0.2.1:5684".parse().expect("address");

    // The real exchange, once: ClientHello, HelloVerifyRequest, ClientHello with the cookie.
    let mut first = Vec::new();
    client.poll_transmit(&mut first).expect("ClientHello");
    let mut response = Vec::new();
    assert_eq!(verifier.verify(now, &peer, &first, &mut response), Verification::SendHelloVerifyRequest);
    client.handle_datagram(now, &mut response.clone()).expect("HelloVerifyRequest");
    let mut second = Vec::new();
    client.poll_transmit(&mut second).expect("second ClientHello");
    assert_eq!(verifier.verify(now, &peer, &second, &mut response), Verification::Verified);

    let mut group = c.benchmark_group("cookie");
    group.bench_function("hello_verify_request", |b| {
        b.iter(|| verifier.verify(now, black_box(&peer), black_box(&first), &mut response))
    });
    group.bench_function("verified", |b| {
        b.iter(|| verifier.verify(now, black_box(&peer), black_box(&second), &mut response))
    });
    group.finish();
}

criterion_group!(benches, cookie);
criterion_main!(benches);
