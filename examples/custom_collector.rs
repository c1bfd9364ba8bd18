//! A scrape-time collector: the system's load averages, read from
//! /proc/loadavg whenever `/metrics` is scraped, served by tinymon's
//! hardened server next to its RED and process metrics.
//!
//! `cargo run --example custom_collector -- 127.0.0.1:8080`

use std::sync::Arc;

use tinymon::http::{Server, ServerSettings, Service};
use tinymon::metrics::{Collected, Collector, Desc, MetricType, Registry};
use tinymon::process::ProcessCollector;

/// Reports `system_load_average{period="1m"|"5m"|"15m"}`.
struct LoadAverage;

impl Collector for LoadAverage {
    fn descs(&self) -> &[Desc] {
        &[Desc {
            name: "system_load_average",
            help: "Runnable and waiting tasks, averaged over the period (from /proc/loadavg).",
            kind: MetricType::Gauge,
        }]
    }

    fn collect(&self, out: &mut Collected<'_, '_>) {
        // Unreadable: the family is left out of this scrape, not zeroed.
        let Ok(text) = std::fs::read_to_string("/proc/loadavg") else {
            return;
        };
        for (period, value) in ["1m", "5m", "15m"].into_iter().zip(text.split(' ')) {
            if let Ok(v) = value.parse() {
                out.sample(0, &[("period", period)], v);
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args().nth(1).unwrap_or("127.0.0.1:8080".into());
    let registry = Arc::new(Registry::new());
    registry.register_collector(LoadAverage)?;
    registry.register_collector(ProcessCollector)?;
    let service = Service::new(registry, ())?;
    let settings = ServerSettings {
        listen: listen.parse()?,
        ..ServerSettings::default()
    };
    let server = Server::start(&settings, Arc::new(service))?;
    println!("listening on {}", server.addr());
    server.wait()?;
    Ok(())
}
