//! Arbitrary names, help text and label values → OpenMetrics encoder → the
//! official Python client's parser (one long-running process, see
//! tests/openmetrics/serve.py) must accept the document and read back
//! exactly what went in.
#![no_main]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tinymon::encode::OpenMetricsEncoder;
use tinymon::metrics::{Counter, Family, Gauge, Registry};

struct Python {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn python() -> &'static Mutex<Python> {
    static PYTHON: OnceLock<Mutex<Python>> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let exe = std::env::var("TINYMON_PYTHON")
            .unwrap_or(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/pyenv/bin/python").into());
        let mut child = Command::new(&exe)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/openmetrics/serve.py"
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{exe}: {e}; `make pyenv` installs the Python client"));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Mutex::new(Python {
            _child: child,
            stdin,
            stdout,
        })
    })
}

fn parse(text: &str) -> Value {
    let mut py = python().lock().unwrap();
    py.stdin
        .write_all(&(text.len() as u32).to_be_bytes())
        .unwrap();
    py.stdin.write_all(text.as_bytes()).unwrap();
    py.stdin.flush().unwrap();
    let mut line = String::new();
    py.stdout.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Fields separated by 0x1f: name, help, label name, then label values.
    let mut fields = text.split('\u{1f}');
    let name = fields.next().unwrap_or("");
    let help = fields.next().unwrap_or("");
    let label = fields.next().unwrap_or("l");
    let values: Vec<&str> = fields.take(8).collect();

    let r = Registry::new();
    let Ok(counter) = Family::<Counter, 1>::new(name, help, [label]) else {
        return;
    };
    let Ok(counter) = r.register(counter) else {
        return;
    };
    let gauge = Family::<Gauge, 2>::new("fuzz_level", help, [label, "second"])
        .ok()
        .and_then(|g| r.register(g).ok());
    let mut expected: Vec<(String, u64)> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        counter.get_or_create(&[*v]).inc_by(i as u64 + 1);
        match expected.iter_mut().find(|(e, _)| e == v) {
            Some(e) => e.1 += i as u64 + 1,
            None => expected.push((v.to_string(), i as u64 + 1)),
        }
        if let Some(g) = gauge.as_ref() {
            g.get_or_create(&[*v, *v]).set(-(v.len() as f64) / 3.0);
        }
    }
    let mut enc = OpenMetricsEncoder::new();
    let out = std::str::from_utf8(enc.encode(&r)).expect("UTF-8");
    let read = parse(out);
    assert_eq!(
        read["ok"], true,
        "the Python parser refused: {}\n{out}",
        read["error"]
    );
    let base = name
        .strip_suffix("_total")
        .filter(|b| !b.is_empty())
        .unwrap_or(name);
    let Some(fam) = read["families"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == base)
    else {
        assert!(expected.is_empty(), "counter family missing\n{out}");
        return;
    };
    assert_eq!(fam["help"], help, "{out}");
    let got: Vec<(String, u64)> = fam["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s[0] == format!("{base}_total"))
        .map(|s| {
            (
                s[1][label].as_str().unwrap().to_owned(),
                s[2].as_str().unwrap().parse::<f64>().unwrap() as u64,
            )
        })
        .collect();
    assert_eq!(got, expected, "{out}");
});
