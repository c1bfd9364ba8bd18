//! The static binary as it runs in the `FROM scratch` image: PID 1 of its own
//! PID namespace, chrooted into a directory holding nothing but the binary
//! (and the /proc mount point a container runtime provides).
//!
//! Needs root (unshare, chroot) and the static release binary, whose path
//! `make test` passes in TINYMON_STATIC_BIN after `make build`; `#[ignore]`d
//! for plain `cargo test`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, sample, temp_dir};

fn static_binary() -> String {
    let path = std::env::var("TINYMON_STATIC_BIN")
        .expect("set TINYMON_STATIC_BIN to the static binary (make test does, after make build)");
    let file = Command::new("file").arg(&path).output();
    if let Ok(out) = file {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("static"),
            "{path} is not statically linked: {text}"
        );
    }
    path
}

/// The child process of `parent` (unshare forks the namespace's PID 1).
fn only_child(parent: u32) -> Option<i32> {
    let children =
        std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

#[test]
#[ignore = "needs root and the static binary; `make test` runs it"]
fn static_binary_serves_as_pid_1_in_an_empty_root() {
    let bin = static_binary();
    let root = temp_dir("scratch");
    std::fs::copy(&bin, root.join("tinymon")).unwrap();
    std::fs::create_dir(root.join("proc")).unwrap();
    let listing: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        listing.len(),
        2,
        "root holds only the binary and /proc: {listing:?}"
    );

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let proc_dir = root.join("proc");
    let mut unshare = Command::new("unshare")
        .arg("--pid")
        .arg("--fork")
        .arg("--mount")
        .arg(format!("--mount-proc={}", proc_dir.display()))
        .arg("chroot")
        .arg(&root)
        .args(["/tinymon", "--listen", &addr, "--workers", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("unshare (util-linux) is required");

    let started = Instant::now();
    let url = format!("http://{addr}/metrics");
    let text = loop {
        match tinymon::client::get(&url, Duration::from_secs(2)) {
            Ok(r) if r.status == 200 => break r.text(),
            _ if started.elapsed() > Duration::from_secs(10) => {
                let _ = unshare.kill();
                panic!("no scrape from the chrooted binary within 10 s");
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };

    let pid = only_child(unshare.id()).expect("tinymon under unshare");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert_eq!(
        nspid.split_whitespace().last(),
        Some("1"),
        "not PID 1: {nspid}"
    );

    for name in [
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_start_time_seconds",
        "process_threads",
    ] {
        let v = sample(&text, name).unwrap_or_else(|| panic!("{name} missing in the scratch root"));
        assert!(v >= 0.0, "{name} = {v}");
    }
    let (ok, out) = common::promtool_check(&text);
    assert!(ok && out.trim().is_empty(), "{out}");

    // The image's HEALTHCHECK: the binary itself, run inside the same root.
    let health = Command::new("chroot")
        .arg(&root)
        .args([
            "/tinymon",
            "healthcheck",
            "--url",
            &format!("http://{addr}/healthz"),
        ])
        .status()
        .unwrap();
    assert!(health.success(), "healthcheck failed: {health}");
    let unhealthy = Command::new("chroot")
        .arg(&root)
        .args([
            "/tinymon",
            "healthcheck",
            "--url",
            &format!("http://127.0.0.1:{}/healthz", free_port()),
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(unhealthy.code(), Some(1));

    // SIGTERM from outside the namespace, as `docker stop` sends it.
    // SAFETY: kill(2) on the process we started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let sent = Instant::now();
    let code = loop {
        if let Some(s) = unshare.try_wait().unwrap() {
            break s.code();
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = unshare.kill();
            panic!("PID 1 ignored SIGTERM for 5 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
    let _ = std::fs::remove_dir_all(&root);
}
