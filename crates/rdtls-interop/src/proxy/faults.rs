//! The faults of one direction, and the seeded randomness that decides each datagram's fate.

use std::fmt;
use std::time::Duration;

use super::*;

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

    pub(super) fn index(self) -> usize {
        match self {
            Self::ToServer => 0,
            Self::ToClient => 1,
        }
    }

    pub(super) fn other(self) -> Self {
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
