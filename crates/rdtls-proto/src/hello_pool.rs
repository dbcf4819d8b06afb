//! Reassembly of fragmented ClientHellos from sources not verified yet.
//!
//! A DTLS 1.3 ClientHello with a post-quantum key share (about 1.5 KB) does not fit one
//! datagram at common MTUs, and what the stateless cookie check needs from it (the version
//! offered, the cookie extension) may be in any fragment. So before any cookie is checked, the
//! endpoint reassembles such a ClientHello here, and only here: a pool with a fixed memory cap
//! shared by all sources, at most one message per source address, a short lifetime, and the
//! oldest entry (the one that went longest without a fragment) evicted first when a new one
//! needs room. A completed message leaves the pool
//! at once and goes through the cookie check like an unfragmented one; if the check fails,
//! nothing of it remains. Nothing else is kept for an unverified source.
//!
//! Every datagram costs a bounded amount of work: at most
//! [`MAX_RECORDS_PER_DATAGRAM`](crate::MAX_RECORDS_PER_DATAGRAM) records are read, a message
//! tracks at most 64 disjoint byte ranges (`handshake::reassembly`), and finding, inserting and
//! evicting entries are hash-map and ordered-map operations. Nothing is sent for a message until
//! it is complete, and then the answer (a HelloRetryRequest or HelloVerifyRequest, about 100
//! bytes) is smaller than the message: a spoofed source gains no amplification from the pool.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::enums::{ContentType, HandshakeType};
use crate::handshake::reassembly::{Inserted, Partial};
use crate::handshake::MAX_CLIENT_HELLO_SEQ;
use crate::messages::HandshakeHeader;
use crate::record::{RecordHeader, HEADER_LEN};

/// Default cap on the memory the pool charges, all entries together: 256 KiB, room for about
/// 120 pending ClientHellos of 1.5 KB (with the overhead each is charged), or 29 of the largest.
pub const DEFAULT_HELLO_POOL_BYTES: usize = 256 * 1024;

/// Largest ClientHello the pool reassembles: 8 KiB, five times a ClientHello with a hybrid
/// key share, with room for tickets and many extensions. Larger ones are dropped.
pub const MAX_POOLED_HELLO: usize = 8 * 1024;

/// How long an entry lives after its last fragment. The fragments of one flight come
/// together, and a client that lost one sends them all again after its retransmission timeout
/// (1 s, doubling): on a lossy link, the fragments of successive transmissions add up. Memory
/// does not depend on it (the cap does, and the oldest entries go first).
pub const HELLO_POOL_LIFETIME: Duration = Duration::from_secs(10);

/// What an entry costs besides its message: the entry, its map slots and the most range
/// bookkeeping a message can have (64 ranges of 8 bytes).
pub const HELLO_POOL_ENTRY_OVERHEAD: usize = 640;

/// What became of a datagram offered to the pool.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pooled {
    /// Held; the message is not complete yet.
    Held,
    /// The message is complete: a datagram of one record holding all of it, to be checked
    /// as if it had arrived so. The entry is gone from the pool.
    Complete(Vec<u8>),
    /// Not a ClientHello fragment the pool takes (or over its limits): dropped.
    Dropped,
}

/// One source's message in progress.
#[derive(Debug)]
struct Entry {
    /// Order of the last fragment, the key of `HelloPool::order`.
    serial: u64,
    /// When the last fragment came.
    touched: Instant,
    message: Partial,
    /// The record version of the first fragment seen, and the record sequence number of the
    /// fragment at offset 0 (or the highest seen, until it comes), for the record the
    /// completed message is put in: a network duplicate of that fragment, arriving after the
    /// connection started, is then a replay the connection drops, not a sign that the client
    /// is retransmitting (which would make the server send its flight again).
    version: u16,
    record_seq: u64,
    has_first: bool,
}

impl Entry {
    fn cost(&self) -> usize {
        self.message.len() + HELLO_POOL_ENTRY_OVERHEAD
    }
}

/// The pool (see the module documentation).
#[derive(Debug)]
pub(crate) struct HelloPool {
    entries: HashMap<SocketAddr, Entry>,
    /// Entries by their last fragment, oldest first: evicted and expired from the front.
    order: BTreeMap<u64, SocketAddr>,
    next_serial: u64,
    bytes: usize,
    cap: usize,
    evicted: u64,
}

impl Default for HelloPool {
    fn default() -> Self {
        Self::new(DEFAULT_HELLO_POOL_BYTES)
    }
}

impl HelloPool {
    pub(crate) fn new(cap: usize) -> Self {
        Self { entries: HashMap::new(), order: BTreeMap::new(), next_serial: 0, bytes: 0, cap, evicted: 0 }
    }

    /// Changes the memory cap; entries over it are evicted, oldest first.
    pub(crate) fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
        while self.bytes > self.cap && self.evict_oldest() {}
    }

    /// Memory charged now (messages and overhead).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Messages in progress.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries evicted to make room for newer ones.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Whether `remote` has a message in progress.
    pub(crate) fn holds(&self, remote: &SocketAddr) -> bool {
        self.entries.contains_key(remote)
    }

    /// Offers a datagram from `remote` whose records hold ClientHello fragments.
    pub(crate) fn offer(&mut self, now: Instant, remote: SocketAddr, datagram: &[u8]) -> Pooled {
        self.expire(now);
        let mut rest = datagram;
        let mut any = false;
        for _ in 0..crate::record::MAX_RECORDS_PER_DATAGRAM {
            let Some(rec) = RecordHeader::parse(rest) else { break };
            let Some(fragment) = rest.get(HEADER_LEN..HEADER_LEN + usize::from(rec.length)) else { break };
            rest = &rest[HEADER_LEN + fragment.len()..];
            if rec.content_type != ContentType::HANDSHAKE || rec.epoch != 0 || !rec.version.is_dtls() {
                continue;
            }
            let mut r = crate::codec::Reader::new(fragment);
            // Several fragments may share a record; the record's length bounds the walk.
            while let Some((h, bytes)) = HandshakeHeader::parse(&mut r) {
                if let Some(done) = self.insert(now, remote, rec.version.0, rec.seq, &h, bytes) {
                    return done;
                }
                any = true;
            }
        }
        match any && self.entries.contains_key(&remote) {
            true => Pooled::Held,
            false => Pooled::Dropped,
        }
    }

    /// Adds one fragment; `Some` when it completed the message or cannot be taken.
    fn insert(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        version: u16,
        record_seq: u64,
        h: &HandshakeHeader,
        bytes: &[u8],
    ) -> Option<Pooled> {
        let len = h.length as usize;
        let end = u64::from(h.fragment_offset) + bytes.len() as u64;
        if h.msg_type != HandshakeType::CLIENT_HELLO
            || h.message_seq > MAX_CLIENT_HELLO_SEQ
            || len > MAX_POOLED_HELLO
            || len + HELLO_POOL_ENTRY_OVERHEAD > self.cap
            || bytes.is_empty()
            || end > len as u64
        {
            return Some(Pooled::Dropped);
        }
        if !self.entries.get(&remote).is_some_and(|e| e.message.matches(h)) {
            // Another message from this source takes the source's one place: a new ClientHello,
            // a late copy of an older one, or a spoofer's. The latest always wins, so no piece
            // (of any message_seq) can pin a source's place against the client's own pieces;
            // a late copy costs the client the pieces held, which its retransmission brings
            // again.
            self.remove(&remote);
            while self.bytes + len + HELLO_POOL_ENTRY_OVERHEAD > self.cap {
                if !self.evict_oldest() {
                    return Some(Pooled::Dropped);
                }
            }
            let serial = self.next_serial;
            self.next_serial += 1;
            let message = Partial::new(h.msg_type, h.message_seq, 0, len);
            let entry = Entry { serial, touched: now, message, version, record_seq, has_first: false };
            self.bytes += entry.cost();
            self.order.insert(serial, remote);
            self.entries.insert(remote, entry);
        }
        let entry = self.entries.get_mut(&remote)?;
        match entry.message.add(h.fragment_offset, bytes) {
            Inserted::Dropped => {
                // Bytes that disagree with those held, or too scattered: the source's message
                // starts again from this fragment (a spoofed fragment cannot pin a real
                // client's place with a wrong first one).
                self.remove(&remote);
                return self.insert(now, remote, version, record_seq, h, bytes);
            }
            Inserted::Buffered | Inserted::Duplicate | Inserted::Old => {
                // The client is still sending it (a retransmission brings every fragment
                // again, and the lost ones may be others each time): the entry is young
                // again, at the back of the eviction order.
                entry.touched = now;
                self.order.remove(&entry.serial);
                entry.serial = self.next_serial;
                self.next_serial += 1;
                self.order.insert(entry.serial, remote);
            }
        }
        if h.fragment_offset == 0 && !entry.has_first {
            (entry.record_seq, entry.has_first) = (record_seq, true);
        } else if !entry.has_first {
            entry.record_seq = entry.record_seq.max(record_seq);
        }
        if !entry.message.complete() {
            return None;
        }
        let entry = self.remove(&remote)?;
        Some(Pooled::Complete(whole_datagram(&entry)))
    }

    /// Removes `remote`'s entry.
    fn remove(&mut self, remote: &SocketAddr) -> Option<Entry> {
        let entry = self.entries.remove(remote)?;
        self.order.remove(&entry.serial);
        self.bytes -= entry.cost();
        Some(entry)
    }

    fn evict_oldest(&mut self) -> bool {
        let Some((serial, remote)) = self.order.pop_first() else { return false };
        if self.entries.get(&remote).is_some_and(|e| e.serial == serial) {
            if let Some(entry) = self.entries.remove(&remote) {
                self.bytes -= entry.cost();
                self.evicted += 1;
            }
        }
        true
    }

    /// Drops the entries that had no fragment for [`HELLO_POOL_LIFETIME`].
    fn expire(&mut self, now: Instant) {
        while let Some((&serial, &remote)) = self.order.first_key_value() {
            match self.entries.get(&remote) {
                Some(e) if e.serial == serial && now.saturating_duration_since(e.touched) < HELLO_POOL_LIFETIME => {
                    break
                }
                Some(e) if e.serial == serial => {
                    self.remove(&remote);
                }
                // A slot that names no entry cannot exist; never loop on one.
                _ => {
                    self.order.remove(&serial);
                }
            }
        }
    }
}

/// The completed message as one datagram: one epoch-0 record holding it whole.
fn whole_datagram(entry: &Entry) -> Vec<u8> {
    let body = entry.message.body();
    let mut out = Vec::with_capacity(HEADER_LEN + 12 + body.len());
    RecordHeader {
        content_type: ContentType::HANDSHAKE,
        version: crate::enums::ProtocolVersion(entry.version),
        epoch: 0,
        seq: entry.record_seq,
        length: (12 + body.len()) as u16,
    }
    .write(&mut out);
    HandshakeHeader {
        msg_type: HandshakeType::CLIENT_HELLO,
        length: body.len() as u32,
        message_seq: entry.message.seq(),
        fragment_offset: 0,
        fragment_length: body.len() as u32,
    }
    .write(&mut out);
    out.extend_from_slice(body);
    out
}

/// Whether `datagram` starts with an epoch-0 handshake record holding a ClientHello fragment
/// that is not the whole message, and whose legacy cookie (if the first fragment) is empty:
/// what the endpoint sends to the pool. A first fragment with a DTLS 1.2 cookie is checked
/// from that fragment alone (the cookie binds only fields before it), as before.
pub(crate) fn wants(datagram: &[u8]) -> bool {
    let Some(rec) = RecordHeader::parse(datagram) else { return false };
    if rec.content_type != ContentType::HANDSHAKE || rec.epoch != 0 {
        return false;
    }
    let Some(fragment) = datagram.get(HEADER_LEN..HEADER_LEN + usize::from(rec.length)) else { return false };
    let mut r = crate::codec::Reader::new(fragment);
    let Some((h, bytes)) = HandshakeHeader::parse(&mut r) else { return false };
    if h.msg_type != HandshakeType::CLIENT_HELLO || h.is_whole() {
        return false;
    }
    if h.fragment_offset != 0 {
        return true;
    }
    // client_version (2), random (32), session_id (1 + n), then the cookie's length; a first
    // fragment too short to hold it goes to the pool too.
    let mut b = crate::codec::Reader::new(bytes);
    let cookie_len = b.take(34).and_then(|_| b.vec8()).and_then(|_| b.u8());
    cookie_len.is_none_or(|n| n == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram of one record holding one ClientHello fragment.
    fn fragment(seq: u64, message_seq: u16, length: u32, offset: u32, bytes: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        RecordHeader {
            content_type: ContentType::HANDSHAKE,
            version: crate::enums::ProtocolVersion::DTLS1_2,
            epoch: 0,
            seq,
            length: (12 + bytes.len()) as u16,
        }
        .write(&mut d);
        HandshakeHeader {
            msg_type: HandshakeType::CLIENT_HELLO,
            length,
            message_seq,
            fragment_offset: offset,
            fragment_length: bytes.len() as u32,
        }
        .write(&mut d);
        d.extend_from_slice(bytes);
        d
    }

    /// Thousands of random fragments from a few hundred sources, with time passing: after every
    /// one, the charged bytes are the sum of the entries' costs, within the cap, and every
    /// entry has exactly one slot in the eviction order.
    #[test]
    fn bookkeeping_holds_under_random_traffic() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let start = Instant::now();
        let mut pool = HelloPool::new(64 * 1024);
        let mut completed = 0;
        for i in 0..20_000u64 {
            let now = start + Duration::from_millis(i * 3);
            let source = SocketAddr::from(([10, 0, (next() % 3) as u8, (next() % 100) as u8], 5000));
            let length = [300u32, 1500, 8192, 9000][(next() % 4) as usize];
            let offset = (next() % u64::from(length)) as u32 / 100 * 100;
            let len = (next() % 700 + 1).min(u64::from(length - offset)) as usize;
            let seq = (next() % 2) as u16;
            let d = fragment(i, seq, length, offset, &vec![seq as u8; len]);
            if matches!(pool.offer(now, source, &d), Pooled::Complete(_)) {
                completed += 1;
            }
            if i % 5_000 == 0 {
                pool.set_cap([64 * 1024, 16 * 1024, 2048][(i / 5_000 % 3) as usize]);
            }
            let cost: usize = pool.entries.values().map(Entry::cost).sum();
            assert_eq!(pool.bytes, cost, "#{i}");
            assert!(pool.bytes <= pool.cap, "#{i}");
            assert_eq!(pool.order.len(), pool.entries.len(), "#{i}");
            assert!(pool.entries.iter().all(|(a, e)| pool.order.get(&e.serial) == Some(a)), "#{i}");
        }
        assert!(completed > 0 && pool.evicted() > 0, "{completed} completed, {} evicted", pool.evicted());
    }

    #[test]
    fn a_message_completes_once_and_leaves() {
        let now = Instant::now();
        let mut pool = HelloPool::default();
        let a: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let body: Vec<u8> = (0..200u8).collect();
        assert_eq!(pool.offer(now, a, &fragment(7, 0, 200, 100, &body[100..])), Pooled::Held);
        // An overlapping piece that agrees is taken; the last piece completes it.
        assert_eq!(pool.offer(now, a, &fragment(8, 0, 200, 50, &body[50..150])), Pooled::Held);
        let Pooled::Complete(whole) = pool.offer(now, a, &fragment(9, 0, 200, 0, &body[..50])) else {
            panic!("not complete")
        };
        assert_eq!((pool.len(), pool.bytes()), (0, 0));
        // One record, the message whole, the record number of the piece at offset 0.
        let rec = RecordHeader::parse(&whole).unwrap();
        assert_eq!((rec.seq, usize::from(rec.length)), (9, 12 + 200));
        assert_eq!(&whole[HEADER_LEN + 12..], &body[..]);
        // Not a ClientHello, or beyond its message: not taken.
        let mut other = fragment(1, 0, 200, 0, &body[..10]);
        other[HEADER_LEN] = 2;
        assert_eq!(pool.offer(now, a, &other), Pooled::Dropped);
        assert_eq!(pool.offer(now, a, &fragment(1, 0, 200, 195, &body[..10])), Pooled::Dropped);
        assert_eq!(pool.offer(now, a, &fragment(1, 0, 9000, 0, &body[..10])), Pooled::Dropped, "over 8 KiB");
        assert_eq!(pool.len(), 0);
    }
}
