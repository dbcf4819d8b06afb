//! Figure 3: records/s over loopback, one connection, 1,200-byte records: raw UDP, ours and
//! OpenSSL, with one system call per datagram and with batching (sendmmsg/recvmmsg, then UDP
//! GSO on send and GRO on receive).
//!
//! A sender thread sends as fast as it can; the receiver counts what it gets during a fixed
//! window that starts at its first datagram. Loopback drops what the receiver cannot keep up
//! with, so the count is what one connection really carries.

use std::io::{self, Read, Write};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use openssl::ssl::{Ssl, SslStream};
use rdtls::udp::{self, Batching, RecvBatch};
use rdtls::{Connection, Listener, ListenerOptions, SocketOptions};

use crate::report::Row;
use crate::setup::{self, Credentials, Kind};
use crate::{median, Effort};

const RECORD: usize = 1200;
/// Datagrams per batched send.
const BATCH: usize = 32;
const BUFFER: usize = 8 << 20;

/// How a run went: records received per second.
type Rate = f64;

fn socket_options() -> SocketOptions {
    SocketOptions::default().recv_buffer_size(BUFFER).send_buffer_size(BUFFER)
}

/// Two UDP sockets on 127.0.0.1 connected to each other, with large buffers.
fn socket_pair() -> (UdpSocket, UdpSocket) {
    let opts = socket_options();
    let a = opts.bind("127.0.0.1:0".parse().expect("address")).expect("socket");
    let b = opts.bind("127.0.0.1:0".parse().expect("address")).expect("socket");
    a.connect(b.local_addr().expect("address")).expect("connect");
    b.connect(a.local_addr().expect("address")).expect("connect");
    (a, b)
}

/// Runs `send` in a thread until the receiver is done; `recv` returns how many records one
/// call received (0: nothing within its timeout). Returns records/s over `window`.
fn measure(
    window: Duration,
    mut send: impl FnMut() -> io::Result<()> + Send + 'static,
    mut recv: impl FnMut() -> io::Result<usize>,
) -> Rate {
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match send() {
                    Ok(()) => {}
                    // The receiver's socket is full or gone: loopback's way of dropping.
                    Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::WouldBlock) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                    Err(e) => panic!("send: {e}"),
                }
            }
        })
    };
    let mut count = 0usize;
    let mut start = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = recv().expect("receive");
        let now = Instant::now();
        match start {
            None if n > 0 => start = Some(now),
            None => assert!(now < deadline, "nothing received over loopback"),
            Some(s) => {
                count += n;
                if now - s >= window {
                    break;
                }
            }
        }
    }
    let elapsed = start.map_or(window, |s| s.elapsed());
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("sender thread");
    count as f64 / elapsed.as_secs_f64()
}

fn timed_out(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// Raw UDP with the syscalls `mode` uses.
fn raw(mode: Batching, window: Duration) -> Rate {
    let (tx, rx) = socket_pair();
    rx.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let payload = vec![0x5a; RECORD];
    let send: Box<dyn FnMut() -> io::Result<()> + Send> = match mode {
        Batching::Off => Box::new(move || tx.send(&payload).map(drop)),
        Batching::Mmsg => {
            let tx = udp::Socket::new(tx).expect("socket");
            Box::new(move || {
                let list = [&payload[..]; BATCH];
                tx.send_many(&list, None).map(drop)
            })
        }
        _ => {
            let tx = udp::Socket::new(tx).expect("socket");
            assert!(tx.gso_supported(), "the kernel has no UDP GSO");
            let big = payload.repeat(BATCH);
            Box::new(move || tx.send_segments(&big, RECORD, None).map(drop))
        }
    };
    match mode {
        Batching::Off => {
            let mut buf = vec![0u8; 2048];
            measure(window, send, move || match rx.recv(&mut buf) {
                Ok(_) => Ok(1),
                Err(e) if timed_out(&e) => Ok(0),
                Err(e) => Err(e),
            })
        }
        _ => {
            let rx = udp::Socket::new(rx).expect("socket");
            let mut batch = if mode == Batching::Mmsg {
                RecvBatch::new(udp::MAX_BATCH, 2048)
            } else {
                assert!(rx.set_gro(true).expect("UDP_GRO"), "the kernel has no UDP GRO");
                RecvBatch::for_gro(32)
            };
            measure(window, send, move || match rx.recv_many(&mut batch, Some(Duration::from_millis(200))) {
                Ok(n) => Ok(n),
                Err(e) if timed_out(&e) => Ok(0),
                Err(e) => Err(e),
            })
        }
    }
}

/// Our DTLS: a client sending to a listener's accepted connection (its own socket).
fn ours(mode: Batching, creds: &Credentials, window: Duration) -> Rate {
    let options = ListenerOptions::default().connection_sockets(true).socket(socket_options());
    let listener = Listener::bind_with(
        "127.0.0.1:0".parse().expect("address"),
        setup::ours_server(Kind::Psk, creds, true),
        options,
    )
    .expect("listener");
    let addr = listener.local_addr().expect("address");
    let client_cfg = setup::ours_client(Kind::Psk, creds);
    let connector = thread::spawn(move || {
        let socket = socket_options().bind("127.0.0.1:0".parse().expect("address")).expect("socket");
        socket.connect(addr).expect("connect");
        Connection::handshake(socket, client_cfg, Some(Duration::from_secs(10))).expect("client handshake")
    });
    let mut server = listener.accept_timeout(Duration::from_secs(10)).expect("accept");
    let mut client = connector.join().expect("client thread");
    client.set_batching(mode);
    server.set_batching(mode);
    let payload = vec![0x5a; RECORD];
    let send: Box<dyn FnMut() -> io::Result<()> + Send> = match mode {
        Batching::Off => Box::new(move || client.send(&payload).map(drop)),
        _ => Box::new(move || {
            let list = [&payload[..]; BATCH];
            client.send_batch(&list).map(drop)
        }),
    };
    let timeout = Some(Duration::from_millis(200));
    let rate = match mode {
        Batching::Off => {
            let mut buf = vec![0u8; 2048];
            measure(window, send, move || match server.recv(&mut buf, timeout) {
                Ok(_) => Ok(1),
                Err(e) if timed_out(&e) => Ok(0),
                Err(e) => Err(e),
            })
        }
        _ => measure(window, send, move || match server.recv_batch(timeout) {
            Ok(m) => Ok(m.count()),
            Err(e) if timed_out(&e) => Ok(0),
            Err(e) => Err(e),
        }),
    };
    drop(listener);
    rate
}

/// A connected UDP socket as OpenSSL's datagram transport.
#[derive(Debug)]
struct Udp(UdpSocket);

impl Read for Udp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf)
    }
}

impl Write for Udp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// OpenSSL, one SSL_write/SSL_read per record over connected sockets (it has no batching).
fn openssl(creds: &Credentials, window: Duration) -> Rate {
    let (a, b) = socket_pair();
    for s in [&a, &b] {
        s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    }
    let server_ctx = setup::ossl_server(Kind::Psk, creds, false);
    let client_ctx = setup::ossl_client(Kind::Psk);
    let server = thread::spawn(move || {
        let mut ssl = Ssl::new(&server_ctx).expect("SSL");
        ssl.set_mtu(1400).expect("mtu");
        ssl.accept(Udp(b)).expect("OpenSSL server handshake")
    });
    let mut ssl = Ssl::new(&client_ctx).expect("SSL");
    ssl.set_mtu(1400).expect("mtu");
    let mut client: SslStream<Udp> = ssl.connect(Udp(a)).expect("OpenSSL client handshake");
    let mut server = server.join().expect("server thread");
    let payload = vec![0x5a; RECORD];
    let mut buf = vec![0u8; 2048];
    measure(
        window,
        move || {
            client
                .ssl_write(&payload)
                .map(drop)
                .map_err(|e| e.into_io_error().unwrap_or_else(|e| io::Error::other(e.to_string())))
        },
        move || match server.ssl_read(&mut buf) {
            Ok(_) => Ok(1),
            Err(e) => match e.into_io_error() {
                Ok(io) if timed_out(&io) => Ok(0),
                Ok(io) => Err(io),
                Err(e) => Err(io::Error::other(e.to_string())),
            },
        },
    )
}

pub(crate) fn run(effort: &Effort, creds: &Credentials, rows: &mut Vec<Row>) {
    let window = if effort.quick { Duration::from_millis(400) } else { Duration::from_millis(1500) };
    let modes = [(Batching::Off, "send/recv"), (Batching::Mmsg, "sendmmsg/recvmmsg"), (Batching::Offload, "GSO/GRO")];
    let mut raw_rates = vec![Vec::new(); 3];
    let mut our_rates = vec![Vec::new(); 3];
    let mut ossl_rates = Vec::new();
    for _ in 0..effort.rounds.min(5) {
        ossl_rates.push(openssl(creds, window));
        for (i, (mode, _)) in modes.iter().enumerate() {
            raw_rates[i].push(raw(*mode, window));
            our_rates[i].push(ours(*mode, creds, window));
        }
    }
    let theirs = median(&mut ossl_rates);
    let mbit = |rate: f64| rate * (RECORD * 8) as f64 / 1e6;
    for (i, (_, label)) in modes.iter().enumerate() {
        let raw = median(&mut raw_rates[i]);
        let ours = median(&mut our_rates[i]);
        rows.push(Row::new(format!("loopback raw UDP, {label}"), "records/s", raw, None));
        // OpenSSL has no batched I/O: its one-call-per-record figure stands beside every mode.
        rows.push(Row::new(format!("loopback DTLS, {label}"), "records/s", ours, Some(theirs)));
        rows.push(Row::new(format!("loopback DTLS, {label}"), "Mbit/s", mbit(ours), Some(mbit(theirs))));
        rows.push(Row::new(format!("loopback DTLS vs raw UDP, {label}"), "%", 100.0 * ours / raw, None));
    }
}
