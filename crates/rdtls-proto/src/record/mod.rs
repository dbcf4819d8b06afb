//! The record layer: headers of every format (DTLS 1.2, RFC 6347 §4.1; with a connection ID,
//! RFC 9146 §4; the DTLS 1.3 unified header, RFC 9147 §4), record protection in place, the
//! anti-replay window and the epoch table. The 1.2 header:
//!
//! ```text
//!  0        1        3        5                 11       13
//! +--------+--------+--------+-----------------+--------+----------------
//! | type   | version| epoch  | sequence_number | length | fragment ...
//! +--------+--------+--------+-----------------+--------+----------------
//! ```
//!
//! A datagram may carry several records; a record never spans datagrams. A record that does not
//! parse ends the processing of its datagram (the rest cannot be framed); a record that parses but
//! fails any later check is dropped on its own.

use core::ops::Range;

/// Length of a DTLS 1.2 record header.
pub const HEADER_LEN: usize = 13;
/// Largest plaintext fragment (2^14, RFC 5246 §6.2.1).
pub const MAX_PLAINTEXT: usize = 1 << 14;
/// Largest protected fragment we accept (2^14 + 2048, RFC 5246 §6.2.3).
pub const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 2048;
/// Largest 48-bit sequence number.
pub const MAX_SEQ: u64 = (1 << 48) - 1;
/// Most records handled from one datagram: bounds the work one datagram can cause.
pub const MAX_RECORDS_PER_DATAGRAM: usize = 32;

/// Iterates over the records of a datagram, yielding each header with the range of its fragment.
///
/// Iteration stops at the first record that cannot be framed (truncated header or fragment).
#[derive(Debug)]
pub struct Records<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Records<'a> {
    /// Frames the records in `datagram`.
    pub fn new(datagram: &'a [u8]) -> Self {
        Self { buf: datagram, pos: 0 }
    }
}

impl Iterator for Records<'_> {
    type Item = (RecordHeader, Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..)?;
        let Some(h) = RecordHeader::parse(rest) else {
            self.pos = self.buf.len();
            return None;
        };
        let start = self.pos + HEADER_LEN;
        let end = start + usize::from(h.length);
        self.pos = end;
        Some((h, start..end))
    }
}

pub(crate) mod epoch;
pub(crate) use epoch::EpochKeys;
pub(crate) mod header;
mod protect;
mod replay;
#[cfg(test)]
mod tests;
mod unified;

pub use header::{Header, RecordHeader, UnifiedHeader};
pub use protect::{RecordProtection, MAX_CID_LEN};
pub use replay::ReplayWindow;
pub use unified::{Opened, UnifiedFormat, UnifiedProtection, MASK_SAMPLE_LEN};
