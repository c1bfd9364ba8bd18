//! The series of the RED families, with the last ones each thread used kept
//! at hand.
//!
//! Every request needs three series: its request counter when it starts,
//! its status gauge and latency histogram when it ends. Found through their
//! families, that is three hashes of the label values, three probes and
//! eleven string comparisons, about 500 instructions: more than the
//! recording itself, and 2 % of everything a `/hello` costs.
//!
//! The label values here are `&'static str`: route templates, methods and
//! statuses from fixed tables. A static string is never freed and never
//! changes, so its address and length name its content for as long as the
//! process runs. Each thread keeps the labels and series of its last
//! request; a request with the same labels (the common case: a worker
//! serving a run of one route) compares a few words and skips the lookups.
//! Any other request looks its series up as before and becomes the last one.
//!
//! # Why the cached pointers stay valid
//!
//! An entry holds raw pointers to series of one [`RedSeries`], named by its
//! `owner`, an id no other `RedSeries` ever gets (ids are not addresses,
//! which a later value could reuse). Only the `RedSeries` with that id reads
//! the pointers back, through `&self`. Its families are private and never
//! replaced, and a family frees its series only when it drops, so while
//! `&self` exists every series it handed out does too.
//!
//! An overflow series is never kept: every lookup of a label set past the
//! series cap must reach its family, which counts it as dropped.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::labels::SERVER_TYPE;
use crate::metrics::{ExemplarCounter, Family, Gauge, Histogram, LabelKey};

/// The families a request's series live in, and the thread's last series.
pub(super) struct RedSeries {
    owner: u64,
    requests_total: Arc<Family<ExemplarCounter, 3>>,
    requests_status: Arc<Family<Gauge, 4>>,
    request_seconds: Arc<Family<Histogram, 4>>,
}

/// The labels of a thread's last started request, and its counter.
#[derive(Clone, Copy)]
struct LastStarted {
    owner: u64,
    method: *const str,
    path: *const str,
    counter: *const ExemplarCounter,
}

/// The labels of a thread's last finished request, and its series.
#[derive(Clone, Copy)]
struct LastFinished {
    owner: u64,
    method: *const str,
    path: *const str,
    status: *const str,
    gauge: *const Gauge,
    histogram: *const Histogram,
}

thread_local! {
    // Owner 0 is never given out, so these match nothing until set.
    static STARTED: Cell<LastStarted> = const {
        Cell::new(LastStarted { owner: 0, method: "", path: "", counter: ptr::null() })
    };
    static FINISHED: Cell<LastFinished> = const {
        Cell::new(LastFinished {
            owner: 0,
            method: "",
            path: "",
            status: "",
            gauge: ptr::null(),
            histogram: ptr::null(),
        })
    };
}

/// The same static string: same address and same length (`ptr::eq` on
/// `*const str` compares both).
#[inline]
fn same(a: *const str, b: &'static str) -> bool {
    ptr::eq(a, b)
}

impl RedSeries {
    pub(super) fn new(
        requests_total: Arc<Family<ExemplarCounter, 3>>,
        requests_status: Arc<Family<Gauge, 4>>,
        request_seconds: Arc<Family<Histogram, 4>>,
    ) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        RedSeries {
            // Relaxed: the id only has to be unique, which the
            // read-modify-write alone gives; it publishes no memory.
            owner: NEXT.fetch_add(1, Ordering::Relaxed),
            requests_total,
            requests_status,
            request_seconds,
        }
    }

    /// The request counter of `method` and `path`.
    #[inline]
    pub(super) fn started(&self, method: &'static str, path: &'static str) -> &ExemplarCounter {
        let last = STARTED.with(Cell::get);
        if last.owner == self.owner && same(last.method, method) && same(last.path, path) {
            // SAFETY: `owner` matches, so `counter` is a series of
            // `self.requests_total`, alive as long as `&self` (module docs).
            return unsafe { &*last.counter };
        }
        let family = &*self.requests_total;
        let counter = family.get_or_create(&[SERVER_TYPE, method, path]);
        if !family.is_overflow(counter) {
            STARTED.with(|c| {
                c.set(LastStarted {
                    owner: self.owner,
                    method,
                    path,
                    counter,
                })
            });
        }
        counter
    }

    /// The status gauge and latency histogram of `method`, `path` and
    /// `status`.
    #[inline]
    pub(super) fn finished(
        &self,
        method: &'static str,
        path: &'static str,
        status: &'static str,
    ) -> (&Gauge, &Histogram) {
        let last = FINISHED.with(Cell::get);
        if last.owner == self.owner
            && same(last.status, status)
            && same(last.path, path)
            && same(last.method, method)
        {
            // SAFETY: `owner` matches, so both are series of this value's
            // families, alive as long as `&self` (module docs).
            return unsafe { (&*last.gauge, &*last.histogram) };
        }
        let labels = [SERVER_TYPE, method, path, status];
        // Both families have these labels: hash them once.
        let key = LabelKey::new(&labels);
        let gauge = self.requests_status.get_or_create_by_key(&key);
        let histogram = self.request_seconds.get_or_create_by_key(&key);
        if !self.requests_status.is_overflow(gauge) && !self.request_seconds.is_overflow(histogram)
        {
            FINISHED.with(|c| {
                c.set(LastFinished {
                    owner: self.owner,
                    method,
                    path,
                    status,
                    gauge,
                    histogram,
                })
            });
        }
        (gauge, histogram)
    }

    /// The status gauge of these labels, if a request ever had them.
    pub(super) fn status(&self, method: &str, path: &str, status: &str) -> Option<&Gauge> {
        self.requests_status
            .get(&[SERVER_TYPE, method, path, status])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Buckets;

    fn series(cap: usize) -> RedSeries {
        let server = ["type", "method", "path"];
        let server_status = ["type", "method", "path", "status"];
        RedSeries::new(
            Arc::new(
                Family::new("t", "h", server)
                    .unwrap()
                    .with_series_cap(cap)
                    .unwrap(),
            ),
            Arc::new(
                Family::new("s", "h", server_status)
                    .unwrap()
                    .with_series_cap(cap)
                    .unwrap(),
            ),
            Arc::new(
                Family::with_config("d", "h", server_status, Buckets::default())
                    .unwrap()
                    .with_series_cap(cap)
                    .unwrap(),
            ),
        )
    }

    #[test]
    fn a_kept_series_is_the_one_its_labels_name() {
        let red = series(10);
        // Alternating labels: every call misses, then repeats hit.
        for (method, path, status) in [
            ("GET", "/a", "200"),
            ("GET", "/a", "200"),
            ("GET", "/b", "200"),
            ("POST", "/b", "200"),
            ("POST", "/b", "404"),
            ("POST", "/b", "404"),
            ("GET", "/a", "200"),
        ] {
            red.started(method, path).inc_with_exemplar(None);
            let (gauge, histogram) = red.finished(method, path, status);
            gauge.inc();
            histogram.observe(1.0);
        }
        let count = |m, p| {
            red.requests_total
                .get(&[SERVER_TYPE, m, p])
                .map(|c| c.get())
        };
        assert_eq!(count("GET", "/a"), Some(3));
        assert_eq!(count("GET", "/b"), Some(1));
        assert_eq!(count("POST", "/b"), Some(3));
        let status = |m, p, s| red.status(m, p, s).map(Gauge::get);
        assert_eq!(status("GET", "/a", "200"), Some(3.0));
        assert_eq!(status("POST", "/b", "200"), Some(1.0));
        assert_eq!(status("POST", "/b", "404"), Some(2.0));
        let observed = |m, p, s| {
            red.request_seconds
                .get(&[SERVER_TYPE, m, p, s])
                .map(|h| h.snapshot().count)
        };
        assert_eq!(observed("POST", "/b", "404"), Some(2));
        assert_eq!(observed("GET", "/a", "200"), Some(3));
    }

    #[test]
    fn equal_text_at_another_address_is_looked_up_not_confused() {
        let red = series(10);
        red.started("GET", "/a").inc_with_exemplar(None);
        // The same text at another address: the tail of a longer static
        // (a static holding exactly "/a" may be merged with the literal in
        // release builds): a miss that finds the same series by content.
        static ELSEWHERE: [u8; 3] = *b"x/a";
        let path: &'static str = std::str::from_utf8(&ELSEWHERE[1..]).unwrap();
        assert!(!ptr::eq(path, "/a"));
        red.started("GET", path).inc_with_exemplar(None);
        // A prefix of a static string starts at its address: the length
        // tells them apart.
        let long: &'static str = "/ab";
        red.started("GET", long).inc_with_exemplar(None);
        red.started("GET", &long[..2]).inc_with_exemplar(None);
        let count = |p| {
            red.requests_total
                .get(&[SERVER_TYPE, "GET", p])
                .unwrap()
                .get()
        };
        assert_eq!((count("/a"), count("/ab")), (3, 1));
    }

    #[test]
    fn another_owner_never_reads_this_ones_series() {
        // One thread, several values. Each round's `other` is dropped while
        // the thread still keeps its counter, and the next round's may sit
        // at the same address: its first lookup must miss, not read the
        // dropped family (Miri would report that read).
        let first = series(10);
        first.started("GET", "/a").inc_with_exemplar(None);
        let count = |r: &RedSeries| {
            r.requests_total
                .get(&[SERVER_TYPE, "GET", "/a"])
                .unwrap()
                .get()
        };
        for round in 1..=3 {
            let other = series(10);
            other.started("GET", "/a").inc_with_exemplar(None);
            first.started("GET", "/a").inc_with_exemplar(None);
            other.started("GET", "/a").inc_with_exemplar(None);
            assert_eq!(count(&other), 2);
            assert_eq!(count(&first), 1 + round);
            // `other` is the thread's last started request as it drops.
        }
    }

    #[test]
    fn overflow_lookups_keep_reaching_the_family() {
        let red = series(1);
        red.started("GET", "/a").inc_with_exemplar(None);
        let _ = red.finished("GET", "/a", "200");
        for _ in 0..3 {
            red.started("GET", "/b").inc_with_exemplar(None);
            red.finished("GET", "/b", "200").1.observe(1.0);
        }
        assert_eq!(
            red.requests_total.overflowed(),
            3,
            "each one counted as dropped"
        );
        assert_eq!(red.requests_total.overflow().get(), 3);
        assert_eq!(red.request_seconds.overflowed(), 3);
        assert_eq!(red.request_seconds.overflow().snapshot().count, 3);
    }
}
