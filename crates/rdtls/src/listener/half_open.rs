//! The order in which the serving thread looks at half-open handshakes: by deadline (their
//! retransmission and handshake timers) and by age (the oldest is evicted when the listener is
//! full). Both are queues of entries that go stale instead of being removed: an entry names a
//! handshake and the value it had when it was queued, and one that no longer matches is
//! skipped when it comes up. So arming a timer, starting a handshake and ending one cost
//! O(log n) or O(1), and no pass of the serving loop walks every half-open handshake, however
//! many a flood keeps open (up to `max_half_open`).
//!
//! Stale entries are bounded: a queue holding more than twice the live handshakes (plus a
//! little) is rebuilt from them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use rdtls_proto::ConnectionHandle;

/// Entries a queue may hold beyond twice the live handshakes before it is rebuilt.
const SLACK: usize = 64;

/// Deadlines of half-open handshakes, earliest first.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, ConnectionHandle)>>,
}

impl Deadlines {
    /// Queues `h`'s deadline `at`. The caller keeps `at` as the handshake's armed deadline;
    /// an entry that no longer matches it is stale.
    pub(super) fn arm(&mut self, h: ConnectionHandle, at: Instant) {
        self.heap.push(Reverse((at, h)));
    }

    /// The earliest live deadline; stale entries met on the way are dropped. `armed` tells a
    /// handshake's current deadline (`None`: gone, or no timer).
    pub(super) fn next(&mut self, armed: impl Fn(ConnectionHandle) -> Option<Instant>) -> Option<Instant> {
        while let Some(&Reverse((at, h))) = self.heap.peek() {
            if armed(h) == Some(at) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes the next live handshake whose deadline is at or before `now`.
    pub(super) fn pop_due(
        &mut self,
        now: Instant,
        armed: impl Fn(ConnectionHandle) -> Option<Instant>,
    ) -> Option<ConnectionHandle> {
        while let Some(&Reverse((at, h))) = self.heap.peek() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if armed(h) == Some(at) {
                return Some(h);
            }
        }
        None
    }

    /// Rebuilds the queue from the live deadlines once stale entries outnumber them.
    pub(super) fn compact(&mut self, live: usize, armed: impl Fn(ConnectionHandle) -> Option<Instant>) {
        if self.heap.len() > 2 * live + SLACK {
            self.heap.retain(|Reverse((at, h))| armed(*h) == Some(*at));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }
}

/// Half-open handshakes in the order they started, oldest first.
#[derive(Debug, Default)]
pub(super) struct Ages {
    queue: VecDeque<(Instant, ConnectionHandle)>,
}

impl Ages {
    /// Queues a handshake that started at `started` (no earlier than any queued before it).
    pub(super) fn push(&mut self, h: ConnectionHandle, started: Instant) {
        self.queue.push_back((started, h));
    }

    /// The oldest live handshake; stale entries met on the way are dropped. `started` tells
    /// when a handshake started (`None`: it is gone).
    pub(super) fn oldest(&mut self, started: impl Fn(ConnectionHandle) -> Option<Instant>) -> Option<ConnectionHandle> {
        while let Some(&(at, h)) = self.queue.front() {
            if started(h) == Some(at) {
                return Some(h);
            }
            self.queue.pop_front();
        }
        None
    }

    /// Drops stale entries once they outnumber the live handshakes.
    pub(super) fn compact(&mut self, live: usize, started: impl Fn(ConnectionHandle) -> Option<Instant>) {
        if self.queue.len() > 2 * live + SLACK {
            self.queue.retain(|(at, h)| started(*h) == Some(*at));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    #[test]
    fn deadlines_come_in_order_and_stale_ones_are_skipped() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut armed: HashMap<ConnectionHandle, Instant> = HashMap::new();
        let mut d = Deadlines::default();
        for (h, ms) in [(1, 30), (2, 10), (3, 20)] {
            armed.insert(ConnectionHandle(h), at(ms));
            d.arm(ConnectionHandle(h), at(ms));
        }
        // Handshake 2 re-armed later, handshake 3 gone: their old entries are stale.
        armed.insert(ConnectionHandle(2), at(40));
        d.arm(ConnectionHandle(2), at(40));
        armed.remove(&ConnectionHandle(3));
        let look = |h| armed.get(&h).copied();
        assert_eq!(d.next(look), Some(at(30)));
        assert_eq!(d.pop_due(at(25), look), None, "nothing live is due yet");
        assert_eq!(d.pop_due(at(45), look), Some(ConnectionHandle(1)));
        assert_eq!(d.pop_due(at(45), look), Some(ConnectionHandle(2)));
        assert_eq!(d.pop_due(at(45), look), None);
        assert_eq!(d.next(look), None);
    }

    /// The attacker's case: many handshakes whose timers are re-armed again and again. The
    /// queue stays within twice the live handshakes, and finding the next deadline looks at a
    /// bounded number of entries.
    #[test]
    fn re_arming_keeps_the_deadline_queue_bounded() {
        let t0 = Instant::now();
        let live = 1000u64;
        let mut armed: HashMap<ConnectionHandle, Instant> = HashMap::new();
        let mut d = Deadlines::default();
        for round in 0..50u64 {
            for h in 0..live {
                let at = t0 + Duration::from_millis(round * 1000 + h);
                armed.insert(ConnectionHandle(h), at);
                d.arm(ConnectionHandle(h), at);
                d.compact(armed.len(), |h| armed.get(&h).copied());
                assert!(d.len() <= 2 * armed.len() + SLACK + 1, "{} entries for {} handshakes", d.len(), armed.len());
            }
        }
        let looked = Cell::new(0);
        let next = d.next(|h| {
            looked.set(looked.get() + 1);
            armed.get(&h).copied()
        });
        assert_eq!(next, Some(t0 + Duration::from_millis(49_000)));
        assert!(looked.get() <= 2 * live as usize + SLACK + 1, "looked at {} entries", looked.get());
        // Once the stale entries ahead of it are gone, the next look takes one step.
        looked.set(0);
        d.next(|h| {
            looked.set(looked.get() + 1);
            armed.get(&h).copied()
        });
        assert_eq!(looked.get(), 1);
    }

    #[test]
    fn the_oldest_live_handshake_comes_first_and_the_queue_stays_bounded() {
        let t0 = Instant::now();
        let started: RefCell<HashMap<ConnectionHandle, Instant>> = RefCell::new(HashMap::new());
        let mut a = Ages::default();
        for h in 0..5000u64 {
            let at = t0 + Duration::from_micros(h);
            started.borrow_mut().insert(ConnectionHandle(h), at);
            a.push(ConnectionHandle(h), at);
            // Most handshakes end quickly; one in ten stays open.
            if h % 10 != 0 {
                started.borrow_mut().remove(&ConnectionHandle(h));
            }
            let live = started.borrow().len();
            a.compact(live, |h| started.borrow().get(&h).copied());
            assert!(a.len() <= 2 * live + SLACK + 1);
        }
        let look = |h| started.borrow().get(&h).copied();
        assert_eq!(a.oldest(look), Some(ConnectionHandle(0)));
        started.borrow_mut().remove(&ConnectionHandle(0));
        assert_eq!(a.oldest(look), Some(ConnectionHandle(10)));
        // A handle seen again with another start time is not the same handshake.
        started.borrow_mut().insert(ConnectionHandle(10), t0 + Duration::from_secs(9));
        assert_eq!(a.oldest(look), Some(ConnectionHandle(20)));
    }
}
