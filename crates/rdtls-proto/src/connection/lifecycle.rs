//! A connection's life: handshaking, paused for the application, established, closed. One
//! enum is the source of the handshake state, of whether the connection is closed and of why;
//! every way to close goes through [`Connection::close`].

use super::*;

/// Where a connection is in its life.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Lifecycle {
    /// The handshake runs.
    Handshaking,
    /// The handshake waits for the application's decision on the peer's certificate.
    Paused,
    /// The handshake completed; application data flows. DTLS 1.2: `peer_last_seq` is the
    /// `message_seq` of the peer's Finished (its flight may come again; a later message in an
    /// authenticated epoch is refused); 0 otherwise (a Finished is never a first message).
    Established { peer_last_seq: u16 },
    /// Over, for good.
    Closed {
        /// The handshake state still reported.
        shown: HandshakeState,
        /// What ended the connection, unless it was our own shutdown or abort.
        error: Option<Box<Error>>,
        /// The endpoint was told (see [`Connection::poll_endpoint_event`]).
        endpoint_told: bool,
    },
}

/// Something the [`Endpoint`](crate::Endpoint) that accepted a connection must know: pass it to
/// [`Endpoint::handle_event`](crate::Endpoint::handle_event) with the connection's handle.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct EndpointEvent(pub(crate) EndpointEventKind);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndpointEventKind {
    /// The connection closed: its address and handle can go.
    Closed,
    /// DTLS 1.3: the peer asked for this many more connection IDs, which the endpoint must
    /// make (routable to this connection) and hand over with a [`ConnectionEvent`].
    ///
    /// [`ConnectionEvent`]: super::ConnectionEvent
    NeedConnectionIds(u8),
}

impl EndpointEvent {
    /// Whether the event says the connection closed.
    pub fn is_closed(&self) -> bool {
        self.0 == EndpointEventKind::Closed
    }
}

impl Connection {
    /// The handshake state.
    pub fn handshake_state(&self) -> HandshakeState {
        match &self.lifecycle {
            Lifecycle::Handshaking => HandshakeState::InProgress,
            Lifecycle::Paused => HandshakeState::PeerVerificationFailed,
            Lifecycle::Established { .. } => HandshakeState::Complete,
            Lifecycle::Closed { shown, .. } => *shown,
        }
    }

    /// Whether the handshake completed and the connection is still open (Qt's `isConnectionEncrypted`).
    pub fn is_established(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Established { .. })
    }

    /// Whether the connection is over (shut down, closed by the peer, or failed).
    pub fn is_closed(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Closed { .. })
    }

    /// The fatal error that ended the connection, if any (Qt's `dtlsError`).
    pub fn last_error(&self) -> Option<&Error> {
        match &self.lifecycle {
            Lifecycle::Closed { error, .. } => error.as_deref(),
            _ => None,
        }
    }

    /// What the endpoint that accepted this connection must learn: that it closed (once).
    /// Poll it after every call that may close the connection, as with
    /// [`poll_event`](Self::poll_event).
    pub fn poll_endpoint_event(&mut self) -> Option<EndpointEvent> {
        match &mut self.lifecycle {
            Lifecycle::Closed { endpoint_told, .. } if !*endpoint_told => {
                *endpoint_told = true;
                Some(EndpointEvent(EndpointEventKind::Closed))
            }
            Lifecycle::Closed { .. } => None,
            _ => match self.take_wanted_cids() {
                0 => None,
                n => Some(EndpointEvent(EndpointEventKind::NeedConnectionIds(n))),
            },
        }
    }

    /// Sends close_notify and closes the connection (Qt's `shutdown`). The alert is ready in
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn shutdown(&mut self) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::InvalidOperation("the connection is already closed"));
        }
        self.alert = Some((AlertLevel::WARNING, AlertDescription::CLOSE_NOTIFY));
        self.close(HandshakeState::NotStarted, None);
        Ok(())
    }

    /// Aborts a handshake in progress with a `user_canceled` alert (Qt's `abortHandshake`).
    /// Paused on the peer's certificate errors, the alert is the one the first error not
    /// ignored calls for (`unknown_ca` for an unknown issuer, …).
    pub fn abort_handshake(&mut self) -> Result<(), Error> {
        self.abort_with(None)
    }

    /// Refuses the peer's certificate chain while the handshake is paused on its errors
    /// ([`Event::PeerVerificationFailed`](crate::Event::PeerVerificationFailed)), telling the
    /// peer why with `alert` (for example `certificate_unknown` when the application's own
    /// check refused the chain, or `access_denied`), where
    /// [`abort_handshake`](Self::abort_handshake) sends the alert the first error calls for.
    /// The connection closes with [`Error::PeerVerification`].
    ///
    /// Fails with [`Error::InvalidOperation`] when the handshake is not paused, or when
    /// `alert` is not a fatal error alert (`close_notify`, `user_canceled`,
    /// `no_renegotiation`).
    pub fn reject_peer_certificate(&mut self, alert: AlertDescription) -> Result<(), Error> {
        if self.lifecycle != Lifecycle::Paused {
            return Err(Error::InvalidOperation("the handshake is not paused on the peer's certificate"));
        }
        if [AlertDescription::CLOSE_NOTIFY, AlertDescription::USER_CANCELED, AlertDescription::NO_RENEGOTIATION]
            .contains(&alert)
        {
            return Err(Error::InvalidOperation("not an error alert"));
        }
        self.abort_with(Some(alert))
    }

    fn abort_with(&mut self, alert: Option<AlertDescription>) -> Result<(), Error> {
        let error = match self.lifecycle {
            Lifecycle::Handshaking => {
                self.alert = Some((AlertLevel::FATAL, AlertDescription::USER_CANCELED));
                None
            }
            Lifecycle::Paused => {
                // Tell the peer why: the alert of the first error not ignored.
                let remaining: Vec<_> = self
                    .peer_verification_errors()
                    .iter()
                    .filter(|e| !self.ignored_errors().contains(e))
                    .cloned()
                    .collect();
                let first = remaining.first().map_or(AlertDescription::BAD_CERTIFICATE, CertificateError::alert);
                let desc = alert.unwrap_or(first);
                self.alert = Some((AlertLevel::FATAL, desc));
                Some(Error::PeerVerification(remaining))
            }
            _ => return Err(Error::InvalidOperation("no handshake in progress")),
        };
        self.close(HandshakeState::NotStarted, error);
        Ok(())
    }

    /// The handshake completed; `peer_last_seq` as [`Lifecycle::Established`] says.
    pub(super) fn set_established(&mut self, peer_last_seq: u16) {
        self.lifecycle = Lifecycle::Established { peer_last_seq };
    }

    /// DTLS 1.2, once established: the `message_seq` of the peer's Finished (0: none).
    pub(crate) fn peer_last_seq(&self) -> u16 {
        match self.lifecycle {
            Lifecycle::Established { peer_last_seq } => peer_last_seq,
            _ => 0,
        }
    }

    /// Closes the connection: nothing more is sent but the queued alert, and what only the
    /// handshake needed is freed. `shown` is the handshake state reported from now on.
    pub(super) fn close(&mut self, shown: HandshakeState, error: Option<Error>) {
        self.lifecycle = Lifecycle::Closed { shown, error: error.map(Box::new), endpoint_told: false };
        self.hs = None;
        self.flight = None;
    }

    /// Ends the connection with `e`, queueing the alert it owes the peer: the error is reported
    /// by one [`Event::Closed`], by [`last_error`](Self::last_error), and returned by the call
    /// that failed (and by later calls that need an open connection).
    pub(super) fn fail(&mut self, e: Error) {
        if self.is_closed() {
            return;
        }
        if let Some(mut desc) = e.alert_to_send() {
            // DTLS 1.3 names a missing client certificate (RFC 8446 §4.4.2.4).
            if self.side == Side::Server
                && self.tls13.is_some()
                && matches!(&e, Error::PeerVerification(errs) if errs.first() == Some(&CertificateError::NoPeerCertificate))
            {
                desc = AlertDescription::CERTIFICATE_REQUIRED;
            }
            self.alert = Some((AlertLevel::FATAL, desc));
        }
        self.close(self.handshake_state(), Some(e.clone()));
        self.events.push_back(Event::Closed(e));
    }
}

/// Counters of what a connection did, for diagnostics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records received and accepted.
    pub records_accepted: u64,
    /// Records dropped because they could not be parsed.
    pub dropped_malformed: u64,
    /// Records dropped by the anti-replay window.
    pub dropped_replayed: u64,
    /// Records dropped because they failed authentication.
    pub dropped_bad_auth: u64,
    /// Records dropped because of their epoch (no keys yet, or unknown).
    pub dropped_epoch: u64,
    /// Records dropped because they were not expected now.
    pub dropped_unexpected: u64,
    /// Handshake fragments dropped (outside the window, inconsistent, over a limit).
    pub dropped_fragments: u64,
    /// Flights sent again (timer or peer retransmission).
    pub retransmissions: u64,
    /// Datagrams produced by `poll_transmit`.
    pub datagrams_sent: u64,
    /// DTLS 1.3: our KeyUpdates the peer acknowledged (we write with the new keys since).
    pub key_updates_sent: u64,
    /// DTLS 1.3: the peer's KeyUpdates received.
    pub key_updates_received: u64,
}
