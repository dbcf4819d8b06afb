//! Connection ID for DTLS 1.2 (RFC 9146): the ID we ask the peer to send us records with, the
//! peer's, the `tls12_cid` records that carry them from epoch 1 on, and the rule for following
//! a peer to a new address (§6): only on an authenticated record newer than all before it.

use super::cid13::Spares;
use super::rrc::Rrc;
use super::*;
use crate::cid::OwnCid;
use crate::record::Header;
use crate::short_bytes::ShortBytes;

/// The connection IDs of a connection whose configuration asks for one. Kept small (one heap
/// block of 64 bytes with the allocator's header, the peer's ID inline when short): every
/// connection of such a configuration holds one for its whole life.
#[derive(Debug)]
pub(crate) struct Cid {
    /// Ours: the peer puts it in the records it sends us (empty: it sends ordinary records).
    own: OwnCid,
    /// The peer's, once negotiated: our records of epoch 1 and later carry it (empty: we send
    /// ordinary records). `None`: not negotiated, no record carries a connection ID.
    peer: Option<ShortBytes>,
    /// What few connections use, once they do.
    extra: Option<Box<CidExtra>>,
}

/// The parts of [`Cid`] that only some connections use.
#[derive(Debug, Default)]
struct CidExtra {
    /// Return routability checks (RFC 9853), once both sides agreed on them.
    rrc: Option<Rrc>,
    /// DTLS 1.3: spare IDs and the messages that trade them (RFC 9147 §9), once used.
    spares: Option<Spares>,
}

impl Cid {
    /// A random connection ID of the configured length, if the configuration asks for one.
    pub(super) fn for_config(config: &Config) -> Result<Option<Box<Self>>, Error> {
        let Some(len) = config.cid_len else { return Ok(None) };
        let mut own = OwnCid::zeroed(len).ok_or(Error::InvalidInput("connection ID too long"))?;
        config.provider.fill_random(&mut own)?;
        Ok(Some(Self::negotiated(own)))
    }

    /// Ours, for the handshake's extension.
    pub(crate) fn own(&self) -> &[u8] {
        &self.own
    }

    /// Our ID from an exported session (the peer's is set next).
    pub(super) fn negotiated(own: OwnCid) -> Box<Self> {
        Box::new(Self { own, peer: None, extra: None })
    }

    /// The return routability state, once both sides agreed on it.
    pub(super) fn rrc(&self) -> Option<&Rrc> {
        self.extra.as_deref()?.rrc.as_ref()
    }

    pub(super) fn rrc_mut(&mut self) -> Option<&mut Rrc> {
        self.extra.as_deref_mut()?.rrc.as_mut()
    }

    /// Both sides agreed on return routability checks.
    pub(super) fn start_rrc(&mut self) {
        self.extra.get_or_insert_with(Box::default).rrc = Some(Rrc::default());
    }

    /// The DTLS 1.3 spare IDs, once used.
    pub(super) fn spares(&self) -> Option<&Spares> {
        self.extra.as_deref()?.spares.as_ref()
    }

    pub(super) fn spares_if_any_mut(&mut self) -> Option<&mut Spares> {
        self.extra.as_deref_mut()?.spares.as_mut()
    }

    /// The spares, made on first use.
    pub(super) fn spares_mut(&mut self) -> &mut Spares {
        self.extra.get_or_insert_with(Box::default).spares.get_or_insert_with(Spares::default)
    }
}

impl Connection {
    /// Our connection ID (what the peer's records carry), if the configuration asks for one.
    pub fn connection_id(&self) -> Option<&[u8]> {
        self.cid.as_deref().map(|c| &c.own[..])
    }

    /// The peer's connection ID (what our records carry), once both sides agreed to use
    /// connection IDs; empty when the peer asked for ordinary records.
    pub fn peer_connection_id(&self) -> Option<&[u8]> {
        self.cid.as_deref().and_then(|c| c.peer.as_deref())
    }

    /// Replaces our connection ID before the handshake has read anything: an endpoint gives
    /// each of its connections one no other has, to route their records by it. Fails if the
    /// configuration asks for none, if `cid` is not of the configured length, or once the
    /// ClientHello was processed (the ID has been sent).
    pub fn set_connection_id(&mut self, cid: &[u8]) -> Result<(), Error> {
        if self.config.cid_len != Some(cid.len()) {
            return Err(Error::InvalidInput("the connection ID is not of the configured length"));
        }
        if self.side == Side::Client || self.stats.records_accepted > 0 {
            return Err(Error::InvalidOperation("the connection ID was already sent"));
        }
        match &mut self.cid {
            Some(c) => c.own = OwnCid::new(cid).ok_or(Error::InvalidInput("connection ID too long"))?,
            None => return Err(Error::InvalidInput("the configuration asks for no connection ID")),
        }
        Ok(())
    }

    /// Whether the last datagram given to [`handle_datagram`](Self::handle_datagram) carried
    /// a record that authenticated and is newer than every record before it (in the newest
    /// epoch read). RFC 9146 §6: only such a datagram may move the peer to the address it came
    /// from; an older one (a replay, a reordered copy) from another address must not.
    pub fn datagram_was_newest(&self) -> bool {
        // The newest record received moved during that datagram.
        self.epochs.newest_received() > self.newest_before
    }

    /// The peer's connection ID for our records of `epoch`: `Some` (not empty) when they carry
    /// one.
    pub(super) fn peer_cid_for(&self, epoch: u64) -> Option<&[u8]> {
        let peer = self.cid.as_deref()?.peer.as_deref()?;
        (epoch > 0 && !peer.is_empty()).then_some(peer)
    }

    /// The length of our connection ID when the peer's records carry it (negotiated, not
    /// empty); 0 otherwise (a `tls12_cid` record cannot then be framed).
    pub(super) fn own_cid_len(&self) -> usize {
        match self.cid.as_deref() {
            Some(Cid { own, peer: Some(_), .. }) => own.len(),
            // Before the ServerHello settles it, a client reads records with the ID it asked for
            // (the server's Finished may overtake its ServerHello).
            Some(Cid { own, peer: None, .. }) if self.side == Side::Client => own.len(),
            _ => 0,
        }
    }

    /// Records the peer's connection ID, negotiated by the handshake (or imported with a
    /// session). From then on the peer's protected records must carry ours if it is not empty
    /// (RFC 9146 §4): its ordinary ones are refused (`cid_records_required`).
    pub(super) fn set_peer_cid(&mut self, peer: &[u8]) {
        if let Some(c) = &mut self.cid {
            c.peer = Some(peer.into());
            self.cid_records_required = !c.own.is_empty();
        }
    }

    /// Puts `id` (not empty) on our records from now on: the peer gave it (NewConnectionId).
    pub(super) fn replace_peer_cid(&mut self, id: &[u8]) {
        if let Some(c) = &mut self.cid {
            c.peer = Some(id.into());
        }
    }

    /// Handles one `tls12_cid` record (RFC 9146 §4): its connection ID must be ours; it is
    /// opened with the §5 additional data, and its real content type is inside. Its epoch and
    /// replay steps are `handle_record`'s: one function for both formats measured 35 ns more
    /// per ordinary DTLS 1.2 record (seal and open of 1,200 bytes: 555 → 590 ns), so the few
    /// lines stay written twice.
    pub(super) fn handle_cid12(
        &mut self,
        now: Instant,
        header: RecordHeader,
        cid: &[u8],
        fragment: &mut [u8],
    ) -> Result<Option<Range<usize>>, Error> {
        let ours = self.cid.as_deref().is_some_and(|c| *c.own == *cid && !c.own.is_empty());
        if !ours || header.epoch == 0 || !header.version.is_dtls() || self.tls13.is_some() {
            self.stats.dropped_malformed += 1;
            return Ok(None);
        }
        let epoch = u64::from(header.epoch);
        let Some(reader) = self.epochs.reader(epoch) else {
            if epoch == 1 {
                self.keep_early(Header::Cid12 { header, cid }, fragment);
            } else {
                self.stats.dropped_epoch += 1;
            }
            return Ok(None);
        };
        if !reader.window.check(header.seq) {
            self.stats.dropped_replayed += 1;
            return Ok(None);
        }
        let EpochKeys::Dtls12(keys) = reader.keys else {
            self.stats.dropped_malformed += 1;
            return Ok(None);
        };
        let Ok((plain, Some(content_type))) =
            keys.open_record(&Header::Cid12 { header, cid }, header.epoch_seq(), fragment)
        else {
            self.auth_failed(epoch)?;
            return Ok(None);
        };
        reader.window.update(header.seq);
        self.dispatch(now, epoch, header.seq, content_type, fragment, plain)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_ids_fit_a_64_byte_heap_block() {
        // 56 bytes, and the allocator's 8-byte header.
        assert!(size_of::<super::Cid>() <= 56, "{}", size_of::<super::Cid>());
    }
}
