//! Scrapes while other threads record: every scrape parses, histogram
//! buckets are cumulative with `_count` equal to `+Inf`, and no counter,
//! bucket or count ever goes down from one scrape to the next.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use tinymon::encode::TextEncoder;
use tinymon::metrics::{Counter, Family, Histogram, Registry};
use tinymon_test_support::Rng;
use tinymon_test_support::{parse_text, Kind, ParsedSample};

#[test]
fn a_thousand_scrapes_under_two_observers_are_consistent() {
    let r = Registry::new();
    let h = r
        .register(Family::<Histogram, 1>::new("lat_seconds", "Latency.", ["route"]).unwrap())
        .unwrap();
    let c = r
        .register(Family::<Counter, 1>::new("hits_total", "Hits.", ["route"]).unwrap())
        .unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for seed in 0..2u64 {
            let (h, c, stop) = (&h, &c, &stop);
            s.spawn(move || {
                let mut rng = Rng::seeded(seed + 11);
                while !stop.load(Ordering::Relaxed) {
                    let route = ["/a", "/b", "/c"][(rng.next_u64() % 3) as usize];
                    // 0 to 12 s: every bucket including +Inf gets traffic.
                    h.get_or_create(&[route]).observe(rng.next_f64() * 12.0);
                    c.get_or_create(&[route]).inc();
                }
            });
        }
        let mut enc = TextEncoder::new();
        let mut last: HashMap<String, f64> = HashMap::new();
        for scrape in 0..1_000 {
            let text = std::str::from_utf8(enc.encode(&r)).unwrap();
            let families =
                parse_text(text).unwrap_or_else(|e| panic!("scrape {scrape}: {e}\n{text}"));
            for f in &families {
                if f.kind == Kind::Histogram {
                    check_histogram(scrape, &f.samples);
                }
                for s in &f.samples {
                    if s.name.ends_with("_sum") {
                        continue;
                    }
                    let key = format!("{}{:?}", s.name, s.labels);
                    let before = last.insert(key.clone(), s.value).unwrap_or(0.0);
                    assert!(
                        s.value >= before,
                        "scrape {scrape}: {key} went from {before} to {}",
                        s.value
                    );
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
}

fn check_histogram(scrape: usize, samples: &[ParsedSample]) {
    let mut by_series: HashMap<String, Vec<&ParsedSample>> = HashMap::new();
    for s in samples {
        let key: Vec<_> = s.labels.iter().filter(|(k, _)| k != "le").collect();
        by_series.entry(format!("{key:?}")).or_default().push(s);
    }
    for (series, lines) in by_series {
        let buckets: Vec<(f64, f64)> = lines
            .iter()
            .filter(|s| s.name.ends_with("_bucket"))
            .map(|s| {
                let le = &s.labels.iter().find(|(k, _)| k == "le").unwrap().1;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                (le, s.value)
            })
            .collect();
        assert_eq!(buckets.len(), 12, "{series}");
        assert!(
            buckets.windows(2).all(|w| w[0].0 < w[1].0),
            "le order {series}"
        );
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "scrape {scrape}: not cumulative {series}: {buckets:?}"
        );
        let count = lines
            .iter()
            .find(|s| s.name.ends_with("_count"))
            .unwrap()
            .value;
        let sum = lines
            .iter()
            .find(|s| s.name.ends_with("_sum"))
            .unwrap()
            .value;
        assert_eq!(
            buckets.last().unwrap(),
            &(f64::INFINITY, count),
            "scrape {scrape}: {series}"
        );
        assert!(
            sum <= count * 12.0 && sum >= 0.0,
            "scrape {scrape}: sum {sum} for count {count}"
        );
    }
}
