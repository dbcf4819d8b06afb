//! The record layer's framing on arbitrary bytes: `Records` iteration, `RecordHeader::parse` and
//! `Header::parse` (every format: plain, RFC 9146 CID, RFC 9147 unified with or without a
//! connection ID), the endpoint's routing read of the ID (`cid::datagram_cid`), with the
//! anti-replay window checked against a simple model on the sequence numbers found.
#![no_main]

use std::collections::BTreeSet;

use rdtls_proto::cid::datagram_cid;
use rdtls_proto::record::{Header, RecordHeader, Records, ReplayWindow, HEADER_LEN, MAX_SEQ};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check_header(data);
    // Any format: the header and its fragment lie within the input, and writing the header
    // back gives the bytes it was parsed from.
    for cid_len in [0, 1, 4, 8] {
        if let Some((header, header_len, length)) = Header::parse(data, cid_len) {
            assert!(header_len + length <= data.len(), "{header:?} frames past the input");
            let mut out = Vec::new();
            header.write(length as u16, &mut out);
            assert_eq!(out, data[..header_len], "{header:?} does not write back");
            // Routing by ID reads the same ID the record layer parses.
            let cid = match header {
                Header::Cid12 { cid, .. } => Some(cid),
                Header::Unified(u) => u.cid,
                _ => None,
            };
            if cid_len > 0 {
                assert_eq!(datagram_cid(data, cid_len), cid, "{header:?}");
            }
        }
    }

    // Records tile a prefix of the datagram, each header followed by its fragment.
    let mut next = 0;
    let mut window = ReplayWindow::default();
    let mut model = WindowModel::default();
    for (header, range) in Records::new(data) {
        assert_eq!(range.start, next + HEADER_LEN, "records are not contiguous");
        assert!(range.end <= data.len(), "fragment {range:?} outside a {}-byte datagram", data.len());
        assert_eq!(range.len(), usize::from(header.length));
        assert_eq!(RecordHeader::parse(&data[next..]), Some(header));
        check_header(&data[next..]);
        next = range.end;

        let expected = model.check(header.seq);
        assert_eq!(window.check(header.seq), expected, "replay window disagrees on {}", header.seq);
        if expected {
            window.update(header.seq);
            model.update(header.seq);
        }
        assert_eq!(window.highest(), model.accepted.last().copied());
    }
    // Iteration stops only where the rest cannot be framed.
    assert!(next <= data.len());
    assert_eq!(RecordHeader::parse(&data[next..]), None, "iteration stopped before a valid record");
});

/// `RecordHeader::parse` accepts exactly the inputs with a header and a whole fragment, and
/// `write` gives back the bytes it parsed.
fn check_header(data: &[u8]) {
    match RecordHeader::parse(data) {
        Some(h) => {
            assert!(data.len() >= HEADER_LEN + usize::from(h.length));
            assert!(h.seq <= MAX_SEQ);
            let mut out = Vec::with_capacity(HEADER_LEN);
            h.write(&mut out);
            assert_eq!(out, data[..HEADER_LEN], "header round trip");
            assert_eq!(h.epoch_seq(), u64::from(h.epoch) << 48 | h.seq);
        }
        None => {
            let fits = data.len() >= HEADER_LEN
                && data.len() - HEADER_LEN >= usize::from(u16::from_be_bytes([data[11], data[12]]));
            assert!(!fits, "a well-framed record was rejected");
        }
    }
}

/// RFC 6347 §4.1.2.6 written the obvious way: every accepted sequence number is remembered.
#[derive(Default)]
struct WindowModel {
    accepted: BTreeSet<u64>,
}

impl WindowModel {
    fn check(&self, seq: u64) -> bool {
        if seq > MAX_SEQ || self.accepted.contains(&seq) {
            return false;
        }
        match self.accepted.last() {
            Some(&top) if seq < top => top - seq < ReplayWindow::WIDTH,
            _ => true,
        }
    }

    fn update(&mut self, seq: u64) {
        self.accepted.insert(seq);
    }
}
