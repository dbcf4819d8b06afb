//! Property tests: encode/decode round trips, and the replay window against a simple model.

use std::collections::HashSet;

use proptest::prelude::*;
use rdtls_proto::codec::Reader;
use rdtls_proto::enums::{ContentType, HandshakeType, ProtocolVersion};
use rdtls_proto::messages::HandshakeHeader;
use rdtls_proto::record::{RecordHeader, Records, ReplayWindow, HEADER_LEN, MAX_SEQ};

proptest! {
    #[test]
    fn record_header_round_trip(ct in any::<u8>(), v in any::<u16>(), epoch in any::<u16>(), seq in 0..=MAX_SEQ, body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let h = RecordHeader { content_type: ContentType(ct), version: ProtocolVersion(v), epoch, seq, length: body.len() as u16 };
        let mut wire = Vec::new();
        h.write(&mut wire);
        wire.extend_from_slice(&body);
        prop_assert_eq!(wire.len(), HEADER_LEN + body.len());
        prop_assert_eq!(RecordHeader::parse(&wire), Some(h));
        let recs: Vec<_> = Records::new(&wire).collect();
        prop_assert_eq!(recs.len(), 1);
        prop_assert_eq!(&wire[recs[0].1.clone()], &body[..]);
    }

    #[test]
    fn records_never_overrun(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut end = 0;
        for (h, r) in Records::new(&data) {
            prop_assert!(r.start >= end + HEADER_LEN && r.end <= data.len());
            prop_assert_eq!(r.len(), usize::from(h.length));
            end = r.end;
        }
    }

    #[test]
    fn handshake_header_round_trip(t in any::<u8>(), seq in any::<u16>(), len in 0u32..5000, off_frac in 0.0f64..=1.0, body_len in 0usize..200) {
        let off = ((len as f64) * off_frac) as u32;
        let flen = (body_len as u32).min(len - off);
        let h = HandshakeHeader { msg_type: HandshakeType(t), length: len, message_seq: seq, fragment_offset: off, fragment_length: flen };
        let mut wire = Vec::new();
        h.write(&mut wire);
        wire.extend(std::iter::repeat_n(0xab, flen as usize));
        let mut r = Reader::new(&wire);
        let (parsed, frag) = HandshakeHeader::parse(&mut r).unwrap();
        prop_assert_eq!(parsed, h);
        prop_assert_eq!(frag.len(), flen as usize);
        prop_assert!(r.is_empty());
    }

    /// The window accepts exactly what a model accepts: unseen sequence numbers not more than 63
    /// below the highest seen; and only updates (authenticated records) change it.
    #[test]
    fn replay_window_matches_a_model(ops in proptest::collection::vec((0u64..400, any::<bool>()), 1..300)) {
        let mut w = ReplayWindow::default();
        let mut seen = HashSet::new();
        let mut highest: Option<u64> = None;
        for (seq, authentic) in ops {
            let model = !seen.contains(&seq) && highest.is_none_or(|h| seq + 63 >= h);
            prop_assert_eq!(w.check(seq), model, "seq {} highest {:?}", seq, highest);
            if model && authentic {
                w.update(seq);
                seen.insert(seq);
                highest = Some(highest.map_or(seq, |h| h.max(seq)));
            }
            prop_assert_eq!(w.highest(), highest);
        }
    }
}
