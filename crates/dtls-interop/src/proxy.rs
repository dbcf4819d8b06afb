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
//! Corruption reaches plaintext handshake messages too: a flipped bit in an epoch-0 handshake
//! body changes the transcript, so both peers fail the handshake at Finished (correctly). Mbed
//! TLS's proxy corrupts only application data for that reason; switch corruption on with
//! [`FaultProxy::set_faults`] once the handshake is over to do the same.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

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

// ===== randomness =====

/// splitmix64: small, seedable, deterministic.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n) (0 for n = 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

// ===== what to do =====

/// Which way a datagram travels through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

impl Direction {
    /// Both directions.
    pub const BOTH: [Self; 2] = [Self::ToServer, Self::ToClient];

    fn index(self) -> usize {
        match self {
            Self::ToServer => 0,
            Self::ToClient => 1,
        }
    }

    fn other(self) -> Self {
        match self {
            Self::ToServer => Self::ToClient,
            Self::ToClient => Self::ToServer,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ToServer => "to server",
            Self::ToClient => "to client",
        })
    }
}

/// What a targeted drop looks for in a datagram. The proxy reads the records itself: 13-byte
/// record headers, and the 12-byte handshake headers inside plaintext (epoch 0) handshake
/// records. Protected handshake messages (Finished) are invisible; their flight starts with a
/// ChangeCipherSpec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// A plaintext (epoch 0) handshake fragment of this type ([`handshake_type`]).
    Handshake(u8),
    /// A ChangeCipherSpec record.
    ChangeCipherSpec,
}

impl Marker {
    /// Whether `datagram` carries this marker in any of its records. Stops at the first record
    /// or fragment that does not frame (a truncated datagram).
    pub fn found_in(self, datagram: &[u8]) -> bool {
        let mut rest = datagram;
        while rest.len() >= RECORD_HEADER_LEN {
            let content_type = rest[0];
            let epoch = u16::from_be_bytes([rest[3], rest[4]]);
            let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
            let Some(body) = rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len) else { return false };
            match self {
                Self::ChangeCipherSpec if content_type == CONTENT_CHANGE_CIPHER_SPEC => return true,
                Self::Handshake(t) if content_type == CONTENT_HANDSHAKE && epoch == 0 => {
                    let mut r = body;
                    while r.len() >= HANDSHAKE_HEADER_LEN {
                        if r[0] == t {
                            return true;
                        }
                        let frag_len = (usize::from(r[9]) << 16) | (usize::from(r[10]) << 8) | usize::from(r[11]);
                        let Some(next) = r.get(HANDSHAKE_HEADER_LEN + frag_len..) else { break };
                        r = next;
                    }
                }
                _ => {}
            }
            rest = &rest[RECORD_HEADER_LEN + len..];
        }
        false
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handshake(t) => write!(f, "handshake type {t}"),
            Self::ChangeCipherSpec => f.write_str("ChangeCipherSpec"),
        }
    }
}

/// A targeted drop: datagrams carrying a [`Marker`], or whole transmissions of the flight they
/// start, a number of times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// What to look for.
    pub marker: Marker,
    /// Drop the whole transmission of the flight that starts with the marked datagram: it and
    /// every later datagram of its direction until the other direction sends something, a
    /// datagram carries the marker again (the flight is being retransmitted), or
    /// [`FLIGHT_GAP`] passes without a datagram. Otherwise only the marked datagram.
    pub whole_flight: bool,
    /// How many times (transmissions or datagrams).
    pub times: u32,
}

impl Target {
    /// Drops the first datagram carrying `marker`.
    pub fn datagram(marker: Marker) -> Self {
        Self { marker, whole_flight: false, times: 1 }
    }

    /// Drops the first transmission of the flight that starts with `marker`.
    pub fn flight(marker: Marker) -> Self {
        Self { marker, whole_flight: true, times: 1 }
    }

    /// Drops `n` times instead of once.
    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.whole_flight { "flight starting with" } else { "datagram with" };
        write!(f, "drop the {what} {} x{}", self.marker, self.times)
    }
}

/// The faults of one direction. Probabilities are per datagram, in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is sent twice.
    pub duplicate: f64,
    /// Probability a datagram is held back until the next one of its direction has been sent
    /// (at most [`reorder_hold`](Self::reorder_hold)).
    pub reorder: f64,
    /// Longest a datagram is held back for reordering.
    pub reorder_hold: Duration,
    /// Fixed delay of every datagram.
    pub delay: Duration,
    /// Probability one random bit of a datagram is flipped.
    pub corrupt: f64,
    /// Probability a datagram is cut short (to at least one byte).
    pub truncate: f64,
    /// Datagrams larger than this are dropped, as an IP path would (`None`: no limit). Packed
    /// datagrams stay within it.
    pub mtu: Option<usize>,
    /// Probability a datagram waits up to [`pack_window`](Self::pack_window) for the next one
    /// of its direction and travels with it, as one datagram.
    pub pack: f64,
    /// How long a datagram to pack waits for the next one.
    pub pack_window: Duration,
    /// Targeted drops, applied before the random faults.
    pub targets: Vec<Target>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_hold: Duration::from_millis(100),
            delay: Duration::ZERO,
            corrupt: 0.0,
            truncate: 0.0,
            mtu: None,
            pack: 0.0,
            pack_window: Duration::from_millis(10),
            targets: Vec::new(),
        }
    }
}

/// The random part of what happens to one datagram ([`Faults::fate`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fate {
    /// Lost.
    pub lost: bool,
    /// Cut to this many bytes.
    pub truncate_to: Option<usize>,
    /// This bit (of the possibly truncated datagram) flipped.
    pub corrupt_bit: Option<usize>,
    /// Waits for the next datagram to travel with it.
    pub pack: bool,
    /// Sent twice.
    pub duplicate: bool,
    /// Held back until the next datagram has gone.
    pub reorder: bool,
}

impl Faults {
    /// No faults at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sets [`loss`](Self::loss).
    pub fn loss(mut self, p: f64) -> Self {
        self.loss = p;
        self
    }

    /// Sets [`duplicate`](Self::duplicate).
    pub fn duplicate(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }

    /// Sets [`reorder`](Self::reorder).
    pub fn reorder(mut self, p: f64) -> Self {
        self.reorder = p;
        self
    }

    /// Sets [`delay`](Self::delay).
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// Sets [`corrupt`](Self::corrupt).
    pub fn corrupt(mut self, p: f64) -> Self {
        self.corrupt = p;
        self
    }

    /// Sets [`truncate`](Self::truncate).
    pub fn truncate(mut self, p: f64) -> Self {
        self.truncate = p;
        self
    }

    /// Sets [`mtu`](Self::mtu).
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Sets [`pack`](Self::pack).
    pub fn pack(mut self, p: f64) -> Self {
        self.pack = p;
        self
    }

    /// Adds a targeted drop.
    pub fn target(mut self, target: Target) -> Self {
        self.targets.push(target);
        self
    }

    /// Whether anything here could change a datagram's fate.
    pub fn is_none(&self) -> bool {
        *self == Self { reorder_hold: self.reorder_hold, pack_window: self.pack_window, ..Self::default() }
    }

    /// The random fate of the `index`-th datagram (`len` bytes) of `phase` going `dir` in a run
    /// seeded with `seed`. Every fault draws from its own numbers, so changing one probability
    /// changes no other fault's decisions.
    pub fn fate(&self, seed: u64, dir: Direction, phase: u32, index: u64, len: usize) -> Fate {
        let mut mix = Rng::new(seed ^ (dir.index() as u64 + 1).wrapping_mul(0xa076_1d64_78bd_642f));
        let phase_key = mix.next_u64() ^ u64::from(phase).wrapping_mul(0xe703_7ed1_a0b4_28db);
        let mut rng = Rng::new(Rng::new(phase_key).next_u64() ^ index.wrapping_mul(0x8ebc_6af0_9c88_c6e3));
        let u: [f64; 6] = std::array::from_fn(|_| rng.unit());
        let (truncate_pick, corrupt_pick) = (rng.next_u64(), rng.next_u64());
        let lost = u[0] < self.loss;
        let truncate_to = (u[1] < self.truncate && len > 1).then(|| 1 + (truncate_pick % (len as u64 - 1)) as usize);
        let kept = truncate_to.unwrap_or(len);
        let corrupt_bit = (u[2] < self.corrupt && kept > 0).then(|| (corrupt_pick % (kept as u64 * 8)) as usize);
        Fate {
            lost,
            truncate_to,
            corrupt_bit,
            pack: u[3] < self.pack,
            duplicate: u[4] < self.duplicate,
            reorder: u[5] < self.reorder,
        }
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("none");
        }
        let mut parts = Vec::new();
        for (name, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
            ("truncate", self.truncate),
            ("pack", self.pack),
        ] {
            if p > 0.0 {
                parts.push(format!("{name} {p}"));
            }
        }
        if !self.delay.is_zero() {
            parts.push(format!("delay {} ms", self.delay.as_millis()));
        }
        if let Some(mtu) = self.mtu {
            parts.push(format!("mtu {mtu}"));
        }
        parts.extend(self.targets.iter().map(ToString::to_string));
        f.write_str(&parts.join(", "))
    }
}

// ===== counters =====

/// What the proxy did to one direction's datagrams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Datagrams received from the sender.
    pub received: u64,
    /// Datagrams sent on (a duplicate counts, a packed pair counts once).
    pub forwarded: u64,
    /// Lost at random.
    pub dropped: u64,
    /// Dropped by a [`Target`].
    pub targeted: u64,
    /// Sent twice.
    pub duplicated: u64,
    /// Held back behind a later datagram.
    pub reordered: u64,
    /// With one bit flipped.
    pub corrupted: u64,
    /// Cut short.
    pub truncated: u64,
    /// Joined an earlier datagram.
    pub packed: u64,
    /// Dropped for exceeding the MTU.
    pub oversize: u64,
    /// Datagrams from an address other than the client's or the server's, ignored.
    pub ignored: u64,
}

impl DirectionStats {
    /// Faults injected: every counter but `received`, `forwarded` and `ignored`.
    pub fn faults(&self) -> u64 {
        self.dropped
            + self.targeted
            + self.duplicated
            + self.reordered
            + self.corrupted
            + self.truncated
            + self.packed
            + self.oversize
    }

    /// What happened since `earlier` (counter by counter).
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            received: self.received - earlier.received,
            forwarded: self.forwarded - earlier.forwarded,
            dropped: self.dropped - earlier.dropped,
            targeted: self.targeted - earlier.targeted,
            duplicated: self.duplicated - earlier.duplicated,
            reordered: self.reordered - earlier.reordered,
            corrupted: self.corrupted - earlier.corrupted,
            truncated: self.truncated - earlier.truncated,
            packed: self.packed - earlier.packed,
            oversize: self.oversize - earlier.oversize,
            ignored: self.ignored - earlier.ignored,
        }
    }
}

impl fmt::Display for DirectionStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received {}, forwarded {}, dropped {}, targeted {}, duplicated {}, reordered {}, corrupted {}, \
             truncated {}, packed {}, oversize {}, ignored {}",
            self.received,
            self.forwarded,
            self.dropped,
            self.targeted,
            self.duplicated,
            self.reordered,
            self.corrupted,
            self.truncated,
            self.packed,
            self.oversize,
            self.ignored
        )
    }
}

/// What the proxy did, both ways.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams from the client.
    pub to_server: DirectionStats,
    /// Datagrams from the server.
    pub to_client: DirectionStats,
}

impl Stats {
    /// One direction's counters.
    pub fn get(&self, dir: Direction) -> &DirectionStats {
        match dir {
            Direction::ToServer => &self.to_server,
            Direction::ToClient => &self.to_client,
        }
    }

    /// What happened since `earlier`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            to_server: self.to_server.since(&earlier.to_server),
            to_client: self.to_client.since(&earlier.to_client),
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "to server: {}\nto client: {}", self.to_server, self.to_client)
    }
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
    targeted: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    corrupted: AtomicU64,
    truncated: AtomicU64,
    packed: AtomicU64,
    oversize: AtomicU64,
    ignored: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> DirectionStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirectionStats {
            received: get(&self.received),
            forwarded: get(&self.forwarded),
            dropped: get(&self.dropped),
            targeted: get(&self.targeted),
            duplicated: get(&self.duplicated),
            reordered: get(&self.reordered),
            corrupted: get(&self.corrupted),
            truncated: get(&self.truncated),
            packed: get(&self.packed),
            oversize: get(&self.oversize),
            ignored: get(&self.ignored),
        }
    }
}

// ===== the proxy =====

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
    /// Where a wake-up datagram reaches each forwarding thread.
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
        let wake = vec![reachable(addr), reachable(back.local_addr()?)];
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            counters: Default::default(),
            seen: Default::default(),
            phases: [
                Mutex::new(Phase { number: 0, faults: to_server }),
                Mutex::new(Phase { number: 0, faults: to_client }),
            ],
            client: OnceLock::new(),
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
        Stats { to_server: self.shared.counters[0].snapshot(), to_client: self.shared.counters[1].snapshot() }
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
            if let Ok(waker) = UdpSocket::bind(SocketAddr::new(self.wake[0].ip(), 0)) {
                for to in &self.wake {
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

/// A targeted drop and how far it got.
#[derive(Debug)]
struct TargetState {
    target: Target,
    left: u32,
    /// The flight transmission being dropped: the other direction's count when it started, and
    /// when its last datagram arrived.
    window: Option<(u64, Instant)>,
}

/// A datagram waiting for a companion to travel with.
#[derive(Debug)]
struct Pending {
    until: Instant,
    data: Vec<u8>,
    fate: Fate,
}

/// A datagram held back for reordering.
#[derive(Debug)]
struct Held {
    until: Instant,
    data: Vec<u8>,
    copies: usize,
}

/// One direction's forwarding thread.
struct Pipe {
    dir: Direction,
    rx: UdpSocket,
    tx: UdpSocket,
    upstream: SocketAddr,
    seed: u64,
    shared: Arc<Shared>,
    phase: u32,
    faults: Faults,
    index: u64,
    targets: Vec<TargetState>,
    pending: Option<Pending>,
    held: Option<Held>,
    /// Datagrams to send, with when.
    out: VecDeque<(Instant, Vec<u8>)>,
    /// Print every datagram and its fate to stderr ([`TRACE_VAR`]).
    trace: bool,
}

impl Pipe {
    fn new(dir: Direction, rx: UdpSocket, tx: UdpSocket, upstream: SocketAddr, seed: u64, shared: Arc<Shared>) -> Self {
        let mut pipe = Self {
            dir,
            rx,
            tx,
            upstream,
            seed,
            shared,
            phase: 0,
            faults: Faults::none(),
            index: 0,
            targets: Vec::new(),
            pending: None,
            held: None,
            out: VecDeque::new(),
            trace: std::env::var_os(TRACE_VAR).is_some_and(|v| v != "0"),
        };
        pipe.reload(true);
        pipe
    }

    fn counters(&self) -> &Counters {
        &self.shared.counters[self.dir.index()]
    }

    /// Takes new faults if the phase changed.
    fn reload(&mut self, force: bool) {
        let phase = lock(&self.shared.phases[self.dir.index()]);
        if force || phase.number != self.phase {
            self.phase = phase.number;
            self.faults = phase.faults.clone();
            self.index = 0;
            self.targets = self
                .faults
                .targets
                .iter()
                .map(|&target| TargetState { target, left: target.times, window: None })
                .collect();
        }
    }

    fn run(mut self) {
        let mut buf = vec![0u8; 65_536];
        while !self.shared.stop.load(Ordering::SeqCst) {
            self.release(Instant::now());
            let wait = self.next_deadline().map_or(IDLE_POLL, |d| d.saturating_duration_since(Instant::now()));
            if self.rx.set_read_timeout(Some(wait.max(Duration::from_millis(1)))).is_err() {
                break;
            }
            match self.rx.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if self.shared.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if self.accepts(from) {
                        self.datagram(buf[..n].to_vec(), Instant::now());
                    } else {
                        bump(&self.counters().ignored);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => panic!("fault proxy ({}): receive failed: {e}", self.dir),
            }
        }
    }

    /// Whether a datagram from `from` belongs to this direction.
    fn accepts(&self, from: SocketAddr) -> bool {
        match self.dir {
            Direction::ToServer => *self.shared.client.get_or_init(|| from) == from,
            Direction::ToClient => from == self.upstream,
        }
    }

    /// Takes in one datagram from the sender.
    fn datagram(&mut self, mut data: Vec<u8>, now: Instant) {
        bump(&self.counters().received);
        self.reload(false);
        let index = self.index;
        self.index += 1;
        if self.trace {
            let fate = self.faults.fate(self.seed, self.dir, self.phase, index, data.len());
            eprintln!(
                "fault proxy {} phase {} #{index}: {} bytes {:02x?}.. {fate:?}",
                self.dir,
                self.phase,
                data.len(),
                &data[..data.len().min(16)]
            );
        }
        let other_seen = self.shared.seen[self.dir.other().index()].load(Ordering::SeqCst);
        self.shared.seen[self.dir.index()].fetch_add(1, Ordering::SeqCst);

        if self.faults.mtu.is_some_and(|mtu| data.len() > mtu) {
            bump(&self.counters().oversize);
            return;
        }
        if self.targeted(&data, now, other_seen) {
            bump(&self.counters().targeted);
            return;
        }
        let fate = self.faults.fate(self.seed, self.dir, self.phase, index, data.len());
        if fate.lost {
            bump(&self.counters().dropped);
            return;
        }
        if let Some(len) = fate.truncate_to {
            data.truncate(len);
            bump(&self.counters().truncated);
        }
        if let Some(bit) = fate.corrupt_bit {
            data[bit / 8] ^= 1 << (bit % 8);
            bump(&self.counters().corrupted);
        }
        if let Some(p) = self.pending.take() {
            if p.data.len() + data.len() <= self.size_limit() {
                let mut joined = p.data;
                joined.extend_from_slice(&data);
                bump(&self.counters().packed);
                self.send_on(joined, fate, now);
                return;
            }
            // Too big together: the waiting one goes alone, this one may wait in turn.
            self.send_on(p.data, p.fate, now);
        }
        if fate.pack {
            self.pending = Some(Pending { until: now + self.faults.pack_window, data, fate });
            return;
        }
        self.send_on(data, fate, now);
    }

    fn size_limit(&self) -> usize {
        self.faults.mtu.unwrap_or(MAX_DATAGRAM).min(MAX_DATAGRAM)
    }

    /// Whether a target drops this datagram.
    fn targeted(&mut self, data: &[u8], now: Instant, other_seen: u64) -> bool {
        let mut drop = false;
        for t in &mut self.targets {
            let marked = t.target.marker.found_in(data);
            if let Some((seen, last)) = t.window {
                if seen == other_seen && !marked && now.duration_since(last) <= FLIGHT_GAP {
                    t.window = Some((seen, now));
                    drop = true;
                    continue;
                }
                t.window = None;
            }
            if marked && t.left > 0 {
                t.left -= 1;
                if t.target.whole_flight {
                    t.window = Some((other_seen, now));
                }
                drop = true;
            }
        }
        drop
    }

    /// Duplication and reordering, then the delay.
    fn send_on(&mut self, data: Vec<u8>, fate: Fate, now: Instant) {
        let copies = if fate.duplicate {
            bump(&self.counters().duplicated);
            2
        } else {
            1
        };
        if fate.reorder && self.held.is_none() {
            bump(&self.counters().reordered);
            self.held = Some(Held { until: now + self.faults.reorder_hold, data, copies });
            return;
        }
        for _ in 0..copies {
            self.out.push_back((now + self.faults.delay, data.clone()));
        }
        if let Some(h) = self.held.take() {
            for _ in 0..h.copies {
                self.out.push_back((now + self.faults.delay, h.data.clone()));
            }
        }
    }

    /// Sends what is due; lets go of datagrams that waited long enough.
    fn release(&mut self, now: Instant) {
        if let Some(p) = self.pending.take_if(|p| p.until <= now) {
            self.send_on(p.data, p.fate, now);
        }
        if let Some(h) = self.held.take_if(|h| h.until <= now) {
            for _ in 0..h.copies {
                self.out.push_back((now + self.faults.delay, h.data.clone()));
            }
        }
        while self.out.front().is_some_and(|(at, _)| *at <= now) {
            let (_, data) = self.out.pop_front().expect("front");
            let to = match self.dir {
                Direction::ToServer => Some(self.upstream),
                Direction::ToClient => self.shared.client.get().copied(),
            };
            // A peer not listening (yet, or any more) loses the datagram: its sender retransmits.
            if let Some(to) = to {
                if self.tx.send_to(&data, to).is_ok() {
                    bump(&self.counters().forwarded);
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [self.pending.as_ref().map(|p| p.until), self.held.as_ref().map(|h| h.until), self.out.front().map(|o| o.0)]
            .into_iter()
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    /// A client and a server socket around a proxy, for driving it datagram by datagram.
    struct Rig {
        proxy: FaultProxy,
        client: UdpSocket,
        server: UdpSocket,
    }

    impl Rig {
        fn new(to_server: Faults, to_client: Faults) -> Self {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            server.set_read_timeout(Some(WAIT)).unwrap();
            client.set_read_timeout(Some(WAIT)).unwrap();
            let proxy = FaultProxy::start(server.local_addr().unwrap(), to_server, to_client, 1);
            client.connect(proxy.addr()).unwrap();
            Self { proxy, client, server }
        }

        /// Sends from the client, then waits until the proxy took it in.
        fn send(&self, data: &[u8]) {
            let before = self.proxy.stats().to_server.received;
            self.client.send(data).unwrap();
            self.wait(|s| s.to_server.received > before);
        }

        /// Waits until the counters satisfy `f`.
        fn wait(&self, f: impl Fn(&Stats) -> bool) {
            let deadline = Instant::now() + WAIT;
            while !f(&self.proxy.stats()) {
                assert!(Instant::now() < deadline, "counters stuck at {:?}", self.proxy.stats());
                thread::yield_now();
            }
        }

        /// The next datagram at the server, and where it came from.
        fn at_server(&self) -> (Vec<u8>, SocketAddr) {
            let mut buf = vec![0u8; 70_000];
            let (n, from) = self.server.recv_from(&mut buf).expect("a datagram at the server");
            (buf[..n].to_vec(), from)
        }

        /// Sends everything so far through with a datagram that has no faults, and returns
        /// what the server received before it.
        fn drain_at_server(&self) -> Vec<Vec<u8>> {
            self.proxy.set_faults(Direction::ToServer, Faults::none());
            self.send(b"fence");
            let mut got = Vec::new();
            loop {
                let (d, _) = self.at_server();
                if d == b"fence" {
                    return got;
                }
                got.push(d);
            }
        }
    }

    /// A plaintext record carrying one handshake fragment of `msg_type`.
    fn handshake_record(msg_type: u8, body: &[u8]) -> Vec<u8> {
        let len = body.len() as u8;
        let mut hs = vec![msg_type, 0, 0, len, 0, 0, 0, 0, 0, 0, 0, len];
        hs.extend_from_slice(body);
        let mut rec = vec![CONTENT_HANDSHAKE, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, hs.len() as u8];
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn forwards_both_ways_to_the_first_client() {
        let rig = Rig::new(Faults::none(), Faults::none());
        rig.send(b"hello");
        let (d, back) = rig.at_server();
        assert_eq!(d, b"hello");
        rig.server.send_to(b"answer", back).unwrap();
        let mut buf = [0u8; 100];
        let n = rig.client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"answer");
        assert_eq!(rig.proxy.client(), Some(rig.client.local_addr().unwrap()));
        // Another client is ignored.
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.send_to(b"intruder", rig.proxy.addr()).unwrap();
        rig.wait(|s| s.to_server.ignored == 1);
        let mut proxy = rig.proxy;
        let stats = proxy.stop();
        assert_eq!((stats.to_server.received, stats.to_server.forwarded), (1, 1));
        assert_eq!((stats.to_client.received, stats.to_client.forwarded), (1, 1));
        assert_eq!(stats.to_server.faults() + stats.to_client.faults(), 0);
        // Stopping twice is fine.
        assert_eq!(proxy.stop(), stats);
    }

    #[test]
    fn loss_then_a_new_phase() {
        let rig = Rig::new(Faults::none().loss(1.0), Faults::none());
        for _ in 0..5 {
            rig.send(b"lost");
        }
        assert_eq!(rig.drain_at_server(), Vec::<Vec<u8>>::new());
        rig.wait(|s| s.to_server.dropped == 5);
        assert_eq!(rig.proxy.phase(Direction::ToServer), 1);
    }

    #[test]
    fn duplicate_reorder_corrupt_truncate() {
        let rig = Rig::new(Faults::none().duplicate(1.0), Faults::none());
        rig.send(b"twice");
        assert_eq!(rig.at_server().0, b"twice");
        assert_eq!(rig.at_server().0, b"twice");

        // The first is held back behind the second.
        rig.proxy.set_faults(Direction::ToServer, Faults { reorder_hold: WAIT, ..Faults::none().reorder(1.0) });
        rig.send(b"first");
        rig.send(b"second");
        assert_eq!(rig.at_server().0, b"second");
        assert_eq!(rig.at_server().0, b"first");
        // With nothing behind it, a held datagram goes after `reorder_hold`.
        rig.proxy.set_faults(Direction::ToServer, Faults::none().reorder(1.0));
        rig.send(b"alone");
        assert_eq!(rig.at_server().0, b"alone");

        rig.proxy.set_faults(Direction::ToServer, Faults::none().corrupt(1.0));
        let original = [0x55u8; 64];
        rig.send(&original);
        let (got, _) = rig.at_server();
        let flipped: u32 = got.iter().zip(&original).map(|(a, b)| (a ^ b).count_ones()).sum();
        assert_eq!((got.len(), flipped), (64, 1));

        rig.proxy.set_faults(Direction::ToServer, Faults::none().truncate(1.0));
        rig.send(&original);
        let (got, _) = rig.at_server();
        assert!(!got.is_empty() && got.len() < 64 && original.starts_with(&got), "{got:?}");

        rig.wait(|s| s.to_server.forwarded == 7);
        let s = rig.proxy.stats().to_server;
        assert_eq!((s.duplicated, s.reordered, s.corrupted, s.truncated), (1, 2, 1, 1));
    }

    #[test]
    fn pack_mtu_and_delay() {
        let pack = Faults { pack: 1.0, pack_window: WAIT, ..Faults::none() };
        let rig = Rig::new(pack.clone(), Faults::none());
        rig.send(b"one,");
        rig.send(b"two");
        assert_eq!(rig.at_server().0, b"one,two");
        rig.wait(|s| s.to_server.packed == 1);

        // Packed datagrams stay within the MTU; larger ones are dropped.
        rig.proxy.set_faults(Direction::ToServer, Faults { mtu: Some(100), ..pack });
        rig.send(&[1; 101]);
        rig.send(&[2; 60]);
        rig.send(&[3; 60]);
        assert_eq!(rig.at_server().0, [2; 60]);
        // [3; 60] still waits for a companion (its fate was decided) when the faults change.
        rig.proxy.set_faults(Direction::ToServer, Faults::none().delay(Duration::from_millis(300)));
        let sent = Instant::now();
        rig.send(b"late");
        assert_eq!(rig.at_server().0, [&[3; 60][..], b"late"].concat());
        assert!(sent.elapsed() >= Duration::from_millis(300));
        // The proxy counts a datagram forwarded after the server may have read it.
        rig.wait(|s| s.to_server.forwarded == 3);
        let s = rig.proxy.stats().to_server;
        assert_eq!((s.oversize, s.packed), (1, 2));
    }

    #[test]
    fn targeted_datagrams_and_flights() {
        use handshake_type::*;
        let to_server = Faults::none().target(Target::datagram(Marker::Handshake(CLIENT_HELLO)).times(2));
        let to_client = Faults::none().target(Target::flight(Marker::Handshake(SERVER_HELLO)));
        let rig = Rig::new(to_server, to_client);
        let ch = handshake_record(CLIENT_HELLO, b"ch");
        rig.send(&ch);
        rig.send(&ch);
        rig.send(&ch);
        let (got, back) = rig.at_server();
        assert_eq!(got, ch);
        assert_eq!(rig.proxy.stats().to_server.targeted, 2);

        // The server's flight: ServerHello, Certificate, ServerHelloDone: all dropped.
        let flight = [
            handshake_record(SERVER_HELLO, b"sh"),
            handshake_record(CERTIFICATE, b"cert"),
            handshake_record(SERVER_HELLO_DONE, b""),
        ];
        let from_server = |d: &[u8]| {
            let before = rig.proxy.stats().to_client.received;
            rig.server.send_to(d, back).unwrap();
            rig.wait(|s| s.to_client.received > before);
        };
        for d in &flight {
            from_server(d);
        }
        // `received` is counted before the drop is: wait for the drop itself.
        rig.wait(|s| s.to_client.targeted == 3);
        // The client speaks: the flight's transmission is over; the retransmission goes through.
        rig.send(&ch);
        assert_eq!(rig.at_server().0, ch);
        for d in &flight {
            from_server(d);
        }
        let mut buf = [0u8; 100];
        for d in &flight {
            let n = rig.client.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], d.as_slice());
        }
        assert_eq!(rig.proxy.stats().to_client.targeted, 3);
    }
}
