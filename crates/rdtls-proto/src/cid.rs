//! The connection IDs an [`Endpoint`](crate::Endpoint) hands out (RFC 9146 §3): how they are
//! made, and how a server that spreads its connections over workers finds a datagram's worker
//! from the ID alone, before it looks up any state.

use core::fmt;

use crate::config::MAX_CID_LEN;
use crate::enums::ContentType;
use crate::Error;

/// Makes the connection IDs an [`Endpoint`](crate::Endpoint) gives its connections. The peer
/// puts ours on every record it sends, from whatever address, and the endpoint routes by it.
///
/// The default is [`RandomIds`]; [`ShardedIds`] puts a shard (a worker's index) in the first
/// byte, random bytes after it. Replace it to encode routing of your own (a node, a process) so that a load
/// balancer or another process can route without state; keep enough random bytes that IDs are
/// not guessable, since an ID is also what an off-path attacker would need to aim records at a
/// connection (RFC 9146 §8).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use rdtls_proto::cid::ConnectionIdGenerator;
/// use rdtls_proto::{Config, Endpoint, Error};
///
/// /// A node number in the first two bytes, random after.
/// #[derive(Debug)]
/// struct Node(u16);
///
/// impl ConnectionIdGenerator for Node {
///     fn generate(&self, id: &mut [u8], random: &mut dyn FnMut(&mut [u8]) -> Result<(), Error>) -> Result<(), Error> {
///         let (node, rest) = id.split_at_mut(2);
///         node.copy_from_slice(&self.0.to_be_bytes());
///         random(rest)
///     }
/// }
///
/// let config = Arc::new(Config::builder().psk_server_key(b"key".to_vec()).connection_id(8).build().unwrap());
/// let mut endpoint = Endpoint::new(config, Instant::now()).unwrap();
/// endpoint.set_connection_id_generator(Arc::new(Node(7)));
/// ```
pub trait ConnectionIdGenerator: fmt::Debug + Send + Sync {
    /// Fills `id` (the configured length: 1 to [`MAX_CID_LEN`] bytes) with a new connection
    /// ID. `random` fills a buffer with random bytes from the configuration's crypto provider.
    /// An ID another connection of the endpoint has is drawn again, a few times; then the new
    /// connection is refused.
    fn generate(&self, id: &mut [u8], random: &mut dyn FnMut(&mut [u8]) -> Result<(), Error>) -> Result<(), Error>;
}

/// The default [`ConnectionIdGenerator`]: every byte random.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RandomIds;

impl ConnectionIdGenerator for RandomIds {
    fn generate(&self, id: &mut [u8], random: &mut dyn FnMut(&mut [u8]) -> Result<(), Error>) -> Result<(), Error> {
        random(id)
    }
}

/// A [`ConnectionIdGenerator`] for servers that spread connections over workers (what
/// `rdtls`'s `Listener::bind_workers` gives each worker): the shard (a worker's index) in the
/// first byte, random bytes after it; [`shard_of`] reads it back. A 1-byte ID is all random:
/// one byte cannot carry both, and [`shard_of`] gives `None` for it. The shard byte is no secret
/// and takes from the ID's unpredictability: use IDs long enough for the rest (8 bytes or more).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardedIds {
    shard: u8,
}

impl ShardedIds {
    /// IDs of the worker or shard `shard`.
    pub fn new(shard: u8) -> Self {
        Self { shard }
    }

    /// The shard these IDs carry.
    pub fn shard(&self) -> u8 {
        self.shard
    }
}

impl ConnectionIdGenerator for ShardedIds {
    fn generate(&self, id: &mut [u8], random: &mut dyn FnMut(&mut [u8]) -> Result<(), Error>) -> Result<(), Error> {
        match id {
            [] => Ok(()),
            [_] => random(id),
            [first, rest @ ..] => {
                *first = self.shard;
                random(rest)
            }
        }
    }
}

/// The shard a [`ShardedIds`] ID carries (its first byte), for IDs of 2 bytes or more.
pub fn shard_of(id: &[u8]) -> Option<u8> {
    match id {
        [first, _, ..] => Some(*first),
        _ => None,
    }
}

/// One of our connection IDs (at most [`MAX_CID_LEN`] bytes), held inline: a connection and an
/// endpoint's routing tables keep theirs without an allocation each.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct OwnCid {
    len: u8,
    bytes: [u8; MAX_CID_LEN],
}

impl OwnCid {
    /// `id` held inline; `None` if it is longer than [`MAX_CID_LEN`].
    pub(crate) fn new(id: &[u8]) -> Option<Self> {
        let mut bytes = [0; MAX_CID_LEN];
        bytes.get_mut(..id.len())?.copy_from_slice(id);
        Some(Self { len: id.len() as u8, bytes })
    }

    /// `len` zero bytes, to fill in place; `None` past [`MAX_CID_LEN`].
    pub(crate) fn zeroed(len: usize) -> Option<Self> {
        Self::new([0; MAX_CID_LEN].get(..len)?)
    }
}

impl core::ops::Deref for OwnCid {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl core::ops::DerefMut for OwnCid {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for OwnCid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// The connection ID that `datagram`'s first record carries, if it is a record that carries one
/// of `len` bytes (the length is not on the wire: it is the receiver's own): a DTLS 1.2
/// `tls12_cid` record (RFC 9146 §4) or a DTLS 1.3 record whose unified header has the C bit
/// (RFC 9147 §4). For routing a datagram before any state is looked up; the record is not
/// authenticated yet.
pub fn datagram_cid(datagram: &[u8], len: usize) -> Option<&[u8]> {
    let &first = datagram.first()?;
    if len == 0 || len > MAX_CID_LEN {
        return None;
    }
    if first == ContentType::TLS12_CID.0 {
        // type, version, epoch, sequence number: 11 bytes, then the ID.
        return datagram.get(11..11 + len);
    }
    // 001CSLEE: a unified header; with C set, the ID follows the first byte.
    if first & 0b1110_0000 == 0b0010_0000 && first & 0b0001_0000 != 0 {
        return datagram.get(1..1 + len);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_ids_are_held_inline_up_to_the_longest() {
        let id = OwnCid::new(&[1, 2, 3]).unwrap();
        assert_eq!(&*id, &[1, 2, 3]);
        assert_eq!(format!("{id:?}"), "010203");
        assert_eq!(&*OwnCid::new(&[]).unwrap(), &[] as &[u8]);
        assert_eq!(OwnCid::new(&[9; MAX_CID_LEN]).unwrap().len(), MAX_CID_LEN);
        assert!(OwnCid::new(&[9; MAX_CID_LEN + 1]).is_none());
        let mut filled = OwnCid::zeroed(4).unwrap();
        filled.copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(filled, OwnCid::new(&[1, 2, 3, 4]).unwrap());
        assert!(OwnCid::zeroed(MAX_CID_LEN + 1).is_none());
        // Equal IDs are equal keys, whatever was held before (the rest is always zero).
        assert_eq!(OwnCid::new(&[7, 7]), OwnCid::new(&[7, 7]));
        assert_ne!(OwnCid::new(&[7]), OwnCid::new(&[7, 0]));
    }

    #[test]
    fn sharded_ids_carry_their_shard_and_random_bytes() {
        let mut counter = 0u8;
        let mut random = |b: &mut [u8]| {
            for x in b {
                counter += 1;
                *x = counter;
            }
            Ok(())
        };
        let mut id = [0u8; 4];
        ShardedIds::new(9).generate(&mut id, &mut random).unwrap();
        assert_eq!(id, [9, 1, 2, 3]);
        assert_eq!(shard_of(&id), Some(9));
        let mut one = [0u8; 1];
        ShardedIds::new(9).generate(&mut one, &mut random).unwrap();
        assert_eq!(one, [4], "a 1-byte ID is all random");
        assert_eq!(shard_of(&one), None);
        assert_eq!(shard_of(&[]), None);
    }

    #[test]
    fn the_id_of_a_tls12_cid_record() {
        let mut d = vec![25, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 7, 0xaa, 0xbb, 0xcc, 0, 0];
        assert_eq!(datagram_cid(&d, 3), Some(&[0xaa, 0xbb, 0xcc][..]));
        assert_eq!(datagram_cid(&d, 0), None);
        assert_eq!(datagram_cid(&d[..12], 3), None, "cut short");
        d[0] = 23;
        assert_eq!(datagram_cid(&d, 3), None, "an ordinary record");
    }

    #[test]
    fn the_id_of_a_unified_header_with_the_c_bit() {
        let with = [0b0011_1110, 0xaa, 0xbb, 0xcc, 0x12, 0x34, 0, 0];
        assert_eq!(datagram_cid(&with, 3), Some(&[0xaa, 0xbb, 0xcc][..]));
        assert_eq!(datagram_cid(&with[..3], 3), None, "cut short");
        let without = [0b0010_1110, 0xaa, 0xbb, 0xcc];
        assert_eq!(datagram_cid(&without, 3), None, "no C bit");
    }
}
