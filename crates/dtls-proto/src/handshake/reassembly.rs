//! Handshake message reassembly (RFC 6347 §4.2.3) with bounded buffers.
//!
//! Fragments may arrive out of order, overlap, or repeat. Messages are released strictly in
//! `message_seq` order. Only messages within a small window ahead of the next expected one are
//! buffered; the declared length is checked against the limits *before* any allocation; and the
//! fragments of one message must agree on its type, length and epoch, or they are dropped.

use crate::enums::HandshakeType;
use crate::messages::HandshakeHeader;

/// How far ahead of the next expected `message_seq` we buffer by default (BoringSSL uses the
/// same window).
pub(crate) const SEQ_WINDOW: u16 = 8;

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
    /// Stored (or already held); the message may now be complete.
    Buffered,
    /// The message was already delivered: the peer is retransmitting.
    Old,
    /// Outside the window, inconsistent, or over a limit: discarded.
    Dropped,
}

#[derive(Debug)]
struct Partial {
    msg_type: HandshakeType,
    seq: u16,
    epoch: u16,
    body: Vec<u8>,
    /// Received byte ranges, sorted and merged.
    have: Vec<(u32, u32)>,
}

impl Partial {
    fn complete(&self) -> bool {
        match self.have.as_slice() {
            [] => self.body.is_empty(),
            [(0, end)] => *end as usize == self.body.len(),
            _ => false,
        }
    }

    fn add(&mut self, offset: u32, bytes: &[u8]) {
        let end = offset + bytes.len() as u32;
        self.body[offset as usize..end as usize].copy_from_slice(bytes);
        self.have.push((offset, end));
        self.have.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.have.len());
        for &(s, e) in &self.have {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.have = merged;
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
        Self::with_window(max_message, max_buffered, SEQ_WINDOW)
    }

    pub(crate) fn with_window(max_message: usize, max_buffered: usize, window: u16) -> Self {
        Self { next_seq: 0, slots: Vec::new(), buffered: 0, max_message, max_buffered, window: window.max(1) }
    }

    /// The next `message_seq` to be delivered.
    pub(crate) fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// Skips ahead (the client after a HelloVerifyRequest), dropping anything older.
    pub(crate) fn set_next_seq(&mut self, seq: u16) {
        self.next_seq = seq;
        self.slots.retain(|p| p.seq >= seq);
        self.buffered = self.slots.iter().map(|p| p.body.len()).sum();
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
            if p.msg_type != h.msg_type || p.body.len() != length || p.epoch != epoch {
                return Inserted::Dropped;
            }
            if !fragment.is_empty() {
                p.add(h.fragment_offset, fragment);
            }
            return Inserted::Buffered;
        }
        // A zero-length fragment of a non-empty message tells us nothing: allocate nothing.
        if fragment.is_empty() && length != 0 {
            return Inserted::Dropped;
        }
        if length > self.max_message || self.buffered + length > self.max_buffered {
            return Inserted::Dropped;
        }
        let mut p =
            Partial { msg_type: h.msg_type, seq: h.message_seq, epoch, body: vec![0; length], have: Vec::new() };
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
        self.buffered -= p.body.len();
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
        assert_eq!(r.insert(0, &hdr(0, 100, 10, 55), &msg[10..65]), Inserted::Buffered);
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
        assert_eq!(r.insert(0, &hdr(0, 1000, 0, 0), &[]), Inserted::Dropped, "empty fragment allocates nothing");
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.insert(0, &hdr(1, 1000, 0, 1), &[0]), Inserted::Buffered);
        assert_eq!(r.insert(0, &hdr(2, 1000, 0, 1), &[0]), Inserted::Dropped, "over the per-connection budget");
        assert_eq!(r.insert(0, &hdr(SEQ_WINDOW, 10, 0, 1), &[0]), Inserted::Dropped, "beyond the window");
        assert_eq!(r.buffered_bytes(), 1000);
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
                proptest::prop_assert_eq!(r.insert(0, &h, &msg[off..off + n]), Inserted::Buffered);
            }
            let m = r.pop().expect("complete");
            proptest::prop_assert_eq!(m.body, msg);
            proptest::prop_assert_eq!(r.buffered_bytes(), 0);
        }
    }
}
