//! The program's output contract (`--format json`) and the figures that must hold on any
//! machine: memory per idle connection is exact bytes, not timing.

use std::process::Command;

use serde_json::Value;

fn run(args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_rdtls-bench")).args(args).output().expect("rdtls-bench runs");
    assert!(out.status.success(), "rdtls-bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    match serde_json::from_str(&stdout).expect("one JSON document") {
        Value::Array(rows) => rows,
        other => panic!("expected a JSON array, got {other}"),
    }
}

fn figure<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter().find(|r| r["figure"] == name).unwrap_or_else(|| panic!("no figure {name:?} in {rows:?}"))
}

#[test]
fn json_rows_have_the_documented_fields_and_consistent_ratios() {
    let rows = run(&["--quick", "--only", "record,memory", "--format", "json"]);
    let names: Vec<&str> = rows.iter().filter_map(|r| r["figure"].as_str()).collect();
    assert_eq!(
        names,
        [
            "record seal, 1200 B, AES-128-GCM",
            "record open, 1200 B, AES-128-GCM",
            "record seal + open, 1200 B, AES-128-GCM",
            "AES-128-GCM alone, seal + open 1200 B (crypto floor)",
            "memory per idle connection, 1000 connections",
            "memory per idle connection, 10000 connections",
            "memory per idle accepted connection, Listener, 1000 connections",
            "memory per idle accepted connection, Listener, 10000 connections",
        ]
    );
    for row in &rows {
        let obj = row.as_object().expect("each row is an object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["figure", "openssl", "ours", "ratio", "unit"], "{row}");
        assert!(row["figure"].is_string() && row["unit"].is_string(), "{row}");
        let ours = row["ours"].as_f64().expect("ours is a number");
        assert!(ours.is_finite() && ours > 0.0, "{row}");
        match (row["openssl"].as_f64(), row["ratio"].as_f64()) {
            (Some(theirs), Some(ratio)) => {
                assert!(theirs > 0.0, "{row}");
                assert!((ratio - ours / theirs).abs() <= 0.002 * ratio.max(1.0), "{row}");
            }
            (None, None) => assert!(row["openssl"].is_null() && row["ratio"].is_null(), "{row}"),
            _ => panic!("openssl and ratio must be null together: {row}"),
        }
    }
    let seal_open = figure(&rows, "record seal + open, 1200 B, AES-128-GCM");
    assert_eq!(seal_open["unit"], "ns");
}

#[test]
fn an_idle_connection_costs_under_two_kib_and_a_twentieth_of_openssl() {
    let rows = run(&["--only", "memory", "--format", "json"]);
    for count in ["1000", "10000"] {
        let row = figure(&rows, &format!("memory per idle connection, {count} connections"));
        assert_eq!(row["unit"], "bytes");
        let ours = row["ours"].as_f64().unwrap();
        let theirs = row["openssl"].as_f64().unwrap();
        assert!(ours <= 2048.0, "{count} connections: {ours} bytes each");
        assert!(ours * 20.0 <= theirs, "{count} connections: ours {ours}, OpenSSL {theirs}");
        // With the socket layer (shared receive queue, handle, routing entries) and the final
        // flight still held.
        let row = figure(&rows, &format!("memory per idle accepted connection, Listener, {count} connections"));
        let with_sockets = row["ours"].as_f64().unwrap();
        assert!(with_sockets <= 3072.0, "{count} accepted connections: {with_sockets} bytes each");
    }
}

#[test]
fn table_output_names_every_group() {
    let out = Command::new(env!("CARGO_BIN_EXE_rdtls-bench"))
        .args(["--quick", "--only", "record"])
        .output()
        .expect("rdtls-bench runs");
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let mut lines = table.lines();
    let head = lines.next().expect("a header");
    for col in ["figure", "unit", "ours", "openssl", "ours/openssl"] {
        assert!(head.contains(col), "{head}");
    }
    assert!(table.contains("record open, 1200 B, AES-128-GCM"), "{table}");
    assert!(table.contains("OpenSSL 3"), "the OpenSSL version is printed: {table}");
}

#[test]
fn bad_arguments_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_rdtls-bench")).args(["--only", "everything"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("everything"));
}

#[test]
fn loopback_and_flood_figures_run_end_to_end() {
    let rows = run(&["--quick", "--only", "loopback,flood", "--format", "json"]);
    for mode in ["send/recv", "sendmmsg/recvmmsg", "GSO/GRO"] {
        let raw = figure(&rows, &format!("loopback raw UDP, {mode}"));
        assert!(raw["openssl"].is_null(), "{raw}");
        let ours = rows
            .iter()
            .find(|r| r["figure"] == format!("loopback DTLS, {mode}").as_str() && r["unit"] == "records/s")
            .unwrap_or_else(|| panic!("no DTLS rate for {mode}"));
        assert!(ours["ours"].as_f64().unwrap() > 1_000.0, "{ours}");
        assert!(ours["openssl"].as_f64().unwrap() > 1_000.0, "{ours}");
        let share = figure(&rows, &format!("loopback DTLS vs raw UDP, {mode}"));
        assert_eq!(share["unit"], "%");
    }
    let p50 = figure(&rows, "handshake latency p50, PSK, no flood")["ours"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 < 1_000.0, "{p50} ms");
    let under_flood = rows
        .iter()
        .filter(|r| r["figure"].as_str().is_some_and(|f| f.contains("ClientHello/s")))
        .map(|r| r["ours"].as_f64().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(under_flood.len(), 2, "p50 and p99 under the flood");
    assert!(under_flood[0] <= under_flood[1], "p50 {} > p99 {}", under_flood[0], under_flood[1]);
}

#[test]
fn capacity_figures_come_from_both_servers_with_ratios() {
    let rows = run(&["--quick", "--only", "capacity", "--format", "json"]);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for kind in ["PSK-AES128-GCM", "ECDHE-ECDSA-AES128-GCM"] {
        let names = [
            (format!("capacity, {kind}, one Listener / one OpenSSL thread"), "handshakes/s"),
            (format!("capacity, {kind}, {cores} SO_REUSEPORT workers / {cores} OpenSSL threads"), "handshakes/s"),
            (format!("server CPU per handshake under load, {kind}, one thread"), "us"),
            (format!("server CPU per handshake under load, {kind}, {cores} workers"), "us"),
            (format!("handshakes per server CPU-second, {kind}, {cores} workers"), "handshakes/s"),
            (format!("server CPU per handshake under load / in memory, {kind}, {cores} workers"), "x"),
        ];
        for (name, unit) in &names {
            let row = figure(&rows, name);
            assert_eq!(row["unit"], *unit, "{row}");
            // Both servers completed handshakes: every figure is a positive number with a ratio.
            let (ours, theirs) = (row["ours"].as_f64().unwrap(), row["openssl"].as_f64().unwrap());
            assert!(ours > 0.0 && theirs > 0.0 && row["ratio"].as_f64().is_some(), "{row}");
        }
        // The CPU figure and the rate per CPU-second are one measurement seen two ways.
        let cpu = figure(&rows, &names[3].0)["ours"].as_f64().unwrap();
        let per_second = figure(&rows, &names[4].0)["ours"].as_f64().unwrap();
        assert!((cpu * per_second / 1e6 - 1.0).abs() < 0.01, "{cpu} us, {per_second}/s");
        for load in [50, 90] {
            let p50 = figure(&rows, &format!("handshake latency p50 at {load}% of capacity, {kind}, {cores} workers"));
            let p99 = figure(&rows, &format!("handshake latency p99 at {load}% of capacity, {kind}, {cores} workers"));
            for side in ["ours", "openssl"] {
                let (a, b) = (p50[side].as_f64().unwrap(), p99[side].as_f64().unwrap());
                assert!(a > 0.0 && a <= b, "{side}: p50 {a} ms, p99 {b} ms");
            }
        }
    }
}

#[test]
fn post_quantum_figures_run_end_to_end() {
    let rows = run(&["--quick", "--only", "pq", "--format", "json"]);
    let hybrid = figure(
        &rows,
        "DTLS 1.3 handshake server CPU, PSK with X25519MLKEM768, cookie on (openssl column: the same with X25519)",
    );
    let (ours, x25519) = (hybrid["ours"].as_f64().unwrap(), hybrid["openssl"].as_f64().unwrap());
    assert!(ours > 0.0 && x25519 > 0.0, "{hybrid}");
    let mlkem = figure(&rows, "ML-KEM-768 encapsulation + decapsulation, aws-lc")["ours"].as_f64().unwrap();
    assert!(mlkem > 0.0);
    let added = rows
        .iter()
        .find(|r| r["figure"].as_str().is_some_and(|f| f.starts_with("X25519MLKEM768 server CPU over X25519")))
        .expect("the hybrid's added cost");
    // The row is the difference of the two handshake figures, beside ML-KEM alone (the JSON
    // rounds each figure to three decimals: equal within three roundings).
    let difference = ours - x25519;
    assert!((added["ours"].as_f64().unwrap() - difference).abs() <= 0.0016, "{added} vs {difference}");
    assert_eq!(added["openssl"].as_f64().unwrap(), mlkem);
    let latencies: Vec<f64> = rows
        .iter()
        .filter(|r| r["figure"].as_str().is_some_and(|f| f.starts_with("handshake latency")))
        .map(|r| r["ours"].as_f64().unwrap())
        .collect();
    assert_eq!(latencies.len(), 3, "p50 without, p50 and p99 under the fragment flood");
    // Debug builds (the tests') may not keep up with the flood: a client can need a
    // retransmission (1 s), never more than the 30 s connect timeout.
    assert!(latencies.iter().all(|&ms| ms > 0.0 && ms < 30_000.0), "{latencies:?}");
    assert!(latencies[1] <= latencies[2], "p50 above p99: {latencies:?}");
}
