//! The checks [`ConfigBuilder::build`] runs before a configuration is used.

use super::{ClientAuth, Config, ConfigBuilder, VerifyPeer, MAX_CID_LEN, MAX_PSK_IDENTITY_LEN, MIN_MTU};
use super::{MAX_HANDSHAKE_TIMEOUT, MIN_HANDSHAKE_TIMEOUT};
use crate::enums::Protocol;

/// Whether an item of a configured list comes twice (the lists are short: quadratic is fine).
fn listed_twice<T: PartialEq>(list: &[T]) -> bool {
    list.iter().enumerate().any(|(i, x)| list[..i].contains(x))
}

impl ConfigBuilder {
    /// Checks the values and returns the configuration.
    pub fn build(self) -> Result<Config, crate::Error> {
        use crate::Error::Config as E;
        let c = &self.config;
        if c.cipher_suites.is_empty() {
            return Err(E("no cipher suites"));
        }
        if c.versions.0 > c.versions.1 {
            return Err(E("the oldest protocol version is newer than the newest"));
        }
        if ![Protocol::Dtls1_2, Protocol::Dtls1_3].iter().any(|v| c.enables(*v)) {
            return Err(E("no cipher suite of an allowed protocol version"));
        }
        if c.cipher_suites.iter().any(|s| !c.provider.supports_aead(s.aead)) {
            return Err(E("a cipher suite's AEAD is not supported by the crypto provider"));
        }
        if c.cipher_suites.iter().any(|s| s.key_exchange.uses_ecdhe()) && c.groups.is_empty() {
            return Err(E("ECDHE suites need at least one group"));
        }
        if c.groups.iter().any(|g| !c.provider.supports_group(*g)) {
            return Err(E("a group is not supported by the crypto provider"));
        }
        if listed_twice(&c.srtp_profiles) {
            return Err(E("an SRTP protection profile is listed twice"));
        }
        crate::alpn::check_protocols(&c.alpn_protocols)?;
        if listed_twice(&c.alpn_protocols) {
            return Err(E("an ALPN protocol is listed twice"));
        }
        if listed_twice(&c.groups) {
            return Err(E("a group is listed twice"));
        }
        if let Some(shares) = &c.key_shares {
            if shares.iter().any(|g| !c.groups.contains(g)) {
                return Err(E("a key share group is not one of the configured groups"));
            }
            if listed_twice(shares) {
                return Err(E("a key share group is listed twice"));
            }
        }
        if c.cid_len.is_some_and(|n| n > MAX_CID_LEN) {
            return Err(E("a connection ID is at most 20 bytes"));
        }
        if c.rrc && c.cid_len.is_none() {
            return Err(E("return routability checks need a connection ID (RFC 9853 §3)"));
        }
        if c.mtu < MIN_MTU || c.mtu > 65_507 {
            return Err(E("MTU must be between 64 and 65507 bytes"));
        }
        if c.initial_retransmit.is_zero() || c.max_retransmit < c.initial_retransmit {
            return Err(E("retransmission timeouts must be non-zero and initial <= max"));
        }
        if !(MIN_HANDSHAKE_TIMEOUT..=MAX_HANDSHAKE_TIMEOUT).contains(&c.handshake_timeout) {
            return Err(E("handshake timeout must be between 2 and 120 seconds"));
        }
        if c.cookie_lifetime.is_zero() || c.cookie_rotation.is_zero() {
            return Err(E("cookie lifetime and rotation must be non-zero"));
        }
        if !(1..=64).contains(&c.message_window) {
            return Err(E("the message window must be between 1 and 64 messages"));
        }
        if !(1..=crate::record::MAX_RECORDS_PER_DATAGRAM).contains(&c.max_records_per_datagram) {
            return Err(E("records per datagram must be between 1 and 32"));
        }
        if c.max_handshake_message < 256 || c.max_reassembly_bytes < c.max_handshake_message {
            return Err(E("reassembly limits must allow a 256-byte message and hold the largest message"));
        }
        if c.client_auth != ClientAuth::None && c.roots.is_empty() && c.verify_peer == VerifyPeer::Required {
            return Err(E("client authentication needs trust anchors to verify client certificates"));
        }
        if let Some(hint) = &c.psk_identity_hint {
            if hint.len() > MAX_PSK_IDENTITY_LEN {
                return Err(E("PSK identity hint too long"));
            }
        }
        let mut config = self.config;
        config.resumption.finish(&*config.provider)?;
        config.alpn_by_name = crate::alpn::by_name(&config.alpn_protocols);
        Ok(config)
    }
}
