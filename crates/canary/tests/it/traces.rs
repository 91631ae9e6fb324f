//! Traces over OTLP/HTTP from a real `canary serve` to an OTLP receiver in
//! the test (an HTTP server that decodes the protobuf it gets, as a
//! collector does): a request that brings a `traceparent` is exported as a
//! child of the client's span, in the client's trace, with the version that
//! served it; one that brings none is given a trace, which the upstream is
//! sent and the exported span carries.

use crate::support::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An OTLP/HTTP receiver: every span posted to `/v1/traces`, decoded.
struct Receiver {
    addr: std::net::SocketAddr,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        Receiver::start_with(None).await
    }

    /// A receiver that speaks TLS only, with `tls`'s certificate.
    async fn start_tls(tls: Arc<rustls::ServerConfig>) -> Receiver {
        Receiver::start_with(Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&spans);
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let (kept, tls) = (Arc::clone(&kept), tls.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let kept = Arc::clone(&kept);
                        async move {
                            assert_eq!(req.uri().path(), "/v1/traces");
                            assert_eq!(req.headers()["content-type"], "application/x-protobuf");
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let export =
                                ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                            for rs in export.resource_spans {
                                for ss in rs.scope_spans {
                                    kept.lock().unwrap().extend(ss.spans);
                                }
                            }
                            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = match tls {
                        Some(tls) => match tls.accept(sock).await {
                            Ok(s) => http.serve_connection(hyper_util::rt::TokioIo::new(s), svc).await,
                            Err(_) => return,
                        },
                        None => http.serve_connection(hyper_util::rt::TokioIo::new(sock), svc).await,
                    };
                });
            }
        });
        Receiver { addr, spans }
    }

    /// The span of trace `trace_id`, once it came (within 15 s).
    async fn span_of(&self, trace_id: &[u8]) -> Span {
        let find = || self.spans.lock().unwrap().iter().find(|s| s.trace_id == trace_id).cloned();
        for _ in 0..150 {
            if let Some(s) = find() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no span of trace {trace_id:02x?} came; got {:?}", self.spans.lock().unwrap().len());
    }
}

fn attr(s: &Span, key: &str) -> Option<Value> {
    s.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()).and_then(|v| v.value)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_is_a_span_in_the_clients_trace_with_the_version_that_served_it() {
    let receiver = Receiver::start().await;
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let cfg = dir.path().join("canary.toml");
    std::fs::write(&cfg, format!("[tracing]\notlp = \"http://{}\"\nratio = 1.0\n", receiver.addr)).unwrap();
    let (cfg, state, canary_url) = (cfg.display().to_string(), arg(dir.path(), "state.db"), canary.url());
    let p = serve_proc(&stable, &state, &["--config", &cfg, "--canary", &canary_url, "--share", "50"]);
    let c = client();

    // The client's trace: passed on unchanged, and the proxy's span is a
    // child of the client's span.
    let (trace, parent) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let traceparent = format!("00-{trace}-{parent}-01");
    let (status, version, body) =
        get(&c, p.proxy, "/headers", &[("traceparent", &traceparent), ("x-user-id", "u1")]).await;
    assert_eq!(status, 200);
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["traceparent"], traceparent, "passed on unchanged");
    let span = receiver.span_of(&hex(trace)).await;
    assert_eq!(span.parent_span_id, hex(parent), "a child of the client's span");
    assert_eq!(span.name, "GET /headers");
    assert_eq!(attr(&span, "canary.version"), Some(Value::StringValue(version.clone())));
    assert_eq!(attr(&span, "http.response.status_code"), Some(Value::IntValue(200)));
    assert_eq!(attr(&span, "canary.reason"), Some(Value::StringValue("bucket".into())));
    assert_eq!(attr(&span, "canary.fallback"), Some(Value::BoolValue(false)));
    let upstream = if version == "canary" { canary.url() } else { stable.url() };
    assert_eq!(attr(&span, "canary.upstream"), Some(Value::StringValue(upstream)));
    assert!(span.end_time_unix_nano > span.start_time_unix_nano);

    // No traceparent: the request is given a trace, which the upstream is
    // sent with the proxy's span as the parent.
    let (_, _, body) = get(&c, p.proxy, "/headers", &[("x-user-id", "u2")]).await;
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    let made = seen["traceparent"].as_str().expect("the upstream is sent a traceparent");
    let parts: Vec<&str> = made.split('-').collect();
    assert_eq!((parts.len(), parts[0], parts[3]), (4, "00", "01"), "{made}");
    let span = receiver.span_of(&hex(parts[1])).await;
    assert_eq!(span.span_id, hex(parts[2]), "the upstream's parent is the proxy's span");
    assert!(span.parent_span_id.is_empty(), "a root span");

    let exported = |m: &str| -> u64 {
        let line =
            m.lines().find(|l| l.starts_with("canary_trace_spans_total{outcome=\"exported\"}")).unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let (_, _, metrics) = get(&c, p.admin, "/metrics", &[]).await;
    assert!(exported(&metrics) >= 2, "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_reach_an_https_collector_whose_certificate_the_configured_ca_signed() {
    let ca = TestCa::new("collector-ca");
    let receiver = Receiver::start_tls(ca.leaf("localhost").server_config()).await;
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let cfg = dir.path().join("canary.toml");
    let port = receiver.addr.port();
    let toml = format!(
        "[tracing]\notlp = \"https://localhost:{port}\"\nca_file = \"{}\"\nratio = 1.0\n",
        ca_file.display()
    );
    std::fs::write(&cfg, toml).unwrap();
    let (cfg, state) = (cfg.display().to_string(), arg(dir.path(), "state.db"));
    let p = serve_proc(&stable, &state, &["--config", &cfg]);
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let traceparent = format!("00-{trace}-b7ad6b7169203331-01");
    let (status, _, _) = get(&client(), p.proxy, "/", &[("traceparent", &traceparent)]).await;
    assert_eq!(status, 200);
    let span = receiver.span_of(&hex(trace)).await;
    assert_eq!(attr(&span, "canary.version"), Some(Value::StringValue("stable".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_collector_with_an_untrusted_certificate_gets_no_span_and_the_loss_is_counted() {
    // The collector's certificate is signed by a CA canary was not told of:
    // nothing is sent in clear instead, and the failed export is counted.
    let receiver = Receiver::start_tls(TestCa::new("unknown-ca").leaf("localhost").server_config()).await;
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let cfg = dir.path().join("canary.toml");
    let toml = format!("[tracing]\notlp = \"https://localhost:{}\"\nratio = 1.0\n", receiver.addr.port());
    std::fs::write(&cfg, toml).unwrap();
    let (cfg, state) = (cfg.display().to_string(), arg(dir.path(), "state.db"));
    let p = serve_proc(&stable, &state, &["--config", &cfg]);
    let c = client();
    assert_eq!(get(&c, p.proxy, "/", &[]).await.0, 200);
    let failed = eventually(15, || async {
        let (_, _, m) = get(&c, p.admin, "/metrics", &[]).await;
        m.lines().any(|l| l.starts_with("canary_trace_spans_total{outcome=\"failed\"}") && !l.ends_with(" 0"))
    })
    .await;
    assert!(failed, "the failed export is counted");
    assert!(receiver.spans.lock().unwrap().is_empty(), "no span got through");
}
