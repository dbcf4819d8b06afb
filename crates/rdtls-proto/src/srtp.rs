//! DTLS-SRTP (RFC 5764): the `use_srtp` extension that agrees on an SRTP protection profile in
//! the handshake, and the keying material SRTP takes from the connection's exporter
//! (label `EXTRACTOR-dtls_srtp`). This is how WebRTC keys its media.
//!
//! A client offers the profiles of [`ConfigBuilder::srtp_profiles`](crate::ConfigBuilder::srtp_profiles),
//! in its order of preference; a server configured with profiles picks the first of its own
//! list that the client offered (none in common: the handshake goes on without SRTP, and
//! [`Connection::srtp_profile`](crate::Connection::srtp_profile) says `None`). Master key
//! identifiers are not used: a client offers none, and a server answers an offered one with
//! none (RFC 5764 §4.1.3). The extension is carried by DTLS 1.2's hellos and by DTLS 1.3's
//! ClientHello and EncryptedExtensions.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use rdtls_proto::srtp::SrtpProfile;
//! use rdtls_proto::{Config, Connection};
//!
//! let profiles = [SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmHmacSha1_80];
//! let client = Config::builder().psk("cam", b"key".to_vec()).srtp_profiles(&profiles).build()?;
//! let server = Config::builder()
//!     .psk_server_key(b"key".to_vec())
//!     .srtp_profiles(&[SrtpProfile::Aes128CmHmacSha1_80])
//!     .cookie_verification(false)
//!     .build()?;
//! let now = Instant::now();
//! let (mut client, mut server) =
//!     (Connection::client(Arc::new(client), now)?, Connection::server(Arc::new(server), now)?);
//! let mut buf = Vec::new();
//! while !client.is_established() || !server.is_established() {
//!     while client.poll_transmit(&mut buf).is_some() {
//!         server.handle_datagram(now, &mut buf)?;
//!     }
//!     while server.poll_transmit(&mut buf).is_some() {
//!         client.handle_datagram(now, &mut buf)?;
//!     }
//! }
//! assert_eq!(client.srtp_profile(), Some(SrtpProfile::Aes128CmHmacSha1_80));
//! let keys = client.srtp_keying_material()?;
//! assert_eq!(keys.client_master_key().len(), 16);
//! assert_eq!(keys.client_master_salt().len(), 14);
//! // The server derives the same keys.
//! assert_eq!(keys, server.srtp_keying_material()?);
//! # Ok::<(), rdtls_proto::Error>(())
//! ```

use core::fmt;
use core::str::FromStr;

use crate::codec::{Put, Reader};
use crate::enums::AlertDescription;
use crate::error::Error;
use crate::{Config, ConfigBuilder};

/// The exporter label of DTLS-SRTP's keying material (RFC 5764 §4.2).
pub const EXPORTER_LABEL: &[u8] = b"EXTRACTOR-dtls_srtp";

/// An SRTP protection profile (RFC 5764 §4.1.2, RFC 7714 §14.2): the SRTP cipher and
/// authentication, and the sizes of the master key and salt the handshake exports for it.
/// The NULL-cipher profiles of RFC 5764 are not offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SrtpProfile {
    /// `SRTP_AES128_CM_HMAC_SHA1_80` (0x0001): AES-128 counter mode, 80-bit HMAC-SHA1 tag.
    Aes128CmHmacSha1_80,
    /// `SRTP_AES128_CM_HMAC_SHA1_32` (0x0002): AES-128 counter mode, 32-bit HMAC-SHA1 tag.
    Aes128CmHmacSha1_32,
    /// `SRTP_AEAD_AES_128_GCM` (0x0007, RFC 7714).
    AeadAes128Gcm,
    /// `SRTP_AEAD_AES_256_GCM` (0x0008, RFC 7714).
    AeadAes256Gcm,
}

impl SrtpProfile {
    /// Every profile this stack knows, most preferred first (the AEAD ones, then the older
    /// counter-mode ones).
    pub const ALL: [Self; 4] =
        [Self::AeadAes128Gcm, Self::AeadAes256Gcm, Self::Aes128CmHmacSha1_80, Self::Aes128CmHmacSha1_32];

    /// The profile's code point in `use_srtp`.
    pub const fn code_point(self) -> u16 {
        match self {
            Self::Aes128CmHmacSha1_80 => 0x0001,
            Self::Aes128CmHmacSha1_32 => 0x0002,
            Self::AeadAes128Gcm => 0x0007,
            Self::AeadAes256Gcm => 0x0008,
        }
    }

    /// The profile with this code point, if this stack knows it.
    pub fn from_code_point(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code_point() == code)
    }

    /// The profile's IANA name (`SRTP_AES128_CM_HMAC_SHA1_80`...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes128CmHmacSha1_80 => "SRTP_AES128_CM_HMAC_SHA1_80",
            Self::Aes128CmHmacSha1_32 => "SRTP_AES128_CM_HMAC_SHA1_32",
            Self::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }

    /// The name OpenSSL, GnuTLS and BoringSSL use for it where it differs from the IANA one
    /// (`SRTP_AES128_CM_SHA1_80`...).
    const fn short_name(self) -> &'static str {
        match self {
            Self::Aes128CmHmacSha1_80 => "SRTP_AES128_CM_SHA1_80",
            Self::Aes128CmHmacSha1_32 => "SRTP_AES128_CM_SHA1_32",
            Self::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }

    /// Bytes of each side's SRTP master key.
    pub const fn master_key_len(self) -> usize {
        match self {
            Self::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Bytes of each side's SRTP master salt.
    pub const fn master_salt_len(self) -> usize {
        match self {
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 12,
            _ => 14,
        }
    }
}

impl fmt::Display for SrtpProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A profile name [`SrtpProfile::from_str`] does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownSrtpProfile(pub String);

impl fmt::Display for UnknownSrtpProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = SrtpProfile::ALL.iter().map(|p| p.name()).collect();
        write!(f, "unknown SRTP protection profile {:?} (known: {})", self.0, known.join(", "))
    }
}

impl std::error::Error for UnknownSrtpProfile {}

impl FromStr for SrtpProfile {
    type Err = UnknownSrtpProfile;

    /// The IANA name, or OpenSSL's shorter one (`SRTP_AES128_CM_SHA1_80`), in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s) || p.short_name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownSrtpProfile(s.to_owned()))
    }
}

/// The body of a `use_srtp` extension (RFC 5764 §4.1.1): the profiles' code points, and the
/// SRTP master key identifier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UseSrtp {
    /// Code points, in the sender's order (a server's answer has exactly one).
    pub profiles: Vec<u16>,
    /// `srtp_mki` (0–255 bytes).
    pub mki: Vec<u8>,
}

impl UseSrtp {
    /// Parses the extension's body: a non-empty list of 2-byte code points, then the MKI,
    /// and nothing after.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let mut r = Reader::new(body);
        let list = r.vec16()?;
        if list.is_empty() || list.len() % 2 != 0 {
            return None;
        }
        let mki = r.vec8()?.to_vec();
        r.finish()?;
        Some(Self { profiles: list.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect(), mki })
    }

    /// Appends the extension's body. The fields must fit their lengths on the wire: at most
    /// 32,767 profiles and an MKI of at most 255 bytes (what [`parse`](Self::parse) returns
    /// always does).
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_len16(|b| self.profiles.iter().for_each(|p| b.put_u16(*p)));
        out.put_vec8(&self.mki);
    }

    /// A client's offer of `profiles`, with no MKI.
    pub(crate) fn offer(profiles: &[SrtpProfile]) -> Option<Self> {
        (!profiles.is_empty())
            .then(|| Self { profiles: profiles.iter().map(|p| p.code_point()).collect(), mki: Vec::new() })
    }

    /// A server's answer to `offered`: the first of `ours` the client offered, with no MKI
    /// (we use none, RFC 5764 §4.1.3). `None` when nothing is in common or the client sent no
    /// offer: the handshake goes on without SRTP.
    pub(crate) fn answer(offered: Option<&Self>, ours: &[SrtpProfile]) -> Option<(Self, SrtpProfile)> {
        let offered = offered?;
        let chosen = ours.iter().copied().find(|p| offered.profiles.contains(&p.code_point()))?;
        Some((Self { profiles: vec![chosen.code_point()], mki: Vec::new() }, chosen))
    }

    /// A client's check of the server's answer to its offer of `ours`: one profile, one we
    /// offered, and no MKI (we offered none). Otherwise illegal_parameter (RFC 5764 §4.1.1,
    /// §4.1.3).
    pub(crate) fn check_answer(&self, ours: &[SrtpProfile]) -> Result<SrtpProfile, Error> {
        let chosen = match self.profiles[..] {
            [one] => ours.iter().copied().find(|p| p.code_point() == one),
            _ => None,
        };
        match chosen {
            Some(p) if self.mki.is_empty() => Ok(p),
            _ => Err(Error::PeerMisbehaved {
                alert: AlertDescription::ILLEGAL_PARAMETER,
                reason: "server chose an SRTP profile or MKI we did not offer",
            }),
        }
    }
}

impl ConfigBuilder {
    /// Offers DTLS-SRTP (RFC 5764) with these protection profiles, most preferred first: a
    /// client offers them in this order, a server picks the first of them the client offered.
    /// Keeps the secret SRTP's keys are exported from, as
    /// [`keying_material_exporter`](Self::keying_material_exporter) does (for
    /// [`Connection::srtp_keying_material`](crate::Connection::srtp_keying_material) alone,
    /// unless that is on too: connections that agree on no profile keep nothing). Default:
    /// none. Each profile at most once.
    pub fn srtp_profiles(mut self, profiles: &[SrtpProfile]) -> Self {
        self.config.srtp_profiles = profiles.to_vec();
        self
    }
}

impl Config {
    /// The SRTP protection profiles offered or accepted, most preferred first.
    pub fn srtp_profiles(&self) -> &[SrtpProfile] {
        &self.srtp_profiles
    }

    /// Whether connections may keep the secret keying-material exports derive from after the
    /// handshake: for [`Connection::export_keying_material`](crate::Connection::export_keying_material),
    /// or for DTLS-SRTP's keys if a profile is agreed on (each connection decides).
    pub(crate) fn may_keep_exporter_secret(&self) -> bool {
        self.exporter || !self.srtp_profiles.is_empty()
    }
}

/// The SRTP keying material of a connection (RFC 5764 §4.2): each side's master key and salt,
/// for the profile the handshake agreed on. Wiped when dropped. Its equality compares the keys
/// in variable time: for tests, not for checking a secret against an attacker's guess.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeyingMaterial {
    profile: SrtpProfile,
    /// `client_key ‖ server_key ‖ client_salt ‖ server_salt`, as exported.
    bytes: zeroize::Zeroizing<Vec<u8>>,
}

impl fmt::Debug for SrtpKeyingMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpKeyingMaterial").field("profile", &self.profile).finish_non_exhaustive()
    }
}

impl SrtpKeyingMaterial {
    /// The material for `profile`, from an export of `2 × (key + salt)` bytes.
    pub(crate) fn new(profile: SrtpProfile, bytes: zeroize::Zeroizing<Vec<u8>>) -> Self {
        debug_assert_eq!(bytes.len(), 2 * (profile.master_key_len() + profile.master_salt_len()));
        Self { profile, bytes }
    }

    /// The profile the keys are for.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// The whole export, in the RFC's order: client key, server key, client salt, server salt.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The master key the client protects what it sends with.
    pub fn client_master_key(&self) -> &[u8] {
        &self.bytes[..self.profile.master_key_len()]
    }

    /// The master key the server protects what it sends with.
    pub fn server_master_key(&self) -> &[u8] {
        let k = self.profile.master_key_len();
        &self.bytes[k..2 * k]
    }

    /// The client's master salt.
    pub fn client_master_salt(&self) -> &[u8] {
        let (k, s) = (self.profile.master_key_len(), self.profile.master_salt_len());
        &self.bytes[2 * k..2 * k + s]
    }

    /// The server's master salt.
    pub fn server_master_salt(&self) -> &[u8] {
        let (k, s) = (self.profile.master_key_len(), self.profile.master_salt_len());
        &self.bytes[2 * k + s..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_code_points_round_trip() {
        for p in SrtpProfile::ALL {
            assert_eq!(SrtpProfile::from_code_point(p.code_point()), Some(p));
            assert_eq!(p.name().parse::<SrtpProfile>(), Ok(p));
            assert_eq!(p.to_string().to_lowercase().parse::<SrtpProfile>(), Ok(p));
        }
        assert_eq!("SRTP_AES128_CM_SHA1_32".parse(), Ok(SrtpProfile::Aes128CmHmacSha1_32));
        assert!("SRTP_NULL_SHA1_80".parse::<SrtpProfile>().is_err());
        assert_eq!(SrtpProfile::from_code_point(0x0005), None);
    }

    #[test]
    fn the_extension_is_parsed_exactly() {
        let offer = UseSrtp { profiles: vec![0x0007, 0x0001], mki: b"mk".to_vec() };
        let mut body = Vec::new();
        offer.emit(&mut body);
        assert_eq!(body, [0, 4, 0, 7, 0, 1, 2, b'm', b'k']);
        assert_eq!(UseSrtp::parse(&body), Some(offer));
        // An empty or odd list, a missing MKI length, trailing bytes.
        for bad in [&[0, 0, 0][..], &[0, 3, 0, 7, 0, 0], &[0, 2, 0, 7], &[0, 2, 0, 7, 0, 9], &[0, 2, 0, 7, 1]] {
            assert_eq!(UseSrtp::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_server_prefers_its_own_order_and_the_client_checks_the_answer() {
        let offer = UseSrtp::offer(&[SrtpProfile::Aes128CmHmacSha1_80, SrtpProfile::AeadAes128Gcm]).unwrap();
        let mut offer_with_unknown = offer.clone();
        offer_with_unknown.profiles.insert(0, 40);
        offer_with_unknown.mki = b"bogus".to_vec();
        let ours = [SrtpProfile::AeadAes256Gcm, SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmHmacSha1_80];
        let (answer, chosen) = UseSrtp::answer(Some(&offer_with_unknown), &ours).unwrap();
        assert_eq!(chosen, SrtpProfile::AeadAes128Gcm);
        assert_eq!(answer, UseSrtp { profiles: vec![0x0007], mki: Vec::new() });
        assert_eq!(UseSrtp::answer(Some(&offer), &[SrtpProfile::AeadAes256Gcm]), None);
        assert_eq!(UseSrtp::answer(None, &ours), None);

        let sent = [SrtpProfile::Aes128CmHmacSha1_80, SrtpProfile::AeadAes128Gcm];
        assert_eq!(answer.check_answer(&sent), Ok(SrtpProfile::AeadAes128Gcm));
        let alert = |u: &UseSrtp| match u.check_answer(&sent) {
            Err(Error::PeerMisbehaved { alert, .. }) => Some(alert),
            _ => None,
        };
        let illegal = Some(AlertDescription::ILLEGAL_PARAMETER);
        assert_eq!(alert(&UseSrtp { profiles: vec![0x0002], mki: Vec::new() }), illegal);
        assert_eq!(alert(&UseSrtp { profiles: vec![0x0001, 0x0007], mki: Vec::new() }), illegal);
        assert_eq!(alert(&UseSrtp { profiles: vec![0x0001], mki: b"x".to_vec() }), illegal);
    }

    #[test]
    fn the_keying_material_splits_in_the_rfcs_order() {
        let range = |r: core::ops::Range<u8>| r.collect::<Vec<u8>>();
        let m = SrtpKeyingMaterial::new(SrtpProfile::AeadAes256Gcm, zeroize::Zeroizing::new(range(0..88)));
        assert_eq!(m.client_master_key(), range(0..32));
        assert_eq!(m.server_master_key(), range(32..64));
        assert_eq!(m.client_master_salt(), range(64..76));
        assert_eq!(m.server_master_salt(), range(76..88));
        let m = SrtpKeyingMaterial::new(SrtpProfile::Aes128CmHmacSha1_80, zeroize::Zeroizing::new(range(0..60)));
        assert_eq!(m.server_master_key(), range(16..32));
        assert_eq!(m.client_master_salt(), range(32..46));
        assert_eq!(m.server_master_salt(), range(46..60));
    }
}
