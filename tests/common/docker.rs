//! The Docker engine and compose client, as the tests drive them: by their
//! command-line clients, the way a user does.
#![allow(dead_code)]

use std::process::{Command, Output};

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `program args` in the repository and returns its stdout, panicking
/// with everything it printed when it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = output(program, args);
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs `program args` in the repository; panics only when it cannot start.
pub fn output(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(REPO)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is required ({e}); `make test` installs and starts it as root")
        })
}

pub fn docker(args: &[&str]) -> String {
    run("docker", args)
}

/// Panics with the way to fix it unless a Docker engine answers.
pub fn require_engine() {
    let out = output("docker", &["info", "--format", "{{.ServerVersion}}"]);
    assert!(
        out.status.success(),
        "no Docker engine answers `docker info`; `make test` starts one \
         (tests/stack/ensure-docker.sh):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The image architecture of this host, as Docker and `make` name it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no tinymon image for {other}"),
    }
}

/// Builds `tinymon:local` for the host from the repository's Dockerfile,
/// with the same arguments as `make image`, from the static binary that
/// `make build` left in target/image/linux/<arch>/.
pub fn build_tinymon_image() {
    build_tinymon_image_for(host_arch());
}

/// `make image ARCH=arch`, without the `make build` that `make test` has
/// already run.
pub fn build_tinymon_image_for(arch: &str) {
    let bin = format!("{REPO}/target/image/linux/{arch}/tinymon");
    assert!(
        std::path::Path::new(&bin).exists(),
        "{bin} is missing: run `make build ARCH={arch}` (make test does)"
    );
    if arch == host_arch() {
        if let Ok(want) = std::env::var("TINYMON_STATIC_BIN") {
            let (a, b) = (std::fs::read(&want).unwrap(), std::fs::read(&bin).unwrap());
            assert!(a == b, "the Dockerfile copies {bin}, which is not {want}");
        }
    }
    docker(&[
        "build",
        "-q",
        "--platform",
        &format!("linux/{arch}"),
        "--build-arg",
        &format!("TARGETARCH={arch}"),
        "-t",
        "tinymon:local",
        REPO,
    ]);
    assert_eq!(inspect("tinymon:local", "{{.Architecture}}"), arch);
}

/// A host port for `-p 127.0.0.1:PORT:...` (see `docker port`).
pub fn published_port(container: &str, port: &str) -> u16 {
    let out = docker(&["port", container, port]);
    out.lines()
        .find_map(|l| l.strip_prefix("127.0.0.1:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{container} publishes {port} on no 127.0.0.1 port: {out}"))
}

/// `docker inspect -f FORMAT target`.
pub fn inspect(target: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, target])
}
