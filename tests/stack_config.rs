//! The stack's files as the real tools read them: promtool for the
//! Prometheus config and alert rules, a compose client for docker-compose.yml,
//! and the dashboard's structure.

mod common;

use common::run_tool;

const PROMTOOL_HINT: &str = "`make test` installs it as root, or run `apt-get install prometheus`";

/// The two fields of the tinymon job that only Prometheus 3.x knows.
const ONLY_3X: [&str; 2] = [
    "scrape_native_histograms",
    "always_scrape_classic_histograms",
];

fn read_yaml(f: &str) -> serde_yaml::Value {
    let text = std::fs::read_to_string(format!("{}/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// promtool here is 2.42, which refuses the 3.x-only fields: it checks the
/// 2.x twin, and the twin must be the 3.x file without exactly those fields
/// (which keep classic and native buckets side by side on 3.x).
#[test]
fn prometheus_config_is_valid() {
    for (file, twin) in [
        ("prometheus.yml", "tests/stack/prometheus.2x.yml"),
        (
            "prometheus.longterm.yml",
            "tests/stack/prometheus.longterm.2x.yml",
        ),
    ] {
        let mut config = read_yaml(file);
        let job = config["scrape_configs"]
            .as_sequence_mut()
            .unwrap()
            .iter_mut()
            .find(|j| j["job_name"] == "tinymon")
            .unwrap()
            .as_mapping_mut()
            .unwrap();
        for key in ONLY_3X {
            assert_eq!(
                job.remove(key),
                Some(serde_yaml::Value::Bool(true)),
                "{file}: {key}"
            );
        }
        assert_eq!(
            config,
            read_yaml(twin),
            "{twin} is not {file} without {ONLY_3X:?}"
        );
        // promtool reads rule_files next to the config, so check a copy
        // beside alerts.yml.
        let dir = common::temp_dir("promtool-config");
        let root = env!("CARGO_MANIFEST_DIR");
        std::fs::copy(format!("{root}/{twin}"), dir.join("prometheus.yml")).unwrap();
        std::fs::copy(format!("{root}/alerts.yml"), dir.join("alerts.yml")).unwrap();
        let path = dir.join("prometheus.yml");
        let (ok, out) = run_tool(
            "promtool",
            &["check", "config", path.to_str().unwrap()],
            PROMTOOL_HINT,
        );
        assert!(ok, "{twin}: {out}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn alert_rules_are_valid_and_their_unit_tests_pass() {
    let (ok, out) = run_tool("promtool", &["check", "rules", "alerts.yml"], PROMTOOL_HINT);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS: 7 rules found"), "{out}");
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

fn compose_config(password: Option<&str>) -> (bool, String) {
    let mut cmd = std::process::Command::new("docker-compose");
    cmd.args(["-f", "docker-compose.yml", "config"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("BIND")
        .env_remove("GRAFANA_ADMIN_PASSWORD");
    if let Some(p) = password {
        cmd.env("GRAFANA_ADMIN_PASSWORD", p);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "docker-compose is required ({e}); `make test` installs it as root, \
             or run `apt-get install docker-compose`"
        )
    });
    let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
    all.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), all)
}

#[test]
fn compose_file_is_valid_and_safe_by_default() {
    // Debian's docker-compose validates offline; `make test` installs it.
    let (ok, out) = compose_config(Some("not-a-default"));
    assert!(ok, "{out}");
    let doc: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
    let services = doc["services"].as_mapping().unwrap();
    let names: Vec<&str> = services.keys().filter_map(|k| k.as_str()).collect();
    for want in [
        "tinymon",
        "traffic",
        "prometheus",
        "alertmanager",
        "grafana",
    ] {
        assert!(names.contains(&want), "{want} missing: {names:?}");
    }
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        // Published ports bind to loopback unless BIND says otherwise.
        // Compose 1.x prints the short form, v2 the long one.
        for port in svc["ports"].as_sequence().into_iter().flatten() {
            let ip = match port.as_str() {
                Some(short) => short.split(':').next(),
                None => port["host_ip"].as_str(),
            };
            assert_eq!(ip, Some("127.0.0.1"), "{name}: {port:?}");
        }
        // No flag that lets an HTTP client reload or stop Prometheus.
        let command = serde_yaml::to_string(&svc["command"]).unwrap();
        assert!(!command.contains("enable-lifecycle"), "{name}: {command}");
        // Every server has a health check (the load generator has no port).
        let check = &svc["healthcheck"];
        if name == "traffic" {
            // Compose 1.x normalises `disable: true` to `test: [NONE]`.
            let off = check["disable"].as_bool() == Some(true) || check["test"][0] == "NONE";
            assert!(off, "{check:?}");
        } else {
            let test = serde_yaml::to_string(&check["test"]).unwrap();
            assert!(
                !test.contains("curl"),
                "{name}: no curl in its image: {test}"
            );
        }
    }
    let grafana = serde_yaml::to_string(&services["grafana"]["environment"]).unwrap();
    assert!(
        grafana.contains("GF_SECURITY_ADMIN_PASSWORD: not-a-default"),
        "{grafana}"
    );

    // Without a password the stack refuses to start, naming the variable.
    let (ok, out) = compose_config(None);
    assert!(!ok, "compose accepted a stack without a Grafana password");
    assert!(out.contains("GRAFANA_ADMIN_PASSWORD"), "{out}");
    assert!(out.contains("make up"), "{out}");
}

#[test]
fn alertmanager_config_is_valid_and_routes_by_severity() {
    const HINT: &str =
        "`make test` installs it as root, or run `apt-get install prometheus-alertmanager`";
    let (ok, out) = run_tool("amtool", &["check-config", "alertmanager.yml"], HINT);
    assert!(ok, "{out}");
    let route = |labels: &[&str]| {
        let mut args = vec!["config", "routes", "test", "--config.file=alertmanager.yml"];
        args.extend_from_slice(labels);
        let (ok, out) = run_tool("amtool", &args, HINT);
        assert!(ok, "{out}");
        out.lines()
            .find(|l| !l.starts_with("Warning"))
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    assert_eq!(
        route(&["severity=critical", "alertname=TinymonInstanceDown"]),
        "oncall"
    );
    assert_eq!(
        route(&["severity=warning", "alertname=TinymonHighErrorRatio"]),
        "team"
    );
    assert_eq!(route(&["alertname=Other"]), "team");
    // Every alert in alerts.yml has a severity that a route names.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    for rule in doc["groups"][0]["rules"].as_sequence().unwrap() {
        let severity = rule["labels"]["severity"].as_str().unwrap();
        let want = if severity == "critical" {
            "oncall"
        } else {
            "team"
        };
        let alert = format!("alertname={}", rule["alert"].as_str().unwrap());
        assert_eq!(
            route(&[&format!("severity={severity}"), &alert]),
            want,
            "{alert}"
        );
    }
}

#[test]
fn dashboard_panels_use_the_datasource_variable_and_units() {
    let ds = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/grafana/provisioning/datasources/prometheus.yml"
    ))
    .unwrap();
    let ds: serde_yaml::Value = serde_yaml::from_str(&ds).unwrap();
    let sources = ds["datasources"].as_sequence().unwrap();
    let uids: Vec<&str> = sources.iter().map(|d| d["uid"].as_str().unwrap()).collect();
    assert_eq!(uids, ["tinymon-prometheus", "tinymon-victoriametrics"]);
    for d in sources {
        assert_eq!(d["type"], "prometheus", "{d:?}");
    }
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
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        assert!(
            p["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .is_some_and(|u| !u.is_empty()),
            "{title}: no unit"
        );
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
        }
        seen += 1;
    }
    assert!(seen >= 15, "{seen} panels");
    let vars = dash["templating"]["list"].as_array().unwrap();
    let names: Vec<&str> = vars.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["datasource", "instance", "path"]);
    // The variable lists every Prometheus-type source and starts on the
    // stack's own Prometheus; the other variables query through it.
    assert_eq!(vars[0]["type"], "datasource");
    assert_eq!(vars[0]["query"], "prometheus");
    assert_eq!(vars[0]["current"]["value"], "tinymon-prometheus");
    for v in &vars[1..] {
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{}", v["name"]);
    }
}

#[test]
fn the_longterm_config_is_prometheus_yml_plus_remote_write() {
    let base = read_yaml("prometheus.yml");
    let mut longterm = read_yaml("prometheus.longterm.yml");
    let remote = longterm
        .as_mapping_mut()
        .unwrap()
        .remove("remote_write")
        .expect("remote_write");
    assert_eq!(longterm, base, "the two configs drifted apart");
    assert_eq!(remote[0]["url"], "http://victoriametrics:8428/api/v1/write");
    // promtool checks its 2.x twin in prometheus_config_is_valid.
    // The override adds the store and switches Prometheus's config file.
    let out = std::process::Command::new("docker-compose")
        .args([
            "-f",
            "docker-compose.yml",
            "-f",
            "docker-compose.longterm.yml",
            "config",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("GRAFANA_ADMIN_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    let vm = &doc["services"]["victoriametrics"];
    let flags = serde_yaml::to_string(&vm["command"]).unwrap();
    assert!(flags.contains("-retentionPeriod="), "{flags}");
    let mounts = serde_yaml::to_string(&doc["services"]["prometheus"]["volumes"]).unwrap();
    assert!(mounts.contains("prometheus.longterm.yml"), "{mounts}");
}
