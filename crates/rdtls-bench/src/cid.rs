//! Connection ID (RFC 9146, DTLS 1.2), in memory: CPU per 1,200-byte record and memory per idle
//! connection with 8-byte connection IDs both ways, beside the same without (in the table's
//! OpenSSL column). The targets: records within 3%, at most 2 KiB per connection.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls_proto::{Config, Connection};

use crate::drive::OursServer;
use crate::dtls13::record_cost;
use crate::inmem::ours_idle_memory;
use crate::report::Row;
use crate::setup::{base, Kind, PSK_IDENTITY, PSK_KEY};
use crate::{interleave, median, Effort};

fn peer(i: usize) -> SocketAddr {
    let i = i as u32;
    SocketAddr::from((Ipv4Addr::from(0x0c00_0000 | (i >> 16)), (i & 0xffff) as u16))
}

/// PSK-AES128-GCM server and client configurations, with `cid`-byte connection IDs or none.
fn configs(cid: Option<usize>) -> (Arc<Config>, Arc<Config>) {
    let with = |b: rdtls_proto::ConfigBuilder| match cid {
        Some(n) => b.connection_id(n),
        None => b,
    };
    let server = with(base(Kind::Psk).psk_server_key(PSK_KEY.to_vec()).cookie_verification(true));
    let client = with(base(Kind::Psk).psk(PSK_IDENTITY, PSK_KEY.to_vec()));
    (Arc::new(server.build().expect("server config")), Arc::new(client.build().expect("client config")))
}

/// An established pair: (server, client).
fn pair(cid: Option<usize>) -> (Connection, Connection) {
    let (server_cfg, client_cfg) = configs(cid);
    let now = Instant::now();
    let mut server = OursServer::new(server_cfg, now);
    let (_, s, c) = server.handshake(&client_cfg, false, peer(0), now, &mut Duration::default());
    assert_eq!(c.peer_connection_id().map(<[u8]>::len), cid, "connection IDs as configured");
    (s, c)
}

/// The connection-ID group of figures.
pub(crate) fn run(effort: &Effort, rows: &mut Vec<Row>) {
    const RECORD: usize = 1200;
    let n = effort.scale(5_000);
    let (mut s8, mut c8) = pair(Some(8));
    let (mut s0, mut c0) = pair(None);
    let (mut with, mut without) = interleave(
        effort.rounds * 4,
        || record_cost(&mut s8, &mut c8, RECORD, n),
        || record_cost(&mut s0, &mut c0, RECORD, n),
    );
    rows.push(Row::new(
        "record seal + open, 1200 B, AES-128-GCM, 8-byte connection IDs (openssl column: without)",
        "ns",
        median(&mut with),
        Some(median(&mut without)),
    ));
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
