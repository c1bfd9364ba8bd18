//! The arm64 build, run on this amd64 machine under qemu-user emulation:
//! the static binary `make build ARCH=arm64` makes, by itself and as the
//! `tinymon:local` image `make image ARCH=arm64` makes, in a real Docker
//! engine that runs it through the kernel's binfmt_misc.
//!
//! Needs `qemu-user-static` (and, for the image, its binfmt entry with the
//! F flag, which `make test` registers) and the arm64 binary; `#[ignore]`d
//! for plain `cargo test`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::docker::{build_tinymon_image, build_tinymon_image_for, docker, inspect};
use common::{promtool_check, sample, Tinymon};

const ARM64_BIN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/target/image/linux/arm64/tinymon"
);
const QEMU: &str = "qemu-aarch64-static";

/// The ELF header says AArch64 (e_machine 183), so the test below really
/// runs an emulated binary.
fn assert_is_aarch64(path: &str) {
    let head = std::fs::read(path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run `make build ARCH=arm64` (make test does)"));
    assert_eq!(&head[..4], b"\x7fELF", "{path} is not ELF");
    assert_eq!(
        u16::from_le_bytes([head[18], head[19]]),
        183,
        "{path} is not AArch64"
    );
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
#[ignore = "needs qemu-user-static and the arm64 binary; `make test` runs it"]
fn the_arm64_binary_serves_under_emulation_and_stops_on_sigterm() {
    assert_is_aarch64(ARM64_BIN);
    let mut cmd = Command::new(QEMU);
    cmd.arg(ARM64_BIN).arg("serve");
    let started = now();
    let mut server = Tinymon::start_command(cmd, &[]);
    assert_eq!(server.get("/hello").status, 200);
    assert_eq!(server.get("/healthz").status, 200);

    let text = server.scrape();
    let (ok, out) = promtool_check(&text);
    assert!(ok && out.trim().is_empty(), "promtool check metrics: {out}");
    let rss = sample(&text, "process_resident_memory_bytes").expect("RSS reported");
    assert!(rss > 0.0, "RSS {rss}");
    let start = sample(&text, "process_start_time_seconds").expect("start time reported");
    assert!(
        start > started - 5.0 && start <= now() + 1.0,
        "start time {start}, started at {started}"
    );
    assert!(sample(&text, "process_open_fds").is_some_and(|n| n >= 3.0));
    // qemu-user writes the guest's /proc/self/stat itself with zero threads
    // and zero CPU time; those are left out, never written as 0.
    if let Some(threads) = sample(&text, "process_threads") {
        assert!(threads >= 1.0, "threads {threads}");
    }
    assert!(text.contains(
        "\nserver_handle_request_total{type=\"http\",method=\"GET\",path=\"/hello\"} 1\n"
    ));

    server.signal(libc::SIGTERM);
    assert_eq!(
        server.wait_exit(Duration::from_secs(10)),
        Some(0),
        "exit status after SIGTERM"
    );
}

/// Puts the host's `tinymon:local` back, however the test ends.
struct RestoreHostImage;

impl Drop for RestoreHostImage {
    fn drop(&mut self) {
        build_tinymon_image();
    }
}

#[test]
#[ignore = "needs a Docker engine, binfmt_misc for aarch64 and the arm64 binary; `make test` runs it"]
fn the_arm64_image_runs_healthy_in_docker_through_binfmt() {
    common::docker::require_engine();
    let entry = std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64").unwrap_or_else(|e| {
        panic!("no binfmt_misc entry for aarch64 ({e}); `make test` registers qemu-user-static's as root")
    });
    // F: the kernel opened the interpreter at registration, so it also
    // works inside a container's root filesystem, which has no qemu.
    assert!(
        entry.contains("enabled")
            && entry
                .lines()
                .any(|l| l.starts_with("flags:") && l.contains('F')),
        "{entry}"
    );
    assert_is_aarch64(ARM64_BIN);
    let _restore = RestoreHostImage;
    build_tinymon_image_for("arm64");
    assert_eq!(
        inspect("tinymon:local", "{{.Os}}/{{.Architecture}}"),
        "linux/arm64"
    );
    let size: u64 = inspect("tinymon:local", "{{.Size}}").parse().unwrap();
    eprintln!("image tinymon:local for arm64: {size} bytes");
    assert!(
        size <= 1_200_000,
        "arm64 image is {size} bytes, over the 1.20 MB budget"
    );

    let name = format!("tinymon-arm64-test-{}", std::process::id());
    let _ = common::docker::output("docker", &["rm", "-f", &name]);
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--platform",
        "linux/arm64",
        "-p",
        "127.0.0.1::8080",
        "tinymon:local",
    ]);
    let _container = Container(name.clone());
    let started = Instant::now();
    loop {
        let health = inspect(&name, "{{.State.Health.Status}}");
        if health == "healthy" {
            eprintln!("arm64 container healthy after {:?}", started.elapsed());
            break;
        }
        assert!(
            health == "starting" && started.elapsed() < Duration::from_secs(60),
            "health {health} after {:?}: {}",
            started.elapsed(),
            inspect(&name, "{{json .State.Health}}")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let port = common::docker::published_port(&name, "8080/tcp");
    let r = tinymon_test_support::client::get(
        &format!("http://127.0.0.1:{port}/metrics"),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let (ok, out) = promtool_check(&r.text());
    assert!(ok && out.trim().is_empty(), "{out}");
    docker(&["stop", &name]);
    assert_eq!(inspect(&name, "{{.State.ExitCode}}"), "0");
}

/// Removes the container however the test ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = common::docker::output("docker", &["rm", "-f", &self.0]);
    }
}
