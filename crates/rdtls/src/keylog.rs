//! A key log file for Wireshark: each connection's secrets in the NSS key log format
//! (`SSLKEYLOGFILE`), so that a capture of the traffic can be decrypted.
//!
//! **A debugging aid that defeats the encryption**: anyone who reads the file decrypts every
//! connection it recorded. Never enable it in production; the file is created readable by its
//! owner only.
//!
//! ```no_run
//! use rdtls::{Config, KeyLogFile};
//!
//! let mut builder = Config::builder().psk("client1", b"secret".to_vec());
//! // Only when the environment asks for it.
//! if let Some(log) = KeyLogFile::from_env()? {
//!     builder = builder.key_log(log);
//! }
//! let config = builder.build()?;
//! # let _ = config;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rdtls_proto::{key_log_line, KeyLog};

use crate::lock;

/// The environment variable Wireshark, browsers and TLS libraries read the key log path from.
pub const SSLKEYLOGFILE: &str = "SSLKEYLOGFILE";

/// Appends each connection's secrets to a file, one NSS key log line each (see the
/// [module](crate::keylog)). Give it to [`ConfigBuilder::key_log`](rdtls_proto::ConfigBuilder::key_log).
#[derive(Debug)]
pub struct KeyLogFile {
    path: PathBuf,
    file: Mutex<File>,
    /// A write failed once (reported once, not for every connection).
    failed: AtomicBool,
}

impl KeyLogFile {
    /// Opens `path` for appending, creating it (owner-only permissions on Unix) if needed.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Arc<Self>> {
        let path = path.as_ref().to_path_buf();
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot open the key log {}: {e}", path.display())))?;
        tracing::warn!(path = %path.display(), "writing connection secrets to a key log: anyone who reads it decrypts the traffic");
        Ok(Arc::new(Self { path, file: Mutex::new(file), failed: AtomicBool::new(false) }))
    }

    /// The file `SSLKEYLOGFILE` names, opened as [`create`](Self::create) does; `None` when
    /// the variable is unset or empty.
    pub fn from_env() -> io::Result<Option<Arc<Self>>> {
        match std::env::var_os(SSLKEYLOGFILE) {
            Some(path) if !path.is_empty() => Self::create(path).map(Some),
            _ => Ok(None),
        }
    }

    /// Where the secrets go.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl KeyLog for KeyLogFile {
    fn log(&self, label: &str, client_random: &[u8; 32], secret: &[u8]) {
        let line = key_log_line(label, client_random, secret);
        // One write per line: concurrent connections never interleave within a line.
        let written = lock(&self.file).write_all(line.as_bytes());
        if let Err(e) = written {
            if !self.failed.swap(true, Ordering::Relaxed) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot write to the key log");
            }
        }
    }
}
