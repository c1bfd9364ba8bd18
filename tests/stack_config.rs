//! The stack's files as the real tools read them: promtool for the
//! Prometheus config and alert rules, a compose client for docker-compose.yml,
//! and the dashboard's structure.

mod common;

use common::run_tool;

const PROMTOOL_HINT: &str =
    "`make test` puts promtool 3.5.3 on PATH (tests/stack/newer-debian.sh unpacks it into target/debian/bin)";

fn read_yaml(f: &str) -> serde_yaml::Value {
    let text = std::fs::read_to_string(format!("{}/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// Both shipped configs load unchanged on promtool 3.5.3, and the tinymon
/// job asks for native histograms in the way every Prometheus 3 follows
/// (see prometheus.yml): protobuf first, classic buckets kept, the per-target
/// label for 3.13+, and no `scrape_native_histograms`, which 3.5 refuses.
/// docker-compose.yml gives 3.5 the feature flag it needs.
#[test]
fn prometheus_config_is_valid() {
    for file in ["prometheus.yml", "prometheus.longterm.yml"] {
        let config = read_yaml(file);
        let job = config["scrape_configs"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|j| j["job_name"] == "tinymon")
            .unwrap();
        assert_eq!(job["scrape_protocols"][0], "PrometheusProto", "{file}");
        assert_eq!(job["always_scrape_classic_histograms"], true, "{file}");
        assert!(
            job.get("scrape_native_histograms").is_none(),
            "{file}: 3.5 refuses scrape_native_histograms"
        );
        let relabel = &job["relabel_configs"][0];
        assert_eq!(
            relabel["target_label"], "__scrape_native_histograms__",
            "{file}"
        );
        assert_eq!(relabel["replacement"], "true", "{file}");
        // promtool reads rule_files next to the config, so check a copy
        // beside alerts.yml.
        let dir = common::temp_dir("promtool-config");
        let root = env!("CARGO_MANIFEST_DIR");
        std::fs::copy(format!("{root}/{file}"), dir.join("prometheus.yml")).unwrap();
        for rules in ["alerts.yml", "slo-rules.yml"] {
            std::fs::copy(format!("{root}/{rules}"), dir.join(rules)).unwrap();
        }
        let path = dir.join("prometheus.yml");
        let (ok, out) = run_tool(
            "promtool",
            &["check", "config", path.to_str().unwrap()],
            PROMTOOL_HINT,
        );
        assert!(ok, "{file}: {out}");
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (ok, version) = run_tool("promtool", &["--version"], PROMTOOL_HINT);
    assert!(
        ok && version.contains("version 3."),
        "promtool is not 3.x: {version}"
    );
    let (ok, compose) = compose_config(Some("x"));
    assert!(ok, "{compose}");
    let doc: serde_yaml::Value = serde_yaml::from_str(&compose).unwrap();
    let flags = serde_yaml::to_string(&doc["services"]["prometheus"]["command"]).unwrap();
    for flag in [
        "--enable-feature=native-histograms",
        "--enable-feature=exemplar-storage",
    ] {
        assert!(
            flags.contains(flag),
            "docker-compose.yml: no {flag}: {flags}"
        );
    }
}

#[test]
fn alert_rules_are_valid_and_their_unit_tests_pass() {
    let (ok, out) = run_tool("promtool", &["check", "rules", "alerts.yml"], PROMTOOL_HINT);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS: 5 rules found"), "{out}");
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
    let mut cmd = std::process::Command::new("docker");
    cmd.args(["compose", "-f", "docker-compose.yml", "config"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("BIND")
        .env_remove("GRAFANA_ADMIN_PASSWORD");
    if let Some(p) = password {
        cmd.env("GRAFANA_ADMIN_PASSWORD", p);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "docker with compose v2 is required ({e}); `make test` puts them on PATH \
             (tests/stack/newer-debian.sh)"
        )
    });
    let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
    all.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), all)
}

#[test]
fn compose_file_is_valid_and_safe_by_default() {
    // Compose v2 validates offline; `make test` provides it.
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
        "`make test` puts amtool 0.28.1 and 0.33.1 on PATH (tests/stack/newer-debian.sh)";
    // The pinned 0.28.1 and the newer 0.33.1 both accept the file, so an
    // upgrade does not break routing (and no 0.30+ key slipped in).
    for (amtool, want) in [
        ("amtool", "version 0.28.1"),
        ("amtool-0.33", "version 0.33.1"),
    ] {
        let (ok, version) = run_tool(amtool, &["--version"], HINT);
        assert!(ok && version.contains(want), "{amtool}: {version}");
        let (ok, out) = run_tool(amtool, &["check-config", "alertmanager.yml"], HINT);
        assert!(ok, "{amtool}: {out}");
    }
    for amtool in ["amtool", "amtool-0.33"] {
        check_routes(amtool, HINT);
    }
}

fn check_routes(amtool: &str, hint: &str) {
    let route = |labels: &[&str]| {
        let mut args = vec!["config", "routes", "test", "--config.file=alertmanager.yml"];
        args.extend_from_slice(labels);
        let (ok, out) = run_tool(amtool, &args, hint);
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
        route(&["severity=warning", "alertname=TinymonScrapeSlow"]),
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
    // promtool checks it in prometheus_config_is_valid.
    // The override adds the store and switches Prometheus's config file.
    let out = std::process::Command::new("docker")
        .args([
            "compose",
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
