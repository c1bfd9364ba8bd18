//! A plain tiny_http service with two routes of its own, instrumented with
//! the Go original's RED metrics and serving `/metrics`.
//!
//! `cargo run --example instrument_tiny_http -- 127.0.0.1:8080`

use tiny_http::{Header, Response, Server};
use tinymon::encode::{TextEncoder, CONTENT_TYPE};
use tinymon::http::{RedMetrics, UNMATCHED};
use tinymon::metrics::Registry;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:8080".into());
    let server = Server::http(addr)?;
    println!(
        "listening on {}",
        server.server_addr().to_ip().expect("TCP")
    );
    let registry = Registry::new();
    let red = RedMetrics::register(&registry)?;
    let mut encoder = TextEncoder::new();
    for request in server.incoming_requests() {
        // The `path` label is the route, never the raw URL.
        let route = match request.url().split('?').next().unwrap_or("") {
            "/hello" => "/hello",
            "/metrics" => "/metrics",
            p if p.starts_with("/orders/") => "/orders/{id}",
            _ => UNMATCHED,
        };
        red.serve(request, route, |request| match route {
            "/hello" => Response::from_string("hello\n"),
            "/orders/{id}" => Response::from_string(format!("order {}\n", &request.url()[8..])),
            "/metrics" => Response::from_data(encoder.encode(&registry).to_vec())
                .with_header(Header::from_bytes("Content-Type", CONTENT_TYPE).unwrap()),
            _ => Response::from_string("not found\n").with_status_code(404),
        })?;
    }
    Ok(())
}
