//! Arbitrary names, help, label values and observations (NaN, ±Inf,
//! subnormals, values past the native window) → the protobuf encoder →
//! prost messages from metrics.proto (test support, no code shared with
//! the encoder) must read back the same names, help, labels and counts,
//! and every native bucket must hold exactly the observations that the
//! bucket definition `2^((k-1)/2^schema) < |v| <= 2^(k/2^schema)` puts there.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinymon::encode::ProtobufEncoder;
use tinymon::metrics::{Buckets, Counter, Family, Histogram, NativeBuckets, Registry};
use tinymon_test_support::proto::{decode_families, Histogram as PbHistogram};

fuzz_target!(|data: &[u8]| {
    let Some((params, rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    // Native settings from the first three bytes: growth 1.0156..5, zero
    // threshold 2^-0..2^-63, window 1..1021 buckets.
    let factor = 1.0 + (f64::from(params[0]) + 1.0) / 64.0;
    let zero = (-f64::from(params[1] % 64)).exp2();
    let cap = 1 + u32::from(params[2]) * 4;
    let native = NativeBuckets::new(factor, zero, cap).expect("valid settings");
    // Then name, help, label value separated by 0x1f; the rest are
    // observations, eight bytes each.
    let mut fields = rest.splitn(4, |&b| b == 0x1f);
    let name = String::from_utf8_lossy(fields.next().unwrap_or(b"")).into_owned();
    let help = String::from_utf8_lossy(fields.next().unwrap_or(b"")).into_owned();
    let value = String::from_utf8_lossy(fields.next().unwrap_or(b"")).into_owned();
    let observations: Vec<f64> = fields
        .next()
        .unwrap_or(b"")
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();

    let r = Registry::new();
    let Ok(hist) = Family::<Histogram, 1>::with_config(
        &name,
        &help,
        ["l"],
        Buckets::default().with_native(native.clone()),
    ) else {
        return;
    };
    let Ok(hist) = r.register(hist) else {
        return;
    };
    // The fuzzed name may already hold this one (or its `_total`).
    let counter = r
        .register(Family::<Counter, 1>::new("fuzz_calls_total", "Calls.", ["l"]).unwrap())
        .ok();
    let h = hist.get_or_create(&[&value]);
    for &v in &observations {
        h.observe(v);
        if let Some(c) = &counter {
            c.get_or_create(&[&value]).inc();
        }
    }

    let bytes = ProtobufEncoder::new().encode(&r).to_vec();
    let families = decode_families(&bytes).unwrap_or_else(|e| panic!("{e}: {bytes:?}"));
    let fam = families
        .iter()
        .find(|f| f.name.as_deref() == Some(name.as_str()))
        .expect("the histogram family");
    assert_eq!(fam.help.as_deref(), Some(help.as_str()));
    assert_eq!(fam.r#type, Some(4));
    assert_eq!(fam.metric.len(), 1);
    let m = &fam.metric[0];
    assert_eq!(m.label[0].name.as_deref(), Some("l"));
    assert_eq!(m.label[0].value.as_deref(), Some(value.as_str()));
    let calls = families
        .iter()
        .find(|f| f.name.as_deref() == Some("fuzz_calls_total"));
    if let (Some(calls), Some(_)) = (calls, &counter) {
        let n = calls.metric[0].counter.as_ref().unwrap().value.unwrap();
        assert_eq!(n, observations.len() as f64);
    }

    let pb = m.histogram.as_ref().unwrap();
    assert_eq!(pb.sample_count, Some(observations.len() as u64));
    let schema = pb.schema.expect("a native histogram has a schema");
    assert!(schema == native.schema() || schema == -4, "schema {schema}");
    assert_eq!(pb.zero_threshold, Some(zero));
    let pos = PbHistogram::native_buckets(&pb.positive_span, &pb.positive_delta).unwrap();
    let neg = PbHistogram::native_buckets(&pb.negative_span, &pb.negative_delta).unwrap();
    if pos.is_empty() && neg.is_empty() {
        assert_eq!(pb.positive_span.len(), 1, "an empty native histogram has one no-op span");
    }
    let mut zero_count = 0;
    // (key, sign) of each observation by the definition; near a boundary
    // (float log2 cannot tell) either neighbour is accepted.
    let mut clear: Vec<((i32, bool), u64)> = Vec::new();
    let mut ambiguous: Vec<((i32, bool), (i32, bool))> = Vec::new();
    for &v in &observations {
        if v.is_nan() {
            continue;
        }
        if v.abs() <= zero {
            zero_count += 1;
            continue;
        }
        let scaled = if v.is_infinite() {
            f64::MAX.log2() * f64::from(schema).exp2()
        } else {
            v.abs().log2() * f64::from(schema).exp2()
        };
        let mut key = scaled.ceil() as i32;
        if v.is_infinite() {
            key += 1;
        }
        let positive = v > 0.0;
        if !v.is_infinite() && (scaled - scaled.round()).abs() < 1e-9 {
            let k = scaled.round() as i32;
            ambiguous.push(((k, positive), (k + 1, positive)));
        } else {
            match clear.iter_mut().find(|(k, _)| *k == (key, positive)) {
                Some((_, n)) => *n += 1,
                None => clear.push(((key, positive), 1)),
            }
        }
    }
    assert_eq!(pb.zero_count, Some(zero_count));
    let decoded: Vec<((i32, bool), u64)> = pos
        .iter()
        .map(|&(k, n)| ((k, true), n))
        .chain(neg.iter().map(|&(k, n)| ((k, false), n)))
        .collect();
    let mut extra = 0;
    for &(key, n) in &decoded {
        let want = clear.iter().find(|(k, _)| *k == key).map_or(0, |c| c.1);
        assert!(n >= want, "bucket {key:?}: {n} < {want}; {decoded:?}");
        if n > want {
            assert!(
                ambiguous.iter().any(|(a, b)| *a == key || *b == key),
                "bucket {key:?} holds {n}, expected {want}; {decoded:?}"
            );
            extra += n - want;
        }
    }
    for (key, want) in &clear {
        assert!(decoded.iter().any(|(k, _)| k == key), "bucket {key:?} ({want}) missing");
    }
    assert_eq!(extra, ambiguous.len() as u64);
});
