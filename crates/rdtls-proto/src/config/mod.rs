//! Connection configuration, shared by clients and servers (as Qt's `QSslConfiguration` is).

use core::fmt;
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::crypto::{CryptoProvider, KxGroup};
use crate::enums::Protocol;
use crate::pki::{CertResolver, CertificateError, CertifiedKey, RootStore, UnixTime};
use crate::suites::{self, CipherSuite};

mod check;
mod key_log;

pub use key_log::{key_log_line, KeyLog};

/// How far ahead of the next expected `message_seq` we buffer by default (BoringSSL uses the
/// same window).
pub(crate) const DEFAULT_MESSAGE_WINDOW: u16 = 8;

/// The key exchange groups of a new configuration, in order of preference: the post-quantum
/// hybrid X25519MLKEM768 first, then X25519, P-256 and P-384 (BoringSSL's default order).
pub const DEFAULT_GROUPS: [KxGroup; 4] =
    [KxGroup::X25519MlKem768, KxGroup::X25519, KxGroup::Secp256r1, KxGroup::Secp384r1];

/// Longest PSK identity we send or accept (RFC 4279 §5.3 asks for at least 128).
pub const MAX_PSK_IDENTITY_LEN: usize = 256;
/// Longest PSK we accept (RFC 4279 §5.3 asks for at least 64).
pub const MAX_PSK_LEN: usize = 256;

/// A pre-shared key and the identity that names it.
#[derive(Clone)]
pub struct PskCredentials {
    /// The identity the client sends (Qt's `QSslPreSharedKeyAuthenticator::identity`).
    pub identity: Vec<u8>,
    /// The key, wiped when dropped.
    pub key: Zeroizing<Vec<u8>>,
}

impl PskCredentials {
    /// Pairs an identity with a key.
    pub fn new(identity: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        Self { identity: identity.into(), key: Zeroizing::new(key.into()) }
    }
}

impl fmt::Debug for PskCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PskCredentials")
            .field("identity", &String::from_utf8_lossy(&self.identity))
            .field("key", &"..")
            .finish()
    }
}

/// A client's PSK callback: given the server's identity hint (if it sent one), returns the
/// identity and key to use, or `None` to abort the handshake. This is Qt's `pskRequired` signal.
pub type ClientPskCallback = dyn Fn(Option<&[u8]>) -> Option<PskCredentials> + Send + Sync;

/// A server's PSK callback: given the client's identity, returns its key, or `None` to refuse
/// it with `unknown_psk_identity`.
pub type ServerPskCallback = dyn Fn(&[u8]) -> Option<Zeroizing<Vec<u8>>> + Send + Sync;

/// Whether the extended master secret (RFC 7627) is required of the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExtendedMasterSecret {
    /// Offer it, and abort the handshake if the peer does not use it (the default).
    #[default]
    Require,
    /// Offer it, and fall back to the RFC 5246 master secret if the peer does not use it.
    Prefer,
}

/// What to do when the peer's certificate chain does not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum VerifyPeer {
    /// Abort the handshake with the matching alert (the default).
    #[default]
    Required,
    /// Pause the handshake in [`HandshakeState::PeerVerificationFailed`](crate::HandshakeState)
    /// with the list of errors; the application ignores them and resumes, or aborts (Qt's QDtls).
    Pause,
    /// Go on, recording the errors for the application to inspect (EdgerOS
    /// `rejectUnauthorized: false`). The connection is encrypted but the peer is unauthenticated.
    Continue,
}

/// Whether a server asks clients for a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// Do not ask (the default).
    #[default]
    None,
    /// Ask; a client without a certificate is accepted, one with a bad certificate is not.
    Optional,
    /// Ask and require a valid certificate.
    Required,
}

/// Returns the current wall-clock time, for certificate validity checks.
pub type TimeProvider = dyn Fn() -> UnixTime + Send + Sync;

/// Configuration for a connection or a server endpoint. Build one with [`Config::builder`].
#[derive(Clone)]
pub struct Config {
    pub(crate) provider: Arc<dyn CryptoProvider>,
    pub(crate) cipher_suites: Vec<&'static CipherSuite>,
    /// The oldest and newest protocol versions allowed.
    pub(crate) versions: (Protocol, Protocol),
    /// DTLS 1.3: 16-bit sequence numbers in our record headers (else 8-bit).
    pub(crate) seq_16: bool,
    /// Connection ID (RFC 9146): the length of the ones we ask peers to send us; `None`: the
    /// extension is not sent.
    pub(crate) cid_len: Option<usize>,
    /// Return routability checks (RFC 9853): offered (client) or accepted (server), with a
    /// connection ID; the `rrc` extension is sent.
    pub(crate) rrc: bool,
    pub(crate) groups: Vec<KxGroup>,
    /// DTLS 1.3 client: the groups of the key shares of the first ClientHello; `None`: the
    /// default strategy ([`Config::key_share_groups`]).
    pub(crate) key_shares: Option<Vec<KxGroup>>,
    pub(crate) client_psk: Option<Arc<ClientPskCallback>>,
    pub(crate) server_psk: Option<Arc<ServerPskCallback>>,
    pub(crate) psk_identity_hint: Option<Vec<u8>>,
    pub(crate) extended_master_secret: ExtendedMasterSecret,
    pub(crate) mtu: usize,
    pub(crate) initial_retransmit: Duration,
    pub(crate) retransmit_jitter: bool,
    pub(crate) max_retransmit: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) cookie_verification: bool,
    pub(crate) cookie_lifetime: Duration,
    pub(crate) cookie_rotation: Duration,
    pub(crate) max_handshake_message: usize,
    pub(crate) max_reassembly_bytes: usize,
    pub(crate) rng_seed: Option<u64>,
    pub(crate) certs: Option<Arc<CertResolver>>,
    pub(crate) client_cert: Option<Arc<CertifiedKey>>,
    pub(crate) roots: Arc<RootStore>,
    pub(crate) verify_peer: VerifyPeer,
    pub(crate) accept_any_server_name: bool,
    pub(crate) client_auth: ClientAuth,
    pub(crate) ignored_errors: Vec<CertificateError>,
    pub(crate) time: Arc<TimeProvider>,
    pub(crate) session_export: bool,
    /// Keep the secret keying-material exports derive from (RFC 5705, RFC 8446 §7.5).
    pub(crate) exporter: bool,
    /// DTLS-SRTP profiles, in order of preference (empty: no `use_srtp`).
    pub(crate) srtp_profiles: Vec<crate::srtp::SrtpProfile>,
    /// ALPN protocols, in order of preference (empty: no ALPN).
    pub(crate) alpn_protocols: Vec<Vec<u8>>,
    /// The positions of `alpn_protocols` ordered by name, made by `build` (a server looks the
    /// client's names up in it).
    pub(crate) alpn_by_name: Vec<u16>,
    /// A server's own ALPN choice (in place of `alpn_protocols`' order).
    pub(crate) alpn_selector: Option<Arc<dyn crate::alpn::AlpnSelector>>,
    pub(crate) max_failed_decryptions: Option<u64>,
    pub(crate) message_window: u16,
    pub(crate) max_records_per_datagram: usize,
    pub(crate) key_log: Option<Arc<dyn KeyLog>>,
    pub(crate) resumption: crate::resumption::Resumption,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("cipher_suites", &self.cipher_suites)
            .field("versions", &self.versions)
            .field("cid_len", &self.cid_len)
            .field("rrc", &self.rrc)
            .field("groups", &self.groups)
            .field("key_shares", &self.key_shares)
            .field("client_psk", &self.client_psk.is_some())
            .field("server_psk", &self.server_psk.is_some())
            .field("psk_identity_hint", &self.psk_identity_hint.as_deref().map(String::from_utf8_lossy))
            .field("extended_master_secret", &self.extended_master_secret)
            .field("mtu", &self.mtu)
            .field("initial_retransmit", &self.initial_retransmit)
            .field("max_retransmit", &self.max_retransmit)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("cookie_verification", &self.cookie_verification)
            .field("certs", &self.certs.as_ref().map(|c| !c.is_empty()))
            .field("client_cert", &self.client_cert.is_some())
            .field("roots", &self.roots.len())
            .field("verify_peer", &self.verify_peer)
            .field("accept_any_server_name", &self.accept_any_server_name)
            .field("client_auth", &self.client_auth)
            .field("key_log", &self.key_log.is_some())
            .field(
                "alpn_protocols",
                &self.alpn_protocols.iter().map(|p| String::from_utf8_lossy(p)).collect::<Vec<_>>(),
            )
            .field("alpn_selector", &self.alpn_selector)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Starts a configuration with the defaults: DTLS 1.2 and 1.3, every suite this crate
    /// implements, groups X25519MLKEM768, X25519, P-256 and P-384 ([`DEFAULT_GROUPS`]),
    /// extended master secret required, MTU 1400, retransmission from 1 s doubling to 60 s, a
    /// 60 s handshake timeout, cookie verification on.
    #[cfg(feature = "aws-lc-rs")]
    pub fn builder() -> ConfigBuilder {
        Self::builder_with_provider(crate::crypto::default_provider())
    }

    /// Starts a configuration that uses `provider` for all cryptography.
    pub fn builder_with_provider(provider: Arc<dyn CryptoProvider>) -> ConfigBuilder {
        let groups = DEFAULT_GROUPS.iter().copied().filter(|g| provider.supports_group(*g)).collect();
        ConfigBuilder {
            config: Self {
                provider,
                cipher_suites: suites::ALL.iter().collect(),
                versions: (Protocol::Dtls1_2, Protocol::Dtls1_3),
                seq_16: true,
                cid_len: None,
                rrc: false,
                groups,
                key_shares: None,
                client_psk: None,
                server_psk: None,
                psk_identity_hint: None,
                extended_master_secret: ExtendedMasterSecret::Require,
                mtu: DEFAULT_MTU,
                initial_retransmit: Duration::from_secs(1),
                retransmit_jitter: true,
                max_retransmit: Duration::from_secs(60),
                handshake_timeout: Duration::from_secs(60),
                cookie_verification: true,
                cookie_lifetime: Duration::from_secs(60),
                cookie_rotation: Duration::from_secs(300),
                max_handshake_message: 16 * 1024,
                max_reassembly_bytes: 32 * 1024,
                rng_seed: None,
                certs: None,
                client_cert: None,
                roots: Arc::new(RootStore::new()),
                verify_peer: VerifyPeer::Required,
                accept_any_server_name: false,
                client_auth: ClientAuth::None,
                ignored_errors: Vec::new(),
                time: Arc::new(UnixTime::now),
                session_export: false,
                exporter: false,
                srtp_profiles: Vec::new(),
                alpn_protocols: Vec::new(),
                alpn_by_name: Vec::new(),
                alpn_selector: None,
                max_failed_decryptions: None,
                message_window: DEFAULT_MESSAGE_WINDOW,
                max_records_per_datagram: crate::record::MAX_RECORDS_PER_DATAGRAM,
                key_log: None,
                resumption: crate::resumption::Resumption::default(),
            },
        }
    }

    /// The cipher suites, in order of preference.
    pub fn cipher_suites(&self) -> &[&'static CipherSuite] {
        &self.cipher_suites
    }

    /// The length of the connection IDs we ask peers for, if any
    /// ([`ConfigBuilder::connection_id`]).
    pub fn connection_id_len(&self) -> Option<usize> {
        self.cid_len
    }

    /// Whether return routability checks are offered or accepted
    /// ([`ConfigBuilder::return_routability_check`]).
    pub fn return_routability_check(&self) -> bool {
        self.rrc
    }

    /// The protocol versions allowed, oldest first.
    pub fn protocol_versions(&self) -> (Protocol, Protocol) {
        self.versions
    }

    /// Whether `version` is allowed and has a cipher suite: whether a client offers it and a
    /// server accepts it.
    pub fn enables(&self, version: Protocol) -> bool {
        (self.versions.0..=self.versions.1).contains(&version) && self.suites_for(version).next().is_some()
    }

    /// How our DTLS 1.3 records' unified headers are written: a length always (records share
    /// datagrams), 16- or 8-bit sequence numbers.
    pub(crate) fn unified_format(&self) -> crate::record::UnifiedFormat {
        crate::record::UnifiedFormat { seq_16: self.seq_16, has_length: true }
    }

    /// The groups DTLS 1.2 can use (the elliptic curves: hybrid groups are DTLS 1.3's), in
    /// order of preference.
    pub(crate) fn groups12(&self) -> impl Iterator<Item = KxGroup> + '_ {
        self.groups.iter().copied().filter(|g| !g.is_hybrid())
    }

    /// The key exchange groups, in order of preference.
    pub fn groups(&self) -> &[KxGroup] {
        &self.groups
    }

    /// The groups a DTLS 1.3 client sends a key share for in its first ClientHello
    /// ([`ConfigBuilder::key_share_groups`]): the configured list, or by default the first
    /// group, and when that is a hybrid group the first elliptic curve too (a server that does
    /// not know the hybrid then needs no HelloRetryRequest). With the default, a ClientHello
    /// that the hybrid share would make larger than the MTU goes with the curve's share alone.
    pub fn key_share_groups(&self) -> Vec<KxGroup> {
        if let Some(list) = &self.key_shares {
            return list.clone();
        }
        let first = self.groups.first().copied();
        let curve = first.filter(|g| g.is_hybrid()).and_then(|_| self.groups12().next());
        first.into_iter().chain(curve).collect()
    }

    /// The configured suites of one protocol version, in order of preference.
    pub(crate) fn suites_for(&self, version: Protocol) -> impl Iterator<Item = &'static CipherSuite> + Clone + '_ {
        self.cipher_suites.iter().copied().filter(move |s| s.protocol() == version)
    }

    /// The server's certificate store, to add SNI certificates while it runs (EdgerOS `addcert`).
    pub fn cert_resolver(&self) -> Option<&Arc<CertResolver>> {
        self.certs.as_ref()
    }

    /// The maximum datagram size used for handshake flights.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// The overall handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Whether servers verify clients with a cookie exchange before keeping any state.
    pub fn cookie_verification(&self) -> bool {
        self.cookie_verification
    }

    /// The crypto provider.
    pub fn provider(&self) -> &Arc<dyn CryptoProvider> {
        &self.provider
    }
}

/// Default maximum datagram size for handshake flights: fits a 1500-byte Ethernet MTU with IPv6,
/// UDP and some tunnel overhead to spare.
pub const DEFAULT_MTU: usize = 1400;
/// Shortest handshake timeout accepted (EdgerOS: 2000 ms).
pub const MIN_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest handshake timeout accepted (EdgerOS: 120000 ms).
pub const MAX_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(120);

/// Smallest MTU we accept: a record header, a handshake header and a few bytes of body must fit.
pub const MIN_MTU: usize = 64;

/// Longest connection ID we ask for ([`ConfigBuilder::connection_id`]). RFC 9146 allows 255
/// bytes; 20 is what QUIC allows, and more than any server needs to route.
pub const MAX_CID_LEN: usize = 20;
// Every ID of ours fits the record layer's stack-built DTLS 1.3 headers.
const _: () = assert!(MAX_CID_LEN <= crate::record::header::SHORT_UNIFIED_CID);

/// Builds a [`Config`], checking every value.
#[derive(Clone, Debug)]
pub struct ConfigBuilder {
    pub(crate) config: Config,
}

impl ConfigBuilder {
    /// The cipher suites to offer (client) or accept (server), in order of preference.
    pub fn cipher_suites(mut self, suites: &[&'static CipherSuite]) -> Self {
        self.config.cipher_suites = suites.to_vec();
        self
    }

    /// The protocol versions to allow, oldest and newest (default: both, DTLS 1.2 and 1.3, as
    /// Qt's `DtlsV1_2OrLater`; `(Dtls1_2, Dtls1_2)` for DTLS 1.2 only). With both,
    /// a client offers DTLS 1.3 and accepts a server that answers with DTLS 1.2, and a server
    /// answers each client in the newest version it offers (and, as RFC 8446 §4.1.3 asks,
    /// marks a DTLS 1.2 answer so that a client offering 1.3 detects a downgrade). Each version
    /// uses the configured suites of its own ([`CipherSuite::is_tls13`]).
    pub fn protocol_versions(mut self, oldest: Protocol, newest: Protocol) -> Self {
        self.config.versions = (oldest, newest);
        self
    }

    /// Connection ID (RFC 9146 for DTLS 1.2, RFC 9147 §9 for 1.3): ask the peer to send its
    /// records with a connection ID of `len` bytes (0 to 20) that we choose, so that they reach
    /// this connection whatever address they come from (a NAT rebinding, a move between
    /// networks). With 0 we ask for ordinary records but still send with the peer's ID if it
    /// asks for one. The length is not on the wire: every connection of an endpoint uses the
    /// same. Both versions negotiate it in the hellos. Default: no connection ID (the extension
    /// is not sent, and a peer's is not answered).
    pub fn connection_id(mut self, len: usize) -> Self {
        self.config.cid_len = Some(len);
        self
    }

    /// Return routability checks (RFC 9853), with a [`connection_id`](Self::connection_id):
    /// offered by a client, accepted by a server (the `rrc` extension). When both agree, a
    /// peer whose records start coming from a new address is not followed there at once: the
    /// [`Endpoint`](crate::Endpoint) sends a `path_challenge` to the new address, follows
    /// only once the answer comes back, and sends there meanwhile no more than three times
    /// what it received from there (the anti-amplification limit). An on-path attacker who
    /// rewrites source addresses cannot then aim our traffic at a victim. Either side answers
    /// the other's challenges. Default: off.
    pub fn return_routability_check(mut self, on: bool) -> Self {
        self.config.rrc = on;
        self
    }

    /// DTLS 1.3: write 8-bit sequence numbers in record headers instead of 16-bit ones (RFC
    /// 9147 §4), one byte less per record. The receiver reconstructs the full number from the
    /// low bits, so with 8 bits fewer than 128 records in a row may be lost or reordered (with
    /// 16, 32,768); use it on links that keep order, to save bytes on constrained networks.
    /// We read both widths whatever this says.
    pub fn short_sequence_numbers(mut self, short: bool) -> Self {
        self.config.seq_16 = !short;
        self
    }

    /// The key exchange groups, in order of preference (default: [`DEFAULT_GROUPS`], those of
    /// them the crypto provider supports). A DTLS 1.3 server picks its first group the client
    /// sent a key share for, or asks with a HelloRetryRequest for its first group the client
    /// supports; when it sends a HelloRetryRequest anyway (for its cookie) it asks for its
    /// first group the client supports, key share or not. DTLS 1.2 uses only the elliptic
    /// curves of the list ([`KxGroup::is_hybrid`]).
    pub fn groups(mut self, groups: &[KxGroup]) -> Self {
        self.config.groups = groups.to_vec();
        self
    }

    /// DTLS 1.3 client: the groups to send a key share for in the first ClientHello, each one
    /// of [`groups`](Self::groups) (empty: none, and the server must ask for one).
    ///
    /// The default is the first group, and when that is a hybrid group the first elliptic
    /// curve as well (as BoringSSL does): a server that knows the hybrid uses it, any other
    /// the curve, neither with a HelloRetryRequest. But a hybrid share is 1,216 bytes, and a
    /// first ClientHello that would not fit one datagram at the MTU then goes with the curve's
    /// share alone: stateless servers that take only an unfragmented first ClientHello
    /// (wolfSSL, Mbed TLS) are reached, and a server that prefers the hybrid asks for it in the
    /// HelloRetryRequest its cookie exchange sends anyway (ours does), so the connection is
    /// post-quantum at no extra round trip. The second ClientHello, with the hybrid share, is
    /// fragmented; its cookie comes first in it. Listing groups here sends exactly those
    /// shares, whatever the MTU.
    pub fn key_share_groups(mut self, groups: &[KxGroup]) -> Self {
        self.config.key_shares = Some(groups.to_vec());
        self
    }

    /// Client side: always use this PSK identity and key.
    pub fn psk(self, identity: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        let creds = PskCredentials::new(identity, key);
        self.psk_callback(move |_hint| Some(creds.clone()))
    }

    /// Client side: choose the PSK identity and key from the server's identity hint.
    pub fn psk_callback(mut self, f: impl Fn(Option<&[u8]>) -> Option<PskCredentials> + Send + Sync + 'static) -> Self {
        self.config.client_psk = Some(Arc::new(f));
        self
    }

    /// Server side: look up the key for a client's PSK identity (`None` refuses the identity).
    pub fn psk_server_callback(
        mut self,
        f: impl Fn(&[u8]) -> Option<Zeroizing<Vec<u8>>> + Send + Sync + 'static,
    ) -> Self {
        self.config.server_psk = Some(Arc::new(f));
        self
    }

    /// Server side: accept every identity with the same key (as Qt's example server does).
    pub fn psk_server_key(self, key: impl Into<Vec<u8>>) -> Self {
        let key = Zeroizing::new(key.into());
        self.psk_server_callback(move |_identity| Some(key.clone()))
    }

    /// Server side: the PSK identity hint sent in ServerKeyExchange.
    pub fn psk_identity_hint(mut self, hint: impl Into<Vec<u8>>) -> Self {
        self.config.psk_identity_hint = Some(hint.into());
        self
    }

    /// Whether the extended master secret is required of the peer.
    pub fn extended_master_secret(mut self, ems: ExtendedMasterSecret) -> Self {
        self.config.extended_master_secret = ems;
        self
    }

    /// The largest datagram a handshake flight may use (Qt's MTU hint). `0` means the default.
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.config.mtu = if mtu == 0 { DEFAULT_MTU } else { mtu };
        self
    }

    /// The first retransmission timeout (default 1 s); it doubles up to `max`.
    pub fn retransmit_timeouts(mut self, initial: Duration, max: Duration) -> Self {
        self.config.initial_retransmit = initial;
        self.config.max_retransmit = max;
        self
    }

    /// Whether retransmission timers get up to 10% of random delay on top of the timeout (on
    /// by default), so that many connections that lost the same datagram do not retransmit in
    /// step. Off, every timer is exactly the timeout, which conformance suites that check
    /// timer values (BoGo) expect.
    pub fn retransmit_jitter(mut self, on: bool) -> Self {
        self.config.retransmit_jitter = on;
        self
    }

    /// The overall handshake timeout: 2 to 120 s (EdgerOS's range), default 60 s.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.handshake_timeout = timeout;
        self
    }

    /// Whether servers require a cookie exchange (HelloVerifyRequest) before keeping any state
    /// for a client (default on; Qt's `setDtlsCookieVerificationEnabled`).
    pub fn cookie_verification(mut self, enabled: bool) -> Self {
        self.config.cookie_verification = enabled;
        self
    }

    /// How long a cookie stays valid (default 60 s) and how often the key that makes cookies
    /// rotates (default 5 min; whole seconds). A cookie stays valid for its lifetime across a
    /// rotation: each period's key is derived from the verifier's seed and the period.
    pub fn cookie_timing(mut self, lifetime: Duration, rotation: Duration) -> Self {
        self.config.cookie_lifetime = lifetime;
        self.config.cookie_rotation = rotation;
        self
    }

    /// Limits on handshake reassembly: the largest handshake message (default 16 KiB) and the
    /// bytes buffered per connection for incomplete or future messages (default 32 KiB).
    pub fn reassembly_limits(mut self, max_message: usize, max_buffered: usize) -> Self {
        self.config.max_handshake_message = max_message;
        self.config.max_reassembly_bytes = max_buffered;
        self
    }

    /// How many handshake messages ahead of the next expected one are buffered (default 8,
    /// 1 to 64); later ones are dropped and come back with the peer's retransmission.
    pub fn message_window(mut self, messages: u16) -> Self {
        self.config.message_window = messages;
        self
    }

    /// Most records handled from one datagram (default and most 32): bounds the work any one
    /// datagram can cause.
    pub fn max_records_per_datagram(mut self, records: usize) -> Self {
        self.config.max_records_per_datagram = records;
        self
    }

    /// Seeds the retransmission jitter so a run can be replayed exactly (tests, simulations).
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.config.rng_seed = Some(seed);
        self
    }

    /// Server side: the certificate and key used when no SNI certificate matches. Call
    /// [`sni_certificate`](Self::sni_certificate) for more.
    pub fn certificate(mut self, key: CertifiedKey) -> Self {
        self.config.certs.get_or_insert_with(Default::default).set_default(key);
        self
    }

    /// Server side: a certificate for one SNI host name (EdgerOS `addcert`).
    pub fn sni_certificate(mut self, name: &str, key: CertifiedKey) -> Self {
        self.config.certs.get_or_insert_with(Default::default).add(name, key);
        self
    }

    /// Server side: a shared certificate store, which can gain certificates while the server
    /// runs.
    pub fn cert_resolver(mut self, resolver: Arc<CertResolver>) -> Self {
        self.config.certs = Some(resolver);
        self
    }

    /// Client side: the certificate and key sent when the server asks for one.
    pub fn client_certificate(mut self, key: CertifiedKey) -> Self {
        self.config.client_cert = Some(Arc::new(key));
        self
    }

    /// The trust anchors that verify the peer's certificate chain (EdgerOS `ca`).
    pub fn root_store(mut self, roots: RootStore) -> Self {
        self.config.roots = Arc::new(roots);
        self
    }

    /// What to do when the peer's chain does not verify (default: abort).
    pub fn verify_peer(mut self, mode: VerifyPeer) -> Self {
        self.config.verify_peer = mode;
        self
    }

    /// Client side: accept a server certificate that chains to a trust anchor whatever name
    /// it is for, when the connection was given no server name. **Dangerous**: any certificate
    /// of any trusted CA then authenticates any server (with [`crate::RootStore`]s holding the
    /// public roots, anyone's). By default a client that verifies a certificate without a name
    /// to check it against fails with [`CertificateError::NoServerName`]; give the name (or the
    /// IP address) the server must prove instead whenever there is one. The socket layer
    /// (`rdtls::Connection::connect` and friends) always has one, the address it connects to,
    /// so this does not apply there; to accept a name mismatch, ignore
    /// [`CertificateError::HostNameMismatch`] instead.
    pub fn danger_accept_any_server_name(mut self, accept: bool) -> Self {
        self.config.accept_any_server_name = accept;
        self
    }

    /// Server side: whether to ask clients for a certificate (default: no).
    pub fn client_auth(mut self, mode: ClientAuth) -> Self {
        self.config.client_auth = mode;
        self
    }

    /// Verification errors to ignore from the start (Qt's `ignoreVerificationErrors` before
    /// the handshake).
    pub fn ignore_verification_errors(mut self, errors: &[CertificateError]) -> Self {
        self.config.ignored_errors = errors.to_vec();
        self
    }

    /// The wall clock for certificate validity (default: the system clock). This is the only
    /// place the core learns the date; tests pin it.
    pub fn time_provider(mut self, now: impl Fn() -> UnixTime + Send + Sync + 'static) -> Self {
        self.config.time = Arc::new(now);
        self
    }

    /// Keeps what [`Connection::export_session`](crate::Connection::export_session) needs to
    /// hand an established connection to another process (EdgerOS `flyAway`). Off by default:
    /// the exported state holds the session's master secret.
    pub fn allow_session_export(mut self, allow: bool) -> Self {
        self.config.session_export = allow;
        self
    }

    /// Keeps, after the handshake, the secret that
    /// [`Connection::export_keying_material`](crate::Connection::export_keying_material)
    /// derives keys for other protocols from (RFC 5705 for DTLS 1.2, RFC 8446 §7.5 for 1.3:
    /// DTLS-SRTP, for one). Off by default: an idle connection then holds no secret beyond its
    /// record keys.
    pub fn keying_material_exporter(mut self, on: bool) -> Self {
        self.config.exporter = on;
        self
    }

    /// Closes a connection once this many records failed authentication under its keys.
    /// Default: RFC 9147 §4.5.3's integrity limits, 2^36 for AES-GCM and ChaCha20-Poly1305 and
    /// 2^23 for AES-CCM; 2^23 for AES-CCM-8 too, for which the RFC leaves the choice to the
    /// implementation. DTLS 1.2 cannot change keys, so reaching the limit ends the connection:
    /// a lower limit bounds forgery more tightly but lets an off-path attacker who knows the
    /// addresses close the connection with fewer forged records (2^16 CCM-8 records are 2 MB).
    pub fn max_failed_decryptions(mut self, limit: u64) -> Self {
        self.config.max_failed_decryptions = Some(limit);
        self
    }
}
