//! The span exporter's thread: every [`TICK`] it takes the workers' traced
//! entries, makes their spans and sends them to the collector over OTLP/HTTP
//! (protobuf) with `opentelemetry-otlp`, in batches of [`BATCH`], on a
//! runtime of its own. A batch the collector does not take is counted and
//! let go: spans are not worth holding memory for while it is away.

use super::{Counts, Tracing, span};
use opentelemetry::InstrumentationScope;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanExporter as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often the exporter takes the shelves.
const TICK: Duration = Duration::from_millis(200);

/// The most spans one export carries.
const BATCH: usize = 512;

/// How long the collector has to answer an export.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The exporter for the collector at `o.endpoint`, a base URL
/// (`http://collector:4318`) or its full traces URL; an `https://` one is
/// checked against the system's roots, or `o.ca_file`'s.
pub fn build(o: &super::Options) -> Result<SpanExporter, String> {
    let endpoint = o.endpoint.as_str();
    let url = if endpoint.trim_end_matches('/').ends_with("/v1/traces") {
        endpoint.to_string()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    };
    let tls = crate::tls::client::verifying(o.ca_file.as_deref(), "tracing.ca_file")
        .map_err(|e| format!("tracing.ca_file: {e}"))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    let client = opentelemetry_http::hyper::HyperClient::new(connector, TIMEOUT, None);
    let mut exporter = SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(TIMEOUT)
        .build()
        .map_err(|e| format!("tracing.otlp: cannot build the OTLP exporter for {endpoint}: {e}"))?;
    let resource = Resource::builder_empty()
        .with_service_name(o.service.clone())
        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    exporter.set_resource(&resource);
    Ok(exporter)
}

/// Starts the thread; it ends once nothing but it holds the tracing.
pub fn spawn(tracing: Arc<Tracing>, exporter: SpanExporter) -> std::io::Result<std::thread::JoinHandle<()>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new()
        .name("canary-spans".into())
        .spawn(move || rt.block_on(run(&tracing, &exporter)))
}

async fn run(tracing: &Arc<Tracing>, exporter: &SpanExporter) {
    let scope = InstrumentationScope::builder("canary").with_version(env!("CARGO_PKG_VERSION")).build();
    let mut runs = Vec::new();
    loop {
        tokio::time::sleep(TICK).await;
        let last = tracing.closing() || Arc::strong_count(tracing) == 1;
        tracing.shelves.take_all(&mut runs);
        let spans: Vec<_> = runs.iter().flatten().filter_map(|e| span::of(e, &scope)).collect();
        runs.iter_mut().for_each(Vec::clear);
        for batch in spans.chunks(BATCH) {
            send(exporter, batch.to_vec(), &tracing.counts).await;
        }
        if last {
            return;
        }
    }
}

async fn send(exporter: &SpanExporter, batch: Vec<opentelemetry_sdk::trace::SpanData>, counts: &Counts) {
    let n = batch.len() as u64;
    match exporter.export(batch).await {
        Ok(()) => counts.exported.fetch_add(n, Ordering::Relaxed),
        Err(e) => {
            tracing::debug!(error = %e, spans = n, "the OTLP collector did not take a batch of spans");
            counts.failed.fetch_add(n, Ordering::Relaxed)
        }
    };
}
