//! process_* in a scrape of the real binary against /proc/<pid> of that child.

mod common;

use common::{sample, Tinymon};

fn proc_field(pid: i32, file: &str, key: &str) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    let line = text.lines().find(|l| l.starts_with(key)).unwrap();
    let value = line[key.len()..].split_whitespace().next().unwrap();
    if value == "unlimited" {
        u64::MAX as f64
    } else {
        value.parse().unwrap()
    }
}

fn stat_fields(pid: i32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    // Index 0 here is field 3 of proc(5).
    after.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn process_values_match_proc_of_the_child() {
    let t = Tinymon::start(&["--workers", "3"]);
    for _ in 0..20 {
        t.get("/hello");
    }
    let text = t.scrape();
    let pid = t.pid();
    let field = |n: usize| stat_fields(pid)[n - 3].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;

    let btime = common::boot_time();
    let start = sample(&text, "process_start_time_seconds").unwrap();
    assert!(
        (start - (btime + field(22) / ticks)).abs() < 1e-6,
        "{start}"
    );

    assert_eq!(
        sample(&text, "process_max_fds"),
        Some(proc_field(pid, "limits", "Max open files"))
    );
    assert_eq!(
        sample(&text, "process_virtual_memory_max_bytes"),
        Some(proc_field(pid, "limits", "Max address space"))
    );

    // These move a little between the scrape and our reading; bound them.
    let cpu = sample(&text, "process_cpu_seconds_total").unwrap();
    assert!(
        cpu >= 0.0 && cpu <= (field(14) + field(15)) / ticks + 1e-9,
        "{cpu}"
    );
    let threads = sample(&text, "process_threads").unwrap();
    let now_threads = proc_field(pid, "status", "Threads:");
    assert!(
        threads >= 4.0,
        "3 workers + main + accept thread: {threads}"
    );
    assert!(
        (threads - now_threads).abs() <= 4.0,
        "{threads} vs {now_threads}"
    );
    let rss = sample(&text, "process_resident_memory_bytes").unwrap();
    let now_rss = field(24) * page;
    assert!(
        rss > 0.0 && rss / now_rss > 0.5 && rss / now_rss < 2.0,
        "{rss} vs {now_rss}"
    );
    let vsz = sample(&text, "process_virtual_memory_bytes").unwrap();
    assert!(vsz >= rss, "{vsz} < {rss}");
    let fds = sample(&text, "process_open_fds").unwrap();
    let now_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as f64;
    // stdin/out/err, the listener, and the scrape's own connection at most.
    assert!(
        fds >= 4.0 && (fds - now_fds).abs() <= 2.0,
        "{fds} vs {now_fds}"
    );
}
