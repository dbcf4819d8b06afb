//! `SO_REUSEPORT` workers that route by connection ID.
//!
//! The kernel spreads datagrams over the workers' sockets by their addresses, so when a peer's
//! address changes (a NAT rebinding) its datagrams may reach another worker than the one that
//! serves its connection. Each worker gives its connections IDs of its own shard
//! ([`ShardedIds`](rdtls_proto::cid::ShardedIds)), and a worker that reads a datagram whose ID
//! names another shard hands it to that worker in-process: the owner serves it as if it had read
//! it, and its connection follows the peer. Nothing is looked up but the ID's first byte.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use crate::lock;

/// Most datagrams waiting in one worker's mailbox: more are dropped, as a full socket buffer
/// drops them.
const MAILBOX_CAPACITY: usize = 4096;
/// Most spare buffers a mailbox keeps for reuse.
const SPARE_BUFFERS: usize = 256;

/// A datagram one worker read for another.
#[derive(Debug)]
pub(super) struct Handed {
    pub(super) datagram: Vec<u8>,
    pub(super) from: SocketAddr,
    pub(super) local: Option<IpAddr>,
}

/// Every worker's mailbox, shared by the workers of one `bind_workers`.
#[derive(Debug)]
pub(super) struct Workers {
    mailboxes: Vec<Mailbox>,
}

#[derive(Debug)]
struct Mailbox {
    queue: Mutex<VecDeque<Handed>>,
    /// Buffers of served hand-offs, reused so that a steady stream does not allocate.
    spare: Mutex<Vec<Vec<u8>>>,
    /// Wakes the worker from its wait on its socket (a byte when the queue stops being empty).
    #[cfg(unix)]
    wake: std::os::unix::net::UnixDatagram,
}

/// One worker's end: its shard, and what wakes it.
#[derive(Debug)]
pub(super) struct Mail {
    pub(super) shard: u8,
    pub(super) workers: Arc<Workers>,
    #[cfg(unix)]
    woken: std::os::unix::net::UnixDatagram,
}

impl Workers {
    /// Mailboxes for `n` workers (at most 256: a shard is one byte), and each worker's end.
    pub(super) fn start(n: usize) -> io::Result<Vec<Mail>> {
        if n > 256 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "at most 256 workers route by connection ID"));
        }
        let mut mailboxes = Vec::with_capacity(n);
        #[cfg(unix)]
        let mut ends = Vec::with_capacity(n);
        for _ in 0..n {
            #[cfg(unix)]
            let wake = {
                let (wake, woken) = std::os::unix::net::UnixDatagram::pair()?;
                wake.set_nonblocking(true)?;
                woken.set_nonblocking(true)?;
                ends.push(woken);
                wake
            };
            mailboxes.push(Mailbox {
                queue: Mutex::new(VecDeque::new()),
                spare: Mutex::new(Vec::new()),
                #[cfg(unix)]
                wake,
            });
        }
        let workers = Arc::new(Self { mailboxes });
        #[cfg(unix)]
        let mail = ends
            .into_iter()
            .enumerate()
            .map(|(i, woken)| Mail { shard: i as u8, workers: workers.clone(), woken })
            .collect();
        #[cfg(not(unix))]
        let mail = (0..n).map(|i| Mail { shard: i as u8, workers: workers.clone() }).collect();
        Ok(mail)
    }

    /// Hands `datagram` to the worker of `shard`; `false` if there is no such worker.
    pub(super) fn hand(&self, shard: u8, datagram: &[u8], from: SocketAddr, local: Option<IpAddr>) -> bool {
        let Some(m) = self.mailboxes.get(usize::from(shard)) else { return false };
        let mut buf = lock(&m.spare).pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(datagram);
        let mut queue = lock(&m.queue);
        if queue.len() >= MAILBOX_CAPACITY {
            tracing::debug!(shard, "a worker's mailbox is full: a datagram handed to it was dropped");
            return true;
        }
        let was_empty = queue.is_empty();
        queue.push_back(Handed { datagram: buf, from, local });
        drop(queue);
        #[cfg(unix)]
        if was_empty {
            // Full: a wake-up is already pending.
            let _ = m.wake.send(&[1]);
        }
        #[cfg(not(unix))]
        let _ = was_empty;
        true
    }
}

impl Mail {
    /// What other workers handed to this one.
    pub(super) fn take(&self) -> VecDeque<Handed> {
        #[cfg(unix)]
        {
            let mut sink = [0u8; 64];
            while matches!(self.woken.recv(&mut sink), Ok(n) if n > 0) {}
        }
        std::mem::take(&mut *lock(&self.workers.mailboxes[usize::from(self.shard)].queue))
    }

    /// Keeps the buffers of served hand-offs for the next ones.
    pub(super) fn recycle(&self, served: impl Iterator<Item = Vec<u8>>) {
        let mut spare = lock(&self.workers.mailboxes[usize::from(self.shard)].spare);
        let room = SPARE_BUFFERS.saturating_sub(spare.len());
        spare.extend(served.take(room));
    }

    /// What wakes the worker when something is handed to it.
    #[cfg(unix)]
    pub(super) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.woken.as_fd()
    }
}
