//! The engine side of the handshake: complete messages go to the handshake object, and what it
//! asks for ([`Action`]s) is applied here, to the record layer, the flight and the connection's
//! state.

use super::*;
use crate::handshake::reassembly::Reassembler;
use crate::handshake::{Action, Context};

/// A running handshake: the version- and role-specific object, and what the engine keeps for
/// it. Freed when the handshake completes.
#[derive(Debug)]
pub(crate) struct HandshakeRun {
    pub(super) machine: Handshake,
    pub(super) reasm: Reassembler,
    pub(super) mtu: usize,
    /// The first `message_seq` of the peer's flight we last answered: a fragment of it seen
    /// again means our answer was lost.
    pub(super) peer_flight_start: Option<u16>,
    /// The handshake's actions, applied and cleared after each message (kept for its buffer).
    actions: Vec<Action>,
    /// Client: the sequence numbers of plaintext handshake records kept before the version
    /// was known (a ServerHello over several records), for the first DTLS 1.3 ACK to name.
    pub(super) early_records: Vec<u64>,
}

impl HandshakeRun {
    pub(super) fn new(machine: Handshake, config: &Config) -> Self {
        Self {
            machine,
            reasm: Reassembler::with_window(
                config.max_handshake_message,
                config.max_reassembly_bytes,
                config.message_window,
            ),
            mtu: config.mtu,
            peer_flight_start: None,
            actions: Vec::new(),
            early_records: Vec::new(),
        }
    }
}

impl Connection {
    /// Starts the handshake object made by `start`, applying its first actions.
    pub(super) fn start_handshake(
        &mut self,
        now: Instant,
        start: impl FnOnce(&mut Context<'_>) -> Result<Handshake, Error>,
    ) -> Result<(), Error> {
        let mut actions = Vec::new();
        let own_cid = self.cid.as_deref().map(cid::Cid::own);
        let machine = start(&mut Context { config: &self.config, actions: &mut actions, own_cid })?;
        self.hs = Some(Box::new(HandshakeRun::new(machine, &self.config)));
        self.apply(now, &mut actions)
    }

    /// Delivers complete messages to the handshake, in order, and applies what it asks for.
    pub(super) fn process_messages(&mut self, now: Instant) -> Result<(), Error> {
        let mut actions = self.hs.as_mut().map(|hs| core::mem::take(&mut hs.actions)).unwrap_or_default();
        let r = self.process_with(now, &mut actions);
        if let Some(hs) = &mut self.hs {
            hs.actions = actions;
        }
        r
    }

    fn process_with(&mut self, now: Instant, actions: &mut Vec<Action>) -> Result<(), Error> {
        loop {
            if matches!(self.lifecycle, Lifecycle::Paused) {
                // Paused: messages stay buffered until the application decides.
                return Ok(());
            }
            let Some(hs) = &mut self.hs else { return Ok(()) };
            let Some((ty, epoch)) = hs.reasm.peek() else { return Ok(()) };
            if !hs.machine.ready_for(ty, epoch)? {
                return Ok(());
            }
            let Some(msg) = hs.reasm.pop() else { return Ok(()) };
            let own_cid = self.cid.as_deref().map(cid::Cid::own);
            let handled = hs.machine.handle(&mut Context { config: &self.config, actions, own_cid }, msg);
            if handled.is_ok() && actions.iter().any(|a| matches!(a, Action::Complete { .. })) {
                // The Finished just handled ends the peer's handshake messages in its epoch:
                // another one of that epoch (sent with it, or ahead of it) is excess (BoringSSL's
                // EXCESS_HANDSHAKE_DATA), refused before anything of ours goes out. Messages of
                // a later epoch are post-handshake ones.
                let finished_epoch = if self.tls13.is_some() { crate::handshake::tls13::EPOCH_HANDSHAKE } else { 1 };
                if hs.reasm.holds_epoch(finished_epoch as u16) {
                    actions.clear();
                    return Err(Error::unexpected("handshake data after the peer's Finished"));
                }
            }
            // What the handshake recorded before failing (verification errors) is kept.
            let applied = self.apply(now, actions);
            handled?;
            applied?;
        }
    }

    /// Applies the handshake's actions, in order.
    fn apply(&mut self, now: Instant, actions: &mut Vec<Action>) -> Result<(), Error> {
        for action in actions.drain(..) {
            match action {
                Action::Send { items, awaits_reply } => self.start_flight(now, items, awaits_reply),
                Action::PeerFlightStarts(seq) => {
                    if let Some(hs) = &mut self.hs {
                        hs.peer_flight_start = Some(seq);
                    }
                }
                Action::InstallKeys { epoch, read, write } => self.epochs.install(epoch, read, write),
                Action::WriteEpoch(epoch) => self.epochs.set_write_epoch(epoch),
                Action::Negotiated { suite, extended_master_secret } => {
                    self.suite = Some(suite);
                    self.extended_master_secret = extended_master_secret;
                    if suite.is_tls13() && self.tls13.is_none() {
                        let mut t = Box::<tls13::State>::default();
                        if let Some(hs) = &mut self.hs {
                            for seq in hs.early_records.drain(..) {
                                t.note(0, seq);
                            }
                        }
                        self.tls13 = Some(t);
                    }
                }
                Action::TrafficSecrets { read, write } => {
                    if let Some(t) = &mut self.tls13 {
                        t.secrets = Some((read, write));
                    }
                }
                Action::RetransmitUntilAcked => {
                    let rto = self.config.initial_retransmit;
                    if let Some(fl) = self.flight.as_deref_mut() {
                        fl.awaits_ack = true;
                        fl.retransmit_at = Some(now + jittered(&mut self.rng, rto, self.config.retransmit_jitter));
                    }
                }
                Action::PskIdentity(identity) => self.psk_identity = Some(identity.into()),
                Action::Group(group) => self.group = Some(group),
                Action::PeerConnectionId(peer) => self.set_peer_cid(&peer),
                Action::ExporterSecret(secret) => {
                    if self.keeps_exporter_secret() {
                        self.details_mut().export_secret = Some(secret);
                    }
                }
                Action::ReturnRoutability => {
                    if let Some(c) = self.cid.as_deref_mut() {
                        c.start_rrc();
                    }
                }
                Action::Srtp(profile) => self.details_mut().srtp = Some(profile),
                Action::Alpn(protocol) => self.details_mut().alpn = Some(protocol),
                Action::Resumed => self.resumed = true,
                Action::HelloRetried => {
                    if let Some(t) = &mut self.tls13 {
                        t.hello_retried = true;
                    }
                }
                Action::SendTicket(body) => self.queue_ticket(now, body),
                Action::TicketTemplate(session) => self.set_ticket_template(*session),
                Action::NewSession(session) => {
                    self.details_mut().session = Some(session);
                    self.events.push_back(Event::NewSession);
                }
                Action::SessionCached => self.events.push_back(Event::NewSession),
                Action::SameSession(session) => self.details_mut().session = Some(session),
                Action::RequestedServerName(sni) => self.set_requested_server_name(sni),
                Action::PeerCertificates(chain) => self.set_peer_certificates(chain),
                Action::CheckPeer(errors) => self.check_peer(errors)?,
                Action::VerificationErrors(errors) => self.set_verification_errors(errors),
                Action::Complete { export_secret } => self.complete(now, export_secret),
            }
        }
        Ok(())
    }

    /// The handshake completed.
    fn complete(&mut self, now: Instant, export_secret: Option<zeroize::Zeroizing<Vec<u8>>>) {
        // The peer's last flight runs from its first message to the Finished just handled.
        let hs = self.hs.take();
        let last = hs.as_ref().map_or(0, |hs| hs.reasm.next_seq().wrapping_sub(1));
        self.set_established(if self.tls13.is_none() { last } else { 0 });
        // DTLS 1.2's session export needs the master secret too.
        if export_secret.is_some() && (self.keeps_exporter_secret() || self.config.session_export) {
            self.details_mut().export_secret = export_secret;
        }
        let final_trigger = hs.as_ref().and_then(|hs| hs.peer_flight_start.map(|first| first..=last));
        if let (Some(t), Some(hs)) = (self.tls13.as_deref_mut(), &hs) {
            // DTLS 1.3's post-handshake messages continue both message sequences.
            let ours = self.flight.as_deref().into_iter().flat_map(|fl| &fl.items).filter_map(|i| match i {
                crate::handshake::FlightItem::Message { seq, .. } => Some(seq.wrapping_add(1)),
                crate::handshake::FlightItem::ChangeCipherSpec => None,
            });
            t.next_send_seq = ours.max().map_or(0, u32::from);
            t.peer_next_seq = u32::from(hs.reasm.next_seq());
            if self.side == Side::Server {
                // The client resends its Finished until acknowledged, for at most a handshake
                // timeout: until then we read the handshake epoch, to acknowledge it again.
                t.retire_handshake_at = Some(now + self.config.handshake_timeout);
            }
        }
        // Whoever sent the handshake's last flight keeps it for the peer's retransmissions (the
        // server after a full handshake, the client after an abbreviated one): a flight that
        // expects no answer is the last.
        match self.flight.as_deref_mut() {
            // DTLS 1.3's client: the last flight goes on until the server acknowledges it.
            Some(fl) if fl.awaits_ack => fl.early = Vec::new(),
            Some(fl) if !fl.awaits_reply && !fl.items.is_empty() => {
                // The peer cannot retransmit for longer than a handshake lasts.
                fl.deadline = None;
                fl.retransmit_at = None;
                fl.hold_until = Some(now + self.config.handshake_timeout);
                fl.final_trigger = final_trigger;
                fl.early = Vec::new();
            }
            _ => self.flight = None,
        }
        self.events.push_back(Event::Connected);
    }
}
