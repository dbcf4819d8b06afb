//! Black-box interop with OpenSSL through the fault proxy (`rdtls_interop::proxy`): our client
//! against `openssl s_server -dtls1_2 -listen`, and `openssl s_client -dtls1_2` against our
//! `Listener`, with a PSK suite and an ECDHE-ECDSA suite.
//!
//! Each run has two phases:
//! - the handshake, under 20% loss each way with some duplication, reordering and packing
//!   (or, for the targeted runs, with chosen flights dropped and nothing else);
//! - data both ways, under 20% loss, every surviving datagram duplicated, reordering,
//!   corruption, truncation and packing. DTLS does not retransmit application data, so each
//!   side sends fresh numbered lines until one arrives, and every line must arrive at most once
//!   on both sides (the duplicates are really there: the proxy duplicates every datagram it
//!   lets through). Corruption waits for this phase because a flipped bit in a plaintext
//!   handshake message changes the transcript and fails the handshake at Finished (as it
//!   should; Mbed TLS's udp_proxy spares the handshake for the same reason).
//!
//! The proxy's random decisions are a function of the seed, the direction, the phase and the
//! datagram's index (see `Faults::fate`), not of timing. The seeds are chosen so that the first
//! datagrams of each phase are sure to meet the faults the run asserts it injected; a failure
//! prints the seed, the proxy's counters and what the OpenSSL peer printed.
//!
//! OpenSSL behaviour relied on (3.0): retransmission timers start at 1 s and double; s_server
//! and s_client print received application data verbatim; s_server handles one association
//! (`-naccept 1`); records of an older epoch (a late ChangeCipherSpec) are dropped silently.
//!
//! Our behaviour relied on: an accepted connection processes its peer's datagrams only while its
//! owner receives (`recv`, `pending`). When the server's final flight is lost the client repeats
//! its Finished flight, and our server answers it only then; the tests keep receiving until
//! s_client reports the handshake done.

#[allow(dead_code)]
mod certs;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rdtls::{CipherSuite, Client, Config, Connection, Listener};
use rdtls_interop::proxy::handshake_type::{CLIENT_KEY_EXCHANGE, HELLO_VERIFY_REQUEST, SERVER_HELLO};
use rdtls_interop::proxy::{Direction, DirectionStats, Fate, FaultProxy, Faults, Marker, Stats, Target};
use rdtls_interop::{free_udp_port, loopback, psk, Peer, PSK_HEX};
use rdtls_proto::suites;

use certs::{Alg, Ca, Leaf, TempDir, Usage};

/// Longest a handshake may take: at 20% loss a few timeouts in a row (1 + 2 + 4 + 8 s) happen.
const HANDSHAKE_T: Duration = Duration::from_secs(40);
/// Longest a peer program may take to start.
const START_T: Duration = Duration::from_secs(20);
/// Longest the data phase may take.
const DATA_T: Duration = Duration::from_secs(20);
/// How long each side waits for the other's line before sending a fresh one.
const ROUND: Duration = Duration::from_millis(250);
/// Lines our side sends per round (back to back, so some are packed together).
const BATCH: usize = 4;
/// Seeds of the runs where our client talks to s_server (our side sends to the server). Seed 42
/// loses the HelloVerifyRequest and the next three ClientHellos, then our Finished flight three
/// times: about 20 s of retransmission backoff. The others take 1 to 15 s.
const OUR_CLIENT_SEEDS: [u64; 3] = [1, 42, 94];
/// Seeds of the runs where s_client talks to our listener (our side sends to the client), 2 to
/// 5 s each. Not seed 111: s_client's Finished flight (one datagram the first time, then
/// ClientKeyExchange, ChangeCipherSpec and Finished in three datagrams) needs six
/// transmissions before all of it gets through after the keys (1 + 2 + 4 + 8 + 16 s of
/// backoff; our server drops a Finished that arrives before the ClientKeyExchange, as RFC 6347
/// allows), then our final flight is lost, and so is our answer to s_client's next
/// retransmission 32 s later: s_client is still handshaking after two minutes while our side
/// completed after about 31 s. Nothing is wrong there but the time it takes.
const OUR_SERVER_SEEDS: [u64; 3] = [95, 278, 1528];

// ===== what the runs do =====

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    Psk,
    Ecdsa,
}

impl Auth {
    fn suite(self) -> &'static CipherSuite {
        match self {
            Self::Psk => &suites::TLS_PSK_WITH_AES_128_GCM_SHA256,
            Self::Ecdsa => &suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        }
    }
}

/// The handshake's faults under random loss (each direction).
fn lossy_handshake() -> Faults {
    Faults::none().loss(0.2).duplicate(0.1).reorder(0.1).pack(0.05)
}

/// The data phase's faults (each direction).
fn lossy_data() -> Faults {
    Faults { pack_window: Duration::from_millis(50), ..Faults::none() }
        .loss(0.2)
        .duplicate(1.0)
        .reorder(0.2)
        .corrupt(0.2)
        .truncate(0.1)
        .pack(0.3)
}

/// One run: who talks, the seed, and the faults of each phase.
#[derive(Clone, Debug)]
struct Run {
    auth: Auth,
    seed: u64,
    to_server: Faults,
    to_client: Faults,
    data: Faults,
    /// Longest the handshake may take.
    patience: Duration,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} seed {} (handshake to server: {}; to client: {}; data: {})",
            self.auth, self.seed, self.to_server, self.to_client, self.data
        )
    }
}

/// What a run observed.
struct Outcome {
    handshake: Stats,
    data: Stats,
    elapsed: Duration,
}

// ===== seeds =====

/// What the proxy is sure to do to the first `n` datagrams of `dir` in `phase`, whatever the
/// peers' timing (a lower bound of its counters; only the counters the runs assert).
fn sure(faults: &Faults, seed: u64, dir: Direction, phase: u32, n: u64) -> DirectionStats {
    let fates: Vec<_> = (0..n).map(|i| faults.fate(seed, dir, phase, i, 100)).collect();
    let kept: Vec<_> = fates.iter().filter(|f| !f.lost).collect();
    let count = |p: fn(&Fate) -> bool| kept.iter().filter(|f| p(f)).count() as u64;
    DirectionStats {
        dropped: (fates.len() - kept.len()) as u64,
        // A datagram that waits to be packed leaves with the fate of the one joining it.
        duplicated: count(|f| f.duplicate && !f.pack),
        reordered: u64::from(count(|f| f.reorder && !f.pack) > 0),
        corrupted: count(|f| f.corrupt_bit.is_some()),
        truncated: count(|f| f.truncate_to.is_some()),
        // Packing needs a surviving datagram after the one that waits.
        packed: u64::from(kept.iter().position(|f| f.pack).is_some_and(|i| i + 1 < kept.len())),
        ..DirectionStats::default()
    }
}

/// Whether `seed` is sure to inject what [`check_injected`] asserts: in the handshake (whose
/// every direction carries at least three datagrams: ClientHello twice and the Finished flight;
/// HelloVerifyRequest, the server's flight and its Finished flight) a loss each way and a
/// duplicate or a held-back datagram; in the data phase, corruption, truncation and packing in
/// the first batch our side sends (`ours`).
fn seed_is_sure(seed: u64, ours: Direction) -> bool {
    let hs = lossy_handshake();
    let [s, c] = Direction::BOTH.map(|d| sure(&hs, seed, d, 0, 3));
    let data = sure(&lossy_data(), seed, ours, 1, BATCH as u64);
    s.dropped > 0
        && c.dropped > 0
        && s.duplicated + s.reordered + c.duplicated + c.reordered > 0
        && data.corrupted > 0
        && data.truncated > 0
        && data.packed > 0
}

/// Checks the proxy injected what the run is about; panics with `context` if not.
fn check_injected(run: &Run, ours: Direction, out: &Outcome, context: &dyn Fn() -> String) {
    let (hs, data) = (&out.handshake, &out.data);
    let targeted = !run.to_server.targets.is_empty() || !run.to_client.targets.is_empty();
    if targeted {
        for (dir, faults) in [(Direction::ToServer, &run.to_server), (Direction::ToClient, &run.to_client)] {
            let wanted: u64 = faults.targets.iter().map(|t| u64::from(t.times)).sum();
            assert!(hs.get(dir).targeted >= wanted, "{}: expected {wanted} targeted drops {dir}", context());
        }
    } else {
        assert!(hs.to_server.dropped > 0 && hs.to_client.dropped > 0, "{}: no loss each way", context());
        let mixed = hs.to_server.duplicated + hs.to_server.reordered + hs.to_client.duplicated + hs.to_client.reordered;
        assert!(mixed > 0, "{}: no duplicate or reordered handshake datagram", context());
    }
    if run.data.duplicate >= 1.0 {
        // Data crossed both ways, so at least one datagram was duplicated each way.
        assert!(data.to_server.duplicated > 0 && data.to_client.duplicated > 0, "{}: no duplicates", context());
        let d = data.get(ours);
        assert!(d.corrupted > 0 && d.truncated > 0 && d.packed > 0, "{}: data faults missing {ours}", context());
    }
}

// ===== certificates =====

struct Pki {
    root: Ca,
    server: Leaf,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let root = Ca::root("fault-proxy root");
        let server = root.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
        Pki { root, server }
    })
}

/// The PEM files an OpenSSL peer reads, removed with this.
struct PeerFiles {
    _dir: TempDir,
    root: String,
    cert: String,
    key: String,
}

impl PeerFiles {
    fn new() -> Self {
        let dir = TempDir::new("fault-proxy");
        let p = pki();
        Self {
            root: dir.write("root.pem", p.root.root_pem()),
            cert: dir.write("cert.pem", &p.server.cert_pem),
            key: dir.write("key.pem", &p.server.key_pem),
            _dir: dir,
        }
    }
}

fn client_config(auth: Auth) -> Arc<Config> {
    let b = Config::builder().cipher_suites(&[auth.suite()]);
    let b = match auth {
        Auth::Psk => b.psk("rust-client", psk()),
        Auth::Ecdsa => b.root_store(pki().root.roots()),
    };
    Arc::new(b.build().unwrap())
}

fn server_config(auth: Auth) -> Arc<Config> {
    let b = Config::builder().cipher_suites(&[auth.suite()]);
    let b = match auth {
        Auth::Psk => b.psk_server_callback(|id| (id == b"openssl-client").then(|| psk().into())),
        Auth::Ecdsa => b.certificate(pki().server.certified_key()),
    };
    Arc::new(b.build().unwrap())
}

// ===== the OpenSSL peers =====

fn s_server(port: u16, auth: Auth, files: &PeerFiles) -> Peer {
    let port = port.to_string();
    #[rustfmt::skip]
    let mut args = vec![
        "s_server", "-dtls1_2", "-listen", "-accept", &port, "-naccept", "1", "-cipher", auth.suite().openssl_name,
    ];
    match auth {
        Auth::Psk => args.extend(["-nocert", "-psk", PSK_HEX]),
        Auth::Ecdsa => args.extend(["-cert", &files.cert, "-key", &files.key]),
    }
    let mut server = Peer::spawn("openssl", &args);
    server.wait_started("ACCEPT", START_T);
    server
}

fn s_client(to: SocketAddr, auth: Auth, files: &PeerFiles) -> Peer {
    let target = to.to_string();
    #[rustfmt::skip]
    let mut args = vec![
        "s_client", "-dtls1_2", "-connect", &target, "-nbio", "-cipher", auth.suite().openssl_name, "-ign_eof",
    ];
    match auth {
        Auth::Psk => args.extend(["-psk", PSK_HEX, "-psk_identity", "openssl-client"]),
        Auth::Ecdsa => args.extend([
            "-CAfile",
            &files.root,
            "-verify_return_error",
            "-servername",
            "localhost",
            "-verify_hostname",
            "localhost",
        ]),
    }
    Peer::spawn("openssl", &args)
}

// ===== data both ways =====

/// The lines our side received (checked to be distinct and from the peer), and the start of
/// the next one (the peer may split a line over records).
#[derive(Default)]
struct Lines {
    done: Vec<String>,
    partial: String,
}

impl Lines {
    fn take(&mut self, data: &[u8], context: &dyn Fn() -> String) {
        self.partial.push_str(&String::from_utf8_lossy(data));
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            let line = line.trim_end_matches('\n');
            assert!(line.starts_with("openssl->rust "), "{}: unexpected data {line:?}", context());
            assert!(!self.done.iter().any(|l| l == line), "{}: {line:?} delivered twice to us", context());
            self.done.push(line.to_owned());
        }
    }
}

/// Receives whatever our side gets until `until` (or until `enough` says so).
fn receive_until(
    ours: &mut Connection,
    got: &mut Lines,
    until: Instant,
    enough: &dyn Fn(&Lines) -> bool,
    context: &dyn Fn() -> String,
) {
    let mut buf = vec![0u8; 4096];
    while !enough(got) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        match ours.recv(&mut buf, Some(left)) {
            Ok(n) => got.take(&buf[..n], context),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return,
            Err(e) => panic!("{}: receive failed: {e}", context()),
        }
    }
}

/// Sends fresh numbered lines both ways, a round every [`ROUND`], until one arrives each way
/// (under the run's data faults), then again over a clean link until a `sync` line arrives
/// each way (so what was still on its way has arrived); checks every line arrived at most once
/// on each side.
///
/// Both sides send in every round: after `s_server -listen` discards a record (a duplicate, a
/// bad MAC, a truncated record) it blocks in `recvfrom` until the next datagram and reads
/// nothing from its stdin meanwhile (`-listen` makes its socket blocking, whatever `-nbio`
/// says: it connects it with `BIO_connect(fd, client, 0)`).
fn exchange(ours: &mut Connection, theirs: &mut Peer, proxy: &FaultProxy, run: &Run) {
    let report = |theirs: &Peer| format!("{run}\nproxy:\n{}\nOpenSSL printed:\n{}", proxy.stats(), theirs.output());
    let deadline = Instant::now() + DATA_T;
    let mut got = Lines::default();
    let (mut theirs_sent, mut ours_sent) = (0, 0);
    for (phase, faults) in [("data", &run.data), ("sync", &Faults::none())] {
        for dir in Direction::BOTH {
            proxy.set_faults(dir, faults.clone());
        }
        let ours_needle = format!("rust->openssl {phase} #");
        let theirs_prefix = format!("openssl->rust {phase} #");
        let arrived = |got: &Lines| got.done.iter().any(|l| l.starts_with(&theirs_prefix));
        while !arrived(&got) || !theirs.printed(&ours_needle) {
            assert!(Instant::now() < deadline, "{}: no {phase} line arrived one way", report(theirs));
            theirs.send_line(&format!("{theirs_prefix}{theirs_sent}"));
            theirs_sent += 1;
            for _ in 0..BATCH {
                ours.send(format!("{ours_needle}{ours_sent}\n").as_bytes()).unwrap();
                ours_sent += 1;
            }
            let round_end = Instant::now() + ROUND;
            receive_until(ours, &mut got, round_end, &|g| arrived(g) && theirs.printed(&ours_needle), &|| {
                report(theirs)
            });
        }
    }
    // The clean link delivers the last round whole: what is still missing was on its way.
    let (ours_last, theirs_last) = (format!("rust->openssl sync #{}\n", ours_sent - 1), theirs_sent - 1);
    let theirs_last = format!("openssl->rust sync #{theirs_last}");
    receive_until(ours, &mut got, deadline, &|g| g.done.contains(&theirs_last), &|| report(theirs));
    assert!(got.done.contains(&theirs_last), "{}: {theirs_last:?} lost on a clean link", report(theirs));
    assert!(theirs.wait_for(&ours_last, DATA_T), "{}: {ours_last:?} lost on a clean link", report(theirs));
    let mut delivered = 0;
    for phase in ["data", "sync"] {
        for i in 0..ours_sent {
            let n = theirs.count(&format!("rust->openssl {phase} #{i}\n"));
            assert!(n <= 1, "{}: line {i} of {phase} delivered {n} times to OpenSSL", report(theirs));
            delivered += n;
        }
    }
    println!(
        "  seed {}: openssl sent {theirs_sent} lines, {} arrived; we sent {ours_sent}, {delivered} arrived",
        run.seed,
        got.done.len()
    );
}

// ===== the two pairs =====

/// Our client through the proxy to `s_server`.
fn our_client_against_s_server(run: &Run) -> Outcome {
    let files = PeerFiles::new();
    let port = free_udp_port();
    let mut server = s_server(port, run.auth, &files);
    let proxy = FaultProxy::start(loopback(port), run.to_server.clone(), run.to_client.clone(), run.seed);
    let context = || format!("{run}\nproxy:\n{}\ns_server printed:\n{}", proxy.stats(), server.output());
    let start = Instant::now();
    let connected = match run.auth {
        Auth::Psk => Client::connect(proxy.addr(), client_config(run.auth), Some(run.patience)),
        Auth::Ecdsa => {
            Client::connect_with_name(proxy.addr(), "localhost", client_config(run.auth), Some(run.patience))
        }
    };
    let mut client = connected.unwrap_or_else(|e| panic!("handshake failed: {e}\n{}", context()));
    let elapsed = start.elapsed();
    let handshake = proxy.stats();
    assert_eq!(client.cipher_suite(), Some(run.auth.suite()), "{}", context());
    exchange(&mut client, &mut server, &proxy, run);
    let context = || format!("{run}\nproxy:\n{}\ns_server printed:\n{}", proxy.stats(), server.output());
    server.expect(&format!("CIPHER is {}", run.auth.suite().openssl_name), DATA_T);
    let data = proxy.stats().since(&handshake);
    let out = Outcome { handshake, data, elapsed };
    check_injected(run, Direction::ToServer, &out, &context);
    out
}

/// `s_client` through the proxy to our listener.
fn s_client_against_our_listener(run: &Run) -> Outcome {
    let files = PeerFiles::new();
    let listener = Listener::bind(loopback(0), server_config(run.auth)).unwrap();
    let proxy =
        FaultProxy::start(listener.local_addr().unwrap(), run.to_server.clone(), run.to_client.clone(), run.seed);
    let start = Instant::now();
    let mut client = s_client(proxy.addr(), run.auth, &files);
    let context = || format!("{run}\nproxy:\n{}\ns_client printed:\n{}", proxy.stats(), client.output());
    let mut conn =
        listener.accept_timeout(run.patience).unwrap_or_else(|e| panic!("no connection: {e}\n{}", context()));
    // Our side is done; s_client is done once our last flight reached it, which may need our
    // answer to its repeated Finished flight: keep receiving until it says so.
    let deadline = start + run.patience;
    let mut buf = [0u8; 100];
    while !client.printed("Cipher is") {
        assert!(Instant::now() < deadline, "s_client did not finish its handshake\n{}", context());
        match conn.recv(&mut buf, Some(ROUND)) {
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
            other => panic!("unexpected {other:?} before any data\n{}", context()),
        }
    }
    let elapsed = start.elapsed();
    let handshake = proxy.stats();
    assert_eq!(conn.cipher_suite(), Some(run.auth.suite()));
    client.expect(&format!("Cipher is {}", run.auth.suite().openssl_name), DATA_T);
    if run.auth == Auth::Ecdsa {
        client.expect("Verify return code: 0 (ok)", DATA_T);
    }
    exchange(&mut conn, &mut client, &proxy, run);
    let context = || format!("{run}\nproxy:\n{}\ns_client printed:\n{}", proxy.stats(), client.output());
    let data = proxy.stats().since(&handshake);
    let out = Outcome { handshake, data, elapsed };
    check_injected(run, Direction::ToClient, &out, &context);
    out
}

/// Runs `runs` of `pair` at the same time (they mostly wait on timers) and prints what each saw.
fn run_all(name: &str, pair: fn(&Run) -> Outcome, runs: Vec<Run>) {
    let outcomes: Vec<(Run, thread::Result<Outcome>)> = thread::scope(|s| {
        let handles: Vec<_> = runs.iter().map(|r| s.spawn(move || pair(r))).collect();
        runs.iter().cloned().zip(handles.into_iter().map(|h| h.join())).collect()
    });
    let mut failed = Vec::new();
    for (run, outcome) in outcomes {
        match outcome {
            Ok(o) => println!(
                "{name} {run}: handshake in {:.1?}\n  handshake {}\n  data {}",
                o.elapsed,
                o.handshake.to_string().replace('\n', "\n  handshake "),
                o.data.to_string().replace('\n', "\n  data ")
            ),
            Err(_) => failed.push(format!("{name} {:?} seed {}", run.auth, run.seed)),
        }
    }
    assert!(failed.is_empty(), "failed (see the panics above): {failed:?}");
}

fn loss_run(auth: Auth, seed: u64, ours: Direction) -> Run {
    assert!(seed_is_sure(seed, ours), "seed {seed} is no longer sure to inject every fault checked: pick another");
    Run {
        auth,
        seed,
        to_server: lossy_handshake(),
        to_client: lossy_handshake(),
        data: lossy_data(),
        patience: HANDSHAKE_T,
    }
}

fn loss_runs(auth: Auth, seeds: &[u64], ours: Direction) -> Vec<Run> {
    seeds.iter().map(|&seed| loss_run(auth, seed, ours)).collect()
}

// ===== (a) our client and s_server under loss =====

#[test]
fn our_client_and_s_server_psk_under_loss() {
    run_all(
        "our client/s_server",
        our_client_against_s_server,
        loss_runs(Auth::Psk, &OUR_CLIENT_SEEDS, Direction::ToServer),
    );
}

#[test]
fn our_client_and_s_server_ecdsa_under_loss() {
    run_all(
        "our client/s_server",
        our_client_against_s_server,
        loss_runs(Auth::Ecdsa, &OUR_CLIENT_SEEDS, Direction::ToServer),
    );
}

// ===== (b) s_client and our listener under loss =====

#[test]
fn s_client_and_our_listener_psk_under_loss() {
    run_all(
        "s_client/our listener",
        s_client_against_our_listener,
        loss_runs(Auth::Psk, &OUR_SERVER_SEEDS, Direction::ToClient),
    );
}

#[test]
fn s_client_and_our_listener_ecdsa_under_loss() {
    run_all(
        "s_client/our listener",
        s_client_against_our_listener,
        loss_runs(Auth::Ecdsa, &OUR_SERVER_SEEDS, Direction::ToClient),
    );
}

// ===== (c) targeted drops =====

/// The targeted cases, each with the given faults only: the server's first flights
/// (HelloVerifyRequest, then the ServerHello flight), the client's Finished flight, and the
/// server's Finished flight (it starts with ChangeCipherSpec).
fn targeted_runs(auth: Auth) -> Vec<Run> {
    let server_flights = Faults::none()
        .target(Target::flight(Marker::Handshake(HELLO_VERIFY_REQUEST)))
        .target(Target::flight(Marker::Handshake(SERVER_HELLO)));
    let client_finished = Faults::none().target(Target::flight(Marker::Handshake(CLIENT_KEY_EXCHANGE)));
    let server_finished = Faults::none().target(Target::flight(Marker::ChangeCipherSpec));
    [(Faults::none(), server_flights), (client_finished, Faults::none()), (Faults::none(), server_finished)]
        .into_iter()
        .map(|(to_server, to_client)| Run {
            auth,
            seed: 0,
            to_server,
            to_client,
            data: Faults::none(),
            patience: HANDSHAKE_T,
        })
        .collect()
}

#[test]
fn our_client_and_s_server_targeted_drops() {
    let runs = [targeted_runs(Auth::Psk), targeted_runs(Auth::Ecdsa)].concat();
    run_all("our client/s_server", our_client_against_s_server, runs);
}

#[test]
fn s_client_and_our_listener_targeted_drops() {
    let runs = [targeted_runs(Auth::Psk), targeted_runs(Auth::Ecdsa)].concat();
    run_all("s_client/our listener", s_client_against_our_listener, runs);
}

// ===== the dtls-proxy program =====

/// Starts `dtls-proxy` towards `upstream` with `faults`; returns it and where it listens.
fn dtls_proxy(upstream: SocketAddr, faults: &[&str]) -> (Peer, SocketAddr) {
    let upstream = upstream.to_string();
    let mut args = vec!["--listen", "127.0.0.1:0", "--upstream", &upstream];
    args.extend_from_slice(faults);
    let mut proxy = Peer::spawn(env!("CARGO_BIN_EXE_dtls-proxy"), &args);
    proxy.wait_started("\n", START_T);
    let out = proxy.output();
    let first = out.lines().next().unwrap_or_default();
    let addr = first.strip_prefix("proxy listening on ").unwrap_or_else(|| panic!("dtls-proxy printed first:\n{out}"));
    (proxy, addr.parse().expect("an address"))
}

/// The value of `counter` in the line of `dir`'s counters `dtls-proxy` printed when it stopped.
fn printed_counter(proxy: &Peer, dir: Direction, counter: &str) -> u64 {
    let out = proxy.output();
    let line = out.lines().find(|l| l.starts_with(&format!("{dir}: received"))).unwrap_or_else(|| panic!("{out}"));
    let field = line.split(", ").find_map(|f| f.rsplit_once(' ').filter(|(name, _)| name.ends_with(counter)));
    field.and_then(|(_, n)| n.parse().ok()).unwrap_or_else(|| panic!("no {counter} in {line:?}"))
}

/// Our client and listener through `dtls-proxy` (loss, duplication, and the server's first
/// ServerHello flight dropped), which prints its counters when its input ends.
#[test]
fn dtls_proxy_program_between_our_client_and_listener() {
    let listener = Listener::bind(loopback(0), server_config(Auth::Psk)).unwrap();
    #[rustfmt::skip]
    let (mut proxy, addr) = dtls_proxy(listener.local_addr().unwrap(), &[
        "--loss", "0.2", "--duplicate", "0.2", "--seed", "7", "--server-drop-flight", "2",
    ]);
    let config =
        Arc::new(Config::builder().cipher_suites(&[Auth::Psk.suite()]).psk("openssl-client", psk()).build().unwrap());
    let mut client = Client::connect(addr, config, Some(HANDSHAKE_T))
        .unwrap_or_else(|e| panic!("handshake through dtls-proxy failed: {e}; it printed:\n{}", proxy.output()));
    let mut conn = listener.accept_timeout(HANDSHAKE_T).unwrap();
    // Application data is not retransmitted: fresh messages until one arrives.
    let mut buf = [0u8; 100];
    let deadline = Instant::now() + DATA_T;
    let got = loop {
        assert!(Instant::now() < deadline, "nothing crossed dtls-proxy; it printed:\n{}", proxy.output());
        client.send(b"through the proxy").unwrap();
        match conn.recv(&mut buf, Some(ROUND)) {
            Ok(n) => break buf[..n].to_vec(),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(got, b"through the proxy");
    proxy.close_stdin();
    proxy.expect("proxy stopped (end of input)", START_T);
    proxy.expect(&format!("{}: received", Direction::ToClient), START_T);
    let out = proxy.output();
    assert!(
        out.contains("seed 7") && out.contains("faults to client: loss 0.2, duplicate 0.2, drop the flight"),
        "{out}"
    );
    assert!(printed_counter(&proxy, Direction::ToClient, "targeted") >= 1, "{out}");
    let dropped: u64 = Direction::BOTH.iter().map(|&d| printed_counter(&proxy, d, "dropped")).sum();
    assert!(dropped > 0, "{out}");
    assert!(printed_counter(&proxy, Direction::ToServer, "forwarded") >= 3, "{out}");
    println!("{out}");
}

/// `dtls-proxy` stops on SIGTERM and prints its counters.
#[test]
fn dtls_proxy_program_stops_on_sigterm() {
    let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (proxy, addr) = dtls_proxy(server.local_addr().unwrap(), &["--duplicate", "1"]);
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to(b"twice", addr).unwrap();
    server.set_read_timeout(Some(START_T)).unwrap();
    let mut buf = [0u8; 16];
    for _ in 0..2 {
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"twice");
    }
    let killed = std::process::Command::new("kill").args(["-TERM", &proxy.id().to_string()]).status().unwrap();
    assert!(killed.success());
    proxy.expect("proxy stopped (signal)", START_T);
    proxy.expect(&format!("{}: received", Direction::ToClient), START_T);
    assert_eq!(printed_counter(&proxy, Direction::ToServer, "duplicated"), 1, "{}", proxy.output());
    assert_eq!(printed_counter(&proxy, Direction::ToServer, "forwarded"), 2, "{}", proxy.output());
}
