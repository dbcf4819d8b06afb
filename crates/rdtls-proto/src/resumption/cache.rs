//! The server's session cache: sessions by the ID it gave them, bounded, least recently used
//! first out.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::Session;

/// A server's sessions by session ID (DTLS 1.2), shared by every connection of a
/// configuration. It holds at most its capacity: a new session evicts the least recently
/// used; an expired one is never resumed, and goes when it is looked up or evicted.
#[derive(Debug)]
pub struct SessionCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Session by ID, with the tick of its last use.
    sessions: HashMap<[u8; 32], (u64, Session)>,
    /// IDs by the tick of their last use: the first is the least recently used.
    order: BTreeMap<u64, [u8; 32]>,
    tick: u64,
}

impl SessionCache {
    /// A cache of at most `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, inner: Mutex::new(Inner::default()) }
    }

    /// The most sessions the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many sessions it holds now (expired ones included until they go).
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every session.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.sessions.clear();
        inner.order.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves a consistent map: go on with it.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `session` under `id`, evicting the least recently used session when full.
    pub(crate) fn insert(&self, id: [u8; 32], session: Session) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if let Some((old, _)) = inner.sessions.insert(id, (tick, session)) {
            inner.order.remove(&old);
        }
        inner.order.insert(tick, id);
        while inner.sessions.len() > self.capacity {
            let Some((_, oldest)) = inner.order.pop_first() else { break };
            inner.sessions.remove(&oldest);
        }
    }

    /// The session with `id`, if it is there and valid at `now` (seconds since the Unix
    /// epoch); an expired one is removed.
    pub(crate) fn get(&self, id: &[u8], now: u64) -> Option<Session> {
        let id: [u8; 32] = id.try_into().ok()?;
        let mut inner = self.lock();
        let (tick, session) = inner.sessions.get(&id)?;
        let (tick, valid) = (*tick, session.is_valid_at(now));
        if !valid {
            inner.sessions.remove(&id);
            inner.order.remove(&tick);
            return None;
        }
        inner.tick += 1;
        let fresh = inner.tick;
        inner.order.remove(&tick);
        inner.order.insert(fresh, id);
        let entry = inner.sessions.get_mut(&id)?;
        entry.0 = fresh;
        Some(entry.1.clone())
    }
}
