//! The atomics of the protocols that loom model-checks, from std or, when
//! the crate's unit tests are built with `--cfg loom` (`make loom`), from
//! loom, which then explores every interleaving and every value the memory
//! model allows each load to see.
//!
//! Only code that keeps its atomics in ordinary allocations can take
//! loom's: a loom atomic is a handle into the model, not a word in memory,
//! so it cannot sit in the calloc'ed blocks (`zeroed`) where histograms and
//! native pages keep theirs. That leaves the histogram's hot/cold handshake
//! (`histogram.rs`) to its argued comments, Miri and the stress tests; the
//! publishing of those blocks is modelled, with loom's `AtomicPtr` and a
//! block of plain words. The modules that use this one say what their
//! model covers:
//! - `exemplar`: the sequence lock of an exemplar slot;
//! - `thread_slot`: claiming a slot and giving it back;
//! - `zeroed`: publishing a block that any thread may be first to make
//!   (its entry is generic, so the model passes loom's `AtomicPtr`).

#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::atomic::{fence, AtomicU64};

#[cfg(all(loom, test))]
pub(crate) use loom::sync::atomic::{fence, AtomicU64};

/// Runs `model` under loom and checks that loom explored more than one
/// interleaving: loom 0.7 silently runs a model once when no thread has a
/// preemption point where another could run first (a reader whose first
/// operation is a load right after the spawn, say), and a model run once
/// proves nothing.
#[cfg(all(loom, test))]
pub(crate) fn explore(model: impl Fn() + Send + Sync + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    loom::model(move || {
        // Relaxed: read after `loom::model` has returned on this thread.
        counted.fetch_add(1, Ordering::Relaxed);
        model();
    });
    let runs = runs.load(Ordering::Relaxed);
    assert!(runs > 1, "loom explored {runs} interleaving");
    eprintln!("loom explored {runs} interleavings");
}
