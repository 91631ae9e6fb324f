//! A request's span, made from its entry off the request path: named
//! `{method} {route}` and attributed as OpenTelemetry's HTTP semantic
//! conventions say (`http.request.method`, `http.route`,
//! `http.response.status_code`, `url.path`, `client.address`,
//! `error.type`), with canary's own (`canary.version`, `canary.reason`,
//! `canary.fallback`, `canary.upstream`, `canary.request_id`).

use crate::requests::entry::Entry;
use crate::requests::record::is_error;
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use std::time::Duration;

/// `e`'s span, if it is traced.
pub fn of(e: &Entry, scope: &InstrumentationScope) -> Option<SpanData> {
    let t = e.trace.as_ref().filter(|t| t.sampled)?;
    let end = e.time.to_system_time();
    let start = end.checked_sub(Duration::from_micros(e.duration_us)).unwrap_or(end);
    let mut attributes = vec![
        KeyValue::new("http.request.method", e.method.as_str().to_string()),
        KeyValue::new("url.path", e.path().to_string()),
        KeyValue::new("http.route", e.route.to_string()),
        KeyValue::new("client.address", e.client.to_string()),
        KeyValue::new("network.protocol.name", e.protocol.as_str()),
        KeyValue::new("canary.version", e.version.as_str()),
        KeyValue::new("canary.reason", e.reason.as_str()),
        KeyValue::new("canary.fallback", e.fallback),
    ];
    if let Some(s) = e.status {
        attributes.push(KeyValue::new("http.response.status_code", i64::from(s)));
    }
    if let Some(u) = &e.upstream {
        attributes.push(KeyValue::new("canary.upstream", u.to_string()));
    }
    if let Some(c) = e.cause {
        attributes.push(KeyValue::new("error.type", c.as_str()));
    }
    if let Some(id) = &e.request_id {
        attributes
            .push(KeyValue::new("canary.request_id", String::from_utf8_lossy(id.as_bytes()).into_owned()));
    }
    let failed = is_error(e.status, e.cause);
    let status = match (&e.detail, failed) {
        (_, false) => Status::Unset,
        (Some(d), true) => Status::error(d.to_string()),
        (None, true) => Status::error(e.status.map_or_else(String::new, |s| s.to_string())),
    };
    let context = SpanContext::new(
        TraceId::from_bytes(t.trace_id),
        SpanId::from_bytes(t.span_id),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    );
    Some(SpanData {
        span_context: context,
        parent_span_id: t.parent.map_or(SpanId::INVALID, SpanId::from_bytes),
        parent_span_is_remote: t.parent.is_some(),
        span_kind: SpanKind::Server,
        name: format!("{} {}", e.method, e.route).into(),
        start_time: start,
        end_time: end,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    })
}
