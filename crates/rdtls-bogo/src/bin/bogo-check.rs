//! `bogo-check`: reads what a BoGo run wrote and reports it.
//!
//! ```text
//! bogo-check --config bogo/config.json --results results.json
//!            [--listing all.json --roles DIR] [--passing bogo/passing.txt [--write-passing]]
//! ```
//!
//! - `--results`: the runner's `-json-output` of the real run.
//! - `--listing` and `--roles`: the `-json-output` and `-transcript-dir` of a listing run (the
//!   shim with `RDTLS_BOGO_LIST_ONLY=1`, the runner with `-include-disabled`), which names every
//!   test and its role: needed for the disabled counts, the roles and stale globs.
//! - `--passing`: the committed list of tests that passed; the report names the ones that no
//!   longer pass (regressions). `--write-passing` rewrites it from this run instead.
//!
//! It prints passed / failed / unimplemented / disabled by DTLS version and role, the disabled
//! globs that match no test (stale), and the regressions; it exits 1 if there are regressions
//! or stale globs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

/// `filepath.Match` as the runner applies it to test names: `*` and `?` (names have no `/`).
/// Iterative, backtracking only to the last `*`: O(pattern × name) for any input.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was, and the name position it currently stands for up to.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                // Let the last `*` take one more byte, and try again after it.
                Some((sp, sn)) => {
                    star = Some((sp, sn + 1));
                    p = sp + 1;
                    n = sn + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The DTLS version a test runs at, from the first version token of its name as the runner
/// builds it (`TLS1` or `DTLS1` is DTLS 1.0, `TLS12` or `DTLS12` 1.2, `TLS13` or `DTLS13` 1.3);
/// a name without one runs at the runner's default, DTLS 1.3.
fn version_of(name: &str) -> &'static str {
    name.split('-')
        .find_map(|token| match token.strip_prefix('D').unwrap_or(token) {
            "TLS1" => Some("1.0"),
            "TLS11" => Some("1.1"),
            "TLS12" => Some("1.2"),
            "TLS13" => Some("1.3"),
            _ => None,
        })
        .unwrap_or("default (1.3)")
}

#[derive(Default, Clone, Copy)]
struct Counts {
    passed: usize,
    failed: usize,
    unimplemented: usize,
    disabled: usize,
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Test name → the runner's verdict (`PASS`, `FAIL`, `SKIP`).
fn results(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let json = read_json(path)?;
    let tests = json.get("tests").and_then(Value::as_object).ok_or("no \"tests\" object")?;
    Ok(tests
        .iter()
        .map(|(name, r)| (name.clone(), r.get("actual").and_then(Value::as_str).unwrap_or("?").to_owned()))
        .collect())
}

/// Test name → role, from the files the listing run's shims created under `<dir>/dtls/<role>/`.
fn roles(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut roles = BTreeMap::new();
    for role in ["client", "server"] {
        let sub = dir.join("dtls").join(role);
        let entries = std::fs::read_dir(&sub).map_err(|e| format!("{}: {e}", sub.display()))?;
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(name) = file.strip_suffix('-') {
                roles.insert(name.to_owned(), role.to_owned());
            }
        }
    }
    Ok(roles)
}

struct Args {
    config: PathBuf,
    results: PathBuf,
    listing: Option<PathBuf>,
    roles: Option<PathBuf>,
    passing: Option<PathBuf>,
    write_passing: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut config, mut results, mut listing, mut roles, mut passing, mut write_passing) =
        (None, None, None, None, None, false);
    while let Some(arg) = args.next() {
        let mut value = || args.next().map(PathBuf::from).ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--config" => config = Some(value()?),
            "--results" => results = Some(value()?),
            "--listing" => listing = Some(value()?),
            "--roles" => roles = Some(value()?),
            "--passing" => passing = Some(value()?),
            "--write-passing" => write_passing = true,
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    Ok(Args {
        config: config.ok_or("--config is required")?,
        results: results.ok_or("--results is required")?,
        listing,
        roles,
        passing,
        write_passing,
    })
}

fn run() -> Result<bool, String> {
    let args = parse_args()?;
    let config = read_json(&args.config)?;
    let globs: Vec<String> =
        config.get("DisabledTests").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
    let run = results(&args.results)?;
    let all: BTreeSet<String> = match &args.listing {
        Some(path) => results(path)?.into_keys().collect(),
        None => run.keys().cloned().collect(),
    };
    let roles = match &args.roles {
        Some(dir) => roles(dir)?,
        None => BTreeMap::new(),
    };
    let disabled = |name: &str| globs.iter().any(|g| glob_match(g.as_bytes(), name.as_bytes()));

    let mut table: BTreeMap<(&str, String), Counts> = BTreeMap::new();
    for name in &all {
        let role = roles.get(name).cloned().unwrap_or_else(|| "?".into());
        let c = table.entry((version_of(name), role)).or_default();
        match run.get(name).map(String::as_str) {
            Some("PASS") => c.passed += 1,
            Some("SKIP") => c.unimplemented += 1,
            Some(_) => c.failed += 1,
            None if disabled(name) => c.disabled += 1,
            None => c.failed += 1,
        }
    }
    println!("| DTLS version | role | passed | failed | unimplemented | disabled |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut total = Counts::default();
    for ((version, role), c) in &table {
        println!("| {version} | {role} | {} | {} | {} | {} |", c.passed, c.failed, c.unimplemented, c.disabled);
        total.passed += c.passed;
        total.failed += c.failed;
        total.unimplemented += c.unimplemented;
        total.disabled += c.disabled;
    }
    println!("| all | | {} | {} | {} | {} |", total.passed, total.failed, total.unimplemented, total.disabled);

    let mut ok = true;
    if args.listing.is_some() {
        let stale: Vec<_> =
            globs.iter().filter(|g| !all.iter().any(|n| glob_match(g.as_bytes(), n.as_bytes()))).collect();
        for g in &stale {
            println!("stale disabled glob (matches no test): {g}");
        }
        ok &= stale.is_empty();
    }
    let passed: BTreeSet<&String> = run.iter().filter(|(_, r)| *r == "PASS").map(|(n, _)| n).collect();
    if let Some(path) = &args.passing {
        if args.write_passing {
            let text: String = passed.iter().map(|n| format!("{n}\n")).collect();
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            println!("wrote {} passing tests to {}", passed.len(), path.display());
        } else {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let regressions: Vec<&str> =
                text.lines().filter(|n| !n.is_empty() && !passed.contains(&n.to_string())).collect();
            for n in &regressions {
                println!("regression (passed before, not now): {n}");
            }
            ok &= regressions.is_empty();
        }
    }
    Ok(ok)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bogo-check: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_the_runner_does() {
        assert!(glob_match(b"*-TLS1-*", b"Resume-Server-TLS1-TLS1-DTLS"));
        assert!(glob_match(b"*ALPN*", b"ALPNClient-EmptyProtocolName-DTLS-TLS13"));
        assert!(glob_match(b"Basic-Server-?TLS*", b"Basic-Server-DTLS-Sync"));
        assert!(!glob_match(b"*-TLS1-*", b"Basic-Server-TLS12-DTLS"));
        assert!(!glob_match(b"Basic", b"Basic-Server"));
        // The most expensive kind of input stays quadratic at worst.
        assert!(!glob_match(b"*a*a*a*a*a*b", &[b'a'; 4000]));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*", b"a"));
        assert!(!glob_match(b"a?", b"a"));
        assert!(glob_match(b"*-TLS1", b"Resume-Server-TLS1-TLS1"));
    }

    #[test]
    fn versions_come_from_the_name() {
        assert_eq!(version_of("Resume-Server-NoTickets-TLS1-TLS1-DTLS"), "1.0");
        assert_eq!(version_of("ClientAuth-RSA-Client-TLS13-DTLS-Sync-PackHandshake"), "1.3");
        assert_eq!(version_of("DTLS-TLS12-ECDHE_ECDSA_WITH_AES_128_CBC_SHA256-client"), "1.2");
        assert_eq!(version_of("MinorVersionTolerance-DTLS"), "default (1.3)");
        assert_eq!(version_of("DTLS13-MessageCallback-Client"), "1.3");
    }
}
