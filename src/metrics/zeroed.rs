//! Slices and blocks of atomics allocated zeroed.
//!
//! A family's slot tables are mostly never written: they wait for label
//! sets. Allocated with `alloc_zeroed` (calloc), their fresh pages cost
//! address space, not resident memory, until something writes them;
//! filling them in a loop would touch every page. Histogram pairs start
//! at zero too, on 128-byte boundaries ([`zeroed_lines`]). (`Box::new_zeroed_slice` does this safely from
//! Rust 1.92; the crate supports 1.85.)

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

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
// SAFETY: an array's bytes are its elements' bytes, each valid when zero.
unsafe impl<T: ZeroValid, const N: usize> ZeroValid for [T; N] {}

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

/// One zero value on the heap, as a raw pointer the caller owns: give it
/// back to [`free_box`].
pub(crate) fn zeroed_box<T: ZeroValid>() -> ptr::NonNull<T> {
    let one = zeroed_slice::<T>(1);
    ptr::NonNull::from(Box::leak(one)).cast()
}

/// Frees a value from [`zeroed_box`].
///
/// # Safety
/// `p` came from `zeroed_box::<T>()`, and nothing uses it any more.
pub(crate) unsafe fn free_box<T: ZeroValid>(p: ptr::NonNull<T>) {
    // SAFETY: the caller's contract: this is the one-element Box that
    // `zeroed_box` leaked.
    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p.as_ptr(), 1)) });
}

/// Publishes `fresh` in `entry` if it is still null, for blocks that any
/// thread may be first to make: returns what `entry` holds afterwards.
/// A thread that loses the race hands its own block to `discard` and uses
/// the winner's, so making a block on first use takes no lock.
pub(crate) fn publish_or_discard<T>(
    entry: &impl Entry<T>,
    fresh: ptr::NonNull<T>,
    discard: impl FnOnce(ptr::NonNull<T>),
) -> ptr::NonNull<T> {
    match entry.publish(fresh.as_ptr()) {
        Ok(_) => fresh,
        Err(winner) => {
            discard(fresh);
            // SAFETY: the exchange failed, so `winner` is not null.
            unsafe { ptr::NonNull::new_unchecked(winner) }
        }
    }
}

/// AcqRel on success: Release publishes the fresh block's zeroes to later
/// Acquire loads. Acquire on failure: the winner's zeroes are seen before
/// this thread writes to them.
const PUBLISHED: Ordering = Ordering::AcqRel;
const LOST: Ordering = Ordering::Acquire;

/// Where [`publish_or_discard`] publishes: std's `AtomicPtr`, or loom's in
/// its model (see `sync`).
pub(crate) trait Entry<T> {
    /// Swaps null for `fresh`; `Err` holds the block another thread
    /// published first.
    fn publish(&self, fresh: *mut T) -> Result<*mut T, *mut T>;
}

impl<T> Entry<T> for std::sync::atomic::AtomicPtr<T> {
    #[inline]
    fn publish(&self, fresh: *mut T) -> Result<*mut T, *mut T> {
        self.compare_exchange(ptr::null_mut(), fresh, PUBLISHED, LOST)
    }
}

#[cfg(all(loom, test))]
impl<T> Entry<T> for loom::sync::atomic::AtomicPtr<T> {
    fn publish(&self, fresh: *mut T) -> Result<*mut T, *mut T> {
        self.compare_exchange(ptr::null_mut(), fresh, PUBLISHED, LOST)
    }
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
/// alignment: that would bring in glibc's `memalign`, 3 KB of the stripped
/// release binary.)
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

/// `len` values of type `T` laid over the aligned words of a block from
/// [`zeroed_lines`], from word `from` on: a block holds counts and, after
/// them, a table of pointers, in one allocation.
///
/// # Safety
/// `block` came from `zeroed_lines(words)`, `from` words and then `len`
/// values of `T` fit in those `words`, those bytes are only ever used as
/// `T` (they start zeroed, a valid `T`), and the block is not freed while
/// the returned slice lives.
#[inline]
pub(crate) unsafe fn lines_as<'a, T: ZeroValid>(
    block: ptr::NonNull<AtomicU64>,
    from: usize,
    len: usize,
) -> &'a [T] {
    debug_assert!(align_of::<T>() <= align_of::<AtomicU64>());
    // SAFETY: as in `lines`, `line_offset + from` stays inside the block;
    // word alignment is at least `T`'s; the caller's contract keeps the
    // `len` values inside the block, used only as `T`, and alive.
    unsafe {
        let start = block.as_ptr().add(line_offset(block.as_ptr()) + from);
        std::slice::from_raw_parts(start.cast::<T>(), len)
    }
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

    #[test]
    fn pointers_over_words_and_boxes_start_null_and_zero() {
        let block = zeroed_lines(8);
        // SAFETY: 4 words, then 4 pointers (at most 8 bytes each) in 8
        // words; those words are used only as pointers; freed below.
        let ptrs = unsafe { lines_as::<AtomicPtr<u8>>(block, 4, 4) };
        assert!(ptrs.iter().all(|p| p.load(Relaxed).is_null()));
        let b = zeroed_box::<[AtomicU64; 3]>();
        // SAFETY: a live box from `zeroed_box`, freed below.
        assert!(unsafe { b.as_ref() }.iter().all(|w| w.load(Relaxed) == 0));
        // SAFETY: from `zeroed_box`; not used again.
        unsafe { free_box(b) };
        // SAFETY: from `zeroed_lines(8)`; `ptrs` is not used again.
        unsafe { free_lines(block, 8) };
    }
}

/// Publishing under loom (`make loom`): two threads race to make one
/// block and each uses whichever won. The block's contents are written
/// with plain stores before it is published, as calloc's zeroes are; loom
/// reports a race if a thread (the loser above all) could read them
/// without the publication ordering those writes first.
#[cfg(all(loom, test))]
mod loom_models {
    use super::super::sync::explore;
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::AtomicPtr;
    use loom::sync::Arc;
    use loom::thread;

    struct Block(UnsafeCell<u64>);

    fn make(mark: u64) -> ptr::NonNull<Block> {
        let block = Box::new(Block(UnsafeCell::new(0)));
        // SAFETY: the block is this thread's alone until it is published.
        block.0.with_mut(|w| unsafe { *w = mark });
        ptr::NonNull::from(Box::leak(block))
    }

    /// Frees a block from `make`.
    ///
    /// # Safety
    /// Nothing uses `p` any more.
    unsafe fn free(p: ptr::NonNull<Block>) {
        // SAFETY: the caller's contract; `p` came from `Box::leak`.
        drop(unsafe { Box::from_raw(p.as_ptr()) });
    }

    #[test]
    fn loom_the_loser_sees_the_winners_block_whole() {
        explore(|| {
            let entry = Arc::new(AtomicPtr::<Block>::new(ptr::null_mut()));
            let racers: Vec<_> = [1u64, 2]
                .into_iter()
                .map(|mark| {
                    let entry = entry.clone();
                    thread::spawn(move || {
                        // SAFETY: a loser's own block was never published.
                        let won = publish_or_discard(&*entry, make(mark), |b| unsafe { free(b) });
                        // SAFETY: a published block lives until the end of
                        // the model, and is only read from now on.
                        let seen = unsafe { won.as_ref() }.0.with(|w| unsafe { *w });
                        assert!(seen == 1 || seen == 2, "saw {seen}");
                        seen
                    })
                })
                .collect();
            let seen: Vec<u64> = racers.into_iter().map(|r| r.join().unwrap()).collect();
            assert_eq!(seen[0], seen[1], "both use the one published block");
            let last = ptr::NonNull::new(entry.load(Ordering::Acquire)).unwrap();
            // SAFETY: every racer has been joined; nothing uses it any more.
            unsafe { free(last) };
        });
    }
}
