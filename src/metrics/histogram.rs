//! A histogram with lock-free `observe` and consistent scrapes.
//!
//! # The hot/cold protocol
//!
//! A scrape must never show a half-finished observation: `_count` has to equal
//! the `+Inf` bucket and `_sum` has to cover exactly the observations counted,
//! while other threads keep observing. Locking `observe` would give that at a
//! price on every request; instead each histogram keeps two sets of counts
//! (bucket counters, sum, completed count) and a single word, `started`, whose
//! top bit selects the *hot* set and whose lower 63 bits count observations
//! begun. This is the scheme of client_golang's histogram, with one change
//! that makes scrapes cheaper (below).
//!
//! An observation:
//! 1. `started.fetch_add(1)` — one atomic step that both counts the
//!    observation as begun and reads which set is hot;
//! 2. adds to the sum of that set;
//! 3. for native histograms, adds one to its native bucket of that set
//!    (Relaxed: step 4's Release publishes it), in a page claimed on first
//!    touch (see `native_pages.rs`);
//! 4. adds one to its bucket of that set (Release). Each observation adds to
//!    exactly one bucket, so the buckets of a set add up to the observations
//!    finished on it; client_golang keeps a separate "completed" counter for
//!    this, which costs one more atomic read-modify-write per observation.
//!
//! A scrape (scrapes of one histogram are serialised by `scrape`; observers
//! never touch it):
//! 1. reads the cold set, which nothing has written since the previous
//!    scrape made it cold and waited for its last writer: it is complete,
//!    and its buckets add up to `c`, the observations that ever chose it;
//! 2. flips the hot bit with `started.fetch_add(1 << 63)`, learning in the
//!    same step `n`, the number of observations begun before the flip. From
//!    here on new observations go to the set just read;
//! 3. the observations begun before the flip on the now-cold set number
//!    `n - c`; the scrape waits until that set's buckets add up to that:
//!    every observation that chose it has finished, and none can start on
//!    it again;
//! 4. reads it, and adds the two readings into the `buckets` slice and
//!    the native totals it holds: every observation begun before the flip,
//!    exactly once, so buckets, sum and count agree;
//! 5. hands the totals to the caller as a [`HistogramReading`] while it
//!    still holds `scrape`, so they cannot change under an encoder.
//!
//! client_golang instead moves the cold counts into the hot set and zeroes
//! them on every scrape, which costs an atomic read-modify-write per bucket;
//! here a scrape does plain loads and one flip. The sets are never reset, so
//! their counts only grow. The scrape's wait is short: it lasts as long as the
//! slowest observation in flight, a few atomic adds. (An earlier version
//! kept a copy of the cold set's values from one scrape to the next instead
//! of reading that set again in step 1; reading it costs the same loads and
//! keeps no copy, which for native buckets was most of a series' memory.)
//!
//! # Shards: one writer, one locked instruction
//!
//! The protocol above lets any number of threads write one pair of sets,
//! at three atomic read-modify-writes an observation, all on shared cache
//! lines. A lock would cost two, so a held histogram was slower than
//! prometheus-client's, and two threads on one series fought over lines.
//! So a histogram also keeps one *shard* (a pair of sets of its own) per
//! thread slot ([`thread_slot`](super::thread_slot): one slot per core, at
//! most 3, claimed by the first threads that observe). A shard has a single
//! writer, its owner, which adds with plain loads and stores. The scrape
//! still flips the shard's hot bit, and must learn whether the owner is
//! writing the set it is about to read:
//! 1. the owner makes its `seq` odd (SeqCst store), then loads the hot bit
//!    (SeqCst), adds to that set, and makes `seq` even again (Release);
//! 2. the scrape flips the hot bit (SeqCst), then loads `seq` (SeqCst); if it
//!    is odd, it waits until it changes.
//!
//! Under sequential consistency one of the two sees the other: either the
//! scrape sees the odd `seq` and waits for that observation, or the owner's
//! load sees the flip and writes the new hot set. The odd store is the only
//! locked instruction of an owned observation. The shared pair stays for
//! threads without a slot. A scrape reads every pair this way and adds
//! them up; each pair's reading is complete, so the total is too.
//!
//! A shard is allocated the first time its slot's thread observes the
//! series, and the shared pair the first time a thread without a slot
//! does, so a series costs memory only for the threads that use it: a
//! pair is 256 bytes with the default buckets (512 with the page table of
//! [`NativeBuckets::seconds`]), and a native pair adds 256 bytes for each
//! page of 16 buckets its observations touched (`tests/series_memory.rs`
//! has the totals).

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::atomic_f64::add_to_bits;
use super::exemplar::{ExemplarSlot, TraceContext};
use super::native::{NativeBuckets, NativeReading, NativeSnapshot};
use super::native_pages::{pages_for, table_words, PageTable, PagedCounts, PAGE};
use super::thread_slot;
use super::zeroed::{
    free_lines, lines, lines_as, publish_or_discard, zeroed_lines, zeroed_slice, LINE_ALIGN,
};
use super::{HistogramReading, Labels, Metric, MetricError, MetricType, Visitor};

/// The default bucket upper bounds, in seconds (client_golang's defaults).
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const HOT_BIT: u64 = 1 << 63;
const COUNT_MASK: u64 = HOT_BIT - 1;

/// Validated bucket upper bounds, shared by every series of a family.
///
/// ```
/// use tinymon::metrics::Buckets;
/// assert!(Buckets::new(&[0.1, 1.0, 10.0]).is_ok());
/// assert!(Buckets::new(&[1.0, 0.1]).is_err());
/// assert_eq!(Buckets::default().bounds().len(), 11);
/// ```
#[derive(Clone, Debug)]
pub struct Buckets {
    bounds: Arc<[f64]>,
    /// Each series keeps one exemplar per bucket (see [`Buckets::with_exemplars`]).
    exemplars: bool,
    /// Native buckets beside the classic ones (see [`Buckets::with_native`]).
    native: Option<NativeBuckets>,
}

impl Buckets {
    /// Checks that `bounds` is non-empty, finite and strictly increasing.
    /// The `+Inf` bucket is implied; do not list it.
    pub fn new(bounds: &[f64]) -> Result<Self, MetricError> {
        if bounds.is_empty() {
            return Err(MetricError::InvalidBuckets("no bucket bounds".into()));
        }
        if let Some(b) = bounds.iter().find(|b| !b.is_finite()) {
            return Err(MetricError::InvalidBuckets(format!(
                "bound {b} is not finite (+Inf is always added)"
            )));
        }
        if let Some(w) = bounds.windows(2).find(|w| w[0] >= w[1]) {
            return Err(MetricError::InvalidBuckets(format!(
                "bounds must increase strictly, but {} is followed by {}",
                w[0], w[1]
            )));
        }
        Ok(Buckets {
            bounds: bounds.into(),
            exemplars: false,
            native: None,
        })
    }

    /// Histograms over these buckets keep the newest exemplar of each
    /// bucket ([`Histogram::observe_with_exemplar`]); 48 bytes a bucket.
    pub fn with_exemplars(mut self) -> Self {
        self.exemplars = true;
        self
    }

    /// Histograms over these buckets also keep native buckets, which the
    /// protobuf format writes beside the classic ones; text formats carry
    /// the classic buckets only. Native counts live in pages of 16
    /// neighbouring buckets, allocated when an observation first lands in
    /// one: each thread that observes a series from a shard of its own (and
    /// the shared pair, for threads without one) holds 256 bytes a page it
    /// touched and a table of page pointers (8 bytes a page of the window),
    /// and the series' scrape totals 128 bytes a page.
    ///
    /// ```
    /// use tinymon::metrics::{Buckets, Histogram, NativeBuckets};
    /// let h = Histogram::new(Buckets::default().with_native(NativeBuckets::new(1.1, 1e-6, 240).unwrap()));
    /// h.observe(0.003);
    /// let native = h.snapshot().native.unwrap();
    /// assert_eq!(native.schema, 3);
    /// assert_eq!(native.positive, vec![(-67, 1)]); // (2^(-68/8), 2^(-67/8)]
    /// ```
    pub fn with_native(mut self, native: NativeBuckets) -> Self {
        self.native = Some(native);
        self
    }

    /// The finite upper bounds.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// The native-bucket settings, if any.
    pub fn native(&self) -> Option<&NativeBuckets> {
        self.native.as_ref()
    }
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets::new(&DEFAULT_BUCKETS).expect("default buckets are valid")
    }
}

/// Words before a pair's two sets: `started` (top bit: which set is hot;
/// lower 63 bits, in the shared pair only: observations begun) and `seq`
/// (in a shard: odd while its owner is observing). After the two sets, a
/// native histogram's pair holds its page table.
const STARTED: usize = 0;
const SEQ: usize = 1;
const HEAD: usize = 2;
/// Pairs start on 128-byte boundaries (two cache lines, which x86 fetches
/// together), so two threads' shards never share a line.
const LINE_WORDS: usize = LINE_ALIGN / 8;

/// Spins, then yields, until `done` holds. Waits of a scrape last as long
/// as one observation in flight, a few instructions unless its thread was
/// descheduled, which is when yielding lets it run.
fn wait_until(mut done: impl FnMut() -> bool) {
    let mut spins = 0u32;
    while !done() {
        spins += 1;
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Adds one to a count that only the calling thread writes: a plain load
/// and store, no read-modify-write.
#[inline]
fn bump(count: &AtomicU64) {
    count.store(count.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// A consistent reading of a histogram, copied out.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// Cumulative counts, one per bound plus the final `+Inf`.
    pub cumulative: Vec<u64>,
    /// Sum of the observations counted.
    pub sum: f64,
    /// Observations counted; equals the last cumulative count.
    pub count: u64,
    /// The native buckets, when the histogram keeps them.
    pub native: Option<NativeSnapshot>,
}

/// A histogram of `f64` observations.
///
/// ```
/// use tinymon::metrics::{Buckets, Histogram};
/// let h = Histogram::new(Buckets::default());
/// h.observe(0.003);
/// h.observe(0.7);
/// let s = h.snapshot();
/// assert_eq!(s.count, 2);
/// assert_eq!(s.cumulative[0], 1); // le="0.005"
/// assert_eq!(*s.cumulative.last().unwrap(), 2); // le="+Inf"
/// ```
pub struct Histogram {
    buckets: Buckets,
    /// Classic buckets, `+Inf` included.
    len: usize,
    /// Words of one set: `len` bucket counts (not cumulative), then the
    /// sum's bits.
    set_words: usize,
    /// Native pages (of `PAGE` bucket counters each) in a pair's table;
    /// 0 without native buckets.
    pages: usize,
    /// Words of one pair (head, two sets, page table), in whole 128-byte
    /// lines.
    pair_words: usize,
    /// Blocks of `pair_words` words from `zeroed_lines`: one per thread
    /// slot, null until the slot's owner first observes, then its shard;
    /// and last the shared pair, null until a thread without a slot
    /// observes.
    pairs: Box<[AtomicPtr<AtomicU64>]>,
    /// One per bucket when the buckets keep exemplars, else empty.
    exemplars: Box<[ExemplarSlot]>,
    /// Serialises scrapes of this histogram (two concurrent flips would break
    /// the waits) and holds the totals the scrape hands out. Observers
    /// never take it.
    scrape: Mutex<Reading>,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("buckets", &self.buckets)
            .finish_non_exhaustive()
    }
}

impl Drop for Histogram {
    fn drop(&mut self) {
        for i in 0..self.pairs.len() {
            if let Some(block) = std::ptr::NonNull::new(*self.pairs[i].get_mut()) {
                // SAFETY: with `&mut self` no observer or scrape can still
                // use the pair or its pages, and neither is used after this.
                unsafe { self.table(block).free() };
                // SAFETY: a non-null pair came from
                // `zeroed_lines(self.pair_words)`, unused from here on.
                unsafe { free_lines(block, self.pair_words) };
            }
        }
    }
}

/// The totals a scrape hands out: filled by each scrape before its
/// visitor runs, so a reading is plain memory however often an encoder
/// walks it.
#[derive(Debug)]
struct Reading {
    /// Counts per bucket, 8 bytes a bucket, while the pairs are gathered;
    /// `read` then sums them in place into the cumulative counts it hands
    /// out.
    buckets: Box<[u64]>,
    /// Native totals (absolute per bucket, not cumulative), for the pages
    /// some pair has claimed.
    native: PagedCounts,
}

impl Histogram {
    /// An empty histogram over `buckets`.
    pub fn new(buckets: Buckets) -> Self {
        let len = buckets.bounds.len() + 1;
        let slots = buckets.native.as_ref().map_or(0, |n| n.layout().slots());
        let pages = pages_for(slots);
        let set_words = len + 1;
        let pair_words = (HEAD + 2 * set_words + table_words(pages)).next_multiple_of(LINE_WORDS);
        let exemplars = if buckets.exemplars {
            (0..len).map(|_| ExemplarSlot::default()).collect()
        } else {
            Box::new([]) as Box<[ExemplarSlot]>
        };
        Histogram {
            buckets,
            len,
            set_words,
            pages,
            pair_words,
            pairs: zeroed_slice(thread_slot::slots() + 1),
            exemplars,
            scrape: Mutex::new(Reading {
                buckets: vec![0; len].into(),
                native: PagedCounts::default(),
            }),
        }
    }

    /// Records one observation. Lock-free and allocation-free.
    #[inline]
    pub fn observe(&self, v: f64) {
        self.observe_at(self.index(v), v);
    }

    /// Records one observation made for `trace`, which becomes its bucket's
    /// exemplar when the buckets keep exemplars. Lock-free and
    /// allocation-free; `None` is a plain [`Histogram::observe`].
    #[inline]
    pub fn observe_with_exemplar(&self, v: f64, trace: Option<&TraceContext>) {
        let index = self.index(v);
        self.observe_at(index, v);
        if let (Some(trace), Some(slot)) = (trace, self.exemplars.get(index)) {
            slot.record(trace, v);
        }
    }

    /// The bucket of `v`: `le` is inclusive; NaN compares false everywhere
    /// and lands in +Inf, as in client_golang.
    #[inline]
    fn index(&self, v: f64) -> usize {
        let bounds = &self.buckets.bounds;
        if bounds.len() <= 16 {
            bounds.iter().position(|&b| v <= b).unwrap_or(bounds.len())
        } else {
            bounds.partition_point(|&b| b < v)
        }
    }

    #[inline]
    fn observe_at(&self, index: usize, v: f64) {
        let native = (self.buckets.native.as_ref()).and_then(|n| n.layout().slot(v));
        // A slot is below `thread_slot::slots()`, the number of shards
        // (`pairs` holds them and then the shared pair).
        match thread_slot::current() {
            Some(slot) => self.observe_owned(self.shard(slot), index, native, v),
            None => self.observe_shared(self.shared(), index, native, v),
        }
    }

    /// The head and two sets of a pair block.
    #[inline]
    fn sets(&self, block: std::ptr::NonNull<AtomicU64>) -> &[AtomicU64] {
        // SAFETY: every pair block comes from `zeroed_lines(self.pair_words)`
        // and is freed only in `Drop`, after the last borrow of `self`.
        unsafe { lines(block, HEAD + 2 * self.set_words) }
    }

    /// Set `i` (0 or 1) of a pair's head and sets.
    #[inline]
    fn set<'p>(&self, pair: &'p [AtomicU64], i: usize) -> &'p [AtomicU64] {
        &pair[HEAD + i * self.set_words..][..self.set_words]
    }

    /// The page table after a pair block's sets.
    #[inline]
    fn table(&self, block: std::ptr::NonNull<AtomicU64>) -> PageTable<'_> {
        // SAFETY: `pair_words` has room for `table_words(self.pages)` words
        // after the head and sets; those words are only ever used as page
        // pointers (zero is null); the block lives until `Drop`. Pages are
        // claimed only through `PageTable` and freed only in `Drop`.
        unsafe {
            let entries = lines_as(block, HEAD + 2 * self.set_words, self.pages);
            PageTable::new(entries)
        }
    }

    /// The shard of `slot`, made on the first call; only the slot's owner
    /// calls this.
    #[inline]
    fn shard(&self, slot: usize) -> std::ptr::NonNull<AtomicU64> {
        // Relaxed: only the slot's owner stores the pointer, and a new
        // owner synchronised with the old one when it claimed the slot.
        match std::ptr::NonNull::new(self.pairs[slot].load(Ordering::Relaxed)) {
            Some(block) => block,
            None => self.new_shard(slot),
        }
    }

    /// The shared pair, made on the first call.
    #[inline]
    fn shared(&self) -> std::ptr::NonNull<AtomicU64> {
        // Acquire: another thread may have made it; pairs with the
        // compare-exchange in `new_shared`, so its zeroes are seen.
        match std::ptr::NonNull::new(self.pairs[self.pairs.len() - 1].load(Ordering::Acquire)) {
            Some(block) => block,
            None => self.new_shared(),
        }
    }

    /// Allocates `slot`'s shard: once per thread slot and series, the
    /// first time that slot observes it (as a family allocates a series
    /// on its first use).
    #[cold]
    #[inline(never)]
    fn new_shard(&self, slot: usize) -> std::ptr::NonNull<AtomicU64> {
        let block = zeroed_lines(self.pair_words);
        // Release: a scrape that loads the pointer (Acquire) sees the zeroes.
        self.pairs[slot].store(block.as_ptr(), Ordering::Release);
        block
    }

    /// Allocates the shared pair, the first time a thread without a slot
    /// observes; threads that race here keep the first one published.
    #[cold]
    #[inline(never)]
    fn new_shared(&self) -> std::ptr::NonNull<AtomicU64> {
        let shared = &self.pairs[self.pairs.len() - 1];
        publish_or_discard(shared, zeroed_lines(self.pair_words), |block| {
            // SAFETY: the losing block came from
            // `zeroed_lines(self.pair_words)` just above and was never shared.
            unsafe { free_lines(block, self.pair_words) }
        })
    }

    /// Observes into this thread's own shard, which no other thread writes.
    #[inline]
    fn observe_owned(
        &self,
        block: std::ptr::NonNull<AtomicU64>,
        index: usize,
        native: Option<usize>,
        v: f64,
    ) {
        let pair = self.sets(block);
        // The native counter's page, found (or claimed) before the
        // handshake below, so the window a scrape may wait on stays short.
        // Single writer here too: only this thread claims pages in its
        // shard's table.
        let native = native.map(|slot| (self.table(block).owned(slot / PAGE), slot % PAGE));
        let seq = &pair[SEQ];
        // Relaxed: only this thread writes `seq` (a new owner of the slot
        // synchronised with the old one when it claimed the slot).
        let s = seq.load(Ordering::Relaxed);
        // SeqCst, with the SeqCst load of `started` after it: a scrape
        // flips `started` and then loads `seq`, both SeqCst, so either it
        // sees this odd value and waits, or this load sees its flip and the
        // adds go to the new hot set (Dekker's handshake). This store is
        // the observation's one locked instruction on x86.
        seq.store(s + 1, Ordering::SeqCst);
        let hot = (pair[STARTED].load(Ordering::SeqCst) >> 63) as usize;
        let set = self.set(pair, hot);
        // Relaxed loads and stores: single writer, and published by the
        // Release store of `seq` below.
        bump(&set[index]);
        let sum = &set[self.len];
        sum.store(
            (f64::from_bits(sum.load(Ordering::Relaxed)) + v).to_bits(),
            Ordering::Relaxed,
        );
        if let Some((page, at)) = native {
            bump(&page[hot * PAGE + at]);
        }
        // Release: a scrape that reads this value sees every add above.
        seq.store(s + 2, Ordering::Release);
    }

    /// Observes into the shared pair, which any thread may write.
    #[inline]
    fn observe_shared(
        &self,
        block: std::ptr::NonNull<AtomicU64>,
        index: usize,
        native: Option<usize>,
        v: f64,
    ) {
        let pair = self.sets(block);
        // Relaxed: choosing the set needs only the atomicity of this RMW; the
        // scrape learns about the writes below through the buckets.
        let hot = (pair[STARTED].fetch_add(1, Ordering::Relaxed) >> 63) as usize;
        let set = self.set(pair, hot);
        // Relaxed: published by the bucket's Release below.
        add_to_bits(&set[self.len], v);
        if let Some(slot) = native {
            // Relaxed: published by the bucket's Release below, like the
            // sum (and so is the page's claim, if this add made it).
            let page = self.table(block).shared(slot / PAGE);
            page[hot * PAGE + slot % PAGE].fetch_add(1, Ordering::Relaxed);
        }
        set[index].fetch_add(1, Ordering::Release);
    }

    /// The bucket bounds.
    pub fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    /// Reads the histogram with the scrape protocol and hands the reading
    /// to `f`. Other scrapes of this histogram wait until `f` returns;
    /// observers never do.
    pub fn read<R>(&self, f: impl FnOnce(&HistogramReading<'_>) -> R) -> R {
        let mut reading = self.scrape.lock();
        let Reading { buckets, native } = &mut *reading;
        buckets.fill(0);
        native.clear();
        let mut sum = 0.0;
        let shared = self.pairs.len() - 1;
        for (i, pair) in self.pairs.iter().enumerate() {
            // Acquire: pairs with `new_shard`'s Release and `new_shared`'s
            // compare-exchange, so the pair's zeroes are seen.
            if let Some(block) = std::ptr::NonNull::new(pair.load(Ordering::Acquire)) {
                self.gather(block, i == shared, buckets, native, &mut sum);
            }
        }
        let mut total = 0;
        for c in buckets.iter_mut() {
            total += *c;
            *c = total;
        }
        f(&HistogramReading {
            bounds: &self.buckets.bounds,
            cumulative: buckets,
            sum,
            count: total,
            exemplars: &self.exemplars,
            native: (self.buckets.native.as_ref()).map(|n| NativeReading::new(n.layout(), native)),
        })
    }

    /// Steps 1 to 4 of a scrape for one pair: reads its cold set, flips
    /// it, waits until the newly cold set is complete and reads that too,
    /// adding both to the totals. `shared` is set for the shared pair,
    /// whose writers are counted by `started`; a shard has one writer,
    /// followed by `seq`.
    #[inline]
    fn gather(
        &self,
        block: std::ptr::NonNull<AtomicU64>,
        shared: bool,
        per_bucket: &mut [u64],
        native: &mut PagedCounts,
        sum: &mut f64,
    ) {
        let (pair, table) = (self.sets(block), self.table(block));
        // Relaxed: only scrapes flip the bit, and this one holds `scrape`.
        let hot = (pair[STARTED].load(Ordering::Relaxed) >> 63) as usize;
        // Relaxed: the previous scrape waited for every write to the cold
        // set (and `scrape` orders that scrape before this one); a pair
        // made since is zeroed, seen through the Acquire load of its
        // pointer. Nothing writes the cold set now.
        let on_cold = self.add_set(self.set(pair, 1 - hot), per_bucket, sum);
        native.add(table, 1 - hot);
        // SeqCst: for a shard, the other half of the handshake in
        // `observe_owned` (with the SeqCst load of `seq` below); for the
        // shared pair, Acquire would do.
        let before = pair[STARTED].fetch_add(HOT_BIT, Ordering::SeqCst);
        debug_assert_eq!((before >> 63) as usize, hot);
        let now_cold = self.set(pair, hot);
        if shared {
            // Every observation begun before the flip chose one of the
            // sets, so this many chose the now-cold one; wait until its
            // buckets (Acquire, pairing with each observer's Release) add
            // up to them.
            let on_now_cold = (before & COUNT_MASK) - on_cold;
            let buckets = &now_cold[..self.len];
            wait_until(|| {
                buckets
                    .iter()
                    .map(|b| b.load(Ordering::Acquire))
                    .sum::<u64>()
                    == on_now_cold
            });
        } else {
            let seq = &pair[SEQ];
            let s = seq.load(Ordering::SeqCst);
            if s & 1 == 1 {
                // The owner is observing, perhaps into the now-cold set.
                // Acquire: pairs with its Release of the next value.
                wait_until(|| seq.load(Ordering::Acquire) != s);
            }
        }
        // Relaxed: the waits above ordered these loads after every write
        // to the now-cold set, and nothing writes it any more.
        self.add_set(now_cold, per_bucket, sum);
        native.add(table, hot);
    }

    /// Adds a complete set's bucket counts and sum to the totals, and
    /// returns its observations (its buckets added up).
    #[inline]
    fn add_set(&self, set: &[AtomicU64], per_bucket: &mut [u64], sum: &mut f64) -> u64 {
        let mut count = 0;
        for (c, total) in set[..self.len].iter().zip(per_bucket) {
            // Relaxed: see the callers; the set is complete and unwritten.
            let n = c.load(Ordering::Relaxed);
            *total += n;
            count += n;
        }
        *sum += f64::from_bits(set[self.len].load(Ordering::Relaxed));
        count
    }

    /// A consistent reading, copied out (allocates; encoders use [`Histogram::read`]).
    pub fn snapshot(&self) -> HistogramSnapshot {
        self.read(|r| HistogramSnapshot {
            cumulative: r.cumulative().to_vec(),
            sum: r.sum(),
            count: r.count(),
            native: r.native().map(NativeSnapshot::of),
        })
    }
}

impl Metric for Histogram {
    type Config = Buckets;
    const TYPE: MetricType = MetricType::Histogram;

    fn with_config(buckets: &Buckets) -> Self {
        Histogram::new(buckets.clone())
    }

    fn read(&self, labels: Labels<'_>, out: &mut dyn Visitor<'_>) {
        Histogram::read(self, |reading| out.histogram(labels, reading));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// Stops the observers however the scraping thread leaves a scope, so a
    /// failed assertion fails the test instead of hanging it.
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    #[test]
    fn bucket_validation() {
        assert!(Buckets::new(&[]).is_err());
        assert!(Buckets::new(&[1.0, 1.0]).is_err());
        assert!(Buckets::new(&[2.0, 1.0]).is_err());
        assert!(Buckets::new(&[0.1, f64::NAN]).is_err());
        assert!(Buckets::new(&[0.1, f64::INFINITY]).is_err());
        assert!(Buckets::new(&[-1.0, 0.0, 1e6]).is_ok());
        assert_eq!(Buckets::default().bounds(), DEFAULT_BUCKETS);
    }

    #[test]
    fn observations_land_in_inclusive_buckets() {
        let h = Histogram::new(Buckets::new(&[1.0, 2.0]).unwrap());
        for v in [0.5, 1.0, 1.5, 2.0, 3.0, f64::NAN] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.cumulative, vec![2, 4, 6]);
        assert_eq!(s.count, 6);
        assert!(s.sum.is_nan());
    }

    #[test]
    fn many_bounds_use_binary_search_with_same_result() {
        let bounds: Vec<f64> = (1..=40).map(f64::from).collect();
        let h = Histogram::new(Buckets::new(&bounds).unwrap());
        for v in [0.0, 1.0, 1.5, 40.0, 41.0] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.cumulative[0], 2); // 0.0 and 1.0 (le inclusive)
        assert_eq!(s.cumulative[1], 3); // 1.5
        assert_eq!(s.cumulative[39], 4); // 40.0
        assert_eq!(s.cumulative[40], 5); // +Inf
    }

    #[test]
    fn repeated_snapshots_keep_totals() {
        let h = Histogram::new(Buckets::default());
        for round in 1..=5u64 {
            h.observe(0.2);
            let s = h.snapshot();
            assert_eq!(s.count, round);
            assert_eq!(s.sum, 0.2 * round as f64);
            assert_eq!(s.cumulative[5], round); // le="0.25"
            assert_eq!(s.cumulative[4], 0); // le="0.1"
        }
    }

    /// Two threads observe 1.0 without pause while this thread scrapes: every
    /// scrape must be internally consistent (sum == count == +Inf bucket), and
    /// the final totals must count every observation.
    #[test]
    fn scrapes_are_consistent_while_two_threads_observe() {
        let h = Histogram::new(Buckets::default());
        let stop = AtomicBool::new(false);
        let per_thread = std::thread::scope(|s| {
            let observers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut n = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            h.observe(1.0);
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            let mut last = 0;
            for _ in 0..crate::metrics::stress(2_000) {
                let snap = h.snapshot();
                assert_eq!(snap.sum, snap.count as f64, "sum covers exactly the count");
                assert_eq!(*snap.cumulative.last().unwrap(), snap.count);
                assert_eq!(snap.cumulative[6], 0, "nothing at or below 0.5");
                assert_eq!(snap.cumulative[7], snap.count, "everything at le=1");
                assert!(
                    snap.count >= last,
                    "count went back: {last} -> {}",
                    snap.count
                );
                last = snap.count;
            }
            stop.store(true, Ordering::Relaxed);
            observers
                .into_iter()
                .map(|t| t.join().unwrap())
                .sum::<u64>()
        });
        let snap = h.snapshot();
        assert_eq!(snap.count, per_thread);
        assert_eq!(snap.sum, per_thread as f64);
    }

    /// More observers than single-writer shards, so some own a shard and
    /// the rest share the shared pair: threads observe 1.0 or 4.0 (buckets
    /// le=1 and le=5) while this one scrapes. Every scrape's sum is exactly
    /// the one its buckets imply, counts never go back, and the last scrape
    /// counts every observation.
    #[test]
    fn shards_and_shared_pair_scrape_consistently_together() {
        let h = Histogram::new(Buckets::default());
        let stop = AtomicBool::new(false);
        let threads = thread_slot::slots() + 2;
        let per_thread = std::thread::scope(|s| {
            let observers: Vec<_> = (0..threads)
                .map(|i| {
                    let (h, stop) = (&h, &stop);
                    let v = if i % 2 == 0 { 1.0 } else { 4.0 };
                    s.spawn(move || {
                        let mut n = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            h.observe(v);
                            n += 1;
                        }
                        (v, n)
                    })
                })
                .collect();
            let _stop = StopOnDrop(&stop);
            let mut last = HistogramSnapshot {
                cumulative: vec![0; 12],
                sum: 0.0,
                count: 0,
                native: None,
            };
            for _ in 0..crate::metrics::stress(2_000) {
                let snap = h.snapshot();
                let (ones, fours) = (snap.cumulative[7], snap.count - snap.cumulative[7]);
                assert_eq!(snap.cumulative[8], ones, "nothing in (1, 2.5]");
                assert_eq!(snap.cumulative[9], snap.count, "nothing above le=5");
                assert_eq!(snap.sum, ones as f64 + 4.0 * fours as f64);
                assert!(ones >= last.cumulative[7] && snap.count >= last.count);
                last = snap;
            }
            stop.store(true, Ordering::Relaxed);
            observers
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        });
        let snap = h.snapshot();
        let ones: u64 = per_thread.iter().filter(|t| t.0 == 1.0).map(|t| t.1).sum();
        let fours: u64 = per_thread.iter().filter(|t| t.0 == 4.0).map(|t| t.1).sum();
        assert_eq!((snap.cumulative[7], snap.count), (ones, ones + fours));
        assert_eq!(snap.sum, ones as f64 + 4.0 * fours as f64);
    }

    /// Native buckets under the same protocol: one thread observes 1.0,
    /// another -2.0, a third 3.0 while this one scrapes. In every scrape the
    /// native buckets hold exactly the observations counted, and the sum
    /// is exactly the one their counts imply.
    #[test]
    fn native_scrapes_are_consistent_while_threads_observe() {
        let native = NativeBuckets::new(1.1, 1e-3, 120).unwrap();
        let h = Histogram::new(Buckets::default().with_native(native));
        let stop = AtomicBool::new(false);
        let values = [1.0, -2.0, 3.0];
        let per_thread = std::thread::scope(|s| {
            let observers: Vec<_> = values
                .iter()
                .map(|&v| {
                    let (h, stop) = (&h, &stop);
                    s.spawn(move || {
                        // At least a few observations each, however soon
                        // the scrapes end, so the final check has buckets.
                        let mut n = 0u64;
                        while !stop.load(Ordering::Relaxed) || n < 100 {
                            h.observe(v);
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            let _stop = StopOnDrop(&stop);
            for _ in 0..crate::metrics::stress(2_000) {
                let snap = h.snapshot();
                let native = snap.native.unwrap();
                assert_eq!(native.total(), snap.count);
                assert_eq!(native.schema, 3);
                let at =
                    |side: &[(i32, u64)], key| side.iter().find(|b| b.0 == key).map_or(0, |b| b.1);
                // 1.0 is key 0; 2.0 is key 8; 3.0 is key ceil(8 log2 3) = 13.
                let ones = at(&native.positive, 0);
                let twos = at(&native.negative, 8);
                let threes = at(&native.positive, 13);
                assert_eq!(ones + twos + threes, snap.count);
                assert_eq!(
                    snap.sum,
                    ones as f64 - 2.0 * twos as f64 + 3.0 * threes as f64
                );
            }
            stop.store(true, Ordering::Relaxed);
            observers
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        });
        let native = h.snapshot().native.unwrap();
        assert_eq!(
            native.positive,
            vec![(0, per_thread[0]), (13, per_thread[2])]
        );
        assert_eq!(native.negative, vec![(8, per_thread[1])]);
    }

    #[test]
    fn native_keeps_nan_out_and_coarsens_past_the_window() {
        let native = NativeBuckets::new(1.1, 1e-3, 120).unwrap();
        let top = native.window_top();
        let h = Histogram::new(Buckets::default().with_native(native));
        h.observe(f64::NAN);
        h.observe(0.0005);
        h.observe(0.5);
        let s = h.snapshot();
        let n = s.native.unwrap();
        assert_eq!((s.count, n.total(), n.zero_count), (3, 2, 1));
        assert_eq!(n.schema, 3);
        h.observe(top * 2.0);
        let n = h.snapshot().native.unwrap();
        assert_eq!(n.schema, -4);
        // 0.5 (key -8 at schema 3) lies in (2^-16, 1], key 0 at schema -4.
        assert_eq!(n.positive[0], (0, 1));
        assert_eq!(n.total(), 3);
    }
}
