//! process_* metrics, read from the operating system at scrape time.
//!
//! Names, units and meaning follow client_golang's process collector, so
//! dashboards written for Go services work unchanged. Where the values come
//! from is the platform's business, one file each:
//!
//! - Linux ([`linux`](self)): every family, from `/proc/self/*`;
//! - macOS: what libc offers (`getrusage`, `proc_pidinfo`, `getrlimit`,
//!   `/dev/fd`); no `process_virtual_memory_max_bytes`;
//! - anything else (Windows): no samples at all.
//!
//! A value the platform cannot give is left out, never guessed: a family
//! without samples is still described, and a dashboard shows "no data"
//! rather than a wrong number. Each source is read on its own, so one that
//! fails drops only its own samples, never the scrape.

use crate::metrics::{Collected, Collector, Desc, MetricType};

#[cfg(unix)]
pub(crate) mod fds;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "linux")]
use linux as platform;
#[cfg(target_os = "macos")]
use macos as platform;
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
mod platform {
    /// No reader for this platform: the families are described, never sampled.
    pub(super) fn read(_values: &mut super::Values) {}
}

/// One slot per family of [`DESCS`], `None` where the platform gave nothing.
type Values = [Option<f64>; DESCS.len()];

/// Where each family's value sits in [`Values`], in the order of [`DESCS`].
/// A platform reader sets the slots it can read; the others stay `None`.
#[allow(dead_code)] // other platforms read fewer of them (macOS not VIRTUAL_MAX)
mod slot {
    pub(super) const CPU: usize = 0;
    pub(super) const MAX_FDS: usize = 1;
    pub(super) const OPEN_FDS: usize = 2;
    pub(super) const RESIDENT: usize = 3;
    pub(super) const START_TIME: usize = 4;
    pub(super) const THREADS: usize = 5;
    pub(super) const VIRTUAL: usize = 6;
    pub(super) const VIRTUAL_MAX: usize = 7;
}

const DESCS: [Desc; 8] = [
    Desc {
        name: "process_cpu_seconds_total",
        help: "CPU time this process has used, user plus system, in seconds.",
        kind: MetricType::Counter,
    },
    Desc {
        name: "process_max_fds",
        help: "Soft limit on open file descriptors for this process.",
        kind: MetricType::Gauge,
    },
    Desc {
        name: "process_open_fds",
        help: "File descriptors this process has open.",
        kind: MetricType::Gauge,
    },
    Desc {
        name: "process_resident_memory_bytes",
        help: "Memory of this process held in RAM (resident set size), in bytes.",
        kind: MetricType::Gauge,
    },
    Desc {
        name: "process_start_time_seconds",
        help: "When this process started, in seconds since the Unix epoch.",
        kind: MetricType::Gauge,
    },
    Desc {
        name: "process_threads",
        help: "Operating-system threads in this process.",
        kind: MetricType::Gauge,
    },
    Desc {
        name: "process_virtual_memory_bytes",
        help: "Virtual address space this process has mapped, in bytes.",
        kind: MetricType::Gauge,
    },
    Desc {
        name: "process_virtual_memory_max_bytes",
        help: "Soft limit on this process's virtual address space, in bytes.",
        kind: MetricType::Gauge,
    },
];

/// Collects process_* for this process (see the module docs for what each
/// platform gives).
///
/// ```
/// use tinymon::encode::TextEncoder;
/// use tinymon::metrics::Registry;
/// use tinymon::process::ProcessCollector;
///
/// let registry = Registry::new();
/// registry.register_collector(ProcessCollector).unwrap();
/// let text = String::from_utf8(TextEncoder::new().encode(&registry).to_vec()).unwrap();
/// assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
/// #[cfg(any(target_os = "linux", target_os = "macos"))]
/// assert!(text.contains("\nprocess_open_fds "));
/// ```
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn descs(&self) -> &[Desc] {
        &DESCS
    }

    fn collect(&self, out: &mut Collected<'_, '_>) {
        // Each source is read first; samples then go out in `DESCS` order,
        // which keeps every family's samples together.
        let mut values: Values = [None; DESCS.len()];
        platform::read(&mut values);
        for (desc, value) in values.into_iter().enumerate() {
            if let Some(v) = value {
                out.sample(desc, &[], v);
            }
        }
    }
}
