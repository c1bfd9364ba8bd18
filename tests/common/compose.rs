//! One docker-compose project for a test: the repository's compose files
//! plus the local-image overrides, taken down with its volumes however the
//! test ends.
#![allow(dead_code)]

use super::docker::{docker, REPO};

/// The compose client: v2, `docker compose`, as `make up` uses it.
fn compose_program() -> (String, Vec<String>) {
    ("docker".into(), vec!["compose".into()])
}

/// One compose project, taken down with its volumes however the test ends.
pub struct Stack {
    pub project: String,
    /// Compose files, in order.
    pub files: Vec<&'static str>,
    pub env: Vec<(&'static str, String)>,
}

impl Stack {
    /// A project named `prefix` plus this process's id, from `files`, with
    /// every published port on a free 127.0.0.1 port and a throwaway
    /// Grafana password.
    pub fn on_loopback(prefix: &str, files: Vec<&'static str>) -> Stack {
        let base = free_port_range();
        let port = || super::free_port().to_string();
        Stack {
            project: format!("{prefix}{}", std::process::id()),
            files,
            env: vec![
                ("BIND", "127.0.0.1".into()),
                ("TINYMON_PORTS", format!("{base}-{}", base + 2)),
                ("PROMETHEUS_PORT", port()),
                ("ALERTMANAGER_PORT", port()),
                ("GRAFANA_PORT", port()),
                ("VICTORIAMETRICS_PORT", port()),
                (
                    "GRAFANA_ADMIN_PASSWORD",
                    format!("test-{}", std::process::id()),
                ),
            ],
        }
    }

    pub fn compose_output(&self, args: &[&str]) -> std::process::Output {
        let (program, mut all) = compose_program();
        all.extend(["-p".to_string(), self.project.clone()]);
        for f in &self.files {
            all.extend(["-f".to_string(), f.to_string()]);
        }
        all.extend(args.iter().map(|a| a.to_string()));
        std::process::Command::new(&program)
            .args(&all)
            .current_dir(REPO)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap_or_else(|e| panic!("{program} is required ({e}); `make test` installs it"))
    }

    /// Runs `make target...` in the repository for this project, the way a
    /// user runs `make up`: compose finds the project's files and name in
    /// COMPOSE_FILE and COMPOSE_PROJECT_NAME.
    pub fn make(&self, args: &[&str]) -> std::process::Output {
        let files: Vec<String> = self
            .files
            .iter()
            .map(|f| {
                if f.starts_with('/') {
                    f.to_string()
                } else {
                    format!("{REPO}/{f}")
                }
            })
            .collect();
        std::process::Command::new("make")
            .args(["-s", "-C", REPO])
            .args(args)
            .env("COMPOSE_FILE", files.join(":"))
            .env("COMPOSE_PROJECT_NAME", &self.project)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("make is required")
    }

    /// The one line each compose test prints when it starts: the versions
    /// the running binaries report (`-` for a service not in the stack).
    pub fn versions_line(&self) -> String {
        let exec = |service: &str, cmd: &[&str]| -> String {
            let mut args = vec!["exec", "-T", service];
            args.extend_from_slice(cmd);
            let out = self.compose_output(&args);
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            // "prometheus, version 3.5.3+ds1 (branch: ...)"
            text.split("version ")
                .nth(1)
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or("?")
                .to_owned()
        };
        let prometheus = exec("prometheus", &["/bin/prometheus", "--version"]);
        let alertmanager = exec("alertmanager", &["/bin/alertmanager", "--version"]);
        let services = self.compose(&["ps", "--services"]);
        let vm = if services.lines().any(|s| s == "victoriametrics") {
            self.victoriametrics_version()
        } else {
            "-".to_owned()
        };
        let compose = docker(&["compose", "version", "--short"]);
        let engine = docker(&["version", "--format", "{{.Server.Version}}"]);
        format!(
            "stack: prometheus {prometheus}, alertmanager {alertmanager}, victoria-metrics {vm}, \
             compose {compose}, docker {engine}"
        )
    }

    /// VictoriaMetrics's own report: the `version` label of `vm_app_version`
    /// on its /metrics (Debian's build leaves the version empty there, so
    /// the short form of its `-version` is tried too).
    fn victoriametrics_version(&self) -> String {
        let port = self.env("VICTORIAMETRICS_PORT");
        let text = tinymon_test_support::client::get(
            &format!("http://127.0.0.1:{port}/metrics"),
            std::time::Duration::from_secs(5),
        )
        .map(|r| r.text())
        .unwrap_or_default();
        let label = text
            .lines()
            .find(|l| l.starts_with("vm_app_version{"))
            .and_then(|l| l.split("version=\"").nth(1))
            .and_then(|v| v.split('"').next())
            .unwrap_or("");
        if label.is_empty() {
            let id = self.compose(&["ps", "-q", "victoriametrics"]);
            let image = super::docker::inspect(&id, "{{.Image}}");
            let pkg =
                super::docker::inspect(&image, r#"{{index .Config.Labels "org.debian.package"}}"#);
            format!("(reports none; Debian package {pkg})")
        } else {
            label.to_owned()
        }
    }

    pub fn compose(&self, args: &[&str]) -> String {
        let out = self.compose_output(args);
        assert!(
            out.status.success(),
            "compose {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub fn env(&self, key: &str) -> &str {
        &self.env.iter().find(|(k, _)| *k == key).unwrap().1
    }

    /// Names of the project's containers, networks and volumes still there.
    pub fn leftovers(&self) -> Vec<String> {
        let label = format!("label=com.docker.compose.project={}", self.project);
        let mut left = Vec::new();
        for (what, args) in [
            ("container", vec!["ps", "-a", "-q", "--filter", &label]),
            ("network", vec!["network", "ls", "-q", "--filter", &label]),
            ("volume", vec!["volume", "ls", "-q", "--filter", &label]),
        ] {
            for id in docker(&args).lines().filter(|l| !l.is_empty()) {
                left.push(format!("{what} {id}"));
            }
        }
        left
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.compose_output(&["down", "-v", "--remove-orphans", "-t", "5"]);
    }
}

/// Three consecutive free loopback ports, for the replicas' published range.
pub fn free_port_range() -> u16 {
    // Below Linux's ephemeral range (32768 and up), where client sockets
    // of other tests take ports; every base is tried, from one that
    // depends on the process id.
    let bases: Vec<u16> = (20_000..32_000).step_by(7).collect();
    let start = std::process::id() as usize % bases.len();
    for &base in bases[start..].iter().chain(&bases[..start]) {
        let free = (base..base + 3).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no three free consecutive ports");
}
