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
    /// DTLS 1.3: the flight is retransmitted until acknowledged, even after the handshake.
    pub(super) awaits_ack: bool,
    /// DTLS 1.3: the record numbers of the fragments sent, with what each carried (item,
    /// offset, length), so an ACK can be applied (bounded: the newest are kept).
    pub(super) sent: VecDeque<SentFragment>,
    /// DTLS 1.3: the byte ranges of each item the peer acknowledged (item, start, end).
    pub(super) acked: Vec<(usize, usize, usize)>,
    /// Next-epoch records (whole, header included) that arrived before the keys to read them
    /// (bounded).
    pub(super) early: Vec<Vec<u8>>,
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
            awaits_ack: false,
            sent: VecDeque::new(),
            acked: Vec::new(),
            early: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

/// A handshake fragment sent in one DTLS 1.3 record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SentFragment {
    pub(super) epoch: u64,
    pub(super) seq: u64,
    pub(super) item: usize,
    pub(super) offset: usize,
    pub(super) len: usize,
}

/// Most record numbers remembered for one flight: a retransmitted flight's new records are
/// added after the old ones, which an ACK may still name.
const MAX_SENT_FRAGMENTS: usize = 128;

impl Flight {
    /// Remembers that record `(epoch, seq)` carried `len` bytes of item `item` from `offset`.
    fn record_sent(&mut self, epoch: u64, seq: u64, item: usize, offset: usize, len: usize) {
        if self.sent.len() >= MAX_SENT_FRAGMENTS {
            self.sent.pop_front();
        }
        self.sent.push_back(SentFragment { epoch, seq, item, offset, len });
    }

    /// Where the next unacknowledged bytes of item `i` start, from `off`, and how far they
    /// run before an acknowledged range (`usize::MAX`: to the end).
    fn unacked_from(&self, i: usize, mut off: usize) -> (usize, usize) {
        loop {
            let covering = self.acked.iter().find(|&&(item, s, e)| item == i && s <= off && off < e);
            match covering {
                Some(&(_, _, e)) => off = e,
                None => break,
            }
        }
        let next = self.acked.iter().filter(|&&(item, s, _)| item == i && s > off).map(|&(_, s, _)| s).min();
        (off, next.unwrap_or(usize::MAX))
    }

    /// Whether every byte of every item was acknowledged.
    pub(super) fn all_acked(&self) -> bool {
        self.items.iter().enumerate().all(|(i, item)| match item {
            FlightItem::Message { body, .. } => {
                let (off, _) = self.unacked_from(i, 0);
                off >= body.len() && self.acked.iter().any(|&(it, _, _)| it == i)
            }
            FlightItem::ChangeCipherSpec => true,
        })
    }
}

impl Connection {
    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let fl = self.flight.as_deref();
        let tls13 = self.tls13.as_deref().and_then(tls13::State::next_timer);
        let timers = fl.into_iter().flat_map(|fl| [fl.retransmit_at, fl.deadline, fl.hold_until]);
        timers.chain([tls13, self.rrc_timer()]).flatten().min()
    }

    /// When [`handle_timeout`](Self::handle_timeout) next resends something of ours or sends
    /// an acknowledgement (DTLS 1.3), if anything waits for that: the timer OpenSSL's and
    /// BoringSSL's `DTLSv1_get_timeout` report. `None` means nothing of ours is in flight
    /// unacknowledged. [`poll_timeout`](Self::poll_timeout) also covers the housekeeping timers,
    /// which send nothing: the handshake's overall deadline, the release of a final flight or
    /// of old keys, the end of an address validation.
    pub fn retransmit_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let resend = self.flight.as_deref().and_then(|fl| fl.retransmit_at);
        let ack = self.tls13.as_deref().and_then(|t| t.ack_at);
        resend.into_iter().chain(ack).min()
    }

    /// The largest datagram handshake flights use (Qt's `mtuHint`).
    pub fn mtu(&self) -> usize {
        match (&self.hs, &self.details) {
            (Some(hs), _) => hs.mtu,
            (None, Some(d)) => d.mtu.unwrap_or(self.config.mtu),
            (None, None) => self.config.mtu,
        }
    }

    /// Sets the largest datagram handshake flights use (Qt's `setMtuHint`); `0` restores the
    /// configured value. Application data is never fragmented.
    pub fn set_mtu(&mut self, mtu: usize) -> Result<(), Error> {
        let mtu = if mtu == 0 { self.config.mtu } else { mtu };
        if !(crate::config::MIN_MTU..=65_507).contains(&mtu) {
            return Err(Error::InvalidInput("MTU must be between 64 and 65507 bytes"));
        }
        if let Some(hs) = &mut self.hs {
            hs.mtu = mtu;
        }
        // Kept past the handshake too, for post-handshake flights (tickets, KeyUpdates).
        if mtu != self.config.mtu || self.details.is_some() {
            self.details_mut().mtu = Some(mtu);
        }
        Ok(())
    }

    /// Packs as much of the flight being (re)transmitted as fits in one datagram: consecutive
    /// encrypted fragments of one epoch share a record, and a message that does not fit whole
    /// is fragmented into the room left, so no datagram or encrypted record ends with room for
    /// more.
    pub(super) fn transmit_flight(&mut self, fl: &mut Flight, mtu: usize, out: &mut Vec<u8>) {
        // The epoch of the handshake record being built in `fl.scratch`, if any, and (DTLS 1.3)
        // the fragments in it (item, offset, length), for `record_sent` once its number is
        // known (allocated only then, and only while a flight is being sent).
        let mut open: Option<u64> = None;
        let mut in_record = Vec::new();
        fl.scratch.clear();
        while let Some((i, off)) = fl.cursor {
            let Some(item) = fl.items.get(i) else {
                fl.cursor = None;
                break;
            };
            // DTLS 1.3: what the peer acknowledged is not sent again.
            let (off, run_end) = fl.unacked_from(i, off);
            if let FlightItem::Message { body, .. } = item {
                if off >= body.len() && fl.acked.iter().any(|&(it, _, _)| it == i) {
                    fl.cursor = (i + 1 < fl.items.len()).then_some((i + 1, 0));
                    continue;
                }
            }
            let (epoch, need_min, limit) = match item {
                FlightItem::ChangeCipherSpec => (0, 1, mtu),
                // A ClientHello starts its flight, so one that fits the MTU goes whole; a
                // larger one (a post-quantum key share is 1,216 bytes) is fragmented like any
                // message. Some small stacks cannot reassemble one (Mbed TLS 2.28, wolfSSL's
                // DTLS 1.2 server): `ConfigBuilder::key_share_groups` keeps it small for them.
                FlightItem::Message { epoch, body, .. } => (*epoch, HS_HEADER_LEN + usize::from(!body.is_empty()), mtu),
            };
            // Encrypted fragments share records; plaintext ones keep a record each, which
            // every stack reads (some small ones take one message per plaintext record).
            let joins = matches!(item, FlightItem::Message { .. }) && open == Some(epoch) && epoch > 0;
            let overhead = self.record_overhead_in(epoch);
            let room = limit.saturating_sub(out.len() + overhead + fl.scratch.len());
            if open.is_some() && (!joins || room < need_min) {
                // Another kind of record comes next, or this one is full: seal it, then place
                // the item again.
                self.close_flight_record(fl, &mut open, &mut in_record, out);
                continue;
            }
            if room < need_min {
                if out.is_empty() {
                    // Cannot happen with MIN_MTU; never loop forever if it somehow does.
                    fl.cursor = None;
                }
                break;
            }
            match item {
                FlightItem::ChangeCipherSpec => {
                    fl.cursor = Some((i + 1, 0));
                    let _ = self.write_record(ContentType::CHANGE_CIPHER_SPEC, 0, &[1], out);
                }
                FlightItem::Message { epoch, msg_type, seq, body } => {
                    let take = (body.len() - off).min(room - HS_HEADER_LEN).min(run_end - off);
                    HandshakeHeader {
                        msg_type: *msg_type,
                        length: body.len() as u32,
                        message_seq: *seq,
                        fragment_offset: off as u32,
                        fragment_length: take as u32,
                    }
                    .write(&mut fl.scratch);
                    fl.scratch.extend_from_slice(&body[off..off + take]);
                    open = Some(*epoch);
                    if self.tls13.is_some() {
                        in_record.push((i, off, take));
                    }
                    fl.cursor = Some(if off + take >= body.len() { (i + 1, 0) } else { (i, off + take) });
                }
            }
            if fl.cursor.is_some_and(|(i, _)| i >= fl.items.len()) {
                fl.cursor = None;
            }
        }
        if open.is_some() {
            self.close_flight_record(fl, &mut open, &mut in_record, out);
        }
    }

    /// Seals the handshake record built in `fl.scratch` into `out`, and (DTLS 1.3) remembers
    /// which fragments its record number carries, for the peer's ACK.
    fn close_flight_record(
        &mut self,
        fl: &mut Flight,
        open: &mut Option<u64>,
        in_record: &mut Vec<(usize, usize, usize)>,
        out: &mut Vec<u8>,
    ) {
        let Some(epoch) = open.take() else {
            return;
        };
        let seq = self.write_record(ContentType::HANDSHAKE, epoch, &fl.scratch, out);
        if let (Some(seq), Some(_)) = (seq, &self.tls13) {
            for &(item, offset, len) in in_record.iter() {
                fl.record_sent(epoch, seq, item, offset, len);
            }
        }
        fl.scratch.clear();
        in_record.clear();
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
        fl.retransmit_at = expect_reply.then(|| now + jittered(&mut self.rng, initial, self.config.retransmit_jitter));
        fl.awaits_reply = expect_reply;
        fl.awaits_ack = false;
        fl.sent.clear();
        fl.acked.clear();
        if let (Some(t), true) = (&mut self.tls13, self.hs.is_some()) {
            // A new flight of the handshake acknowledges the peer's implicitly (RFC 9147 §7.1).
            // Not after it: a post-handshake message (our KeyUpdate, NewConnectionId) answering
            // the peer's does not acknowledge it, an ACK does.
            t.flight_sent();
        }
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
/// to decorrelate timers. Without `jitter`, `base` itself.
pub(super) fn jittered(rng: &mut u64, base: Duration, jitter: bool) -> Duration {
    if !jitter {
        return base;
    }
    *rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *rng;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    base + base.mul_f64((z >> 11) as f64 / (1u64 << 53) as f64 / 10.0)
}
