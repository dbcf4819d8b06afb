//! DTLS 1.3 figures, in memory: server CPU per handshake (PSK with X25519, and ECDHE-ECDSA),
//! CPU per 1,200-byte record, memory per idle connection. Each figure has two rows, measured
//! interleaved: beside our own DTLS 1.2 doing the same work (ECDHE-PSK for the PSK row; the
//! targets: handshake within 10%, record within 5%), and beside wolfSSL 5.9's DTLS 1.3 in
//! memory (the target: at most half its cost). The record figure is also given at 1,199 bytes,
//! where DTLS 1.3's inner content type fills the last AES block as 1,200 bytes do in 1.2, and
//! the cipher's own share is given apart: AES-128-GCM alone on a record of DTLS 1.3's shape
//! (5 bytes of header as additional data, 1,201 bytes to encrypt) beside one of DTLS 1.2's.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls_proto::crypto::{default_provider, KxGroup};
use rdtls_proto::enums::Protocol;
use rdtls_proto::pki::{CertificateDer, CertifiedKey, RootStore};
use rdtls_proto::suites::{self, CipherSuite};
use rdtls_proto::{Config, Connection};

use crate::drive::OursServer;
use crate::inmem::ours_idle_memory;
use crate::report::Row;
use crate::setup::{Credentials, Kind, PSK_IDENTITY, PSK_KEY};
use crate::{interleave, median, wolfssl13, Effort};

fn peer(i: usize) -> SocketAddr {
    let i = i as u32;
    SocketAddr::from((Ipv4Addr::from(0x0b00_0000 | (i >> 16)), (i & 0xffff) as u16))
}

/// Server and client configurations of one version and kind.
fn configs(version: Protocol, kind: Kind, creds: &Credentials, cookie: bool) -> (Arc<Config>, Arc<Config>) {
    let suite: &'static CipherSuite = match (version, kind) {
        (Protocol::Dtls1_2, Kind::Psk) => &suites::TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256,
        (Protocol::Dtls1_2, _) => &suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        _ => &suites::TLS13_AES_128_GCM_SHA256,
    };
    let base = || {
        Config::builder()
            .protocol_versions(version, version)
            .cipher_suites(&[suite])
            .groups(&[KxGroup::X25519, KxGroup::Secp256r1])
            .mtu(1400)
    };
    let (server, client) = match kind {
        Kind::Psk => (base().psk_server_key(PSK_KEY.to_vec()), base().psk(PSK_IDENTITY, PSK_KEY.to_vec())),
        Kind::Ecdsa => {
            let key = CertifiedKey::from_pem_or_der(&*default_provider(), &creds.cert, &creds.key_pkcs8, None)
                .expect("our server key");
            let mut roots = RootStore::new();
            roots.add(&CertificateDer::from(creds.ca.clone())).expect("CA");
            (base().certificate(key), base().root_store(roots))
        }
    };
    let server = server.cookie_verification(cookie).build().expect("server config");
    (Arc::new(server), Arc::new(client.build().expect("client config")))
}

/// Server CPU per handshake, µs, for one version.
fn handshake_cpu(version: Protocol, kind: Kind, creds: &Credentials, cookie: bool, n: usize) -> impl FnMut() -> f64 {
    let (server_cfg, client_cfg) = configs(version, kind, creds, cookie);
    let now = Instant::now();
    let mut server = OursServer::new(server_cfg, now);
    move || {
        let mut spent = Duration::ZERO;
        for i in 0..n {
            let (h, s, c) = server.handshake(&client_cfg, kind == Kind::Ecdsa, peer(i), now, &mut spent);
            server.endpoint.remove(h);
            drop((s, c));
        }
        spent.as_secs_f64() * 1e6 / n as f64
    }
}

const RECORD: usize = 1200;

/// An established pair of one version: (server, client).
fn pair(version: Protocol, creds: &Credentials) -> (Connection, Connection) {
    let (server_cfg, client_cfg) = configs(version, Kind::Psk, creds, false);
    let now = Instant::now();
    let mut server = OursServer::new(server_cfg, now);
    let (_, s, c) = server.handshake(&client_cfg, false, peer(0), now, &mut Duration::default());
    (s, c)
}

/// Seal then open of one `len`-byte record, ns.
pub(crate) fn record_cost(server: &mut Connection, client: &mut Connection, len: usize, n: usize) -> f64 {
    let payload = vec![0x5a; len];
    let mut sealed = Vec::with_capacity(2048);
    let now = Instant::now();
    let start = Instant::now();
    for _ in 0..n {
        sealed.clear();
        client.send(&payload, &mut sealed).expect("seal");
        let got = server.handle_datagram(now, &mut sealed).expect("open");
        black_box(got.len());
    }
    start.elapsed().as_secs_f64() * 1e9 / n as f64
}

/// Seal then open of `len` bytes with `aad_len` bytes of additional data by AES-128-GCM alone
/// (aws-lc, as our provider calls it), ns: what a record format costs in the cipher before any
/// code of ours runs.
pub(crate) fn aead_alone(aad_len: usize, len: usize, n: usize) -> f64 {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[0x1a; 16]).expect("key"));
    let aad = vec![0x17; aad_len];
    let mut buf = Vec::with_capacity(len + 16);
    let start = Instant::now();
    for i in 0..n {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
        buf.clear();
        buf.resize(len, 0x5a);
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad[..]), &mut buf).expect("seal");
        let opened = key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(&aad[..]), &mut buf);
        black_box(opened.expect("open").len());
    }
    start.elapsed().as_secs_f64() * 1e9 / n as f64
}

/// The cipher's share of a record format's cost: `shape` (additional data, bytes to encrypt)
/// beside DTLS 1.2's (13 and 1,200), by AES-128-GCM alone.
pub(crate) fn aead_floor_row(effort: &Effort, name: &str, shape: (usize, usize)) -> Row {
    let n = effort.scale(5_000);
    let (mut with, mut plain) =
        interleave(effort.rounds * 4, || aead_alone(shape.0, shape.1, n), || aead_alone(13, RECORD, n));
    let figure = format!(
        "AES-128-GCM alone, seal + open, {name}: {} B additional data, {} B (openssl column: DTLS 1.2's, 13 B and {RECORD} B)",
        shape.0, shape.1
    );
    Row::new(figure, "ns", median(&mut with), Some(median(&mut plain)))
}

/// Heap per idle established PSK connection, bytes, at `count` connections.
fn idle_memory(version: Protocol, creds: &Credentials, count: usize) -> f64 {
    let (server_cfg, client_cfg) = configs(version, Kind::Psk, creds, true);
    ours_idle_memory(server_cfg, &client_cfg, count, peer)
}

/// The DTLS 1.3 group of figures.
pub(crate) fn run(effort: &Effort, creds: &Credentials, rows: &mut Vec<Row>) {
    for (kind, label, baseline) in [
        (Kind::Psk, "PSK with X25519 (psk_dhe_ke)", "ECDHE-PSK-AES128-GCM"),
        (Kind::Ecdsa, "ECDHE-ECDSA P-256, X25519", "ECDHE-ECDSA-AES128-GCM"),
    ] {
        for cookie in [false, true] {
            let n = effort.scale(if kind == Kind::Psk { 300 } else { 100 });
            let figure = format!(
                "DTLS 1.3 handshake server CPU, TLS_AES_128_GCM_SHA256 {label}, cookie {}",
                if cookie { "on" } else { "off" }
            );
            let (mut ours, mut twelve) = interleave(
                effort.rounds,
                handshake_cpu(Protocol::Dtls1_3, kind, creds, cookie, n),
                handshake_cpu(Protocol::Dtls1_2, kind, creds, cookie, n),
            );
            let vs12 = format!("{figure} (openssl column: our DTLS 1.2 {baseline})");
            rows.push(Row::new(vs12, "us", median(&mut ours), Some(median(&mut twelve))));
            let (mut ours, mut wolf) = interleave(
                effort.rounds,
                handshake_cpu(Protocol::Dtls1_3, kind, creds, cookie, n),
                wolfssl13::handshake_cpu(kind, creds, cookie, n),
            );
            let vs_wolf = format!("{figure} (openssl column: wolfSSL 5.9 DTLS 1.3)");
            rows.push(Row::new(vs_wolf, "us", median(&mut ours), Some(median(&mut wolf))));
        }
    }
    let n = effort.scale(5_000);
    let (mut s13, mut c13) = pair(Protocol::Dtls1_3, creds);
    let (mut s12, mut c12) = pair(Protocol::Dtls1_2, creds);
    let (_contexts, mut ws, mut wc) = wolfssl13::pair(creds);
    for (len, l12) in [(RECORD, RECORD), (RECORD - 1, RECORD)] {
        let (mut ours, mut twelve) = interleave(
            effort.rounds * 4,
            || record_cost(&mut s13, &mut c13, len, n),
            || record_cost(&mut s12, &mut c12, l12, n),
        );
        rows.push(Row::new(
            format!("DTLS 1.3 record seal + open, {len} B, AES-128-GCM (openssl column: our DTLS 1.2, {l12} B)"),
            "ns",
            median(&mut ours),
            Some(median(&mut twelve)),
        ));
    }
    // A unified header of 5 bytes (16-bit sequence number and length) and the content type.
    rows.push(aead_floor_row(effort, "DTLS 1.3's shape", (5, RECORD + 1)));
    let (mut ours, mut wolf) = interleave(
        effort.rounds * 4,
        || record_cost(&mut s13, &mut c13, RECORD, n),
        || wolfssl13::record_cost(&mut ws, &mut wc, RECORD, n),
    );
    rows.push(Row::new(
        format!("DTLS 1.3 record seal + open, {RECORD} B, AES-128-GCM (openssl column: wolfSSL 5.9 DTLS 1.3)"),
        "ns",
        median(&mut ours),
        Some(median(&mut wolf)),
    ));
    let count = if effort.quick { 1_000 } else { 10_000 };
    let ours = idle_memory(Protocol::Dtls1_3, creds, count);
    let figure = format!("DTLS 1.3 memory per idle connection, {count} connections");
    rows.push(Row::new(
        format!("{figure} (openssl column: our DTLS 1.2 ECDHE-PSK)"),
        "bytes",
        ours,
        Some(idle_memory(Protocol::Dtls1_2, creds, count)),
    ));
    rows.push(Row::new(
        format!("{figure} (openssl column: wolfSSL 5.9 DTLS 1.3)"),
        "bytes",
        ours,
        Some(wolfssl13::idle_memory(creds, count)),
    ));
}
