//! What the tests of the `dtls` binary share: running it, and reading what it says.
#![allow(dead_code, unreachable_pub)] // Each test file uses its own part.

use std::io::BufRead;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_dtls");

/// A running `dtls server`/`dtls listen`, killed (SIGTERM) when dropped.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    /// Lines the process writes to stdout after the listening line.
    pub lines: mpsc::Receiver<String>,
}

impl Running {
    /// Starts the binary and waits for its `listening on ADDR` line.
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dtls");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the listening line");
        let addr =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let addr = addr.parse().expect("address");
        // Keep draining stdout so the child never blocks on a full pipe.
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            while stdout.read_line(&mut line).unwrap_or(0) > 0 {
                let _ = tx.send(std::mem::take(&mut line));
            }
        });
        Self { child, addr, lines }
    }

    /// Waits for the next stdout line.
    pub fn next_line(&self) -> String {
        self.lines.recv_timeout(Duration::from_secs(20)).expect("a line on stdout")
    }

    /// Stops with SIGTERM and returns stderr.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let out = std::mem::replace(&mut self.child, Command::new("true").spawn().expect("true"))
            .wait_with_output()
            .expect("wait");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run dtls")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rdtls-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}
