//! Protobuf varints: 7 bits a byte, least significant group first, the top
//! bit set on every byte but the last. Written in their shortest form, so
//! the output is the canonical encoding a protobuf library would produce.

/// Appends `n` as a varint.
#[inline]
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut n: u64) {
    if n < 0x80 {
        // Keys, lengths of labels and small counts: one byte.
        buf.push(n as u8);
        return;
    }
    while n >= 0x80 {
        buf.push(n as u8 | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// Bytes of `n` as a varint.
#[inline]
pub(crate) fn varint_len(n: u64) -> usize {
    // 7 bits a byte; 0 still takes one.
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_writes() {
        for n in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            1 << 21,
            1 << 35,
            u64::MAX,
        ] {
            let mut v = Vec::new();
            put_varint(&mut v, n);
            assert_eq!(varint_len(n), v.len(), "{n}");
        }
        // 300 is the protobuf guide's example: 0b10_0101100.
        let mut v = Vec::new();
        put_varint(&mut v, 300);
        assert_eq!(v, [0xAC, 0x02]);
    }
}
