//! A real Prometheus, queried through its HTTP API, and the checks the
//! stack tests make with it: every dashboard query returns data, and every
//! rule evaluates cleanly.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{free_port, temp_dir, url_encode};

/// Debian's Prometheus run as a child process, scraping one target every
/// second; killed and its data removed when dropped.
pub struct LocalPrometheus {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl LocalPrometheus {
    /// Starts `prometheus` with `flags` (feature flags, say) scraping
    /// `target` (host:port) as job `tinymon`.
    pub fn start(name: &str, target: &str, flags: &[&str]) -> LocalPrometheus {
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: tinymon\n    static_configs:\n      - targets: ['{target}']\n"
        );
        Self::start_config(name, &config, flags)
    }

    /// Starts `prometheus` on `config` (YAML) with `flags`.
    pub fn start_config(name: &str, config: &str, flags: &[&str]) -> LocalPrometheus {
        let dir = temp_dir(&format!("prometheus-{name}"));
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(flags)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("prometheus is required ({e}); `make test` puts Debian's 3.5.3 on PATH (tests/stack/newer-debian.sh)")
            });
        LocalPrometheus { child, port, dir }
    }

    /// Starts `prometheus` with the tinymon job of the shipped
    /// prometheus.yml, every setting kept, but scraping `target` by a static
    /// config (instead of DNS) every second.
    pub fn start_shipped_job(name: &str, target: &str, flags: &[&str]) -> LocalPrometheus {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/prometheus.yml"))
            .unwrap();
        let shipped: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let mut job = shipped["scrape_configs"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|j| j["job_name"] == "tinymon")
            .unwrap()
            .clone();
        let map = job.as_mapping_mut().unwrap();
        map.remove("dns_sd_configs")
            .expect("the shipped job discovers by DNS");
        map.insert(
            "static_configs".into(),
            serde_yaml::from_str(&format!("[{{targets: ['{target}']}}]")).unwrap(),
        );
        let config: serde_yaml::Value = serde_yaml::from_str(&format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs: [{}]",
            serde_json::to_string(&job).unwrap()
        ))
        .unwrap();
        Self::start_config(name, &serde_yaml::to_string(&config).unwrap(), flags)
    }

    /// Its HTTP API.
    pub fn api(&self) -> PromApi {
        PromApi {
            base: format!("http://127.0.0.1:{}", self.port),
        }
    }

    /// Waits until the target has been scraped successfully.
    pub fn wait_up(&self, limit: Duration) {
        let api = self.api();
        let log = self.dir.join("prometheus.log");
        wait_for("the target up", limit, || match api.targets("tinymon") {
            Ok(t) if t.iter().any(|(_, health)| health == "up") => Ok(()),
            Ok(t) => Err(format!("{t:?}")),
            Err(e) => Err(format!(
                "{e}; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )),
        });
    }
}

impl Drop for LocalPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct PromApi {
    pub base: String,
}

impl PromApi {
    pub fn get(&self, path: &str) -> Result<Value, String> {
        let r = tinymon_test_support::client::get(
            &format!("{}{path}", self.base),
            Duration::from_secs(10),
        )
        .map_err(|e| format!("{path}: {e}"))?;
        serde_json::from_slice(&r.body).map_err(|e| format!("{path}: {e}: {}", r.text()))
    }

    pub fn api(&self, path: &str) -> Value {
        self.get(path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The result vector of an instant query.
    pub fn query(&self, expr: &str) -> Vec<Value> {
        let v = self.api(&format!("/api/v1/query?query={}", url_encode(expr)));
        assert_eq!(v["status"], "success", "{expr}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Active targets of `job` as (instance, health).
    pub fn targets(&self, job: &str) -> Result<Vec<(String, String)>, String> {
        let v = self.get("/api/v1/targets")?;
        Ok(v["data"]["activeTargets"]
            .as_array()
            .ok_or_else(|| format!("no targets: {v}"))?
            .iter()
            .filter(|t| t["labels"]["job"] == job)
            .map(|t| {
                (
                    t["labels"]["instance"].as_str().unwrap_or("").to_owned(),
                    t["health"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect())
    }

    /// Runs every query of the repository's dashboard with its variables
    /// set to "All"; returns how many ran, and fails listing every query
    /// that errored or came back empty.
    ///
    /// The native-histogram panels are checked too on a Prometheus that
    /// keeps native histograms (`native: true`); VictoriaMetrics holds none
    /// (remote_write sends the classic series only).
    pub fn check_dashboard(&self, native: bool) -> usize {
        let dash: Value = serde_json::from_str(
            &std::fs::read_to_string(format!(
                "{}/grafana/dashboards/tinymon.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        let mut failures = Vec::new();
        let mut checked = 0;
        for panel in dash["panels"].as_array().unwrap() {
            if !native
                && panel["title"]
                    .as_str()
                    .is_some_and(|t| t.contains("(native histogram)"))
            {
                continue;
            }
            for target in panel["targets"].as_array().into_iter().flatten() {
                // $__rate_interval is four scrape intervals here (5 s).
                let expr = target["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$__rate_interval", "20s")
                    .replace("$instance", ".*")
                    .replace("$path", ".*");
                let v = self.api(&format!("/api/v1/query?query={}", url_encode(&expr)));
                checked += 1;
                if v["status"] != "success" {
                    failures.push(format!("{}: {expr}: {v}", panel["title"]));
                } else if v["data"]["result"].as_array().is_none_or(|r| r.is_empty()) {
                    failures.push(format!("{}: {expr}: no data", panel["title"]));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "dashboard queries failed:\n{}",
            failures.join("\n")
        );
        checked
    }

    /// Waits until `count` rules are loaded and every one has health ok.
    pub fn wait_rules_healthy(&self, count: usize, limit: Duration) {
        wait_for("every rule evaluated with health ok", limit, || {
            let v = self.get("/api/v1/rules")?;
            let rules: Vec<&Value> = v["data"]["groups"]
                .as_array()
                .ok_or_else(|| format!("no rule groups: {v}"))?
                .iter()
                .flat_map(|g| g["rules"].as_array().into_iter().flatten())
                .collect();
            if rules.len() != count {
                return Err(format!("{} rules loaded", rules.len()));
            }
            let bad: Vec<String> = rules
                .iter()
                .filter(|r| {
                    r["health"] != "ok" || r["lastError"].as_str().is_some_and(|e| !e.is_empty())
                })
                .map(|r| format!("{} {} {}", r["name"], r["health"], r["lastError"]))
                .collect();
            if bad.is_empty() {
                Ok(())
            } else {
                Err(bad.join("; "))
            }
        });
    }
}

/// Polls `ready` every 500 ms until it returns `Ok`, for at most `limit`;
/// panics with its last `Err` (why it was not ready) otherwise.
pub fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        match ready() {
            Ok(()) => return,
            Err(why) => last = why,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{what}: not within {limit:?}: {last}");
}
