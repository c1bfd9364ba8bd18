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

/// The varint at the start of `bytes` and the bytes after it. For bytes
/// this crate wrote (a label set's stored form): it panics on a truncated
/// varint, which such bytes never hold.
#[inline]
pub(crate) fn take_varint(bytes: &[u8]) -> (u64, &[u8]) {
    let mut n = 0u64;
    for (i, &b) in bytes.iter().enumerate() {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return (n, &bytes[i + 1..]);
        }
    }
    panic!("truncated varint in bytes this crate wrote");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_reads_match_writes() {
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
            v.push(0xAB);
            assert_eq!(take_varint(&v), (n, &[0xAB][..]), "{n}");
        }
        // 300 is the protobuf guide's example: 0b10_0101100.
        let mut v = Vec::new();
        put_varint(&mut v, 300);
        assert_eq!(v, [0xAC, 0x02]);
    }
}
