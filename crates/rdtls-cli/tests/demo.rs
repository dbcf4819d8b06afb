//! `dtls demo` runs the server and three associations to completion and exits 0.

use std::process::Command;

#[test]
fn demo_answers_every_ping_and_shuts_down_cleanly() {
    let out = Command::new(env!("CARGO_BIN_EXE_dtls"))
        .args(["demo", "--rounds", "2", "--interval", "0.1"])
        .output()
        .expect("run dtls demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("server: 3 handshakes, 6 datagrams answered, close_notify sent to 3 peers"), "{stdout}");
    for name in ["alice", "bob", "carol"] {
        assert!(stdout.contains(&format!("{name:<8} pings 2/2  ACKs 2  shutdown alert received  ok")), "{stdout}");
        assert!(stderr.contains(&format!("PSK callback, received a client's identity: '{name}'")), "{stderr}");
        assert!(stderr.contains(&format!("I am {name}, please, accept our ping 1")), "{stderr}");
        assert!(stderr.contains(&format!("{name}: shutdown alert received")), "{stderr}");
    }
    assert!(stderr.contains(": ACK"));
    assert!(stdout.contains("result: every ping was answered"));
}
