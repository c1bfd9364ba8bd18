//! Command line and environment → what to run.
//!
//! Flags win over environment variables, which win over defaults. A bad flag
//! or value is a [`UsageError`] naming it; the binary prints it and exits 2.

use std::fmt;
use std::net::SocketAddr;

use std::time::Duration;
use tinymon::http::ServerSettings;

/// Default `--listen`.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// Default `--workers`.
pub const DEFAULT_WORKERS: usize = 8;
/// Default `--idle-timeout`, seconds.
pub const DEFAULT_IDLE_TIMEOUT: u64 = 30;
/// Default `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
/// Default `--max-unreleased`.
pub const DEFAULT_MAX_UNRELEASED: usize = 100;
const MAX_WORKERS: usize = 1024;

/// The help text; every flag with its default and environment variable.
pub const USAGE: &str = "\
tinymon — a small HTTP service that monitors itself

Usage:
  tinymon [serve] [--listen ADDR] [--workers N] [--idle-timeout S] [--max-connections N]
                  [--max-unreleased N]
  tinymon healthcheck [--url URL] [--timeout-ms MS]
  tinymon load --target URL [--duration S] [--rps N] [--concurrency N]
  tinymon --help | --version

serve (the default):
  --listen ADDR     address to listen on, IP:PORT or :PORT
                    [env TINYMON_LISTEN, default 0.0.0.0:8080]
  --workers N       request worker threads, 1-1024
                    [env TINYMON_WORKERS, default 8]
  --idle-timeout S  close a connection after S seconds in which the server
                    sent it nothing (idle, stalled or trickling clients), 3-3600
                    [env TINYMON_IDLE_TIMEOUT, default 30]
  --max-connections N
                    open connections beyond N get 503 and are closed, 1-100000
                    [env TINYMON_MAX_CONNECTIONS, default 2048]
  --max-unreleased N
                    when N connections are stuck in tiny_http (HTTP/2 request
                    lines), restart in place: drain, then exec this binary on
                    the same listening socket and PID, 1-100000
                    [env TINYMON_MAX_UNRELEASED, default 100]
  env TINYMON_METRICS_TOKEN or TINYMON_METRICS_TOKEN_FILE: when set, /metrics
                    requires the header Authorization: Bearer TOKEN (else 401)
  Routes: GET /metrics, /healthz, /hello, /work?delay_ms=0-2000&fail=0-1
  SIGTERM or SIGINT stops accepting, finishes in-flight requests, exits 0.

healthcheck (for container health checks; exits 0 when healthy, else 1):
  --url URL         [default http://127.0.0.1:PORT/healthz, PORT from
                    TINYMON_LISTEN or 8080]
  --timeout-ms MS   [default 2000]

load (a bounded traffic generator with a realistic mix of routes):
  --target URL      base URL of a tinymon, e.g. http://127.0.0.1:8080
  --duration S      seconds to run, 1-86400, or 0 to run until stopped [default 10]
  --rps N           requests per second across all connections, 1-100000 [default 50]
  --concurrency N   connections, 1-1024 [default 4]
";

/// What the process should do.
#[derive(Debug, PartialEq)]
pub enum Command {
    Serve(ServeConfig),
    Healthcheck(HealthcheckConfig),
    Load(LoadConfig),
    Help,
    Version,
}

/// `tinymon serve`.
#[derive(Debug, PartialEq)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub workers: usize,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Stuck connections that make the server restart in place.
    pub max_unreleased: usize,
    /// Bearer token /metrics requires, if any.
    pub metrics_token: Option<String>,
}

/// `tinymon healthcheck`.
#[derive(Debug, PartialEq)]
pub struct HealthcheckConfig {
    pub url: String,
    pub timeout: Duration,
}

/// `tinymon load`.
#[derive(Debug, PartialEq)]
pub struct LoadConfig {
    pub target: String,
    /// `None`: run until stopped.
    pub duration: Option<Duration>,
    pub rps: u32,
    pub concurrency: usize,
}

/// A bad flag or value; the message names it.
#[derive(Debug, PartialEq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (see tinymon --help)", self.0)
    }
}

/// Parses the arguments after the program name; `env` looks up variables.
pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Command, UsageError> {
    let mut args = args;
    let sub = match args.first().map(String::as_str) {
        Some("serve") | Some("healthcheck") | Some("load") => {
            let s = args[0].clone();
            args = &args[1..];
            s
        }
        _ => "serve".to_owned(),
    };
    let flags = Flags::parse(args)?;
    if flags.has("--help") || flags.has("-h") {
        return Ok(Command::Help);
    }
    if flags.has("--version") || flags.has("-V") {
        return Ok(Command::Version);
    }
    match sub.as_str() {
        "serve" => {
            flags.only(&[
                "--listen",
                "--workers",
                "--idle-timeout",
                "--max-connections",
                "--max-unreleased",
            ])?;
            let listen = flags
                .value("--listen")
                .map(|v| ("--listen", v))
                .or_else(|| env("TINYMON_LISTEN").map(|v| ("TINYMON_LISTEN", v)))
                .map(|(from, v)| parse_listen(from, &v))
                .unwrap_or_else(|| parse_listen("default", DEFAULT_LISTEN))?;
            let number =
                |flag: &str, var: &str, min: u64, max: u64, default: u64| match flags.value(flag) {
                    Some(v) => parse_number(flag, &v, min, max),
                    None => match env(var) {
                        Some(v) => parse_number(var, &v, min, max),
                        None => Ok(default),
                    },
                };
            let workers = number(
                "--workers",
                "TINYMON_WORKERS",
                1,
                MAX_WORKERS as u64,
                DEFAULT_WORKERS as u64,
            )? as usize;
            let idle_timeout = Duration::from_secs(number(
                "--idle-timeout",
                "TINYMON_IDLE_TIMEOUT",
                3,
                3600,
                DEFAULT_IDLE_TIMEOUT,
            )?);
            let max_connections = number(
                "--max-connections",
                "TINYMON_MAX_CONNECTIONS",
                1,
                100_000,
                DEFAULT_MAX_CONNECTIONS as u64,
            )? as usize;
            let max_unreleased = number(
                "--max-unreleased",
                "TINYMON_MAX_UNRELEASED",
                1,
                100_000,
                DEFAULT_MAX_UNRELEASED as u64,
            )? as usize;
            let metrics_token = metrics_token(&env)?;
            Ok(Command::Serve(ServeConfig {
                listen,
                workers,
                idle_timeout,
                max_connections,
                max_unreleased,
                metrics_token,
            }))
        }
        "healthcheck" => {
            flags.only(&["--url", "--timeout-ms"])?;
            let url = match flags.value("--url") {
                Some(u) => u,
                None => {
                    let listen = match env("TINYMON_LISTEN") {
                        Some(v) => parse_listen("TINYMON_LISTEN", &v)?,
                        None => parse_listen("default", DEFAULT_LISTEN)?,
                    };
                    let settings = ServerSettings {
                        listen,
                        ..ServerSettings::default()
                    };
                    format!("http://{}/healthz", settings.local_addr())
                }
            };
            let timeout = match flags.value("--timeout-ms") {
                Some(v) => parse_number("--timeout-ms", &v, 1, 60_000)?,
                None => 2_000,
            };
            Ok(Command::Healthcheck(HealthcheckConfig {
                url,
                timeout: Duration::from_millis(timeout),
            }))
        }
        _ => {
            flags.only(&["--target", "--duration", "--rps", "--concurrency"])?;
            let target = flags
                .value("--target")
                .ok_or_else(|| UsageError("load needs --target URL".into()))?;
            let duration = match flags.value("--duration") {
                Some(v) => parse_number("--duration", &v, 0, 86_400)?,
                None => 10,
            };
            let rps = match flags.value("--rps") {
                Some(v) => parse_number("--rps", &v, 1, 100_000)? as u32,
                None => 50,
            };
            let concurrency = match flags.value("--concurrency") {
                Some(v) => parse_number("--concurrency", &v, 1, 1024)? as usize,
                None => 4,
            };
            Ok(Command::Load(LoadConfig {
                target,
                duration: (duration > 0).then(|| Duration::from_secs(duration)),
                rps,
                concurrency,
            }))
        }
    }
}

/// The /metrics token from TINYMON_METRICS_TOKEN or the file named by
/// TINYMON_METRICS_TOKEN_FILE (surrounding whitespace trimmed).
fn metrics_token(env: &impl Fn(&str) -> Option<String>) -> Result<Option<String>, UsageError> {
    let (from, token) = match (
        env("TINYMON_METRICS_TOKEN"),
        env("TINYMON_METRICS_TOKEN_FILE"),
    ) {
        (Some(_), Some(_)) => {
            return Err(UsageError(
                "set TINYMON_METRICS_TOKEN or TINYMON_METRICS_TOKEN_FILE, not both".into(),
            ))
        }
        (Some(t), None) => ("TINYMON_METRICS_TOKEN", t),
        (None, Some(path)) => (
            "TINYMON_METRICS_TOKEN_FILE",
            std::fs::read_to_string(&path).map_err(|e| {
                UsageError(format!(
                    "TINYMON_METRICS_TOKEN_FILE: cannot read {path:?}: {e}"
                ))
            })?,
        ),
        (None, None) => return Ok(None),
    };
    let token = token.trim();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(UsageError(format!(
            "{from}: the token must be non-empty printable ASCII without spaces"
        )));
    }
    Ok(Some(token.to_owned()))
}

fn parse_listen(from: &str, value: &str) -> Result<SocketAddr, UsageError> {
    let full = match value.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => value.to_owned(),
    };
    full.parse().map_err(|_| {
        UsageError(format!(
            "{from}: invalid address {value:?}: expected IP:PORT such as 0.0.0.0:8080, [::1]:8080 or :8080"
        ))
    })
}

fn parse_number(from: &str, value: &str, min: u64, max: u64) -> Result<u64, UsageError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            UsageError(format!(
                "{from}: invalid value {value:?}: expected a whole number from {min} to {max}"
            ))
        })
}

/// `--name value` and `--name=value` pairs, plus bare switches.
struct Flags(Vec<(String, Option<String>)>);

const SWITCHES: [&str; 4] = ["--help", "-h", "--version", "-V"];

impl Flags {
    fn parse(args: &[String]) -> Result<Self, UsageError> {
        let mut out = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if SWITCHES.contains(&arg.as_str()) {
                out.push((arg.clone(), None));
                continue;
            }
            if !arg.starts_with("--") {
                return Err(UsageError(format!("unexpected argument {arg:?}")));
            }
            let (name, value) = match arg.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => {
                    let v = it
                        .next()
                        .ok_or_else(|| UsageError(format!("{arg} needs a value")))?;
                    (arg.clone(), v.clone())
                }
            };
            if out.iter().any(|(n, _)| *n == name) {
                return Err(UsageError(format!("{name} given more than once")));
            }
            out.push((name, Some(value)));
        }
        Ok(Flags(out))
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    fn value(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    }

    fn only(&self, allowed: &[&str]) -> Result<(), UsageError> {
        match self.0.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
            Some((n, _)) => Err(UsageError(format!("unknown flag {n}"))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Command, UsageError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(&args, |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    fn serve(listen: &str, workers: usize) -> Command {
        Command::Serve(ServeConfig {
            listen: listen.parse().unwrap(),
            workers,
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_unreleased: DEFAULT_MAX_UNRELEASED,
            metrics_token: None,
        })
    }

    #[test]
    fn guard_flags_and_token() {
        let Ok(Command::Serve(c)) = run(
            &["--idle-timeout", "5", "--max-connections=10"],
            &[
                ("TINYMON_METRICS_TOKEN", " s3cret\n"),
                ("TINYMON_MAX_UNRELEASED", "7"),
            ],
        ) else {
            panic!("not serve")
        };
        assert_eq!(c.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.max_connections, 10);
        assert_eq!(c.max_unreleased, 7);
        assert_eq!(c.metrics_token.as_deref(), Some("s3cret"));
        for (args, env, word) in [
            (&["--idle-timeout", "1"][..], &[][..], "--idle-timeout"),
            (&["--max-connections", "0"], &[], "--max-connections"),
            (&["--max-unreleased", "0"], &[], "--max-unreleased"),
            (
                &[],
                &[("TINYMON_METRICS_TOKEN", "two words")],
                "TINYMON_METRICS_TOKEN",
            ),
            (
                &[],
                &[("TINYMON_METRICS_TOKEN", "  ")],
                "TINYMON_METRICS_TOKEN",
            ),
            (
                &[],
                &[("TINYMON_METRICS_TOKEN_FILE", "/nonexistent/x")],
                "/nonexistent/x",
            ),
            (
                &[],
                &[
                    ("TINYMON_METRICS_TOKEN", "a"),
                    ("TINYMON_METRICS_TOKEN_FILE", "b"),
                ],
                "not both",
            ),
        ] {
            let err = run(args, env).unwrap_err();
            assert!(err.to_string().contains(word), "{args:?}: {err}");
        }
    }

    #[test]
    fn defaults_env_and_flags() {
        assert_eq!(run(&[], &[]), Ok(serve("0.0.0.0:8080", 8)));
        assert_eq!(
            run(
                &[],
                &[("TINYMON_LISTEN", "127.0.0.1:9"), ("TINYMON_WORKERS", "3")]
            ),
            Ok(serve("127.0.0.1:9", 3))
        );
        assert_eq!(
            run(
                &["--listen", ":7000", "--workers=2"],
                &[("TINYMON_LISTEN", "127.0.0.1:9")]
            ),
            Ok(serve("0.0.0.0:7000", 2))
        );
        assert_eq!(
            run(&["serve", "--listen=[::1]:80"], &[]),
            Ok(serve("[::1]:80", 8))
        );
        assert_eq!(run(&["--help"], &[]), Ok(Command::Help));
        assert_eq!(run(&["serve", "--version"], &[]), Ok(Command::Version));
    }

    #[test]
    fn errors_name_the_flag_or_variable() {
        for (args, env, word) in [
            (&["--bogus", "1"][..], &[][..], "--bogus"),
            (&["--workers", "0"], &[], "--workers"),
            (&["--workers", "lots"], &[], "--workers"),
            (&["--workers"], &[], "--workers needs a value"),
            (&["--listen", "localhost"], &[], "--listen"),
            (&["--listen", ":1", "--listen", ":2"], &[], "more than once"),
            (&[], &[("TINYMON_WORKERS", "x")], "TINYMON_WORKERS"),
            (&[], &[("TINYMON_LISTEN", "nope")], "TINYMON_LISTEN"),
            (&["stray"], &[], "stray"),
            (&["load"], &[], "--target"),
            (
                &["load", "--target", "http://x", "--rps", "0"],
                &[],
                "--rps",
            ),
            (&["healthcheck", "--listen", ":1"], &[], "--listen"),
        ] {
            let err = run(args, env).unwrap_err();
            assert!(err.to_string().contains(word), "{args:?}: {err}");
        }
    }

    #[test]
    fn healthcheck_url_follows_listen() {
        let Ok(Command::Healthcheck(h)) =
            run(&["healthcheck"], &[("TINYMON_LISTEN", "0.0.0.0:9100")])
        else {
            panic!("not a healthcheck")
        };
        assert_eq!(h.url, "http://127.0.0.1:9100/healthz");
        assert_eq!(h.timeout, Duration::from_secs(2));
    }

    #[test]
    fn load_defaults() {
        assert_eq!(
            run(
                &["load", "--target", "http://127.0.0.1:1", "--duration", "0"],
                &[]
            ),
            Ok(Command::Load(LoadConfig {
                target: "http://127.0.0.1:1".into(),
                duration: None,
                rps: 50,
                concurrency: 4,
            }))
        );
    }
}
