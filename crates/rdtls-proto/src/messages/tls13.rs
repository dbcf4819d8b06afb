//! What DTLS 1.3 adds to the messages (RFC 9147 on RFC 8446): the hello extensions that
//! negotiate it (supported_versions, key_share, cookie, psk_key_exchange_modes,
//! pre_shared_key, early_data), the HelloRetryRequest marker, the ACK record (RFC 9147 §7),
//! KeyUpdate, NewConnectionId and RequestConnectionId (§9) and the content a CertificateVerify
//! signs.
//!
//! The extensions are parsed into [`Tls13Extensions`], which is part of
//! [`HelloExtensions`](super::HelloExtensions): their shape depends on the message they are in
//! ([`HelloKind`]), so the hello parsers say which one it is.

use crate::codec::{Put, Reader};
use crate::enums::{ExtensionType, ProtocolVersion};

use super::{put_extension, SeenTypes};

/// The `random` of a ServerHello that is a HelloRetryRequest: SHA-256("HelloRetryRequest")
/// (RFC 8446 §4.1.3).
pub const HELLO_RETRY_REQUEST_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11,
    0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Which message an extensions block belongs to: the same extension has another shape in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloKind {
    /// A ClientHello.
    Client,
    /// A ServerHello.
    Server,
    /// A HelloRetryRequest (a ServerHello with [`HELLO_RETRY_REQUEST_RANDOM`]).
    Retry,
}

/// The supported_versions extension (RFC 8446 §4.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SupportedVersions {
    /// ClientHello: the versions offered, in order of preference.
    Offered(Vec<ProtocolVersion>),
    /// ServerHello and HelloRetryRequest: the version selected.
    Selected(ProtocolVersion),
}

/// One key share: a group and its public value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyShareEntry {
    /// The `NamedGroup` code point.
    pub group: u16,
    /// The public key (1–65,535 bytes).
    pub key_exchange: Vec<u8>,
}

/// The key_share extension (RFC 8446 §4.2.8) in each of its three shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyShare {
    /// ClientHello: the client's shares, in its order of preference (possibly none).
    Offered(Vec<KeyShareEntry>),
    /// ServerHello: the server's share.
    Chosen(KeyShareEntry),
    /// HelloRetryRequest: the group the client must send a share for.
    Requested(u16),
}

/// A PSK identity offered in a ClientHello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PskIdentity {
    /// The identity (an external PSK's name, or a ticket).
    pub identity: Vec<u8>,
    /// The ticket age plus its `age_add` (0 for an external PSK).
    pub obfuscated_ticket_age: u32,
}

/// The pre_shared_key extension (RFC 8446 §4.2.11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreSharedKey {
    /// ClientHello: identities and, in the same order, their binders. It must be the last
    /// extension: the binders sign the ClientHello up to them.
    Offered {
        /// The identities.
        identities: Vec<PskIdentity>,
        /// One binder (an HMAC, 32 to 255 bytes) per identity.
        binders: Vec<Vec<u8>>,
    },
    /// ServerHello: the index of the identity accepted.
    Selected(u16),
}

impl PreSharedKey {
    /// Bytes of an encoded ClientHello the binders take at its end (their list with its
    /// length): the transcript hash a binder signs stops this many bytes before the end.
    pub fn binders_len(&self) -> usize {
        match self {
            Self::Offered { binders, .. } => 2 + binders.iter().map(|b| 1 + b.len()).sum::<usize>(),
            Self::Selected(_) => 0,
        }
    }
}

/// psk_key_exchange_modes values (RFC 8446 §4.2.9).
pub mod psk_mode {
    /// PSK only, no (EC)DHE: no forward secrecy.
    pub const PSK_KE: u8 = 0;
    /// PSK with (EC)DHE.
    pub const PSK_DHE_KE: u8 = 1;
}

/// The TLS 1.3 extensions of a hello, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tls13Extensions {
    /// supported_versions.
    pub supported_versions: Option<SupportedVersions>,
    /// key_share.
    pub key_share: Option<KeyShare>,
    /// cookie (HelloRetryRequest, and the ClientHello that answers it).
    pub cookie: Option<Vec<u8>>,
    /// psk_key_exchange_modes (ClientHello).
    pub psk_key_exchange_modes: Option<Vec<u8>>,
    /// pre_shared_key.
    pub pre_shared_key: Option<PreSharedKey>,
    /// early_data was sent (we never accept early data; a client offering it is answered
    /// without).
    pub early_data: bool,
    /// A ClientHello's DTLS 1.3 extension (other than supported_versions) did not parse: a
    /// DTLS 1.3 server refuses the hello (decode_error); to DTLS 1.2 it is an extension it
    /// does not know, ignored (a client may offer a DTLS 1.2 ticket in both forms).
    pub malformed: bool,
}

impl Tls13Extensions {
    /// Whether none of them was present.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether this module parses extensions of type `ty`.
    pub(super) fn handles(ty: ExtensionType) -> bool {
        matches!(
            ty,
            ExtensionType::SUPPORTED_VERSIONS
                | ExtensionType::KEY_SHARE
                | ExtensionType::COOKIE
                | ExtensionType::PSK_KEY_EXCHANGE_MODES
                | ExtensionType::PRE_SHARED_KEY
                | ExtensionType::EARLY_DATA
        )
    }

    /// Parses the body of one extension of a type [`handles`](Self::handles) accepts, all of
    /// it. `None`: malformed, or not allowed in this message.
    pub(super) fn parse(&mut self, ty: ExtensionType, body: &mut Reader<'_>, kind: HelloKind) -> Option<()> {
        match (ty, kind) {
            (ExtensionType::SUPPORTED_VERSIONS, HelloKind::Client) => {
                let list = body.vec8()?;
                if list.is_empty() || list.len() % 2 != 0 {
                    return None;
                }
                let list = list.chunks_exact(2).map(|c| ProtocolVersion(u16::from_be_bytes([c[0], c[1]]))).collect();
                self.supported_versions = Some(SupportedVersions::Offered(list));
            }
            (ExtensionType::SUPPORTED_VERSIONS, _) => {
                self.supported_versions = Some(SupportedVersions::Selected(ProtocolVersion(body.u16()?)));
            }
            (ExtensionType::KEY_SHARE, HelloKind::Client) => {
                let mut list = Reader::new(body.vec16()?);
                let mut shares = Vec::new();
                // RFC 8446 §4.2.8: at most one share per group, checked in linear time (a
                // hello can carry thousands of tiny shares).
                let mut groups = SeenTypes::default();
                while !list.is_empty() {
                    let entry = key_share_entry(&mut list)?;
                    if !groups.insert(entry.group) {
                        return None;
                    }
                    shares.push(entry);
                }
                self.key_share = Some(KeyShare::Offered(shares));
            }
            (ExtensionType::KEY_SHARE, HelloKind::Server) => {
                self.key_share = Some(KeyShare::Chosen(key_share_entry(body)?));
            }
            (ExtensionType::KEY_SHARE, HelloKind::Retry) => self.key_share = Some(KeyShare::Requested(body.u16()?)),
            (ExtensionType::COOKIE, HelloKind::Client | HelloKind::Retry) => {
                let cookie = body.vec16()?;
                if cookie.is_empty() {
                    return None;
                }
                self.cookie = Some(cookie.to_vec());
            }
            (ExtensionType::PSK_KEY_EXCHANGE_MODES, HelloKind::Client) => {
                let modes = body.vec8()?;
                if modes.is_empty() {
                    return None;
                }
                self.psk_key_exchange_modes = Some(modes.to_vec());
            }
            (ExtensionType::PRE_SHARED_KEY, HelloKind::Client) => {
                let mut ids = Reader::new(body.vec16()?);
                let mut identities = Vec::new();
                while !ids.is_empty() {
                    let identity = ids.vec16()?;
                    if identity.is_empty() {
                        return None;
                    }
                    let age = u32::from_be_bytes(ids.take_array()?);
                    identities.push(PskIdentity { identity: identity.to_vec(), obfuscated_ticket_age: age });
                }
                let mut list = Reader::new(body.vec16()?);
                let mut binders = Vec::new();
                while !list.is_empty() {
                    let binder = list.vec8()?;
                    if binder.len() < 32 {
                        return None;
                    }
                    binders.push(binder.to_vec());
                }
                if identities.is_empty() || identities.len() != binders.len() {
                    return None;
                }
                self.pre_shared_key = Some(PreSharedKey::Offered { identities, binders });
            }
            (ExtensionType::PRE_SHARED_KEY, HelloKind::Server) => {
                self.pre_shared_key = Some(PreSharedKey::Selected(body.u16()?));
            }
            (ExtensionType::EARLY_DATA, HelloKind::Client) => self.early_data = true,
            _ => return None,
        }
        body.finish()
    }

    /// Appends the cookie and supported_versions, which go before every other extension.
    pub(super) fn emit_leading(&self, exts: &mut Vec<u8>) {
        if let Some(cookie) = &self.cookie {
            put_extension(exts, ExtensionType::COOKIE, |b| b.put_vec16(cookie));
        }
        if let Some(versions) = &self.supported_versions {
            put_extension(exts, ExtensionType::SUPPORTED_VERSIONS, |b| match versions {
                SupportedVersions::Offered(list) => b.put_len8(|b| list.iter().for_each(|v| b.put_u16(v.0))),
                SupportedVersions::Selected(v) => b.put_u16(v.0),
            });
        }
    }

    /// Appends the other extensions present (after [`emit_leading`](Self::emit_leading)'s),
    /// in a fixed order that puts pre_shared_key last.
    pub(super) fn emit_each(&self, exts: &mut Vec<u8>) {
        if let Some(share) = &self.key_share {
            put_extension(exts, ExtensionType::KEY_SHARE, |b| match share {
                KeyShare::Offered(list) => b.put_len16(|b| list.iter().for_each(|e| put_key_share_entry(b, e))),
                KeyShare::Chosen(e) => put_key_share_entry(b, e),
                KeyShare::Requested(group) => b.put_u16(*group),
            });
        }
        if let Some(modes) = &self.psk_key_exchange_modes {
            put_extension(exts, ExtensionType::PSK_KEY_EXCHANGE_MODES, |b| b.put_vec8(modes));
        }
        if self.early_data {
            put_extension(exts, ExtensionType::EARLY_DATA, |_| {});
        }
        if let Some(psk) = &self.pre_shared_key {
            put_extension(exts, ExtensionType::PRE_SHARED_KEY, |b| match psk {
                PreSharedKey::Offered { identities, binders } => {
                    b.put_len16(|b| {
                        for id in identities {
                            b.put_vec16(&id.identity);
                            b.extend_from_slice(&id.obfuscated_ticket_age.to_be_bytes());
                        }
                    });
                    b.put_len16(|b| binders.iter().for_each(|x| b.put_vec8(x)));
                }
                PreSharedKey::Selected(index) => b.put_u16(*index),
            });
        }
    }
}

fn key_share_entry(r: &mut Reader<'_>) -> Option<KeyShareEntry> {
    let group = r.u16()?;
    let key_exchange = r.vec16()?;
    if key_exchange.is_empty() {
        return None;
    }
    Some(KeyShareEntry { group, key_exchange: key_exchange.to_vec() })
}

fn put_key_share_entry(b: &mut Vec<u8>, e: &KeyShareEntry) {
    b.put_u16(e.group);
    b.put_vec16(&e.key_exchange);
}

/// One record a DTLS 1.3 ACK names (RFC 9147 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordNumber {
    /// The epoch.
    pub epoch: u64,
    /// The sequence number within the epoch.
    pub seq: u64,
}

/// Most record numbers we accept in one ACK: as many as fit a 1,500-byte datagram; a peer
/// never needs more, and this bounds the work one ACK causes.
pub const MAX_ACK_RECORDS: usize = 1500 / 16;

/// Parses an ACK record's content: `RecordNumber record_numbers<0..2^16-1>`. `None` if it is
/// malformed or names more than [`MAX_ACK_RECORDS`] records.
pub fn parse_ack(content: &[u8]) -> Option<Vec<RecordNumber>> {
    let mut r = Reader::new(content);
    let list = r.vec16()?;
    r.finish()?;
    if list.len() % 16 != 0 || list.len() / 16 > MAX_ACK_RECORDS {
        return None;
    }
    Some(
        list.chunks_exact(16)
            .map(|c| RecordNumber {
                epoch: u64::from_be_bytes(c[..8].try_into().expect("8 bytes")),
                seq: u64::from_be_bytes(c[8..].try_into().expect("8 bytes")),
            })
            .collect(),
    )
}

/// Appends an ACK record's content naming `records`, which must be in increasing order
/// (RFC 9147 §7: a receiver may rely on it).
pub fn write_ack(out: &mut Vec<u8>, records: &[RecordNumber]) {
    debug_assert!(records.windows(2).all(|w| w[0] < w[1]), "ACKs list record numbers in increasing order");
    out.put_len16(|b| {
        for n in records {
            b.extend_from_slice(&n.epoch.to_be_bytes());
            b.extend_from_slice(&n.seq.to_be_bytes());
        }
    });
}

/// A KeyUpdate's body (RFC 8446 §4.6.3): whether the peer is asked to update its keys too.
/// `None` for anything but `update_not_requested` (0) or `update_requested` (1).
pub fn parse_key_update(body: &[u8]) -> Option<bool> {
    match body {
        [0] => Some(false),
        [1] => Some(true),
        _ => None,
    }
}

/// How the peer is to use the IDs of a NewConnectionId (RFC 9147 §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionIdUsage {
    /// `cid_immediate` (0): from now on, with the first of them.
    Immediate,
    /// `cid_spare` (1): kept for later.
    Spare,
}

/// A NewConnectionId message's body (RFC 9147 §9): connection IDs, each `opaque<0..255>`, in
/// a list of up to 2^16 - 1 bytes, then their usage. The whole list is checked, the first
/// `keep` IDs returned. `None` if malformed (an unknown usage included).
pub fn parse_new_connection_id(body: &[u8], keep: usize) -> Option<(Vec<&[u8]>, ConnectionIdUsage)> {
    let mut r = Reader::new(body);
    let mut list = Reader::new(r.vec16()?);
    let usage = match r.u8()? {
        0 => ConnectionIdUsage::Immediate,
        1 => ConnectionIdUsage::Spare,
        _ => return None,
    };
    r.finish()?;
    let mut ids = Vec::new();
    while !list.is_empty() {
        let id = list.vec8()?;
        if ids.len() < keep {
            ids.push(id);
        }
    }
    Some((ids, usage))
}

/// Appends a NewConnectionId message's body.
pub fn write_new_connection_id(ids: &[Vec<u8>], usage: ConnectionIdUsage, out: &mut Vec<u8>) {
    out.put_len16(|b| ids.iter().for_each(|id| b.put_vec8(id)));
    out.put_u8(match usage {
        ConnectionIdUsage::Immediate => 0,
        ConnectionIdUsage::Spare => 1,
    });
}

/// A RequestConnectionId message's body (RFC 9147 §9): how many IDs are asked for.
pub fn parse_request_connection_id(body: &[u8]) -> Option<u8> {
    match body {
        [n] => Some(*n),
        _ => None,
    }
}

/// The content a CertificateVerify signs (RFC 8446 §4.4.3): 64 spaces, the context string of
/// the signer's role, a zero byte, and the transcript hash.
pub fn certificate_verify_content(server: bool, transcript_hash: &[u8]) -> Vec<u8> {
    let context: &[u8] =
        if server { b"TLS 1.3, server CertificateVerify" } else { b"TLS 1.3, client CertificateVerify" };
    let mut out = Vec::with_capacity(64 + context.len() + 1 + transcript_hash.len());
    out.extend_from_slice(&[0x20; 64]);
    out.extend_from_slice(context);
    out.push(0);
    out.extend_from_slice(transcript_hash);
    out
}

/// A DTLS 1.3 NewSessionTicket (RFC 8446 §4.6.1): how long the ticket may be used, what
/// obscures its age, the nonce its PSK is derived with, and the ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSessionTicket13<'a> {
    /// `ticket_lifetime`, seconds (at most seven days).
    pub lifetime: u32,
    /// `ticket_age_add`.
    pub age_add: u32,
    /// `ticket_nonce` (0–255 bytes).
    pub nonce: &'a [u8],
    /// `ticket` (1–65,535 bytes).
    pub ticket: &'a [u8],
}

/// Longest ticket lifetime a NewSessionTicket may carry (RFC 8446 §4.6.1): seven days.
pub const MAX_TICKET_LIFETIME: u32 = 7 * 24 * 3600;

impl<'a> NewSessionTicket13<'a> {
    /// Parses a body; the extensions (early_data only, which we do not use) are checked for
    /// form and skipped. A lifetime over seven days is taken as seven days.
    pub fn parse(body: &'a [u8]) -> Option<Self> {
        let mut r = Reader::new(body);
        let lifetime = u32::from_be_bytes(r.take_array()?);
        let age_add = u32::from_be_bytes(r.take_array()?);
        let nonce = r.vec8()?;
        let ticket = r.vec16()?;
        let mut exts = Reader::new(r.vec16()?);
        while !exts.is_empty() {
            exts.u16()?;
            exts.vec16()?;
        }
        r.finish()?;
        let lifetime = lifetime.min(MAX_TICKET_LIFETIME);
        (!ticket.is_empty()).then_some(Self { lifetime, age_add, nonce, ticket })
    }

    /// Appends the body, with no extension.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.lifetime.to_be_bytes());
        out.extend_from_slice(&self.age_add.to_be_bytes());
        out.put_vec8(self.nonce);
        out.put_vec16(self.ticket);
        out.put_u16(0);
    }
}
