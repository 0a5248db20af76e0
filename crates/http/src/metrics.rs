//! `Metrics`: what `--metrics ADDR` serves, in the Prometheus text format (version 0.0.4):
//! requests by status, a latency histogram, live instances, traps and limit kills.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use wasmbox_engine::{EngineError, LimitHit};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
pub struct Metrics {
    by_status: Mutex<BTreeMap<u16, u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_micros: AtomicU64,
    count: AtomicU64,
    traps: AtomicU64,
    /// Memory, timeout, fuel, handles.
    limit_kills: [AtomicU64; 4],
    /// Instances alive now (shared with the handlers, which count them).
    pub live: Arc<AtomicUsize>,
}

impl Metrics {
    /// Fresh counters; `live` is the instance counter the handlers keep.
    pub fn new(live: Arc<AtomicUsize>) -> Self {
        Metrics { live, ..Metrics::default() }
    }

    /// Records one finished request: its status, its latency (until the last body byte) and how
    /// its instance ended (`None` when no instance ran, e.g. 404, 413 or 503).
    pub fn record(&self, status: u16, latency: Duration, instance: Option<&Result<(), EngineError>>) {
        *self.by_status.lock().unwrap_or_else(|p| p.into_inner()).entry(status).or_default() += 1;
        let secs = latency.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_micros.fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        match instance {
            Some(Err(EngineError::Trap { .. })) => {
                self.traps.fetch_add(1, Ordering::Relaxed);
            }
            Some(Err(EngineError::Limit(hit))) => {
                let i = match hit {
                    LimitHit::Memory(_) => 0,
                    LimitHit::Timeout(_) => 1,
                    LimitHit::Fuel(_) => 2,
                    LimitHit::Handles(_) => 3,
                };
                self.limit_kills[i].fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP wasmbox_http_requests_total Requests answered, by status code.\n");
        out.push_str("# TYPE wasmbox_http_requests_total counter\n");
        for (status, n) in self.by_status.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "wasmbox_http_requests_total{{status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP wasmbox_http_request_duration_seconds Time from request to last response byte.\n");
        out.push_str("# TYPE wasmbox_http_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(out, "wasmbox_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "wasmbox_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "wasmbox_http_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "wasmbox_http_request_duration_seconds_count {count}");
        out.push_str("# HELP wasmbox_instances_live Wasm instances alive now.\n");
        out.push_str("# TYPE wasmbox_instances_live gauge\n");
        let _ = writeln!(out, "wasmbox_instances_live {}", self.live.load(Ordering::Relaxed));
        out.push_str("# HELP wasmbox_traps_total Instances that ended in a trap.\n");
        out.push_str("# TYPE wasmbox_traps_total counter\n");
        let _ = writeln!(out, "wasmbox_traps_total {}", self.traps.load(Ordering::Relaxed));
        out.push_str("# HELP wasmbox_limit_kills_total Instances stopped by a limit.\n");
        out.push_str("# TYPE wasmbox_limit_kills_total counter\n");
        for (limit, n) in ["memory", "timeout", "fuel", "handles"].iter().zip(&self.limit_kills) {
            let _ = writeln!(out, "wasmbox_limit_kills_total{{limit=\"{limit}\"}} {}", n.load(Ordering::Relaxed));
        }
        out
    }
}

/// Serves `GET /metrics` on `listener` until the process ends.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let metrics = metrics.clone();
        let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let metrics = metrics.clone();
            async move {
                let (status, body) = if req.uri().path() == "/metrics" {
                    (200, metrics.render())
                } else {
                    (404, "not found: metrics are at /metrics\n".to_string())
                };
                let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
                *response.status_mut() = hyper::StatusCode::from_u16(status).expect("valid status");
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_histogram_and_kills() {
        let m = Metrics::default();
        m.record(200, Duration::from_millis(2), Some(&Ok(())));
        m.record(
            500,
            Duration::from_millis(30),
            Some(&Err(EngineError::Trap { message: "x".into(), backtrace: String::new(), memory_hit: false })),
        );
        m.record(
            504,
            Duration::from_secs(3),
            Some(&Err(EngineError::Limit(LimitHit::Timeout(Duration::from_secs(1))))),
        );
        let text = m.render();
        for line in [
            "wasmbox_http_requests_total{status=\"200\"} 1",
            "wasmbox_http_requests_total{status=\"504\"} 1",
            "wasmbox_http_request_duration_seconds_bucket{le=\"0.001\"} 0",
            "wasmbox_http_request_duration_seconds_bucket{le=\"0.0025\"} 1",
            "wasmbox_http_request_duration_seconds_bucket{le=\"0.05\"} 2",
            "wasmbox_http_request_duration_seconds_bucket{le=\"+Inf\"} 3",
            "wasmbox_http_request_duration_seconds_count 3",
            "wasmbox_traps_total 1",
            "wasmbox_limit_kills_total{limit=\"timeout\"} 1",
            "wasmbox_limit_kills_total{limit=\"memory\"} 0",
            "wasmbox_instances_live 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
