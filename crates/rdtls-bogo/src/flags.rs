//! The runner's command line: every flag BoringSSL's shim knows, what this shim does with it,
//! and the three configurations (first connection, resumptions, retry) it describes.
//!
//! A flag is one of three kinds. *Used* flags change what the shim does or checks. *Ignored*
//! flags have no meaning for this stack (each says why), so a test that sets them runs as if
//! they were absent. *Unimplemented* flags ask for a feature we do not have: the shim exits 89
//! and the runner counts the test as unimplemented, never as passed. A flag this table does not
//! know at all is an error (exit 1), so a flag that upstream adds shows up as a failure.

use std::fmt;

/// How the shim treats a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handling {
    /// Changes what the shim does or checks.
    Used,
    /// Meaningless for this stack; the reason says why.
    Ignored(&'static str),
    /// A feature we do not have: the test is reported as unimplemented.
    Unimplemented,
}

/// One flag of the runner's vocabulary.
#[derive(Debug)]
pub(crate) struct Spec {
    /// The flag, with its leading dash.
    pub(crate) name: &'static str,
    /// Whether the next argument is its value.
    pub(crate) takes_value: bool,
    /// What the shim does with it.
    pub(crate) handling: Handling,
}

const fn used(name: &'static str, takes_value: bool) -> Spec {
    Spec { name, takes_value, handling: Handling::Used }
}

const fn ignored(name: &'static str, takes_value: bool, why: &'static str) -> Spec {
    Spec { name, takes_value, handling: Handling::Ignored(why) }
}

const fn unimpl(name: &'static str, takes_value: bool) -> Spec {
    Spec { name, takes_value, handling: Handling::Unimplemented }
}

const SAME_IO: &str = "our sans-IO core has one I/O path; the runner's asynchronous BIO changes nothing";
const ALWAYS_IMPLICIT: &str = "the shim drives the handshake the same way with or without it";
const VERIFY_CALLBACK: &str = "the shim's verification decision is the same for every callback style";
const NO_DTLS10: &str = "DTLS 1.0 is never offered or accepted";
const NO_RENEGOTIATION: &str = "DTLS renegotiation is never done or accepted";
const NO_EARLY_DATA: &str = "early data is never offered";
const SHIM_ONLY: &str = "affects only BoringSSL's own debugging";

/// Every flag of BoringSSL's `test_config.cc` at the commit `docs/bogo.md` names, sorted by name.
pub(crate) static FLAGS: &[Spec] = &[
    unimpl("-accepted-peer-cert-types", true),
    used("-advertise-alpn", true),
    unimpl("-advertise-empty-npn", false),
    unimpl("-advertise-npn", true),
    unimpl("-allow-false-start-without-alpn", false),
    unimpl("-allow-hint-mismatch", false),
    unimpl("-allow-unknown-alpn-protos", false),
    unimpl("-alps-use-new-codepoint", true),
    unimpl("-application-settings", true),
    ignored("-async", false, SAME_IO),
    unimpl("-available-client-cert-types", true),
    unimpl("-available-trust-anchors", true),
    unimpl("-cbc-record-splitting", false),
    used("-cert-file", true),
    unimpl("-cert-properties", true),
    used("-check-close-notify", false),
    used("-cipher", true),
    unimpl("-cnsa-202407", false),
    unimpl("-cnsa1-202603", false),
    unimpl("-cnsa2-202603", false),
    used("-curves", true),
    unimpl("-curves-flags", true),
    used("-decline-alpn", false),
    unimpl("-decline-ocsp-callback", false),
    unimpl("-defer-alps", false),
    unimpl("-delegated-credential", true),
    used("-dtls", false),
    unimpl("-early-write-after-message", true),
    unimpl("-ech-config-list", true),
    unimpl("-ech-is-retry-config", true),
    unimpl("-ech-server-config", true),
    unimpl("-ech-server-key", true),
    unimpl("-enable-channel-id", false),
    unimpl("-enable-early-data", false),
    unimpl("-enable-ech-grease", false),
    unimpl("-enable-grease", false),
    unimpl("-enable-ocsp-stapling", false),
    unimpl("-enable-signed-cert-timestamps", false),
    unimpl("-expect-accept-early-data", false),
    used("-expect-advertised-alpn", true),
    used("-expect-alpn", true),
    unimpl("-expect-certificate-types", true),
    unimpl("-expect-channel-id", true),
    used("-expect-cipher", true),
    unimpl("-expect-cipher-aes", true),
    unimpl("-expect-cipher-no-aes", true),
    unimpl("-expect-client-ca-list", true),
    unimpl("-expect-curve-id", true),
    unimpl("-expect-early-data-reason", true),
    unimpl("-expect-ech-accept", false),
    unimpl("-expect-ech-name-override", true),
    unimpl("-expect-ech-retry-configs", true),
    used("-expect-extended-master-secret", false),
    used("-expect-hrr", false),
    unimpl("-expect-msg-callback", true),
    unimpl("-expect-next-proto", true),
    unimpl("-expect-no-ech-name-override", false),
    unimpl("-expect-no-ech-retry-configs", false),
    used("-expect-no-hrr", false),
    unimpl("-expect-no-next-proto", false),
    ignored("-expect-no-offer-early-data", false, NO_EARLY_DATA),
    used("-expect-no-peer-cert", false),
    unimpl("-expect-no-peer-match-trust-anchor", false),
    unimpl("-expect-no-secure-renegotiation", false),
    used("-expect-no-server-name", false),
    used("-expect-no-session", false),
    used("-expect-no-session-id", false),
    unimpl("-expect-not-resumable-across-names", false),
    unimpl("-expect-ocsp-response", true),
    unimpl("-expect-peer-application-settings", true),
    unimpl("-expect-peer-available-trust-anchors", true),
    used("-expect-peer-cert-file", true),
    unimpl("-expect-peer-certificate-type", true),
    unimpl("-expect-peer-match-trust-anchor", false),
    unimpl("-expect-peer-rpk-sha256", true),
    unimpl("-expect-peer-signature-algorithm", true),
    unimpl("-expect-peer-verify-pref", true),
    unimpl("-expect-quic-transport-params", true),
    unimpl("-expect-reject-early-data", false),
    unimpl("-expect-resumable-across-names", false),
    unimpl("-expect-secure-renegotiation", false),
    unimpl("-expect-selected-credential", true),
    used("-expect-server-name", true),
    unimpl("-expect-server-sent-requested-padding", false),
    used("-expect-session-id", false),
    used("-expect-session-miss", false),
    unimpl("-expect-sha256-client-cert", false),
    unimpl("-expect-signed-cert-timestamps", true),
    unimpl("-expect-ticket-age-skew", true),
    unimpl("-expect-ticket-renewal", false),
    unimpl("-expect-ticket-supports-early-data", false),
    used("-expect-total-renegotiations", true),
    used("-expect-verify-result", false),
    used("-expect-version", true),
    used("-export-context", true),
    used("-export-keying-material", true),
    used("-export-label", true),
    unimpl("-export-traffic-secrets", false),
    unimpl("-fail-cert-callback", false),
    unimpl("-fail-ddos-callback", false),
    unimpl("-fail-early-callback", false),
    unimpl("-fail-early-callback-ech-rewind", false),
    unimpl("-fail-ocsp-callback", false),
    unimpl("-fallback-scsv", false),
    unimpl("-false-start", false),
    unimpl("-fips-202205", false),
    ignored("-forbid-renegotiation-after-handshake", false, NO_RENEGOTIATION),
    unimpl("-fuzzer-mode", false),
    unimpl("-handshake-hints", false),
    unimpl("-handshake-never-done", false),
    unimpl("-handshake-twice", false),
    unimpl("-handshaker-path", true),
    unimpl("-handshaker-resume", false),
    used("-host-name", true),
    ignored("-implicit-handshake", false, ALWAYS_IMPLICIT),
    used("-initial-timeout-duration-ms", true),
    unimpl("-install-cert-compression-algs", false),
    unimpl("-install-ddos-callback", false),
    unimpl("-install-one-cert-compression-alg", true),
    used("-ipv6", false),
    used("-is-handshaker-supported", false),
    unimpl("-jdk11-workaround", false),
    used("-key-file", true),
    unimpl("-key-shares", true),
    used("-key-update", false),
    used("-key-update-before-read", false),
    unimpl("-max-cert-list", true),
    unimpl("-max-send-fragment", true),
    used("-max-version", true),
    used("-min-version", true),
    used("-mtu", true),
    unimpl("-must-match-issuer", false),
    unimpl("-new-delegated-credential", false),
    unimpl("-new-psk-credential", false),
    unimpl("-new-rpk-credential", false),
    unimpl("-new-spake2plusv1-credential", false),
    unimpl("-new-x509-credential", false),
    unimpl("-no-key-shares", false),
    unimpl("-no-legacy-server-connect", false),
    unimpl("-no-op-extra-handshake", false),
    unimpl("-no-server-name-ack", false),
    used("-no-ticket", false),
    ignored("-no-tls1", false, NO_DTLS10),
    ignored("-no-tls11", false, NO_DTLS10),
    used("-no-tls12", false),
    used("-no-tls13", false),
    unimpl("-ocsp-response", true),
    unimpl("-pake-client-id", true),
    unimpl("-pake-context", true),
    unimpl("-pake-password", true),
    unimpl("-pake-server-id", true),
    unimpl("-partial-write", false),
    ignored(
        "-peek-then-read",
        false,
        "a datagram's plaintext is handed over whole; peeking would return the same bytes",
    ),
    unimpl("-permute-extensions", false),
    used("-port", true),
    unimpl("-private-key-delay-ms", true),
    used("-psk", true),
    used("-psk-identity", true),
    unimpl("-psk-importer-context", true),
    unimpl("-psk-importer-identity", true),
    unimpl("-psk-importer-key", true),
    unimpl("-psk-importer-sha256", false),
    unimpl("-psk-importer-sha384", false),
    used("-quic", false),
    unimpl("-quic-early-data-context", true),
    unimpl("-quic-transport-params", true),
    unimpl("-quic-use-legacy-codepoint", true),
    used("-read-size", true),
    unimpl("-read-with-unfinished-write", false),
    used("-reject-alpn", false),
    unimpl("-reject-unusable-ech-config", false),
    unimpl("-renegotiate-explicit", false),
    unimpl("-renegotiate-freely", false),
    ignored("-renegotiate-ignore", false, NO_RENEGOTIATION),
    unimpl("-renegotiate-once", false),
    unimpl("-renew-ticket", false),
    used("-repeat-shim-initial-write", true),
    unimpl("-request-server-padding", true),
    unimpl("-requested-trust-anchors", true),
    used("-require-any-client-certificate", false),
    used("-resume-count", true),
    unimpl("-resumption-across-names-enabled", false),
    used("-resumption-delay", true),
    unimpl("-retain-only-sha256-client-cert", false),
    unimpl("-reverify-on-resume", false),
    used("-select-alpn", true),
    used("-select-empty-alpn", false),
    unimpl("-select-empty-next-proto", false),
    unimpl("-select-next-proto", true),
    unimpl("-send-alert", false),
    unimpl("-send-channel-id", true),
    used("-server", false),
    unimpl("-server-preference", false),
    unimpl("-server-supported-groups-hint", true),
    unimpl("-server-supports-padding", false),
    unimpl("-set-ocsp-in-callback", false),
    used("-shim-id", true),
    used("-shim-initial-write", true),
    used("-shim-shuts-down", false),
    used("-shim-writes-first", false),
    unimpl("-signed-cert-timestamps", true),
    unimpl("-signing-prefs", true),
    unimpl("-skip-ticket", false),
    used("-srtp-profiles", true),
    unimpl("-ticket-key", true),
    unimpl("-tls-unique", false),
    used("-trust-cert", true),
    unimpl("-use-client-ca-list", true),
    used("-use-custom-verify-callback", false),
    unimpl("-use-early-callback", false),
    used("-use-export-context", false),
    unimpl("-use-exporter-between-reads", false),
    unimpl("-use-ocsp-callback", false),
    ignored("-use-old-client-cert-callback", false, VERIFY_CALLBACK),
    unimpl("-use-ticket-aead-callback", false),
    unimpl("-use-ticket-callback", false),
    used("-verify-fail", false),
    used("-verify-peer", false),
    unimpl("-verify-prefs", true),
    ignored("-wait-for-debugger", false, SHIM_ONLY),
    unimpl("-wpa-202304", false),
    unimpl("-write-different-record-sizes", false),
    used("-write-settings", true),
    unimpl("-wrong-pake-role", false),
];

/// Looks a flag up by name.
pub(crate) fn spec(name: &str) -> Option<&'static Spec> {
    FLAGS.binary_search_by(|s| s.name.cmp(name)).ok().map(|i| &FLAGS[i])
}

/// DTLS wire versions, as `-min-version`, `-max-version` and `-expect-version` give them.
pub(crate) const DTLS1_0: u16 = 0xfeff;
/// DTLS 1.2 on the wire.
pub(crate) const DTLS1_2: u16 = 0xfefd;
/// DTLS 1.3 on the wire.
pub(crate) const DTLS1_3: u16 = 0xfefc;

/// What one connection of a test asks of the shim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TestConfig {
    pub(crate) port: u16,
    pub ipv6: bool,
    pub(crate) shim_id: u64,
    pub(crate) is_server: bool,
    pub(crate) dtls: bool,
    pub(crate) quic: bool,
    pub(crate) resume_count: u32,
    pub(crate) min_version: Option<u16>,
    pub(crate) max_version: Option<u16>,
    pub no_tls12: bool,
    pub no_tls13: bool,
    pub(crate) mtu: Option<u32>,
    pub(crate) initial_timeout_ms: Option<u64>,
    pub(crate) cert_file: Option<String>,
    pub(crate) key_file: Option<String>,
    pub(crate) trust_cert: Option<String>,
    pub(crate) verify_peer: bool,
    pub(crate) verify_fail: bool,
    /// `-use-custom-verify-callback`: a refused chain is reported with certificate_unknown
    /// (BoringSSL's custom callback) rather than handshake_failure (its legacy callback).
    pub(crate) custom_verify_callback: bool,
    pub(crate) require_any_client_certificate: bool,
    pub(crate) expect_verify_result: bool,
    pub(crate) expect_peer_cert_file: Option<String>,
    pub(crate) expect_no_peer_cert: bool,
    pub(crate) psk: Option<Vec<u8>>,
    pub(crate) psk_identity: Option<Vec<u8>>,
    pub(crate) host_name: Option<String>,
    pub(crate) expect_server_name: Option<String>,
    pub(crate) expect_no_server_name: bool,
    pub(crate) curves: Vec<u16>,
    pub(crate) cipher: Option<String>,
    /// `-srtp-profiles`: OpenSSL's colon-separated profile names.
    pub(crate) srtp_profiles: Option<String>,
    /// `-advertise-alpn`: a client's protocols, in the wire format (each with a length byte).
    pub(crate) advertise_alpn: Option<Vec<u8>>,
    /// `-select-alpn`: the protocol a server takes.
    pub(crate) select_alpn: Option<Vec<u8>>,
    /// `-expect-alpn`: the protocol the handshake must agree on.
    pub(crate) expect_alpn: Option<Vec<u8>>,
    /// `-expect-advertised-alpn`: a server's check of the client's offer (wire format).
    pub(crate) expect_advertised_alpn: Option<Vec<u8>>,
    /// `-decline-alpn`, `-reject-alpn`, `-select-empty-alpn`: what a server's callback does.
    pub(crate) decline_alpn: bool,
    pub(crate) reject_alpn: bool,
    pub(crate) select_empty_alpn: bool,
    pub(crate) expect_cipher: Option<u16>,
    pub(crate) expect_version: Option<u16>,
    pub(crate) expect_extended_master_secret: bool,
    pub(crate) expect_hrr: bool,
    pub(crate) expect_no_hrr: bool,
    pub(crate) shim_writes_first: bool,
    pub(crate) shim_initial_write: Option<String>,
    pub(crate) repeat_shim_initial_write: Option<u32>,
    pub(crate) shim_shuts_down: bool,
    pub(crate) check_close_notify: bool,
    pub(crate) export_keying_material: usize,
    pub(crate) export_label: String,
    pub(crate) export_context: String,
    pub(crate) use_export_context: bool,
    pub(crate) expect_session_miss: bool,
    pub(crate) expect_session_id: bool,
    pub(crate) expect_no_session_id: bool,
    pub(crate) expect_no_session: bool,
    pub(crate) no_ticket: bool,
    pub(crate) key_update: bool,
    pub(crate) key_update_before_read: bool,
    pub(crate) read_size: Option<usize>,
    pub(crate) resumption_delay_secs: u64,
    pub(crate) expect_total_renegotiations: u32,
    pub(crate) write_settings: Option<String>,
}

/// The whole command line: the first connection's configuration, the resumptions', and the
/// retry's (`-on-initial-`, `-on-resume-` and `-on-retry-` flags apply to one of them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub(crate) initial: TestConfig,
    pub(crate) resume: TestConfig,
    pub(crate) retry: TestConfig,
    /// `-is-handshaker-supported`: answer `No` and exit.
    pub(crate) is_handshaker_supported: bool,
    /// The unimplemented flags the command line used (the test is then unimplemented).
    pub(crate) unimplemented: Vec<String>,
}

/// Why a command line was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// A flag this shim does not know at all.
    Unknown(String),
    /// A flag that takes a value ended the command line.
    MissingValue(String),
    /// A value that does not parse.
    BadValue { flag: String, value: String },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(flag) => write!(f, "unknown flag: {flag}"),
            Self::MissingValue(flag) => write!(f, "flag {flag} needs a value"),
            Self::BadValue { flag, value } => write!(f, "bad value for {flag}: {value:?}"),
        }
    }
}

/// Which of the three configurations a flag applies to.
#[derive(Clone, Copy)]
enum Scope {
    All,
    Initial,
    Resume,
    Retry,
}

impl Flags {
    /// Parses the runner's arguments (without the program name).
    pub(crate) fn parse<S: AsRef<str>>(args: &[S]) -> Result<Self, ParseError> {
        let mut flags = Self::default();
        let mut args = args.iter().map(AsRef::as_ref);
        while let Some(arg) = args.next() {
            // `-on-shim` flags are for the shim (as opposed to the split handshaker, which we
            // do not have); `-on-handshaker` flags are for the handshaker alone.
            let (arg, for_handshaker) = match (arg.strip_prefix("-on-shim"), arg.strip_prefix("-on-handshaker")) {
                (Some(rest), _) => (rest, false),
                (_, Some(rest)) => (rest, true),
                _ => (arg, false),
            };
            let (name, scope) = if let Some(rest) = arg.strip_prefix("-on-initial") {
                (rest, Scope::Initial)
            } else if let Some(rest) = arg.strip_prefix("-on-resume") {
                (rest, Scope::Resume)
            } else if let Some(rest) = arg.strip_prefix("-on-retry") {
                (rest, Scope::Retry)
            } else {
                (arg, Scope::All)
            };
            let spec = spec(name).ok_or_else(|| ParseError::Unknown(arg.to_owned()))?;
            let value = if spec.takes_value {
                Some(args.next().ok_or_else(|| ParseError::MissingValue(arg.to_owned()))?)
            } else {
                None
            };
            if for_handshaker {
                continue;
            }
            match spec.handling {
                Handling::Ignored(_) => {}
                Handling::Unimplemented => flags.unimplemented.push(arg.to_owned()),
                Handling::Used if name == "-is-handshaker-supported" => flags.is_handshaker_supported = true,
                Handling::Used => {
                    let targets: &mut [&mut TestConfig] = match scope {
                        Scope::All => &mut [&mut flags.initial, &mut flags.resume, &mut flags.retry],
                        Scope::Initial => &mut [&mut flags.initial],
                        Scope::Resume => &mut [&mut flags.resume],
                        Scope::Retry => &mut [&mut flags.retry],
                    };
                    for config in targets.iter_mut() {
                        config.apply(name, value)?;
                    }
                }
            }
        }
        Ok(flags)
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, ParseError> {
    value.parse().map_err(|_| ParseError::BadValue { flag: flag.to_owned(), value: value.to_owned() })
}

impl TestConfig {
    /// Sets what a used flag says. `value` is present exactly when the flag takes one.
    fn apply(&mut self, name: &str, value: Option<&str>) -> Result<(), ParseError> {
        let v = value.unwrap_or_default();
        match name {
            "-port" => self.port = number(name, v)?,
            "-ipv6" => self.ipv6 = true,
            "-shim-id" => self.shim_id = number(name, v)?,
            "-server" => self.is_server = true,
            "-dtls" => self.dtls = true,
            "-quic" => self.quic = true,
            "-resume-count" => self.resume_count = number(name, v)?,
            "-min-version" => self.min_version = Some(number(name, v)?),
            "-max-version" => self.max_version = Some(number(name, v)?),
            "-no-tls12" => self.no_tls12 = true,
            "-no-tls13" => self.no_tls13 = true,
            "-mtu" => self.mtu = Some(number(name, v)?),
            "-initial-timeout-duration-ms" => self.initial_timeout_ms = Some(number(name, v)?),
            "-cert-file" => self.cert_file = Some(v.to_owned()),
            "-key-file" => self.key_file = Some(v.to_owned()),
            "-trust-cert" => self.trust_cert = Some(v.to_owned()),
            "-verify-peer" => self.verify_peer = true,
            "-verify-fail" => self.verify_fail = true,
            "-use-custom-verify-callback" => self.custom_verify_callback = true,
            "-require-any-client-certificate" => self.require_any_client_certificate = true,
            "-expect-verify-result" => self.expect_verify_result = true,
            "-expect-peer-cert-file" => self.expect_peer_cert_file = Some(v.to_owned()),
            "-expect-no-peer-cert" => self.expect_no_peer_cert = true,
            "-psk" => self.psk = Some(v.as_bytes().to_vec()),
            "-psk-identity" => self.psk_identity = Some(v.as_bytes().to_vec()),
            "-host-name" => self.host_name = Some(v.to_owned()),
            "-expect-server-name" => self.expect_server_name = Some(v.to_owned()),
            "-expect-no-server-name" => self.expect_no_server_name = true,
            "-curves" => self.curves.push(number(name, v)?),
            "-cipher" => self.cipher = Some(v.to_owned()),
            "-srtp-profiles" => self.srtp_profiles = Some(v.to_owned()),
            "-advertise-alpn" => self.advertise_alpn = Some(v.as_bytes().to_vec()),
            "-select-alpn" => self.select_alpn = Some(v.as_bytes().to_vec()),
            "-expect-alpn" => self.expect_alpn = Some(v.as_bytes().to_vec()),
            "-expect-advertised-alpn" => self.expect_advertised_alpn = Some(v.as_bytes().to_vec()),
            "-decline-alpn" => self.decline_alpn = true,
            "-reject-alpn" => self.reject_alpn = true,
            "-select-empty-alpn" => self.select_empty_alpn = true,
            "-expect-cipher" => self.expect_cipher = Some(number(name, v)?),
            "-expect-version" => self.expect_version = Some(number(name, v)?),
            "-expect-extended-master-secret" => self.expect_extended_master_secret = true,
            "-expect-hrr" => self.expect_hrr = true,
            "-expect-no-hrr" => self.expect_no_hrr = true,
            "-shim-writes-first" => self.shim_writes_first = true,
            "-shim-initial-write" => self.shim_initial_write = Some(v.to_owned()),
            "-repeat-shim-initial-write" => self.repeat_shim_initial_write = Some(number(name, v)?),
            "-shim-shuts-down" => self.shim_shuts_down = true,
            "-check-close-notify" => self.check_close_notify = true,
            "-export-keying-material" => self.export_keying_material = number(name, v)?,
            "-export-label" => self.export_label = v.to_owned(),
            "-export-context" => self.export_context = v.to_owned(),
            "-use-export-context" => self.use_export_context = true,
            "-expect-session-miss" => self.expect_session_miss = true,
            "-expect-session-id" => self.expect_session_id = true,
            "-expect-no-session-id" => self.expect_no_session_id = true,
            "-expect-no-session" => self.expect_no_session = true,
            "-no-ticket" => self.no_ticket = true,
            "-key-update" => self.key_update = true,
            "-key-update-before-read" => self.key_update_before_read = true,
            "-read-size" => self.read_size = Some(number(name, v)?),
            "-resumption-delay" => self.resumption_delay_secs = number(name, v)?,
            "-expect-total-renegotiations" => self.expect_total_renegotiations = number(name, v)?,
            "-write-settings" => self.write_settings = Some(v.to_owned()),
            // The table and this match are kept in step by a unit test.
            _ => return Err(ParseError::Unknown(name.to_owned())),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_without_duplicates() {
        for pair in FLAGS.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} before {}", pair[0].name, pair[1].name);
        }
    }

    #[test]
    fn every_used_flag_is_applied() {
        for s in FLAGS.iter().filter(|s| s.handling == Handling::Used) {
            let mut config = TestConfig::default();
            if s.name == "-is-handshaker-supported" {
                continue;
            }
            let value = s.takes_value.then_some("1");
            assert_eq!(config.apply(s.name, value), Ok(()), "{}", s.name);
            assert_ne!(config, TestConfig::default(), "{} changed nothing", s.name);
        }
    }

    #[test]
    fn every_ignored_flag_says_why() {
        for s in FLAGS {
            if let Handling::Ignored(why) = s.handling {
                assert!(why.len() > 10, "{}", s.name);
            }
        }
    }

    #[test]
    fn a_typical_server_command_line() {
        let args = [
            "-port",
            "4433",
            "-shim-id",
            "7",
            "-ipv6",
            "-server",
            "-dtls",
            "-resume-count",
            "1",
            "-cert-file",
            "c.pem",
            "-key-file",
            "k.pem",
            "-async",
            "-mtu",
            "256",
            "-curves",
            "29",
            "-curves",
            "23",
        ];
        let flags = Flags::parse(&args).unwrap();
        let c = &flags.initial;
        assert_eq!((c.port, c.shim_id, c.ipv6, c.is_server, c.dtls), (4433, 7, true, true, true));
        assert_eq!((c.resume_count, c.mtu, c.curves.as_slice()), (1, Some(256), &[29, 23][..]));
        assert_eq!(c.cert_file.as_deref(), Some("c.pem"));
        assert_eq!(flags.initial, flags.resume);
        assert!(flags.unimplemented.is_empty());
    }

    #[test]
    fn prefixes_pick_the_connection() {
        let args = ["-on-resume-expect-session-miss", "-on-initial-mtu", "300", "-on-retry-psk", "x"];
        let flags = Flags::parse(&args).unwrap();
        assert!(flags.resume.expect_session_miss && !flags.initial.expect_session_miss);
        assert_eq!((flags.initial.mtu, flags.resume.mtu), (Some(300), None));
        assert_eq!((flags.retry.psk.as_deref(), flags.initial.psk.as_deref()), (Some(&b"x"[..]), None));
    }

    #[test]
    fn handshaker_flags_are_skipped_with_their_values() {
        let args = ["-on-handshaker-mtu", "300", "-on-shim-mtu", "400", "-on-handshaker-verify-prefs", "1027"];
        let flags = Flags::parse(&args).unwrap();
        assert_eq!(flags.initial.mtu, Some(400));
        assert!(flags.unimplemented.is_empty());
    }

    #[test]
    fn unimplemented_flags_are_collected_and_unknown_flags_refused() {
        let flags = Flags::parse(&["-signed-cert-timestamps", "AAAA", "-async"]).unwrap();
        assert_eq!(flags.unimplemented, ["-signed-cert-timestamps"]);
        assert_eq!(Flags::parse(&["-no-such-flag"]), Err(ParseError::Unknown("-no-such-flag".into())));
        assert_eq!(
            Flags::parse(&["-on-resume-no-such-flag"]),
            Err(ParseError::Unknown("-on-resume-no-such-flag".into()))
        );
        assert_eq!(Flags::parse(&["-mtu"]), Err(ParseError::MissingValue("-mtu".into())));
        assert_eq!(
            Flags::parse(&["-mtu", "big"]),
            Err(ParseError::BadValue { flag: "-mtu".into(), value: "big".into() })
        );
    }
}
