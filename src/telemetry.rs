//! Logging and traces. Logs: `tracing` to stderr, human-readable or JSON,
//! filtered by `RUST_LOG` (default `info`, with the database driver's
//! per-query logs off). Traces: OpenTelemetry over OTLP/HTTP (protobuf) when
//! the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set,
//! named by `OTEL_SERVICE_NAME` (default `scorecard`); off otherwise. Each RPC
//! is a server span (the auth layer's) continuing the caller's W3C
//! `traceparent`; database and calibration work are its children (spans of
//! target `scorecard::spans`, which exist only while traces are exported).

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Whether spans are exported (so the auth layer continues `traceparent`).
static TRACES: AtomicBool = AtomicBool::new(false);

/// Whether OpenTelemetry traces are being exported.
pub fn traces_enabled() -> bool {
    TRACES.load(Ordering::Relaxed)
}

/// Keeps the trace exporter alive; [`Telemetry::shutdown`] sends what is
/// still queued (call it before the process exits).
#[derive(Default)]
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("scorecard: traces still queued at exit were not all sent: {e}");
        }
    }
}

/// Whether the standard environment asks for OTLP traces: an endpoint is
/// set, and neither `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`.
fn traces_configured() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let endpoint = set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.trim().eq_ignore_ascii_case("none"));
    endpoint && !disabled
}

/// The trace pipeline the environment configures, or why it cannot be built.
fn tracer_provider() -> Result<opentelemetry_sdk::trace::SdkTracerProvider, String> {
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_default();
    if !protocol.is_empty() && protocol != "http/protobuf" {
        return Err(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported: scorecard exports http/protobuf (a collector's \
             OTLP/HTTP receiver, port 4318)"
        ));
    }
    let exporter =
        opentelemetry_otlp::SpanExporter::builder().with_http().build().map_err(|e| format!("OTLP exporter: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name("scorecard");
    }
    let resource =
        resource.with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))).build();
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Starts logging (and traces, when configured). A second call (tests start
/// several servers) keeps the first subscriber.
pub fn init(format: LogFormat) -> Telemetry {
    let mut problem = None;
    let provider = if traces_configured() {
        match tracer_provider() {
            Ok(provider) => Some(provider),
            Err(e) => {
                problem = Some(e);
                None
            }
        }
    } else {
        None
    };
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    if provider.is_none() {
        // The database and calibration spans are for traces only: without an
        // exporter they are never created.
        filter = filter.add_directive(SPANS_OFF.parse().expect("a valid directive"));
    }
    let logs = match format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let traces =
        provider.as_ref().map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("scorecard")));
    let installed = tracing_subscriber::registry().with(filter).with(logs).with(traces).try_init().is_ok();
    if let Some(problem) = problem {
        tracing::error!("{problem}; traces are off");
    }
    if installed && provider.is_some() {
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        TRACES.store(true, Ordering::Relaxed);
        tracing::info!("exporting OpenTelemetry traces over OTLP/HTTP");
    }
    Telemetry { provider: if installed { provider } else { None } }
}

/// The target of the child spans (`db`, `calibration`), off without traces.
const SPANS_OFF: &str = "scorecard::spans=off";

/// Makes `span` continue the trace of the caller's W3C `traceparent` (and
/// `tracestate`) headers, when traces are on.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !traces_enabled() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    let _ = span.set_parent(parent);
}
