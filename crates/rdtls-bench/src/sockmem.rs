//! Figure 4, at the socket layer: what a [`rdtls::Listener`] holds per idle accepted
//! connection (the protocol state, the shared receive queue, the application's handle, the
//! listener's routing entries), over real loopback handshakes.
//!
//! Clients are bare protocol connections over plain UDP sockets, dropped once connected, so
//! only the server's side stays in the heap.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use rdtls::{Listener, ListenerOptions};

use crate::inmem::heap_in_use;
use crate::report::Row;
use crate::setup::{self, Credentials, Kind};

/// One PSK handshake with a bare protocol client from loopback address `n` (each client its
/// own address: a later client on an earlier one's address and port would replace it).
fn connect(server: SocketAddr, cfg: &std::sync::Arc<rdtls_proto::Config>, n: usize) {
    let ip = Ipv4Addr::new(127, 1, (n >> 8) as u8, n as u8);
    let socket = UdpSocket::bind(SocketAddr::from((ip, 0))).expect("client socket");
    socket.connect(server).expect("connect");
    socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let mut client = rdtls_proto::Connection::client(cfg.clone(), Instant::now()).expect("client");
    let mut buf = Vec::with_capacity(2048);
    let mut rx = vec![0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.is_established() {
        assert!(Instant::now() < deadline, "handshake with the listener timed out");
        while client.poll_transmit(&mut buf).is_some() {
            socket.send(&buf).expect("send");
        }
        match socket.recv(&mut rx) {
            Ok(n) => {
                client.handle_datagram(Instant::now(), &mut rx[..n]).expect("client handshake");
            }
            Err(_) => client.handle_timeout(Instant::now()).expect("client timer"),
        }
    }
}

pub(crate) fn run(creds: &Credentials, rows: &mut Vec<Row>) {
    let cfg = setup::ours_client(Kind::Psk, creds);
    for count in [1_000usize, 10_000] {
        let options = ListenerOptions::default().limits(count + 1, 1_000, 16);
        let server_cfg = setup::ours_server(Kind::Psk, creds, true);
        let listener =
            Listener::bind_with("127.0.0.1:0".parse().expect("address"), server_cfg, options).expect("listener");
        let addr = listener.local_addr().expect("address");
        let mut accepted = Vec::with_capacity(count + 1);
        // One connection first, so the baseline holds everything the listener allocates once.
        connect(addr, &cfg, 0);
        accepted.push(listener.accept_timeout(Duration::from_secs(10)).expect("accept"));
        let before = heap_in_use();
        for n in 1..=count {
            connect(addr, &cfg, n);
            accepted.push(listener.accept_timeout(Duration::from_secs(10)).expect("accept"));
        }
        // The handles sit in a vector reserved beforehand: count their inline size too.
        let per = heap_in_use().saturating_sub(before) as f64 / count as f64 + size_of::<rdtls::Connection>() as f64;
        assert!(accepted.iter().all(|c| !c.is_closed()), "every connection is still open");
        drop(accepted);
        drop(listener);
        rows.push(Row::new(
            format!("memory per idle accepted connection, Listener, {count} connections"),
            "bytes",
            per,
            None,
        ));
    }
}
