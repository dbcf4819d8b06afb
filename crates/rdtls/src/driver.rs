//! The socket driver under both connection APIs: everything that does not wait, written once.
//!
//! The sans-IO pattern again, one level up. A [`Driver`] holds what a connection handle keeps
//! (the shared association, messages decrypted ahead, the batch buffers, the last error) and
//! does all the protocol-side work: taking messages already decrypted, datagrams the listener
//! queued, the rest of a batched receive, timers, refusals, sealing batches, closing. When it
//! cannot go on without a datagram it names what to wait for ([`Wait`]); the blocking
//! [`Connection`](crate::Connection) waits in the system call or on a condition variable, the
//! async `tokio::Connection` on tokio's readiness or a notification, and both hand what
//! arrived back to the driver. The loops that alternate the two are the [`drive!`] macro, so
//! the order of the sources of a message is written in one place:
//!
//! 1. messages an earlier receive decrypted ahead (a datagram carried several);
//! 2. datagrams the listener queued for the connection before it had a socket of its own;
//! 3. datagrams a batched receive took off the socket and has not handed out yet;
//! 4. the socket (own socket), or the listener's inbox (shared socket);
//! 5. the protocol's timers, whenever a wait ends without a datagram.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::batch::{nothing_received, Batcher};
use crate::shared::Shared;
use crate::{earliest, is_timeout, lock};

/// What a driver waits for before it can go on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Wait {
    /// Where the next datagram comes from.
    pub(crate) source: Source,
    /// When to stop waiting: the protocol's next timer or the caller's deadline, whichever
    /// comes first (`None`: no limit). Already passed: take only what is there.
    pub(crate) until: Option<Instant>,
}

/// Where a connection's datagrams come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The connection's own socket.
    Socket,
    /// The listener's inbox (a connection on the listener's socket).
    Inbox,
}

/// A driver step: done, or wait and step again.
#[derive(Debug)]
pub(crate) enum Step<T> {
    Done(T),
    Wait(Wait),
}

/// Runs a driver step until it is done, waiting in between: `drive!(step, |wait| waiting)`.
/// `step` is an `io::Result<Step<T>>` expression, evaluated anew each round; `waiting` waits as
/// its API does, hands whatever arrived to the driver, and evaluates to `io::Result<Option<T>>`
/// (`Some`: what arrived finished the operation). Both are expressions so that `.await` can be
/// part of them. Evaluates to `T`, or returns the error from the enclosing function.
macro_rules! drive {
    ($step:expr, |$wait:ident| $waiting:expr) => {
        loop {
            match $step? {
                $crate::driver::Step::Done(v) => break v,
                $crate::driver::Step::Wait($wait) => {
                    if let Some(v) = $waiting? {
                        break v;
                    }
                }
            }
        }
    };
}
pub(crate) use drive;

/// The protocol-side half of a connection handle.
#[derive(Debug)]
pub(crate) struct Driver {
    pub(crate) shared: Arc<Shared>,
    /// Our own socket, read directly (clients, per-connection sockets). `false`: the inbox.
    pub(crate) own: bool,
    pub(crate) tx: Vec<u8>,
    /// Messages decrypted ahead: a datagram carried several.
    pub(crate) queued: VecDeque<Vec<u8>>,
    pub(crate) last_error: Option<io::Error>,
    /// Handed over to another owner: dropping does not close.
    pub(crate) detached: bool,
    /// `send_batch` and `recv_batch`: policy, offloads, buffers.
    pub(crate) batch: Batcher,
    /// Messages of the current (or last) `send_batch` that went out, counted as they go: what
    /// an async batched send that was dropped half-way had sent.
    pub(crate) batch_sent: usize,
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>, own: bool, batch: Batcher) -> Self {
        // What the listener decrypted before it handed the connection over comes first.
        let queued = std::mem::take(&mut lock(&shared.inbox).messages);
        Self { shared, own, tx: Vec::new(), queued, last_error: None, detached: false, batch, batch_sent: 0 }
    }

    /// Whether the connection reads a socket of its own (it did not move off it).
    pub(crate) fn reads_own(&self) -> bool {
        self.own && !self.shared.moved.load(Ordering::Acquire)
    }

    fn source(&self) -> Source {
        if self.reads_own() {
            Source::Socket
        } else {
            Source::Inbox
        }
    }

    // ===== errors and state =====

    /// Keeps the error of an operation (not a timeout) for `take_error`.
    pub(crate) fn record<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            if e.kind() != io::ErrorKind::TimedOut {
                self.last_error = Some(io::Error::new(e.kind(), e.to_string()));
            }
        }
        r
    }

    /// Whether the connection is closed (by us, by the peer, or by an error).
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed) || lock(&self.shared.proto).is_closed()
    }

    /// Why an operation on a closed connection fails.
    pub(crate) fn closed_error(&self) -> io::Error {
        match lock(&self.shared.proto).last_error() {
            Some(e) => e.clone().into(),
            None => io::Error::new(io::ErrorKind::NotConnected, "the connection is closed"),
        }
    }

    /// The last error of an operation, or the socket's pending error, cleared.
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        self.last_error.take().or_else(|| self.shared.socket.take_error().ok().flatten())
    }

    /// Fails with `TimedOut` ("`what` timed out") once `deadline` passed.
    fn check_deadline(deadline: Option<Instant>, what: &str) -> io::Result<()> {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out")));
        }
        Ok(())
    }

    /// What to wait for next, until `deadline` at the latest.
    fn wait(&self, deadline: Option<Instant>) -> Wait {
        let until = match self.source() {
            // The protocol's timers run when a wait on our own socket ends; on the listener's
            // socket, the listener runs them.
            Source::Socket => earliest(lock(&self.shared.proto).poll_timeout(), deadline),
            Source::Inbox => deadline,
        };
        Wait { source: self.source(), until }
    }

    // ===== receiving =====

    /// A message that can be had without waiting (sources 1 to 3, and a datagram already in
    /// the inbox), the first into `buf` (truncated to it). Fails once the connection is closed
    /// or the listener stopped feeding the inbox.
    fn ready(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if let Some(n) = self.ready_queued(buf) {
            return Ok(Some(n));
        }
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let (datagram, closed) = {
            let mut inbox = lock(&self.shared.inbox);
            if !inbox.messages.is_empty() {
                // What the listener decrypted (a datagram from the peer's new address) comes
                // before the datagrams it queued after it.
                self.queued.extend(inbox.messages.drain(..));
                drop(inbox);
                // `pending` asks with no buffer: the message stays queued for it to measure.
                return Ok(if buf.is_empty() { Some(0) } else { self.ready_queued(buf) });
            }
            (inbox.datagrams.pop_front(), inbox.closed)
        };
        if let Some(d) = datagram {
            return self.shared.process_queued(d, buf, &mut self.queued, &mut self.tx);
        }
        if self.reads_own() {
            if let Some(r) = self.batch.next_datagram(&self.shared, buf, &mut self.queued, &mut self.tx) {
                return r;
            }
        } else if let Some(kind) = closed {
            return Err(self.inbox_closed(kind));
        }
        Ok(None)
    }

    /// The next message decrypted ahead, into `buf` (truncated to it).
    fn ready_queued(&mut self, buf: &mut [u8]) -> Option<usize> {
        let msg = self.queued.pop_front()?;
        let n = msg.len().min(buf.len());
        buf[..n].copy_from_slice(&msg[..n]);
        Some(n)
    }

    /// One step of a receive: a message if one can be had now, else what to wait for; fails
    /// with `TimedOut` once `deadline` passed after a wait (`waited`).
    pub(crate) fn recv_step(
        &mut self,
        buf: &mut [u8],
        deadline: Option<Instant>,
        waited: &mut bool,
    ) -> io::Result<Step<usize>> {
        if let Some(n) = self.ready(buf)? {
            return Ok(Step::Done(n));
        }
        if std::mem::replace(waited, true) {
            Self::check_deadline(deadline, "receive")?;
        }
        Ok(Step::Wait(self.wait(deadline)))
    }

    /// Bytes of the next message ready without waiting (EdgerOS `pending()`): processes what
    /// has already arrived.
    pub(crate) fn pending_step(&mut self, waited: bool) -> io::Result<Step<usize>> {
        if self.queued.is_empty() && !waited && self.ready(&mut [])?.is_none() {
            return Ok(Step::Wait(self.wait(Some(Instant::now()))));
        }
        Ok(Step::Done(self.queued.front().map_or(0, Vec::len)))
    }

    /// A datagram received on our own socket: decrypted in place, the first message into `buf`.
    pub(crate) fn on_datagram(&mut self, datagram: &mut [u8], buf: &mut [u8]) -> io::Result<Option<usize>> {
        if let Some(t) = &self.shared.traffic {
            t.received(1, datagram.len() as u64);
        }
        self.shared.process(datagram, buf, &mut self.queued, &mut self.tx)
    }

    /// A batched receive on our own socket got datagrams: the next one, as
    /// [`on_datagram`](Self::on_datagram).
    pub(crate) fn on_batch(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.batch.next_datagram(&self.shared, buf, &mut self.queued, &mut self.tx).transpose().map(Option::flatten)
    }

    /// A wait on our own socket ended without a datagram (`error`: how the receive failed, if
    /// it did): an ICMP refusal is counted, the protocol's timers run; a real error fails.
    pub(crate) fn on_nothing(&mut self, error: Option<io::Error>) -> io::Result<Option<usize>> {
        if let Some(e) = error {
            if !nothing_received(&e) {
                return Err(e);
            }
            if e.kind() == io::ErrorKind::ConnectionRefused {
                self.shared.refused();
            }
        }
        self.on_timer()?;
        Ok(None)
    }

    /// Runs the protocol's timers (retransmissions, handshake timeout) and sends what is due.
    fn on_timer(&mut self) -> io::Result<()> {
        let mut proto = lock(&self.shared.proto);
        let r = proto.handle_timeout(Instant::now());
        self.shared.flush(&mut proto, &mut self.tx)?;
        r.map_err(Into::into)
    }

    /// The error of a receive once the listener stopped feeding the inbox (`kind`).
    fn inbox_closed(&self, kind: io::ErrorKind) -> io::Error {
        if self.is_closed() {
            return self.closed_error();
        }
        io::Error::new(kind, "the listener stopped serving this connection")
    }

    // ===== batched receiving =====

    /// Starts a batched receive: the last batch's buffers are released.
    pub(crate) fn batch_start(&mut self) {
        self.batch.reset(&self.shared);
    }

    /// One step of a batched receive: messages if some can be had now (decrypted ahead, queued
    /// by the listener, left by a batched receive), else what to wait for.
    pub(crate) fn recv_batch_step(&mut self, deadline: Option<Instant>, waited: &mut bool) -> io::Result<Step<()>> {
        if self.batch.take_queued(&mut self.queued) {
            return Ok(Step::Done(()));
        }
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let closed = {
            let mut inbox = lock(&self.shared.inbox);
            if !inbox.messages.is_empty() {
                // What the listener decrypted comes first (see `ready`).
                self.queued.extend(inbox.messages.drain(..));
                drop(inbox);
                self.batch.take_queued(&mut self.queued);
                return Ok(Step::Done(()));
            }
            let took = self.batch.take_inbox(&mut inbox);
            (!took).then_some(inbox.closed).flatten()
        };
        if self.batch.has_held() {
            self.batch.open_held(&self.shared, &mut self.tx, &mut self.last_error)?;
        } else if self.reads_own() && self.batch.has_pending() {
            self.batch.open_slots(&self.shared, &mut self.tx, &mut self.last_error)?;
        } else if let (false, Some(kind)) = (self.reads_own(), closed) {
            return Err(self.inbox_closed(kind));
        }
        if self.batch.has_messages() {
            return Ok(Step::Done(()));
        }
        // Nothing refers to what was taken: give the buffers back before going on.
        self.batch.reset(&self.shared);
        if std::mem::replace(waited, true) {
            Self::check_deadline(deadline, "receive")?;
        }
        Ok(Step::Wait(self.wait(deadline)))
    }

    /// A batched receive on our own socket got datagrams: decrypts them.
    pub(crate) fn on_batch_received(&mut self) -> io::Result<Option<()>> {
        self.batch.open_slots(&self.shared, &mut self.tx, &mut self.last_error)?;
        Ok(self.batch.has_messages().then_some(()))
    }

    // ===== sending =====

    /// Seals the next chunk of a batched send (at most [`crate::udp::MAX_BATCH`] messages);
    /// returns how many records are ready and why sealing stopped early, if it did.
    pub(crate) fn seal_chunk(&mut self, chunk: &[&[u8]]) -> (usize, Option<rdtls_proto::Error>) {
        let sealed = self.batch.seal(&self.shared, chunk);
        (self.batch.sealed(), sealed.err())
    }

    /// The outcome of a batched send after a chunk of `count` records, of which `result` went
    /// out (already counted in [`batch_sent`](Self::batch_sent)); `sealing` is why sealing
    /// stopped early, if it did. `Ok(Some(total))`: stop and return `total`; `Ok(None)`: go on
    /// with the next chunk.
    pub(crate) fn after_chunk(
        &self,
        count: usize,
        result: io::Result<usize>,
        sealing: Option<rdtls_proto::Error>,
    ) -> io::Result<Option<usize>> {
        let sent = self.batch_sent;
        let n = match result {
            Ok(n) => n,
            Err(_) if sent > 0 => return Ok(Some(sent)),
            Err(e) if is_timeout(&e) => return Err(io::Error::new(io::ErrorKind::TimedOut, "send timed out")),
            Err(e) => return Err(e),
        };
        if n < count {
            return Ok(Some(sent));
        }
        match sealing {
            Some(_) if sent > 0 => Ok(Some(sent)),
            Some(e) => Err(e.into()),
            None => Ok(None),
        }
    }

    /// Seals `data` as one record into the driver's send buffer.
    pub(crate) fn seal_one(&mut self, data: &[u8]) -> io::Result<()> {
        self.tx.clear();
        lock(&self.shared.proto).send(data, &mut self.tx)?;
        Ok(())
    }

    /// DTLS 1.3: starts a KeyUpdate and sends it.
    pub(crate) fn update_keys(&mut self, request_peer: bool) -> io::Result<()> {
        let mut proto = lock(&self.shared.proto);
        proto.update_keys(Instant::now(), request_peer)?;
        self.shared.flush(&mut proto, &mut self.tx)
    }

    // ===== handshake and closing =====

    /// One step of a client handshake: done once established; fails at `deadline`.
    pub(crate) fn handshake_step(&mut self, deadline: Instant) -> io::Result<Step<()>> {
        if self.shared.handshake_progress(&mut self.tx)? {
            return Ok(Step::Done(()));
        }
        Self::check_deadline(Some(deadline), "DTLS handshake")?;
        Ok(Step::Wait(self.wait(Some(deadline))))
    }

    /// Sends close_notify, once, and marks the connection closed.
    pub(crate) fn close(&mut self) -> io::Result<()> {
        self.shared.close(&mut self.tx)
    }

    /// Exports the session for a hand-off (EdgerOS `flyAway`): the socket's descriptor (a
    /// duplicate, blocking) and the state. This handle no longer closes the association.
    #[cfg(unix)]
    pub(crate) fn fly_away(&mut self) -> io::Result<(std::os::fd::OwnedFd, zeroize::Zeroizing<Vec<u8>>)> {
        if !self.reads_own() || !self.shared.connected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "only a connection with its own socket can be handed over (use per-connection sockets)",
            ));
        }
        // The next owner reads the socket with plain receives.
        self.batch.release_gro(&self.shared.socket)?;
        let socket = self.shared.socket.try_clone()?;
        let proto_state = lock(&self.shared.proto).export_session()?;
        // Datagrams the listener queued for this connection go along: the peer's first
        // messages can reach the listening socket before the connection's own socket exists
        // (with DTLS 1.3 the client sends as soon as its Finished is out).
        // So do the messages decrypted and not read yet (among them what the listener
        // decrypted before handing the connection to us), ahead of those datagrams.
        let mut inbox = lock(&self.shared.inbox);
        // Also what the listener decrypted since (a datagram from the peer's new address).
        let messages: Vec<Vec<u8>> = self.queued.drain(..).chain(inbox.messages.drain(..)).collect();
        let queued: Vec<Vec<u8>> = inbox.datagrams.drain(..).collect();
        drop(inbox);
        let state = handoff::encode(&proto_state, &messages, &queued);
        // Not ours any more: dropping this handle must not close the association.
        self.detached = true;
        self.shared.closed.store(true, Ordering::Relaxed);
        Ok((socket.into(), state))
    }

    /// The association resumed from a hand-off ([`fly_away`](Self::fly_away)): `fd` must be a
    /// socket connected to the peer.
    #[cfg(unix)]
    pub(crate) fn from_fd(
        fd: std::os::fd::OwnedFd,
        state: &[u8],
        config: Arc<rdtls_proto::Config>,
    ) -> io::Result<Self> {
        let socket = std::net::UdpSocket::from(fd);
        let peer = socket.peer_addr()?;
        let (proto_state, earlier, queued) = handoff::decode(state)?;
        let now = Instant::now();
        let mut proto = rdtls_proto::Connection::import_session(config, proto_state, now)?;
        // The messages and datagrams that came with the hand-off, in order: the datagrams are
        // read now, and all wait for `recv`.
        let mut messages = VecDeque::from(earlier);
        for mut d in queued {
            let received = proto.handle_datagram(now, &mut d)?;
            messages.extend(received.iter().map(<[u8]>::to_vec));
        }
        let shared = Arc::new(Shared::new(proto, peer, Arc::new(crate::udp::Socket::new(socket)?), true, 0));
        shared.heard();
        let mut driver = Self::new(shared, true, Batcher::default());
        driver.queued = messages;
        Ok(driver)
    }

    /// A client over `socket`, connected to `server`, its handshake started (the ClientHello
    /// queued), and when the handshake must be complete: after `timeout`, or the
    /// configuration's handshake timeout. The server's certificate is checked against
    /// `server_name`, or else the server's address; `observer` watches the connection.
    pub(crate) fn client(
        socket: std::net::UdpSocket,
        server: std::net::SocketAddr,
        server_name: Option<rdtls_proto::pki::ServerName<'static>>,
        config: Arc<rdtls_proto::Config>,
        timeout: Option<std::time::Duration>,
        observer: Option<crate::Observer>,
    ) -> io::Result<(Self, Instant)> {
        let now = Instant::now();
        let deadline = now + timeout.unwrap_or_else(|| config.handshake_timeout());
        let name = crate::name_or_address(server_name, server);
        // With a session store: offer the session kept for this server, and keep the new one.
        let store = config.session_store().cloned().map(|s| (s, rdtls_proto::resumption::server_name_key(&name)));
        let proto = match &store {
            Some((s, key)) => {
                let session = s.get(key, server, config.current_time().as_secs());
                rdtls_proto::Connection::resuming_client(config, Some(name), session, now)?
            }
            None => rdtls_proto::Connection::client_with_server_name(config, Some(name), now)?,
        };
        let mut shared = Shared::new(proto, server, Arc::new(crate::udp::Socket::new(socket)?), true, 0);
        shared.observer = observer;
        shared.session_store = store.map(|(store, name)| {
            Box::new(crate::shared::SessionKeeping {
                store,
                name,
                connected: std::sync::atomic::AtomicBool::new(false),
            })
        });
        Ok((Self::new(Arc::new(shared), true, Batcher::default()), deadline))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        let _ = self.close();
        self.shared.close_inbox(io::ErrorKind::NotConnected);
    }
}

/// The hand-off state of [`Driver::fly_away`]: the protocol's exported session, the messages
/// decrypted and not read yet (plaintext), then the datagrams that were queued for the
/// connection (whole, still protected).
///
/// ```text
/// "RDTLSHO2" || u32 session length || session
///            || u16 count || (u16 length || message)* || u16 count || (u16 length || datagram)*
/// ```
///
/// `RDTLSHO1` states (no messages) still decode, and a state without either magic is a bare
/// exported session (from an older version, or from
/// `rdtls_proto::Connection::export_session`), with nothing queued.
#[cfg(unix)]
mod handoff {
    use std::io;

    const MAGIC: &[u8] = b"RDTLSHO2";
    const MAGIC_1: &[u8] = b"RDTLSHO1";

    /// A hand-off's parts: the session, the messages, the datagrams.
    type Parts<'a> = (&'a [u8], Vec<Vec<u8>>, Vec<Vec<u8>>);

    fn put_list(out: &mut Vec<u8>, items: &[Vec<u8>]) {
        let items: Vec<&Vec<u8>> =
            items.iter().filter(|d| d.len() <= usize::from(u16::MAX)).take(usize::from(u16::MAX)).collect();
        out.extend_from_slice(&(items.len() as u16).to_be_bytes());
        for d in items {
            out.extend_from_slice(&(d.len() as u16).to_be_bytes());
            out.extend_from_slice(d);
        }
    }

    pub(super) fn encode(session: &[u8], messages: &[Vec<u8>], datagrams: &[Vec<u8>]) -> zeroize::Zeroizing<Vec<u8>> {
        let items = messages.iter().chain(datagrams).map(|d| 2 + d.len()).sum::<usize>();
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(MAGIC.len() + 4 + session.len() + 4 + items));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(session.len() as u32).to_be_bytes());
        out.extend_from_slice(session);
        put_list(&mut out, messages);
        put_list(&mut out, datagrams);
        out
    }

    pub(super) fn decode(state: &[u8]) -> io::Result<Parts<'_>> {
        let (rest, with_messages) = match (state.strip_prefix(MAGIC), state.strip_prefix(MAGIC_1)) {
            (Some(rest), _) => (rest, true),
            (None, Some(rest)) => (rest, false),
            (None, None) => return Ok((state, Vec::new(), Vec::new())),
        };
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "not a DTLS connection hand-off");
        let take = |r: &mut &[u8], n: usize| -> io::Result<Vec<u8>> {
            if r.len() < n {
                return Err(bad());
            }
            let (a, b) = r.split_at(n);
            *r = b;
            Ok(a.to_vec())
        };
        let list = |r: &mut &[u8]| -> io::Result<Vec<Vec<u8>>> {
            let count = u16::from_be_bytes(take(r, 2)?.try_into().map_err(|_| bad())?);
            let mut items = Vec::with_capacity(usize::from(count.min(64)));
            for _ in 0..count {
                let n = u16::from_be_bytes(take(r, 2)?.try_into().map_err(|_| bad())?);
                items.push(take(r, usize::from(n))?);
            }
            Ok(items)
        };
        let mut r = rest;
        let len = u32::from_be_bytes(take(&mut r, 4)?.try_into().map_err(|_| bad())?) as usize;
        if r.len() < len {
            return Err(bad());
        }
        let (session, mut r) = r.split_at(len);
        let messages = if with_messages { list(&mut r)? } else { Vec::new() };
        let datagrams = list(&mut r)?;
        if !r.is_empty() {
            return Err(bad());
        }
        Ok((session, messages, datagrams))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trip_and_bare_sessions() {
            let blob = super::encode(b"session", &[b"early".to_vec()], &[vec![1, 2, 3], vec![]]);
            let (session, messages, datagrams) = super::decode(&blob).unwrap();
            assert_eq!(session, b"session");
            assert_eq!(messages, vec![b"early".to_vec()]);
            assert_eq!(datagrams, vec![vec![1, 2, 3], vec![]]);
            assert_eq!(super::decode(b"DTLSSES1...").unwrap(), (&b"DTLSSES1..."[..], vec![], vec![]));
            // The first version: a session and datagrams.
            let mut v1 = b"RDTLSHO1".to_vec();
            v1.extend_from_slice(&[0, 0, 0, 1, b's', 0, 1, 0, 2, 7, 8]);
            assert_eq!(super::decode(&v1).unwrap(), (&b"s"[..], vec![], vec![vec![7, 8]]));
            for cut in 0..blob.len() {
                if cut > super::MAGIC.len() {
                    assert!(super::decode(&blob[..cut]).is_err(), "cut at {cut}");
                }
            }
        }
    }
}
