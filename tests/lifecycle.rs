//! Starting, stopping and refusing: flags, a taken port, SIGTERM/SIGINT.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Tinymon;

fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tinymon"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("TINYMON_WORKERS")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_and_version() {
    let (code, out, _) = run(&["--help"], &[]);
    assert_eq!(code, Some(0));
    for word in [
        "--listen",
        "TINYMON_LISTEN",
        "0.0.0.0:8080",
        "--workers",
        "healthcheck",
        "load",
    ] {
        assert!(out.contains(word), "help lacks {word}");
    }
    let (code, out, _) = run(&["--version"], &[]);
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), format!("tinymon {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_flags_exit_2_naming_them() {
    for (args, env, word) in [
        (&["--frobnicate"][..], &[][..], "--frobnicate"),
        (&["--workers", "0"], &[], "--workers"),
        (&["--listen", "nowhere"], &[], "--listen"),
        (&[], &[("TINYMON_LISTEN", "bad")], "TINYMON_LISTEN"),
    ] {
        let (code, _, err) = run(args, env);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(err.contains(word), "{args:?}: {err}");
    }
}

#[test]
fn taken_address_exits_1_with_a_clear_message() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let (code, _, err) = run(&["--listen", &addr], &[]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("address already in use") && err.contains(&addr),
        "{err}"
    );
}

#[test]
fn env_listen_is_used() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tinymon"))
        .env("TINYMON_LISTEN", addr.to_string())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut ok = false;
    while start.elapsed() < Duration::from_secs(5) && !ok {
        ok = tinymon_test_support::client::get(
            &format!("http://{addr}/healthz"),
            Duration::from_secs(1),
        )
        .is_ok_and(|r| r.status == 200);
        std::thread::sleep(Duration::from_millis(20));
    }
    // The healthcheck subcommand finds the server through the same variable.
    let (code, _, err) = run(&["healthcheck"], &[("TINYMON_LISTEN", &addr.to_string())]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "no answer on {addr}");
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/healthz", probe.local_addr().unwrap());
    drop(probe);
    let (code, _, err) = run(&["healthcheck", "--url", &url], &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("healthcheck"), "{err}");
}

#[test]
fn sigterm_finishes_in_flight_requests_and_exits_0() {
    let mut t = Tinymon::start(&["--workers", "2"]);
    let url = t.url("/work?delay_ms=800");
    let in_flight = std::thread::spawn(move || {
        tinymon_test_support::client::get(&url, Duration::from_secs(10)).map(|r| r.status)
    });
    std::thread::sleep(Duration::from_millis(200));
    let sent = Instant::now();
    t.signal(libc::SIGTERM);
    let code = t.wait_exit(Duration::from_secs(5));
    assert_eq!(code, Some(0), "exit code after SIGTERM");
    assert!(sent.elapsed() < Duration::from_secs(5));
    assert_eq!(
        in_flight.join().unwrap(),
        Ok(200),
        "in-flight request was cut"
    );
    // Nothing listens any more.
    assert!(std::net::TcpStream::connect(t.addr).is_err());
}

#[test]
fn sigint_stops_an_idle_server_quickly() {
    let mut t = Tinymon::start(&[]);
    assert_eq!(t.get("/healthz").status, 200);
    let sent = Instant::now();
    t.signal(libc::SIGINT);
    assert_eq!(t.wait_exit(Duration::from_secs(5)), Some(0));
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
}
