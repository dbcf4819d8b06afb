//! Duplicate extension detection for hellos.

/// The extension types seen so far in one hello, to refuse duplicates (RFC 5246 §7.4.1.4) in
/// time linear in their number: a short list while there are few (every real hello), a bit
/// per possible type beyond that (a hello of thousands of empty extensions costs no more per
/// extension than a normal one).
#[derive(Default)]
pub(crate) struct SeenTypes {
    few: [u16; 16],
    len: usize,
    many: Option<Box<[u64; 1024]>>,
}

impl SeenTypes {
    /// Records `ty`; `false` if it was already there.
    pub(crate) fn insert(&mut self, ty: u16) -> bool {
        if let Some(bits) = &mut self.many {
            let (word, bit) = (usize::from(ty / 64), 1u64 << (ty % 64));
            let fresh = bits[word] & bit == 0;
            bits[word] |= bit;
            return fresh;
        }
        if self.few[..self.len].contains(&ty) {
            return false;
        }
        if self.len < self.few.len() {
            self.few[self.len] = ty;
            self.len += 1;
            return true;
        }
        let mut bits = Box::new([0u64; 1024]);
        for t in self.few.iter().copied().chain([ty]) {
            bits[usize::from(t / 64)] |= 1u64 << (t % 64);
        }
        self.many = Some(bits);
        true
    }
}
