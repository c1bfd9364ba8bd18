//! The stack's files as the real tools read them: promtool for the
//! Prometheus config and alert rules, a compose client for docker-compose.yml,
//! and the dashboard's structure.

mod common;

use common::run_tool;

const PROMTOOL_HINT: &str = "`make test` installs it as root, or run `apt-get install prometheus`";

#[test]
fn prometheus_config_is_valid() {
    let (ok, out) = run_tool(
        "promtool",
        &["check", "config", "prometheus.yml"],
        PROMTOOL_HINT,
    );
    assert!(ok, "{out}");
}

#[test]
fn alert_rules_are_valid_and_their_unit_tests_pass() {
    let (ok, out) = run_tool("promtool", &["check", "rules", "alerts.yml"], PROMTOOL_HINT);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS: 6 rules found"), "{out}");
    let (ok, out) = run_tool(
        "promtool",
        &["test", "rules", "alerts.test.yml"],
        PROMTOOL_HINT,
    );
    assert!(ok, "{out}");
}

#[test]
fn every_alert_has_for_severity_and_annotations() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let rules = doc["groups"][0]["rules"].as_sequence().unwrap();
    let tests =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts.test.yml")).unwrap();
    for rule in rules {
        let name = rule["alert"].as_str().unwrap();
        assert!(rule["for"].as_str().is_some(), "{name}: no for");
        assert!(
            ["critical", "warning"].contains(&rule["labels"]["severity"].as_str().unwrap_or("")),
            "{name}: severity"
        );
        for a in ["summary", "description"] {
            assert!(rule["annotations"][a].as_str().is_some(), "{name}: no {a}");
        }
        assert!(
            tests.contains(&format!("alertname: {name}")),
            "{name}: untested"
        );
    }
}

#[test]
fn compose_file_is_valid() {
    // Debian's docker-compose validates offline; `make test` installs it.
    let (ok, out) = run_tool(
        "docker-compose",
        &["-f", "docker-compose.yml", "config", "-q"],
        "`make test` installs it as root, or run `apt-get install docker-compose`",
    );
    assert!(ok, "{out}");
}

#[test]
fn dashboard_panels_use_the_provisioned_datasource_and_units() {
    let ds = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/grafana/provisioning/datasources/prometheus.yml"
    ))
    .unwrap();
    let ds: serde_yaml::Value = serde_yaml::from_str(&ds).unwrap();
    let uid = ds["datasources"][0]["uid"].as_str().unwrap();
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/grafana/dashboards/tinymon.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let panels = dash["panels"].as_array().unwrap();
    let mut seen = 0;
    for p in panels.iter().filter(|p| p["type"] != "row") {
        let title = p["title"].as_str().unwrap();
        assert_eq!(p["datasource"]["uid"], uid, "{title}");
        assert!(
            p["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .is_some_and(|u| !u.is_empty()),
            "{title}: no unit"
        );
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], uid, "{title}");
        }
        seen += 1;
    }
    assert!(seen >= 15, "{seen} panels");
    let vars: Vec<&str> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(vars, ["instance", "path"]);
}
