//! The anti-replay window (RFC 6347 §4.1.2.6).

use super::MAX_SEQ;

/// The anti-replay window of one epoch (RFC 6347 §4.1.2.6): the highest authenticated sequence
/// number and a 64-record bitmap below it.
///
/// Use in order: [`check`](Self::check) before decrypting, [`update`](Self::update) only after the
/// record authenticated, so a forged record can never move the window.
#[derive(Clone, Debug, Default)]
pub struct ReplayWindow {
    /// Highest sequence number accepted, plus one; 0 when none was.
    top: u64,
    /// Bit `i` set: sequence number `top - 1 - i` was accepted.
    bits: u64,
}

impl ReplayWindow {
    /// Window width in records.
    pub const WIDTH: u64 = 64;

    /// Whether `seq` is new and not too old to tell.
    pub fn check(&self, seq: u64) -> bool {
        if seq > MAX_SEQ {
            return false;
        }
        if seq >= self.top {
            return true;
        }
        let behind = self.top - 1 - seq;
        behind < Self::WIDTH && self.bits & (1 << behind) == 0
    }

    /// Marks `seq` as received. Call only for records that authenticated and passed `check`.
    pub fn update(&mut self, seq: u64) {
        if seq >= self.top {
            let shift = seq + 1 - self.top;
            self.bits = if shift >= Self::WIDTH { 0 } else { self.bits << shift };
            self.bits |= 1;
            self.top = seq + 1;
        } else {
            let behind = self.top - 1 - seq;
            if behind < Self::WIDTH {
                self.bits |= 1 << behind;
            }
        }
    }

    /// The full sequence number of a record whose header carried only its low `bits` bits (8
    /// or 16: the DTLS 1.3 unified header): the candidate closest to the next one expected,
    /// the highest accepted plus one (RFC 9147 §4.2.2, with the algorithm of RFC 9000
    /// Appendix A.3). The result still has to pass [`check`](Self::check), and the record to
    /// authenticate, before [`update`](Self::update).
    pub fn reconstruct(&self, truncated: u64, bits: u32) -> u64 {
        debug_assert!((1..=48).contains(&bits));
        let win = 1u64 << bits;
        let half = win / 2;
        let mask = win - 1;
        let expected = self.top;
        let candidate = (expected & !mask) | (truncated & mask);
        if expected.checked_sub(half).is_some_and(|low| candidate <= low) && candidate < (MAX_SEQ + 1) - win {
            return candidate + win;
        }
        if candidate > expected + half && candidate >= win {
            return candidate - win;
        }
        candidate
    }

    /// The highest sequence number accepted so far.
    pub fn highest(&self) -> Option<u64> {
        self.top.checked_sub(1)
    }

    /// The window's state, for exporting a session.
    pub fn to_parts(&self) -> (u64, u64) {
        (self.top, self.bits)
    }

    /// Restores a window exported with [`to_parts`](Self::to_parts).
    pub fn from_parts(top: u64, bits: u64) -> Self {
        Self { top: top.min(MAX_SEQ + 1), bits }
    }
}
