//! Slices of atomics allocated zeroed.
//!
//! Histogram shards and family slot tables are mostly never written: a
//! shard waits for its thread, a slot table for label sets. Allocated with
//! `alloc_zeroed` (calloc), their fresh pages cost address space, not
//! resident memory, until something writes them. Filling them in a loop
//! would touch every page. (`Box::new_zeroed_slice` does this safely from
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
}
