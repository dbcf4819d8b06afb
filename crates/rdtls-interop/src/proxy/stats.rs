//! What the proxy did, counted per direction.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

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
    /// Times the proxy went on from a new port towards the server ([`FaultProxy::rebind`]).
    pub rebinds: u64,
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
            rebinds: self.rebinds - earlier.rebinds,
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "to server: {}\nto client: {}", self.to_server, self.to_client)?;
        if self.rebinds > 0 {
            write!(f, "\nrebinds: {}", self.rebinds)?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) received: AtomicU64,
    pub(super) forwarded: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) targeted: AtomicU64,
    pub(super) duplicated: AtomicU64,
    pub(super) reordered: AtomicU64,
    pub(super) corrupted: AtomicU64,
    pub(super) truncated: AtomicU64,
    pub(super) packed: AtomicU64,
    pub(super) oversize: AtomicU64,
    pub(super) ignored: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(super) fn snapshot(&self) -> DirectionStats {
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
