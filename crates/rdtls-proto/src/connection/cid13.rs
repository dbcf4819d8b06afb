//! DTLS 1.3 connection IDs after the handshake (RFC 9147 §9): NewConnectionId gives the peer
//! more of our IDs (or one to use at once), RequestConnectionId asks the peer for spares. A
//! connection keeps a few spares of the peer's, to switch to (say, when it moves, so that the
//! old and new paths cannot be linked by the ID), and accepts records with any ID it issued.
//!
//! A server's IDs must be routable by its [`Endpoint`](crate::Endpoint): asked for new ones,
//! it asks its endpoint ([`EndpointEvent`], then [`Connection::handle_event`]). A client's
//! IDs route nothing (the client reads its own socket): it makes them itself.

use std::collections::VecDeque;

use super::*;
use crate::handshake::FlightItem;
use crate::messages::tls13::{
    parse_new_connection_id, parse_request_connection_id, write_new_connection_id, ConnectionIdUsage,
};

/// Most spare IDs of the peer's kept; more are forgotten.
pub const MAX_SPARE_CONNECTION_IDS: usize = 8;
/// Most IDs of ours beyond the first; a request for more is answered with fewer.
pub const MAX_ISSUED_CONNECTION_IDS: usize = 8;
const MAX_ISSUED: usize = MAX_ISSUED_CONNECTION_IDS;
/// Most messages of this kind waiting to be sent.
const MAX_OUTGOING: usize = 4;

/// What the messages add to a connection's IDs.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    /// The peer's spares, in the order given (RFC 9147 §9: used in that order).
    peer: VecDeque<Vec<u8>>,
    /// Our IDs beyond the first, which the peer may put on its records.
    own: Vec<Vec<u8>>,
    /// Messages to send, each its own flight once nothing else awaits acknowledgement.
    outgoing: VecDeque<(HandshakeType, Vec<u8>)>,
    /// IDs we asked for and were not given yet (RFC 9147 §9: one request at a time).
    requested: bool,
    /// IDs the endpoint was asked for, for the peer's request.
    wanted: u8,
}

/// New connection IDs an [`Endpoint`](crate::Endpoint) made for a connection: pass them to
/// [`Connection::handle_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct ConnectionEvent(pub(crate) Vec<Vec<u8>>);

impl Connection {
    /// Asks the peer for `count` spare connection IDs (RequestConnectionId; DTLS 1.3, with
    /// connection IDs agreed and the peer's not empty). They arrive in a NewConnectionId;
    /// [`spare_connection_ids`](Self::spare_connection_ids) counts them. Fails while an
    /// earlier request is unanswered.
    pub fn request_connection_ids(&mut self, now: Instant, count: u8) -> Result<(), Error> {
        if !self.is_established() || self.tls13.is_none() || self.peer_connection_id().is_none_or(<[u8]>::is_empty) {
            return Err(Error::InvalidOperation("spare connection IDs need DTLS 1.3 and the peer's connection ID"));
        }
        let Some(spares) = self.spares_mut() else { return Err(Error::InvalidOperation("no connection ID")) };
        if spares.requested {
            return Err(Error::InvalidOperation("an earlier request for connection IDs is unanswered"));
        }
        spares.requested = true;
        spares.outgoing.push_back((HandshakeType::REQUEST_CONNECTION_ID, vec![count]));
        self.start_post_handshake(now);
        Ok(())
    }

    /// How many spare connection IDs of the peer's this connection holds.
    pub fn spare_connection_ids(&self) -> usize {
        self.spares().map_or(0, |s| s.peer.len())
    }

    /// Puts the peer's next spare connection ID on our records from now on; `false` if there
    /// is none.
    pub fn use_spare_connection_id(&mut self) -> bool {
        let Some(next) = self.spares_if_any_mut().and_then(|s| s.peer.pop_front()) else { return false };
        self.replace_peer_cid(&next);
        true
    }

    /// Takes the IDs an [`Endpoint`](crate::Endpoint) made for this connection (see
    /// [`EndpointEvent`]): they are offered to the peer as spares (NewConnectionId), and
    /// records with them are accepted.
    pub fn handle_event(&mut self, event: ConnectionEvent) {
        self.issue(event.0, Instant::now());
    }

    /// Whether `cid` is one of ours (the first, or one issued since).
    pub(super) fn owns_cid(&self, cid: &[u8]) -> bool {
        let Some(c) = self.cid.as_deref() else { return false };
        !cid.is_empty() && (c.own() == cid || c.spares().is_some_and(|m| m.own.iter().any(|o| o == cid)))
    }

    /// Our last post-handshake flight was given up (never acknowledged): a request for IDs in
    /// it no longer waits, and a new one may be made.
    pub(super) fn cid_flight_given_up(&mut self) {
        if let Some(s) = self.spares_if_any_mut() {
            s.requested = false;
        }
    }

    /// How many IDs the endpoint was asked for (taken: the endpoint event says it once).
    pub(super) fn take_wanted_cids(&mut self) -> u8 {
        self.spares_if_any_mut().map_or(0, |s| core::mem::take(&mut s.wanted))
    }

    /// The peer's NewConnectionId or RequestConnectionId, in an application epoch.
    pub(super) fn handle_cid_message(&mut self, now: Instant, ty: HandshakeType, body: &[u8]) -> Result<(), Error> {
        // RFC 9147 §9: only with connection IDs agreed, and never from a peer that asked for
        // an empty one (new ones) or sends us none (requests).
        let peer_empty = self.peer_connection_id().is_none_or(<[u8]>::is_empty);
        let own_empty = self.connection_id().is_none_or(<[u8]>::is_empty) || self.peer_connection_id().is_none();
        if ty == HandshakeType::NEW_CONNECTION_ID {
            if peer_empty {
                return Err(Error::unexpected("NewConnectionId from a peer that asked for no connection ID"));
            }
            // The first to use at once, and as many spares as are kept (empty IDs skipped).
            let keep = 2 * MAX_SPARE_CONNECTION_IDS + 1;
            let (ids, usage) = parse_new_connection_id(body, keep).ok_or(Error::decode("NewConnectionId"))?;
            let mut ids = ids.into_iter().filter(|id| !id.is_empty()).map(<[u8]>::to_vec);
            if usage == ConnectionIdUsage::Immediate {
                let first = ids.next().ok_or(Error::illegal("NewConnectionId to use at once without an ID"))?;
                self.replace_peer_cid(&first);
            }
            if let Some(spares) = self.spares_mut() {
                spares.requested = false;
                // Only what is kept is copied: a message of thousands of 1-byte IDs costs no more.
                let room = MAX_SPARE_CONNECTION_IDS.saturating_sub(spares.peer.len());
                spares.peer.extend(ids.take(room));
            }
            return Ok(());
        }
        if own_empty {
            return Err(Error::unexpected("RequestConnectionId from a peer that sends us no connection ID"));
        }
        let count = parse_request_connection_id(body).ok_or(Error::decode("RequestConnectionId"))?;
        // IDs given, and IDs the endpoint is still making for an earlier request: a peer that
        // asks again before that one is answered (RFC 9147 §9 forbids it) gets no more.
        let issued = self.spares().map_or(0, |s| s.own.len() + usize::from(s.wanted));
        // An excessive request is answered with fewer IDs, possibly none (RFC 9147 §9).
        let count = usize::from(count).min(MAX_ISSUED - issued);
        if self.side == Side::Client {
            let len = self.connection_id().map_or(0, <[u8]>::len);
            let mut ids = vec![vec![0; len]; count];
            for id in &mut ids {
                self.config.provider.fill_random(id)?;
            }
            self.issue(ids, now);
        } else if count == 0 {
            self.issue(Vec::new(), now);
        } else if let Some(spares) = self.spares_mut() {
            // The endpoint makes them, routable (`poll_endpoint_event`).
            spares.wanted = count as u8;
        }
        Ok(())
    }

    /// Accepts records with `ids` and offers them to the peer as spares.
    fn issue(&mut self, ids: Vec<Vec<u8>>, now: Instant) {
        let Some(spares) = self.spares_mut() else { return };
        if spares.outgoing.len() >= MAX_OUTGOING {
            // No room to tell the peer: the IDs are not taken either.
            return;
        }
        let room = MAX_ISSUED.saturating_sub(spares.own.len());
        let ids: Vec<Vec<u8>> = ids.into_iter().filter(|id| !id.is_empty()).take(room).collect();
        spares.own.extend(ids.iter().cloned());
        let mut body = Vec::new();
        write_new_connection_id(&ids, ConnectionIdUsage::Spare, &mut body);
        spares.outgoing.push_back((HandshakeType::NEW_CONNECTION_ID, body));
        self.start_post_handshake(now);
    }

    /// Sends the next waiting message as a flight of its own, acknowledged by the peer, if
    /// nothing else (a KeyUpdate first) awaits acknowledgement.
    pub(super) fn start_cid_message(&mut self, now: Instant) {
        let busy = self.flight.as_deref().is_some_and(|fl| fl.awaits_ack || fl.awaits_reply);
        if busy || self.tls13.as_deref().is_none_or(|t| t.key_update_busy()) {
            return;
        }
        let Some((msg_type, body)) = self.spares_if_any_mut().and_then(|s| s.outgoing.pop_front()) else { return };
        let epoch = self.epochs.write_epoch();
        let Some(t) = self.tls13.as_deref_mut() else { return };
        // No message number left: the message is not sent (the numbers never wrap).
        let Some(seq) = t.take_send_seq() else { return };
        self.start_acknowledged_flight(now, FlightItem::Message { epoch, msg_type, seq, body });
    }

    fn spares(&self) -> Option<&Spares> {
        self.cid.as_deref()?.spares()
    }

    fn spares_if_any_mut(&mut self) -> Option<&mut Spares> {
        self.cid.as_deref_mut()?.spares_if_any_mut()
    }

    /// The connection's spares, made on first use; `None` without connection IDs.
    fn spares_mut(&mut self) -> Option<&mut Spares> {
        Some(self.cid.as_deref_mut()?.spares_mut())
    }
}

impl Connection {
    /// Appends what an exported session carries of the connection IDs beyond the pair: whether
    /// return routability checks were agreed, our IDs issued after the handshake, and the
    /// peer's spares (see [`read_cid_extras`](Self::read_cid_extras)).
    pub(super) fn write_cid_extras(&self, out: &mut Vec<u8>) {
        use crate::codec::Put;
        out.put_u8(u8::from(self.return_routability_check()));
        let (own, peer) = self.spares().map_or((&[][..], Vec::new()), |s| (&s.own[..], s.peer.iter().collect()));
        out.put_u8(own.len() as u8);
        own.iter().for_each(|id| out.put_vec8(id));
        out.put_u8(peer.len() as u8);
        peer.iter().for_each(|id| out.put_vec8(id));
    }

    /// Restores what [`write_cid_extras`](Self::write_cid_extras) wrote, onto a connection
    /// whose IDs are set; `None` if malformed or over the limits.
    pub(super) fn read_cid_extras(&mut self, r: &mut Reader<'_>) -> Option<()> {
        let rrc = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let mut list = |max: usize| -> Option<Vec<Vec<u8>>> {
            let n = usize::from(r.u8()?);
            (n <= max).then_some(())?;
            (0..n).map(|_| r.vec8().filter(|id| !id.is_empty()).map(<[u8]>::to_vec)).collect()
        };
        let own = list(MAX_ISSUED)?;
        let peer = list(MAX_SPARE_CONNECTION_IDS)?;
        let c = self.cid.as_deref_mut()?;
        if rrc {
            c.start_rrc();
        }
        if !own.is_empty() || !peer.is_empty() {
            *c.spares_mut() = Spares { own, peer: peer.into(), ..Spares::default() };
        }
        Some(())
    }
}
