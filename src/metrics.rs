//! Prometheus metrics: what `/metrics` on the HTTP listener serves. Requests by
//! gRPC method and code with latency histograms (recorded by the auth layer),
//! calibration fit times and sizes (recorded by the calibrator), report page
//! views, and the database pools read at scrape time.
//!
//! One registry per process, as Prometheus client libraries keep: counters are
//! atomics, so recording costs no lock on the request path once a method has
//! been seen. Labels never carry tenant data (no organisation, user or
//! resource ids), and an unknown method from a client is counted as `unknown`
//! so clients cannot grow the label set.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

/// One connection pool's use at a moment (the store reports it, `/metrics`
/// shows it).
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub name: &'static str,
    /// Connections open (idle and in use).
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// Upper bounds (seconds) of the request latency buckets.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Upper bounds (seconds) of the calibration fit buckets.
const FIT_BUCKETS: [f64; 12] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A cumulative histogram with fixed buckets.
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| seconds <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// One gRPC method's figures.
struct MethodStats {
    /// Responses by gRPC code (0..=16).
    codes: [AtomicU64; 17],
    latency: Histogram,
}

impl MethodStats {
    fn new() -> Self {
        Self { codes: std::array::from_fn(|_| AtomicU64::new(0)), latency: Histogram::new(&LATENCY_BUCKETS) }
    }
}

/// The process's metrics.
pub struct Metrics {
    methods: RwLock<BTreeMap<String, Arc<MethodStats>>>,
    full_fits: Histogram,
    incremental_updates: Histogram,
    last_fit_ratings: AtomicU64,
    page_views: RwLock<BTreeMap<(&'static str, u16), u64>>,
    /// Public key files taken after a change, and changed files that did not load.
    key_reloads_loaded: AtomicU64,
    key_reloads_failed: AtomicU64,
    /// Organisations loaded from the database into calibration state.
    org_loads: AtomicU64,
    /// Organisations restored from a calibration snapshot instead of loaded,
    /// and snapshots written.
    snapshot_restores: AtomicU64,
    snapshots_written: AtomicU64,
    /// Background refits swapped in, and the changes replayed onto them.
    refits_landed: AtomicU64,
    refit_replayed_changes: AtomicU64,
    /// Queries of an organisation's latest event sequence by stream feeds.
    event_feed_polls: AtomicU64,
    /// Supervised background tasks restarted after a panic, by task.
    task_restarts: RwLock<BTreeMap<&'static str, u64>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's registry.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// The paths of every method this server serves: ours (from the compiled
/// descriptors), health checks and reflection.
static KNOWN_METHODS: LazyLock<std::collections::HashSet<String>> = LazyLock::new(|| {
    use prost::Message;
    let mut known = std::collections::HashSet::new();
    for set in [crate::proto::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET] {
        let Ok(files) = prost_types::FileDescriptorSet::decode(set) else { continue };
        for file in files.file {
            for service in &file.service {
                for method in &service.method {
                    known.insert(format!("/{}.{}/{}", file.package(), service.name(), method.name()));
                }
            }
        }
    }
    for version in ["v1", "v1alpha"] {
        known.insert(format!("/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo"));
    }
    known
});

/// A label value with Prometheus' escapes (backslash, quote, newline).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// An empty registry (the process has one, [`global`]).
    fn new() -> Self {
        Metrics {
            methods: RwLock::new(BTreeMap::new()),
            full_fits: Histogram::new(&FIT_BUCKETS),
            incremental_updates: Histogram::new(&FIT_BUCKETS),
            last_fit_ratings: AtomicU64::new(0),
            page_views: RwLock::new(BTreeMap::new()),
            key_reloads_loaded: AtomicU64::new(0),
            key_reloads_failed: AtomicU64::new(0),
            org_loads: AtomicU64::new(0),
            snapshot_restores: AtomicU64::new(0),
            snapshots_written: AtomicU64::new(0),
            refits_landed: AtomicU64::new(0),
            refit_replayed_changes: AtomicU64::new(0),
            task_restarts: RwLock::new(BTreeMap::new()),
            event_feed_polls: AtomicU64::new(0),
        }
    }

    /// Counts one finished gRPC request. `method` is the request path; paths
    /// the server does not serve are counted as `unknown`.
    pub fn record_request(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        let method = if KNOWN_METHODS.contains(method) { method } else { "unknown" };
        let stats = {
            let methods = self.methods.read().unwrap_or_else(|p| p.into_inner());
            methods.get(method).cloned()
        };
        let stats = match stats {
            Some(s) => s,
            None => {
                let mut methods = self.methods.write().unwrap_or_else(|p| p.into_inner());
                methods.entry(method.to_string()).or_insert_with(|| Arc::new(MethodStats::new())).clone()
            }
        };
        stats.codes[(code as usize).min(16)].fetch_add(1, Ordering::Relaxed);
        stats.latency.observe(elapsed);
    }

    /// Records a full calibration fit of `ratings` ratings.
    pub fn record_full_fit(&self, ratings: usize, elapsed: Duration) {
        self.full_fits.observe(elapsed);
        self.last_fit_ratings.store(ratings as u64, Ordering::Relaxed);
    }

    /// Records an incremental calibration update (one scorecard).
    pub fn record_incremental_update(&self, elapsed: Duration) {
        self.incremental_updates.observe(elapsed);
    }

    /// Counts one organisation loaded from the database (start-up, first use,
    /// reload after an import, or far behind other replicas).
    pub fn record_org_load(&self) {
        self.org_loads.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one background refit swapped in, with the changes that arrived
    /// during its fit and were replayed onto it.
    pub fn record_refit_landed(&self, replayed: usize) {
        self.refits_landed.fetch_add(1, Ordering::Relaxed);
        self.refit_replayed_changes.fetch_add(replayed as u64, Ordering::Relaxed);
    }

    /// Counts one look at an organisation's latest event sequence by the
    /// feed its open streams share.
    pub fn record_event_feed_poll(&self) {
        self.event_feed_polls.fetch_add(1, Ordering::Relaxed);
    }

    /// Feed looks so far.
    pub fn event_feed_polls(&self) -> u64 {
        self.event_feed_polls.load(Ordering::Relaxed)
    }

    /// Counts one restart of a supervised background task after it panicked.
    pub fn record_task_restart(&self, task: &'static str) {
        let mut restarts = self.task_restarts.write().unwrap_or_else(|p| p.into_inner());
        *restarts.entry(task).or_default() += 1;
    }

    /// Restarts of `task` so far.
    pub fn task_restarts(&self, task: &str) -> u64 {
        self.task_restarts.read().unwrap_or_else(|p| p.into_inner()).get(task).copied().unwrap_or(0)
    }

    /// Changes replayed onto background refits so far.
    pub fn refit_replayed_changes(&self) -> u64 {
        self.refit_replayed_changes.load(Ordering::Relaxed)
    }

    /// Background refits swapped in so far.
    pub fn refits_landed(&self) -> u64 {
        self.refits_landed.load(Ordering::Relaxed)
    }

    /// Organisations loaded so far.
    pub fn org_loads(&self) -> u64 {
        self.org_loads.load(Ordering::Relaxed)
    }

    /// Counts one organisation restored from its calibration snapshot.
    pub fn record_snapshot_restore(&self) {
        self.snapshot_restores.fetch_add(1, Ordering::Relaxed);
    }

    /// Organisations restored from a snapshot so far.
    pub fn snapshot_restores(&self) -> u64 {
        self.snapshot_restores.load(Ordering::Relaxed)
    }

    /// Counts one calibration snapshot written.
    pub fn record_snapshot_written(&self) {
        self.snapshots_written.fetch_add(1, Ordering::Relaxed);
    }

    /// Calibration snapshots written so far.
    pub fn snapshots_written(&self) -> u64 {
        self.snapshots_written.load(Ordering::Relaxed)
    }

    /// Counts one look at a changed public key file: taken, or refused (the
    /// current keys stay).
    pub fn record_key_reload(&self, loaded: bool) {
        let counter = if loaded { &self.key_reloads_loaded } else { &self.key_reloads_failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Changed public key files that did not load, so far.
    pub fn key_reload_failures(&self) -> u64 {
        self.key_reloads_failed.load(Ordering::Relaxed)
    }

    /// Counts one page served by the HTTP listener, by route and status.
    pub fn record_page(&self, route: &'static str, status: u16) {
        let mut views = self.page_views.write().unwrap_or_else(|p| p.into_inner());
        *views.entry((route, status)).or_insert(0) += 1;
    }

    /// The Prometheus text exposition (format 0.0.4) of everything, with the
    /// database pools as they are now.
    pub fn render(&self, pools: &[PoolStats]) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let methods: Vec<(String, Arc<MethodStats>)> = {
            let m = self.methods.read().unwrap_or_else(|p| p.into_inner());
            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        out.push_str("# HELP scorecard_grpc_requests_total gRPC requests finished, by method and status code.\n");
        out.push_str("# TYPE scorecard_grpc_requests_total counter\n");
        for (method, stats) in &methods {
            for (i, count) in stats.codes.iter().enumerate() {
                let n = count.load(Ordering::Relaxed);
                if n > 0 {
                    let code = format!("{:?}", tonic::Code::from_i32(i as i32));
                    let _ = writeln!(
                        out,
                        "scorecard_grpc_requests_total{{method=\"{}\",code=\"{code}\"}} {n}",
                        escape(method)
                    );
                }
            }
        }
        out.push_str("# HELP scorecard_grpc_request_duration_seconds Time from request to response headers.\n");
        out.push_str("# TYPE scorecard_grpc_request_duration_seconds histogram\n");
        for (method, stats) in &methods {
            let labels = format!("method=\"{}\"", escape(method));
            stats.latency.write(&mut out, "scorecard_grpc_request_duration_seconds", &labels);
        }
        out.push_str("# HELP scorecard_calibration_full_fit_seconds Full (warm-started) fits of an organisation.\n");
        out.push_str("# TYPE scorecard_calibration_full_fit_seconds histogram\n");
        self.full_fits.write(&mut out, "scorecard_calibration_full_fit_seconds", "");
        out.push_str("# HELP scorecard_calibration_update_seconds Incremental updates after one scorecard.\n");
        out.push_str("# TYPE scorecard_calibration_update_seconds histogram\n");
        self.incremental_updates.write(&mut out, "scorecard_calibration_update_seconds", "");
        out.push_str("# HELP scorecard_calibration_loads_total Organisations loaded from the database.\n");
        out.push_str("# TYPE scorecard_calibration_loads_total counter\n");
        let _ = writeln!(out, "scorecard_calibration_loads_total {}", self.org_loads.load(Ordering::Relaxed));
        out.push_str(
            "# HELP scorecard_calibration_snapshot_restores_total Organisations restored from a calibration snapshot.\n",
        );
        out.push_str("# TYPE scorecard_calibration_snapshot_restores_total counter\n");
        let _ = writeln!(
            out,
            "scorecard_calibration_snapshot_restores_total {}",
            self.snapshot_restores.load(Ordering::Relaxed)
        );
        out.push_str("# HELP scorecard_calibration_snapshots_written_total Calibration snapshots written.\n");
        out.push_str("# TYPE scorecard_calibration_snapshots_written_total counter\n");
        let _ = writeln!(
            out,
            "scorecard_calibration_snapshots_written_total {}",
            self.snapshots_written.load(Ordering::Relaxed)
        );
        out.push_str("# HELP scorecard_calibration_refits_total Background refits swapped in.\n");
        out.push_str("# TYPE scorecard_calibration_refits_total counter\n");
        let _ = writeln!(out, "scorecard_calibration_refits_total {}", self.refits_landed.load(Ordering::Relaxed));
        out.push_str(
            "# HELP scorecard_calibration_refit_replayed_changes_total Changes that arrived during a refit's fit, replayed onto it.\n",
        );
        out.push_str("# TYPE scorecard_calibration_refit_replayed_changes_total counter\n");
        let _ = writeln!(
            out,
            "scorecard_calibration_refit_replayed_changes_total {}",
            self.refit_replayed_changes.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP scorecard_event_feed_polls_total Looks at an organisation's latest event by the feed its streams share.\n",
        );
        out.push_str("# TYPE scorecard_event_feed_polls_total counter\n");
        let _ = writeln!(out, "scorecard_event_feed_polls_total {}", self.event_feed_polls.load(Ordering::Relaxed));
        out.push_str("# HELP scorecard_task_restarts_total Supervised background tasks restarted after a panic.\n");
        out.push_str("# TYPE scorecard_task_restarts_total counter\n");
        for (task, n) in self.task_restarts.read().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "scorecard_task_restarts_total{{task=\"{task}\"}} {n}");
        }
        out.push_str("# HELP scorecard_calibration_last_fit_ratings Ratings in the most recent full fit.\n");
        out.push_str("# TYPE scorecard_calibration_last_fit_ratings gauge\n");
        let _ =
            writeln!(out, "scorecard_calibration_last_fit_ratings {}", self.last_fit_ratings.load(Ordering::Relaxed));
        out.push_str("# HELP scorecard_http_requests_total Pages served by the HTTP listener, by route and status.\n");
        out.push_str("# TYPE scorecard_http_requests_total counter\n");
        for ((route, status), n) in self.page_views.read().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "scorecard_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP scorecard_jwt_key_reloads_total Changed public key files, taken or refused.\n");
        out.push_str("# TYPE scorecard_jwt_key_reloads_total counter\n");
        for (outcome, counter) in [("loaded", &self.key_reloads_loaded), ("failed", &self.key_reloads_failed)] {
            let _ = writeln!(
                out,
                "scorecard_jwt_key_reloads_total{{outcome=\"{outcome}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP scorecard_db_pool_connections Database connections open, by pool and state.\n");
        out.push_str("# TYPE scorecard_db_pool_connections gauge\n");
        for p in pools {
            let _ = writeln!(out, "scorecard_db_pool_connections{{pool=\"{}\",state=\"idle\"}} {}", p.name, p.idle);
            let in_use = p.size.saturating_sub(p.idle);
            let _ = writeln!(out, "scorecard_db_pool_connections{{pool=\"{}\",state=\"in_use\"}} {in_use}", p.name);
        }
        out.push_str("# HELP scorecard_db_pool_max_connections Most connections a pool opens.\n");
        out.push_str("# TYPE scorecard_db_pool_max_connections gauge\n");
        for p in pools {
            let _ = writeln!(out, "scorecard_db_pool_max_connections{{pool=\"{}\"}} {}", p.name, p.max);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_count_everything() {
        let h = Histogram::new(&LATENCY_BUCKETS);
        h.observe(Duration::from_micros(300)); // first bucket
        h.observe(Duration::from_millis(7)); // le 0.01
        h.observe(Duration::from_secs(60)); // beyond every bound: +Inf only
        let mut out = String::new();
        h.write(&mut out, "x", "method=\"m\"");
        assert!(out.contains("x_bucket{method=\"m\",le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{method=\"m\",le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{method=\"m\",le=\"0.01\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{method=\"m\",le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{method=\"m\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{method=\"m\"} 3\n"), "{out}");
        assert!(out.contains("x_sum{method=\"m\"} 60.0073\n"), "{out}");
    }

    #[test]
    fn unknown_methods_do_not_grow_the_label_set() {
        let m = Metrics::new();
        for i in 0..50 {
            m.record_request(
                &format!("/scorecard.v1.X/Made{i}"),
                tonic::Code::Unauthenticated,
                Duration::from_millis(1),
            );
        }
        m.record_request("/scorecard.v1.CalibrationService/GetRanking", tonic::Code::Ok, Duration::from_millis(2));
        m.record_request(
            "/scorecard.v1.CalibrationService/GetRanking",
            tonic::Code::NotFound,
            Duration::from_millis(2),
        );
        let text = m.render(&[PoolStats { name: "main", size: 3, idle: 1, max: 8 }]);
        assert!(
            text.contains("scorecard_grpc_requests_total{method=\"unknown\",code=\"Unauthenticated\"} 50\n"),
            "{text}"
        );
        assert!(text.contains(
            "scorecard_grpc_requests_total{method=\"/scorecard.v1.CalibrationService/GetRanking\",code=\"Ok\"} 1\n"
        ));
        assert!(text.contains(
            "scorecard_grpc_requests_total{method=\"/scorecard.v1.CalibrationService/GetRanking\",code=\"NotFound\"} 1\n"
        ));
        assert_eq!(text.matches("scorecard_grpc_request_duration_seconds_count").count(), 2, "{text}");
        assert!(text.contains("scorecard_db_pool_connections{pool=\"main\",state=\"in_use\"} 2\n"));
        assert!(text.contains("scorecard_db_pool_max_connections{pool=\"main\"} 8\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
