//! The compose stack, up for real: `make up SCALE=3`, `make logs` and
//! `make down` with compose v2, on the shipped docker-compose.yml,
//! prometheus.yml, alerts.yml, slo-rules.yml and alertmanager.yml under a real Docker
//! engine, with only what cannot be pulled swapped by
//! tests/stack/compose.local.yml (Prometheus 3.5.3 and Alertmanager 0.28.1
//! built from Debian's binaries; Grafana left out, since no image of it
//! exists here).
//!
//! Bounded in time, it proves: three replicas found through DNS and up; the
//! traffic service spread over them; every rule healthy; every dashboard
//! query answered; a stopped replica alerting all the way to Alertmanager;
//! injected failures paging oncall through the availability SLO;
//! and `make down` plus `down -v` leaving nothing behind. Traffic stays on
//! the test's own compose network and 127.0.0.1 published ports.
//!
//! Needs a Docker engine, compose v2 and the tools of
//! tests/stack/newer-debian.sh (`make test` provides them); `#[ignore]`d for
//! plain `cargo test`.

mod common;

use std::time::{Duration, Instant};

use common::compose::Stack;
use common::docker::{build_tinymon_image, docker, inspect, require_engine, run, REPO};
use common::prom::{wait_for, PromApi};
use serde_json::Value;

fn alert_names(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap_or("").to_owned(),
                a["state"]
                    .as_str()
                    .or_else(|| a["status"]["state"].as_str())
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect()
}

/// What `make logs` (which follows) prints in `for`, then stops it and
/// every process it started.
fn follow_make_logs(stack: &Stack, r#for: Duration) -> String {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let files: Vec<String> = stack.files.iter().map(|f| format!("{REPO}/{f}")).collect();
    let mut child = std::process::Command::new("make")
        .args(["-s", "-C", REPO, "logs"])
        .env("COMPOSE_FILE", files.join(":"))
        .env("COMPOSE_PROJECT_NAME", &stack.project)
        .envs(stack.env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    std::thread::sleep(r#for);
    // SAFETY: kill(2) with the negated id of the process group the child
    // leads (process_group(0)); it only sends a signal.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
    let _ = child.wait();
    reader.join().unwrap()
}

/// How many rules the shipped rule files hold: what Prometheus must load.
fn shipped_rule_count() -> usize {
    ["alerts.yml", "slo-rules.yml"]
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(format!("{REPO}/{f}")).unwrap();
            let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
            doc["groups"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|g| g["rules"].as_sequence().unwrap().len())
                .sum::<usize>()
        })
        .sum()
}

#[test]
#[ignore = "brings up the compose stack for about three minutes; `make test` runs it"]
fn compose_stack_scales_alerts_and_cleans_up() {
    require_engine();
    build_tinymon_image();
    let built = run(&format!("{REPO}/tests/stack/local-images.sh"), &[]);
    eprintln!("{built}");

    let stack = Stack::on_loopback(
        "tinymontest",
        vec!["docker-compose.yml", "tests/stack/compose.local.yml"],
    );
    let _ = stack.compose_output(&["down", "-v", "--remove-orphans"]);

    let up_started = Instant::now();
    let up = stack.make(&["up", "SCALE=3"]);
    assert!(
        up.status.success(),
        "make up failed:\n{}{}",
        String::from_utf8_lossy(&up.stdout),
        String::from_utf8_lossy(&up.stderr)
    );
    eprintln!("{}", stack.versions_line());
    let prom = PromApi {
        base: format!("http://127.0.0.1:{}", stack.env("PROMETHEUS_PORT")),
    };
    let am = format!("http://127.0.0.1:{}", stack.env("ALERTMANAGER_PORT"));

    // All three replicas, found through Docker's DNS, scraped and up.
    wait_for("three tinymon targets up", Duration::from_secs(90), || {
        let t = prom.targets("tinymon")?;
        let up = t.iter().filter(|(_, h)| h == "up").count();
        if up == 3 && t.len() == 3 {
            Ok(())
        } else {
            Err(format!("{t:?}"))
        }
    });
    let all_up = up_started.elapsed();
    eprintln!("from `up` to all three targets up: {all_up:?}");
    // Its own job too (its first scrape may come a little later).
    wait_for(
        "Prometheus scraping itself",
        Duration::from_secs(30),
        || {
            let t = prom.targets("prometheus")?;
            if t == vec![("localhost:9090".to_owned(), "up".to_owned())] {
                Ok(())
            } else {
                Err(format!("{t:?}"))
            }
        },
    );

    // The healthchecks of docker-compose.yml work in these images.
    for service in ["prometheus", "alertmanager"] {
        let id = stack.compose(&["ps", "-q", service]);
        wait_for(
            &format!("{service} healthy"),
            Duration::from_secs(40),
            || match inspect(&id, "{{.State.Health.Status}}").as_str() {
                "healthy" => Ok(()),
                other => Err(format!(
                    "{other}: {}",
                    inspect(&id, "{{json .State.Health}}")
                )),
            },
        );
    }

    // Published ports stay on loopback.
    for c in stack.compose(&["ps", "-q"]).lines() {
        let ports = docker(&["port", c]);
        for line in ports.lines() {
            assert!(
                line.contains("127.0.0.1:"),
                "{c} publishes beyond loopback: {line}"
            );
        }
    }

    // The traffic service spreads over the replicas: each gets 20-47 %.
    let traffic_expr = r#"sum by (instance) (server_handle_request_total{job="tinymon", path!~"/metrics|/healthz"})"#;
    let mut split = Vec::new();
    wait_for("600 generated requests", Duration::from_secs(90), || {
        split = prom
            .query(traffic_expr)
            .iter()
            .map(|r| {
                (
                    r["metric"]["instance"].as_str().unwrap().to_owned(),
                    r["value"][1].as_str().unwrap().parse::<f64>().unwrap(),
                )
            })
            .collect::<Vec<_>>();
        let total: f64 = split.iter().map(|(_, n)| n).sum();
        if total >= 600.0 {
            Ok(())
        } else {
            Err(format!("{split:?}"))
        }
    });
    let total: f64 = split.iter().map(|(_, n)| n).sum();
    let shares: Vec<String> = split
        .iter()
        .map(|(i, n)| format!("{i} {:.1} %", 100.0 * n / total))
        .collect();
    eprintln!("traffic split over {total} requests: {}", shares.join(", "));
    assert_eq!(split.len(), 3, "{split:?}");
    for (instance, n) in &split {
        let share = n / total;
        assert!(
            (0.20..=0.47).contains(&share),
            "{instance} got {:.1} % of the traffic: {}",
            100.0 * share,
            shares.join(", ")
        );
    }

    prom.wait_rules_healthy(shipped_rule_count(), Duration::from_secs(30));
    // $__rate_interval windows need a few scrapes of every series.
    std::thread::sleep(Duration::from_secs(5));
    let checked = prom.check_dashboard(true);
    assert!(checked >= 20, "{checked} dashboard queries");
    // The sources of the dashboard's variables.
    let values = |label: &str, series: &str| -> Vec<String> {
        let v = prom.api(&format!(
            "/api/v1/label/{label}/values?match[]={}",
            common::url_encode(series)
        ));
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(values("instance", r#"up{job="tinymon"}"#).len(), 3);
    let paths = values("path", r#"server_handle_request_total{job="tinymon"}"#);
    for p in ["/hello", "/work", "/healthz", "/metrics", "<unmatched>"] {
        assert!(
            paths.iter().any(|x| x == p),
            "path {p} missing from {paths:?}"
        );
    }

    // The traffic generator sends traceparent; Prometheus (with
    // exemplar-storage, as docker-compose.yml runs it) keeps the exemplars
    // the latency panel shows.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exemplars = prom.api(&format!(
        "/api/v1/query_exemplars?query={}&start={}&end={}",
        common::url_encode(r#"server_handle_request_seconds_bucket{job="tinymon"}"#),
        now - 300,
        now + 60
    ));
    let traced = exemplars["data"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["exemplars"].as_array().cloned().unwrap_or_default())
        .filter(|e| {
            e["labels"]["trace_id"]
                .as_str()
                .is_some_and(|t| t.len() == 32)
        })
        .count();
    assert!(traced > 0, "no exemplars in Prometheus: {exemplars}");
    eprintln!("exemplars with trace ids in Prometheus: {traced}");

    // Nothing alerts on a healthy stack: the traffic mix stays inside the
    // SLOs, so no burn-rate alert is pending or firing either.
    let alerts = prom.api("/api/v1/alerts");
    let active = alert_names(&alerts["data"]["alerts"]);
    assert!(active.is_empty(), "a healthy stack alerts: {active:?}");
    let burn = prom.query(r#"job:tinymon_slo_errors:ratio_rate5m{job="tinymon"}"#);
    assert_eq!(burn.len(), 2, "both SLIs recorded: {burn:?}");

    // Stop one replica. It leaves Docker's DNS, so its target vanishes
    // instead of reporting up == 0; the alert must still fire and reach
    // Alertmanager.
    let replicas = stack.compose(&["ps", "-q", "tinymon"]);
    let victim = replicas.lines().next().unwrap().to_owned();
    let stopped_at = Instant::now();
    docker(&["stop", "-t", "5", &victim]);
    let mut pending_at = None;
    let mut firing_at = None;
    wait_for(
        "TinymonInstanceDown firing in Prometheus and listed by Alertmanager",
        Duration::from_secs(180),
        || {
            let states = alert_names(&prom.get("/api/v1/alerts")?["data"]["alerts"]);
            for (name, state) in &states {
                if name == "TinymonInstanceDown" {
                    if state == "pending" && pending_at.is_none() {
                        pending_at = Some(stopped_at.elapsed());
                    }
                    if state == "firing" && firing_at.is_none() {
                        firing_at = Some(stopped_at.elapsed());
                    }
                }
            }
            if firing_at.is_none() {
                return Err(format!("Prometheus has {states:?}"));
            }
            let r = tinymon_test_support::client::get(
                &format!("{am}/api/v2/alerts"),
                Duration::from_secs(5),
            )
            .map_err(|e| format!("Alertmanager: {e}"))?;
            let listed: Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
            let found = alert_names(&listed)
                .iter()
                .any(|(n, s)| n == "TinymonInstanceDown" && s == "active");
            if found {
                Ok(())
            } else {
                Err(format!("Alertmanager lists {:?}", alert_names(&listed)))
            }
        },
    );
    let in_am = stopped_at.elapsed();
    eprintln!(
        "replica stopped: pending after {pending_at:?}, firing after {firing_at:?}, \
         in Alertmanager after {in_am:?}"
    );
    assert!(
        pending_at.is_some_and(|p| Some(p) < firing_at),
        "pending ({pending_at:?}) before firing ({firing_at:?})"
    );
    // The survivors still serve, and the traffic moves to them.
    wait_for("two targets, both up", Duration::from_secs(30), || {
        let t = prom.targets("tinymon")?;
        if t.len() == 2 && t.iter().all(|(_, h)| h == "up") {
            Ok(())
        } else {
            Err(format!("{t:?}"))
        }
    });

    // An availability page, end to end: failures sent to a surviving
    // replica at 5 a second beside the traffic service's 20 (a fifth of
    // all requests fail, over 200 times the 0.1 % budget) must reach
    // Alertmanager as TinymonErrorBudgetBurn{slo="availability"}, critical,
    // routed to oncall. No burn alert is active before they start.
    let active = alert_names(&prom.api("/api/v1/alerts")["data"]["alerts"]);
    assert!(
        !active.iter().any(|(n, _)| n == "TinymonErrorBudgetBurn"),
        "{active:?}"
    );
    let survivor = replicas.lines().nth(1).unwrap().to_owned();
    let published = docker(&["port", &survivor, "8080/tcp"]);
    let addr = published.lines().next().unwrap().trim().to_owned();
    let failing = format!("http://{addr}/work?fail=1");
    let stop_failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let injector = {
        let stop = stop_failing.clone();
        std::thread::spawn(move || {
            let (started, mut sent, mut answered_502) = (Instant::now(), 0u32, 0u32);
            // Bounded: 5 a second, for at most 4 minutes.
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && started.elapsed() < Duration::from_secs(240)
            {
                sent += 1;
                if let Ok(r) = tinymon_test_support::client::get(&failing, Duration::from_secs(5)) {
                    answered_502 += u32::from(r.status == 502);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            (sent, answered_502)
        })
    };
    let failing_from = Instant::now();
    let mut page_firing_at = None;
    wait_for(
        "the availability page in Alertmanager, routed to oncall",
        Duration::from_secs(200),
        || {
            if page_firing_at.is_none() {
                let v = prom.get("/api/v1/alerts")?;
                let firing = v["data"]["alerts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|a| {
                        a["labels"]["alertname"] == "TinymonErrorBudgetBurn"
                            && a["labels"]["slo"] == "availability"
                            && a["labels"]["severity"] == "critical"
                            && a["state"] == "firing"
                    });
                if firing {
                    page_firing_at = Some(failing_from.elapsed());
                }
            }
            let r = tinymon_test_support::client::get(
                &format!("{am}/api/v2/alerts?filter=alertname%3D%22TinymonErrorBudgetBurn%22"),
                Duration::from_secs(5),
            )
            .map_err(|e| format!("Alertmanager: {e}"))?;
            let listed: Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
            let paged = listed.as_array().into_iter().flatten().any(|a| {
                a["labels"]["slo"] == "availability"
                    && a["labels"]["severity"] == "critical"
                    && a["status"]["state"] == "active"
                    && a["receivers"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|x| x["name"] == "oncall"))
            });
            if paged {
                Ok(())
            } else {
                Err(format!("Alertmanager lists {listed}"))
            }
        },
    );
    let paged_after = failing_from.elapsed();
    stop_failing.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, answered_502) = injector.join().unwrap();
    let ratio =
        prom.query(r#"job:tinymon_slo_errors:ratio_rate5m{job="tinymon", slo="availability"}"#);
    eprintln!(
        "failures injected ({sent} sent, {answered_502} answered 502): page firing in Prometheus \
         after {page_firing_at:?}, in Alertmanager for oncall after {paged_after:?}; \
         stack {:?} old; 5m error ratio then {}",
        up_started.elapsed() - paged_after,
        ratio
            .first()
            .map_or("?".into(), |r| r["value"][1].to_string())
    );
    assert!(
        answered_502 > 0,
        "the failing requests never reached tinymon"
    );

    // `make logs` follows every service's log: tinymon's start-up line and
    // Prometheus's are among the last 100 lines.
    let logs = follow_make_logs(&stack, Duration::from_secs(4));
    for want in [
        "listening on 0.0.0.0:8080",
        "Server is ready to receive web requests",
    ] {
        assert!(
            logs.contains(want),
            "make logs printed no {want:?}:\n{logs}"
        );
    }

    // `make down` removes the containers and the network and keeps the data
    // volumes; `down -v` then leaves nothing of the project.
    let down_started = Instant::now();
    let down = stack.make(&["down"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    eprintln!("make down: {:?}", down_started.elapsed());
    let left = stack.leftovers();
    assert!(
        !left.is_empty() && left.iter().all(|l| l.starts_with("volume ")),
        "after make down: {left:?}"
    );
    stack.compose(&["down", "-v", "--remove-orphans", "-t", "5"]);
    let left = stack.leftovers();
    assert!(left.is_empty(), "left behind: {left:?}");
}
