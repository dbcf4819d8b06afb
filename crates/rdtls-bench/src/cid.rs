//! Connection ID (RFC 9146 for DTLS 1.2, RFC 9147 §9 for 1.3), in memory: CPU per 1,200-byte
//! record and memory per idle connection with 8-byte connection IDs both ways, beside the same
//! without (in the table's OpenSSL column). The targets: records within 3%, at most
//! 2 KiB per connection.
//!
//! A DTLS 1.2 record with an ID carries its content type inside: 1,200 bytes of data make 1,201
//! to encrypt, one more AES block than without. The 1,199-byte row encrypts as many bytes as
//! 1,200 without, to tell that block from the cost of the format itself; and the cipher's own
//! share is given apart: AES-128-GCM alone on a record of RFC 9146's shape (31 bytes of
//! additional data, 1,201 bytes to encrypt) beside one of DTLS 1.2's (13 and 1,200).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls_proto::{Config, Connection, Protocol};

use crate::drive::OursServer;
use crate::dtls13::{aead_floor_row, record_cost};
use crate::inmem::ours_idle_memory;
use crate::report::Row;
use crate::setup::{base, Kind, PSK_IDENTITY, PSK_KEY};
use crate::{interleave, median, Effort};

fn peer(i: usize) -> SocketAddr {
    let i = i as u32;
    SocketAddr::from((Ipv4Addr::from(0x0c00_0000 | (i >> 16)), (i & 0xffff) as u16))
}

/// PSK-AES128-GCM server and client configurations (DTLS 1.2; with `v13`, DTLS 1.3 with
/// TLS_AES_128_GCM_SHA256), with `cid`-byte connection IDs or none.
fn configs_of(cid: Option<usize>, v13: bool) -> (Arc<Config>, Arc<Config>) {
    let with = |b: rdtls_proto::ConfigBuilder| {
        let b = if v13 {
            b.protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
                .cipher_suites(&[&rdtls_proto::suites::TLS13_AES_128_GCM_SHA256])
        } else {
            b
        };
        match cid {
            Some(n) => b.connection_id(n),
            None => b,
        }
    };
    let server = with(base(Kind::Psk).psk_server_key(PSK_KEY.to_vec()).cookie_verification(true));
    let client = with(base(Kind::Psk).psk(PSK_IDENTITY, PSK_KEY.to_vec()));
    (Arc::new(server.build().expect("server config")), Arc::new(client.build().expect("client config")))
}

fn configs(cid: Option<usize>) -> (Arc<Config>, Arc<Config>) {
    configs_of(cid, false)
}

/// An established pair: (server, client).
fn pair(cid: Option<usize>, v13: bool) -> (Connection, Connection) {
    let (server_cfg, client_cfg) = configs_of(cid, v13);
    let now = Instant::now();
    let mut server = OursServer::new(server_cfg, now);
    let (_, s, c) = server.handshake(&client_cfg, false, peer(0), now, &mut Duration::default());
    let version = c.protocol();
    assert_eq!(c.peer_connection_id().map(<[u8]>::len), cid, "connection IDs as configured ({version:?})");
    (s, c)
}

/// The connection-ID group of figures.
pub(crate) fn run(effort: &Effort, rows: &mut Vec<Row>) {
    const RECORD: usize = 1200;
    let n = effort.scale(5_000);
    let mut figure = |name: &str, record_with: usize, v13: bool| {
        let (mut s8, mut c8) = pair(Some(8), v13);
        let (mut s0, mut c0) = pair(None, v13);
        let (mut with, mut without) = interleave(
            effort.rounds * 4,
            || record_cost(&mut s8, &mut c8, record_with, n),
            || record_cost(&mut s0, &mut c0, RECORD, n),
        );
        rows.push(Row::new(name, "ns", median(&mut with), Some(median(&mut without))));
    };
    figure("record seal + open, 1200 B, AES-128-GCM, 8-byte connection IDs (openssl column: without)", RECORD, false);
    figure(
        "record seal + open, 1199 B, AES-128-GCM, 8-byte connection IDs (openssl column: 1200 B without)",
        RECORD - 1,
        false,
    );
    figure(
        "DTLS 1.3 record seal + open, 1200 B, AES-128-GCM, 8-byte connection IDs (openssl column: without)",
        RECORD,
        true,
    );
    // RFC 9146 §5's additional data with an 8-byte ID, and the content type inside.
    rows.push(aead_floor_row(effort, "RFC 9146's shape with an 8-byte ID", (23 + 8, RECORD + 1)));
    let count = if effort.quick { 1_000 } else { 10_000 };
    let memory = |cid| {
        let (server_cfg, client_cfg) = configs(cid);
        ours_idle_memory(server_cfg, &client_cfg, count, peer)
    };
    rows.push(Row::new(
        format!("memory per idle connection, 8-byte connection IDs, {count} connections (openssl column: without)"),
        "bytes",
        memory(Some(8)),
        Some(memory(None)),
    ));
}
