//! A seeded, simulated network on virtual time, for driving a client [`Connection`] against a
//! server [`Endpoint`] through loss, duplication, reordering and an MTU limit.
//!
//! A run is a pure function of its seed when its configurations turn retransmission jitter
//! off (`retransmit_jitter(false)`): the crypto provider's random bytes then change the
//! contents of datagrams, not their timing (an ECDSA signature's length still varies by a
//! byte or two). With jitter on, the timers draw on those random bytes too, so a failure near
//! a deadline may not replay from the seed it prints.

#![allow(dead_code, unreachable_pub)]

pub mod pki;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls_proto::{Config, Connection, ConnectionHandle, DatagramEvent, Endpoint, Error, HandshakeState};

/// splitmix64: small, seedable, deterministic.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

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

    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Impairments of one direction of the link.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability a datagram is held back (up to `reorder_delay` more), so later ones overtake it.
    pub reorder: f64,
    pub reorder_delay: Duration,
    /// One-way delay.
    pub delay: Duration,
    /// Datagrams larger than this are dropped (as an IP path would).
    pub mtu: usize,
    /// Probability one random bit of a datagram is flipped.
    pub corrupt: f64,
    /// Probability a datagram is cut short at a random length.
    pub truncate: f64,
    /// Probability a datagram is packed into the previous one still in flight (one datagram
    /// carrying both, as a middlebox or a coalescing sender might).
    pub pack: f64,
}

impl Link {
    pub const PERFECT: Self = Self {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        reorder_delay: Duration::ZERO,
        delay: Duration::from_millis(10),
        mtu: 65_507,
        corrupt: 0.0,
        truncate: 0.0,
        pack: 0.0,
    };

    pub fn lossy(loss: f64, mtu: usize) -> Self {
        Self {
            loss,
            duplicate: 0.05,
            reorder: 0.2,
            reorder_delay: Duration::from_millis(30),
            delay: Duration::from_millis(10),
            mtu,
            corrupt: 0.0,
            truncate: 0.0,
            pack: 0.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum To {
    Client,
    Server,
}

#[derive(Debug)]
struct Packet {
    at: Instant,
    order: u64,
    to: To,
    data: Vec<u8>,
}

/// What crossed the wire, for assertions and for comparing runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// (virtual ms since start, direction, size) of every datagram sent.
    pub sent: Vec<(u128, To, usize)>,
    pub lost: usize,
    pub oversize: usize,
    pub corrupted: usize,
    pub truncated: usize,
    pub packed: usize,
}

/// Decides whether a datagram sent in direction `To` is dropped.
pub type Filter = Box<dyn FnMut(To, &[u8]) -> bool>;

/// A client connection and a server endpoint joined by an impaired link.
pub struct Sim {
    pub rng: Rng,
    pub start: Instant,
    pub now: Instant,
    pub to_server: Link,
    pub to_client: Link,
    pub client: Connection,
    pub client_addr: SocketAddr,
    pub endpoint: Endpoint,
    pub server_conns: HashMap<ConnectionHandle, Connection>,
    pub client_error: Option<Error>,
    pub server_errors: Vec<Error>,
    /// Application data each side received, in order.
    pub client_received: Vec<Vec<u8>>,
    pub server_received: Vec<Vec<u8>>,
    pub trace: Trace,
    /// Called for every datagram put on the link: `true` drops it (targeted loss).
    pub filter: Option<Filter>,
    inflight: Vec<Packet>,
    order: u64,
    buf: Vec<u8>,
    /// Bytes the endpoint received since it last answered statelessly: its answer (to a
    /// ClientHello, whole or in fragments) may not be larger.
    unanswered: usize,
}

impl Sim {
    pub fn new(seed: u64, client_cfg: Config, server_cfg: Config, to_server: Link, to_client: Link) -> Self {
        Self::with_server_name(seed, client_cfg, None, server_cfg, to_server, to_client)
    }

    /// Like `new`, with the name the client expects the server's certificate to carry.
    pub fn with_server_name(
        seed: u64,
        client_cfg: Config,
        server_name: Option<&str>,
        server_cfg: Config,
        to_server: Link,
        to_client: Link,
    ) -> Self {
        let start = Instant::now();
        let name = server_name.map(|n| rdtls_proto::pki::ServerName::try_from(n.to_owned()).expect("server name"));
        let client = Connection::client_with_server_name(Arc::new(client_cfg), name, start).expect("client config");
        let endpoint = Endpoint::new(Arc::new(server_cfg), start).expect("server config");
        Self {
            rng: Rng::new(seed),
            start,
            now: start,
            to_server,
            to_client,
            client,
            client_addr: "192.0.2.1:40000".parse().expect("addr"),
            endpoint,
            server_conns: HashMap::new(),
            client_error: None,
            server_errors: Vec::new(),
            client_received: Vec::new(),
            server_received: Vec::new(),
            trace: Trace::default(),
            filter: None,
            inflight: Vec::new(),
            order: 0,
            buf: Vec::new(),
            unanswered: 0,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn server_conn(&self) -> Option<&Connection> {
        self.server_conns.values().next()
    }

    pub fn server_conn_mut(&mut self) -> Option<&mut Connection> {
        self.server_conns.values_mut().next()
    }

    /// Puts a datagram on the link.
    pub fn send(&mut self, to: To, data: Vec<u8>) {
        let link = match to {
            To::Server => self.to_server,
            To::Client => self.to_client,
        };
        self.trace.sent.push(((self.now - self.start).as_millis(), to, data.len()));
        if data.len() > link.mtu {
            self.trace.oversize += 1;
            return;
        }
        if self.filter.as_mut().is_some_and(|f| f(to, &data)) || self.rng.chance(link.loss) {
            self.trace.lost += 1;
            return;
        }
        let mut data = data;
        if self.rng.chance(link.corrupt) && !data.is_empty() {
            let bit = self.rng.below(data.len() as u64 * 8);
            data[(bit / 8) as usize] ^= 1 << (bit % 8);
            self.trace.corrupted += 1;
        }
        if self.rng.chance(link.truncate) && !data.is_empty() {
            let keep = self.rng.below(data.len() as u64) as usize;
            data.truncate(keep);
            self.trace.truncated += 1;
        }
        if self.rng.chance(link.pack) {
            let last = self.inflight.iter_mut().filter(|p| p.to == to).max_by_key(|p| p.order);
            if let Some(p) = last.filter(|p| p.data.len() + data.len() <= link.mtu) {
                p.data.extend_from_slice(&data);
                self.trace.packed += 1;
                return;
            }
        }
        let copies = if self.rng.chance(link.duplicate) { 2 } else { 1 };
        for _ in 0..copies {
            let mut at = self.now + link.delay;
            if self.rng.chance(link.reorder) {
                at += link.reorder_delay.mul_f64(self.rng.unit());
            }
            self.order += 1;
            self.inflight.push(Packet { at, order: self.order, to, data: data.clone() });
        }
    }

    /// Sends everything both sides have queued.
    pub fn flush(&mut self) {
        let mut out = std::mem::take(&mut self.buf);
        while self.client.poll_transmit(&mut out).is_some() {
            self.send(To::Server, out.clone());
        }
        let handles: Vec<_> = self.server_conns.keys().copied().collect();
        for h in handles {
            while self.server_conns.get_mut(&h).is_some_and(|c| c.poll_transmit(&mut out).is_some()) {
                self.send(To::Client, out.clone());
            }
            if self.server_conns.get(&h).is_some_and(Connection::is_closed) {
                self.server_conns.remove(&h);
                self.endpoint.remove(h);
            }
        }
        self.buf = out;
    }

    fn deliver(&mut self, p: Packet) {
        let mut data = p.data;
        match p.to {
            To::Client => {
                if self.client.is_closed() {
                    return;
                }
                match self.client.handle_datagram(self.now, &mut data) {
                    Ok(r) => self.client_received.extend(r.iter().map(<[u8]>::to_vec)),
                    Err(e) => self.client_error = Some(e),
                }
            }
            To::Server => {
                let mut resp = Vec::new();
                self.unanswered += data.len();
                match self.endpoint.handle(self.now, self.client_addr, &data, &mut resp) {
                    DatagramEvent::Respond => {
                        assert!(resp.len() <= self.unanswered, "response larger than the request");
                        self.unanswered = 0;
                        self.send(To::Client, resp);
                    }
                    DatagramEvent::Drop | DatagramEvent::Held => {}
                    DatagramEvent::Incoming(inc) => match self.endpoint.accept(inc, self.now) {
                        Ok((h, c)) => {
                            self.server_conns.insert(h, c);
                        }
                        Err(e) => {
                            self.server_errors.push(e.error);
                            if !e.response.is_empty() {
                                self.send(To::Client, e.response);
                            }
                        }
                    },
                    DatagramEvent::Connection(h) => {
                        if let Some(c) = self.server_conns.get_mut(&h) {
                            match c.handle_datagram(self.now, &mut data) {
                                Ok(r) => self.server_received.extend(r.iter().map(<[u8]>::to_vec)),
                                Err(e) => self.server_errors.push(e),
                            }
                        }
                    }
                }
            }
        }
    }

    /// The next instant anything happens, if anything will.
    fn next_wake(&self) -> Option<Instant> {
        let packets = self.inflight.iter().map(|p| p.at).min();
        let timers = std::iter::once(self.client.poll_timeout())
            .chain(self.server_conns.values().map(Connection::poll_timeout))
            .flatten()
            .min();
        match (packets, timers) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances virtual time to the next event and handles it. Returns `false` when nothing
    /// is left to happen.
    pub fn step(&mut self) -> bool {
        self.flush();
        let Some(t) = self.next_wake() else { return false };
        self.now = self.now.max(t);
        // Deliver due packets in (time, send order) order.
        self.inflight.sort_by_key(|p| (p.at, p.order));
        while self.inflight.first().is_some_and(|p| p.at <= self.now) {
            let p = self.inflight.remove(0);
            self.deliver(p);
            self.flush();
        }
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            if let Err(e) = self.client.handle_timeout(self.now) {
                self.client_error = Some(e);
            }
        }
        let due: Vec<_> = self
            .server_conns
            .iter()
            .filter(|(_, c)| c.poll_timeout().is_some_and(|t| t <= self.now))
            .map(|(h, _)| *h)
            .collect();
        for h in due {
            if let Some(c) = self.server_conns.get_mut(&h) {
                if let Err(e) = c.handle_timeout(self.now) {
                    self.server_errors.push(e);
                }
            }
        }
        self.flush();
        true
    }

    /// Runs until both sides completed the handshake, something failed, or `limit` of virtual
    /// time passed.
    pub fn run_handshake(&mut self, limit: Duration) -> bool {
        while self.elapsed() < limit {
            if self.client.handshake_state() == HandshakeState::Complete
                && self.server_conn().is_some_and(|c| c.handshake_state() == HandshakeState::Complete)
            {
                return true;
            }
            if self.client_error.is_some() {
                return false;
            }
            if !self.step() {
                return false;
            }
        }
        false
    }

    /// Runs until nothing is in flight and no timer is due before `limit` from now.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.flush();
            match self.next_wake() {
                Some(t) if t <= end => {
                    self.step();
                }
                _ => break,
            }
        }
        self.now = self.now.max(end);
    }
}

/// A configuration builder for DTLS 1.2 only (the default is 1.2 and 1.3), for the tests of
/// DTLS 1.2's own messages and records.
pub fn dtls12() -> rdtls_proto::ConfigBuilder {
    Config::builder().protocol_versions(rdtls_proto::Protocol::Dtls1_2, rdtls_proto::Protocol::Dtls1_2)
}

/// Runs both sides until neither has anything to send; returns every datagram the server sent.
pub fn pump(now: Instant, client: &mut Connection, server: &mut Connection) -> Vec<Vec<u8>> {
    let mut from_server = Vec::new();
    let mut buf = Vec::new();
    for _ in 0..16 {
        let mut moved = false;
        while client.poll_transmit(&mut buf).is_some() {
            moved = true;
            let _ = server.handle_datagram(now, &mut buf);
        }
        while server.poll_transmit(&mut buf).is_some() {
            moved = true;
            from_server.push(buf.clone());
            let _ = client.handle_datagram(now, &mut buf);
        }
        if !moved {
            break;
        }
    }
    from_server
}

/// [`pump`], then what the ACK timer sends: post-handshake messages (KeyUpdate,
/// NewSessionTicket) are acknowledged a quarter of the initial retransmission timeout (1 s by
/// default) after they arrive. Returns the time after it.
pub fn pump_with_acks(now: Instant, client: &mut Connection, server: &mut Connection) -> Instant {
    pump(now, client, server);
    let later = now + Duration::from_millis(250);
    client.handle_timeout(later).unwrap();
    server.handle_timeout(later).unwrap();
    pump(later, client, server);
    later
}

/// Every datagram `conn` has queued.
pub fn drain(conn: &mut Connection) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    std::iter::from_fn(|| conn.poll_transmit(&mut buf).map(|_| buf.clone())).collect()
}

/// One application record from `from`, sealed.
pub fn sealed(from: &mut Connection, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    from.send(data, &mut out).unwrap();
    out
}

/// The messages `to` takes out of `datagram` (which must not fail the connection).
pub fn delivered(to: &mut Connection, now: Instant, mut datagram: Vec<u8>) -> Vec<Vec<u8>> {
    to.handle_datagram(now, &mut datagram).unwrap().iter().map(<[u8]>::to_vec).collect()
}

/// A wall clock the tests move (seconds since the Unix epoch), for configurations' time
/// providers: certificate validity, session lifetimes, ticket key periods.
#[derive(Clone)]
pub struct Clock(pub Arc<std::sync::atomic::AtomicU64>);

impl Clock {
    /// Starts at the real time (certificates made for "now" are valid).
    pub fn new() -> Self {
        let now = std::time::SystemTime::now().duration_since(std::time::SystemTime::UNIX_EPOCH).expect("time");
        Self(Arc::new(std::sync::atomic::AtomicU64::new(now.as_secs())))
    }

    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_secs(), std::sync::atomic::Ordering::SeqCst);
    }

    pub fn secs(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `b` with this clock as its time provider.
    pub fn apply(&self, b: rdtls_proto::ConfigBuilder) -> rdtls_proto::ConfigBuilder {
        let t = self.clone();
        b.time_provider(move || rdtls_proto::pki::UnixTime::since_unix_epoch(Duration::from_secs(t.secs())))
    }
}

/// The extensions of the hello that starts a plaintext handshake datagram (one record, one
/// whole message), read with the crate's own hello parsers.
pub fn hello_extensions(datagram: &[u8]) -> rdtls_proto::messages::HelloExtensions {
    use rdtls_proto::messages::{ClientHello, ServerHello};
    let len = u32::from_be_bytes([0, datagram[14], datagram[15], datagram[16]]) as usize;
    let (msg_type, body) = (datagram[13], &datagram[25..25 + len]);
    match msg_type {
        1 => ClientHello::parse(body).unwrap().0.extensions,
        2 => ServerHello::parse(body).unwrap().extensions,
        other => panic!("not a hello: {other}"),
    }
}

/// Inserts `bytes` at `at` in the hello that starts `datagram` (one record, one whole
/// message), and grows the record, the message, its fragment and the extensions block whose
/// length is at `exts_len_at`.
pub fn grow_hello(datagram: &mut Vec<u8>, exts_len_at: usize, at: usize, bytes: &[u8]) {
    let n = u16::try_from(bytes.len()).unwrap();
    let mut add = |i: usize| {
        let v = u16::from_be_bytes([datagram[i], datagram[i + 1]]) + n;
        datagram[i..i + 2].copy_from_slice(&v.to_be_bytes());
    };
    // Record length; handshake and fragment lengths (24-bit, their low 16 bits); extensions.
    for i in [11, 15, 23, exts_len_at] {
        add(i);
    }
    datagram.splice(at..at, bytes.iter().copied());
}

/// Where the extensions block's length is in a DTLS 1.2 ServerHello that starts a datagram:
/// past the headers (25 bytes), version, random, session ID, suite and compression method.
pub fn server_hello_extensions_at(datagram: &[u8]) -> usize {
    25 + 2 + 32 + 1 + usize::from(datagram[25 + 2 + 32]) + 3
}
