//! Bounds-checked reading and length-prefixed writing of wire formats.
//!
//! Every parser in this crate goes through [`Reader`]: it never indexes a slice directly, so a
//! malformed input becomes `None`, never a panic.

/// A cursor over a byte slice that hands out sub-slices only after checking their length.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next byte, left unread.
    pub fn peek(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }

    /// Takes the next `N` bytes as an array.
    pub fn take_array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.buf.split_first_chunk::<N>()?;
        self.buf = tail;
        Some(*head)
    }

    /// Takes everything that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self) -> Option<u8> {
        self.take_array::<1>().map(|[b]| b)
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Option<u16> {
        self.take_array().map(u16::from_be_bytes)
    }

    /// Reads a big-endian 24-bit integer.
    pub fn u24(&mut self) -> Option<u32> {
        let [a, b, c] = self.take_array()?;
        Some(u32::from_be_bytes([0, a, b, c]))
    }

    /// Reads a big-endian 48-bit integer.
    pub fn u48(&mut self) -> Option<u64> {
        let [a, b, c, d, e, f] = self.take_array()?;
        Some(u64::from_be_bytes([0, 0, a, b, c, d, e, f]))
    }

    /// Reads a vector with a one-byte length prefix.
    pub fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    /// Reads a vector with a two-byte length prefix.
    pub fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    /// Reads a vector with a three-byte length prefix.
    pub fn vec24(&mut self) -> Option<&'a [u8]> {
        let n = self.u24()?;
        self.take(n as usize)
    }

    /// Succeeds only if nothing is left: rejects trailing bytes.
    pub fn finish(&self) -> Option<()> {
        self.buf.is_empty().then_some(())
    }
}

/// Appends big-endian integers and length-prefixed vectors to a `Vec<u8>`.
pub trait Put {
    /// Writes a `u8`.
    fn put_u8(&mut self, v: u8);
    /// Writes a big-endian `u16`.
    fn put_u16(&mut self, v: u16);
    /// Writes a big-endian 24-bit integer (the top byte of `v` is ignored).
    fn put_u24(&mut self, v: u32);
    /// Writes a big-endian 48-bit integer (the top two bytes of `v` are ignored).
    fn put_u48(&mut self, v: u64);
    /// Writes `body` with a one-byte length prefix. `body` must fit (callers check limits).
    fn put_vec8(&mut self, body: &[u8]);
    /// Writes `body` with a two-byte length prefix.
    fn put_vec16(&mut self, body: &[u8]);
    /// Writes a two-byte length, then whatever `f` appends, then back-patches the length.
    fn put_len16(&mut self, f: impl FnOnce(&mut Self));
    /// Same with a three-byte length.
    fn put_len24(&mut self, f: impl FnOnce(&mut Self));
    /// Same with a one-byte length.
    fn put_len8(&mut self, f: impl FnOnce(&mut Self));
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u24(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes()[1..]);
    }
    fn put_u48(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes()[2..]);
    }
    fn put_vec8(&mut self, body: &[u8]) {
        debug_assert!(body.len() <= 0xff);
        self.push(body.len() as u8);
        self.extend_from_slice(body);
    }
    fn put_vec16(&mut self, body: &[u8]) {
        debug_assert!(body.len() <= 0xffff);
        self.put_u16(body.len() as u16);
        self.extend_from_slice(body);
    }
    fn put_len16(&mut self, f: impl FnOnce(&mut Self)) {
        let at = self.len();
        self.put_u16(0);
        f(self);
        let n = self.len() - at - 2;
        debug_assert!(n <= 0xffff);
        self[at..at + 2].copy_from_slice(&(n as u16).to_be_bytes());
    }
    fn put_len24(&mut self, f: impl FnOnce(&mut Self)) {
        let at = self.len();
        self.put_u24(0);
        f(self);
        let n = self.len() - at - 3;
        debug_assert!(n <= 0xff_ffff);
        self[at..at + 3].copy_from_slice(&(n as u32).to_be_bytes()[1..]);
    }
    fn put_len8(&mut self, f: impl FnOnce(&mut Self)) {
        let at = self.len();
        self.push(0);
        f(self);
        let n = self.len() - at - 1;
        debug_assert!(n <= 0xff);
        self[at] = n as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_rejects_short_input() {
        let mut r = Reader::new(&[0, 3, 1, 2]);
        assert_eq!(r.vec16(), None);
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u24(), Some(0x010203));
        assert_eq!(r.u8(), None);
        assert!(r.finish().is_some());
    }

    #[test]
    fn length_prefixes_are_back_patched() {
        let mut v = Vec::new();
        v.put_len24(|v| {
            v.put_len16(|v| v.extend_from_slice(b"abc"));
            v.put_len8(|v| v.put_u48(0x0102_0304_0506));
        });
        assert_eq!(v, [0, 0, 12, 0, 3, b'a', b'b', b'c', 6, 1, 2, 3, 4, 5, 6]);
        let mut r = Reader::new(&v);
        let mut inner = Reader::new(r.vec24().unwrap());
        assert_eq!(inner.vec16(), Some(&b"abc"[..]));
        assert_eq!(Reader::new(inner.vec8().unwrap()).u48(), Some(0x0102_0304_0506));
        assert!(r.finish().is_some());
    }
}
