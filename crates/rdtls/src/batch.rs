//! Batched sends and receives of a connection, shared by the blocking [`Connection`] and the
//! async `tokio::Connection`: the batching policy, the offloads in use, the reused buffers,
//! sealing into one contiguous buffer, sending it (GSO runs, `sendmmsg`), decrypting received
//! datagrams in place, and the [`Messages`] a batched receive returns.
//!
//! Only the waiting differs between the two connections: the blocking one waits in the system
//! call (or on the inbox's condition variable), the async one for tokio's readiness (or the
//! inbox's notification), then calls the same non-waiting operations here.
//!
//! [`Connection`]: crate::Connection

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rdtls_proto::Connection as Proto;

use crate::shared::{Inbox, Shared};
use crate::udp::{self, Batching, Fd, RecvBatch, Socket};
use crate::{is_timeout, lock};

/// Receive slots of a batched receive with GRO on (each takes a run of up to 64 datagrams).
const GRO_SLOTS: usize = 32;

/// Where the plaintext of a message a batched receive returned lies.
#[derive(Clone, Copy, Debug)]
enum Message {
    /// `Buffers::queued[i]`.
    Queued(usize),
    /// `Buffers::rx`'s buffer, `start..end`.
    Slot { start: usize, end: usize },
    /// `Buffers::held[datagram][start..end]`.
    Held { datagram: usize, start: usize, end: usize },
}

/// Buffers of batched sends and receives, reused across calls.
#[derive(Debug, Default)]
struct Buffers {
    /// Receive slots of batched receives on the connection's own socket, allocated on first
    /// use.
    rx: Option<RecvBatch>,
    /// Records [`Batcher::seal`] sealed, back to back, and where each ends.
    tx: Vec<u8>,
    tx_ends: Vec<usize>,
    /// The messages of the last batched receive.
    messages: Vec<Message>,
    /// Messages a plain receive had queued.
    queued: Vec<Vec<u8>>,
    /// Datagrams taken from the inbox, decrypted in place; back to the inbox's spares on the
    /// next [`Batcher::reset`].
    held: Vec<Vec<u8>>,
}

/// The batched I/O of one connection: how it batches, which offloads are in use, and its
/// buffers.
#[derive(Debug, Default)]
pub(crate) struct Batcher {
    batching: Batching,
    /// UDP GSO in use: `Offload` chosen, the kernel has it and has not refused it for good.
    gso: bool,
    /// UDP GRO was turned on for the connection's own socket: coalesced datagrams may arrive,
    /// so every receive goes through `bufs.rx`, which splits them.
    gro: bool,
    /// Allocated on first use: most connections never batch.
    bufs: Option<Box<Buffers>>,
}

impl Batcher {
    /// Chooses the policy. `Offload` probes UDP GSO on `socket` and, if the socket is the
    /// connection's `own`, turns UDP GRO on (and back off for another policy).
    pub(crate) fn set(&mut self, batching: Batching, socket: &Socket, own: bool) {
        self.batching = batching;
        let offload = batching == Batching::Offload;
        self.gso = offload && socket.gso_supported();
        if own && (offload || self.gro) {
            match socket.set_gro(offload) {
                // Once on, coalesced datagrams may still be queued: keep splitting them.
                Ok(on) => self.gro |= on,
                Err(e) => tracing::debug!(error = %e, "cannot change UDP GRO"),
            }
        }
    }

    pub(crate) fn batching(&self) -> Batching {
        self.batching
    }

    fn bufs_mut(&mut self) -> &mut Buffers {
        self.bufs.get_or_insert_with(Box::default)
    }

    /// Whether coalesced datagrams may arrive: receives must go through
    /// [`recv`](Self::recv).
    pub(crate) fn gro(&self) -> bool {
        self.gro
    }

    /// Turns GRO off before the socket changes hands (its next owner reads it plainly).
    #[cfg(unix)]
    pub(crate) fn release_gro(&mut self, socket: &Socket) -> io::Result<()> {
        if self.gro {
            socket.set_gro(false)?;
            self.gro = false;
        }
        Ok(())
    }

    // ===== sending =====

    /// Seals `chunk` (at most [`udp::MAX_BATCH`] messages) back to back into one reused
    /// buffer, noting where each record ends; stops at the first message that cannot be
    /// sealed. Each message is sealed exactly once: [`transmit`](Self::transmit) sends the
    /// records as they are, however many attempts it takes.
    pub(crate) fn seal(&mut self, shared: &Shared, chunk: &[&[u8]]) -> Result<(), rdtls_proto::Error> {
        debug_assert!(chunk.len() <= udp::MAX_BATCH);
        let b = self.bufs_mut();
        b.tx.clear();
        b.tx_ends.clear();
        let mut proto = lock(&shared.proto);
        for message in chunk.iter().take(udp::MAX_BATCH) {
            let before = b.tx.len();
            if let Err(e) = proto.send(message, &mut b.tx) {
                b.tx.truncate(before);
                return Err(e);
            }
            b.tx_ends.push(b.tx.len());
        }
        Ok(())
    }

    /// The bytes of the `n` sealed records from the `from`th on.
    pub(crate) fn sealed_bytes(&self, from: usize, n: usize) -> u64 {
        let Some(b) = self.bufs.as_deref() else { return 0 };
        let end = b.tx_ends.get((from + n).saturating_sub(1)).copied().unwrap_or(0);
        let start = from.checked_sub(1).and_then(|i| b.tx_ends.get(i)).copied().unwrap_or(0);
        end.saturating_sub(start) as u64
    }

    /// How many records the last [`seal`](Self::seal) prepared.
    pub(crate) fn sealed(&self) -> usize {
        self.bufs.as_ref().map_or(0, |b| b.tx_ends.len())
    }

    /// Sends the sealed records from the `from`th on, as the policy says, without waiting;
    /// returns how many of them went out: all, or fewer when sending one failed after others
    /// went out (the failure repeats on the next call: `WouldBlock` when the send buffer is
    /// full), or the error if none did. `src`: the local address to send from (a wildcard
    /// socket).
    pub(crate) fn transmit(
        &mut self,
        socket: &Socket,
        fd: Fd<'_>,
        dest: Option<SocketAddr>,
        src: Option<IpAddr>,
        from: usize,
    ) -> io::Result<usize> {
        let Some(b) = self.bufs.as_deref() else { return Ok(0) };
        let ends = b.tx_ends.get(from..).unwrap_or_default();
        let base = from.checked_sub(1).and_then(|i| b.tx_ends.get(i)).copied().unwrap_or(0);
        let mut datagrams: [&[u8]; udp::MAX_BATCH] = [&[]; udp::MAX_BATCH];
        let mut start = base;
        for (d, &end) in datagrams.iter_mut().zip(ends) {
            *d = b.tx.get(start..end).unwrap_or_default();
            start = end;
        }
        let datagrams = &datagrams[..ends.len().min(udp::MAX_BATCH)];
        if datagrams.is_empty() {
            return Ok(0);
        }
        let contiguous = b.tx.get(base..).unwrap_or_default();
        let out = Out { socket, fd, dest, src };
        match self.batching {
            Batching::Off => out.each(datagrams),
            Batching::Offload if self.gso => send_offload(out, contiguous, datagrams, &mut self.gso),
            _ => socket.try_send_many(fd, datagrams, dest, src),
        }
    }

    // ===== receiving =====

    /// Forgets the last batch's messages; its inbox buffers go back to the inbox's spares.
    pub(crate) fn reset(&mut self, shared: &Shared) {
        let Some(b) = self.bufs.as_deref_mut() else { return };
        b.messages.clear();
        b.queued.clear();
        if !b.held.is_empty() {
            let mut inbox = lock(&shared.inbox);
            for d in b.held.drain(..) {
                if inbox.spare.len() < inbox.capacity {
                    inbox.spare.push(d);
                }
            }
        }
    }

    /// Makes the messages a plain receive already decrypted the batch's messages; returns
    /// whether there were any.
    pub(crate) fn take_queued(&mut self, queued: &mut VecDeque<Vec<u8>>) -> bool {
        if queued.is_empty() {
            return false;
        }
        let b = self.bufs_mut();
        b.queued.extend(queued.drain(..));
        b.messages.extend((0..b.queued.len()).map(Message::Queued));
        !b.queued.is_empty()
    }

    /// Moves up to [`udp::MAX_BATCH`] datagrams from the inbox to the batch; returns whether
    /// any came. [`open_held`](Self::open_held) decrypts them.
    pub(crate) fn take_inbox(&mut self, inbox: &mut Inbox) -> bool {
        let n = inbox.datagrams.len().min(udp::MAX_BATCH);
        if n == 0 {
            return false;
        }
        self.bufs_mut().held.extend(inbox.datagrams.drain(..n));
        true
    }

    /// Whether datagrams taken from the inbox wait to be decrypted.
    pub(crate) fn has_held(&self) -> bool {
        self.bufs.as_ref().is_some_and(|b| !b.held.is_empty())
    }

    /// Whether a receive left datagrams not handed out yet: they come before the socket's.
    pub(crate) fn has_pending(&self) -> bool {
        self.bufs.as_ref().and_then(|b| b.rx.as_ref()).is_some_and(RecvBatch::has_pending)
    }

    /// Whether the last batched receive produced messages.
    pub(crate) fn has_messages(&self) -> bool {
        self.bufs.as_ref().is_some_and(|b| !b.messages.is_empty())
    }

    /// One batched receive on `socket` into the receive slots (allocated on first use),
    /// without waiting: every datagram already queued, up to one per slot, or one datagram
    /// with [`Batching::Off`]; `WouldBlock` if none is.
    pub(crate) fn recv(&mut self, socket: &Socket, fd: Fd<'_>) -> io::Result<usize> {
        let max = match self.batching {
            Batching::Off => 1,
            _ if self.gro => GRO_SLOTS,
            _ => udp::MAX_BATCH,
        };
        let rx = &mut self.bufs_mut().rx;
        if rx.as_ref().is_none_or(|b| b.slots() < max) {
            *rx = None;
        }
        let batch = rx.get_or_insert_with(|| RecvBatch::new(max, udp::MAX_SLOT));
        socket.try_recv(fd, batch, max)
    }

    /// Decrypts the received datagrams not handed out yet, in order, noting where each
    /// message lies; whatever the protocol answers is sent. Messages already decrypted are
    /// kept even if a later datagram fails (the connection is then closed, which the next call
    /// reports); a send error after some messages goes to `deferred`.
    pub(crate) fn open_slots(
        &mut self,
        shared: &Shared,
        tx: &mut Vec<u8>,
        deferred: &mut Option<io::Error>,
    ) -> io::Result<()> {
        self.open_with(shared, tx, deferred, |b, proto, now| {
            let batch = b.rx.as_mut()?;
            while let Some((range, source)) = batch.next_datagram() {
                // A socket of the connection's own is connected to the peer, so the kernel
                // filters; were it not, datagrams from elsewhere are not the peer's.
                if !shared.connected && source != shared.peer() {
                    continue;
                }
                let at = range.start;
                let Some(datagram) = batch.buffer_mut().get_mut(range) else { continue };
                if let Some(t) = &shared.traffic {
                    t.received(1, datagram.len() as u64);
                }
                let slot = |start, end| Message::Slot { start: at + start, end: at + end };
                if let Err(e) = open(Some(shared), proto, now, datagram, &mut b.messages, &mut b.queued, slot) {
                    return Some(e);
                }
                if proto.is_closed() {
                    break;
                }
            }
            None
        })
    }

    /// Decrypts the datagrams [`take_inbox`](Self::take_inbox) took, like
    /// [`open_slots`](Self::open_slots).
    pub(crate) fn open_held(
        &mut self,
        shared: &Shared,
        tx: &mut Vec<u8>,
        deferred: &mut Option<io::Error>,
    ) -> io::Result<()> {
        self.open_with(shared, tx, deferred, |b, proto, now| {
            for (i, datagram) in b.held.iter_mut().enumerate() {
                let held = |start, end| Message::Held { datagram: i, start, end };
                // The listener showed its observer these datagrams when it read them.
                if let Err(e) = open(None, proto, now, datagram, &mut b.messages, &mut b.queued, held) {
                    return Some(e);
                }
                if proto.is_closed() {
                    break;
                }
            }
            None
        })
    }

    /// Runs `open_all` (which decrypts datagrams with [`open`] until one fails or the
    /// connection closes, returning the failure) under the connection's lock, sends what the
    /// protocol answers, and reports as [`finish`](Self::finish) says.
    fn open_with(
        &mut self,
        shared: &Shared,
        tx: &mut Vec<u8>,
        deferred: &mut Option<io::Error>,
        open_all: impl FnOnce(&mut Buffers, &mut Proto, Instant) -> Option<rdtls_proto::Error>,
    ) -> io::Result<()> {
        let Some(b) = self.bufs.as_deref_mut() else { return Ok(()) };
        shared.heard();
        let mut proto = lock(&shared.proto);
        let before = shared.traffic.as_ref().map(|_| proto.stats());
        let failed = open_all(b, &mut proto, Instant::now());
        if let (Some(t), Some(before)) = (&shared.traffic, before) {
            t.dropped(&before, &proto.stats());
        }
        let flushed = shared.flush(&mut proto, tx);
        drop(proto);
        self.finish(failed, flushed, deferred)
    }

    /// The outcome of decrypting a batch: messages already decrypted are returned even if a
    /// later datagram failed.
    fn finish(
        &mut self,
        failed: Option<rdtls_proto::Error>,
        flushed: io::Result<()>,
        deferred: &mut Option<io::Error>,
    ) -> io::Result<()> {
        if !self.has_messages() {
            flushed?;
            return failed.map_or(Ok(()), |e| Err(e.into()));
        }
        if let Err(e) = flushed {
            *deferred = Some(e);
        }
        Ok(())
    }

    /// Processes the next datagram a batched receive left, if any, like a plain receive
    /// ([`Shared::process`]): the first message goes to `buf`, others to `queued`.
    pub(crate) fn next_datagram(
        &mut self,
        shared: &Shared,
        buf: &mut [u8],
        queued: &mut VecDeque<Vec<u8>>,
        tx: &mut Vec<u8>,
    ) -> Option<io::Result<Option<usize>>> {
        let batch = self.bufs.as_mut()?.rx.as_mut()?;
        while let Some((range, source)) = batch.next_datagram() {
            if !shared.connected && source != shared.peer() {
                continue;
            }
            let Some(datagram) = batch.buffer_mut().get_mut(range) else { continue };
            return Some(shared.process(datagram, buf, queued, tx));
        }
        None
    }

    /// The messages of the last batched receive, in order.
    pub(crate) fn messages(&self) -> Messages<'_> {
        match self.bufs.as_deref() {
            Some(b) => Messages {
                messages: b.messages.iter(),
                queued: &b.queued,
                held: &b.held,
                slots: b.rx.as_ref().map_or(&[], RecvBatch::buffer),
            },
            None => Messages { messages: [].iter(), queued: &[], held: &[], slots: &[] },
        }
    }
}

/// The messages one batched receive ([`Connection::recv_batch`](crate::Connection::recv_batch),
/// or the async `tokio::Connection::recv_batch`) received, in order, borrowed from the
/// connection's receive buffers where they were decrypted.
pub struct Messages<'a> {
    messages: std::slice::Iter<'a, Message>,
    queued: &'a [Vec<u8>],
    held: &'a [Vec<u8>],
    slots: &'a [u8],
}

impl std::fmt::Debug for Messages<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages").field("remaining", &self.messages.len()).finish()
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let m = self.messages.next()?;
        let data = match *m {
            Message::Queued(i) => self.queued.get(i).map(Vec::as_slice),
            Message::Slot { start, end } => self.slots.get(start..end),
            Message::Held { datagram, start, end } => self.held.get(datagram).and_then(|d| d.get(start..end)),
        };
        Some(data.unwrap_or_default())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.messages.size_hint()
    }
}

impl ExactSizeIterator for Messages<'_> {}

impl std::iter::FusedIterator for Messages<'_> {}

/// Whether a receive error only means that nothing arrived: a timeout, an ICMP error for an
/// earlier datagram, a signal.
pub(crate) fn nothing_received(e: &io::Error) -> bool {
    is_timeout(e) || matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::Interrupted)
}

/// Decrypts one datagram in place and notes where each message's plaintext lies: `at` maps a
/// range within the datagram to its [`Message`]; a message from elsewhere (data a DTLS 1.3
/// server held until the handshake ended) is copied to `queued`. `shared`: the connection
/// whose observer sees the datagram (`None`: already seen).
fn open(
    shared: Option<&Shared>,
    proto: &mut Proto,
    now: Instant,
    datagram: &mut [u8],
    out: &mut Vec<Message>,
    queued: &mut Vec<Vec<u8>>,
    at: impl Fn(usize, usize) -> Message,
) -> Result<(), rdtls_proto::Error> {
    let within = datagram.as_ptr_range();
    let (base, end) = (within.start.addr(), within.end.addr());
    if let Some(shared) = shared {
        shared.observe_received(datagram);
    }
    let received = proto.handle_datagram(now, datagram)?;
    for data in received.iter() {
        let start = data.as_ptr().addr();
        if start >= base && start + data.len() <= end {
            out.push(at(start - base, start - base + data.len()));
        } else {
            queued.push(data.to_vec());
            out.push(Message::Queued(queued.len() - 1));
        }
    }
    Ok(())
}

/// Where a batch goes: the socket, the descriptor to use, the destination (`None`: the
/// connected peer) and the local address to send from.
#[derive(Clone, Copy)]
struct Out<'a> {
    socket: &'a Socket,
    fd: Fd<'a>,
    dest: Option<SocketAddr>,
    src: Option<IpAddr>,
}

impl Out<'_> {
    /// Sends each datagram with its own system call; how many went out, or the error if none.
    fn each(self, datagrams: &[&[u8]]) -> io::Result<usize> {
        for (i, d) in datagrams.iter().enumerate() {
            if let Err(e) = self.socket.try_send(self.fd, d, self.dest, self.src) {
                return if i > 0 { Ok(i) } else { Err(e) };
            }
        }
        Ok(datagrams.len())
    }

    fn many(self, datagrams: &[&[u8]]) -> io::Result<usize> {
        self.socket.try_send_many(self.fd, datagrams, self.dest, self.src)
    }
}

/// Sends `datagrams`, laid back to back in `contiguous`, with one GSO send per run of equal
/// sizes, and one by one (`sendmmsg`) where the kernel refuses GSO (for good: quinn-udp then
/// turns it off for the socket, and `gso` follows). Returns how many went out, or the error if
/// none did.
fn send_offload(out: Out<'_>, contiguous: &[u8], datagrams: &[&[u8]], gso: &mut bool) -> io::Result<usize> {
    let mut sent = 0;
    let mut offset = 0;
    while sent < datagrams.len() {
        let rest = &datagrams[sent..];
        let run = udp::gso_run(rest);
        let bytes: usize = rest[..run].iter().map(|d| d.len()).sum();
        let segments = contiguous.get(offset..offset + bytes).filter(|_| run > 1 && *gso);
        let r = match segments {
            Some(buf) => match out.socket.try_send_segments(out.fd, buf, rest[0].len(), out.dest, out.src) {
                Ok(()) => Ok(run),
                Err(e) if udp::gso_refused(&e) => {
                    if !out.socket.gso_supported() {
                        tracing::debug!(error = %e, "UDP GSO refused: sending with sendmmsg from now on");
                        *gso = false;
                    }
                    out.many(&rest[..run])
                }
                Err(e) => Err(e),
            },
            None => out.many(&rest[..run]),
        };
        match r {
            Ok(n) => {
                offset += rest[..n].iter().map(|d| d.len()).sum::<usize>();
                sent += n;
                if n < run {
                    break;
                }
            }
            Err(_) if sent > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::net::UdpSocket;
    use std::time::Duration;

    use super::*;

    /// A batcher in `mode` (probed on `socket`) holding `records` as if sealed.
    fn sealed(mode: Batching, socket: &Socket, records: &[Vec<u8>]) -> Batcher {
        let mut b = Batcher::default();
        b.set(mode, socket, false);
        for r in records {
            let bufs = b.bufs_mut();
            bufs.tx.extend_from_slice(r);
            bufs.tx_ends.push(bufs.tx.len());
        }
        b
    }

    /// 64 records of mixed sizes, each distinct.
    fn records() -> Vec<Vec<u8>> {
        let sizes = [1_200, 1_200, 1_200, 300, 1_200, 1_200, 0, 7, 7, 2_000, 1_200];
        (0..64u8).map(|i| vec![i; sizes[usize::from(i) % sizes.len()]]).collect()
    }

    /// A sender connected to a receiver on loopback.
    fn pair() -> (Socket, UdpSocket) {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        (Socket::new(tx).unwrap(), rx)
    }

    /// A send buffer that fills after a few records makes every mode stop with `WouldBlock`
    /// part-way; sending on from the first record not sent delivers each record exactly once,
    /// in order, as sealed.
    #[test]
    fn transmit_goes_on_where_a_full_send_buffer_stopped_it() {
        let records = records();
        for mode in [Batching::Off, Batching::Mmsg, Batching::Offload] {
            let (tx, rx) = pair();
            let mut b = sealed(mode, &tx, &records);
            let (mut from, mut partial, mut stalls) = (0, 0, 0);
            *tx.room.lock().unwrap() = Some(5);
            while from < records.len() {
                match b.transmit(&tx, Fd::Own, None, None, from) {
                    Ok(n) => {
                        assert!(n > 0 && from + n <= records.len(), "{mode:?}");
                        from += n;
                        partial += usize::from(from < records.len());
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // The buffer drains: room for a few more.
                        stalls += 1;
                        *tx.room.lock().unwrap() = Some(3 + stalls % 7);
                    }
                    Err(e) => panic!("{mode:?}: {e}"),
                }
            }
            assert!(partial > 0 && stalls > 0, "{mode:?}: the send buffer never filled");
            let mut buf = [0u8; 4096];
            for (i, r) in records.iter().enumerate() {
                let n = rx.recv(&mut buf).unwrap();
                assert!(buf[..n] == r[..], "{mode:?}: record {i}");
            }
        }
    }

    /// Sending on from a record other than the first cuts GSO runs and finds each record in
    /// the contiguous buffer at the right place.
    #[test]
    fn transmit_from_a_later_record_with_gso() {
        let records = records();
        let (tx, rx) = pair();
        let mut buf = [0u8; 4096];
        for from in [0, 1, 3, 5, 10, 63, 64] {
            let mut b = sealed(Batching::Offload, &tx, &records);
            assert!(b.gso, "UDP GSO missing: only the fallback would be tested");
            assert_eq!(b.transmit(&tx, Fd::Own, None, None, from).unwrap(), records.len() - from);
            for (i, r) in records.iter().enumerate().skip(from) {
                let n = rx.recv(&mut buf).unwrap();
                assert!(buf[..n] == r[..], "from {from}: record {i}");
            }
            assert_eq!(b.transmit(&tx, Fd::Own, None, None, 65).unwrap(), 0);
        }
    }
}
