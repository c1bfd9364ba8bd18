//! Keyed hashing of label values, and [`LabelKey`]: a label set hashed once
//! for lookups in any number of families.
//!
//! Label values may come from clients (a tenant, a user agent, a path a
//! library user decided to record), so the hash must not be something a
//! client can search for collisions offline: values that all land on one
//! probe chain would turn every lookup in the family into a walk along the
//! chain. The series cap bounds the chain's length, not its cost. So the
//! hash takes a key drawn once per process from the operating system's
//! random source (through std's `RandomState`, which the binary already
//! carries for `HashMap`).
//!
//! The mixing step is a folded multiply: the 128-bit product of the state
//! and the key, its halves XORed. A difference in the input spreads through
//! a product with an unknown factor, so no input difference has a known
//! output difference; an unkeyed multiply-and-rotate hash (FxHash, and
//! tinymon's own before this module) has such differences, and so has
//! collisions that hold whatever its starting state.
//! `tests` shows both: a set of values made to collide under the old hash
//! (`benches/fixtures/colliding_labels.txt`) spreads out under this one.
//!
//! It is not a cryptographic MAC: it resists collisions chosen without
//! seeing the key, which is what a client of a server can do.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::OnceLock;

/// The hash of one label set, with the values it was computed from, so
/// that a hash can never be paired with other values than its own.
///
/// [`Family::get_or_create_by_key`](super::Family::get_or_create_by_key)
/// takes it; hashing once pays when one request looks the same label
/// values up in several families (a status gauge and a latency histogram,
/// say).
///
/// ```
/// use tinymon::metrics::{Counter, Family, Gauge, LabelKey};
///
/// let total = Family::<Counter, 2>::new("jobs_total", "Jobs.", ["queue", "result"]).unwrap();
/// let last = Family::<Gauge, 2>::new("job_last_seconds", "Last job.", ["queue", "result"]).unwrap();
/// let labels = ["mail", "ok"];
/// let key = LabelKey::new(&labels);
/// total.get_or_create_by_key(&key).inc();
/// last.get_or_create_by_key(&key).set(0.25);
/// assert_eq!(total.get(&labels).unwrap().get(), 1);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct LabelKey<'a, const N: usize> {
    values: &'a [&'a str; N],
    hash: u64,
}

impl<'a, const N: usize> LabelKey<'a, N> {
    /// Hashes `values` (one per label name, in order).
    #[inline]
    pub fn new(values: &'a [&'a str; N]) -> Self {
        LabelKey {
            values,
            hash: hash_label_values(process_key(), values),
        }
    }

    /// The label values.
    #[inline]
    pub fn values(&self) -> &'a [&'a str; N] {
        self.values
    }

    #[inline]
    pub(super) fn hash(&self) -> u64 {
        self.hash
    }

    /// A key with a hash computed elsewhere, for tests of the table itself.
    #[cfg(test)]
    pub(super) fn with_hash(values: &'a [&'a str; N], hash: u64) -> Self {
        LabelKey { values, hash }
    }
}

/// The process's hash key: a starting state and a multiplier. Drawn on
/// first use; a lookup then pays one Acquire load and a branch for it.
#[inline]
pub(super) fn process_key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| {
        // Each `RandomState::new` holds keys from the OS's random source
        // (std draws them once per thread and steps them per call), and
        // SipHash of a constant under them is as unpredictable as they are.
        let random = RandomState::new();
        Key {
            start: random.hash_one(0x6c61_6265_6c73_u64),
            // Odd, so the multiply is a bijection of the low word.
            multiplier: random.hash_one(0x6b65_7973_u64) | 1,
        }
    })
}

#[derive(Clone, Copy)]
pub(super) struct Key {
    start: u64,
    multiplier: u64,
}

/// The 128-bit product's halves, XORed.
#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

/// Word-at-a-time keyed hash of label values with a murmur3 finish.
#[inline(always)]
pub(super) fn hash_label_values(key: &Key, values: &[&str]) -> u64 {
    let mix = |h: u64, w: u64| folded_multiply(h ^ w, key.multiplier);
    let mut h = key.start ^ values.len() as u64;
    for v in values {
        let b = v.as_bytes();
        let n = b.len();
        // The length in the top bits separates ["ab", ""] from ["a", "b"].
        let len_tag = (n as u64) << 56;
        if n <= 8 {
            h = mix(h, read_short(b) ^ len_tag);
        } else {
            let mut at = 0;
            while at + 8 < n {
                h = mix(h, read_u64(&b[at..]));
                at += 8;
            }
            // The last word overlaps the previous one instead of padding.
            h = mix(h, read_u64(&b[n - 8..]) ^ len_tag);
        }
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[inline]
fn read_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

/// Up to 8 bytes as one word, with overlapping loads rather than a copy.
#[inline]
fn read_short(b: &[u8]) -> u64 {
    let n = b.len();
    if n == 8 {
        read_u64(b)
    } else if n >= 4 {
        let lo = u32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
        let hi = u32::from_le_bytes(b[n - 4..].try_into().expect("4 bytes"));
        u64::from(lo) | u64::from(hi) << 32
    } else if n > 0 {
        u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Counter, Family};

    /// The values of `benches/fixtures/colliding_labels.txt`.
    fn colliding() -> Vec<&'static str> {
        include_str!("../../benches/fixtures/colliding_labels.txt")
            .lines()
            .collect()
    }

    /// tinymon's label hash before it was keyed (through b6952eb), for one
    /// label value: the oracle that shows the fixture is what it says.
    fn unkeyed(value: &str) -> u64 {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let b = value.as_bytes();
        let word = read_short(b) ^ (b.len() as u64) << 56;
        let mut h = (1u64.rotate_left(5) ^ word).wrapping_mul(K);
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }

    /// Slots a lookup of each value visits, in a family of cap 1,000
    /// (2,048 slots) filled with `values` under `hash`: (longest, total).
    fn probes(values: &[&'static str], hash: impl Fn(&str) -> u64) -> (usize, usize) {
        let f = Family::<Counter, 1>::new("c_total", "h", ["v"])
            .unwrap()
            .with_series_cap(1_000)
            .unwrap();
        let sets: Vec<[&str; 1]> = values.iter().map(|v| [*v]).collect();
        for set in &sets {
            f.get_or_create_by_key(&LabelKey::with_hash(set, hash(set[0])));
        }
        let lens: Vec<usize> = sets
            .iter()
            .map(|set| f.probe_len(&LabelKey::with_hash(set, hash(set[0]))))
            .collect();
        (lens.iter().copied().max().unwrap(), lens.iter().sum())
    }

    #[test]
    fn values_made_to_collide_unkeyed_spread_out_keyed() {
        let values = colliding();
        assert_eq!(values.len(), 400);
        // The fixture is what it says: one bucket under the old hash ...
        assert!(values.iter().all(|v| unkeyed(v) & 2047 == 0));
        let (longest, total) = probes(&values, unkeyed);
        // ... so one probe chain: the last value walks past all the others.
        assert_eq!(longest, 400);
        assert_eq!(total, 400 * 401 / 2);
        // Keyed, the same values land where a random hash would put them:
        // 400 in 2,048 slots gives chains of a few slots.
        let (longest, total) = probes(&values, |v| LabelKey::new(&[v]).hash());
        assert!(longest <= 12, "longest chain {longest}");
        assert!(total <= 600, "{total} probes for 400 lookups");
    }

    fn hash(values: &[&str]) -> u64 {
        hash_label_values(process_key(), values)
    }

    #[test]
    fn the_key_is_fixed_for_the_process() {
        let labels = ["GET", "/x"];
        assert_eq!(LabelKey::new(&labels).hash(), hash(&labels));
        assert_eq!(LabelKey::new(&labels).hash(), LabelKey::new(&labels).hash());
    }

    #[test]
    fn hash_spreads_similar_values() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..crate::metrics::stress(10_000) {
            let v = format!("/api/v1/items/{i}");
            assert!(seen.insert(hash(&["GET", &v]) & 0xffff_ffff));
        }
        for n in 0..=20 {
            let v = "x".repeat(n);
            assert!(seen.insert(hash(&[&v])), "length {n}");
        }
    }

    #[test]
    fn hash_separates_boundaries() {
        assert_ne!(hash(&["ab", ""]), hash(&["a", "b"]));
        assert_ne!(hash(&["a"]), hash(&["a", ""]));
        let long = "a".repeat(40);
        assert_ne!(hash(&[long.as_str()]), hash(&[&long[..39]]));
    }
}
