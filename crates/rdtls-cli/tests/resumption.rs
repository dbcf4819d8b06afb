//! Session resumption with the `dtls` binary: `dtls client --session-file` resumes the
//! session it saved, by ticket and by session ID (`dtls server --no-tickets`), and two server
//! processes that share a `--ticket-key-file` resume each other's sessions.

mod support;

use std::path::Path;

use support::{p, run, temp_dir, text, Running};

/// `dtls cert` in a fresh directory.
fn certificates(name: &str) -> std::path::PathBuf {
    let dir = temp_dir(name);
    let out = run(&["cert", "--out", p(&dir)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir
}

fn server(dir: &Path, extra: &[&str]) -> Running {
    server_of(dir, "1.2", extra)
}

fn server_of(dir: &Path, protocol: &str, extra: &[&str]) -> Running {
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    let mut args =
        vec!["server", "--listen", "127.0.0.1:0", "--protocol", protocol, "--cert", p(&cert), "--key", p(&key)];
    args.extend_from_slice(extra);
    Running::start(&args)
}

/// One ping with the session file; the client's log.
fn client(dir: &Path, server: &Running, session: &Path) -> String {
    let addr = server.addr.to_string();
    let ca = dir.join("ca.pem");
    let out = run(&[
        "client",
        "--connect",
        &addr,
        "--ca",
        p(&ca),
        "--server-name",
        "localhost",
        "--session-file",
        p(session),
        "--count",
        "1",
        "--ping-interval",
        "0.1",
    ]);
    let log = text(&out.stderr);
    assert!(out.status.success(), "{}\n{log}", text(&out.stdout));
    log
}

fn established(log: &str) -> &str {
    log.lines().find(|l| l.contains("encrypted connection established!")).expect("an established line")
}

#[test]
fn the_client_resumes_its_saved_session_by_ticket_and_by_session_id() {
    let dir = certificates("resume");
    for extra in [&[][..], &["--no-tickets"][..]] {
        let server = server(&dir, extra);
        let session = dir.join(format!("session{}.bin", extra.len()));
        let first = client(&dir, &server, &session);
        assert!(established(&first).contains("DTLSv1.2") && !established(&first).contains("resumed"), "{first}");
        assert!(session.is_file(), "the session was saved");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&session).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the session file is the owner's alone");
        }
        for _ in 0..2 {
            let again = client(&dir, &server, &session);
            // The resumed connection still names the server's certificate.
            let line = established(&again);
            assert!(line.contains("resumed") && line.contains("peer certificate sha256:"), "{again}");
        }
        let log = server.stop();
        assert_eq!(log.lines().filter(|l| l.contains("Connection with") && l.contains("resumed")).count(), 2, "{log}");
    }
    // A damaged file: a warning and a full handshake, not a failure.
    let server = server(&dir, &[]);
    let session = dir.join("damaged.bin");
    std::fs::write(&session, b"garbage").unwrap();
    let log = client(&dir, &server, &session);
    assert!(log.contains("not a saved session") && !established(&log).contains("resumed"), "{log}");
}

#[test]
fn servers_sharing_a_ticket_key_file_resume_each_others_sessions() {
    let dir = certificates("fleet");
    let keys = dir.join("tickets.key");
    let a = server(&dir, &["--ticket-key-file", p(&keys)]);
    // The first server made the file; the second reads it.
    let secret = std::fs::read_to_string(&keys).unwrap();
    assert_eq!(secret.trim().len(), 64, "{secret}");
    let b = server(&dir, &["--ticket-key-file", p(&keys)]);
    let session = dir.join("session.bin");
    assert!(!established(&client(&dir, &a, &session)).contains("resumed"));
    let on_b = client(&dir, &b, &session);
    assert!(established(&on_b).contains("resumed"), "{on_b}");
    // A server with its own keys cannot open the ticket: a full handshake.
    let c = server(&dir, &[]);
    let on_c = client(&dir, &c, &session);
    assert!(!established(&on_c).contains("resumed"), "{on_c}");
    drop((a, b, c));
    let short = dir.join("short.key");
    std::fs::write(&short, "00ff\n").unwrap();
    let out = run(&["server", "--listen", "127.0.0.1:0", "--psk-key", "00", "--ticket-key-file", p(&short)]);
    assert!(text(&out.stderr).contains("at least 16 bytes"), "{}", text(&out.stderr));
}

/// DTLS 1.3: the server's ticket comes after the handshake, and the client saves the session
/// it gives when it is done; the next run resumes with a PSK handshake.
#[test]
fn the_client_resumes_a_dtls13_session() {
    let dir = certificates("resume13");
    let server = server_of(&dir, "1.3", &[]);
    let session = dir.join("session13.bin");
    let first = client(&dir, &server, &session);
    assert!(established(&first).contains("DTLSv1.3") && !established(&first).contains("resumed"), "{first}");
    assert!(session.is_file(), "the session from the ticket was saved");
    let again = client(&dir, &server, &session);
    let line = established(&again);
    assert!(line.contains("DTLSv1.3") && line.contains("resumed"), "{again}");
    let log = server.stop();
    assert_eq!(log.lines().filter(|l| l.contains("Connection with") && l.contains("resumed")).count(), 1, "{log}");
}
