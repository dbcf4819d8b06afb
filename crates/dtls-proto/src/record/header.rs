//! The DTLS 1.2 record header (RFC 6347 §4.1).

use crate::codec::Reader;
use crate::enums::{ContentType, ProtocolVersion};

use super::MAX_SEQ;

/// A parsed record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Content type.
    pub content_type: ContentType,
    /// Record-layer version.
    pub version: ProtocolVersion,
    /// Epoch.
    pub epoch: u16,
    /// 48-bit sequence number within the epoch.
    pub seq: u64,
    /// Fragment length.
    pub length: u16,
}

impl RecordHeader {
    /// Parses a header; checks only that the fragment fits in `buf`.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let mut r = Reader::new(buf);
        let h = Self {
            content_type: ContentType(r.u8()?),
            version: ProtocolVersion(r.u16()?),
            epoch: r.u16()?,
            seq: r.u48()?,
            length: r.u16()?,
        };
        (r.remaining() >= usize::from(h.length)).then_some(h)
    }

    /// Appends the encoded header to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(self.content_type.0);
        out.extend_from_slice(&self.version.0.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&(self.seq & MAX_SEQ).to_be_bytes()[2..]);
        out.extend_from_slice(&self.length.to_be_bytes());
    }

    /// The 64-bit `epoch || sequence_number` used in the AAD and nonces. A sequence number
    /// never spills into the epoch: writers refuse numbers above [`MAX_SEQ`] before sealing.
    pub fn epoch_seq(&self) -> u64 {
        (u64::from(self.epoch) << 48) | (self.seq & MAX_SEQ)
    }
}
