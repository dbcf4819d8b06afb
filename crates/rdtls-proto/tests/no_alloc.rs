//! The data path allocates nothing: sealing into a reused buffer and opening in place, record
//! after record, for every AEAD. Counted with a global allocator wrapper.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use rdtls_proto::suites::{self, CipherSuite};
use rdtls_proto::{Config, Connection};

/// Counts allocations made by the current thread while counting is on.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every operation to the system allocator unchanged; only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<T>(f: impl FnOnce() -> T) -> (T, u64) {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCATIONS.with(Cell::get))
}

fn pair(suite: &'static CipherSuite) -> (Connection, Connection) {
    let now = Instant::now();
    let c = Config::builder().cipher_suites(&[suite]).psk("a", b"k".to_vec()).build().unwrap();
    let s = Config::builder()
        .cipher_suites(&[suite])
        .psk_server_key(b"k".to_vec())
        .cookie_verification(false)
        .build()
        .unwrap();
    let mut c = Connection::client(Arc::new(c), now).unwrap();
    let mut s = Connection::server(Arc::new(s), now).unwrap();
    let mut buf = Vec::new();
    for _ in 0..4 {
        while c.poll_transmit(&mut buf).is_some() {
            s.handle_datagram(now, &mut buf).unwrap();
        }
        while s.poll_transmit(&mut buf).is_some() {
            c.handle_datagram(now, &mut buf).unwrap();
        }
    }
    assert!(c.is_established() && s.is_established());
    (c, s)
}

#[test]
fn sealing_and_opening_records_allocates_nothing() {
    for suite in [
        &suites::TLS_PSK_WITH_AES_128_GCM_SHA256,
        &suites::TLS_PSK_WITH_AES_256_GCM_SHA384,
        &suites::TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
        &suites::TLS_PSK_WITH_AES_128_CCM,
        &suites::TLS_PSK_WITH_AES_128_CCM_8,
    ] {
        let (mut client, mut server) = pair(suite);
        let payload = vec![0x42u8; 1200];
        let mut wire = Vec::with_capacity(2048);
        let now = Instant::now();
        // Warm up (first use of each buffer).
        client.send(&payload, &mut wire).unwrap();
        server.handle_datagram(now, &mut wire).unwrap();
        let (delivered, allocations) = counted(|| {
            let mut delivered = 0usize;
            for _ in 0..1000 {
                wire.clear();
                client.send(&payload, &mut wire).unwrap();
                let got = server.handle_datagram(now, &mut wire).unwrap();
                delivered += got.iter().map(<[u8]>::len).sum::<usize>();
            }
            delivered
        });
        assert_eq!(delivered, 1000 * 1200);
        assert_eq!(allocations, 0, "{suite}: {allocations} allocations for 1000 records");
    }
}
