//! Figures measured in memory, without sockets: server CPU per handshake, CPU per record,
//! memory per idle connection.

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rdtls_proto::Connection;

use crate::drive::{ossl_handshake, OursServer};
use crate::report::Row;
use crate::setup::{self, Credentials, Kind};
use crate::{interleave, median, Effort};

pub(crate) fn peer(i: usize) -> SocketAddr {
    let i = i as u32;
    SocketAddr::from((Ipv4Addr::from(0x0a00_0000 | (i >> 16)), (i & 0xffff) as u16))
}

/// Figure 1: server CPU per full handshake, µs, cookie exchange on and off.
pub(crate) fn handshakes(effort: &Effort, creds: &Credentials, rows: &mut Vec<Row>) {
    for kind in [Kind::Psk, Kind::Ecdsa] {
        for cookie in [false, true] {
            let (ours, theirs) = server_cpu(effort, creds, kind, cookie);
            let figure =
                format!("handshake server CPU, {}, cookie {}", kind.label(), if cookie { "on" } else { "off" });
            rows.push(Row::new(figure, "us", ours, Some(theirs)));
        }
    }
}

/// Server CPU per full handshake in memory, µs, ours and OpenSSL's (medians of interleaved
/// rounds).
pub(crate) fn server_cpu(effort: &Effort, creds: &Credentials, kind: Kind, cookie: bool) -> (f64, f64) {
    let per_round = match kind {
        Kind::Psk => effort.scale(400),
        Kind::Ecdsa => effort.scale(100),
    };
    let ours_server_cfg = setup::ours_server(kind, creds, cookie);
    let ours_client_cfg = setup::ours_client(kind, creds);
    let ossl_server = setup::ossl_server(kind, creds, cookie);
    let ossl_client = setup::ossl_client(kind);
    let now = Instant::now();
    let mut server = OursServer::new(ours_server_cfg, now);
    let (mut ours, mut theirs) = interleave(
        effort.rounds,
        || {
            let mut spent = Duration::ZERO;
            for i in 0..per_round {
                let (h, s, c) = server.handshake(&ours_client_cfg, kind == Kind::Ecdsa, peer(i), now, &mut spent);
                server.endpoint.remove(h);
                drop((s, c));
            }
            spent.as_secs_f64() * 1e6 / per_round as f64
        },
        || {
            let mut spent = Duration::ZERO;
            for _ in 0..per_round {
                drop(ossl_handshake(&ossl_server, &ossl_client, &mut spent));
            }
            spent.as_secs_f64() * 1e6 / per_round as f64
        },
    );
    (median(&mut ours), median(&mut theirs))
}

const RECORD: usize = 1200;
/// Records sealed ahead, then opened, at a time.
const OPEN_CHUNK: usize = 256;

/// Figure 2: CPU per 1,200-byte application data record, seal and open, ns.
pub(crate) fn records(effort: &Effort, creds: &Credentials, rows: &mut Vec<Row>) {
    let kind = Kind::Psk;
    let n = effort.scale(5_000);
    let now = Instant::now();
    let mut server = OursServer::new(setup::ours_server(kind, creds, false), now);
    let (_, mut o_server, mut o_client) =
        server.handshake(&setup::ours_client(kind, creds), false, peer(0), now, &mut Duration::default());
    let (mut s_server, mut s_client) =
        ossl_handshake(&setup::ossl_server(kind, creds, false), &setup::ossl_client(kind), &mut Duration::default());
    let payload = vec![0x5a; RECORD];
    let mut plain = vec![0u8; 2048];
    let mut out = Vec::with_capacity(2048);
    let mut work = Vec::with_capacity(2048);
    // Records are opened in chunks small enough to stay in cache, as a receiver opens a
    // datagram its `recv` has just written.
    let chunks = n.div_ceil(OPEN_CHUNK);
    let mut sealed: Vec<Vec<u8>> = (0..OPEN_CHUNK).map(|_| Vec::with_capacity(RECORD + 64)).collect();
    let (ours, theirs) = interleave(
        effort.rounds * 4,
        || {
            // Seal n records, each into the reused output buffer.
            let start = Instant::now();
            for _ in 0..n {
                out.clear();
                o_client.send(&payload, &mut out).expect("seal");
                black_box(&out);
            }
            let seal = start.elapsed();
            let mut open = Duration::ZERO;
            for _ in 0..chunks {
                for v in &mut sealed {
                    v.clear();
                    o_client.send(&payload, v).expect("seal");
                }
                let start = Instant::now();
                for rec in &sealed {
                    work.clear();
                    work.extend_from_slice(rec);
                    let got = o_server.handle_datagram(now, &mut work).expect("open");
                    assert_eq!(got.iter().next().map(<[u8]>::len), Some(RECORD));
                }
                open += start.elapsed();
            }
            (seal.as_secs_f64() * 1e9 / n as f64, open.as_secs_f64() * 1e9 / (chunks * OPEN_CHUNK) as f64)
        },
        || {
            // The same through SSL_write and SSL_read on OpenSSL's datagram BIO.
            s_client.get_mut().discard = true;
            let start = Instant::now();
            for _ in 0..n {
                let w = s_client.write(&payload).expect("SSL_write");
                debug_assert_eq!(w, RECORD);
                black_box(&s_client.get_ref().last);
            }
            let seal = start.elapsed();
            s_client.get_mut().discard = false;
            let mut open = Duration::ZERO;
            for _ in 0..chunks {
                for _ in 0..OPEN_CHUNK {
                    s_client.write_all(&payload).expect("SSL_write");
                }
                let start = Instant::now();
                for _ in 0..OPEN_CHUNK {
                    let got = s_server.read(&mut plain).expect("SSL_read");
                    assert_eq!(got, RECORD);
                }
                open += start.elapsed();
            }
            (seal.as_secs_f64() * 1e9 / n as f64, open.as_secs_f64() * 1e9 / (chunks * OPEN_CHUNK) as f64)
        },
    );
    let (mut seal_ours, mut open_ours): (Vec<f64>, Vec<f64>) = ours.into_iter().unzip();
    let (mut seal_ossl, mut open_ossl): (Vec<f64>, Vec<f64>) = theirs.into_iter().unzip();
    let (so, oo, sx, ox) =
        (median(&mut seal_ours), median(&mut open_ours), median(&mut seal_ossl), median(&mut open_ossl));
    rows.push(Row::new("record seal, 1200 B, AES-128-GCM", "ns", so, Some(sx)));
    rows.push(Row::new("record open, 1200 B, AES-128-GCM", "ns", oo, Some(ox)));
    rows.push(Row::new("record seal + open, 1200 B, AES-128-GCM", "ns", so + oo, Some(sx + ox)));
    let (ours, theirs) = aead_primitive(effort);
    rows.push(Row::new("AES-128-GCM alone, seal + open 1200 B (crypto floor)", "ns", ours, Some(theirs)));
}

/// The cipher alone: aws-lc-rs (what our records use) and OpenSSL's EVP with a reused context,
/// one seal and one open of 1,200 bytes with a 13-byte AAD. What the record figures cost
/// beyond this is each stack's own work.
fn aead_primitive(effort: &Effort) -> (f64, f64) {
    use openssl::cipher::Cipher;
    use openssl::cipher_ctx::CipherCtx;
    use rdtls_proto::crypto::{default_provider, AeadAlgorithm};

    let n = effort.scale(5_000);
    let key = [0x42u8; 16];
    let aad = [0x17u8; 13];
    let ours_key = default_provider().aead_key(AeadAlgorithm::Aes128Gcm, &key).expect("AEAD key");
    let mut buf = vec![0x5au8; RECORD + 16];
    let mut enc = CipherCtx::new().expect("EVP context");
    enc.encrypt_init(Some(Cipher::aes_128_gcm()), Some(&key), None).expect("init");
    let mut dec = CipherCtx::new().expect("EVP context");
    dec.decrypt_init(Some(Cipher::aes_128_gcm()), Some(&key), None).expect("init");
    let plain = vec![0x5au8; RECORD];
    let mut sealed = vec![0u8; RECORD + 16];
    let mut opened = vec![0u8; RECORD + 16];
    let (mut ours, mut theirs) = interleave(
        effort.rounds * 4,
        || {
            let start = Instant::now();
            for i in 0..n as u64 {
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&i.to_be_bytes());
                ours_key.seal_in_place(&nonce, &aad, &mut buf).expect("seal");
                ours_key.open_in_place(&nonce, &aad, &mut buf).expect("open");
            }
            start.elapsed().as_secs_f64() * 1e9 / n as f64
        },
        || {
            let start = Instant::now();
            for i in 0..n as u64 {
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&i.to_be_bytes());
                enc.encrypt_init(None, None, Some(&nonce)).expect("iv");
                enc.cipher_update(&aad, None).expect("aad");
                let m = enc.cipher_update(&plain, Some(&mut sealed)).expect("encrypt");
                enc.cipher_final(&mut sealed[m..]).expect("final");
                let (body, tag) = sealed.split_at_mut(RECORD);
                enc.tag(tag).expect("tag");
                dec.decrypt_init(None, None, Some(&nonce)).expect("iv");
                dec.set_tag(tag).expect("tag");
                dec.cipher_update(&aad, None).expect("aad");
                let m = dec.cipher_update(body, Some(&mut opened)).expect("decrypt");
                dec.cipher_final(&mut opened[m..]).expect("authentic");
            }
            start.elapsed().as_secs_f64() * 1e9 / n as f64
        },
    );
    (median(&mut ours), median(&mut theirs))
}

/// Bytes of heap in use (glibc's count: the allocations of Rust code and of OpenSSL alike).
pub(crate) fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics; it has no preconditions.
    #[allow(unsafe_code)]
    let info = unsafe { libc::mallinfo2() };
    info.uordblks + info.hblkhd
}

/// Our server's heap per idle established connection, bytes: an endpoint holding `count`
/// established connections (clients from `peer(i)`), clients gone, timers run out (the last
/// flight is kept a while for the peer's retransmissions, then freed). The vector's slots (each
/// connection's inline state) count too.
pub(crate) fn ours_idle_memory(
    server_cfg: std::sync::Arc<rdtls_proto::Config>,
    client_cfg: &std::sync::Arc<rdtls_proto::Config>,
    count: usize,
    peer: fn(usize) -> SocketAddr,
) -> f64 {
    let start = Instant::now();
    let before = heap_in_use();
    let mut server = OursServer::new(server_cfg, start);
    let mut conns: Vec<Connection> = Vec::with_capacity(count);
    for i in 0..count {
        let (_, s, c) = server.handshake(client_cfg, false, peer(i), start, &mut Duration::default());
        drop(c);
        conns.push(s);
    }
    let later = start + Duration::from_secs(600);
    for s in &mut conns {
        while s.poll_timeout().is_some_and(|t| t <= later) {
            s.handle_timeout(later).expect("timeout");
        }
    }
    let bytes = heap_in_use().saturating_sub(before);
    drop(conns);
    drop(server);
    bytes as f64 / count as f64
}

/// Figure 4: server heap per idle established connection (PSK), bytes, at 1,000 and 10,000.
pub(crate) fn memory(effort: &Effort, creds: &Credentials, rows: &mut Vec<Row>) {
    let _ = effort;
    let kind = Kind::Psk;
    let ossl_server = setup::ossl_server(kind, creds, true);
    let ossl_client = setup::ossl_client(kind);
    let client_cfg = setup::ours_client(kind, creds);
    for count in [1_000usize, 10_000] {
        let ours = ours_idle_memory(setup::ours_server(kind, creds, true), &client_cfg, count, peer);

        // OpenSSL: `count` server SSL objects after their handshakes, clients gone (each keeps
        // a small in-memory transport, about 200 bytes, counted with it).
        let before = heap_in_use();
        let mut streams = Vec::with_capacity(count);
        for _ in 0..count {
            let (mut s, c) = ossl_handshake(&ossl_server, &ossl_client, &mut Duration::default());
            drop(c);
            s.get_mut().rx.borrow_mut().release();
            s.get_mut().tx.borrow_mut().release();
            streams.push(s);
        }
        let theirs = heap_in_use().saturating_sub(before);
        drop(streams);
        rows.push(Row::new(
            format!("memory per idle connection, {count} connections"),
            "bytes",
            ours,
            Some(theirs as f64 / count as f64),
        ));
    }
}
