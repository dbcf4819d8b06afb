//! Record headers: the DTLS 1.2 header (RFC 6347 §4.1), and every format as one [`Header`].

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
        out.extend_from_slice(&self.encoded(self.length));
    }

    /// The 13 bytes of this header with `fragment_len` as its length.
    #[inline]
    pub(crate) fn encoded(&self, fragment_len: u16) -> [u8; super::HEADER_LEN] {
        let mut b = [0u8; super::HEADER_LEN];
        b[0] = self.content_type.0;
        b[1..3].copy_from_slice(&self.version.0.to_be_bytes());
        b[3..11].copy_from_slice(&self.epoch_seq().to_be_bytes());
        b[11..].copy_from_slice(&fragment_len.to_be_bytes());
        b
    }

    /// The 64-bit `epoch || sequence_number` used in the AAD and nonces. A sequence number
    /// never spills into the epoch: writers refuse numbers above [`MAX_SEQ`] before sealing.
    pub fn epoch_seq(&self) -> u64 {
        (u64::from(self.epoch) << 48) | (self.seq & MAX_SEQ)
    }
}

/// The first byte of a DTLS 1.3 unified header: `001CSLEE` (RFC 9147 §4).
const UNIFIED_FIXED_BITS: u8 = 0b0010_0000;
const UNIFIED_FIXED_MASK: u8 = 0b1110_0000;
const UNIFIED_CID: u8 = 0b0001_0000;
const UNIFIED_SEQ16: u8 = 0b0000_1000;
const UNIFIED_LENGTH: u8 = 0b0000_0100;

/// A record header in any of the formats DTLS uses, parsed from the front of a datagram.
///
/// Which format a record has is told by its first byte: a content type for the 13-byte header
/// of DTLS 1.2 (and of DTLS 1.3's plaintext records), `tls12_cid` (25) for DTLS 1.2 with a
/// connection ID (RFC 9146 §4), and the bits `001` for the DTLS 1.3 unified header (RFC 9147
/// §4). The length of a connection ID is not on the wire: the receiver knows it (it chose it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Header<'a> {
    /// The 13-byte header: DTLS 1.2, and DTLS 1.3 plaintext records.
    Plain(RecordHeader),
    /// DTLS 1.2 with a connection ID (RFC 9146 §4): the 1.2 fields, the CID after the
    /// sequence number. `header.content_type` is `tls12_cid`; the real type is inside.
    Cid12 {
        /// The fields shared with the plain header.
        header: RecordHeader,
        /// The receiver's connection ID.
        cid: &'a [u8],
    },
    /// The DTLS 1.3 unified header (RFC 9147 §4), whose sequence number is still encrypted.
    Unified(UnifiedHeader<'a>),
}

/// A DTLS 1.3 unified header as it is on the wire, before its sequence number is decrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnifiedHeader<'a> {
    /// The two low bits of the epoch.
    pub epoch_bits: u8,
    /// The connection ID, if the C bit is set.
    pub cid: Option<&'a [u8]>,
    /// The encrypted low bits of the sequence number: 8 or 16 of them.
    pub masked_seq: u16,
    /// Whether the sequence number is 16 bits (S bit) rather than 8.
    pub seq_16: bool,
    /// Whether the header carried a length (L bit); without one the record runs to the end of
    /// the datagram.
    pub has_length: bool,
}

/// Longest connection ID [`Header::unified_with_cid`] handles: the longest we ask for
/// (`config::MAX_CID_LEN`, which checks it).
pub(crate) const SHORT_UNIFIED_CID: usize = 20;
/// Longest unified header with such an ID: first byte, ID, 16-bit sequence number, length.
pub(crate) const SHORT_UNIFIED_LEN: usize = 1 + SHORT_UNIFIED_CID + 2 + 2;

impl UnifiedHeader<'_> {
    /// Writes the header as sent into `b` (long enough: `1 + ID + 4` bytes), with
    /// `fragment_len` as its length if it has one; returns how many bytes it took.
    fn encode_into(&self, b: &mut [u8], fragment_len: u16) -> usize {
        b[0] = self.first_byte();
        let mut n = 1;
        if let Some(cid) = self.cid {
            b[n..n + cid.len()].copy_from_slice(cid);
            n += cid.len();
        }
        if self.seq_16 {
            b[n..n + 2].copy_from_slice(&self.masked_seq.to_be_bytes());
            n += 2;
        } else {
            b[n] = self.masked_seq as u8;
            n += 1;
        }
        if self.has_length {
            b[n..n + 2].copy_from_slice(&fragment_len.to_be_bytes());
            n += 2;
        }
        n
    }

    /// The first byte: `001CSLEE`.
    fn first_byte(&self) -> u8 {
        let mut first = UNIFIED_FIXED_BITS | (self.epoch_bits & 0b11);
        if self.cid.is_some() {
            first |= UNIFIED_CID;
        }
        if self.seq_16 {
            first |= UNIFIED_SEQ16;
        }
        if self.has_length {
            first |= UNIFIED_LENGTH;
        }
        first
    }
}

impl<'a> Header<'a> {
    /// Parses the header at the front of `buf`; `cid_len` is the length of the connection IDs
    /// we issued (0: none). Returns the header, its encoded length and the fragment's length;
    /// `None` when the record cannot be framed (truncated, or a connection-ID format when we
    /// issued no CID).
    pub fn parse(buf: &'a [u8], cid_len: usize) -> Option<(Self, usize, usize)> {
        let (header, header_len, declared) = Self::read(buf, cid_len)?;
        let available = buf.len() - header_len;
        let length = declared.unwrap_or(available);
        (length <= available).then_some((header, header_len, length))
    }

    /// Splits the record at the front of `buf` into its header, its fragment (mutable, to be
    /// opened in place) and the rest of the datagram. `None` as for [`parse`](Self::parse).
    pub fn split(buf: &'a mut [u8], cid_len: usize) -> Option<(Self, &'a mut [u8], &'a mut [u8])> {
        let (_, header_len, length) = Header::parse(buf, cid_len)?;
        let (head, tail) = buf.split_at_mut(header_len);
        let (fragment, rest) = tail.split_at_mut(length);
        let head: &'a [u8] = head;
        let (header, _, _) = Self::read(head, cid_len)?;
        Some((header, fragment, rest))
    }

    /// Reads the header fields: the header, its length, and the fragment length it declares
    /// (`None`: up to the end of the datagram).
    fn read(buf: &'a [u8], cid_len: usize) -> Option<(Self, usize, Option<usize>)> {
        let first = *buf.first()?;
        if first & UNIFIED_FIXED_MASK == UNIFIED_FIXED_BITS {
            let mut r = Reader::new(&buf[1..]);
            let cid = if first & UNIFIED_CID != 0 {
                if cid_len == 0 {
                    return None;
                }
                Some(r.take(cid_len)?)
            } else {
                None
            };
            let seq_16 = first & UNIFIED_SEQ16 != 0;
            let masked_seq = if seq_16 { r.u16()? } else { u16::from(r.u8()?) };
            let has_length = first & UNIFIED_LENGTH != 0;
            let length = if has_length { Some(usize::from(r.u16()?)) } else { None };
            let header_len = buf.len() - r.remaining();
            let unified = UnifiedHeader { epoch_bits: first & 0b11, cid, masked_seq, seq_16, has_length };
            return Some((Self::Unified(unified), header_len, length));
        }
        let mut r = Reader::new(buf);
        let (content_type, version, epoch, seq) = (ContentType(r.u8()?), ProtocolVersion(r.u16()?), r.u16()?, r.u48()?);
        let cid = if content_type == ContentType::TLS12_CID {
            if cid_len == 0 {
                return None;
            }
            Some(r.take(cid_len)?)
        } else {
            None
        };
        let length = r.u16()?;
        let header_len = buf.len() - r.remaining();
        let header = RecordHeader { content_type, version, epoch, seq, length };
        let header = match cid {
            Some(cid) => Self::Cid12 { header, cid },
            None => Self::Plain(header),
        };
        Some((header, header_len, Some(usize::from(length))))
    }

    /// Appends the encoded header (with `fragment_len` as its length where the format has one).
    #[inline]
    pub fn write(&self, fragment_len: u16, out: &mut Vec<u8>) {
        match self {
            // The DTLS 1.2 data path: one fixed-size copy.
            Self::Plain(h) => out.extend_from_slice(&h.encoded(fragment_len)),
            _ => match self.short_form(fragment_len) {
                Some((bytes, len)) => out.extend_from_slice(&bytes[..len]),
                None => self.encode(fragment_len, |b| out.extend_from_slice(b)),
            },
        }
    }

    /// The encoded header on the stack, with its length, for the formats that carry no
    /// connection ID (all but a few bytes of every record): what sealing and opening use per
    /// record, rather than building the header piece by piece.
    #[inline]
    pub(crate) fn short_form(&self, fragment_len: u16) -> Option<([u8; super::HEADER_LEN], usize)> {
        let mut b = [0u8; super::HEADER_LEN];
        match self {
            Self::Plain(h) => Some((h.encoded(fragment_len), super::HEADER_LEN)),
            Self::Unified(u) if u.cid.is_none() => {
                let n = u.encode_into(&mut b, fragment_len);
                Some((b, n))
            }
            _ => None,
        }
    }

    /// A DTLS 1.3 header with a connection ID of at most [`SHORT_UNIFIED_CID`] bytes, as sent:
    /// the bytes and how many there are. What a record's additional data is made from, on the
    /// stack.
    pub(crate) fn unified_with_cid(&self, fragment_len: u16) -> Option<([u8; SHORT_UNIFIED_LEN], usize)> {
        let Self::Unified(u) = self else { return None };
        if u.cid.is_some_and(|c| c.len() > SHORT_UNIFIED_CID) {
            return None;
        }
        let mut b = [0u8; SHORT_UNIFIED_LEN];
        let n = u.encode_into(&mut b, fragment_len);
        Some((b, n))
    }

    /// Encodes the header into `put`: in one piece when it has a [`short_form`](Self::short_form),
    /// piece by piece around its connection ID otherwise.
    pub(crate) fn encode(&self, fragment_len: u16, mut put: impl FnMut(&[u8])) {
        if let Some((bytes, len)) = self.short_form(fragment_len) {
            put(&bytes[..len]);
            return;
        }
        match self {
            Self::Plain(_) => {}
            Self::Cid12 { header, cid } => {
                let mut b = [0u8; 11];
                b[0] = header.content_type.0;
                b[1..3].copy_from_slice(&header.version.0.to_be_bytes());
                b[3..11].copy_from_slice(&header.epoch_seq().to_be_bytes());
                put(&b);
                put(cid);
                put(&fragment_len.to_be_bytes());
            }
            Self::Unified(u) => {
                put(&[u.first_byte()]);
                if let Some(cid) = u.cid {
                    put(cid);
                }
                if u.seq_16 {
                    put(&u.masked_seq.to_be_bytes());
                } else {
                    put(&[u.masked_seq as u8]);
                }
                if u.has_length {
                    put(&fragment_len.to_be_bytes());
                }
            }
        }
    }
}
