//! Receive buffers: slots reused across receives, each with its datagram (or GRO run), its
//! source and the local address it arrived on.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;

use super::{MAX_BATCH, MAX_SLOT};

/// What one receive slot holds after a receive.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Bytes received.
    len: usize,
    /// Size of each datagram in the slot (GRO), the last one possibly shorter; `len` without GRO.
    stride: usize,
    source: SocketAddr,
    /// The local address the datagrams arrived on, where the system tells.
    local: Option<IpAddr>,
}

const NO_SOURCE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl Slot {
    const EMPTY: Self = Self { len: 0, stride: 0, source: NO_SOURCE, local: None };

    /// How many datagrams the slot holds (an empty datagram is one).
    fn datagrams(&self) -> usize {
        if self.len == 0 {
            1
        } else {
            self.len.div_ceil(self.stride.max(1))
        }
    }
}

/// Receive buffers for [`Socket::recv_many`](super::Socket::recv_many): up to [`MAX_BATCH`] slots, allocated once and
/// reused, with each slot's length, GRO segment size, source address and local address.
///
/// A slot receives one datagram or, with GRO on, one run of coalesced datagrams, so with GRO
/// the slots must be [`MAX_SLOT`] bytes ([`for_gro`](Self::for_gro)). A datagram larger than
/// its slot is truncated, as by `recv`.
pub struct RecvBatch {
    /// `slots.len()` slots of `slot_size` bytes, back to back.
    pub(super) buf: Box<[u8]>,
    pub(super) slot_size: usize,
    slots: Box<[Slot]>,
    /// Slots the last receive filled.
    pub(super) filled: usize,
    /// Datagrams in them.
    pub(super) count: usize,
    /// The next datagram [`next_datagram`](Self::next_datagram) hands out: slot and offset.
    cursor: (usize, usize),
}

impl fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvBatch")
            .field("slots", &self.slots.len())
            .field("slot_size", &self.slot_size)
            .field("datagrams", &self.count)
            .finish_non_exhaustive()
    }
}

impl RecvBatch {
    /// `slots` receive slots (1 to [`MAX_BATCH`], clamped) of `slot_size` bytes (1 to
    /// [`MAX_SLOT`], clamped).
    pub fn new(slots: usize, slot_size: usize) -> Self {
        let slots = slots.clamp(1, MAX_BATCH);
        let slot_size = slot_size.clamp(1, MAX_SLOT);
        Self {
            buf: vec![0; slots * slot_size].into_boxed_slice(),
            slot_size,
            slots: vec![Slot::EMPTY; slots].into_boxed_slice(),
            filled: 0,
            count: 0,
            cursor: (0, 0),
        }
    }

    /// `slots` slots of [`MAX_SLOT`] bytes: room for anything GRO coalesces.
    pub fn for_gro(slots: usize) -> Self {
        Self::new(slots, MAX_SLOT)
    }

    /// Number of receive slots.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Size of each slot.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Datagrams the last receive received.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the last receive received nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Forgets what was received.
    pub fn clear(&mut self) {
        self.filled = 0;
        self.count = 0;
        self.cursor = (0, 0);
    }

    /// Each datagram the last receive received, in order, with its source address;
    /// datagrams GRO coalesced come out split again.
    pub fn datagrams(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> + '_ {
        self.buf.chunks(self.slot_size).zip(&self.slots[..self.filled]).flat_map(|(slot, s)| {
            // `chunks` yields nothing for an empty datagram: yield it once.
            let empty: Option<&[u8]> = (s.len == 0).then_some(&[]);
            slot[..s.len].chunks(s.stride.max(1)).chain(empty).map(move |d| (d, s.source))
        })
    }

    /// Like [`datagrams`](Self::datagrams), mutable (decrypt or rewrite them in place), with
    /// the local address each arrived on, where the system tells.
    pub fn datagrams_mut(&mut self) -> impl Iterator<Item = (&mut [u8], SocketAddr, Option<IpAddr>)> + '_ {
        self.buf.chunks_mut(self.slot_size).zip(&self.slots[..self.filled]).flat_map(|(slot, s)| {
            let empty = (s.len == 0).then(<&mut [u8]>::default);
            slot[..s.len].chunks_mut(s.stride.max(1)).chain(empty).map(move |d| (d, s.source, s.local))
        })
    }

    /// The next datagram not yet handed out since the last receive: its range in
    /// [`buffer`](Self::buffer) and its source.
    pub(crate) fn next_datagram(&mut self) -> Option<(Range<usize>, SocketAddr)> {
        loop {
            let (i, off) = self.cursor;
            if i >= self.filled {
                return None;
            }
            let s = self.slots[i];
            if off < s.len || (s.len == 0 && off == 0) {
                let end = (off + s.stride.max(1)).min(s.len);
                // An empty datagram moves the cursor past its slot.
                self.cursor = (i, if s.len == 0 { 1 } else { end });
                let base = i * self.slot_size;
                return Some((base + off..base + end, s.source));
            }
            self.cursor = (i + 1, 0);
        }
    }

    /// Whether [`next_datagram`](Self::next_datagram) has more.
    pub(crate) fn has_pending(&self) -> bool {
        let (i, off) = self.cursor;
        i < self.filled && (off < self.slots[i].len || (self.slots[i].len == 0 && off == 0) || i + 1 < self.filled)
    }

    /// All slots, back to back.
    pub(crate) fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// All slots, back to back, mutable.
    pub(crate) fn buffer_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Records what a receive put in slot `i` (`stride`: the segment size, `len` or 0 for
    /// none).
    pub(super) fn set_slot(&mut self, i: usize, len: usize, stride: usize, source: SocketAddr, local: Option<IpAddr>) {
        let len = len.min(self.slot_size);
        let stride = if stride > 0 && stride < len { stride } else { len };
        let slot = Slot { len, stride, source, local };
        self.slots[i] = slot;
        self.filled = i + 1;
        self.count += slot.datagrams();
    }
}
