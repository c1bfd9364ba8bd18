//! The `tinymon` binary: flags and environment → serve, healthcheck or load.
//!
//! Everything here and in `app/` is the demo service; the library (`lib.rs`)
//! never imports it.

mod app;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use app::cli::{self as config, Command, LoadConfig, ServeConfig, USAGE};
use app::signals::ShutdownSignals;
use tinymon::http::{Server, ServerSettings, Stopped};
use tinymon::metrics::default_registry;

fn main() -> ExitCode {
    keep_series_tables_off_the_heap();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match config::parse(&args, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tinymon: {e}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("tinymon {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Serve(c) => serve(&c),
        Command::Healthcheck(c) => match app::client::get(&c.url, c.timeout) {
            Ok(r) if r.status == 200 => ExitCode::SUCCESS,
            Ok(r) => {
                eprintln!("tinymon healthcheck: {} answered {}", c.url, r.status);
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("tinymon healthcheck: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Load(c) => match load(&c) {
            Ok(report) => {
                print!("{report}");
                if report.rate() < 0.9 * f64::from(c.rps) {
                    println!(
                        "note: below the requested {} req/s; each connection waits for its answer \
                         (slow /work calls take up to ~1 s), so raise --concurrency (and the server's --workers) for more",
                        c.rps
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tinymon load: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Every family reserves zeroed tables for its series cap (256 KiB of probe
/// table for 10,000 series) and touches them only as series appear. glibc
/// serves allocations under its mmap threshold (128 KB, and rising as
/// mmapped blocks are freed) from the heap, where calloc clears them and
/// makes them resident; above it, from fresh zero pages that stay
/// untouched. A fixed 64 KB threshold keeps the tables off the heap: idle
/// RSS drops by about 300 kB (VmRSS in /proc/self/status of the idle demo
/// binary, with and without it). Other C libraries have no such knob (musl's
/// allocator maps large blocks on its own), so elsewhere this does nothing.
fn keep_series_tables_off_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator setting; it is called
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
    }
}

/// Runs the load generator; SIGTERM or SIGINT ends it early with a report.
fn load(config: &LoadConfig) -> Result<app::load::Report, String> {
    let signals = ShutdownSignals::block().map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        signals.wait();
        flag.store(true, Ordering::Relaxed);
    });
    app::load::run_until(config, stop)
}

fn serve(config: &ServeConfig) -> ExitCode {
    // Before any thread exists: it changes the environment.
    let inherited = match app::restart::take_inherited() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("tinymon: restart: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Before any thread exists, so all of them inherit the blocked mask.
    let signals = match ShutdownSignals::block() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tinymon: cannot block shutdown signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let restarts = match app::restart::register(&default_registry(), inherited.restarts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tinymon: {e}");
            return ExitCode::FAILURE;
        }
    };
    let service = match app::demo(default_registry()) {
        Ok(s) => Arc::new(s.with_metrics_token(config.metrics_token.clone())),
        Err(e) => {
            eprintln!("tinymon: {e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = ServerSettings {
        listen: config.listen,
        workers: config.workers,
        idle_timeout: config.idle_timeout,
        max_connections: config.max_connections,
        // The demo serves up to --max-connections, so it needs that many
        // descriptors: raise the soft limit to the hard one.
        raise_fd_limit: true,
        max_unreleased: config.max_unreleased,
    };
    let started = match inherited.listener {
        Some(listener) => Server::start_on(listener, &settings, service),
        None => Server::start(&settings, service),
    };
    let server = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tinymon: {e}");
            return ExitCode::FAILURE;
        }
    };
    match inherited.since_drain_began {
        Some(took) => eprintln!(
            "tinymon {} restarted (restart {}): listening on {} again {} ms after the drain began",
            env!("CARGO_PKG_VERSION"),
            inherited.restarts,
            server.addr(),
            took.as_millis()
        ),
        None => eprintln!(
            "tinymon {} listening on {} with {} workers",
            env!("CARGO_PKG_VERSION"),
            server.addr(),
            config.workers
        ),
    }
    let stop = server.shutdown_handle();
    std::thread::spawn(move || {
        let name = signals.wait();
        eprintln!("tinymon: {name} received, finishing in-flight requests");
        stop.shutdown();
        // A second signal means "now".
        let name = signals.wait();
        eprintln!("tinymon: second {name}, exiting at once");
        std::process::exit(1);
    });
    let waited = server.wait();
    match waited {
        Ok(Stopped::Shutdown) => {
            eprintln!("tinymon: stopped");
            ExitCode::SUCCESS
        }
        Ok(Stopped::Restart {
            reason,
            listener,
            drained_in,
        }) => {
            let drain_began = std::time::SystemTime::now() - drained_in;
            let count = restarts.get_or_create(&[reason]).get() + 1;
            eprintln!("tinymon: drained; restarting in place ({reason}, restart {count})");
            let e = app::restart::exec_self(listener, count, drain_began);
            eprintln!("tinymon: cannot restart: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("tinymon: {e}");
            ExitCode::FAILURE
        }
    }
}
