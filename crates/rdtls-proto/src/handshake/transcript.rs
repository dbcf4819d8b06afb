//! The handshake transcript (RFC 5246 §7.4.9, RFC 6347 §4.2.6, RFC 8446 §4.4.1): every
//! handshake message, each with its DTLS header as if it had not been fragmented.
//!
//! Messages are kept as bytes until the hash function is known (the cipher suite is chosen),
//! then hashed as they come, with a running hash that can be read at any point and forked.
//! The bytes themselves are kept only while a signature over them may still be needed: in
//! DTLS 1.2 a CertificateVerify signs the whole transcript, not its hash.

use crate::crypto::{CryptoProvider, Digest, HashAlgorithm, RunningHash};
use crate::enums::HandshakeType;
use crate::messages::HandshakeHeader;

pub(crate) struct Transcript {
    /// The messages as bytes: until the hash starts, and while they may be signed.
    bytes: Option<Vec<u8>>,
    hash: Option<Box<dyn RunningHash>>,
}

impl core::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transcript")
            .field("bytes", &self.bytes.as_ref().map(Vec::len))
            .field("hash", &self.hash.as_ref().map(|h| h.algorithm()))
            .finish()
    }
}

impl Default for Transcript {
    fn default() -> Self {
        Self { bytes: Some(Vec::new()), hash: None }
    }
}

impl Transcript {
    /// Adds a message: its header as if unfragmented, then its body.
    pub(crate) fn add(&mut self, msg_type: HandshakeType, message_seq: u16, body: &[u8]) {
        let length = body.len() as u32;
        let header = HandshakeHeader { msg_type, length, message_seq, fragment_offset: 0, fragment_length: length };
        self.add_bytes(&header.to_bytes());
        self.add_bytes(body);
    }

    /// Adds a DTLS 1.3 message: with the TLS 1.3 header (type and length only, RFC 9147 §5.2),
    /// then its body.
    pub(crate) fn add_tls13(&mut self, msg_type: HandshakeType, body: &[u8]) {
        let len = (body.len() as u32).to_be_bytes();
        self.add_bytes(&[msg_type.0, len[1], len[2], len[3]]);
        self.add_bytes(body);
    }

    /// A copy of the running hash, to hash a continuation without changing the transcript
    /// (a PSK binder over a partial ClientHello). `None` before the hash starts.
    pub(crate) fn fork_hash(&self) -> Option<Box<dyn RunningHash>> {
        self.hash.as_ref().map(|h| h.fork())
    }

    /// Adds bytes that are already an encoded message.
    pub(crate) fn add_bytes(&mut self, bytes: &[u8]) {
        if let Some(b) = &mut self.bytes {
            b.extend_from_slice(bytes);
        }
        if let Some(h) = &mut self.hash {
            h.update(bytes);
        }
    }

    /// Starts over with `first` (a client's transcript begins with the ClientHello the
    /// ServerHello answers, after any cookie exchange).
    pub(crate) fn restart(&mut self, first: &[u8]) {
        *self = Self::default();
        self.add_bytes(first);
    }

    /// From now on hashes with `alg`, over what came so far; keeps the bytes only if
    /// `keep_bytes` (a signature over them may come).
    pub(crate) fn start_hash(&mut self, provider: &dyn CryptoProvider, alg: HashAlgorithm, keep_bytes: bool) {
        let mut hash = provider.start_hash(alg);
        if let Some(b) = &self.bytes {
            hash.update(b);
        }
        self.hash = Some(hash);
        if !keep_bytes {
            self.bytes = None;
        }
    }

    /// The hash of the messages so far (`None` before [`start_hash`](Self::start_hash)).
    pub(crate) fn hash(&self) -> Option<Digest> {
        self.hash.as_ref().map(|h| h.current())
    }

    /// The messages so far, if still kept.
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        self.bytes.as_deref()
    }

    /// No signature over the messages will come: stop keeping them.
    pub(crate) fn release_bytes(&mut self) {
        if self.hash.is_some() {
            self.bytes = None;
        }
    }
}

#[cfg(all(test, feature = "aws-lc-rs"))]
mod tests {
    use super::*;
    use crate::crypto::aws_lc::AwsLcProvider;
    use crate::messages::write_message;

    #[test]
    fn hashes_what_was_buffered_and_what_follows_and_keeps_bytes_only_on_request() {
        let p = AwsLcProvider;
        let mut all = Vec::new();
        write_message(&mut all, HandshakeType::CLIENT_HELLO, 1, b"hello");
        write_message(&mut all, HandshakeType::SERVER_HELLO, 1, b"world");
        write_message(&mut all, HandshakeType::SERVER_HELLO_DONE, 2, b"");

        for keep in [false, true] {
            let mut t = Transcript::default();
            t.add(HandshakeType::CLIENT_HELLO, 1, b"hello");
            assert!(t.hash().is_none());
            t.add(HandshakeType::SERVER_HELLO, 1, b"world");
            t.start_hash(&p, HashAlgorithm::Sha256, keep);
            t.add(HandshakeType::SERVER_HELLO_DONE, 2, b"");
            assert_eq!(t.hash().unwrap().as_bytes(), p.hash(HashAlgorithm::Sha256, &[&all]).as_bytes());
            assert_eq!(t.bytes(), keep.then_some(&all[..]));
            t.release_bytes();
            assert_eq!(t.bytes(), None);
            assert_eq!(t.hash().unwrap().as_bytes(), p.hash(HashAlgorithm::Sha256, &[&all]).as_bytes());
        }
        // A restart forgets everything before.
        let mut t = Transcript::default();
        t.add(HandshakeType::CLIENT_HELLO, 0, b"first");
        t.restart(&all[..17]);
        t.start_hash(&p, HashAlgorithm::Sha384, false);
        assert_eq!(t.hash().unwrap().as_bytes(), p.hash(HashAlgorithm::Sha384, &[&all[..17]]).as_bytes());
    }
}
