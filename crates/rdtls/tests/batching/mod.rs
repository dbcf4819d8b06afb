//! What the blocking and the async batched-I/O tests share: credentials, numbered messages,
//! rounds of mixed sizes, the check of what a batched receive returned, and the offload probe.

use std::sync::Arc;
use std::time::Duration;

use rdtls::udp;
use rdtls::Config;

pub(crate) const KEY: &[u8] = b"0123456789abcdef";
pub(crate) const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));
/// Messages of the streaming tests, and how many go in one `send_batch`.
pub(crate) const TOTAL: u64 = 2_000;
pub(crate) const PER_BATCH: usize = 32;

pub(crate) fn server_config() -> Arc<Config> {
    Arc::new(Config::builder().psk_server_key(KEY.to_vec()).build().unwrap())
}

pub(crate) fn client_config(identity: &str) -> Arc<Config> {
    Arc::new(Config::builder().psk(identity, KEY.to_vec()).build().unwrap())
}

/// Message `n` of `len` bytes: the counter first, then bytes that depend on it.
pub(crate) fn message(n: u64, len: usize) -> Vec<u8> {
    let mut m: Vec<u8> = (0..len).map(|i| (n as u8).wrapping_mul(31).wrapping_add(i as u8)).collect();
    let counter = n.to_be_bytes();
    let k = counter.len().min(len);
    m[..k].copy_from_slice(&counter[..k]);
    m
}

/// `count` messages of `len` bytes from `first` on, in rounds of [`PER_BATCH`].
pub(crate) fn rounds_of(first: u64, count: u64, len: usize) -> Vec<Vec<Vec<u8>>> {
    let all: Vec<Vec<u8>> = (first..first + count).map(|n| message(n, len)).collect();
    all.chunks(PER_BATCH).map(<[_]>::to_vec).collect()
}

/// Rounds of mixed sizes: runs of equal sizes cut at every size change, after a shorter last
/// datagram, at 64 segments and at 65,507 bytes; an empty message; records of 16 KB; more
/// than 64 messages in one call.
pub(crate) fn mixed_rounds() -> Vec<Vec<Vec<u8>>> {
    let mut n = 0u64;
    let mut round = |sizes: &[(usize, usize)]| -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for &(count, len) in sizes {
            for _ in 0..count {
                out.push(message(n, len));
                n += 1;
            }
        }
        out
    };
    vec![
        round(&[(40, 1_200)]),
        round(&[(3, 1_200), (1, 500), (2, 1_200), (70, 100)]),
        round(&[(2, 16_000), (1, 1), (1, 0), (3, 7), (1, 1_300), (2, 1_200)]),
        round(&[(60, 1_200)]),
        round(&[(100, 100)]),
        round(&[(1, 9), (1, 8), (1, 7), (1, 6), (5, 1_000), (1, 999), (1, 1_000)]),
    ]
}

/// Checks what one batched receive of round `r` returned against the messages sent, from
/// the `i`th on, byte for byte and in order; advances `i`.
pub(crate) fn check_received<'a>(
    r: usize,
    round: &[Vec<u8>],
    i: &mut usize,
    received: impl ExactSizeIterator<Item = &'a [u8]>,
) {
    assert_ne!(received.len(), 0, "round {r}: an empty batch");
    for m in received {
        assert!(*i < round.len(), "round {r}: more messages than sent");
        assert!(m == round[*i], "round {r}: message {i} differs ({} bytes, {} expected)", m.len(), round[*i].len());
        *i += 1;
    }
}

/// Whether this machine has UDP GSO and GRO (Linux 5.0+); the offload tests insist on it so
/// the fast path is really exercised, not just the fallback.
pub(crate) fn offload_available() -> bool {
    let s = udp::Socket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    s.gso_supported() && s.set_gro(true).unwrap()
}
