//! Exemplars: the trace of one recent observation, kept beside a bucket or
//! a counter so a dashboard can jump from a slow request to its trace.
//!
//! The trace comes from the request's W3C `traceparent` header
//! ([`TraceContext::from_traceparent`]). Recording one is lock-free and
//! allocation-free: each slot is a sequence lock over five atomic words.
//! A writer that finds the slot busy (another writer is mid-update) drops
//! its exemplar rather than wait, so the newest *completed* write wins and
//! no observer ever blocks; a reader retries a few times if a write
//! overlaps its read, and reports nothing if writes keep overlapping.

use std::sync::atomic::Ordering;

use super::sync::{fence, AtomicU64};
use std::time::{SystemTime, UNIX_EPOCH};

/// A W3C trace context: the ids an exemplar links to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
}

impl TraceContext {
    /// Parses a `traceparent` header value: `00-<32 hex>-<16 hex>-<2 hex>`
    /// (later versions may append fields after another `-`). Anything else,
    /// and all-zero ids, give `None`; the value is never echoed.
    ///
    /// ```
    /// use tinymon::metrics::TraceContext;
    /// let t = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    /// assert_eq!(t.trace_id_hex(), *b"4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert!(TraceContext::from_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
    /// ```
    pub fn from_traceparent(value: &str) -> Option<Self> {
        let b = value.trim().as_bytes();
        if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let version = hex_byte(b[0], b[1])?;
        // Version ff is invalid; version 00 has exactly these four fields.
        if version == 0xff || (version == 0 && b.len() != 55) || (b.len() > 55 && b[55] != b'-') {
            return None;
        }
        hex_byte(b[53], b[54])?;
        let mut trace_id = [0u8; 16];
        for (i, out) in trace_id.iter_mut().enumerate() {
            *out = hex_byte(b[3 + 2 * i], b[4 + 2 * i])?;
        }
        let mut span_id = [0u8; 8];
        for (i, out) in span_id.iter_mut().enumerate() {
            *out = hex_byte(b[36 + 2 * i], b[37 + 2 * i])?;
        }
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext { trace_id, span_id })
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> [u8; 32] {
        to_hex(&self.trace_id)
    }

    /// The span id as 16 lower-case hex digits.
    pub fn span_id_hex(&self) -> [u8; 16] {
        to_hex(&self.span_id)
    }
}

/// Lower-case hex only: W3C trace context forbids upper case.
fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(digit(hi)? << 4 | digit(lo)?)
}

fn to_hex<const N: usize, const M: usize>(bytes: &[u8; N]) -> [u8; M] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; M];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 15)];
    }
    out
}

/// One exemplar as read at scrape time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exemplar {
    /// The trace the observation belonged to.
    pub trace: TraceContext,
    /// The observed value (1 for a counter increment).
    pub value: f64,
    /// When it was recorded, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

/// Where one exemplar lives: a sequence number (odd while a write is in
/// progress, 0 until the first write) and the exemplar's five words.
#[derive(Debug, Default)]
pub(crate) struct ExemplarSlot {
    seq: AtomicU64,
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
    span: AtomicU64,
    value: AtomicU64,
    timestamp_ms: AtomicU64,
}

/// How often a reader retries a read that overlapped a write.
const READ_TRIES: usize = 4;

impl ExemplarSlot {
    /// Records `value` for `trace`, unless another writer holds the slot.
    pub(crate) fn record(&self, trace: &TraceContext, value: f64) {
        let seq = self.seq.load(Ordering::Relaxed);
        if seq & 1 == 1 {
            return;
        }
        // Acquire: the writes below cannot move above taking the slot.
        if self
            .seq
            .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        // Release fence: a reader that sees any of the words below also
        // sees the odd sequence number (and so retries).
        fence(Ordering::Release);
        let (hi, lo) = trace.trace_id.split_at(8);
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        self.trace_hi.store(word(hi), Ordering::Relaxed);
        self.trace_lo.store(word(lo), Ordering::Relaxed);
        self.span
            .store(u64::from_le_bytes(trace.span_id), Ordering::Relaxed);
        self.value.store(value.to_bits(), Ordering::Relaxed);
        self.timestamp_ms.store(now_ms(), Ordering::Relaxed);
        // Release: a reader that sees the new even number sees every word.
        self.seq.store(seq + 2, Ordering::Release);
    }

    /// The last exemplar written, if one was and a read did not keep
    /// overlapping writes.
    pub(crate) fn read(&self) -> Option<Exemplar> {
        for _ in 0..READ_TRIES {
            // Acquire pairs with the writer's final Release store.
            let before = self.seq.load(Ordering::Acquire);
            if before == 0 {
                return None;
            }
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let hi = self.trace_hi.load(Ordering::Relaxed);
            let lo = self.trace_lo.load(Ordering::Relaxed);
            let span = self.span.load(Ordering::Relaxed);
            let value = f64::from_bits(self.value.load(Ordering::Relaxed));
            let timestamp_ms = self.timestamp_ms.load(Ordering::Relaxed);
            // Acquire fence pairs with the writer's Release fence: if any
            // word above came from a newer write, the re-read below sees
            // that write's sequence number, and the read is retried.
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                let mut trace_id = [0u8; 16];
                trace_id[..8].copy_from_slice(&hi.to_le_bytes());
                trace_id[8..].copy_from_slice(&lo.to_le_bytes());
                return Some(Exemplar {
                    trace: TraceContext {
                        trace_id,
                        span_id: span.to_le_bytes(),
                    },
                    value,
                    timestamp_ms,
                });
            }
        }
        None
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_values() {
        let t = TraceContext::from_traceparent(GOOD).unwrap();
        assert_eq!(&t.trace_id_hex(), b"4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(&t.span_id_hex(), b"00f067aa0ba902b7");
        // A later version may append fields.
        let future = format!("{}{}", GOOD.replacen("00", "01", 1), "-whatever");
        assert!(TraceContext::from_traceparent(&future).is_some());
        for bad in [
            "",
            "00",
            &GOOD[..54],
            &format!("{GOOD}-extra"), // version 00 has exactly four fields
            &GOOD.replacen("00", "ff", 1),
            &GOOD.to_uppercase(),
            &GOOD.replace('-', "_"),
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01é",
        ] {
            assert!(TraceContext::from_traceparent(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn an_empty_slot_reads_nothing_and_a_written_one_its_value() {
        let slot = ExemplarSlot::default();
        assert!(slot.read().is_none());
        let t = TraceContext::from_traceparent(GOOD).unwrap();
        slot.record(&t, 0.25);
        let e = slot.read().unwrap();
        assert_eq!((e.trace, e.value), (t, 0.25));
        assert!(e.timestamp_ms > 1_600_000_000_000);
    }

    /// Writers record exemplars whose every word says which writer and
    /// which round they came from; a reader must never see words of two
    /// different writes together.
    #[test]
    fn reads_never_mix_two_writes() {
        let slot = ExemplarSlot::default();
        let rounds = crate::metrics::stress(20_000);
        std::thread::scope(|s| {
            for writer in 1..=2u64 {
                let slot = &slot;
                s.spawn(move || {
                    for round in 1..=rounds as u64 {
                        let tag = writer << 32 | round;
                        let mut trace_id = [0u8; 16];
                        trace_id[..8].copy_from_slice(&tag.to_le_bytes());
                        trace_id[8..].copy_from_slice(&tag.to_le_bytes());
                        let t = TraceContext {
                            trace_id,
                            span_id: tag.to_le_bytes(),
                        };
                        slot.record(&t, tag as f64);
                    }
                });
            }
            for _ in 0..rounds {
                if let Some(e) = slot.read() {
                    let tag = u64::from_le_bytes(e.trace.span_id);
                    assert_eq!(e.trace.trace_id[..8], tag.to_le_bytes());
                    assert_eq!(e.trace.trace_id[8..], tag.to_le_bytes());
                    assert_eq!(e.value, tag as f64);
                }
            }
        });
        assert!(slot.read().is_some());
    }
}

/// The sequence lock under loom (`make loom`): every interleaving of the
/// smallest cases that exercise it, with every value the memory model lets
/// each Relaxed load see. A fence too weak would let a read mix words of
/// two writes, and the checks below would catch it.
#[cfg(all(loom, test))]
mod loom_models {
    use super::super::sync::explore;
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    fn trace(n: u8) -> TraceContext {
        TraceContext {
            trace_id: [n; 16],
            span_id: [n; 8],
        }
    }

    /// A read is nothing or one write whole: value, trace and span agree.
    fn check(e: Option<Exemplar>) -> Option<u8> {
        let e = e?;
        let n = e.value as u8;
        assert_eq!(e.trace, trace(n), "a read mixed two writes");
        Some(n)
    }

    #[test]
    fn loom_a_read_during_writes_sees_one_write_whole() {
        explore(|| {
            let slot = Arc::new(ExemplarSlot::default());
            let writer = {
                let slot = slot.clone();
                thread::spawn(move || {
                    slot.record(&trace(1), 1.0);
                    slot.record(&trace(2), 2.0);
                })
            };
            // A preemption point: without one before its first load, loom
            // 0.7 never ran the writer first (one interleaving, not 15).
            thread::yield_now();
            let seen = check(slot.read());
            assert!(matches!(seen, None | Some(1) | Some(2)));
            writer.join().unwrap();
            // Joined: the last write happened before this read.
            assert_eq!(check(slot.read()), Some(2));
        });
    }

    #[test]
    fn loom_racing_writers_leave_one_whole_write() {
        explore(|| {
            let slot = Arc::new(ExemplarSlot::default());
            let writers: Vec<_> = [1u8, 2]
                .into_iter()
                .map(|n| {
                    let slot = slot.clone();
                    thread::spawn(move || slot.record(&trace(n), f64::from(n)))
                })
                .collect();
            for w in writers {
                w.join().unwrap();
            }
            // The first to take the slot always completes; a writer that
            // found it busy dropped its exemplar.
            assert!(check(slot.read()).is_some());
        });
    }
}
