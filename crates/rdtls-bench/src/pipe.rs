//! An in-memory datagram transport for OpenSSL: each `write` is one datagram, each `read`
//! takes one whole datagram. Buffers are recycled, so steady state does not allocate.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;

#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) datagrams: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
}

impl Queue {
    pub(crate) fn push(&mut self, data: &[u8]) {
        let mut v = self.spare.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(data);
        self.datagrams.push_back(v);
    }

    pub(crate) fn recycle(&mut self, v: Vec<u8>) {
        if self.spare.len() < 1024 {
            self.spare.push(v);
        }
    }

    /// Frees every buffer (idle connections keep nothing here).
    pub(crate) fn release(&mut self) {
        self.datagrams = VecDeque::new();
        self.spare = Vec::new();
    }
}

/// One end of a datagram pipe.
#[derive(Debug)]
pub(crate) struct End {
    pub(crate) rx: Rc<RefCell<Queue>>,
    pub(crate) tx: Rc<RefCell<Queue>>,
    /// Writes go to `last` instead of the queue (measuring the sender alone).
    pub(crate) discard: bool,
    pub(crate) last: Vec<u8>,
}

/// Two connected ends.
pub(crate) fn pair() -> (End, End) {
    let a = Rc::new(RefCell::new(Queue::default()));
    let b = Rc::new(RefCell::new(Queue::default()));
    (
        End { rx: a.clone(), tx: b.clone(), discard: false, last: Vec::new() },
        End { rx: b, tx: a, discard: false, last: Vec::new() },
    )
}

impl Read for End {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut q = self.rx.borrow_mut();
        match q.datagrams.pop_front() {
            Some(d) => {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                q.recycle(d);
                Ok(n)
            }
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for End {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.discard {
            self.last.clear();
            self.last.extend_from_slice(buf);
        } else {
            self.tx.borrow_mut().push(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
