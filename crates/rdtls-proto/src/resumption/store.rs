//! The client's session store: the newest session per server, bounded, and serialisable.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::{Session, MAX_SESSION_LEN};
use crate::codec::{Put, Reader};

/// The format of [`SessionStore::to_bytes`].
const STORE_MAGIC: &[u8; 6] = b"RDSS01";

/// A client's sessions, one per server (its name and address), at most a fixed number: a new
/// server's session evicts the least recently used. Give it to
/// [`ConfigBuilder::session_store`](crate::ConfigBuilder::session_store) and the socket
/// layer's clients resume with it; [`to_bytes`](Self::to_bytes) and
/// [`from_bytes`](Self::from_bytes) keep it across runs.
#[derive(Debug)]
pub struct SessionStore {
    capacity: usize,
    /// Most recently used last.
    entries: Mutex<VecDeque<Entry>>,
}

#[derive(Clone, Debug)]
struct Entry {
    server_name: String,
    addr: SocketAddr,
    session: Session,
}

impl SessionStore {
    /// A store of at most `capacity` sessions (at least one, at most 65,535).
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.clamp(1, usize::from(u16::MAX)), entries: Mutex::new(VecDeque::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The most sessions kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many sessions are kept now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The session for the server `server_name` at `addr`, if one is kept and still valid at
    /// `now` (seconds since the Unix epoch); an expired one is dropped.
    pub fn get(&self, server_name: &str, addr: SocketAddr, now: u64) -> Option<Session> {
        let mut entries = self.lock();
        let at = entries.iter().position(|e| e.server_name == server_name && e.addr == addr)?;
        let entry = entries.remove(at)?;
        if !entry.session.is_valid_at(now) {
            return None;
        }
        let session = entry.session.clone();
        entries.push_back(entry);
        Some(session)
    }

    /// Keeps `session` for the server `server_name` at `addr`, replacing the one kept for it.
    /// A session a server gave no ID or ticket for is not kept, nor one under a name longer
    /// than 255 bytes.
    pub fn insert(&self, server_name: &str, addr: SocketAddr, session: Session) {
        if !session.is_resumable() || server_name.len() > 255 {
            return;
        }
        let mut entries = self.lock();
        entries.retain(|e| !(e.server_name == server_name && e.addr == addr));
        entries.push_back(Entry { server_name: server_name.to_owned(), addr, session });
        while entries.len() > self.capacity {
            entries.pop_front();
        }
    }

    /// Forgets the session of the server `server_name` at `addr` (after it failed to resume,
    /// say).
    pub fn remove(&self, server_name: &str, addr: SocketAddr) {
        self.lock().retain(|e| !(e.server_name == server_name && e.addr == addr));
    }

    /// Every session kept, with its server's name and address, least recently used first.
    pub fn entries(&self) -> Vec<(String, SocketAddr, Session)> {
        self.lock().iter().map(|e| (e.server_name.clone(), e.addr, e.session.clone())).collect()
    }

    /// Every session, as bytes to keep (secrets included: keep them as secret as a private
    /// key).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let entries = self.lock();
        let mut out = Zeroizing::new(Vec::with_capacity(16 + 256 * entries.len()));
        out.extend_from_slice(STORE_MAGIC);
        out.put_u16(entries.len() as u16);
        for e in entries.iter() {
            out.put_vec8(e.server_name.as_bytes());
            match e.addr.ip() {
                IpAddr::V4(ip) => out.put_vec8(&ip.octets()),
                IpAddr::V6(ip) => out.put_vec8(&ip.octets()),
            }
            out.put_u16(e.addr.port());
            out.put_len24(|b| e.session.encode(b, usize::MAX));
        }
        out
    }

    /// A store of `capacity` sessions holding those of `bytes` (from
    /// [`to_bytes`](Self::to_bytes)), newest kept if there are more; `None` if the bytes are
    /// not a store.
    pub fn from_bytes(bytes: &[u8], capacity: usize) -> Option<Self> {
        let store = Self::new(capacity);
        let mut r = Reader::new(bytes);
        if r.take(STORE_MAGIC.len())? != STORE_MAGIC {
            return None;
        }
        let count = r.u16()?;
        let mut entries = VecDeque::new();
        for _ in 0..count {
            let server_name = core::str::from_utf8(r.vec8()?).ok()?.to_owned();
            let ip = match r.vec8()? {
                ip if ip.len() == 4 => IpAddr::from(<[u8; 4]>::try_from(ip).ok()?),
                ip if ip.len() == 16 => IpAddr::from(<[u8; 16]>::try_from(ip).ok()?),
                _ => return None,
            };
            let addr = SocketAddr::new(ip, r.u16()?);
            let encoded = r.vec24()?;
            if encoded.len() > MAX_SESSION_LEN {
                return None;
            }
            let session = Session::from_bytes(encoded)?;
            entries.push_back(Entry { server_name, addr, session });
            if entries.len() > store.capacity {
                entries.pop_front();
            }
        }
        r.finish()?;
        *store.lock() = entries;
        Some(store)
    }
}
