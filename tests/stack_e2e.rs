//! End to end: three tinymon instances under traffic, scraped by a real
//! Prometheus running the repo's prometheus.yml (static targets in place of
//! the DNS discovery) and alerts.yml. Every query of the dashboard must return
//! data and every rule must evaluate without error.
//!
//! Takes about a minute, so it is `#[ignore]`d for plain `cargo test`;
//! `make test` runs it.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, temp_dir, url_encode, Tinymon};
use serde_json::Value;
use tinymon::config::LoadConfig;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

struct Prometheus {
    child: Child,
    base: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn api(&self, path: &str) -> Value {
        let r = tinymon::client::get(&format!("{}{path}", self.base), Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.text()))
    }
}

/// The repo's prometheus.yml with the tinymon job pointed at `targets`, the
/// self-scrape at `self_addr` and rule files made absolute.
fn derived_config(targets: &[String], self_addr: &str) -> String {
    let text = std::fs::read_to_string(format!("{REPO}/prometheus.yml")).unwrap();
    let mut cfg: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    for rule_file in cfg["rule_files"].as_sequence_mut().unwrap() {
        *rule_file = format!("{REPO}/{}", rule_file.as_str().unwrap()).into();
    }
    let mut found = 0;
    for job in cfg["scrape_configs"].as_sequence_mut().unwrap() {
        let job = job.as_mapping_mut().unwrap();
        match job["job_name"].as_str().unwrap() {
            "tinymon" => {
                assert!(
                    job.remove("dns_sd_configs").is_some(),
                    "tinymon uses DNS discovery"
                );
                let static_configs: serde_yaml::Value =
                    serde_yaml::from_str(&format!("[{{targets: {targets:?}}}]")).unwrap();
                job.insert("static_configs".into(), static_configs);
                found += 1;
            }
            "prometheus" => {
                let static_configs: serde_yaml::Value =
                    serde_yaml::from_str(&format!("[{{targets: [\"{self_addr}\"]}}]")).unwrap();
                job.insert("static_configs".into(), static_configs);
                found += 1;
            }
            other => panic!("unexpected job {other}"),
        }
    }
    assert_eq!(found, 2);
    serde_yaml::to_string(&cfg).unwrap()
}

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> Option<String>) {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        match ready() {
            None => return,
            Some(why) => last = why,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{what} not ready after {limit:?}: {last}");
}

#[test]
#[ignore = "runs a real Prometheus for about a minute; `make test` runs it"]
fn dashboard_queries_and_alert_rules_work_against_real_prometheus() {
    let instances: Vec<Tinymon> = (0..3)
        .map(|_| Tinymon::start(&["--workers", "4"]))
        .collect();
    let targets: Vec<String> = instances.iter().map(|t| t.addr.to_string()).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let traffic: Vec<_> = targets
        .iter()
        .map(|addr| {
            let config = LoadConfig {
                target: format!("http://{addr}"),
                duration: Some(Duration::from_secs(150)),
                rps: 40,
                concurrency: 4,
            };
            let stop = stop.clone();
            std::thread::spawn(move || tinymon::load::run_until(&config, stop))
        })
        .collect();

    let dir = temp_dir("e2e");
    let port = free_port();
    let self_addr = format!("127.0.0.1:{port}");
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, derived_config(&targets, &self_addr)).unwrap();
    let (ok, out) = common::run_tool(
        "promtool",
        &["check", "config", config_path.to_str().unwrap()],
        "apt-get install prometheus",
    );
    assert!(ok, "{out}");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={self_addr}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus is required: `make test` installs it as root");
    let prom = Prometheus {
        child,
        base: format!("http://{self_addr}"),
    };

    wait_for("all four targets up", Duration::from_secs(60), || {
        let r = tinymon::client::get(
            &format!("{}/api/v1/targets", prom.base),
            Duration::from_secs(2),
        )
        .ok()?;
        let v: Value = serde_json::from_slice(&r.body).ok()?;
        let active = v["data"]["activeTargets"].as_array()?;
        let up = active.iter().filter(|t| t["health"] == "up").count();
        (up == 4 && active.len() == 4).then_some(()).map_or_else(
            || Some(format!("{up} of {} up: {active:?}", active.len())),
            |_| None,
        )
    });
    // $__rate_interval is 4 scrape intervals (20 s); let a few windows fill.
    std::thread::sleep(Duration::from_secs(25));

    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{REPO}/grafana/dashboards/tinymon.json")).unwrap(),
    )
    .unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "20s")
                .replace("$instance", ".*")
                .replace("$path", ".*");
            let v = prom.api(&format!("/api/v1/query?query={}", url_encode(&expr)));
            checked += 1;
            if v["status"] != "success" {
                failures.push(format!("{}: {expr}: {v}", panel["title"]));
            } else if v["data"]["result"].as_array().is_none_or(|r| r.is_empty()) {
                failures.push(format!("{}: {expr}: empty result", panel["title"]));
            }
        }
    }
    assert!(checked >= 20, "{checked} queries");
    assert!(
        failures.is_empty(),
        "dashboard queries failed:\n{}",
        failures.join("\n")
    );

    // The variables' label_values() sources.
    let series = prom.api(&format!(
        "/api/v1/label/instance/values?match[]={}",
        url_encode("up{job=\"tinymon\"}")
    ));
    assert_eq!(series["data"].as_array().unwrap().len(), 3, "{series}");
    let paths = prom.api(&format!(
        "/api/v1/label/path/values?match[]={}",
        url_encode("server_handle_request_total{job=\"tinymon\"}")
    ));
    let paths: Vec<&str> = paths["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for p in ["/hello", "/work", "/healthz", "/metrics", "<unmatched>"] {
        assert!(paths.contains(&p), "path {p} missing from {paths:?}");
    }

    // Every rule loaded and evaluated without error.
    wait_for("rules evaluated", Duration::from_secs(30), || {
        let v = prom.api("/api/v1/rules");
        let rules: Vec<&Value> = v["data"]["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        if rules.len() != 6 {
            return Some(format!("{} rules loaded", rules.len()));
        }
        let bad: Vec<String> = rules
            .iter()
            .filter(|r| {
                r["health"] != "ok" || r["lastError"].as_str().is_some_and(|e| !e.is_empty())
            })
            .map(|r| format!("{} {} {}", r["name"], r["health"], r["lastError"]))
            .collect();
        (!bad.is_empty()).then(|| bad.join("; "))
    });
    // With every instance healthy, the availability alerts stay quiet.
    let alerts = prom.api("/api/v1/alerts");
    let firing: Vec<&Value> = alerts["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            let name = a["labels"]["alertname"].as_str().unwrap_or("");
            name == "TinymonInstanceDown" || name == "TinymonAbsent"
        })
        .collect();
    assert!(firing.is_empty(), "{firing:?}");

    stop.store(true, Ordering::Relaxed);
    for t in traffic {
        let report = t.join().unwrap().unwrap();
        assert!(
            report.latencies.len() > 100,
            "traffic ran: {}",
            report.latencies.len()
        );
        assert_eq!(report.failures, 0, "{report}");
    }
    drop(prom);
    let _ = std::fs::remove_dir_all(&dir);
}
