//! One docker-compose project for a test: the repository's compose files
//! plus the local-image overrides, taken down with its volumes however the
//! test ends.
#![allow(dead_code)]

use super::docker::{docker, output, REPO};

/// The compose client: v2 (`docker compose`) where it exists, else 1.x.
fn compose_program() -> (String, Vec<String>) {
    if output("docker", &["compose", "version"]).status.success() {
        ("docker".into(), vec!["compose".into()])
    } else {
        ("docker-compose".into(), vec![])
    }
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
    for base in (20_000..60_000)
        .step_by(97)
        .skip(std::process::id() as usize % 300)
    {
        let free = (base..base + 3).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no three free consecutive ports");
}
