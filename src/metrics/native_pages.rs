//! Native bucket counts in pages, each allocated the first time an
//! observation lands in it, so a series holds memory for the part of its
//! window that it has seen and not for the rest.
//!
//! A native window is hundreds of buckets (535 counters a set with
//! [`super::NativeBuckets::seconds`]), of which a latency series fills a
//! few dozen neighbouring ones. client_golang keeps them in a map that grows
//! on observe under a lock; here a pair of sets (see `histogram.rs`) holds a
//! table of page pointers, null until claimed, and a page holds
//! [`PAGE`] neighbouring counters of both sets. The first observation in a
//! page allocates it (once; that is the only allocation on the observe
//! path), every later one finds it with one load.
//!
//! - A shard's table has one writer, its owner, which stores a new page's
//!   pointer with Release so that a scrape's Acquire load sees the zeroes.
//! - The shared pair's table is written by any thread: a new page is
//!   published with a compare-exchange, and a thread that loses the race
//!   frees its page and uses the winner's, so the claim is lock-free.
//!
//! Pages are freed only with the histogram. [`PagedCounts`] is a scrape's
//! side of it: totals for the pages any pair holds, in page order.
//!
//! 16 counters a page: with the latency settings a table is 34 pointers,
//! and 20 neighbouring buckets touch 2 or 3 pages (`tests/series_memory.rs`
//! measures the bytes).

use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use super::zeroed::{free_box, publish_or_discard, zeroed_box};

/// Counters of one set in a page.
pub(crate) const PAGE: usize = 16;

/// A page: [`PAGE`] counters of a pair's set 0, then the same counters of
/// its set 1 (so one claim serves both sets, hot and cold).
pub(crate) type Page = [AtomicU64; 2 * PAGE];

/// Pages for `slots` counters.
pub(crate) fn pages_for(slots: usize) -> usize {
    slots.div_ceil(PAGE)
}

/// Words of a pair block that hold a table of `pages` page pointers.
pub(crate) fn table_words(pages: usize) -> usize {
    (pages * size_of::<AtomicPtr<Page>>()).div_ceil(size_of::<AtomicU64>())
}

/// A pair's page table: one pointer per page of the native counters,
/// null until the page is claimed.
#[derive(Clone, Copy)]
pub(crate) struct PageTable<'a>(&'a [AtomicPtr<Page>]);

impl<'a> PageTable<'a> {
    /// # Safety
    /// Every non-null pointer in `entries` came from [`PageTable::owned`]
    /// or [`PageTable::shared`] (a zeroed page), and no page is freed
    /// while `'a` lasts (only [`PageTable::free`] frees them).
    pub(crate) unsafe fn new(entries: &'a [AtomicPtr<Page>]) -> Self {
        PageTable(entries)
    }

    /// Page `i` of a table only the calling thread claims pages in (a
    /// shard's owner), claimed now if it is new.
    #[inline]
    pub(crate) fn owned(self, i: usize) -> &'a Page {
        let entry = &self.0[i];
        // Relaxed: only this thread stores into this table.
        let page = match NonNull::new(entry.load(Ordering::Relaxed)) {
            Some(page) => page,
            None => claim_owned(entry),
        };
        // SAFETY: a zeroed page, freed only after `'a` (`new`'s contract).
        unsafe { page.as_ref() }
    }

    /// Page `i` of a table any thread may claim pages in (the shared
    /// pair), claimed now if it is new.
    #[inline]
    pub(crate) fn shared(self, i: usize) -> &'a Page {
        let entry = &self.0[i];
        // Acquire: pairs with the claiming thread's compare-exchange, so
        // the page's zeroes are seen before this thread adds to them.
        let page = match NonNull::new(entry.load(Ordering::Acquire)) {
            Some(page) => page,
            None => claim_shared(entry),
        };
        // SAFETY: as in `owned`.
        unsafe { page.as_ref() }
    }

    /// The pages claimed so far, ascending by index, for a scrape.
    pub(crate) fn claimed(self) -> impl Iterator<Item = (usize, &'a Page)> {
        self.0.iter().enumerate().filter_map(|(i, entry)| {
            // Acquire: pairs with the Release (or AcqRel) that published
            // the page, so its zeroes, and every add the scrape's waits
            // ordered before this load, are seen.
            let page = NonNull::new(entry.load(Ordering::Acquire))?;
            // SAFETY: as in `owned`.
            Some((i, unsafe { page.as_ref() }))
        })
    }

    /// Frees every claimed page and clears the table.
    ///
    /// # Safety
    /// No other thread uses the table or its pages any more, and no page
    /// borrowed from it is used after this call.
    pub(crate) unsafe fn free(self) {
        for entry in self.0 {
            let old = entry.swap(ptr::null_mut(), Ordering::Relaxed);
            if let Some(page) = NonNull::new(old) {
                // SAFETY: from `zeroed_box` in a claim, and unused now
                // (the caller's contract).
                unsafe { free_box(page) };
            }
        }
    }
}

#[cold]
#[inline(never)]
fn claim_owned(entry: &AtomicPtr<Page>) -> NonNull<Page> {
    let page = zeroed_box::<Page>();
    // Release: a scrape that loads the pointer (Acquire) sees the zeroes.
    entry.store(page.as_ptr(), Ordering::Release);
    page
}

#[cold]
#[inline(never)]
fn claim_shared(entry: &AtomicPtr<Page>) -> NonNull<Page> {
    publish_or_discard(entry, zeroed_box::<Page>(), |page| {
        // SAFETY: the losing page came from `zeroed_box` just above and
        // was never shared.
        unsafe { free_box(page) }
    })
}

/// A scrape's native totals: [`PAGE`] counts for each page some pair
/// has claimed, in page order. Pages are never given back, so the list
/// only grows, once per page; a scrape after that allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct PagedCounts {
    pages: Vec<u16>,
    counts: Vec<u64>,
}

impl PagedCounts {
    /// Zeroes the counts, keeping the pages.
    pub(crate) fn clear(&mut self) {
        self.counts.fill(0);
    }

    /// Adds `set`'s counters of each claimed page of `table`.
    pub(crate) fn add(&mut self, table: PageTable<'_>, set: usize) {
        let mut at = 0;
        for (i, page) in table.claimed() {
            let i = u16::try_from(i).expect("at most 2^16 pages");
            while at < self.pages.len() && self.pages[at] < i {
                at += 1;
            }
            if self.pages.get(at) != Some(&i) {
                // A page no pair had at the last scrape.
                self.pages.insert(at, i);
                let c = at * PAGE;
                self.counts.splice(c..c, [0; PAGE]);
            }
            let counts = &mut self.counts[at * PAGE..][..PAGE];
            // Relaxed: the scrape's waits ordered these loads after every
            // write to this set, and nothing writes it now.
            for (n, c) in counts.iter_mut().zip(&page[set * PAGE..][..PAGE]) {
                *n += c.load(Ordering::Relaxed);
            }
        }
    }

    /// Totals with these counts, one per slot, every page present (for
    /// tests of what reads them).
    #[cfg(test)]
    pub(crate) fn from_flat(flat: &[u64]) -> Self {
        let pages = pages_for(flat.len());
        let mut counts = flat.to_vec();
        counts.resize(pages * PAGE, 0);
        PagedCounts {
            pages: (0..pages as u16).collect(),
            counts,
        }
    }

    /// The total of counter `slot`.
    pub(crate) fn get(&self, slot: usize) -> u64 {
        let page = (slot / PAGE) as u16;
        match self.pages.binary_search(&page) {
            Ok(at) => self.counts[at * PAGE + slot % PAGE],
            Err(_) => 0,
        }
    }

    /// `(slot, count)` of every non-zero counter in `lo..hi`, ascending.
    pub(crate) fn nonzero(&self, lo: usize, hi: usize) -> Nonzero<'_> {
        // The first page that may hold `lo`.
        let at = self.pages.partition_point(|&p| usize::from(p) < lo / PAGE);
        Nonzero {
            counts: self,
            at: at * PAGE,
            lo,
            hi,
        }
    }
}

/// See [`PagedCounts::nonzero`].
#[derive(Clone)]
pub(crate) struct Nonzero<'a> {
    counts: &'a PagedCounts,
    /// Next index into `counts.counts`.
    at: usize,
    lo: usize,
    hi: usize,
}

impl Iterator for Nonzero<'_> {
    type Item = (usize, u64);

    #[inline]
    fn next(&mut self) -> Option<(usize, u64)> {
        let PagedCounts { pages, counts } = self.counts;
        while self.at < counts.len() {
            let i = self.at;
            self.at += 1;
            let slot = usize::from(pages[i / PAGE]) * PAGE + i % PAGE;
            if slot >= self.hi {
                self.at = counts.len();
                return None;
            }
            if slot >= self.lo && counts[i] > 0 {
                return Some((slot, counts[i]));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::zeroed::zeroed_slice;

    #[test]
    fn pages_are_claimed_once_and_read_in_order() {
        let entries = zeroed_slice::<AtomicPtr<Page>>(5);
        // SAFETY: a fresh table, freed below after the last use.
        let table = unsafe { PageTable::new(&entries) };
        assert_eq!(table.claimed().count(), 0);
        table.shared(3)[1].fetch_add(2, Ordering::Relaxed); // set 0, slot 49
        table.shared(3)[PAGE + 1].fetch_add(5, Ordering::Relaxed); // set 1
        table.owned(0)[0].fetch_add(1, Ordering::Relaxed); // set 0, slot 0
        assert_eq!(table.claimed().map(|p| p.0).collect::<Vec<_>>(), [0, 3]);
        let mut totals = PagedCounts::default();
        totals.add(table, 1);
        totals.add(table, 0);
        assert_eq!((totals.get(0), totals.get(49), totals.get(50)), (1, 7, 0));
        assert_eq!(totals.get(70), 0, "a page nobody claimed");
        assert_eq!(totals.nonzero(0, 80).collect::<Vec<_>>(), [(0, 1), (49, 7)]);
        assert_eq!(totals.nonzero(1, 49).count(), 0);
        assert_eq!(totals.nonzero(49, 50).collect::<Vec<_>>(), [(49, 7)]);
        totals.clear();
        assert_eq!(totals.nonzero(0, 80).count(), 0);
        // SAFETY: nothing uses the table or its pages after this.
        unsafe { table.free() };
    }

    /// Threads racing to claim one page of a shared table all add to
    /// the one page that won.
    #[test]
    fn racing_claims_keep_every_add() {
        let entries = zeroed_slice::<AtomicPtr<Page>>(2);
        // SAFETY: freed below, after the threads are joined.
        let table = unsafe { PageTable::new(&entries) };
        let adds = crate::metrics::stress(1_000) as u64;
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..adds {
                        table.shared(1)[7].fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        let mut totals = PagedCounts::default();
        totals.add(table, 0);
        assert_eq!(totals.get(PAGE + 7), 3 * adds);
        // SAFETY: the threads are joined; nothing uses the table after this.
        unsafe { table.free() };
    }
}
