//! The key log (NSS format, for Wireshark): the hook a configuration writes each connection's
//! secrets to, and the format of its lines.

use core::fmt;
use std::sync::Arc;

use super::ConfigBuilder;

impl ConfigBuilder {
    /// Writes each connection's secrets to `key_log`, in the NSS key log format Wireshark reads
    /// (`SSLKEYLOGFILE`). **A debugging aid that defeats the encryption**: anyone who reads the
    /// log decrypts every recorded connection. Off by default. The `rdtls` crate's `KeyLogFile`
    /// writes the format to a file.
    pub fn key_log(mut self, key_log: Arc<dyn KeyLog>) -> Self {
        self.config.key_log = Some(key_log);
        self
    }
}

/// Receives the secrets of each connection, for debugging with Wireshark (see
/// [`ConfigBuilder::key_log`]). Implementations write lines of the NSS key log format:
/// `<label> <client_random in hex> <secret in hex>`.
pub trait KeyLog: Send + Sync + fmt::Debug {
    /// A secret of the connection whose ClientHello carried `client_random`. DTLS 1.2 logs its
    /// master secret with the label `CLIENT_RANDOM`; DTLS 1.3 logs its traffic secrets
    /// (`CLIENT_HANDSHAKE_TRAFFIC_SECRET`, `SERVER_HANDSHAKE_TRAFFIC_SECRET`,
    /// `CLIENT_TRAFFIC_SECRET_0`, `SERVER_TRAFFIC_SECRET_0`).
    fn log(&self, label: &str, client_random: &[u8; 32], secret: &[u8]);
}

/// One line of the NSS key log format, newline included.
pub fn key_log_line(label: &str, client_random: &[u8; 32], secret: &[u8]) -> String {
    use core::fmt::Write;
    let mut line = String::with_capacity(label.len() + 2 + 2 * (32 + secret.len()) + 1);
    line.push_str(label);
    line.push(' ');
    for b in client_random {
        let _ = write!(line, "{b:02x}");
    }
    line.push(' ');
    for b in secret {
        let _ = write!(line, "{b:02x}");
    }
    line.push('\n');
    line
}
