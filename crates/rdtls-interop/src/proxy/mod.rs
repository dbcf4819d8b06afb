//! A fault-injecting UDP proxy between one DTLS client and one server, modelled on Mbed TLS's
//! `programs/test/udp_proxy.c`.
//!
//! The client sends to [`FaultProxy::addr`]; the proxy forwards to the upstream server from a
//! socket of its own and sends the server's answers back to the client (the address of the first
//! datagram it received; datagrams from any other address are ignored). Each direction has its
//! own [`Faults`]: random loss, duplication, reordering, a fixed delay, corruption of one bit,
//! truncation, an MTU, packing of consecutive datagrams into one, and targeted drops of the
//! datagrams or flights that carry a chosen handshake message ([`Target`]).
//!
//! # Reproducibility
//!
//! The random fate of a datagram is a pure function of the seed, its direction, the fault phase
//! (0, then one more for every [`FaultProxy::set_faults`] on that direction) and its index in
//! that phase (the n-th datagram the proxy received that way, counted before any fault):
//! [`Faults::fate`] computes it. Two runs with one seed treat the n-th datagram of each
//! direction alike, whatever the threads' timing; what differs between runs is only what the
//! peers send (their retransmission timers run on real time).
//!
//! # Order of the faults
//!
//! A datagram over the MTU is dropped (`oversize`); then targeted drops; then random loss
//! (`dropped`); the survivor is truncated, then has one bit flipped; it may wait up to
//! [`Faults::pack_window`] for the next datagram to travel with it (`packed` counts the
//! datagrams that joined an earlier one); it may be sent twice (`duplicated`); it may be held
//! back until the next datagram of its direction has gone, at most [`Faults::reorder_hold`]
//! (`reordered`); and everything leaves [`Faults::delay`] after it arrived.
//!
//! # Rebinding
//!
//! [`FaultProxy::rebind_every`] makes the proxy behave as a NAT that rebinds: after every N
//! datagrams forwarded to the server, it goes on from a new source port, and what the server
//! sends to the old port is lost, as a NAT drops it once the mapping is gone.
//! [`FaultProxy::rebind`] rebinds once, at a moment a test chooses. The server sees its client
//! come from a new address: with Connection ID it can follow; without, the association is lost.
//!
//! Corruption reaches plaintext handshake messages too: a flipped bit in an epoch-0 handshake
//! body changes the transcript, so both peers fail the handshake at Finished (correctly). Mbed
//! TLS's proxy corrupts only application data for that reason; switch corruption on with
//! [`FaultProxy::set_faults`] once the handshake is over to do the same.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Record header: type(1) version(2) epoch(2) sequence_number(6) length(2) (RFC 6347 §4.1).
pub const RECORD_HEADER_LEN: usize = 13;
/// Handshake header: msg_type(1) length(3) message_seq(2) fragment_offset(3)
/// fragment_length(3) (RFC 6347 §4.2.2).
pub const HANDSHAKE_HEADER_LEN: usize = 12;
/// Record content type `change_cipher_spec`.
pub const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
/// Record content type `handshake`.
pub const CONTENT_HANDSHAKE: u8 = 22;
/// The largest UDP payload over IPv4.
pub const MAX_DATAGRAM: usize = 65_507;

/// Handshake message types (RFC 5246 §7.4, RFC 6347 §4.3.2), for [`Marker::Handshake`].
pub mod handshake_type {
    /// `client_hello`.
    pub const CLIENT_HELLO: u8 = 1;
    /// `server_hello`: the first message of the server's first real flight.
    pub const SERVER_HELLO: u8 = 2;
    /// `hello_verify_request`: the cookie flight.
    pub const HELLO_VERIFY_REQUEST: u8 = 3;
    /// `new_session_ticket`.
    pub const NEW_SESSION_TICKET: u8 = 4;
    /// `certificate`.
    pub const CERTIFICATE: u8 = 11;
    /// `server_key_exchange`.
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
    /// `certificate_request`.
    pub const CERTIFICATE_REQUEST: u8 = 13;
    /// `server_hello_done`.
    pub const SERVER_HELLO_DONE: u8 = 14;
    /// `certificate_verify`.
    pub const CERTIFICATE_VERIFY: u8 = 15;
    /// `client_key_exchange`: the first message of the client's Finished flight without client
    /// authentication.
    pub const CLIENT_KEY_EXCHANGE: u8 = 16;
}

/// How long after the previous one a datagram still belongs to the same transmission of a
/// flight. Peers send a flight back to back; their retransmission timers start at a second.
pub const FLIGHT_GAP: Duration = Duration::from_millis(200);

/// Set this environment variable (to anything but `0`) to have every proxy print each datagram
/// it receives, with its index and random fate, to stderr.
pub const TRACE_VAR: &str = "DTLS_PROXY_TRACE";

/// How long an idle forwarding thread sleeps in `recv` before it looks at the stop flag again,
/// should the wake-up datagram of [`FaultProxy::stop`] ever be lost.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// The faults of one direction and the phase they started.
#[derive(Debug)]
struct Phase {
    number: u32,
    faults: Faults,
}

#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
    counters: [Counters; 2],
    /// Datagrams received each way (before faults): a flight's transmission ends when the other
    /// direction's count moves.
    seen: [AtomicU64; 2],
    phases: [Mutex<Phase>; 2],
    /// The client: the source of the first datagram to the front socket.
    client: OnceLock<SocketAddr>,
    /// The socket that talks to the server, which a rebinding replaces.
    back: Mutex<Back>,
    /// Where a new back socket is bound.
    back_local: SocketAddr,
    /// Rebind after this many datagrams forwarded to the server (0: never).
    rebind_every: AtomicU64,
    /// Rebindings so far.
    rebinds: AtomicU64,
}

/// The proxy's socket towards the server and its generation (one more per rebinding).
#[derive(Debug)]
struct Back {
    generation: u64,
    socket: UdpSocket,
}

impl Shared {
    /// Goes on from a new source port towards the server: the forwarding threads take the new
    /// socket before their next datagram, and what reaches the old one is lost. Returns the new
    /// address.
    fn rebind(&self) -> io::Result<SocketAddr> {
        let socket = UdpSocket::bind(self.back_local)?;
        let addr = socket.local_addr()?;
        let mut back = lock(&self.back);
        let old = std::mem::replace(&mut back.socket, socket.try_clone()?);
        back.generation += 1;
        drop(back);
        self.rebinds.fetch_add(1, Ordering::Relaxed);
        // Wakes the thread waiting on the old socket for the server's answers.
        if let Ok(at) = old.local_addr() {
            let _ = socket.send_to(&[], reachable(at));
        }
        Ok(addr)
    }

    /// The back socket if its generation is not `generation`.
    fn back_since(&self, generation: u64) -> Option<(u64, UdpSocket)> {
        let back = lock(&self.back);
        if back.generation == generation {
            return None;
        }
        Some((back.generation, back.socket.try_clone().ok()?))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running fault-injecting proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    seed: u64,
    shared: Arc<Shared>,
    /// Where a wake-up datagram reaches the thread reading the client (the one reading the
    /// server reads the current back socket).
    wake: Vec<SocketAddr>,
    threads: Vec<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on an ephemeral port of 127.0.0.1 towards `upstream`; panics if it cannot
    /// bind (for tests).
    pub fn start(upstream: SocketAddr, to_server: Faults, to_client: Faults, seed: u64) -> Self {
        Self::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), upstream, to_server, to_client, seed)
            .expect("start the fault proxy")
    }

    /// Starts a proxy listening on `listen` towards `upstream`.
    pub fn bind(
        listen: SocketAddr,
        upstream: SocketAddr,
        to_server: Faults,
        to_client: Faults,
        seed: u64,
    ) -> io::Result<Self> {
        let upstream = reachable(upstream);
        let front = UdpSocket::bind(listen)?;
        let back_local: SocketAddr = match upstream.ip() {
            IpAddr::V4(ip) if ip.is_loopback() => (Ipv4Addr::LOCALHOST, 0).into(),
            IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            IpAddr::V6(ip) if ip.is_loopback() => (Ipv6Addr::LOCALHOST, 0).into(),
            IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let back = UdpSocket::bind(back_local)?;
        let addr = front.local_addr()?;
        let wake = vec![reachable(addr)];
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            counters: Default::default(),
            seen: Default::default(),
            phases: [
                Mutex::new(Phase { number: 0, faults: to_server }),
                Mutex::new(Phase { number: 0, faults: to_client }),
            ],
            client: OnceLock::new(),
            back: Mutex::new(Back { generation: 0, socket: back.try_clone()? }),
            back_local,
            rebind_every: AtomicU64::new(0),
            rebinds: AtomicU64::new(0),
        });
        let pipes = [(Direction::ToServer, front.try_clone()?, back.try_clone()?), (Direction::ToClient, back, front)];
        // Stops the threads already started should a later one fail to start.
        let mut proxy = Self { addr, upstream, seed, shared, wake, threads: Vec::new() };
        for (dir, rx, tx) in pipes {
            let pipe = Pipe::new(dir, rx, tx, upstream, seed, proxy.shared.clone());
            proxy.threads.push(thread::Builder::new().name(format!("fault-proxy {dir}")).spawn(move || pipe.run())?);
        }
        Ok(proxy)
    }

    /// Where the client sends.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// The seed of the random faults.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The client, once it sent something.
    pub fn client(&self) -> Option<SocketAddr> {
        self.shared.client.get().copied()
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        Stats {
            to_server: self.shared.counters[0].snapshot(),
            to_client: self.shared.counters[1].snapshot(),
            rebinds: self.shared.rebinds.load(Ordering::Relaxed),
        }
    }

    /// Rebinds after every `n` datagrams forwarded to the server, counted from the last
    /// rebinding (`0`: never): a NAT whose mappings keep changing.
    pub fn rebind_every(&self, n: u64) {
        self.shared.rebind_every.store(n, Ordering::Relaxed);
    }

    /// Rebinds now: the next datagram to the server leaves from a new port, returned.
    pub fn rebind(&self) -> io::Result<SocketAddr> {
        self.shared.rebind()
    }

    /// The address the server sees the client at: the proxy's socket towards it.
    pub fn client_side(&self) -> io::Result<SocketAddr> {
        lock(&self.shared.back).socket.local_addr()
    }

    /// The faults `dir` applies now.
    pub fn faults(&self, dir: Direction) -> Faults {
        lock(&self.shared.phases[dir.index()]).faults.clone()
    }

    /// The fault phase of `dir`: 0 at the start, one more for each [`set_faults`](Self::set_faults).
    pub fn phase(&self, dir: Direction) -> u32 {
        lock(&self.shared.phases[dir.index()]).number
    }

    /// Replaces the faults of `dir` from its next datagram on, and starts a new phase: datagram
    /// indices for [`Faults::fate`] restart at 0, and targets start over. A datagram already
    /// held back (packing, reordering, delay) keeps its fate.
    pub fn set_faults(&self, dir: Direction, faults: Faults) {
        let mut phase = lock(&self.shared.phases[dir.index()]);
        phase.number += 1;
        phase.faults = faults;
    }

    /// Stops forwarding (datagrams still held back are discarded) and returns the counters.
    /// Idempotent.
    pub fn stop(&mut self) -> Stats {
        if !self.threads.is_empty() {
            self.shared.stop.store(true, Ordering::SeqCst);
            let mut wake = self.wake.clone();
            if let Ok(back) = lock(&self.shared.back).socket.local_addr() {
                wake.push(reachable(back));
            }
            if let Ok(waker) = UdpSocket::bind(SocketAddr::new(self.wake[0].ip(), 0)) {
                for to in &wake {
                    let _ = waker.send_to(&[], to);
                }
            }
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
        }
        self.stats()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `addr` with an unspecified IP replaced by the loopback address of its family.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

mod faults;
mod pipe;
mod stats;
#[cfg(test)]
mod tests;

pub use faults::*;
use pipe::*;
pub use stats::*;
