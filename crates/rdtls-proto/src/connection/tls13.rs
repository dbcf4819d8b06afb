//! What a DTLS 1.3 connection adds to the engine: acknowledgements (RFC 9147 §7) of the
//! handshake records received, and the handling of the peer's ACKs, which spare the records
//! they name from retransmission; post-handshake messages.

use super::*;
use crate::handshake::reassembly::{Inserted, Reassembler};
use crate::handshake::tls13::key_schedule::Secret;
use crate::handshake::FlightItem;
use crate::messages::tls13::{parse_ack, write_ack, RecordNumber};

/// Most record numbers held for the next ACK: a flight's worth. Older ones are left out (the
/// peer resends what it sent in them, and the next ACK names the new records).
const MAX_PENDING_ACKS: usize = 32;

/// How far ahead of the next post-handshake message the peer's messages are held (a flight
/// of two tickets, say, whose fragments cross).
const POST_HANDSHAKE_WINDOW: u16 = 4;

/// How long the peer's previous epoch is still read after the first record of its new one
/// authenticated: twice the maximum segment lifetime (RFC 793's two minutes), as BoringSSL. A
/// record reordered across the KeyUpdate still arrives; after that, the old keys only serve
/// replays and forgeries.
pub(crate) const PREVIOUS_EPOCH_LIFETIME: Duration = Duration::from_secs(240);

/// The last epoch: KeyUpdates stop there.
pub(crate) const MAX_EPOCH: u64 = 0xffff;

/// The DTLS 1.3 state of a connection.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// The application traffic secrets, read and write (a KeyUpdate derives the next).
    pub(crate) secrets: Option<(Secret, Secret)>,
    /// A record of the peer authenticated under epoch 2 or later: plaintext records are no
    /// longer accepted.
    pub(crate) peer_encrypts: bool,
    /// Handshake records received since our last flight (each ACK sorts them, and the lowest
    /// goes first when the list is full): each ACK names them all (an ACK lost or overtaken
    /// costs nothing), until our next flight acknowledges them implicitly.
    pending: Vec<RecordNumber>,
    /// When to acknowledge what came of a flight that is not complete (¼ of the initial
    /// retransmission timeout after its first record, RFC 9147 §7.1).
    pub(crate) ack_at: Option<Instant>,
    /// An ACK is due now.
    ack_now: bool,
    /// Flights we started (wrapping): a record whose handling started one is acknowledged by
    /// it, implicitly.
    pub(crate) flights: u16,
    /// The handshake took a HelloRetryRequest.
    pub(crate) hello_retried: bool,
    /// When the handshake epoch's keys go (server: once the client can no longer resend its
    /// Finished, which we must acknowledge again).
    pub(crate) retire_handshake_at: Option<Instant>,
    /// The `message_seq` of our next post-handshake message; past 0xffff none is left (the
    /// 16-bit field never wraps: a message number is never used twice).
    pub(crate) next_send_seq: u32,
    /// The `message_seq` of the peer's next post-handshake message; past 0xffff, every
    /// message is an old one.
    pub(crate) peer_next_seq: u32,
    /// The epoch our KeyUpdate was sent in, until it is acknowledged (then we write in the
    /// next).
    key_update_sent: Option<u16>,
    /// A KeyUpdate to send once the flight in progress is acknowledged: whether it asks the
    /// peer to update too.
    key_update_queued: Option<bool>,
    /// The epoch the read traffic secret in `secrets` belongs to.
    pub(crate) read_epoch: u64,
    /// After the peer's KeyUpdate: no record of its new epoch has authenticated yet, so it may
    /// still be writing in the previous one (our ACK may be lost), whose keys stay.
    awaiting_new_epoch: bool,
    /// When the read keys of the peer's epochs before its current one go (see
    /// [`PREVIOUS_EPOCH_LIFETIME`]).
    retire_read_at: Option<Instant>,
    /// Server: application data received before the handshake ended, in arrival order.
    held: Vec<Vec<u8>>,
    /// Session tickets, sent or received (allocated only where used).
    pub(crate) tickets: Option<Box<ticket13::Tickets>>,
    /// The fragments of the peer's next post-handshake message, while it is not whole.
    fragments: Option<Box<Reassembler>>,
}

/// What [`State::handle_timeout`] found due.
#[derive(Debug, Default)]
pub(crate) struct Due {
    /// The handshake epoch's keys go.
    pub(crate) handshake_keys: bool,
    /// The read keys of the peer's application epochs before this one go.
    pub(crate) read_keys_before: Option<u64>,
}

impl State {
    /// Whether the peer updated its keys and nothing of its new epoch was heard yet: it may
    /// still write in the previous one (our ACK of its KeyUpdate lost).
    pub(crate) fn awaits_peer_new_epoch(&self) -> bool {
        self.awaiting_new_epoch
    }

    /// Whether a KeyUpdate of ours waits to be sent or acknowledged.
    pub(crate) fn key_update_busy(&self) -> bool {
        self.key_update_sent.is_some() || self.key_update_queued.is_some()
    }

    /// Keeps a copy of application data that came before the handshake's end, within
    /// [`MAX_HELD_RECORDS`] and [`MAX_HELD_BYTES`]; `false` when it does not fit (dropped).
    pub(crate) fn hold(&mut self, data: &[u8]) -> bool {
        let bytes: usize = self.held.iter().map(Vec::len).sum();
        if self.held.len() >= MAX_HELD_RECORDS || bytes + data.len() > MAX_HELD_BYTES {
            return false;
        }
        self.held.push(data.to_vec());
        true
    }

    /// The application data held until the handshake's end, to deliver now.
    pub(crate) fn take_held(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.held)
    }

    /// A handshake record `(epoch, seq)` was received and processed or buffered. It is
    /// acknowledged at once if `at_once` (the peer's last flight); otherwise after a quarter of
    /// the retransmission timeout, unless our next flight answers first.
    pub(crate) fn received(&mut self, now: Instant, epoch: u64, seq: u64, rto: Duration, at_once: bool) {
        self.note(epoch, seq);
        if at_once {
            self.ack_now = true;
        } else if self.ack_at.is_none() {
            self.ack_at = Some(now + rto / 4);
        }
    }

    /// Record `(epoch, seq)` is to be named by the next ACK, which it does not call for by
    /// itself (the plaintext records of a ServerHello, read before the version was known).
    pub(crate) fn note(&mut self, epoch: u64, seq: u64) {
        let n = RecordNumber { epoch, seq };
        if !self.pending.contains(&n) {
            if self.pending.len() >= MAX_PENDING_ACKS {
                self.pending.remove(0);
            }
            self.pending.push(n);
        }
    }

    /// We sent a new flight: it acknowledges the peer's implicitly.
    pub(crate) fn flight_sent(&mut self) {
        self.flights = self.flights.wrapping_add(1);
        self.pending.clear();
        self.ack_at = None;
        self.ack_now = false;
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Due {
        if self.ack_at.is_some_and(|t| now >= t) {
            self.ack_at = None;
            self.ack_now = !self.pending.is_empty();
        }
        let handshake_keys = self.retire_handshake_at.is_some_and(|t| now >= t);
        if handshake_keys {
            self.retire_handshake_at = None;
        }
        let read_keys_before = if self.retire_read_at.is_some_and(|t| now >= t) {
            self.retire_read_at = None;
            // The epoch before the current one stays while the peer may still write in it
            // (it updated again, and nothing of its newest epoch was heard yet).
            Some(self.read_epoch - u64::from(self.awaiting_new_epoch))
        } else {
            None
        };
        Due { handshake_keys, read_keys_before }
    }

    /// A record of `epoch` authenticated. The first of the peer's new epoch after its
    /// KeyUpdate starts the clock of the previous epoch's keys; returns the epoch whose
    /// older keys go now (the peer updated twice within the lifetime: the keys before the
    /// previous epoch are still held).
    pub(crate) fn heard_in(&mut self, now: Instant, epoch: u64) -> Option<u64> {
        if !self.awaiting_new_epoch || epoch != self.read_epoch {
            return None;
        }
        self.awaiting_new_epoch = false;
        let pending = self.retire_read_at.replace(now + PREVIOUS_EPOCH_LIFETIME);
        pending.map(|_| epoch - 1)
    }

    /// The `message_seq` for our next post-handshake message, if any is left.
    pub(crate) fn take_send_seq(&mut self) -> Option<u16> {
        let seq = u16::try_from(self.next_send_seq).ok()?;
        self.next_send_seq += 1;
        Some(seq)
    }

    /// The next instant a timer of this state is due.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        [self.ack_at, self.retire_handshake_at, self.retire_read_at].into_iter().flatten().min()
    }
}

impl Connection {
    /// Updates our sending keys (RFC 9147 §8, RFC 8446 §4.6.3), and asks the peer to update its
    /// own if `request_peer`: DTLS 1.3 only. The KeyUpdate message is sent (and retransmitted
    /// until acknowledged) with the next [`poll_transmit`](Self::poll_transmit)s; records keep
    /// the current keys until the peer acknowledges it, then use the new ones. Application data
    /// keeps flowing throughout, in both directions. A KeyUpdate asked for while another is
    /// unacknowledged waits for it.
    pub fn update_keys(&mut self, now: Instant, request_peer: bool) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::InvalidOperation("the connection is closed"));
        }
        if !self.is_established() {
            return Err(Error::InvalidOperation("the handshake has not completed"));
        }
        let Some(t) = self.tls13.as_deref_mut() else {
            return Err(Error::InvalidOperation("key updates are a DTLS 1.3 feature"));
        };
        // The KeyUpdate will need a message number of its own (one already queued takes this
        // request with it).
        if t.next_send_seq > u32::from(u16::MAX) {
            return Err(Error::InvalidOperation(
                "no handshake message number is left on this connection for another KeyUpdate",
            ));
        }
        // Epochs stop at 0xffff (the handshake layer numbers them in 16 bits, as BoringSSL
        // does): never past it, never wrapping (RFC 9147 §4.2.1).
        let pending = u64::from(t.key_update_sent.is_some() || t.key_update_queued.is_some());
        if self.epochs.write_epoch() + pending >= MAX_EPOCH {
            return Err(Error::InvalidOperation("too many KeyUpdates: the epoch would pass 0xffff"));
        }
        t.key_update_queued = Some(t.key_update_queued.unwrap_or(false) | request_peer);
        self.start_key_update(now);
        Ok(())
    }

    /// Sends the next post-handshake message of ours if nothing else awaits acknowledgement:
    /// a queued KeyUpdate first, then a session ticket, then connection ID messages.
    pub(super) fn start_post_handshake(&mut self, now: Instant) {
        self.start_key_update(now);
        self.start_ticket(now);
        self.start_cid_message(now);
    }

    /// Sends the queued KeyUpdate if nothing else of ours awaits acknowledgement.
    fn start_key_update(&mut self, now: Instant) {
        let busy = self.flight.as_deref().is_some_and(|fl| fl.awaits_ack || fl.awaits_reply);
        let Some(t) = self.tls13.as_deref_mut() else { return };
        if busy || t.key_update_sent.is_some() {
            return;
        }
        let Some(request) = t.key_update_queued else { return };
        let epoch = self.epochs.write_epoch();
        // Epochs stop at 0xffff: there, a request of the peer's is ignored (RFC 9147 §8, as
        // erratum 8050 words it); update_keys refuses ours before.
        let Some(sent) = u16::try_from(epoch).ok().filter(|&e| u64::from(e) < MAX_EPOCH) else {
            t.key_update_queued = None;
            return;
        };
        // update_keys refuses a KeyUpdate without a message number left.
        let Some(seq) = t.take_send_seq() else { return };
        t.key_update_queued = None;
        t.key_update_sent = Some(sent);
        let item =
            FlightItem::Message { epoch, msg_type: HandshakeType::KEY_UPDATE, seq, body: vec![u8::from(request)] };
        self.start_acknowledged_flight(now, item);
    }

    /// Sends `item`, a post-handshake message, as a flight of its own, resent until the peer
    /// acknowledges it: for at most a handshake timeout (a peer that acknowledges nothing for
    /// that long is gone).
    pub(super) fn start_acknowledged_flight(&mut self, now: Instant, item: FlightItem) {
        self.start_flight(now, vec![item], true);
        let timeout = self.config.handshake_timeout;
        if let Some(fl) = self.flight.as_deref_mut() {
            fl.awaits_ack = true;
            fl.awaits_reply = false;
            fl.deadline = Some(now + timeout);
        }
    }

    /// Our KeyUpdate was acknowledged: from now on we write with the next keys.
    fn key_update_acknowledged(&mut self) -> Result<(), Error> {
        let Some(t) = self.tls13.as_deref_mut() else { return Ok(()) };
        let Some(epoch) = t.key_update_sent.take().map(u64::from) else { return Ok(()) };
        let suite = self.suite.ok_or(Error::Crypto)?;
        let Some((_, write)) = &mut t.secrets else { return Err(Error::Crypto) };
        let s = crate::handshake::tls13::schedule(&*self.config.provider, suite.hash);
        *write = s.next_traffic_secret(write)?;
        let keys = crate::handshake::tls13::epoch_keys(&*self.config.provider, suite, write)?;
        self.stats.key_updates_sent += 1;
        self.epochs.install(epoch + 1, None, Some(keys));
        self.epochs.set_write_epoch(epoch + 1);
        // Nothing of ours is left to send in the old epoch: everything before the KeyUpdate
        // was acknowledged before it went (RFC 9147 §8, erratum 8047).
        self.epochs.retire_write(epoch);
        Ok(())
    }

    /// The peer's KeyUpdate, in `epoch`: acknowledged by the caller; from its next record on,
    /// the peer writes in the next epoch, whose keys are installed now.
    fn handle_key_update(&mut self, epoch: u64, body: &[u8]) -> Result<(), Error> {
        let request = crate::messages::tls13::parse_key_update(body).ok_or(Error::decode("KeyUpdate"))?;
        let suite = self.suite.ok_or(Error::Crypto)?;
        let Some(t) = self.tls13.as_deref_mut() else { return Ok(()) };
        if epoch != t.read_epoch.max(crate::handshake::tls13::EPOCH_APPLICATION) {
            return Err(Error::unexpected("KeyUpdate outside the peer's current epoch"));
        }
        if epoch >= MAX_EPOCH {
            return Err(Error::unexpected("too many KeyUpdates: the epoch would pass 0xffff"));
        }
        let Some((read, _)) = &mut t.secrets else { return Err(Error::Crypto) };
        let s = crate::handshake::tls13::schedule(&*self.config.provider, suite.hash);
        *read = s.next_traffic_secret(read)?;
        let keys = crate::handshake::tls13::epoch_keys(&*self.config.provider, suite, read)?;
        t.read_epoch = epoch + 1;
        t.awaiting_new_epoch = true;
        self.stats.key_updates_received += 1;
        // Asked to update ours: one KeyUpdate of ours answers every request made before it
        // is acknowledged (one queued or in flight already does).
        if request && t.key_update_sent.is_none() {
            t.key_update_queued = Some(t.key_update_queued.unwrap_or(false));
        }
        self.epochs.install(epoch + 1, Some(keys), None);
        Ok(())
    }

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
        t.ack_now = false;
        t.ack_at = None;
        // RFC 9147 §7: in increasing order (kept so: sorted in place, no copy).
        t.pending.sort_unstable();
        let count = t.pending.len();
        let plaintext_only = t.pending.iter().all(|n| n.epoch == 0);
        let handshake_only = t.pending.iter().all(|n| n.epoch <= crate::handshake::tls13::EPOCH_HANDSHAKE);
        let epoch = self.ack_epoch();
        // A plaintext ACK (a server after its HelloRetryRequest, of part of the second
        // ClientHello) names plaintext records only (RFC 9147 §7).
        if epoch == 0 && !plaintext_only {
            return;
        }
        let overhead = self.record_overhead_in(epoch) + 2;
        if !out.is_empty() && out.len() + overhead + 16 * count > mtu {
            // In the next datagram.
            if let Some(t) = self.tls13.as_deref_mut() {
                t.ack_now = true;
            }
            return;
        }
        // One ACK never exceeds the MTU: with too many records for it, the newest are named
        // (the peer resends the others, and they are acknowledged then).
        let skip = count.saturating_sub((mtu.saturating_sub(overhead) / 16).max(1));
        let Some(t) = self.tls13.as_deref() else { return };
        let mut body = Vec::with_capacity(2 + 16 * (count - skip));
        write_ack(&mut body, &t.pending[skip..]);
        let _ = self.write_record(ContentType::ACK, epoch, &body, out);
        // The handshake's end: once the peer's last flight (all in the handshake epoch) is
        // acknowledged, nothing needs naming again (a resent Finished comes in a new record,
        // named then), and an idle connection keeps no list.
        if self.is_established() && handshake_only {
            if let Some(t) = self.tls13.as_deref_mut() {
                t.pending = Vec::new();
            }
        }
    }

    /// The peer acknowledged records: what they carried of our flight is not sent again, and
    /// a flight acknowledged whole is done.
    pub(super) fn handle_ack(&mut self, now: Instant, epoch: u64, body: &[u8]) -> Result<(), Error> {
        let Some(records) = parse_ack(body) else {
            self.stats.dropped_malformed += 1;
            return Ok(());
        };
        if epoch == 0 && (self.hs.is_none() || records.iter().any(|n| n.epoch != 0)) {
            // A plaintext ACK only ever names plaintext records (RFC 9147 §7: an ACK's epoch
            // is at least that of what it names), during the handshake: a server's
            // HelloRetryRequest. A forged one stops only the retransmission of that, which the
            // client's repeated ClientHello still brings.
            self.stats.dropped_unexpected += 1;
            return Ok(());
        }
        self.stats.records_accepted += 1;
        let Some(fl) = self.flight.as_deref_mut() else { return Ok(()) };
        for n in &records {
            for f in fl.sent.iter().filter(|f| f.epoch == n.epoch && f.seq == n.seq) {
                let range = (f.item, f.offset, f.offset + f.len);
                if !fl.acked.contains(&range) {
                    fl.acked.push(range);
                }
            }
        }
        if fl.all_acked() {
            if self.hs.is_none() {
                // Our last flight (or a post-handshake message) arrived whole: nothing more to
                // send. A client no longer needs the handshake epoch; a server keeps it until
                // `retire_handshake_at`, to acknowledge the client's Finished again if that
                // ACK was lost (a ticket acknowledged says nothing of it).
                self.flight = None;
                if self.side == Side::Client {
                    self.epochs.retire(crate::handshake::tls13::EPOCH_HANDSHAKE);
                }
                self.key_update_acknowledged()?;
                self.start_post_handshake(now);
            } else {
                // The peer has all of it; its answer is its to resend.
                fl.retransmit_at = None;
                fl.cursor = None;
            }
        }
        Ok(())
    }

    /// A handshake record after the handshake: the peer's last flight again (our ACK was
    /// lost: the record is acknowledged again by the caller), or post-handshake messages
    /// (KeyUpdate, NewSessionTicket, connection ID messages), handled in order. Fragments, and
    /// messages up to [`POST_HANDSHAKE_WINDOW`] ahead of the next one, are held (within the
    /// handshake's message limit in all) until they can be; what lies further ahead is dropped
    /// unacknowledged, and comes back with the peer's retransmission.
    pub(super) fn handle_post_handshake(&mut self, now: Instant, epoch: u16, body: &[u8]) -> Result<bool, Error> {
        let epoch = u64::from(epoch);
        let mut acknowledge = false;
        let mut dropped = false;
        let mut r = Reader::new(body);
        while let Some((h, fragment)) = HandshakeHeader::parse(&mut r) {
            if epoch < crate::handshake::tls13::EPOCH_HANDSHAKE {
                self.stats.dropped_unexpected += 1;
                continue;
            }
            if epoch == crate::handshake::tls13::EPOCH_HANDSHAKE {
                let later = self.tls13.as_deref().is_some_and(|t| u32::from(h.message_seq) >= t.peer_next_seq);
                if later {
                    // A message the peer sends after its Finished, in the handshake epoch.
                    return Err(Error::unexpected("handshake message after the peer's Finished"));
                }
                // The peer's last flight again. A server acknowledges the client's Finished
                // again (its ACK was lost); a client's own Finished, resent until the server
                // acknowledges it, is what answers the server's flight.
                acknowledge |= self.side == Side::Server;
                continue;
            }
            let max_message = self.config.max_handshake_message;
            let Some(t) = self.tls13.as_deref_mut() else { return Ok(false) };
            let expected = t.peer_next_seq;
            let seq = u32::from(h.message_seq);
            if seq < expected {
                // An old message: a retransmission, acknowledged again. Past 0xffff, all are
                // old: the numbers never wrap.
                acknowledge = true;
                continue;
            }
            if epoch < t.read_epoch {
                // A new message under keys the peer's KeyUpdate retired.
                return Err(Error::unexpected("handshake data after a KeyUpdate"));
            }
            if seq == expected && h.is_whole() && t.fragments.is_none() {
                // The common case: the next message, whole, nothing held.
                t.peer_next_seq = expected + 1;
                acknowledge = true;
                self.post_handshake_message(now, epoch, h.msg_type, fragment)?;
                self.nothing_after_key_update(h.msg_type, epoch, !r.is_empty())?;
                continue;
            }
            if seq - expected >= u32::from(POST_HANDSHAKE_WINDOW) {
                // Not acknowledged: the record comes again whole (RFC 9147 §7).
                self.stats.dropped_fragments += 1;
                dropped = true;
                continue;
            }
            let reasm = t.fragments.get_or_insert_with(|| {
                let mut r = Reassembler::with_window(max_message, max_message, POST_HANDSHAKE_WINDOW);
                r.set_next_seq(expected as u16);
                Box::new(r)
            });
            match reasm.insert(epoch as u16, &h, fragment) {
                Inserted::Buffered | Inserted::Duplicate => acknowledge = true,
                Inserted::Old => {
                    acknowledge = true;
                    continue;
                }
                Inserted::Dropped => {
                    self.stats.dropped_fragments += 1;
                    dropped = true;
                    continue;
                }
            }
            while let Some(message) = self.tls13.as_deref_mut().and_then(|t| t.fragments.as_deref_mut()?.pop()) {
                if let Some(t) = self.tls13.as_deref_mut() {
                    t.peer_next_seq += 1;
                    if t.fragments.as_deref().is_some_and(Reassembler::is_empty) {
                        t.fragments = None;
                    }
                }
                self.post_handshake_message(now, epoch, message.msg_type, &message.body)?;
                self.nothing_after_key_update(message.msg_type, epoch, !r.is_empty())?;
            }
        }
        Ok(acknowledge && !dropped)
    }

    /// A KeyUpdate ends its epoch's handshake messages (RFC 8446 §5.1: it is the last of its
    /// record and of its keys): more in the record, or held from that epoch, is excess.
    fn nothing_after_key_update(&self, ty: HandshakeType, epoch: u64, more_in_record: bool) -> Result<(), Error> {
        if ty != HandshakeType::KEY_UPDATE {
            return Ok(());
        }
        let held =
            self.tls13.as_deref().and_then(|t| t.fragments.as_deref()).is_some_and(|f| f.holds_epoch(epoch as u16));
        if more_in_record || held {
            return Err(Error::unexpected("handshake data after a KeyUpdate"));
        }
        Ok(())
    }

    /// Handles one whole post-handshake message of the peer.
    fn post_handshake_message(
        &mut self,
        now: Instant,
        epoch: u64,
        ty: HandshakeType,
        body: &[u8],
    ) -> Result<(), Error> {
        match ty {
            HandshakeType::KEY_UPDATE => {
                self.handle_key_update(epoch, body)?;
                self.start_post_handshake(now);
            }
            HandshakeType::NEW_SESSION_TICKET => self.handle_new_session_ticket(body)?,
            ty @ (HandshakeType::NEW_CONNECTION_ID | HandshakeType::REQUEST_CONNECTION_ID) => {
                self.handle_cid_message(now, ty, body)?;
            }
            _ => return Err(Error::unexpected("handshake message after the handshake")),
        }
        Ok(())
    }
}
