//! A small number per thread, so that a counter or a histogram can give
//! each of the first few threads that write it a shard no other thread
//! writes.
//!
//! A shard with a single writer needs no atomic read-modify-write: a
//! histogram shard's owner adds with a plain load and store, and only
//! announces each observation to scrapes (see `histogram.rs`); a counter's
//! word per slot (see `counter.rs`) keeps two threads off each other's
//! cache line. The price is memory, a shard in every metric a slot's
//! thread writes, so there are only as many slots as the machine has
//! cores (at most [`MAX_SLOTS`]); a thread that finds none free uses the
//! metric's shared counts, which any number of threads may write.
//!
//! A slot is claimed on a thread's first observation and given back when
//! the thread exits, so short-lived threads do not use slots up. A thread
//! without a slot looks again each time it observes (one shared load) and
//! takes one as soon as one is free.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use super::sync::AtomicU64;

/// At most this many threads own shards at once: with the shared word, a
/// counter is then four words, 32 bytes. (More would suit bigger machines,
/// but each slot costs code in every counter and the binary has a budget.)
pub(crate) const MAX_SLOTS: usize = 3;

/// The thread has no slot and may claim one.
const NONE: usize = usize::MAX;
/// The thread is exiting: its slot is given back and it never claims again.
const GONE: usize = usize::MAX - 1;

/// Which slots belong to live threads: bit `i` set, slot `i` is taken.
pub(crate) struct SlotBits {
    bits: AtomicU64,
}

impl SlotBits {
    /// Takes the lowest free slot below `limit`, if any.
    fn claim(&self, limit: usize) -> Option<usize> {
        let mut taken = self.bits.load(Ordering::Relaxed);
        loop {
            let free = (!taken).trailing_zeros() as usize;
            if free >= limit {
                return None;
            }
            // Acquire: pairs with the previous owner's Release in
            // `give_back`, so its writes to the slot's shards happen before
            // this thread's.
            match self.bits.compare_exchange_weak(
                taken,
                taken | 1 << free,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(free),
                Err(now) => taken = now,
            }
        }
    }

    /// Frees `slot`. Release: every write its owner made to its shards
    /// happens before the next owner's Acquire claim of the same bit.
    fn give_back(&self, slot: usize) {
        self.bits.fetch_and(!(1 << slot), Ordering::Release);
    }
}

#[cfg(not(all(loom, test)))]
static TAKEN: SlotBits = SlotBits {
    bits: AtomicU64::new(0),
};

// Under loom the process-wide bits are built in each model (tests of the
// protocol use their own `SlotBits`; nothing under loom claims these).
#[cfg(all(loom, test))]
loom::lazy_static! {
    static ref TAKEN: SlotBits = SlotBits { bits: AtomicU64::new(0) };
}

thread_local! {
    /// This thread's slot, `NONE` or `GONE`. No destructor, so it can be
    /// read at any time, even while other thread-locals are being dropped.
    static SLOT: Cell<usize> = const { Cell::new(NONE) };
    /// Gives the slot back when the thread exits.
    static RETURN: SlotReturn = const { SlotReturn };
}

struct SlotReturn;

impl Drop for SlotReturn {
    fn drop(&mut self) {
        let slot = SLOT.with(|s| s.replace(GONE));
        if slot < MAX_SLOTS {
            TAKEN.give_back(slot);
        }
    }
}

/// How many slots there are: the cores online, at most [`MAX_SLOTS`].
/// Every counter and histogram has room for this many single-writer shards.
pub(crate) fn slots() -> usize {
    static SLOTS: OnceLock<usize> = OnceLock::new();
    *SLOTS.get_or_init(|| online_cpus().clamp(1, MAX_SLOTS))
}

/// The cores online. `sysconf` rather than `available_parallelism`, whose
/// cgroup parsing costs 10 KB of the stripped release binary; it ignores CPU quotas and
/// affinity, which only means more shards than the process uses.
#[cfg(unix)]
fn online_cpus() -> usize {
    // SAFETY: `sysconf` reads a system setting; it takes no pointers and
    // touches no memory of ours.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online).unwrap_or(1)
}

/// The cores online, as std reports them (no `sysconf` here).
#[cfg(not(unix))]
fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// This thread's slot, claiming a free one if it has none; `None` when all
/// are taken (or the thread is exiting).
#[inline]
pub(crate) fn current() -> Option<usize> {
    let slot = SLOT.with(Cell::get);
    if slot < MAX_SLOTS {
        Some(slot)
    } else if slot == NONE {
        claim()
    } else {
        None
    }
}

#[cold]
#[inline(never)]
fn claim() -> Option<usize> {
    TAKEN.claim(slots()).and_then(claimed)
}

/// Records `slot` as this thread's and arranges its return; gives it back
/// at once if the thread is already exiting.
fn claimed(slot: usize) -> Option<usize> {
    if RETURN.try_with(|_| ()).is_ok() {
        SLOT.with(|s| s.set(slot));
        Some(slot)
    } else {
        TAKEN.give_back(slot);
        SLOT.with(|s| s.set(GONE));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run in a process of its own, where no other test holds slots: one
    /// thread after another claims a slot and exits. If exiting threads did
    /// not give their slots back, the threads after the first `slots()`
    /// would find none.
    #[test]
    #[cfg_attr(miri, ignore = "spawns a process")]
    fn a_thread_exit_returns_its_slot() {
        const NAME: &str = "metrics::thread_slot::tests::a_thread_exit_returns_its_slot";
        if std::env::var_os("TINYMON_SLOT_CHILD").is_some() {
            for round in 0..3 * MAX_SLOTS {
                // `join` returns once the thread has ended, after its
                // thread-local destructors ran.
                let slot = std::thread::spawn(current).join().unwrap();
                assert!(slot.is_some(), "round {round}: no slot was free");
            }
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--test-threads=1", "--nocapture"])
            .env("TINYMON_SLOT_CHILD", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn slots_are_never_shared() {
        let barrier = std::sync::Barrier::new(MAX_SLOTS + 2);
        let held: Vec<Option<usize>> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..MAX_SLOTS + 2)
                .map(|_| {
                    s.spawn(|| {
                        let slot = current();
                        assert_eq!(current(), slot, "a thread keeps its slot");
                        // Hold the slot until every thread has one or none.
                        barrier.wait();
                        slot
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let mut owned: Vec<usize> = held.iter().flatten().copied().collect();
        let n = owned.len();
        owned.sort_unstable();
        owned.dedup();
        assert_eq!(owned.len(), n, "two live threads shared a slot: {held:?}");
        assert!(n <= slots());
        assert!(held.iter().filter(|s| s.is_none()).count() >= 2);
    }
}

/// Claiming and giving back under loom (`make loom`): each slot guards a
/// shard its owner writes with plain stores. Loom reports a data race if
/// a new owner's claim does not happen after the old owner's last write,
/// and the owners' counts check that no two threads ever held one slot.
#[cfg(all(loom, test))]
mod loom_models {
    use super::super::sync::explore;
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    struct Slots {
        bits: SlotBits,
        /// One plain word per slot, written only by the slot's owner.
        shards: [UnsafeCell<u64>; 2],
    }

    /// Claims a slot, adds one to its shard with a plain read and write,
    /// and gives it back: what a thread's counter shard sees from birth to
    /// exit.
    fn use_a_slot(slots: &Slots, limit: usize) -> bool {
        let Some(slot) = slots.bits.claim(limit) else {
            return false;
        };
        // SAFETY: the claim made this thread the slot's only owner until
        // `give_back` (loom reports a race if the orderings do not make it
        // so).
        slots.shards[slot].with_mut(|w| unsafe { *w += 1 });
        slots.bits.give_back(slot);
        true
    }

    /// Two threads each use a slot of `limit`; whether each found one, and
    /// the slots' shards once both have been joined.
    fn race(limit: usize) -> (Vec<bool>, Vec<u64>) {
        let slots = Arc::new(Slots {
            bits: SlotBits {
                bits: AtomicU64::new(0),
            },
            shards: [UnsafeCell::new(0), UnsafeCell::new(0)],
        });
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let slots = slots.clone();
                thread::spawn(move || use_a_slot(&slots, limit))
            })
            .collect();
        let found = threads.into_iter().map(|t| t.join().unwrap()).collect();
        // SAFETY: every thread has been joined; nothing else writes.
        let shards = slots
            .shards
            .iter()
            .map(|s| s.with(|w| unsafe { *w }))
            .collect();
        (found, shards)
    }

    #[test]
    fn loom_one_slot_passes_from_owner_to_owner() {
        explore(|| {
            let (found, shards) = race(1);
            let used = found.iter().filter(|&&f| f).count() as u64;
            assert_eq!(shards[0], used, "an increment was lost between owners");
            assert!(used >= 1, "the first claim of a free slot cannot fail");
        });
    }

    #[test]
    fn loom_two_threads_take_two_slots() {
        explore(|| {
            let (found, shards) = race(2);
            // Two slots for two threads: neither finds them all taken.
            assert_eq!(found, [true, true]);
            assert_eq!(shards.iter().sum::<u64>(), 2);
        });
    }
}
