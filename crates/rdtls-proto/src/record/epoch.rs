//! The epoch table: for each epoch a connection uses, the keys of each direction, the replay
//! window of what it reads, the next sequence number it writes and the records that failed
//! authentication under its keys.
//!
//! Epoch 0 is plaintext and always there. DTLS 1.2 adds epoch 1; DTLS 1.3 uses up to four at
//! once during its handshake (early data, handshake, application, and a key update), so the
//! table holds up to [`MAX_EPOCHS`] protected epochs and retires the oldest beyond that.

use super::{RecordProtection, ReplayWindow, UnifiedFormat, UnifiedProtection, HEADER_LEN, MAX_SEQ};

/// Most protected epochs held at once.
pub(crate) const MAX_EPOCHS: usize = 4;

/// The protection of one direction of an epoch, in the record format of its version.
#[derive(Debug)]
pub(crate) enum EpochKeys {
    /// DTLS 1.2: the 13-byte header, an explicit nonce for GCM and CCM.
    Dtls12(RecordProtection),
    /// DTLS 1.3: the unified header, the inner content type and record-number encryption.
    Dtls13(UnifiedProtection),
}

impl EpochKeys {
    /// Bytes a record of this epoch adds to its plaintext: header (DTLS 1.3: in `format`) and
    /// protection.
    pub(crate) fn record_overhead(&self, format: UnifiedFormat) -> usize {
        match self {
            Self::Dtls12(k) => HEADER_LEN + k.overhead(),
            Self::Dtls13(k) => k.overhead(format),
        }
    }
}

/// One protected epoch.
#[derive(Debug)]
pub(crate) struct Epoch {
    number: u64,
    read: Option<EpochKeys>,
    window: ReplayWindow,
    write: Option<EpochKeys>,
    next_seq: u64,
    /// Records of this epoch that failed authentication.
    failures: u64,
}

/// What a connection knows of each epoch.
#[derive(Debug, Default)]
pub(crate) struct EpochTable {
    /// Epoch 0: only the next sequence number we write.
    plain_seq: u64,
    /// Protected epochs, oldest first.
    protected: Vec<Epoch>,
    /// The epoch new records are written in.
    write_epoch: u64,
}

impl EpochTable {
    /// The epoch new records are written in.
    pub(crate) fn write_epoch(&self) -> u64 {
        self.write_epoch
    }

    /// Writes from now on in `epoch` (its write keys must be installed, or it is 0).
    pub(crate) fn set_write_epoch(&mut self, epoch: u64) {
        self.write_epoch = epoch;
    }

    fn get(&self, epoch: u64) -> Option<&Epoch> {
        self.protected.iter().find(|e| e.number == epoch)
    }

    fn get_mut(&mut self, epoch: u64) -> Option<&mut Epoch> {
        self.protected.iter_mut().find(|e| e.number == epoch)
    }

    /// Installs keys for `epoch` (either direction may be given later), retiring the oldest
    /// epoch if the table is full: the oldest that is neither the one we write in nor the
    /// newest we read.
    pub(crate) fn install(&mut self, epoch: u64, read: Option<EpochKeys>, write: Option<EpochKeys>) {
        debug_assert_ne!(epoch, 0, "epoch 0 is plaintext");
        if let Some(e) = self.get_mut(epoch) {
            if read.is_some() {
                e.read = read;
            }
            if write.is_some() {
                e.write = write;
            }
            return;
        }
        if self.protected.len() >= MAX_EPOCHS {
            let newest_read = self.protected.iter().rev().find(|e| e.read.is_some()).map(|e| e.number);
            let write = self.write_epoch;
            let retire = self.protected.iter().position(|e| e.number != write && Some(e.number) != newest_read);
            self.protected.remove(retire.unwrap_or(0));
        }
        // Grow one entry at a time: DTLS 1.2 connections hold one protected epoch all their
        // life, and idle connections are many.
        self.protected.reserve_exact(1);
        let at = self.protected.partition_point(|e| e.number < epoch);
        let entry = Epoch { number: epoch, read, window: ReplayWindow::default(), write, next_seq: 0, failures: 0 };
        self.protected.insert(at, entry);
    }

    /// Forgets `epoch`'s keys, both directions (DTLS 1.3's handshake epoch once the peer can no
    /// longer need it).
    pub(crate) fn retire(&mut self, epoch: u64) {
        self.protected.retain(|e| e.number != epoch);
        self.give_back();
    }

    /// Frees the slots of retired epochs: an idle DTLS 1.3 connection keeps one epoch, not the
    /// room for the handshake's too (152 bytes). Runs when keys are retired (a handshake's
    /// end, a KeyUpdate), never per record.
    fn give_back(&mut self) {
        if self.protected.capacity() > self.protected.len() {
            self.protected.shrink_to_fit();
        }
    }

    /// Forgets the read keys of the epochs in `old` (DTLS 1.3: the peer's epochs before its
    /// KeyUpdates), and each such epoch with them unless it holds write keys of ours.
    pub(crate) fn retire_reads(&mut self, old: core::ops::Range<u64>) {
        for e in self.protected.iter_mut().filter(|e| old.contains(&e.number)) {
            e.read = None;
            e.window = ReplayWindow::default();
        }
        self.protected.retain(|e| !old.contains(&e.number) || e.write.is_some());
        self.give_back();
    }

    /// Forgets our write keys of `epoch` (DTLS 1.3: ours before our acknowledged KeyUpdate),
    /// and the epoch with them unless the peer's read keys of it are still held.
    pub(crate) fn retire_write(&mut self, epoch: u64) {
        debug_assert_ne!(epoch, self.write_epoch, "the epoch we write in keeps its keys");
        if let Some(e) = self.get_mut(epoch) {
            e.write = None;
        }
        self.protected.retain(|e| e.number != epoch || e.read.is_some());
        self.give_back();
    }

    /// Forgets every key (a connection handed over, or closed).
    pub(crate) fn clear_keys(&mut self) {
        self.protected.clear();
    }

    /// Takes the next sequence number to write in `epoch`; `None` once 2^48 − 1 was used, or
    /// for an epoch we cannot write in. Every record writer goes through here, so a sequence
    /// number, and with it a nonce, is never used twice.
    pub(crate) fn take_seq(&mut self, epoch: u64) -> Option<u64> {
        let next = if epoch == 0 { &mut self.plain_seq } else { &mut self.get_mut(epoch)?.next_seq };
        let seq = *next;
        if seq > MAX_SEQ {
            return None;
        }
        *next = seq + 1;
        Some(seq)
    }

    /// The next sequence number `epoch` would write.
    pub(crate) fn next_seq(&self, epoch: u64) -> Option<u64> {
        if epoch == 0 {
            Some(self.plain_seq)
        } else {
            self.get(epoch).map(|e| e.next_seq)
        }
    }

    /// Sets the next sequence number of `epoch` (a session imported where another left off).
    pub(crate) fn set_next_seq(&mut self, epoch: u64, seq: u64) {
        if epoch == 0 {
            self.plain_seq = seq;
        } else if let Some(e) = self.get_mut(epoch) {
            e.next_seq = seq;
        }
    }

    /// Continues epoch 0's numbering from at least `seq` (a server answering after the
    /// stateless HelloVerifyRequest, which echoed the ClientHello's number).
    pub(crate) fn raise_plain_seq(&mut self, seq: u64) {
        self.plain_seq = self.plain_seq.max(seq);
    }

    /// The keys records of `epoch` are sealed with (`None`: plaintext or unknown).
    pub(crate) fn write_keys(&self, epoch: u64) -> Option<&EpochKeys> {
        self.get(epoch)?.write.as_ref()
    }

    /// Whether records of `epoch` can be read now.
    pub(crate) fn can_read(&self, epoch: u64) -> bool {
        epoch == 0 || self.get(epoch).is_some_and(|e| e.read.is_some())
    }

    /// The newest epoch we can read whose two low bits are `bits` (a DTLS 1.3 unified header
    /// carries only those, RFC 9147 §4.2.2).
    pub(crate) fn read_epoch_with_bits(&self, bits: u8) -> Option<u64> {
        self.protected.iter().rev().find(|e| e.read.is_some() && e.number & 3 == u64::from(bits)).map(|e| e.number)
    }

    /// The read keys and replay window of `epoch`, with its authentication failures.
    pub(crate) fn reader(&mut self, epoch: u64) -> Option<Reader<'_>> {
        let e = self.get_mut(epoch)?;
        let keys = e.read.as_ref()?;
        Some(Reader { keys, window: &mut e.window, failures: &mut e.failures })
    }

    /// The number of the newest record received (the highest in the newest epoch that has
    /// one) as `epoch << 48 | sequence number`, ordered as records are (an epoch past 2^16 − 1
    /// counts as that); 0 when none was (epoch 0 is not protected).
    pub(crate) fn newest_received(&self) -> u64 {
        let newest = self.protected.iter().rev().find_map(|e| Some((e.number, e.window.highest()?)));
        newest.map_or(0, |(epoch, seq)| (epoch.min(0xffff) << 48) | (seq & MAX_SEQ))
    }

    /// The replay window of `epoch`.
    pub(crate) fn window(&self, epoch: u64) -> Option<&ReplayWindow> {
        self.get(epoch).map(|e| &e.window)
    }

    /// Restores the replay window of `epoch` (an imported session).
    pub(crate) fn set_window(&mut self, epoch: u64, window: ReplayWindow) {
        if let Some(e) = self.get_mut(epoch) {
            e.window = window;
        }
    }
}

/// Reading one protected epoch: its keys, its replay window and its failure count, borrowed
/// together.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    pub(crate) keys: &'a EpochKeys,
    pub(crate) window: &'a mut ReplayWindow,
    pub(crate) failures: &'a mut u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "aws-lc-rs")]
    fn keys() -> EpochKeys {
        use crate::crypto::{aws_lc::AwsLcProvider, CryptoProvider};
        let suite = &crate::suites::TLS_PSK_WITH_AES_128_GCM_SHA256;
        EpochKeys::Dtls12(RecordProtection::new(suite, AwsLcProvider.aead_key(suite.aead, &[7; 16]).unwrap(), &[1; 4]))
    }

    #[cfg(feature = "aws-lc-rs")]
    #[test]
    fn epochs_hold_their_own_numbers_and_retire_the_oldest() {
        let mut t = EpochTable::default();
        assert_eq!(t.take_seq(0), Some(0));
        assert_eq!(t.take_seq(1), None, "no epoch 1 yet");
        assert!(t.can_read(0) && !t.can_read(1));
        t.install(1, Some(keys()), None);
        assert!(t.can_read(1));
        assert!(t.write_keys(1).is_none());
        t.install(1, None, Some(keys()));
        assert!(t.can_read(1) && t.write_keys(1).is_some(), "a later install keeps what was there");
        assert_eq!((t.take_seq(1), t.take_seq(1), t.take_seq(0)), (Some(0), Some(1), Some(1)));
        t.raise_plain_seq(9);
        assert_eq!(t.take_seq(0), Some(9));
        for epoch in 2..=MAX_EPOCHS as u64 + 1 {
            t.install(epoch, Some(keys()), Some(keys()));
        }
        assert!(!t.can_read(1), "the oldest was retired");
        assert!(t.can_read(MAX_EPOCHS as u64 + 1) && t.can_read(2));
        t.clear_keys();
        assert!(!t.can_read(2) && t.can_read(0));
    }

    #[cfg(feature = "aws-lc-rs")]
    #[test]
    fn sequence_numbers_end_at_two_to_the_48_minus_one() {
        let mut t = EpochTable::default();
        t.install(1, None, Some(keys()));
        t.set_next_seq(1, MAX_SEQ);
        assert_eq!(t.take_seq(1), Some(MAX_SEQ));
        assert_eq!(t.take_seq(1), None);
        assert_eq!(t.take_seq(1), None, "and stays exhausted");
        assert_eq!(t.next_seq(1), Some(MAX_SEQ + 1));
        t.set_next_seq(0, MAX_SEQ + 1);
        assert_eq!(t.take_seq(0), None);
    }

    #[cfg(feature = "aws-lc-rs")]
    #[test]
    fn retired_epochs_give_their_room_back() {
        let mut t = EpochTable::default();
        // A DTLS 1.3 handshake: its epoch 2, then the application's epoch 3.
        t.install(2, Some(keys()), Some(keys()));
        t.install(3, Some(keys()), Some(keys()));
        t.set_write_epoch(3);
        assert_eq!(t.protected.capacity(), 2);
        t.retire(2);
        assert_eq!((t.protected.len(), t.protected.capacity()), (1, 1), "one epoch kept, room for one");
        // A KeyUpdate each way: the next epoch, then the old one's keys go.
        t.install(4, Some(keys()), Some(keys()));
        t.set_write_epoch(4);
        t.retire_write(3);
        t.retire_reads(3..4);
        assert_eq!((t.protected.len(), t.protected.capacity()), (1, 1));
        assert!(t.can_read(4) && !t.can_read(3));
    }
}
