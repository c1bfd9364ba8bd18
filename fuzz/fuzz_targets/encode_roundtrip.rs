//! Arbitrary names, help text and label values → encode → the strict parser
//! must read back exactly what went in, and the encoder must never write
//! something the parser rejects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinymon::encode::TextEncoder;
use tinymon::metrics::{Counter, Family, Gauge, Registry};
use tinymon_test_support::parse_text;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Fields separated by 0x1f (unit separator): name, help, label name,
    // then label values.
    let mut fields = text.split('\u{1f}');
    let name = fields.next().unwrap_or("");
    let help = fields.next().unwrap_or("");
    let label = fields.next().unwrap_or("l");
    let values: Vec<&str> = fields.take(8).collect();

    let r = Registry::new();
    // Invalid definitions must be refused with an error, never a panic.
    let Ok(counter) = Family::<Counter, 1>::new(name, help, [label]) else {
        return;
    };
    let Ok(counter) = r.register(counter) else {
        return;
    };
    let gauge = Family::<Gauge, 2>::new("fuzz_level", help, [label, "second"])
        .ok()
        .and_then(|g| r.register(g).ok());
    let mut expected = Vec::new();
    for (i, v) in values.iter().enumerate() {
        counter.get_or_create(&[*v]).inc_by(i as u64 + 1);
        if !expected.iter().any(|(e, _): &(String, u64)| e == v) {
            expected.push((v.to_string(), 0));
        }
        expected.iter_mut().find(|(e, _)| e == v).unwrap().1 += i as u64 + 1;
        if let Some(g) = gauge.as_ref() {
            g.get_or_create(&[*v, *v]).set(f64::from_bits(
                u64::from(v.len() as u32).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            ));
        }
    }
    let mut enc = TextEncoder::new();
    let out = std::str::from_utf8(enc.encode(&r)).expect("encoder writes UTF-8");
    let families = parse_text(out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    let Some(fam) = families.iter().find(|f| f.name == name) else {
        // A family without series is left out of the scrape.
        assert!(expected.is_empty(), "counter family missing\n{out}");
        return;
    };
    assert_eq!(fam.help, help);
    let read: Vec<(String, u64)> = fam
        .samples
        .iter()
        .map(|s| {
            assert_eq!(s.labels.len(), 1);
            assert_eq!(s.labels[0].0, label);
            (s.labels[0].1.clone(), s.value as u64)
        })
        .collect();
    assert_eq!(read, expected);
});
