//! End-to-end tests of what the `dtls` binary's options negotiate, each named on the
//! established lines of both ends: connection IDs (`--cid`), DTLS-SRTP (`--srtp-profiles`),
//! ALPN (`--alpn`), key exchange groups (`--groups`).

mod support;

use support::{run, text, Running};

/// `--cid`: the established lines of both ends name the connection IDs (ours, theirs), in hex.
#[test]
fn connection_ids_are_negotiated_and_named() {
    let server = Running::start(&["server", "--listen", "127.0.0.1:0", "--psk-key", "00ff", "--cid", "4"]);
    let addr = server.addr.to_string();
    let client = |cid: Option<&str>| {
        let mut args = vec!["client", "--connect", &addr, "--psk-key", "00ff", "--count", "1"];
        if let Some(n) = cid {
            args.extend(["--cid", n]);
        }
        let out = run(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    // "CID ours <8 bytes> theirs <4 bytes>", each in hex.
    let ids = |log: &str| -> Option<(usize, usize)> {
        let at = log.find("CID ours ")? + "CID ours ".len();
        let mut words = log[at..].split_whitespace();
        let ours = words.next()?;
        let theirs = (words.next()? == "theirs").then(|| words.next()).flatten()?;
        let hex_len = |w: &str| w.chars().all(|c| c.is_ascii_hexdigit()).then_some(w.len() / 2);
        Some((hex_len(ours)?, hex_len(theirs.trim_end_matches(|c: char| !c.is_ascii_hexdigit()))?))
    };
    assert_eq!(ids(&client(Some("8"))), Some((8, 4)));
    // Without --cid the client asks for none, and the server answers none.
    let plain = client(None);
    assert!(!plain.contains("CID"), "{plain}");
    let log = server.stop();
    assert_eq!(ids(&log), Some((4, 8)), "{log}");
    let out = run(&["client", "--connect", "127.0.0.1:9", "--psk-key", "00", "--cid", "21"]);
    assert!(text(&out.stderr).contains("at most 20 bytes"), "{}", text(&out.stderr));
}

/// `--srtp-profiles`: the server takes the first of its profiles the client offered, and both
/// established lines name it; without a common profile neither names one; a wrong name is a
/// clear error.
#[test]
fn srtp_profiles_are_chosen_and_named() {
    let srtp = "SRTP_AEAD_AES_256_GCM,SRTP_AES128_CM_SHA1_80";
    let server = Running::start(&["server", "--listen", "127.0.0.1:0", "--psk-key", "00ff", "--srtp-profiles", srtp]);
    let addr = server.addr.to_string();
    let client = |protocol: &str, profiles: &str| {
        let args = ["client", "--connect", &addr, "--psk-key", "00ff", "--count", "1", "--protocol", protocol];
        let out = run(&[&args[..], &["--srtp-profiles", profiles]].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    let both = "SRTP_AES128_CM_HMAC_SHA1_80:SRTP_AEAD_AES_256_GCM";
    for protocol in ["1.2", "1.3"] {
        let log = client(protocol, both);
        assert!(log.contains(", SRTP profile SRTP_AEAD_AES_256_GCM"), "{log}");
    }
    let none = client("1.3", "SRTP_AEAD_AES_128_GCM");
    assert!(none.contains("encrypted connection established") && !none.contains("SRTP"), "{none}");
    let log = server.stop();
    assert_eq!(log.matches(", SRTP profile SRTP_AEAD_AES_256_GCM").count(), 2, "{log}");
    let out = run(&["client", "--connect", "127.0.0.1:9", "--psk-key", "00", "--srtp-profiles", "SRTP_NULL"]);
    assert!(text(&out.stderr).contains("unknown SRTP protection profile \"SRTP_NULL\""), "{}", text(&out.stderr));
}

/// `--alpn`: the server takes the first of its protocols the client offered, and both
/// established lines name it; a client that offers only others is refused with
/// no_application_protocol; an over-long name is a clear error.
#[test]
fn alpn_protocols_are_chosen_named_and_enforced() {
    let args = ["server", "--listen", "127.0.0.1:0", "--psk-key", "00ff", "--alpn", "mqtt,coap"];
    let server = Running::start(&args);
    let addr = server.addr.to_string();
    let client = |protocol: &str, alpn: &str| {
        let args = ["client", "--connect", &addr, "--psk-key", "00ff", "--count", "1", "--protocol", protocol];
        run(&[&args[..], &["--alpn", alpn]].concat())
    };
    for protocol in ["1.2", "1.3"] {
        let out = client(protocol, "coap,mqtt");
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(", ALPN 'mqtt'"), "{}", text(&out.stderr));
    }
    let out = client("1.3", "h2");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no_application_protocol"), "{}", text(&out.stderr));
    let log = server.stop();
    assert_eq!(log.matches(", ALPN 'mqtt'").count(), 2, "{log}");
    let long = "x".repeat(256);
    let out = run(&["client", "--connect", "127.0.0.1:9", "--psk-key", "00", "--alpn", &long]);
    assert!(text(&out.stderr).contains("1 to 255 bytes"), "{}", text(&out.stderr));
}

/// `--groups`: the groups offered and taken, named on the established lines of both ends; a
/// server of the curves alone takes the client's X25519 share, DTLS 1.2 the curves of the
/// list; an unknown name is a clear error.
#[test]
fn groups_are_chosen_and_named() {
    let server = Running::start(&["server", "--listen", "127.0.0.1:0", "--psk-key", "00ff"]);
    let addr = server.addr.to_string();
    let client = |extra: &[&str]| {
        let mut args = vec!["client", "--connect", &addr, "--psk-key", "00ff", "--count", "1"];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    assert!(client(&[]).contains(", group X25519MLKEM768"));
    // The server picks by its own order among the client's groups (its retry asks for it).
    assert!(client(&["--groups", "secp256r1,x25519"]).contains(", group x25519"));
    assert!(client(&["--groups", "secp256r1"]).contains(", group secp256r1"));
    assert!(
        client(&["--groups", "SecP256r1MLKEM768:x25519"]).contains(", group x25519"),
        "the server's default lacks it"
    );
    assert!(client(&["--groups", "X25519MLKEM768,secp384r1", "--protocol", "1.2"]).contains(", group secp384r1"));
    let log = server.stop();
    assert!(log.contains(", group X25519MLKEM768"), "{log}");
    assert!(log.contains(", group secp256r1"), "{log}");
    let curves = Running::start(&["server", "--listen", "127.0.0.1:0", "--psk-key", "00ff", "--groups", "x25519"]);
    let out = run(&["client", "--connect", &curves.addr.to_string(), "--psk-key", "00ff", "--count", "1"]);
    assert!(text(&out.stderr).contains("DTLSv1.3 TLS_AES_128_GCM_SHA256, group x25519"), "{}", text(&out.stderr));
    drop(curves.stop());
    let out = run(&["client", "--connect", "127.0.0.1:9", "--psk-key", "00", "--groups", "x448"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown group `x448`"), "{}", text(&out.stderr));
}
