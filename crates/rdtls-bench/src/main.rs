//! `rdtls-bench`: measures this DTLS stack and OpenSSL side by side, in one run, interleaved.
//!
//! ```text
//! cargo run --release -p rdtls-bench                 # every figure, a table
//! cargo run --release -p rdtls-bench -- --quick      # every figure, briefly (under a minute)
//! cargo run --release -p rdtls-bench -- --format json --only handshake,record
//! ```
//!
//! Figures (the README lists them with what each one means):
//! 1. server CPU per handshake in memory, PSK-AES128-GCM and ECDHE-ECDSA-AES128-GCM (P-256,
//!    X25519), cookie exchange on and off;
//! 2. CPU per 1,200-byte record, seal and open;
//! 3. records/s and Mbit/s over loopback, one connection, plain send/recv and batched
//!    (sendmmsg/recvmmsg, UDP GSO/GRO), beside raw UDP with the same syscalls;
//! 4. server memory per idle established connection, at 1,000 and 10,000 connections;
//! 5. handshake latency of real clients during a spoofed ClientHello flood;
//! 6. server capacity on loopback with real sockets: handshakes/s, server CPU per handshake
//!    (the server threads' own CPU time), latency at 50% and 90% of capacity;
//! 7. DTLS 1.3 beside our DTLS 1.2: server CPU per handshake, CPU per record, memory per idle
//!    connection;
//! 8. Connection ID (8 bytes each way) beside none: CPU per record, memory per idle connection;
//! 9. the post-quantum group X25519MLKEM768: server CPU per DTLS 1.3 handshake beside X25519,
//!    ML-KEM-768 alone, latency of hybrid clients under a flood of spoofed ClientHello fragments.

mod capacity;
mod cid;
mod drive;
mod dtls13;
mod flood;
mod inmem;
mod loopback;
mod pipe;
mod pq;
mod report;
mod resume;
mod setup;
mod sockmem;
mod wolfssl13;

use std::process::ExitCode;

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Group {
    Handshake,
    Record,
    Loopback,
    Memory,
    Flood,
    Capacity,
    /// DTLS 1.3 beside our DTLS 1.2.
    Dtls13,
    /// Connection ID beside none.
    Cid,
    /// Resumed handshakes.
    Resumption,
    /// The post-quantum hybrid group X25519MLKEM768.
    Pq,
}

/// Measures this DTLS stack beside OpenSSL, interleaved in one run.
#[derive(Debug, Parser)]
#[command(name = "rdtls-bench", version)]
struct Args {
    /// Run every figure briefly (under a minute in all).
    #[arg(long)]
    quick: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Only these groups of figures (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Group>,
}

/// How long to measure.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Effort {
    /// Measured rounds per side, interleaved (after one warm-up round each).
    pub(crate) rounds: usize,
    /// Work per round, relative to a full run.
    pub(crate) factor: f64,
    pub(crate) quick: bool,
}

impl Effort {
    pub(crate) fn scale(&self, n: usize) -> usize {
        ((n as f64 * self.factor) as usize).max(1)
    }
}

/// The median of the samples (they are sorted in place).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    assert!(!v.is_empty(), "no samples");
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Measures both sides for `rounds` rounds after one warm-up round each, alternating which
/// goes first, so that drift in the machine's speed weighs on both alike.
pub(crate) fn interleave<A, B>(
    rounds: usize,
    mut ours: impl FnMut() -> A,
    mut theirs: impl FnMut() -> B,
) -> (Vec<A>, Vec<B>) {
    let (mut a, mut b) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for round in 0..=rounds {
        let (x, y) = if round % 2 == 0 {
            let x = ours();
            (x, theirs())
        } else {
            let y = theirs();
            (ours(), y)
        };
        if round > 0 {
            a.push(x);
            b.push(y);
        }
    }
    (a, b)
}

/// Every stack is measured as in a long-running process. glibc serves large allocations with
/// fresh `mmap`s (page faults included) until a large block is freed, then raises its threshold
/// and serves them from the heap: a stack that allocates big per connection (wolfSSL holds
/// about 500 KB) measured 2.5 times slower in a fresh process than after another group had
/// run. Fixing the thresholds up front makes the figures independent of the groups run before.
fn steady_allocator() {
    // SAFETY: mallopt only changes the allocator's tuning; called before any thread starts.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        // What glibc's own adjustment would do besides: not give the heap's top back to the
        // system at each free (then page-fault it in again at the next allocation).
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let effort = if args.quick {
        Effort { rounds: 3, factor: 0.25, quick: true }
    } else {
        Effort { rounds: 7, factor: 1.0, quick: false }
    };
    let wanted = |g: Group| args.only.is_empty() || args.only.contains(&g);
    steady_allocator();
    let creds = setup::Credentials::generate();
    let mut rows = Vec::new();
    let progress = |what: &str| {
        if args.format == Format::Table {
            eprintln!("measuring {what}…");
        }
    };
    if wanted(Group::Handshake) {
        progress("handshakes");
        inmem::handshakes(&effort, &creds, &mut rows);
    }
    if wanted(Group::Record) {
        progress("records");
        inmem::records(&effort, &creds, &mut rows);
    }
    if wanted(Group::Loopback) {
        progress("loopback throughput");
        loopback::run(&effort, &creds, &mut rows);
    }
    if wanted(Group::Memory) {
        progress("memory");
        inmem::memory(&effort, &creds, &mut rows);
        sockmem::run(&creds, &mut rows);
    }
    if wanted(Group::Flood) {
        progress("handshake latency under a ClientHello flood");
        flood::run(&effort, &creds, &mut rows);
    }
    if wanted(Group::Dtls13) {
        progress("DTLS 1.3");
        dtls13::run(&effort, &creds, &mut rows);
    }
    if wanted(Group::Resumption) {
        progress("resumed handshakes");
        resume::run(&effort, &creds, &mut rows);
    }
    if wanted(Group::Pq) {
        progress("post-quantum X25519MLKEM768");
        pq::run(&effort, &mut rows);
    }
    if wanted(Group::Cid) {
        progress("Connection ID");
        cid::run(&effort, &mut rows);
    }
    if wanted(Group::Capacity) {
        progress("server capacity with real sockets");
        capacity::run(&effort, &creds, &mut rows);
    }
    match args.format {
        Format::Json => println!("{}", report::json(&rows)),
        Format::Table => {
            print!("{}", report::table(&rows));
            println!(
                "\n{}; {} CPUs; ours/openssl < 1 is better for time and memory, > 1 for rates",
                openssl::version::version(),
                std::thread::available_parallelism().map_or(1, |n| n.get())
            );
        }
    }
    ExitCode::SUCCESS
}
