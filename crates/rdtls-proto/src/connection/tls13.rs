//! What a DTLS 1.3 connection adds to the engine: acknowledgements (RFC 9147 §7) of the
//! handshake records received, and the handling of the peer's ACKs, which spare the records
//! they name from retransmission; post-handshake messages.

use super::*;
use crate::handshake::tls13::key_schedule::Secret;
use crate::messages::tls13::{parse_ack, write_ack, RecordNumber};

/// Most record numbers held for the next ACK: a flight's worth. Older ones are left out (the
/// peer resends what it sent in them, and the next ACK names the new records).
const MAX_PENDING_ACKS: usize = 32;

/// The DTLS 1.3 state of a connection.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// The application traffic secrets, read and write (a KeyUpdate derives the next).
    pub(crate) secrets: Option<(Secret, Secret)>,
    /// A record of the peer authenticated under epoch 2 or later: plaintext records are no
    /// longer accepted.
    pub(crate) peer_encrypts: bool,
    /// Handshake records received and not yet acknowledged, in arrival order.
    pending: Vec<RecordNumber>,
    /// When to acknowledge what came of a flight that is not complete (¼ of the initial
    /// retransmission timeout after its first record, RFC 9147 §7.1).
    pub(crate) ack_at: Option<Instant>,
    /// An ACK is due now.
    ack_now: bool,
}

impl State {
    /// A handshake record `(epoch, seq)` was received and processed or buffered. Once the
    /// handshake is `complete` it is acknowledged at once (the peer's last flight, or a
    /// post-handshake message); before, after a short delay unless our next flight answers
    /// first.
    pub(crate) fn received(&mut self, now: Instant, epoch: u64, seq: u64, rto: Duration, complete: bool) {
        let n = RecordNumber { epoch, seq };
        if !self.pending.contains(&n) {
            if self.pending.len() >= MAX_PENDING_ACKS {
                self.pending.remove(0);
            }
            self.pending.push(n);
        }
        if complete {
            self.ack_now = true;
        } else if self.ack_at.is_none() {
            self.ack_at = Some(now + rto / 4);
        }
    }

    /// We sent a new flight: it acknowledges the peer's implicitly.
    pub(crate) fn flight_sent(&mut self) {
        self.pending.clear();
        self.ack_at = None;
        self.ack_now = false;
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.ack_at.is_some_and(|t| now >= t) {
            self.ack_at = None;
            self.ack_now = !self.pending.is_empty();
        }
    }
}

impl Connection {
    /// The epoch our ACKs go in: the one we write in, or the handshake epoch while we still
    /// write plaintext but have its keys.
    fn ack_epoch(&self) -> u64 {
        let write = self.epochs.write_epoch();
        let handshake = crate::handshake::tls13::EPOCH_HANDSHAKE;
        if write < handshake && self.epochs.write_keys(handshake).is_some() {
            handshake
        } else {
            write
        }
    }

    /// Appends the ACK that is due, if it fits.
    pub(super) fn transmit_ack(&mut self, mtu: usize, out: &mut Vec<u8>) {
        let Some(t) = self.tls13.as_deref_mut() else { return };
        if !t.ack_now || t.pending.is_empty() {
            return;
        }
        let mut records = core::mem::take(&mut t.pending);
        t.ack_now = false;
        t.ack_at = None;
        // RFC 9147 §7: in increasing order.
        records.sort_unstable();
        records.dedup();
        let mut body = Vec::with_capacity(2 + 16 * records.len());
        write_ack(&mut body, &records);
        let epoch = self.ack_epoch();
        if out.len() + self.record_overhead_in(epoch) + body.len() > mtu && !out.is_empty() {
            // Next datagram.
            if let Some(t) = self.tls13.as_deref_mut() {
                t.pending = records;
                t.ack_now = true;
            }
            return;
        }
        let _ = self.write_record(ContentType::ACK, epoch, &body, out);
        if let Some(t) = self.tls13.as_deref_mut() {
            t.pending = records;
            t.pending.clear();
        }
    }

    /// The peer acknowledged records: what they carried of our flight is not sent again, and
    /// a flight acknowledged whole is done.
    pub(super) fn handle_ack(&mut self, _now: Instant, epoch: u64, body: &[u8]) {
        let Some(records) = parse_ack(body) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if epoch == 0 && self.epochs.write_keys(crate::handshake::tls13::EPOCH_HANDSHAKE).is_some() {
            // Once records are encrypted, a plaintext ACK could be anyone's.
            self.stats.dropped_unexpected += 1;
            return;
        }
        self.stats.records_accepted += 1;
        let Some(fl) = self.flight.as_deref_mut() else { return };
        for n in &records {
            let hits: Vec<_> = fl.sent.iter().filter(|f| f.epoch == n.epoch && f.seq == n.seq).copied().collect();
            for f in hits {
                if !fl.acked.contains(&(f.item, f.offset, f.offset + f.len)) {
                    fl.acked.push((f.item, f.offset, f.offset + f.len));
                }
            }
        }
        if fl.all_acked() {
            if self.hs.is_none() {
                // Our last flight arrived whole: nothing more to send.
                self.flight = None;
            } else {
                // The peer has all of it; its answer is its to resend.
                fl.retransmit_at = None;
                fl.cursor = None;
            }
        }
    }

    /// A handshake record after the handshake: the peer's last flight again (our ACK was
    /// lost: acknowledge again), or a post-handshake message.
    pub(super) fn handle_post_handshake(&mut self, _now: Instant, epoch: u16, body: &[u8]) -> Result<(), Error> {
        let mut r = Reader::new(body);
        while let Some((h, _)) = HandshakeHeader::parse(&mut r) {
            if u64::from(epoch) < crate::handshake::tls13::EPOCH_HANDSHAKE {
                self.stats.dropped_unexpected += 1;
                continue;
            }
            match h.msg_type {
                // The peer's last flight, retransmitted: the record is acknowledged again.
                HandshakeType::FINISHED | HandshakeType::CERTIFICATE | HandshakeType::CERTIFICATE_VERIFY => {}
                // Tickets are for resumption, which this connection does not use: acknowledged
                // and dropped.
                HandshakeType::NEW_SESSION_TICKET => {}
                _ => self.stats.dropped_unexpected += 1,
            }
        }
        Ok(())
    }
}
