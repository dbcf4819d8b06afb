//! `rdtls-bogo`: the shim BoringSSL's test runner (BoGo) starts once per test, driving
//! `rdtls-proto` over the runner's packet stream on a virtual clock. See `docs/bogo.md`.
//!
//! Exit codes, as the runner reads them: 0 the test passed, 89 it needs something we have not
//! implemented (the runner counts it as skipped), 1 it failed, with the reason on standard
//! error. A protocol error is printed with a token (`[alert-sent:decode_error]`, …) that the
//! `ErrorMap` of `bogo/config.json` maps BoringSSL's error codes to.

mod alpn;
mod flags;
mod shim;
mod wire;

use std::process::ExitCode;

use rdtls_proto::Error;

use crate::flags::Flags;

/// Exit code the runner reads as "unimplemented".
const UNIMPLEMENTED: u8 = 89;

/// Why a test did not pass.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The connection failed with a protocol error.
    Protocol(Error),
    /// A check of the test failed, or the shim could not run it.
    Check(String),
    /// The test needs a feature we do not have.
    Unimplemented(String),
}

impl Failure {
    /// Names the connection (1 for the first) in a check's message.
    fn context(self, connection: u32) -> Self {
        match self {
            Self::Check(what) => Self::Check(format!("Connection {connection} failed: {what}")),
            other => other,
        }
    }
}

/// The token the error map matches: what went wrong on the wire, in our words.
pub(crate) fn error_token(e: &Error) -> String {
    match e {
        Error::AlertReceived(alert) => format!("alert-received:{alert}"),
        Error::PeerMisbehaved { alert, .. } | Error::PeerIncompatible { alert, .. } => format!("alert-sent:{alert}"),
        Error::UnknownPskIdentity => "alert-sent:unknown_psk_identity".into(),
        Error::PeerVerification(_) => "peer-verification".into(),
        Error::RemoteClosed => "remote-closed".into(),
        Error::NoPsk => "no-psk".into(),
        Error::HandshakeTimeout => "handshake-timeout".into(),
        Error::SequenceExhausted => "sequence-exhausted".into(),
        Error::Crypto => "crypto".into(),
        Error::InvalidOperation(_) => "invalid-operation".into(),
        Error::InvalidInput(_) => "invalid-input".into(),
        // The reason too: the error map tells a misbehaving callback from other local errors.
        Error::Config(reason) => format!("config:{reason}"),
        _ => "other".into(),
    }
}

/// With `RDTLS_BOGO_LIST_ONLY` set, the shim runs no test: it records the test's role from the
/// runner's `-write-settings` path (`<dir>/dtls/<client|server>/<name>-`, given when the runner
/// has `-transcript-dir`) by creating that file, and reports the test as unimplemented. A run
/// in this mode lists every test with its role, for `bogo-check`.
fn list_only(flags: &Flags) -> ExitCode {
    if let Some(path) = &flags.initial.write_settings {
        let _ = std::fs::write(path, b"");
    }
    ExitCode::from(UNIMPLEMENTED)
}

/// With `RDTLS_BOGO_LOG=FILE`, each test appends its command line and outcome to FILE, for
/// triage (the runner does not show why a test was unimplemented).
fn log_outcome(path: &std::ffi::OsStr, args: &[String], outcome: &Result<(), Failure>) {
    use std::io::Write;
    let line = format!("{} => {outcome:?}\n", args.join(" "));
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = file.write_all(line.as_bytes());
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = match Flags::parse(&args) {
        Ok(flags) => flags,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if flags.is_handshaker_supported {
        println!("No");
        return ExitCode::SUCCESS;
    }
    if std::env::var_os("RDTLS_BOGO_LIST_ONLY").is_some() {
        return list_only(&flags);
    }
    if !flags.unimplemented.is_empty() {
        if let Some(path) = std::env::var_os("RDTLS_BOGO_LOG") {
            let what = format!("flags {}", flags.unimplemented.join(" "));
            log_outcome(&path, &args, &Err(Failure::Unimplemented(what)));
        }
        eprintln!("unimplemented: {}", flags.unimplemented.join(" "));
        return ExitCode::from(UNIMPLEMENTED);
    }
    let outcome = shim::run(&flags);
    if let Some(path) = std::env::var_os("RDTLS_BOGO_LOG") {
        log_outcome(&path, &args, &outcome);
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Unimplemented(what)) => {
            eprintln!("unimplemented: {what}");
            ExitCode::from(UNIMPLEMENTED)
        }
        Err(Failure::Protocol(e)) => {
            eprintln!("{e} [{}]", error_token(&e));
            ExitCode::FAILURE
        }
        Err(Failure::Check(what)) => {
            eprintln!("{what}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdtls_proto::enums::AlertDescription;

    #[test]
    fn tokens_name_the_alert_and_its_direction() {
        assert_eq!(
            error_token(&Error::AlertReceived(AlertDescription::HANDSHAKE_FAILURE)),
            "alert-received:handshake_failure"
        );
        let sent = Error::PeerMisbehaved { alert: AlertDescription::DECODE_ERROR, reason: "short" };
        assert_eq!(error_token(&sent), "alert-sent:decode_error");
        assert_eq!(error_token(&Error::PeerVerification(Vec::new())), "peer-verification");
    }
}
