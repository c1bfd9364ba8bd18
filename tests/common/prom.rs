//! A real Prometheus, queried through its HTTP API, and the checks the
//! stack tests make with it: every dashboard query returns data, and every
//! rule evaluates cleanly.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::Value;

use super::url_encode;

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
    pub fn check_dashboard(&self) -> usize {
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
