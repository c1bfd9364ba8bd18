//! `make up` with a config a user broke: it stops with promtool's (or
//! amtool's) message, and Prometheus never starts, instead of a restart
//! loop with nothing said. The configs are broken in a copy of the stack's
//! files in a temporary directory; the repository is not touched.
//!
//! Needs a Docker engine, compose v2 and the local images (`make test`
//! provides them); `#[ignore]`d for plain `cargo test`.

mod common;

use common::compose::Stack;
use common::docker::{build_tinymon_image, inspect, require_engine, run, REPO};

/// Brings the stack up from copies of the shipped files, with `edit`
/// applied to the copy of `file`; returns what `make up` printed and the
/// project, whose containers are removed when it is dropped.
fn make_up_with(name: &str, file: &str, edit: impl Fn(&str) -> String) -> (bool, String, Stack) {
    let dir = common::temp_dir(&format!("bad-config-{name}"));
    for f in [
        "docker-compose.yml",
        "prometheus.yml",
        "alerts.yml",
        "slo-rules.yml",
        "alertmanager.yml",
    ] {
        std::fs::copy(format!("{REPO}/{f}"), dir.join(f)).unwrap();
    }
    std::fs::copy(
        format!("{REPO}/tests/stack/compose.local.yml"),
        dir.join("compose.local.yml"),
    )
    .unwrap();
    let original = std::fs::read_to_string(dir.join(file)).unwrap();
    let broken = edit(&original);
    assert_ne!(broken, original, "the edit changed nothing in {file}");
    std::fs::write(dir.join(file), broken).unwrap();
    let leak = |p: std::path::PathBuf| -> &'static str {
        Box::leak(p.display().to_string().into_boxed_str())
    };
    let stack = Stack::on_loopback(
        &format!("tinymonbad{name}"),
        vec![
            leak(dir.join("docker-compose.yml")),
            leak(dir.join("compose.local.yml")),
        ],
    );
    let out = stack.make(&["up"]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text, stack)
}

/// The state of a service's one container and its last log line.
fn state_and_last_line(stack: &Stack, service: &str) -> (String, String) {
    let id = stack.compose(&["ps", "-a", "-q", service]);
    let state = inspect(&id, "{{.State.Status}} exit={{.State.ExitCode}}");
    let logs = stack.compose(&["logs", "--no-log-prefix", service]);
    let last = logs
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned();
    (state, last)
}

#[test]
#[ignore = "needs a Docker engine and the local images; `make test` runs it"]
fn make_up_stops_with_the_checkers_message_on_a_broken_config() {
    require_engine();
    build_tinymon_image();
    run(&format!("{REPO}/tests/stack/local-images.sh"), &[]);

    // A typo in a key.
    let (ok, printed, stack) = make_up_with("typo", "prometheus.yml", |s| {
        s.replace("  scrape_interval: 5s", "  scrape_intervall: 5s")
    });
    eprintln!("make up with a typo in prometheus.yml printed:\n{printed}");
    assert!(!ok, "make up succeeded with a broken prometheus.yml");
    assert!(
        printed.contains("the stack did not start; the config checks said:"),
        "{printed}"
    );
    assert!(
        printed.contains("field scrape_intervall not found"),
        "{printed}"
    );
    let (checker, last) = state_and_last_line(&stack, "prometheus-config");
    eprintln!("prometheus-config: {checker}; last line: {last}");
    assert_eq!(checker, "exited exit=1");
    let (prometheus, _) = state_and_last_line(&stack, "prometheus");
    eprintln!("prometheus: {prometheus}");
    assert_eq!(
        prometheus, "created exit=0",
        "Prometheus must not start on a broken config"
    );
    drop(stack);

    // The pin moved back to 3.5 (what the local image is) with a key that
    // only 3.8 and later know.
    let (ok, printed, stack) = make_up_with("newkey", "prometheus.yml", |s| {
        s.replace(
            "    always_scrape_classic_histograms: true\n",
            "    always_scrape_classic_histograms: true\n    scrape_native_histograms: true\n",
        )
    });
    assert!(!ok, "make up succeeded with a key Prometheus 3.5 refuses");
    assert!(
        printed.contains("field scrape_native_histograms not found"),
        "{printed}"
    );
    let (checker, last) = state_and_last_line(&stack, "prometheus-config");
    eprintln!(
        "with scrape_native_histograms on 3.5: prometheus-config {checker}; last line: {last}"
    );
    drop(stack);

    // Alertmanager's config, checked by amtool the same way.
    let (ok, printed, stack) = make_up_with("am", "alertmanager.yml", |s| {
        s.replacen("receiver:", "reciever:", 1)
    });
    assert!(!ok, "make up succeeded with a broken alertmanager.yml");
    assert!(printed.contains("reciever"), "{printed}");
    let (checker, last) = state_and_last_line(&stack, "alertmanager-config");
    eprintln!("alertmanager-config: {checker}; last line: {last}");
    assert_eq!(checker, "exited exit=1");
    let (alertmanager, _) = state_and_last_line(&stack, "alertmanager");
    assert_eq!(alertmanager, "created exit=0");
}
