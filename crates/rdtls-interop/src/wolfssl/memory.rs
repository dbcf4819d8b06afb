//! A [`WolfPeer`] in memory: wolfSSL's I/O callbacks take datagrams from an inbox and put what
//! it sends in an outbox, so that a caller (the benchmark) drives wolfSSL call by call, with no
//! socket, no system call and no timer. Buffers are recycled: in a steady exchange, moving a
//! datagram allocates nothing.
//!
//! Peers made with [`WolfPeer::in_memory_sharing`] share one `WOLFSSL_CTX`, as the connections
//! of a real server do.

use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use wolfssl_sys as sys;

use super::{reason, Role, Transport, WolfConfig, WolfError, WolfPeer};

/// The queues of one in-memory peer.
#[derive(Default)]
struct Queues {
    /// Datagrams for wolfSSL to read, oldest first.
    inbox: VecDeque<Vec<u8>>,
    /// Datagrams wolfSSL wrote, oldest first.
    outbox: VecDeque<Vec<u8>>,
    /// Emptied buffers, for the next datagram.
    spare: Vec<Vec<u8>>,
}

/// The queues, owned through a raw pointer: wolfSSL's callbacks reach them through the same
/// pointer while a wolfSSL call runs, and Rust code only between calls.
pub(super) struct MemoryIo(NonNull<Queues>);

impl MemoryIo {
    fn new() -> Self {
        Self(NonNull::from(Box::leak(Box::<Queues>::default())))
    }

    fn queues(&mut self) -> &mut Queues {
        // SAFETY: the pointer comes from `Box::leak` and is freed only in `drop`; no wolfSSL call
        // (the only other user) runs while `&mut self` is held.
        unsafe { self.0.as_mut() }
    }
}

impl Drop for MemoryIo {
    fn drop(&mut self) {
        // SAFETY: made by `Box::leak` in `new`; the connection whose callbacks used it is freed
        // before (field order of `WolfPeer`).
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// wolfSSL reads: the oldest datagram of the inbox, or "would block".
///
/// # Safety
///
/// `ctx` is the `Queues` of the connection; `buf` is writable for `sz` bytes.
unsafe extern "C" fn recv(_ssl: *mut sys::WOLFSSL, buf: *mut c_char, sz: c_int, ctx: *mut c_void) -> c_int {
    // SAFETY: by the function's contract; nothing else uses the queues during a wolfSSL call.
    let Some(q) = (unsafe { ctx.cast::<Queues>().as_mut() }) else {
        return sys::IOerrors_WOLFSSL_CBIO_ERR_GENERAL;
    };
    let Some(d) = q.inbox.pop_front() else { return sys::IOerrors_WOLFSSL_CBIO_ERR_WANT_READ };
    // A datagram longer than the buffer is cut, as a socket would.
    let n = d.len().min(usize::try_from(sz).unwrap_or(0));
    // SAFETY: `buf` is writable for `sz` bytes, `n` is at most that, and it is wolfSSL's own
    // buffer, not ours.
    unsafe { std::ptr::copy_nonoverlapping(d.as_ptr(), buf.cast::<u8>(), n) };
    q.spare.push(d);
    n as c_int
}

/// wolfSSL writes: one datagram into the outbox.
///
/// # Safety
///
/// `ctx` is the `Queues` of the connection; `buf` is readable for `sz` bytes.
unsafe extern "C" fn send(_ssl: *mut sys::WOLFSSL, buf: *mut c_char, sz: c_int, ctx: *mut c_void) -> c_int {
    // SAFETY: as in `recv`.
    let Some(q) = (unsafe { ctx.cast::<Queues>().as_mut() }) else {
        return sys::IOerrors_WOLFSSL_CBIO_ERR_GENERAL;
    };
    let Ok(len) = usize::try_from(sz) else { return sys::IOerrors_WOLFSSL_CBIO_ERR_GENERAL };
    let mut d = q.spare.pop().unwrap_or_default();
    d.clear();
    // SAFETY: `buf` is readable for `sz` bytes, by the function's contract.
    d.extend_from_slice(unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) });
    q.outbox.push_back(d);
    sz
}

impl WolfPeer {
    /// A peer in memory, with its own context. Drive it with
    /// [`try_handshake`](Self::try_handshake), [`try_send`](Self::try_send) and
    /// [`try_recv`](Self::try_recv), moving datagrams with [`pass_to`](Self::pass_to); the
    /// blocking calls (`handshake`, `send`, ...) need a socket.
    pub(crate) fn in_memory(config: &WolfConfig) -> Result<Self, WolfError> {
        let (ssl, ctx, state) = Self::configure(config)?;
        Self::attach_memory(ssl, ctx, state, config)
    }

    /// Another peer in memory with `other`'s context (made from the same `config`), as the
    /// connections of one server share theirs.
    pub(crate) fn in_memory_sharing(other: &Self, config: &WolfConfig) -> Result<Self, WolfError> {
        let ctx = Arc::clone(&other._ctx);
        let (ssl, state) = Self::connection(config, &ctx)?;
        Self::attach_memory(ssl, ctx, state, config)
    }

    fn attach_memory(
        ssl: super::Ssl,
        ctx: Arc<super::Ctx>,
        state: Box<super::CallbackState>,
        config: &WolfConfig,
    ) -> Result<Self, WolfError> {
        let io = MemoryIo::new();
        let s = ssl.0.as_ptr();
        let q = io.0.as_ptr().cast::<c_void>();
        // SAFETY: `s` is live; the callbacks match wolfSSL's types and use `q`, which the peer
        // keeps until after the connection is freed.
        unsafe {
            sys::wolfSSL_SSLSetIORecv(s, Some(recv));
            sys::wolfSSL_SSLSetIOSend(s, Some(send));
            sys::wolfSSL_SetIOReadCtx(s, q);
            sys::wolfSSL_SetIOWriteCtx(s, q);
            sys::wolfSSL_dtls_set_using_nonblock(s, 1);
        }
        let transport = Transport::Memory(io);
        Ok(Self { ssl, _ctx: ctx, state, transport, role: config.role, timeout: Duration::ZERO })
    }

    fn io(&mut self) -> &mut MemoryIo {
        match &mut self.transport {
            Transport::Memory(io) => io,
            Transport::Socket(_) => panic!("a wolfSSL peer on a socket has no memory queues"),
        }
    }

    /// Moves every datagram this peer sent into `to`'s inbox (no copy); returns how many.
    pub(crate) fn pass_to(&mut self, to: &mut Self) -> usize {
        let mut n = 0;
        while let Some(d) = self.io().queues().outbox.pop_front() {
            to.io().queues().inbox.push_back(d);
            n += 1;
        }
        n
    }

    /// One call of `step`: `Some(ret)` when it returned a positive value, `None` when wolfSSL
    /// waits for a datagram. `APP_DATA_READY` is an error here, which the callers interpret.
    fn step(
        &mut self,
        call: &'static str,
        step: impl FnOnce(*mut sys::WOLFSSL) -> c_int,
    ) -> Result<Option<c_int>, WolfError> {
        let s = self.ptr();
        let ret = step(s);
        if ret > 0 {
            return Ok(Some(ret));
        }
        // SAFETY: the connection is live; `ret` is what its last call returned.
        let err = unsafe { sys::wolfSSL_get_error(s, ret) };
        match err as u32 {
            sys::WOLFSSL_ERROR_WANT_READ | sys::WOLFSSL_ERROR_WANT_WRITE => Ok(None),
            _ => Err(WolfError::Call { call, code: err, reason: reason(err) }),
        }
    }

    /// One step of the handshake with what the inbox holds: `true` once it is complete.
    pub(crate) fn try_handshake(&mut self) -> Result<bool, WolfError> {
        let r = match self.role {
            // SAFETY: the connection is live and configured.
            Role::Client => self.step("wolfSSL_connect", |s| unsafe { sys::wolfSSL_connect(s) }),
            // SAFETY: as above.
            Role::Server => self.step("wolfSSL_accept", |s| unsafe { sys::wolfSSL_accept(s) }),
        };
        match r {
            // The server's data overtook the acknowledgement of our last flight: done.
            Err(WolfError::Call { code, .. }) if code == sys::wolfSSL_ErrorCodes_APP_DATA_READY => Ok(true),
            r => r.map(|done| done.is_some()),
        }
    }

    /// Sends `data` as one record into the outbox.
    pub(crate) fn try_send(&mut self, data: &[u8]) -> Result<(), WolfError> {
        let len = c_int::try_from(data.len()).map_err(|_| WolfError::Config("message too long".into()))?;
        // SAFETY: `data` is valid for `len` bytes; wolfSSL only reads it.
        match self.step("wolfSSL_write", |s| unsafe { sys::wolfSSL_write(s, data.as_ptr().cast(), len) })? {
            Some(n) if n == len => Ok(()),
            _ => Err(WolfError::Config("wolfSSL_write did not take the whole record".into())),
        }
    }

    /// Reads the next record's data into `buf`: `None` when the inbox holds none.
    pub(crate) fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<usize>, WolfError> {
        let cap = c_int::try_from(buf.len()).unwrap_or(c_int::MAX);
        let p = buf.as_mut_ptr().cast();
        // SAFETY: `buf` is writable for `cap` bytes.
        let mut read = || self.step("wolfSSL_read", |s| unsafe { sys::wolfSSL_read(s, p, cap) });
        let n = match read() {
            // Data that came before the handshake's end was acknowledged: the next call has it.
            Err(WolfError::Call { code, .. }) if code == sys::wolfSSL_ErrorCodes_APP_DATA_READY => read()?,
            r => r?,
        };
        Ok(n.map(|n| n as usize))
    }
}
