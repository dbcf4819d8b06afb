//! One direction's forwarding thread: receive, apply the faults, send on.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

/// A targeted drop and how far it got.
#[derive(Debug)]
pub(super) struct TargetState {
    pub(super) target: Target,
    pub(super) left: u32,
    /// The flight transmission being dropped: the other direction's count when it started, and
    /// when its last datagram arrived.
    pub(super) window: Option<(u64, Instant)>,
}

/// A datagram waiting for a companion to travel with.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) until: Instant,
    pub(super) data: Vec<u8>,
    pub(super) fate: Fate,
}

/// A datagram held back for reordering.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) until: Instant,
    pub(super) data: Vec<u8>,
    pub(super) copies: usize,
}

/// One direction's forwarding thread.
pub(super) struct Pipe {
    pub(super) dir: Direction,
    pub(super) rx: UdpSocket,
    pub(super) tx: UdpSocket,
    pub(super) upstream: SocketAddr,
    pub(super) seed: u64,
    pub(super) shared: Arc<Shared>,
    pub(super) phase: u32,
    pub(super) faults: Faults,
    pub(super) index: u64,
    pub(super) targets: Vec<TargetState>,
    pub(super) pending: Option<Pending>,
    pub(super) held: Option<Held>,
    /// Datagrams to send, with when.
    pub(super) out: VecDeque<(Instant, Vec<u8>)>,
    /// Print every datagram and its fate to stderr ([`TRACE_VAR`]).
    pub(super) trace: bool,
    /// The generation of the back socket this pipe uses (towards the server: `tx`; from it:
    /// `rx`).
    pub(super) generation: u64,
    /// Datagrams forwarded to the server since the last rebinding.
    pub(super) since_rebind: u64,
}

impl Pipe {
    pub(super) fn new(
        dir: Direction,
        rx: UdpSocket,
        tx: UdpSocket,
        upstream: SocketAddr,
        seed: u64,
        shared: Arc<Shared>,
    ) -> Self {
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
            generation: 0,
            since_rebind: 0,
        };
        pipe.reload(true);
        pipe
    }

    pub(super) fn counters(&self) -> &Counters {
        &self.shared.counters[self.dir.index()]
    }

    /// Takes new faults if the phase changed.
    pub(super) fn reload(&mut self, force: bool) {
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

    /// Takes the back socket of a rebinding; returns whether it changed.
    fn follow_rebinding(&mut self) -> bool {
        let Some((generation, socket)) = self.shared.back_since(self.generation) else { return false };
        self.generation = generation;
        self.since_rebind = 0;
        match self.dir {
            Direction::ToServer => self.tx = socket,
            Direction::ToClient => self.rx = socket,
        }
        true
    }

    pub(super) fn run(mut self) {
        let mut buf = vec![0u8; 65_536];
        while !self.shared.stop.load(Ordering::SeqCst) {
            self.follow_rebinding();
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
                    if self.dir == Direction::ToClient && self.follow_rebinding() {
                        // The old port's mapping is gone (this may be the wake-up of the
                        // rebinding itself): lost, as a NAT loses it.
                        continue;
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
    pub(super) fn accepts(&self, from: SocketAddr) -> bool {
        match self.dir {
            Direction::ToServer => *self.shared.client.get_or_init(|| from) == from,
            Direction::ToClient => from == self.upstream,
        }
    }

    /// Takes in one datagram from the sender.
    pub(super) fn datagram(&mut self, mut data: Vec<u8>, now: Instant) {
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

    pub(super) fn size_limit(&self) -> usize {
        self.faults.mtu.unwrap_or(MAX_DATAGRAM).min(MAX_DATAGRAM)
    }

    /// Whether a target drops this datagram.
    pub(super) fn targeted(&mut self, data: &[u8], now: Instant, other_seen: u64) -> bool {
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
    pub(super) fn send_on(&mut self, data: Vec<u8>, fate: Fate, now: Instant) {
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
    pub(super) fn release(&mut self, now: Instant) {
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
                if self.dir == Direction::ToServer {
                    self.rebind_if_due();
                    self.follow_rebinding();
                }
                if self.tx.send_to(&data, to).is_ok() {
                    bump(&self.counters().forwarded);
                    self.since_rebind += 1;
                }
            }
        }
    }

    /// Towards the server, before a datagram goes out: rebinds if [`FaultProxy::rebind_every`]
    /// datagrams went out since the last rebinding. The mapping changes when the client next
    /// sends, as a NAT's does: the server's answers to what went before still arrive.
    fn rebind_if_due(&mut self) {
        let every = self.shared.rebind_every.load(Ordering::Relaxed);
        if every > 0 && self.since_rebind >= every {
            match self.shared.rebind() {
                Ok(_) => {
                    self.follow_rebinding();
                }
                Err(e) => eprintln!("fault proxy: cannot rebind: {e}"),
            }
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        [self.pending.as_ref().map(|p| p.until), self.held.as_ref().map(|h| h.until), self.out.front().map(|o| o.0)]
            .into_iter()
            .flatten()
            .min()
    }
}
