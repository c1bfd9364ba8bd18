//! The SLO rules: generated from slo.yml by the project's own generator
//! (test-support/src/slo.rs), committed as slo-rules.yml, and checked here:
//! the committed file is what the generator writes now, promtool 3 accepts
//! it, and `promtool test rules slo-rules.test.yml` passes (the cases of the
//! README's SLO section: fast and slow burns, low and no traffic, latency,
//! and a page that resolves).
//!
//! `make slo-rules` rewrites slo-rules.yml (TINYMON_WRITE_SLO_RULES=1).

mod common;

use common::run_tool;
use tinymon_test_support::slo;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const HINT: &str = "`make test` puts promtool 3.5.3 on PATH (tests/stack/newer-debian.sh)";

#[test]
fn slo_rules_are_generated_from_slo_yml_and_pass_promtool() {
    let spec = slo::parse(&std::fs::read_to_string(format!("{ROOT}/slo.yml")).unwrap()).unwrap();
    let generated = slo::rules(&spec).unwrap();
    let path = format!("{ROOT}/slo-rules.yml");
    if std::env::var_os("TINYMON_WRITE_SLO_RULES").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "slo-rules.yml is not what slo.yml generates; run `make slo-rules` and commit the result"
    );

    let (ok, out) = run_tool("promtool", &["check", "rules", "slo-rules.yml"], HINT);
    assert!(ok, "{out}");
    let (ok, out) = run_tool("promtool", &["test", "rules", "slo-rules.test.yml"], HINT);
    assert!(ok, "{out}");
    let (_, version) = run_tool("promtool", &["--version"], HINT);
    assert!(version.contains("version 3."), "{version}");
}

/// Every alert the generator writes is routed by Alertmanager as its
/// severity says: pages to oncall, tickets to team.
#[test]
fn slo_alerts_page_oncall_and_ticket_team() {
    let text = std::fs::read_to_string(format!("{ROOT}/slo-rules.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let alerts: Vec<&serde_yaml::Value> = doc["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .filter(|r| r.get("alert").is_some())
        .collect();
    assert_eq!(alerts.len(), 8, "two SLOs times four burn rates");
    for a in alerts {
        assert_eq!(a["alert"], "TinymonErrorBudgetBurn");
        let l = &a["labels"];
        let severity = l["severity"].as_str().unwrap();
        let want = if severity == "critical" {
            "oncall"
        } else {
            "team"
        };
        let args = [
            "config",
            "routes",
            "test",
            "--config.file=alertmanager.yml",
            "alertname=TinymonErrorBudgetBurn",
            &format!("severity={severity}"),
            &format!("slo={}", l["slo"].as_str().unwrap()),
        ];
        let (ok, out) = run_tool("amtool", &args, HINT);
        assert!(ok, "{out}");
        assert_eq!(
            out.lines()
                .find(|l| !l.starts_with("Warning"))
                .unwrap_or("")
                .trim(),
            want,
            "{a:?}"
        );
        for key in ["slo", "long_window", "short_window", "burn_rate"] {
            assert!(l[key].as_str().is_some(), "{key} missing: {a:?}");
        }
        for key in ["summary", "description", "dashboard"] {
            assert!(
                a["annotations"][key].as_str().is_some(),
                "{key} missing: {a:?}"
            );
        }
    }
}
