//! Short byte strings that a connection keeps for its whole life (a PSK identity, the peer's
//! connection ID): inline up to [`INLINE`] bytes, on the heap beyond. Most are short, and each
//! heap block costs at least 32 bytes with the allocator's header, more than the bytes it holds,
//! on every one of many idle connections.

use core::fmt;
use core::ops::Deref;

/// The longest value held inline: what fits beside the tag in the 24 bytes a `Vec` takes.
pub(crate) const INLINE: usize = 22;

/// Bytes held inline up to [`INLINE`] bytes, in one heap block beyond.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum ShortBytes {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl ShortBytes {
    pub(crate) fn new(value: &[u8]) -> Self {
        let mut bytes = [0; INLINE];
        match bytes.get_mut(..value.len()) {
            Some(head) => {
                head.copy_from_slice(value);
                Self::Inline { len: value.len() as u8, bytes }
            }
            None => Self::Heap(value.into()),
        }
    }
}

impl From<&[u8]> for ShortBytes {
    fn from(value: &[u8]) -> Self {
        Self::new(value)
    }
}

impl From<Vec<u8>> for ShortBytes {
    fn from(value: Vec<u8>) -> Self {
        if value.len() <= INLINE {
            Self::new(&value)
        } else {
            Self::Heap(value.into_boxed_slice())
        }
    }
}

impl Deref for ShortBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Heap(bytes) => bytes,
        }
    }
}

impl fmt::Debug for ShortBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_inline_and_long_ones_on_the_heap() {
        assert_eq!(size_of::<ShortBytes>(), size_of::<Vec<u8>>());
        assert_eq!(size_of::<Option<ShortBytes>>(), size_of::<Vec<u8>>());
        for len in [0, 1, 7, INLINE - 1, INLINE, INLINE + 1, 255, 300] {
            let value: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let held = ShortBytes::new(&value);
            assert_eq!(&*held, &value[..], "{len} bytes");
            assert_eq!(matches!(held, ShortBytes::Inline { .. }), len <= INLINE, "{len} bytes");
            assert_eq!(ShortBytes::from(value.clone()), held, "{len} bytes, from a Vec");
        }
        assert_eq!(format!("{:?}", ShortBytes::new(&[0xab, 1])), "ab01");
        // The bytes past a short value's length are not part of it.
        assert_ne!(ShortBytes::new(&[7]), ShortBytes::new(&[7, 0]));
    }
}
