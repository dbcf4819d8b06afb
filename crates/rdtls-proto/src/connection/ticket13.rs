//! DTLS 1.3 session tickets on the connection: the server sends its NewSessionTicket once the
//! handshake is over, as a post-handshake message resent until acknowledged (RFC 9147 §5.8);
//! a client that keeps sessions makes one from each ticket it receives.

use super::*;
use crate::handshake::FlightItem;
use crate::resumption::Session;

/// What a DTLS 1.3 connection keeps for tickets.
#[derive(Debug, Default)]
pub(crate) struct Tickets {
    /// Client: this connection's session, its secret the resumption master secret.
    template: Option<Session>,
    /// Server: the NewSessionTicket to send when nothing else awaits acknowledgement.
    outgoing: Option<Vec<u8>>,
}

impl Connection {
    fn tickets_mut(&mut self) -> Option<&mut Tickets> {
        let t = self.tls13.as_deref_mut()?;
        Some(t.tickets.get_or_insert_with(Box::default))
    }

    /// Server: queues the NewSessionTicket and sends it if nothing else is in flight.
    pub(super) fn queue_ticket(&mut self, now: Instant, body: Vec<u8>) {
        if let Some(tickets) = self.tickets_mut() {
            tickets.outgoing = Some(body);
        }
        self.start_post_handshake(now);
    }

    /// Client: keeps the session tickets will resume.
    pub(super) fn set_ticket_template(&mut self, session: Session) {
        if let Some(tickets) = self.tickets_mut() {
            tickets.template = Some(session);
        }
    }

    /// Sends the queued ticket as a flight of its own, acknowledged by the peer, if nothing
    /// else awaits acknowledgement.
    pub(super) fn start_ticket(&mut self, now: Instant) {
        let busy = self.flight.as_deref().is_some_and(|fl| fl.awaits_ack || fl.awaits_reply);
        let Some(t) = self.tls13.as_deref_mut() else { return };
        if busy || t.key_update_busy() {
            return;
        }
        let Some(body) = t.tickets.as_deref_mut().and_then(|k| k.outgoing.take()) else { return };
        // No message number left: the ticket is not sent (the numbers never wrap).
        let Some(seq) = t.take_send_seq() else { return };
        let epoch = self.epochs.write_epoch();
        let item = FlightItem::Message { epoch, msg_type: HandshakeType::NEW_SESSION_TICKET, seq, body };
        self.start_acknowledged_flight(now, item);
    }

    /// Client: a NewSessionTicket, acknowledged by the caller. A client that keeps sessions
    /// makes the session it resumes (each ticket replaces the last); others drop it.
    pub(super) fn handle_new_session_ticket(&mut self, body: &[u8]) -> Result<(), Error> {
        if self.side != Side::Client {
            return Err(Error::unexpected("NewSessionTicket from a client"));
        }
        let Some(template) = self.tls13.as_deref().and_then(|t| t.tickets.as_deref()).and_then(|k| k.template.as_ref())
        else {
            // Checked for form all the same.
            crate::messages::tls13::NewSessionTicket13::parse(body).ok_or(Error::decode("NewSessionTicket"))?;
            return Ok(());
        };
        if let Some(session) = crate::handshake::tls13::resume::session_from_ticket(&self.config, template, body)? {
            self.details_mut().session = Some(Box::new(session));
            // One event for tickets not yet told of: the session is the newest.
            if !self.events.contains(&Event::NewSession) {
                self.events.push_back(Event::NewSession);
            }
        }
        Ok(())
    }
}
