//! The anti-replay window: `ReplayWindow::check` followed by `update`, as a connection does for
//! each authenticated record, with records arriving in order and out of order, and the check
//! alone rejecting a replayed record.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rdtls_proto::record::ReplayWindow;

/// A fixed permutation of `0..64`: the order records of each block of 64 arrive in, out of
/// order. Every sequence number stays within the window of the highest one seen, so all are
/// accepted and each update either shifts the window or sets a bit below its top.
fn shuffled_block() -> [u64; 64] {
    let mut order: [u64; 64] = core::array::from_fn(|i| i as u64);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for i in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

fn replay_window(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay_window");

    group.bench_function("in_order", |b| {
        let mut window = ReplayWindow::default();
        let mut seq = 0u64;
        b.iter(|| {
            let s = black_box(seq);
            let fresh = window.check(s);
            if fresh {
                window.update(s);
            }
            seq += 1;
            fresh
        })
    });

    let order = shuffled_block();
    group.bench_function("out_of_order", |b| {
        let mut window = ReplayWindow::default();
        let mut n = 0u64;
        b.iter(|| {
            let s = black_box((n & !63) + order[(n & 63) as usize]);
            let fresh = window.check(s);
            if fresh {
                window.update(s);
            }
            n += 1;
            fresh
        })
    });

    group.bench_function("replayed", |b| {
        let mut window = ReplayWindow::default();
        for s in 0..100 {
            window.update(s);
        }
        b.iter(|| window.check(black_box(90)))
    });

    group.finish();

    // The out-of-order pattern must be all fresh records, or it would measure rejections.
    let mut window = ReplayWindow::default();
    for n in 0..4096u64 {
        let s = (n & !63) + order[(n & 63) as usize];
        assert!(window.check(s), "{s} rejected");
        window.update(s);
    }
}

criterion_group!(benches, replay_window);
criterion_main!(benches);
