//! process_* on Linux, from /proc.
//!
//! CPU seconds from `/proc/self/stat` (utime + stime over the clock tick),
//! threads, the start time (boot time from `/proc/stat` plus the start
//! tick), virtual and resident memory from `/proc/self/statm`, open
//! descriptors (entries of `/proc/self/fd`) and the soft limits from
//! `/proc/self/limits`. Files are read into a stack buffer, so a scrape
//! allocates nothing here.
//!
//! Memory comes from `statm` rather than from `stat`'s `vsize` and `rss`:
//! the kernel fills both from the same counters, but an emulator may not.
//! qemu-user (how arm64 images run on an amd64 host) writes its own
//! `/proc/self/stat` for the guest with most fields zero, and passes
//! `statm` through from the real process. A `stat` line with no threads
//! cannot have come from the kernel (a process has at least one), so its
//! CPU time and thread count are left out rather than reported as zero.

use std::fs::File;
use std::io::Read;

use once_cell::sync::Lazy;

use super::fds::count_open_fds;
use super::slot::{CPU, MAX_FDS, OPEN_FDS, RESIDENT, START_TIME, THREADS, VIRTUAL, VIRTUAL_MAX};
use super::Values;

/// Fields of `/proc/self/stat` the collector uses, already in metric units.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ProcessStats {
    cpu_seconds: f64,
    threads: f64,
    /// Clock ticks after boot at which the process started.
    start_ticks: f64,
}

/// Fields of `/proc/self/statm`, in bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Memory {
    virtual_bytes: f64,
    resident_bytes: f64,
}

/// Fills every slot it can read.
pub(super) fn read(values: &mut Values) {
    let mut buf = [0u8; 4096];
    if let Some(stats) = read_file(&mut buf, "/proc/self/stat").and_then(parse_stat) {
        stat_values(&stats, values);
    }
    if let Some(memory) = read_file(&mut buf, "/proc/self/statm").and_then(parse_statm) {
        values[VIRTUAL] = Some(memory.virtual_bytes);
        values[RESIDENT] = Some(memory.resident_bytes);
    }
    values[OPEN_FDS] = count_open_fds().map(|n| n as f64);
    if let Some(limits) = read_file(&mut buf, "/proc/self/limits") {
        values[MAX_FDS] = soft_limit(limits, "Max open files");
        values[VIRTUAL_MAX] = soft_limit(limits, "Max address space");
    }
}

static CLOCK_TICKS: Lazy<f64> = Lazy::new(|| sysconf_or(libc::_SC_CLK_TCK, 100.0));
static PAGE_SIZE: Lazy<f64> = Lazy::new(|| sysconf_or(libc::_SC_PAGESIZE, 4096.0));

fn sysconf_or(name: libc::c_int, fallback: f64) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let value = unsafe { libc::sysconf(name) };
    if value > 0 {
        value as f64
    } else {
        fallback
    }
}

/// Boot time in seconds since the epoch (`btime` in /proc/stat); read once,
/// since it never changes.
static BOOT_TIME: Lazy<Option<f64>> = Lazy::new(|| {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
});

/// Reads a whole small file into `buf`; `None` if it cannot be read or does
/// not fit (then its values would be cut, so none are reported).
fn read_file<'b>(buf: &'b mut [u8], path: &str) -> Option<&'b [u8]> {
    let mut file = File::open(path).ok()?;
    let mut len = 0;
    loop {
        match file.read(&mut buf[len..]) {
            Ok(0) => return Some(&buf[..len]),
            Ok(n) => {
                len += n;
                if len == buf.len() {
                    return None;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// The slots a `stat` line fills: CPU time and threads only when it came
/// from the kernel (see the module docs), the start time always.
fn stat_values(stats: &ProcessStats, values: &mut Values) {
    if stats.threads >= 1.0 {
        values[CPU] = Some(stats.cpu_seconds);
        values[THREADS] = Some(stats.threads);
    }
    values[START_TIME] = BOOT_TIME.map(|boot| boot + stats.start_ticks / *CLOCK_TICKS);
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(stat: &[u8]) -> Option<ProcessStats> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // Field 3 (state) is the first after the name; field n is at n - 3.
    let mut fields = [0f64; 22];
    let mut seen = 0;
    for (i, field) in rest.split_ascii_whitespace().enumerate().take(22) {
        if i > 0 {
            fields[i] = field.parse().ok()?;
        }
        seen = i + 1;
    }
    if seen < 22 {
        return None;
    }
    let field = |n: usize| fields[n - 3];
    Some(ProcessStats {
        cpu_seconds: (field(14) + field(15)) / *CLOCK_TICKS,
        threads: field(20),
        start_ticks: field(22),
    })
}

/// Parses `/proc/<pid>/statm`: sizes in pages, the whole mapping first and
/// the resident part second.
fn parse_statm(statm: &[u8]) -> Option<Memory> {
    let mut fields = std::str::from_utf8(statm).ok()?.split_ascii_whitespace();
    let mut pages = || fields.next()?.parse::<f64>().ok().map(|n| n * *PAGE_SIZE);
    Some(Memory {
        virtual_bytes: pages()?,
        resident_bytes: pages()?,
    })
}

/// The soft limit on the line of `/proc/self/limits` named `name`;
/// "unlimited" is reported as 2^64 - 1, as client_golang does.
fn soft_limit(limits: &[u8], name: &str) -> Option<f64> {
    let text = std::str::from_utf8(limits).ok()?;
    let line = text.lines().find(|l| l.starts_with(name))?;
    let soft = line[name.len()..].split_ascii_whitespace().next()?;
    if soft == "unlimited" {
        Some(u64::MAX as f64)
    } else {
        soft.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_command_name() {
        let line = b"4242 (we) ird (name)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
            250 50 0 0 20 0 7 0 123456 10485760 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.cpu_seconds, 300.0 / *CLOCK_TICKS);
        assert_eq!(s.threads, 7.0);
        assert_eq!(s.start_ticks, 123456.0);
        assert!(parse_stat(b"1 (x) S 1 2 3").is_none());
        assert!(parse_stat(b"no paren at all").is_none());
    }

    #[test]
    fn statm_in_pages() {
        let m = parse_statm(b"765 425 397 5 0 123 0\n").unwrap();
        assert_eq!(m.virtual_bytes, 765.0 * *PAGE_SIZE);
        assert_eq!(m.resident_bytes, 425.0 * *PAGE_SIZE);
        assert!(parse_statm(b"765").is_none());
        assert!(parse_statm(b"x 1").is_none());
    }

    #[test]
    fn a_stat_line_without_threads_reports_no_cpu_or_threads() {
        // What qemu-user 7.2 writes for an arm64 guest: pid, name, state,
        // ppid and the start time, every other field zero.
        let line = b"7 (tinymon) R 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 987654 0 0 0";
        let mut values = [None; 8];
        stat_values(&parse_stat(line).unwrap(), &mut values);
        assert_eq!(values[CPU], None);
        assert_eq!(values[THREADS], None);
        assert!(values[START_TIME].is_some());
        // The kernel's own line fills all three.
        let mut buf = [0u8; 4096];
        let mut values = [None; 8];
        stat_values(
            &parse_stat(read_file(&mut buf, "/proc/self/stat").unwrap()).unwrap(),
            &mut values,
        );
        assert!(values[CPU].is_some() && values[THREADS].is_some() && values[START_TIME].is_some());
    }

    #[test]
    fn limits_soft_values() {
        let limits =
            b"Limit                     Soft Limit           Hard Limit           Units     \n\
Max open files            1024                 524288               files     \n\
Max address space         unlimited            unlimited            bytes     \n";
        assert_eq!(soft_limit(limits, "Max open files"), Some(1024.0));
        assert_eq!(
            soft_limit(limits, "Max address space"),
            Some(18446744073709551615.0)
        );
        assert_eq!(soft_limit(limits, "Max processes"), None);
    }

    #[test]
    fn live_values_match_this_process() {
        let mut buf = [0u8; 4096];
        let stats = parse_stat(read_file(&mut buf, "/proc/self/stat").unwrap()).unwrap();
        assert!(stats.threads >= 1.0);
        let memory = parse_statm(read_file(&mut buf, "/proc/self/statm").unwrap()).unwrap();
        assert!(memory.resident_bytes > 0.0);
        assert!(memory.virtual_bytes >= memory.resident_bytes);
        // Other tests open files concurrently, so only the lower bound is
        // exact here; the integration tests compare against a quiet child.
        let f = File::open("/proc/self/stat").unwrap();
        assert!(count_open_fds().unwrap() >= 1);
        drop(f);
        let boot = BOOT_TIME.unwrap();
        let start = boot + stats.start_ticks / *CLOCK_TICKS;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            start <= now + 1.0 && start > now - 3600.0,
            "{start} vs {now}"
        );
    }
}
