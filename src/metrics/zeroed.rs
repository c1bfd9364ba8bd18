//! Slices and blocks of atomics allocated zeroed.
//!
//! A family's slot tables are mostly never written: they wait for label
//! sets. Allocated with `alloc_zeroed` (calloc), their fresh pages cost
//! address space, not resident memory, until something writes them;
//! filling them in a loop would touch every page. Histogram pairs start
//! at zero too, on 128-byte boundaries ([`zeroed_lines`]). (`Box::new_zeroed_slice` does this safely from
//! Rust 1.92; the crate supports 1.85.)

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64};

/// Types for which all-zero bytes are a valid value.
///
/// # Safety
/// An implementor must be valid when every byte is zero.
pub(crate) unsafe trait ZeroValid {}

// SAFETY: `AtomicU64` has the size and bit validity of `u64` (documented),
// so all-zero bytes are the value 0.
unsafe impl ZeroValid for AtomicU64 {}
// SAFETY: `AtomicPtr<T>` has the size and bit validity of `*mut T`
// (documented), so all-zero bytes are the null pointer, a valid value.
unsafe impl<T> ZeroValid for AtomicPtr<T> {}

/// `len` zero values, from zeroed memory.
pub(crate) fn zeroed_slice<T: ZeroValid>(len: usize) -> Box<[T]> {
    if len == 0 {
        return Box::new([]);
    }
    let layout = std::alloc::Layout::array::<T>(len).expect("slice size");
    // SAFETY: the layout's size is non-zero: `len` is not, and neither
    // implementor is zero-sized.
    let p = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if p.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: `p` is a live allocation from the global allocator with the
    // layout of `[T; len]`, which is what the Box frees it with; its bytes
    // are zero, a valid `T` (`ZeroValid`); nothing else points to it.
    unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p, len)) }
}

/// Bytes of alignment for [`zeroed_lines`]: two cache lines, which x86
/// fetches together, so two blocks never share a line.
pub(crate) const LINE_ALIGN: usize = 128;
/// Words of slack a block needs to start its lines on a boundary.
const SLACK: usize = LINE_ALIGN / size_of::<AtomicU64>() - 1;

/// A block of at least `words` zeroed atomics, for one thread to write;
/// [`lines`] gives the `words` that start on a [`LINE_ALIGN`] boundary.
/// Free it with [`free_lines`] and the same `words`. (Allocated with the
/// slice's own alignment and `SLACK` words more, not with a 128-byte
/// alignment: that would bring in glibc's `memalign`, 3 KB of binary.)
pub(crate) fn zeroed_lines(words: usize) -> ptr::NonNull<AtomicU64> {
    ptr::NonNull::from(Box::leak(zeroed_slice::<AtomicU64>(words + SLACK))).cast()
}

/// Where the aligned words of a block from [`zeroed_lines`] start.
#[inline]
fn line_offset(block: *const AtomicU64) -> usize {
    // 8-byte words, so the distance to the next boundary is whole words,
    // at most `SLACK`.
    (block.addr().wrapping_neg() % LINE_ALIGN) / size_of::<AtomicU64>()
}

/// The `words` aligned atomics of a block from [`zeroed_lines`].
///
/// # Safety
/// `block` came from `zeroed_lines(words)` with this `words` and is not
/// freed while the returned slice lives.
#[inline]
pub(crate) unsafe fn lines<'a>(block: ptr::NonNull<AtomicU64>, words: usize) -> &'a [AtomicU64] {
    // SAFETY: the block holds `words + SLACK` initialised atomics (zeroed
    // by `zeroed_slice`), and `line_offset` is at most `SLACK`; the caller
    // keeps the block alive.
    unsafe { std::slice::from_raw_parts(block.as_ptr().add(line_offset(block.as_ptr())), words) }
}

/// Frees a block from [`zeroed_lines`].
///
/// # Safety
/// `block` came from `zeroed_lines(words)` with this `words`, and nothing
/// uses it any more.
pub(crate) unsafe fn free_lines(block: ptr::NonNull<AtomicU64>, words: usize) {
    let slice = ptr::slice_from_raw_parts_mut(block.as_ptr(), words + SLACK);
    // SAFETY: the caller's contract: this is the Box `zeroed_lines` leaked,
    // with its length and the global allocator's layout for it.
    drop(unsafe { Box::from_raw(slice) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn zeroed_values_read_as_zero_and_null() {
        let words = zeroed_slice::<AtomicU64>(300);
        assert!(words.iter().all(|w| w.load(Relaxed) == 0));
        words[299].store(7, Relaxed);
        assert_eq!(words[299].load(Relaxed), 7);
        let ptrs = zeroed_slice::<AtomicPtr<u8>>(5);
        assert!(ptrs.iter().all(|p| p.load(Relaxed).is_null()));
        assert!(zeroed_slice::<AtomicU64>(0).is_empty());
    }

    #[test]
    fn lines_are_aligned_zeroed_and_freed() {
        let block = zeroed_lines(40);
        // SAFETY: from `zeroed_lines(40)`, freed below after the last use.
        let words = unsafe { lines(block, 40) };
        assert_eq!(words.as_ptr().addr() % LINE_ALIGN, 0);
        assert_eq!(words.len(), 40);
        assert!(words.iter().all(|w| w.load(Relaxed) == 0));
        words[39].store(1, Relaxed);
        // SAFETY: from `zeroed_lines(40)`; `words` is not used again.
        unsafe { free_lines(block, 40) };
    }
}
