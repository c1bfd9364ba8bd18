//! Numbers as the text format wants them, written straight into the output
//! buffer with no allocation.
//!
//! Integers (counter values, bucket counts) are written in full. Floats follow
//! Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which is what client_golang and
//! Prometheus itself write: the shortest digits that read back to the same
//! value, an exponent below 1e-4 and from 1e6 on (`1e+06`, `5e-05`), and
//! `+Inf`, `-Inf`, `NaN` for the special values. Matching Go byte for byte
//! keeps `le` label values identical to the ones other clients produce, so a
//! dashboard that selects `le="1e+06"` works for both.

use std::fmt::Write as _;

/// Two ASCII digits for every value 0..100, so integers are written two at a time.
const DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        table[2 * i] = b'0' + (i / 10) as u8;
        table[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

/// Appends the decimal digits of `n`.
pub(crate) fn write_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut at = tmp.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        tmp[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        tmp[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        tmp[at] = b'0' + n as u8;
    }
    buf.extend_from_slice(&tmp[at..]);
}

/// Appends `v` formatted as Go's `FormatFloat(v, 'g', -1, 64)`:
/// `0.005`, `1`, `1.048576e+06`, `+Inf`, `1e-05`.
pub(crate) fn write_f64(buf: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        buf.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        buf.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    // Fast path: whole numbers below 1e6 print as plain integers in Go's 'g'
    // format too, and they are the common case (gauges counting things).
    if v == v.trunc() && v.abs() < 1e6 {
        if v.is_sign_negative() {
            buf.push(b'-');
        }
        write_u64(buf, v.abs() as u64);
        return;
    }
    write_go_g(buf, v);
}

/// Go's shortest 'g' layout, built from the shortest round-trip digits that
/// Rust's `{:e}` produces (the same digits Go's algorithm finds).
fn write_go_g(buf: &mut Vec<u8>, v: f64) {
    let mut sci = StackStr::new();
    // `{:e}` of a finite f64 is at most ~25 bytes; StackStr holds 32.
    let _ = write!(sci, "{v:e}");
    let text = sci.as_bytes();
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let e_at = text.iter().position(|&b| b == b'e').unwrap_or(text.len());
    let (mantissa, exp_text) = (&text[..e_at], &text[(e_at + 1).min(text.len())..]);
    let exp = parse_exponent(exp_text);
    let mut digits = [0u8; 24];
    let mut nd = 0;
    for &b in mantissa {
        if b.is_ascii_digit() && nd < digits.len() {
            digits[nd] = b;
            nd += 1;
        }
    }
    let digits = &digits[..nd.max(1)];

    if negative {
        buf.push(b'-');
    }
    if !(-4..6).contains(&exp) {
        // d.ddde±XX, at least two exponent digits.
        buf.push(digits[0]);
        if digits.len() > 1 {
            buf.push(b'.');
            buf.extend_from_slice(&digits[1..]);
        }
        buf.push(b'e');
        buf.push(if exp < 0 { b'-' } else { b'+' });
        let abs = exp.unsigned_abs() as u64;
        if abs < 10 {
            buf.push(b'0');
        }
        write_u64(buf, abs);
    } else if exp >= 0 {
        let int_len = exp as usize + 1;
        for i in 0..int_len {
            buf.push(*digits.get(i).unwrap_or(&b'0'));
        }
        if digits.len() > int_len {
            buf.push(b'.');
            buf.extend_from_slice(&digits[int_len..]);
        }
    } else {
        buf.extend_from_slice(b"0.");
        for _ in 0..(-exp - 1) {
            buf.push(b'0');
        }
        buf.extend_from_slice(digits);
    }
}

fn parse_exponent(text: &[u8]) -> i32 {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let magnitude = digits
        .iter()
        .fold(0i32, |acc, &d| acc * 10 + i32::from(d.wrapping_sub(b'0')));
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// A fixed-size `fmt::Write` target so float formatting needs no heap.
struct StackStr {
    bytes: [u8; 32],
    len: usize,
}

impl StackStr {
    fn new() -> Self {
        StackStr {
            bytes: [0; 32],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut buf = Vec::new();
        write_f64(&mut buf, v);
        String::from_utf8(buf).unwrap()
    }

    fn u(v: u64) -> String {
        let mut buf = Vec::new();
        write_u64(&mut buf, v);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn integers_match_display() {
        for v in [
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            12345,
            u64::MAX,
            u64::MAX - 1,
        ] {
            assert_eq!(u(v), v.to_string());
        }
        let mut x = 1u64;
        while let Some(next) = x.checked_mul(7) {
            assert_eq!(u(x), x.to_string());
            assert_eq!(u(x - 1), (x - 1).to_string());
            x = next;
        }
    }

    #[test]
    fn special_values() {
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(f(0.0), "0");
        assert_eq!(f(-0.0), "-0");
    }

    /// Expected strings are what Go's strconv.FormatFloat(v, 'g', -1, 64) prints.
    #[test]
    fn floats_match_go_g_format() {
        let cases: &[(f64, &str)] = &[
            (0.005, "0.005"),
            (0.01, "0.01"),
            (0.025, "0.025"),
            (2.5, "2.5"),
            (10.0, "10"),
            (1.0, "1"),
            (-1.0, "-1"),
            (123456.0, "123456"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (1048576.0, "1.048576e+06"),
            (1.8446744073709552e19, "1.8446744073709552e+19"),
            (1.7017386998e9, "1.7017386998e+09"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.00012345, "0.00012345"),
            (0.0006793330000000001, "0.0006793330000000001"),
            (1e100, "1e+100"),
            (-2.5e-7, "-2.5e-07"),
            (123.456, "123.456"),
            (0.1 + 0.2, "0.30000000000000004"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
        ];
        for &(v, want) in cases {
            assert_eq!(f(v), want, "formatting {v:?}");
        }
    }

    #[test]
    fn floats_read_back_exactly() {
        let mut x = 1.234_567_890_123e-300;
        while x < 1e300 {
            for v in [x, -x, x * 3.3, x / 7.0] {
                let text = f(v);
                assert_eq!(text.parse::<f64>().unwrap(), v, "{text}");
            }
            x *= if cfg!(miri) { 1.37e40 } else { 13.7 };
        }
    }
}
