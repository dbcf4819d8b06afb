//! Flights: what we send, as a whole, until the peer answers. The flight is fragmented to the
//! MTU, retransmitted on a timer (doubling up to a ceiling, with jitter) or when the peer
//! repeats its own, and kept after the handshake if it ended it, for the peer's
//! retransmissions, until the peer cannot need it any more.

use super::*;
use crate::handshake::FlightItem;

/// How many times a completed connection answers a retransmission of the peer's last flight.
const MAX_FINAL_RESENDS: u8 = 16;

/// The flight we last sent, its retransmission timers, and other state only the handshake
/// needs. It lives from the first flight until the last one cannot be needed any more: when we
/// sent the handshake's last flight, until the peer shows it has our Finished (it sends
/// application data) or the handshake timeout passes again.
#[derive(Debug)]
pub(crate) struct Flight {
    pub(super) items: Vec<FlightItem>,
    /// Next item and offset to send, while a (re)transmission is in progress.
    pub(super) cursor: Option<(usize, usize)>,
    pub(super) last_sent_at: Option<Instant>,
    pub(super) rto: Duration,
    pub(super) retransmit_at: Option<Instant>,
    /// The handshake fails if not complete by then.
    pub(super) deadline: Option<Instant>,
    /// Server, after completion: when the final flight is dropped.
    pub(super) hold_until: Option<Instant>,
    /// After completion: the `message_seq`s of the peer's last flight; seeing one again means
    /// our final flight was lost.
    pub(super) final_trigger: Option<core::ops::RangeInclusive<u16>>,
    pub(super) final_resends: u8,
    /// The flight expects an answer (it is not the handshake's last).
    pub(super) awaits_reply: bool,
    /// Next-epoch records that arrived before the keys to read them (bounded).
    pub(super) early: Vec<(RecordHeader, Vec<u8>)>,
    /// One record's plaintext being built.
    pub(crate) scratch: Vec<u8>,
}

impl Flight {
    pub(super) fn new(rto: Duration, deadline: Option<Instant>) -> Self {
        Self {
            items: Vec::new(),
            cursor: None,
            last_sent_at: None,
            rto,
            retransmit_at: None,
            deadline,
            hold_until: None,
            final_trigger: None,
            final_resends: 0,
            awaits_reply: true,
            early: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

impl Connection {
    /// Packs as much of the flight being (re)transmitted as fits in one datagram.
    pub(super) fn transmit_flight(&mut self, fl: &mut Flight, mtu: usize, out: &mut Vec<u8>) {
        while let Some((i, off)) = fl.cursor {
            let Some(item) = fl.items.get(i) else {
                fl.cursor = None;
                break;
            };
            let (epoch, need_min, limit) = match item {
                FlightItem::ChangeCipherSpec => (0, 1, mtu),
                // A ClientHello is never fragmented: servers that verify cookies (and many
                // small stacks) drop fragmented ClientHellos, so one oversized datagram is the
                // only thing that can work.
                FlightItem::Message { msg_type: HandshakeType::CLIENT_HELLO, body, .. } => {
                    (0, HS_HEADER_LEN + body.len(), mtu.max(HEADER_LEN + HS_HEADER_LEN + body.len()))
                }
                FlightItem::Message { epoch, body, .. } => (*epoch, HS_HEADER_LEN + usize::from(!body.is_empty()), mtu),
            };
            let overhead = HEADER_LEN + self.protection_overhead(epoch);
            let room = limit.saturating_sub(out.len() + overhead);
            if room < need_min {
                if out.is_empty() {
                    // Cannot happen with MIN_MTU; never loop forever if it somehow does.
                    fl.cursor = None;
                }
                break;
            }
            fl.scratch.clear();
            match item {
                FlightItem::ChangeCipherSpec => {
                    fl.scratch.push(1);
                    fl.cursor = Some((i + 1, 0));
                    self.write_record(ContentType::CHANGE_CIPHER_SPEC, 0, &fl.scratch, out);
                }
                FlightItem::Message { epoch, msg_type, seq, body } => {
                    let take = (body.len() - off).min(room - HS_HEADER_LEN);
                    HandshakeHeader {
                        msg_type: *msg_type,
                        length: body.len() as u32,
                        message_seq: *seq,
                        fragment_offset: off as u32,
                        fragment_length: take as u32,
                    }
                    .write(&mut fl.scratch);
                    fl.scratch.extend_from_slice(&body[off..off + take]);
                    let epoch = *epoch;
                    fl.cursor = Some(if off + take >= body.len() { (i + 1, 0) } else { (i, off + take) });
                    self.write_record(ContentType::HANDSHAKE, epoch, &fl.scratch, out);
                }
            }
            if fl.cursor.is_some_and(|(i, _)| i >= fl.items.len()) {
                fl.cursor = None;
            }
        }
    }

    /// Replaces the flight and schedules its first transmission. `expect_reply` arms the
    /// retransmission timer (every flight but the server's last).
    pub(crate) fn start_flight(&mut self, now: Instant, items: Vec<FlightItem>, expect_reply: bool) {
        let initial = self.config.initial_retransmit;
        let fl = self.flight.get_or_insert_with(|| Box::new(Flight::new(initial, None)));
        fl.items = items;
        fl.cursor = Some((0, 0));
        fl.last_sent_at = Some(now);
        fl.rto = initial;
        fl.retransmit_at = expect_reply.then(|| now + jittered(&mut self.rng, initial));
        fl.awaits_reply = expect_reply;
    }

    /// The peer sent its previous flight again: ours was lost. Resend it, at most once per
    /// quarter of the initial timeout so duplicated datagrams cannot multiply our traffic.
    pub(super) fn answer_retransmission(&mut self, now: Instant) {
        let Some(fl) = self.flight.as_deref_mut() else {
            return;
        };
        if fl.items.is_empty() || fl.cursor.is_some() {
            return;
        }
        if fl.last_sent_at.is_some_and(|t| now.saturating_duration_since(t) < self.config.initial_retransmit / 4) {
            return;
        }
        if self.hs.is_none() {
            if fl.final_resends >= MAX_FINAL_RESENDS {
                return;
            }
            fl.final_resends += 1;
        }
        fl.cursor = Some((0, 0));
        fl.last_sent_at = Some(now);
        self.stats.retransmissions += 1;
    }
}

/// `base` plus up to 10% of it, from a splitmix64 step of `rng`: cheap, seedable, good enough
/// to decorrelate timers.
pub(super) fn jittered(rng: &mut u64, base: Duration) -> Duration {
    *rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *rng;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    base + base.mul_f64((z >> 11) as f64 / (1u64 << 53) as f64 / 10.0)
}
