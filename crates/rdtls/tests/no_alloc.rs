//! The socket layer's data path allocates nothing per record once warmed up: `send`/`recv`,
//! and `send_batch`/`recv_batch` in every batching mode, blocking and async (feature `tokio`),
//! counted by a global allocator on the test's own thread (where both ends run, one after the
//! other).

use std::cell::Cell;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rdtls::udp::Batching;
use rdtls::{Config, Connection, Listener, ListenerOptions};

mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};

    use super::{Cell, COUNTING};

    thread_local! {
        pub(super) static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    pub(super) struct Counting;

    #[allow(unsafe_code)]
    // SAFETY: every call is forwarded to the system allocator unchanged; counting touches only
    // thread-local cells, which never allocate.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if COUNTING.with(Cell::get) {
                ALLOCATIONS.with(|a| a.set(a.get() + 1));
            }
            // SAFETY: the caller's layout contract is passed on.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` came from `System.alloc` with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if COUNTING.with(Cell::get) {
                ALLOCATIONS.with(|a| a.set(a.get() + 1));
            }
            // SAFETY: as for `dealloc`, and `new_size` is the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

/// Runs `f` and returns what it returned and how many allocations this thread made meanwhile.
fn counted<T>(f: impl FnOnce() -> T) -> (T, u64) {
    counting::ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, counting::ALLOCATIONS.with(Cell::get))
}

const KEY: &[u8] = b"0123456789abcdef";
const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));
const RECORD: usize = 1200;
const BATCH: usize = 32;

/// A client and the server connection a listener accepted for it, on its own socket.
fn pair() -> (Listener, Connection, Connection) {
    let server_cfg = Arc::new(Config::builder().psk_server_key(KEY.to_vec()).build().unwrap());
    let options = ListenerOptions::default().connection_sockets(true);
    let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server_cfg, options).unwrap();
    let addr = listener.local_addr().unwrap();
    let client = thread::spawn(move || {
        let cfg = Arc::new(Config::builder().psk("no-alloc", KEY.to_vec()).build().unwrap());
        Connection::connect(addr, cfg, TIMEOUT)
    });
    let server = listener.accept_timeout(Duration::from_secs(10)).unwrap();
    (listener, server, client.join().unwrap().unwrap())
}

/// Sends one batch and receives all of it, checking every message; returns the bytes received.
fn batch_round(client: &mut Connection, server: &mut Connection, payload: &[u8]) -> usize {
    let messages = [payload; BATCH];
    assert_eq!(client.send_batch(&messages).unwrap(), BATCH);
    let (mut got, mut bytes) = (0, 0);
    while got < BATCH {
        for m in server.recv_batch(TIMEOUT).unwrap() {
            assert_eq!(m, payload);
            got += 1;
            bytes += m.len();
        }
    }
    bytes
}

#[test]
fn the_counter_sees_allocations() {
    let (v, allocations) = counted(|| std::hint::black_box(vec![1u8; 100]));
    assert_eq!((v.len(), allocations), (100, 1));
}

#[test]
fn send_and_recv_allocate_nothing_per_record() {
    let (_listener, mut server, mut client) = pair();
    let payload = vec![0x42u8; RECORD];
    let mut buf = vec![0u8; 2048];
    for _ in 0..10 {
        client.send(&payload).unwrap();
        assert_eq!(server.recv(&mut buf, TIMEOUT).unwrap(), RECORD);
    }
    let (bytes, allocations) = counted(|| {
        let mut bytes = 0;
        for _ in 0..1000 {
            client.send(&payload).unwrap();
            let n = server.recv(&mut buf, TIMEOUT).unwrap();
            assert_eq!(&buf[..n], &payload[..]);
            bytes += n;
        }
        bytes
    });
    assert_eq!(bytes, 1000 * RECORD);
    assert_eq!(allocations, 0, "{allocations} allocations for 1000 records");
}

#[test]
fn batched_io_allocates_nothing_per_record_in_every_mode() {
    for mode in [Batching::Off, Batching::Mmsg, Batching::Offload] {
        let (_listener, mut server, mut client) = pair();
        client.set_batching(mode);
        server.set_batching(mode);
        let payload = vec![0x17u8; RECORD];
        // Warm-up: the receive buffers are allocated on the first batched receive.
        for _ in 0..3 {
            batch_round(&mut client, &mut server, &payload);
        }
        let (bytes, allocations) =
            counted(|| (0..50).map(|_| batch_round(&mut client, &mut server, &payload)).sum::<usize>());
        assert_eq!(bytes, 50 * BATCH * RECORD, "{mode:?}");
        assert_eq!(allocations, 0, "{mode:?}: {allocations} allocations for {} records", 50 * BATCH);
    }
}

/// The async connection's `send_batch`/`recv_batch`, on a single-threaded runtime driven from
/// the test's thread, so the counter sees both ends (the listener's driver thread is not
/// counted: it has no part in a connection with its own socket).
#[cfg(feature = "tokio")]
#[test]
fn async_batched_io_allocates_nothing_per_record_in_every_mode() {
    use rdtls::tokio::{Connection as AsyncConnection, Listener as AsyncListener};

    async fn round(client: &mut AsyncConnection, server: &mut AsyncConnection, payload: &[u8]) -> usize {
        let messages = [payload; BATCH];
        assert_eq!(client.send_batch(&messages).await.unwrap(), BATCH);
        let (mut got, mut bytes) = (0, 0);
        while got < BATCH {
            for m in server.recv_batch(TIMEOUT).await.unwrap() {
                assert_eq!(m, payload);
                got += 1;
                bytes += m.len();
            }
        }
        bytes
    }

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for mode in [Batching::Off, Batching::Mmsg, Batching::Offload] {
        let (bytes, allocations) = rt.block_on(async {
            let server_cfg = Arc::new(Config::builder().psk_server_key(KEY.to_vec()).build().unwrap());
            let options = ListenerOptions::default().connection_sockets(true);
            let listener = AsyncListener::bind_with("127.0.0.1:0".parse().unwrap(), server_cfg, options).unwrap();
            let addr = listener.local_addr().unwrap();
            let cfg = Arc::new(Config::builder().psk("no-alloc", KEY.to_vec()).build().unwrap());
            let (client, server) = tokio::join!(AsyncConnection::connect(addr, cfg, TIMEOUT), listener.accept());
            let (mut client, mut server) = (client.unwrap(), server.unwrap());
            client.set_batching(mode);
            server.set_batching(mode);
            let payload = vec![0x17u8; RECORD];
            // Warm-up: the receive buffers are allocated on the first batched receive, and the
            // runtime allocates its list of tasks to wake later the first time a task runs out
            // of its cooperative budget (which happens at some point in a long exchange).
            for _ in 0..3 {
                round(&mut client, &mut server, &payload).await;
            }
            for _ in 0..256 {
                tokio::task::consume_budget().await;
            }
            counting::ALLOCATIONS.with(|a| a.set(0));
            COUNTING.with(|c| c.set(true));
            let mut bytes = 0;
            for _ in 0..50 {
                bytes += round(&mut client, &mut server, &payload).await;
            }
            COUNTING.with(|c| c.set(false));
            (bytes, counting::ALLOCATIONS.with(Cell::get))
        });
        assert_eq!(bytes, 50 * BATCH * RECORD, "{mode:?}");
        assert_eq!(allocations, 0, "{mode:?}: {allocations} allocations for {} records", 50 * BATCH);
    }
}
