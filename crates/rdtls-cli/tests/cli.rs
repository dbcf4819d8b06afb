//! End-to-end tests of the `dtls` binary: server and client with PSK and with certificates made
//! by `dtls cert`, netcat mode, interop with OpenSSL, and clear failures.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod support;

use support::{p, run, temp_dir, text, Running, BIN};

#[test]
fn psk_server_and_client_count_two() {
    let server =
        Running::start(&["server", "--listen", "127.0.0.1:0", "--psk-key", "1a2b3c4d5e6f", "--psk-hint", "cli"]);
    let addr = server.addr.to_string();
    let out = run(&[
        "client",
        "--connect",
        &addr,
        "--psk-key",
        "1a2b3c4d5e6f",
        "--name",
        "alice",
        "--name",
        "bob",
        "--count",
        "2",
        "--ping-interval",
        "0.1",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for name in ["alice", "bob"] {
        assert_eq!(stdout.matches(&format!("{name}: to 127.0.0.1:")).count(), 2, "{stdout}");
        // `--protocol any` on both sides: DTLS 1.3.
        // The post-quantum group: the server's cookie retry asks for it.
        let line =
            format!("{name}: encrypted connection established! DTLSv1.3 TLS_AES_128_GCM_SHA256, group X25519MLKEM768");
        assert!(stderr.contains(&line), "{stderr}");
    }
    let server_log = server.stop();
    assert!(server_log.contains("PSK callback, received a client's identity: 'alice'"), "{server_log}");
    assert!(server_log.contains("As plain text: I am bob, please, accept our ping 1"), "{server_log}");
    assert!(server_log.contains("Connection with 127.0.0.1:"), "{server_log}");
}

#[test]
fn certificates_made_by_dtls_cert() {
    let dir = temp_dir("certs");
    let out = run(&["cert", "--out", p(&dir)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for f in ["ca.pem", "server.pem", "server.key", "client.pem", "client.key"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let (ca, cert, key) = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"));
    let server = Running::start(&[
        "server",
        "--listen",
        "127.0.0.1:0",
        "--cert",
        p(&cert),
        "--key",
        p(&key),
        "--ca",
        p(&ca),
        "--verify-client",
        "required",
    ]);
    let addr = server.addr.to_string();
    let (ccert, ckey) = (dir.join("client.pem"), dir.join("client.key"));
    let out = run(&[
        "client",
        "--connect",
        &addr,
        "--ca",
        p(&ca),
        "--server-name",
        "localhost",
        "--cert",
        p(&ccert),
        "--key",
        p(&ckey),
        "--count",
        "2",
        "--ping-interval",
        "0.1",
    ]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(text(&out.stdout).matches(": ACK").count(), 2);
    assert!(text(&out.stderr).contains("DTLSv1.3 TLS_AES_128_GCM_SHA256"), "{}", text(&out.stderr));
    // Without a client certificate the server refuses, and the client says why.
    let out = run(&["client", "--connect", &addr, "--ca", p(&ca), "--count", "1"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("certificate_required"), "{}", text(&out.stderr));
    // A wrong server name is refused by the client with the reason.
    let out = run(&[
        "client",
        "--connect",
        &addr,
        "--ca",
        p(&ca),
        "--server-name",
        "elsewhere.example",
        "--cert",
        p(&ccert),
        "--key",
        p(&ckey),
        "--count",
        "1",
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("host name did not match"), "{}", text(&out.stderr));
    let log = server.stop();
    assert!(log.contains("peer certificate sha256:"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_wrong_key_fails_fast_and_names_the_cause() {
    let server = Running::start(&["server", "--listen", "127.0.0.1:0", "--psk-key", "1a2b3c4d5e6f"]);
    // DTLS 1.3: the server finds the PSK binder wrong and says so with decrypt_error.
    let out = run(&["client", "--connect", &server.addr.to_string(), "--psk-key", "ffff", "--count", "1"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("decrypt_error") && err.contains("wrong pre-shared key"), "{err}");
    // DTLS 1.2: the keys differ, the server's Finished fails to authenticate.
    let out = run(&[
        "client",
        "--connect",
        &server.addr.to_string(),
        "--psk-key",
        "ffff",
        "--count",
        "1",
        "--protocol",
        "1.2",
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("bad_record_mac") && err.contains("wrong pre-shared key"), "{err}");
}

/// A client behind a NAT that rebinds keeps its association through Connection IDs: the fault
/// proxy's rebinding mode (what `dtls-proxy --rebind-every` runs) between `dtls client --cid 8`
/// and `dtls server --cid 8`. The server follows it and says so; no second handshake.
#[test]
fn a_rebinding_client_keeps_its_association_with_connection_ids() {
    use rdtls_interop::proxy::{FaultProxy, Faults};
    for (protocol, rrc) in [("1.2", false), ("1.3", false), ("1.2", true), ("1.3", true)] {
        let mut server_args = vec!["server", "--listen", "127.0.0.1:0", "--psk-key", "00ff", "--cid", "8"];
        server_args.extend(rrc.then_some("--rrc"));
        let server = Running::start(&server_args);
        let proxy = FaultProxy::start(server.addr, Faults::none(), Faults::none(), 3);
        // The handshake takes three datagrams from the client (its ClientHello, again with the
        // cookie, its Finished flight): rebinding after every five moves it with its third
        // ping, then with its eighth.
        proxy.rebind_every(5);
        let via = proxy.addr().to_string();
        let mut client_args = vec![
            "client",
            "--connect",
            &via,
            "--psk-key",
            "00ff",
            "--protocol",
            protocol,
            "--cid",
            "8",
            "--count",
            "10",
            "--ping-interval",
            "0.1",
        ];
        // With return routability checks, the server answers the first ping from the new port
        // there (within three times its size) and follows once the client answered its check.
        client_args.extend(rrc.then_some("--rrc"));
        let out = run(&client_args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "DTLS {protocol}: {stdout}\n{stderr}");
        assert!(stderr.contains(&format!("DTLSv{protocol}")), "{stderr}");
        assert_eq!(stdout.matches(": to 127.0.0.1:").count(), 10, "every ping answered: {stdout}");
        let log = server.stop();
        // Two rebindings at least (answers to return routability checks count among the
        // client's datagrams too), each followed, but for one the session may end on.
        let rebinds = proxy.stats().rebinds as usize;
        let followed = log.matches("address changed to 127.0.0.1:").count();
        assert!(rebinds >= 2 && followed >= 2 && followed <= rebinds, "DTLS {protocol}: {rebinds} {log}");
        assert_eq!(log.matches("encrypted. ").count(), 1, "one handshake: {log}");
    }
}

#[test]
fn invalid_options_are_clear_errors() {
    let out = run(&["client", "--connect", "127.0.0.1:9", "--psk-key", "xyz", "--count", "1"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not hex") || text(&out.stderr).contains("hex digits"), "{}", text(&out.stderr));
    let out = run(&["server", "--listen", "127.0.0.1:0", "--psk-key", "00", "--handshake-timeout", "500"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("between 2 and 120"), "{}", text(&out.stderr));
    let out = run(&["server", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("nothing to authenticate with"), "{}", text(&out.stderr));
    let out = run(&["client", "--connect", "127.0.0.1:9", "--psk-key", "00", "--ciphers", "RC4-MD5"]);
    assert!(text(&out.stderr).contains("unknown cipher suite 'RC4-MD5'"), "{}", text(&out.stderr));
}

#[test]
fn help_everywhere_with_examples() {
    for sub in ["server", "client", "demo", "cert", "connect", "listen"] {
        let out = run(&[sub, "--help"]);
        assert!(out.status.success(), "{sub} --help");
        assert!(text(&out.stdout).contains("Example"), "{sub} --help has no examples");
    }
    let out = run(&["--version"]);
    assert!(text(&out.stdout).starts_with("dtls "));
}

#[test]
fn netcat_connect_and_listen() {
    let mut listener = Running::start(&["listen", "127.0.0.1:0", "--psk-key", "abcd"]);
    let addr = listener.addr.to_string();
    let mut client = Command::new(BIN)
        .args(["connect", &addr, "--psk-key", "abcd", "--name", "nc"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("connect");
    let stdin = client.stdin.as_mut().expect("stdin");
    writeln!(stdin, "first line").unwrap();
    writeln!(stdin, "second line").unwrap();
    stdin.flush().unwrap();
    // The listener prints each datagram as a line.
    assert_eq!(listener.next_line(), "first line\n");
    assert_eq!(listener.next_line(), "second line\n");
    // The listener's stdin goes to its peers: the client prints it.
    let mut lstdin = listener.child.stdin.take().expect("listener stdin");
    writeln!(lstdin, "reply from listener").unwrap();
    lstdin.flush().unwrap();
    let mut cout = BufReader::new(client.stdout.take().expect("client stdout"));
    let mut reply = String::new();
    cout.read_line(&mut reply).unwrap();
    assert_eq!(reply, "reply from listener\n");
    // End of input: the client closes and exits 0.
    drop(client.stdin.take());
    let out = client.wait_with_output().expect("client output");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = listener.stop();
    assert!(log.contains("connected: DTLSv1.3 TLS_AES_128_GCM_SHA256"), "{log}");
}

#[test]
fn json_logs() {
    let out = run(&["--log-format", "json", "demo", "--rounds", "1", "--interval", "0.05", "--name", "solo"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<&str> = std::str::from_utf8(&out.stderr).unwrap().lines().collect();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l.starts_with('{') && l.ends_with('}')), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("solo: encrypted connection established!")));
}

/// `dtls client` against `openssl s_server -dtls1_2`, with the cookie exchange.
#[test]
fn our_client_binary_against_openssl_s_server() {
    use rdtls_interop::{free_udp_port, Peer};
    let port = free_udp_port().to_string();
    let mut server = Peer::spawn(
        "openssl",
        &[
            "s_server",
            "-dtls1_2",
            "-listen",
            "-accept",
            &port,
            "-naccept",
            "1",
            "-nocert",
            "-psk",
            "1a2b3c4d5e6f",
            "-cipher",
            "PSK-AES128-GCM-SHA256",
        ],
    );
    server.wait_started("ACCEPT", Duration::from_secs(20));
    let client = Command::new(BIN)
        .args([
            "client",
            "--connect",
            &format!("127.0.0.1:{port}"),
            "--psk-key",
            "1a2b3c4d5e6f",
            "--message",
            "hello openssl",
            "--count",
            "1",
            "--ping-interval",
            "5",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client");
    server.expect("hello openssl", Duration::from_secs(20));
    server.send_line("pong");
    let out = client.wait_with_output().expect("client");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("client-1: pong"), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("PSK-AES128-GCM-SHA256"));
}

/// `dtls server` answering `openssl s_client -dtls1_2`.
#[test]
fn our_server_binary_with_openssl_s_client() {
    use rdtls_interop::Peer;
    let server = Running::start(&["server", "--listen", "127.0.0.1:0", "--psk-key", "1a2b3c4d5e6f"]);
    let target = server.addr.to_string();
    let mut client = Peer::spawn(
        "openssl",
        &["s_client", "-dtls1_2", "-connect", &target, "-psk", "1a2b3c4d5e6f", "-psk_identity", "openssl", "-ign_eof"],
    );
    client.expect("Cipher is", Duration::from_secs(20));
    client.send_line("hello ours");
    client.expect(": ACK", Duration::from_secs(20));
    let log = server.stop();
    assert!(log.contains("PSK callback, received a client's identity: 'openssl'"), "{log}");
    assert!(log.contains("As plain text: hello ours"), "{log}");
}

/// SIGTERM makes the server send close_notify to every peer; a client without --count sees
/// the shutdown alert and exits 0. The same client talks to two servers at once.
#[test]
fn sigterm_closes_every_connection_and_clients_follow_many_servers() {
    let a = Running::start(&["server", "--listen", "127.0.0.1:0", "--psk-key", "0102"]);
    let b = Running::start(&["server", "--listen", "127.0.0.1:0", "--psk-key", "0102"]);
    let mut client = Command::new(BIN)
        .args(["client", "--connect", &a.addr.to_string(), "--connect", &b.addr.to_string(), "--psk-key", "0102"])
        .args(["--ping-interval", "0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client");
    let mut out = BufReader::new(client.stdout.take().expect("stdout"));
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 2 {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "client exited early");
        if let Some(rest) = line.strip_prefix("client-1: to ") {
            seen.insert(rest.to_owned());
        }
    }
    let log_a = a.stop();
    assert!(log_a.contains("Server shut down: close_notify sent to 1 peer(s)"), "{log_a}");
    let log_b = b.stop();
    assert!(log_b.contains("close_notify sent to 1 peer(s)"), "{log_b}");
    let status = client.wait().expect("client");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut client.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert_eq!(err.matches("client-1: shutdown alert received").count(), 2, "{err}");
}

/// A server that never answers: `--count` fails with a clear message.
#[test]
fn unanswered_pings_fail_with_a_clear_message() {
    // `dtls listen` prints what it gets but answers nothing by itself.
    let listener = Running::start(&["listen", "127.0.0.1:0", "--psk-key", "0a0b"]);
    let out = run(&[
        "client",
        "--connect",
        &listener.addr.to_string(),
        "--psk-key",
        "0a0b",
        "--count",
        "2",
        "--ping-interval",
        "0.2",
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("client-1: only 0 of 2 pings were answered"), "{}", text(&out.stderr));
}

#[test]
fn idle_timeout_closes_quiet_connections_with_close_notify() {
    let server = Running::start(&["server", "--listen", "127.0.0.1:0", "--psk-key", "00ff", "--idle-timeout", "0.5"]);
    let cfg = std::sync::Arc::new(rdtls::Config::builder().psk("quiet", vec![0x00, 0xff]).build().unwrap());
    let t = Some(Duration::from_secs(20));
    let mut client = rdtls::Connection::connect(server.addr, cfg, t).unwrap();
    client.send(b"hello").unwrap();
    let mut buf = [0u8; 256];
    let n = client.recv(&mut buf, t).unwrap();
    assert!(buf[..n].ends_with(b": ACK"), "{:?}", text(&buf[..n]));
    // Then nothing: the server closes the connection with close_notify once it was idle 0.5 s.
    let quiet_since = std::time::Instant::now();
    let err = client.recv(&mut buf, t).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    assert!(quiet_since.elapsed() >= Duration::from_millis(400), "closed after {:?}", quiet_since.elapsed());
    let log = server.stop();
    assert!(log.contains("idle for 0.5 s, closing the connection"), "{log}");
}

#[test]
fn a_full_server_makes_room_for_newcomers_from_peers_that_vanished() {
    // Room for three; peers silent for 50 ms may be evicted when a newcomer needs the room.
    let server = Running::start(&[
        "server",
        "--listen",
        "127.0.0.1:0",
        "--psk-key",
        "00ff",
        "--max-connections",
        "3",
        "--stale-after",
        "0.05",
    ]);
    let t = Some(Duration::from_secs(20));
    let connect = |name: &str| {
        let cfg = std::sync::Arc::new(rdtls::Config::builder().psk(name, vec![0x00, 0xff]).build().unwrap());
        let mut c = rdtls::Connection::connect(server.addr, cfg, t).unwrap();
        c.send(name.as_bytes()).unwrap();
        let mut buf = [0u8; 256];
        let n = c.recv(&mut buf, t).unwrap();
        assert!(buf[..n].ends_with(b": ACK"), "{:?}", text(&buf[..n]));
        c
    };
    // Three clients connect and vanish without close_notify; three times more come after them.
    for i in 0..12 {
        std::mem::forget(connect(&format!("gone{i}")));
    }
    let log = server.stop();
    assert!(log.matches("server full, closing the connection idle longest").count() >= 9, "{log}");
}

#[test]
fn a_client_restarting_on_the_same_port_is_served_a_new_handshake() {
    // RFC 6347 §4.2.8: a client that crashed and came back on the same address and port sends a
    // new ClientHello; the server verifies it with a cookie, starts a new handshake, and drops
    // the old association.
    let server = Running::start(&["server", "--listen", "127.0.0.1:0", "--psk-key", "00ff"]);
    let t = Some(Duration::from_secs(20));
    let cfg = std::sync::Arc::new(rdtls::Config::builder().psk("phoenix", vec![0x00, 0xff]).build().unwrap());
    // Room for the largest datagram of the handshake (a ServerHello with a hybrid share).
    let mut buf = [0u8; 2048];

    // First life: a handshake and one ping on a raw socket, then a crash (no close_notify).
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    socket.connect(server.addr).unwrap();
    socket.set_read_timeout(t).unwrap();
    let now = std::time::Instant::now();
    let mut proto = rdtls::proto::Connection::client(cfg.clone(), now).unwrap();
    let mut out = Vec::new();
    while !proto.is_established() {
        while proto.poll_transmit(&mut out).is_some() {
            socket.send(&out).unwrap();
        }
        if proto.is_established() {
            break;
        }
        let n = socket.recv(&mut buf).unwrap();
        proto.handle_datagram(now, &mut buf[..n]).unwrap();
    }
    while proto.poll_transmit(&mut out).is_some() {
        socket.send(&out).unwrap();
    }
    out.clear();
    proto.send(b"first life", &mut out).unwrap();
    socket.send(&out).unwrap();
    // The reply, after whatever else the server sends first (in DTLS 1.3, the ACK of our
    // Finished).
    loop {
        let n = socket.recv(&mut buf).unwrap();
        let reply = proto.handle_datagram(now, &mut buf[..n]).unwrap();
        let first = reply.iter().next().map(<[u8]>::to_vec);
        if let Some(r) = first {
            assert!(r.ends_with(b": ACK"), "{:?}", text(&r));
            break;
        }
    }
    drop(socket);

    // Second life on the same port: served.
    let socket = std::net::UdpSocket::bind(("127.0.0.1", port)).unwrap();
    socket.connect(server.addr).unwrap();
    let mut client = rdtls::Connection::handshake(socket, cfg, t).unwrap();
    client.send(b"second life").unwrap();
    let n = client.recv(&mut buf, t).unwrap();
    assert!(buf[..n].ends_with(b": ACK"), "{:?}", text(&buf[..n]));
    let log = server.stop();
    assert!(log.contains("the client restarted, its old connection ends"), "{log}");
    assert!(log.contains("As plain text: second life"), "{log}");
}

#[test]
fn a_client_of_a_closed_port_fails_fast_and_says_why() {
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let started = std::time::Instant::now();
    let out = run(&["client", "--connect", &closed, "--psk-key", "00ff", "--count", "1"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("connection refused: nothing listens on"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

/// `--keylog` on the server and SSLKEYLOGFILE on the client: both write the connection's
/// secrets, the same lines, readable by their owner only: DTLS 1.2's `CLIENT_RANDOM` line, and
/// DTLS 1.3's traffic secrets.
#[test]
fn key_logs_for_wireshark() {
    for (protocol, labels) in [
        ("1.2", &["CLIENT_RANDOM"][..]),
        (
            "1.3",
            &[
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                "CLIENT_TRAFFIC_SECRET_0",
                "SERVER_TRAFFIC_SECRET_0",
                "EXPORTER_SECRET",
            ][..],
        ),
    ] {
        key_log_of(protocol, labels);
    }
}

fn key_log_of(protocol: &str, labels: &[&str]) {
    let dir = temp_dir("keylog");
    let (server_log, client_log) = (dir.join("server.keys"), dir.join("client.keys"));
    let server =
        Running::start(&["server", "--listen", "127.0.0.1:0", "--psk-key", "1a2b3c4d5e6f", "--keylog", p(&server_log)]);
    let addr = server.addr.to_string();
    let out = Command::new(BIN)
        .args(["client", "--connect", &addr, "--psk-key", "1a2b3c4d5e6f", "--count", "1", "--ping-interval", "0.1"])
        .args(["--protocol", protocol])
        .env("SSLKEYLOGFILE", &client_log)
        .output()
        .expect("run dtls");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("key log"), "the client says it logs keys");
    let log = server.stop();
    assert!(log.contains("key log"), "the server says it logs keys: {log}");
    let lines = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    let (server_lines, client_lines) = (lines(&server_log), lines(&client_log));
    let found: Vec<&str> = server_lines.lines().map(|l| l.split(' ').next().unwrap_or_default()).collect();
    assert_eq!(found, labels, "{server_lines}");
    for line in server_lines.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let secret_len = if protocol == "1.2" { 96 } else { 64 };
        assert_eq!((fields[1].len(), fields[2].len()), (64, secret_len), "random and secret in hex: {line}");
    }
    assert_eq!(server_lines, client_lines);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&server_log).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--stats-interval`: the server logs its counters periodically, as text and as JSON fields,
/// and the final summary uses them.
#[test]
fn server_statistics_are_logged() {
    for format in ["text", "json"] {
        let server = Running::start(&[
            "--log-format",
            format,
            "server",
            "--listen",
            "127.0.0.1:0",
            "--psk-key",
            "1a2b3c4d5e6f",
            "--stats-interval",
            "0.1",
        ]);
        let addr = server.addr.to_string();
        let out =
            run(&["client", "--connect", &addr, "--psk-key", "1a2b3c4d5e6f", "--count", "2", "--ping-interval", "0.2"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let log = server.stop();
        let stats: Vec<&str> = log.lines().filter(|l| l.contains("stats: ")).collect();
        assert!(stats.len() >= 2, "{format}: {log}");
        assert!(stats.iter().any(|l| l.contains("1 handshakes, 0 failed; 1 cookies")), "{format}: {stats:?}");
        if format == "json" {
            assert!(stats.iter().all(|l| l.contains("\"handshakes\":") && l.contains("\"bytes_in\":")), "{stats:?}");
        }
        assert!(log.contains("served 1 handshakes (0 failed) and 2 datagrams; 1 cookies sent"), "{format}: {log}");
    }
}
