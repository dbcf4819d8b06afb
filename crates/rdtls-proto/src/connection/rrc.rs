//! Return routability checks (RFC 9853): `path_challenge`, `path_response` and `path_drop`
//! records (content type 27), negotiated with the `rrc` extension beside a connection ID.
//!
//! The connection knows no addresses: it makes challenges, answers the peer's, and says when
//! its own was answered. The [`Endpoint`](crate::Endpoint) decides when to probe (a peer's
//! newest record came from a new address), sends the challenge there, keeps what it sends
//! there under the anti-amplification limit, and moves the connection once the answer came.

use super::*;

/// How long a challenge waits for its answer (RFC 9853 §4.5: 1 s without an RTT estimate).
pub const PATH_VALIDATION_TIMEOUT: Duration = Duration::from_secs(1);
/// `path_challenge`, `path_response`, `path_drop` (RFC 9853 §3).
const CHALLENGE: u8 = 0;
const RESPONSE: u8 = 1;
const DROP: u8 = 2;
/// Messages waiting to be sent at most (answers to challenges, our own challenge): the
/// peer's challenges are authenticated, but answering each costs a datagram, so a burst of
/// them is bounded (one answer each, as the RFC asks, for those that fit).
const MAX_OUTGOING: usize = 4;

/// A return routability check of ours, and the messages to send.
#[derive(Debug, Default)]
pub(crate) struct Rrc {
    /// Our challenge: its cookie and until when it waits; `answered` once the peer echoed it.
    probe: Option<Probe>,
    /// Messages to send, each in its own datagram: type, cookie.
    outgoing: Vec<[u8; 9]>,
    /// The datagram `poll_transmit` wrote last is our `path_challenge`.
    challenge_written: bool,
}

#[derive(Debug)]
struct Probe {
    cookie: [u8; 8],
    deadline: Instant,
    answered: bool,
}

impl Connection {
    /// Whether both sides agreed on return routability checks (RFC 9853).
    pub fn return_routability_check(&self) -> bool {
        self.cid.as_deref().is_some_and(|c| c.rrc().is_some())
    }

    /// Sends a `path_challenge` with a fresh cookie (RFC 9853 §4): the next datagram of
    /// [`poll_transmit`](Self::poll_transmit) carries it alone, to be sent to the address to
    /// check. [`path_validated`](Self::path_validated) says when the answer came;
    /// [`Event::PathValidated`] or [`Event::PathValidationFailed`] (after
    /// [`PATH_VALIDATION_TIMEOUT`]) tell it too. A new challenge replaces an unanswered one.
    /// Fails unless the connection is established and both sides agreed on the checks.
    pub fn challenge_path(&mut self, now: Instant) -> Result<(), Error> {
        if !self.is_established() || !self.return_routability_check() {
            return Err(Error::InvalidOperation("return routability checks were not negotiated"));
        }
        let mut cookie = [0u8; 8];
        self.config.provider.fill_random(&mut cookie)?;
        let Some(rrc) = self.cid.as_deref_mut().and_then(|c| c.rrc_mut()) else { return Ok(()) };
        rrc.probe = Some(Probe { cookie, deadline: now + PATH_VALIDATION_TIMEOUT, answered: false });
        // Our challenge goes first; older messages wait behind it (bounded).
        rrc.outgoing.retain(|m| m[0] != CHALLENGE);
        rrc.outgoing.insert(0, message(CHALLENGE, cookie));
        rrc.outgoing.truncate(MAX_OUTGOING);
        Ok(())
    }

    /// Whether the peer answered our last [`challenge_path`](Self::challenge_path) in time.
    pub fn path_validated(&self) -> bool {
        self.rrc().and_then(|r| r.probe.as_ref()).is_some_and(|p| p.answered)
    }

    /// Whether the datagram [`poll_transmit`](Self::poll_transmit) wrote last is a
    /// `path_challenge` of ours (alone in it): it goes to the address being checked, and only
    /// there ([`Endpoint::destination`](crate::Endpoint::destination) says so).
    pub fn transmitted_path_challenge(&self) -> bool {
        self.rrc().is_some_and(|r| r.challenge_written)
    }

    /// Whether a challenge of ours waits for its answer.
    pub fn path_challenge_pending(&self) -> bool {
        self.rrc().and_then(|r| r.probe.as_ref()).is_some_and(|p| !p.answered)
    }

    fn rrc(&self) -> Option<&Rrc> {
        self.cid.as_deref().and_then(|c| c.rrc())
    }

    /// Handles a `return_routability_check` record's body, authenticated in `epoch`.
    pub(super) fn handle_rrc(&mut self, epoch: u64, body: &[u8]) {
        let established = self.is_established();
        let Some(rrc) = self.cid.as_deref_mut().and_then(|c| c.rrc_mut()) else {
            self.stats.dropped_unexpected += 1;
            return;
        };
        // Protected only (RFC 9853 §3), on an established connection; the type and its cookie.
        let Some(&ty) = body.first() else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if ty > DROP && epoch > 0 && established {
            // A message type of a later extension: ignored (§3), whatever its length.
            self.stats.records_accepted += 1;
            return;
        }
        let cookie = body.get(1..9).and_then(|c| <[u8; 8]>::try_from(c).ok());
        let (Some(cookie), 9, true, true) = (cookie, body.len(), epoch > 0, established) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        self.stats.records_accepted += 1;
        match ty {
            // Exactly one answer per challenge, at once (§4.4); a burst beyond the queue is not
            // answered (the peer challenges again).
            CHALLENGE if rrc.outgoing.len() < MAX_OUTGOING => rrc.outgoing.push(message(RESPONSE, cookie)),
            CHALLENGE => {}
            RESPONSE | DROP => match &mut rrc.probe {
                Some(p) if p.cookie == cookie && !p.answered => {
                    if ty == RESPONSE {
                        p.answered = true;
                        self.events.push_back(Event::PathValidated);
                    } else {
                        // The peer left that path on purpose: it is not validated.
                        rrc.probe = None;
                        self.events.push_back(Event::PathValidationFailed);
                    }
                }
                // Not ours, or late, or repeated: discarded silently (§4.4).
                _ => self.stats.dropped_unexpected += 1,
            },
            _ => {}
        }
    }

    /// Writes the next waiting message alone into `out` (empty), as one record of the write
    /// epoch; returns whether it did. `poll_transmit` asks first, so that a challenge is the
    /// first thing sent to the address it checks (what goes there is limited).
    pub(super) fn transmit_rrc(&mut self, out: &mut Vec<u8>) -> bool {
        let established = self.is_established();
        let Some(rrc) = self.cid.as_deref_mut().and_then(|c| c.rrc_mut()) else { return false };
        rrc.challenge_written = false;
        if !out.is_empty() || !established || rrc.outgoing.is_empty() {
            return false;
        }
        let msg = rrc.outgoing.remove(0);
        let epoch = self.epochs.write_epoch();
        let written = self.write_record(ContentType::RETURN_ROUTABILITY_CHECK, epoch, &msg, out).is_some();
        if let Some(rrc) = self.cid.as_deref_mut().and_then(|c| c.rrc_mut()) {
            rrc.challenge_written = written && msg[0] == CHALLENGE;
        }
        written
    }

    /// When our challenge stops waiting.
    pub(super) fn rrc_timer(&self) -> Option<Instant> {
        self.rrc().and_then(|r| r.probe.as_ref()).filter(|p| !p.answered).map(|p| p.deadline)
    }

    /// The challenge's time ran out: the path is not validated.
    pub(super) fn rrc_timeout(&mut self, now: Instant) {
        let Some(rrc) = self.cid.as_deref_mut().and_then(|c| c.rrc_mut()) else { return };
        if rrc.probe.as_ref().is_some_and(|p| !p.answered && now >= p.deadline) {
            rrc.probe = None;
            self.events.push_back(Event::PathValidationFailed);
        }
    }
}

fn message(ty: u8, cookie: [u8; 8]) -> [u8; 9] {
    let mut m = [ty; 9];
    m[1..].copy_from_slice(&cookie);
    m
}
