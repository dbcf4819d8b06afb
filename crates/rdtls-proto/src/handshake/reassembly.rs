//! Handshake message reassembly (RFC 6347 §4.2.3) with bounded buffers.
//!
//! Fragments may arrive out of order, overlap, or repeat. Messages are released strictly in
//! `message_seq` order. Only messages within a small window ahead of the next expected one are
//! buffered; the declared length is checked against the limits *before* any allocation; and the
//! fragments of one message must agree on its type, length and epoch, or they are dropped.

use core::ops::Range;

#[cfg(test)]
use crate::config::DEFAULT_MESSAGE_WINDOW;
use crate::enums::HandshakeType;
use crate::messages::HandshakeHeader;

/// A complete handshake message.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) msg_type: HandshakeType,
    pub(crate) seq: u16,
    pub(crate) body: Vec<u8>,
}

/// What happened to a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// Stored; the message may now be complete.
    Buffered,
    /// Every byte of it was already held: nothing was done.
    Duplicate,
    /// The message was already delivered: the peer is retransmitting.
    Old,
    /// Outside the window, inconsistent, or over a limit: discarded.
    Dropped,
}

/// Most disjoint byte ranges held for one message. A fragment that would open one more is
/// dropped (the peer's retransmission brings it again); fragments that extend, join or fall
/// inside held ranges are always taken, so a peer that retransmits its flight always makes
/// progress. This bounds the bookkeeping of a message to 512 bytes and each insertion to a
/// binary search plus a move of at most this many entries, whatever the fragments.
pub(crate) const MAX_RANGES: usize = 64;

/// The byte ranges received of one message: sorted, disjoint and not touching (`[start, end)`).
#[derive(Debug, Default)]
struct RangeSet {
    ranges: Vec<(u32, u32)>,
}

impl RangeSet {
    /// Whether `[start, end)` is held entirely. O(log n).
    fn covers(&self, start: u32, end: u32) -> bool {
        let i = self.ranges.partition_point(|r| r.0 <= start);
        i > 0 && self.ranges[i - 1].1 >= end
    }

    /// The held ranges that overlap or touch `[start, end)`, as an index range. O(log n).
    fn touching(&self, start: u32, end: u32) -> Range<usize> {
        let first = self.ranges.partition_point(|r| r.1 < start);
        let last = self.ranges.partition_point(|r| r.0 <= end);
        first..last.max(first)
    }

    /// Adds `[start, end)`, merging what it overlaps or touches. Returns `false`, changing
    /// nothing, when that would exceed [`MAX_RANGES`].
    fn insert(&mut self, start: u32, end: u32) -> bool {
        let at = self.touching(start, end);
        if at.is_empty() {
            if self.ranges.len() >= MAX_RANGES {
                return false;
            }
            self.ranges.insert(at.start, (start, end));
            return true;
        }
        let merged = (start.min(self.ranges[at.start].0), end.max(self.ranges[at.end - 1].1));
        self.ranges[at.start] = merged;
        self.ranges.drain(at.start + 1..at.end);
        true
    }

    fn is_whole(&self, len: usize) -> bool {
        match self.ranges.as_slice() {
            [] => len == 0,
            [(0, end)] => *end as usize == len,
            _ => false,
        }
    }
}

/// One message being reassembled (also the unit of the endpoint's pool of unverified
/// ClientHellos, `crate::hello_pool`).
#[derive(Debug)]
pub(crate) struct Partial {
    msg_type: HandshakeType,
    seq: u16,
    epoch: u16,
    /// The declared length: what the message is charged for.
    len: usize,
    /// What has arrived so far, up to the furthest byte received (grown as fragments come: a
    /// message that never completes costs the bytes that came, not its declared length).
    body: Vec<u8>,
    have: RangeSet,
}

impl Partial {
    /// An empty message of `len` bytes (check `len` first: the body may grow to it).
    pub(crate) fn new(msg_type: HandshakeType, seq: u16, epoch: u16, len: usize) -> Self {
        Self { msg_type, seq, epoch, len, body: Vec::new(), have: RangeSet::default() }
    }

    /// Whether a fragment with this header belongs to this message.
    pub(crate) fn matches(&self, h: &HandshakeHeader) -> bool {
        self.msg_type == h.msg_type && self.seq == h.message_seq && self.len == h.length as usize
    }

    /// The message's `message_seq`.
    pub(crate) fn seq(&self) -> u16 {
        self.seq
    }

    /// The message's declared length.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The message body, once [`complete`](Self::complete).
    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }

    pub(crate) fn complete(&self) -> bool {
        self.have.is_whole(self.len)
    }

    /// Adds a fragment lying within the body. A fragment whose bytes are all held already is
    /// ignored; one that disagrees with bytes already held is refused, so the message handled
    /// is the one whose first bytes were accepted (for a ClientHello, those the cookie
    /// verified).
    pub(crate) fn add(&mut self, offset: u32, bytes: &[u8]) -> Inserted {
        let end = offset + bytes.len() as u32;
        if self.have.covers(offset, end) {
            return Inserted::Duplicate;
        }
        for &(s, e) in &self.have.ranges[self.have.touching(offset, end)] {
            let (from, to) = (s.max(offset), e.min(end));
            if from < to
                && self.body[from as usize..to as usize] != bytes[(from - offset) as usize..(to - offset) as usize]
            {
                return Inserted::Dropped;
            }
        }
        if !self.have.insert(offset, end) {
            return Inserted::Dropped;
        }
        if self.body.len() < end as usize {
            if self.body.capacity() == 0 && end as usize == self.len {
                // The whole message at once (or its last piece first): one exact allocation.
                self.body.reserve_exact(self.len);
            }
            self.body.resize(end as usize, 0);
        }
        self.body[offset as usize..end as usize].copy_from_slice(bytes);
        Inserted::Buffered
    }
}

/// Reassembles handshake messages for one connection.
#[derive(Debug)]
pub(crate) struct Reassembler {
    next_seq: u16,
    slots: Vec<Partial>,
    buffered: usize,
    max_message: usize,
    max_buffered: usize,
    window: u16,
}

impl Reassembler {
    #[cfg(test)]
    pub(crate) fn new(max_message: usize, max_buffered: usize) -> Self {
        Self::with_window(max_message, max_buffered, DEFAULT_MESSAGE_WINDOW)
    }

    pub(crate) fn with_window(max_message: usize, max_buffered: usize, window: u16) -> Self {
        Self { next_seq: 0, slots: Vec::new(), buffered: 0, max_message, max_buffered, window: window.max(1) }
    }

    /// Whether part of a message received in `epoch` is held.
    pub(crate) fn holds_epoch(&self, epoch: u16) -> bool {
        self.slots.iter().any(|p| p.epoch == epoch)
    }

    /// Whether nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The next `message_seq` to be delivered.
    pub(crate) fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// Skips ahead (the client after a HelloVerifyRequest), dropping anything older.
    pub(crate) fn set_next_seq(&mut self, seq: u16) {
        self.next_seq = seq;
        self.slots.retain(|p| p.seq >= seq);
        self.buffered = self.slots.iter().map(Partial::len).sum();
    }

    /// Bytes currently held for incomplete or future messages.
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Offers one fragment received in `epoch`.
    pub(crate) fn insert(&mut self, epoch: u16, h: &HandshakeHeader, fragment: &[u8]) -> Inserted {
        if h.message_seq < self.next_seq {
            return Inserted::Old;
        }
        if h.message_seq - self.next_seq >= self.window {
            return Inserted::Dropped;
        }
        let length = h.length as usize;
        if let Some(p) = self.slots.iter_mut().find(|p| p.seq == h.message_seq) {
            if p.msg_type != h.msg_type || p.len != length || p.epoch != epoch {
                return Inserted::Dropped;
            }
            if fragment.is_empty() {
                return Inserted::Duplicate;
            }
            return p.add(h.fragment_offset, fragment);
        }
        // A zero-length fragment of a non-empty message tells us nothing: allocate nothing
        // (nothing is lost either: its record may be acknowledged).
        if fragment.is_empty() && length != 0 {
            return Inserted::Duplicate;
        }
        if length > self.max_message {
            return Inserted::Dropped;
        }
        // Over the budget, a message needed sooner displaces those needed later (furthest
        // first): future messages, which anyone able to spoof the peer can fill the budget
        // with, do not keep out the one the handshake waits for. (A spoofer can still claim
        // that very message_seq first, with another type, length or bytes: the first fragment
        // accepted fixes them, and a peer whose fragments disagree with it is refused until the
        // handshake times out. Epoch-0 handshake messages are unauthenticated in DTLS 1.2; the
        // Finished exchange, not reassembly, is what detects tampering.)
        while self.buffered + length > self.max_buffered {
            let Some(i) =
                (0..self.slots.len()).filter(|&i| self.slots[i].seq > h.message_seq).max_by_key(|&i| self.slots[i].seq)
            else {
                return Inserted::Dropped;
            };
            self.buffered -= self.slots.swap_remove(i).len;
        }
        let mut p = Partial::new(h.msg_type, h.message_seq, epoch, length);
        if !fragment.is_empty() {
            p.add(h.fragment_offset, fragment);
        }
        self.buffered += length;
        self.slots.push(p);
        Inserted::Buffered
    }

    /// The type and epoch of the next message, if it is complete.
    pub(crate) fn peek(&self) -> Option<(HandshakeType, u16)> {
        self.slots.iter().find(|p| p.seq == self.next_seq && p.complete()).map(|p| (p.msg_type, p.epoch))
    }

    /// Takes the next message if it is complete.
    pub(crate) fn pop(&mut self) -> Option<Message> {
        let i = self.slots.iter().position(|p| p.seq == self.next_seq && p.complete())?;
        let p = self.slots.swap_remove(i);
        self.buffered -= p.len;
        self.next_seq = self.next_seq.wrapping_add(1);
        Some(Message { msg_type: p.msg_type, seq: p.seq, body: p.body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(seq: u16, len: u32, off: u32, flen: u32) -> HandshakeHeader {
        HandshakeHeader {
            msg_type: HandshakeType::CERTIFICATE,
            length: len,
            message_seq: seq,
            fragment_offset: off,
            fragment_length: flen,
        }
    }

    #[test]
    fn out_of_order_overlapping_duplicate_fragments() {
        let msg: Vec<u8> = (0..100u8).collect();
        let mut r = Reassembler::new(1000, 2000);
        assert_eq!(r.insert(0, &hdr(0, 100, 60, 40), &msg[60..]), Inserted::Buffered);
        assert!(r.pop().is_none());
        assert_eq!(r.insert(0, &hdr(0, 100, 10, 55), &msg[10..65]), Inserted::Buffered);
        assert_eq!(r.insert(0, &hdr(0, 100, 10, 55), &msg[10..65]), Inserted::Duplicate);
        assert_eq!(r.insert(0, &hdr(0, 100, 20, 5), &msg[20..25]), Inserted::Duplicate);
        assert!(r.pop().is_none());
        assert_eq!(r.insert(0, &hdr(0, 100, 0, 12), &msg[..12]), Inserted::Buffered);
        let m = r.pop().unwrap();
        assert_eq!(m.body, msg);
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.insert(0, &hdr(0, 100, 0, 12), &msg[..12]), Inserted::Old);
    }

    #[test]
    fn inconsistent_fragments_are_dropped() {
        let mut r = Reassembler::new(1000, 2000);
        assert_eq!(r.insert(0, &hdr(0, 100, 0, 10), &[0; 10]), Inserted::Buffered);
        assert_eq!(r.insert(0, &hdr(0, 101, 10, 10), &[0; 10]), Inserted::Dropped);
        assert_eq!(r.insert(1, &hdr(0, 100, 10, 10), &[0; 10]), Inserted::Dropped);
        let mut other = hdr(0, 100, 10, 10);
        other.msg_type = HandshakeType::FINISHED;
        assert_eq!(r.insert(0, &other, &[0; 10]), Inserted::Dropped);
    }

    #[test]
    fn limits_are_checked_before_allocating() {
        let mut r = Reassembler::new(1000, 1500);
        assert_eq!(r.insert(0, &hdr(0, 0xff_ffff, 0, 1), &[0]), Inserted::Dropped);
        // An empty fragment allocates nothing, and loses nothing (found by BoGo,
        // `SendEmptyFragments-Padded-DTLS`: its record may be acknowledged).
        assert_eq!(r.insert(0, &hdr(0, 1000, 0, 0), &[]), Inserted::Duplicate, "empty fragment allocates nothing");
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.insert(0, &hdr(1, 1000, 0, 1), &[0]), Inserted::Buffered);
        assert_eq!(r.insert(0, &hdr(2, 1000, 0, 1), &[0]), Inserted::Dropped, "over the per-connection budget");
        assert_eq!(r.insert(0, &hdr(DEFAULT_MESSAGE_WINDOW, 10, 0, 1), &[0]), Inserted::Dropped, "beyond the window");
        assert_eq!(r.buffered_bytes(), 1000);
    }

    #[test]
    fn overlap_that_disagrees_with_held_bytes_is_refused() {
        let msg: Vec<u8> = (0..100u8).collect();
        let mut r = Reassembler::new(1000, 2000);
        assert_eq!(r.insert(0, &hdr(0, 100, 0, 50), &msg[..50]), Inserted::Buffered);
        let mut forged = msg[40..100].to_vec();
        forged[5] ^= 1; // byte 45, already held with another value
        assert_eq!(r.insert(0, &hdr(0, 100, 40, 60), &forged), Inserted::Dropped);
        // Agreeing overlap is fine, and the held bytes are the ones delivered.
        assert_eq!(r.insert(0, &hdr(0, 100, 40, 60), &msg[40..]), Inserted::Buffered);
        assert_eq!(r.pop().unwrap().body, msg);
    }

    #[test]
    fn range_count_is_capped_but_adjacent_fragments_always_progress() {
        let len = 4 * MAX_RANGES as u32 + 8;
        let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut r = Reassembler::new(4096, 8192);
        // One-byte fragments at every fourth offset: each opens a range, up to the cap.
        for k in 0..MAX_RANGES as u32 {
            let off = 4 * k + 1;
            assert_eq!(r.insert(0, &hdr(0, len, off, 1), &msg[off as usize..][..1]), Inserted::Buffered);
        }
        let off = 4 * MAX_RANGES as u32 + 1;
        assert_eq!(r.insert(0, &hdr(0, len, off, 1), &msg[off as usize..][..1]), Inserted::Dropped, "over the cap");
        // A well-formed retransmission in 3-byte tiles still completes the message: each
        // tile touches a held range, so none is refused.
        for off in (0..len).step_by(3) {
            let n = 3.min(len - off);
            let got = r.insert(0, &hdr(0, len, off, n), &msg[off as usize..(off + n) as usize]);
            assert!(matches!(got, Inserted::Buffered | Inserted::Duplicate), "{off}: {got:?}");
        }
        assert_eq!(r.pop().unwrap().body, msg);
    }

    #[test]
    fn the_next_message_displaces_later_ones_over_the_budget() {
        let mut r = Reassembler::new(1000, 2000);
        assert_eq!(r.insert(0, &hdr(5, 1000, 0, 1), &[0]), Inserted::Buffered);
        assert_eq!(r.insert(0, &hdr(6, 1000, 0, 1), &[0]), Inserted::Buffered);
        assert_eq!(r.insert(0, &hdr(7, 1000, 0, 1), &[0]), Inserted::Dropped, "later than all held: no room");
        assert_eq!(r.insert(0, &hdr(0, 600, 0, 600), &[1; 600]), Inserted::Buffered, "displaces seq 6");
        assert_eq!(r.buffered_bytes(), 1600);
        assert_eq!(r.pop().unwrap().body, vec![1; 600]);
        assert_eq!(r.insert(0, &hdr(5, 1000, 1, 1), &[0]), Inserted::Buffered, "seq 5 was kept");
        assert_eq!(r.insert(0, &hdr(6, 1000, 1, 1), &[0]), Inserted::Buffered, "seq 6 starts again");
    }

    #[test]
    fn empty_message_completes() {
        let mut r = Reassembler::new(1000, 2000);
        let mut h = hdr(0, 0, 0, 0);
        h.msg_type = HandshakeType::SERVER_HELLO_DONE;
        assert_eq!(r.insert(0, &h, &[]), Inserted::Buffered);
        assert_eq!(r.peek(), Some((HandshakeType::SERVER_HELLO_DONE, 0)));
        assert!(r.pop().unwrap().body.is_empty());
    }

    proptest::proptest! {
        /// Any cover of a message by fragments, in any order, with overlaps and duplicates,
        /// reassembles to the message exactly, and nothing stays buffered.
        #[test]
        fn any_fragmentation_reassembles(
            len in 0usize..3000,
            cuts in proptest::collection::vec((0.0f64..1.0, 1usize..400), 1..40),
            order_seed in proptest::prelude::any::<u64>(),
        ) {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            // Fragments from the cuts, plus a sweep that guarantees full coverage.
            let mut frags: Vec<(usize, usize)> = cuts
                .iter()
                .map(|&(at, n)| {
                    let off = ((len as f64) * at) as usize;
                    (off, n.min(len - off))
                })
                .filter(|&(_, n)| n > 0)
                .collect();
            let mut off = 0;
            while off < len {
                let n = (len - off).min(333);
                frags.push((off, n));
                off += n;
            }
            // Shuffle deterministically.
            let mut state = order_seed | 1;
            for i in (1..frags.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                frags.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut r = Reassembler::new(4096, 8192);
            let mut h = hdr(0, len as u32, 0, 0);
            if len == 0 {
                proptest::prop_assert_eq!(r.insert(0, &h, &[]), Inserted::Buffered);
            }
            for (off, n) in frags {
                h.fragment_offset = off as u32;
                h.fragment_length = n as u32;
                let got = r.insert(0, &h, &msg[off..off + n]);
                proptest::prop_assert!(matches!(got, Inserted::Buffered | Inserted::Duplicate), "{:?}", got);
            }
            let m = r.pop().expect("complete");
            proptest::prop_assert_eq!(m.body, msg);
            proptest::prop_assert_eq!(r.buffered_bytes(), 0);
        }
    }
}
