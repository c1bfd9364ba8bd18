//! The encoder's output for awkward names and label values, checked by the
//! real `promtool check metrics` and read back by the strict parser.

mod common;

use common::promtool_check;
use tinymon::encode::TextEncoder;
use tinymon::metrics::{Buckets, Counter, Family, Gauge, Histogram, Registry};
use tinymon_test_support::parse_text;

const AWKWARD: [&str; 8] = [
    "plain",
    "with \"quotes\"",
    "back\\slash",
    "new\nline",
    "café ✓ 日本語",
    "",
    "\\\"\n\\n",
    "trailing\\",
];

#[test]
fn awkward_label_values_pass_promtool_and_read_back() {
    let r = Registry::new();
    let c = r
        .register(
            Family::<Counter, 1>::new("odd_total", "Help with \\ and\nnewline.", ["v"]).unwrap(),
        )
        .unwrap();
    let g = r
        .register(
            Family::<Gauge, 2>::new("odd_level", "Gauge \"quoted\" help.", ["v", "w"]).unwrap(),
        )
        .unwrap();
    let h = r
        .register(
            Family::<Histogram, 1>::with_config(
                "odd_seconds",
                "Histogram.",
                ["v"],
                Buckets::new(&[1e-5, 0.5, 1e6]).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
    for (i, v) in AWKWARD.iter().enumerate() {
        c.get_or_create(&[v]).inc_by(i as u64 + 1);
        g.get_or_create(&[v, "x"])
            .set([f64::NAN, f64::INFINITY, -1.5e-9, 1e21][i % 4]);
        h.get_or_create(&[v]).observe(i as f64 * 0.3);
    }
    let mut enc = TextEncoder::new();
    let text = String::from_utf8(enc.encode(&r).to_vec()).unwrap();
    let (ok, out) = promtool_check(&text);
    assert!(ok && out.trim().is_empty(), "promtool: {out}\n---\n{text}");

    // Read the counter lines back with the strict parser.
    let families = parse_text(&text).unwrap();
    let odd = families.iter().find(|f| f.name == "odd_total").unwrap();
    assert_eq!(odd.help, "Help with \\ and\nnewline.");
    let read: Vec<(String, u64)> = odd
        .samples
        .iter()
        .map(|s| {
            assert_eq!(s.labels.len(), 1);
            (s.labels[0].1.clone(), s.value as u64)
        })
        .collect();
    let want: Vec<(String, u64)> = AWKWARD
        .iter()
        .enumerate()
        .map(|(i, v)| (v.to_string(), i as u64 + 1))
        .collect();
    assert_eq!(read, want);
    assert!(text.contains("le=\"1e-05\""), "{text}");
    assert!(text.contains("le=\"1e+06\""), "{text}");
    assert!(text.contains("odd_level{v=\"plain\",w=\"x\"} NaN\n"));
    assert!(text.contains("} +Inf\n"));
    assert!(text.contains("} 1e+21\n"));
}
