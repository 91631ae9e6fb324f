//! The CLI's client for the admin API: one JSON request, answered with the
//! status code and the JSON body. Finds the API from `--admin`, env
//! `CANARY_ADMIN`, or `http://127.0.0.1:9090`; sends the token from `--token`
//! or env `CANARY_TOKEN`.

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// How long one admin call may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Where the admin API is and how to authenticate.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Base URL, e.g. http://127.0.0.1:9090.
    pub url: String,
    /// The admin token, if any.
    pub token: Option<String>,
}

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot reach the admin API at {url}: {reason} (is `canary serve` running? set --admin or CANARY_ADMIN)"
)]
pub struct Unreachable {
    url: String,
    reason: String,
}

impl Admin {
    /// Sends one request; returns the status and the body as JSON (or as a string).
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), Unreachable> {
        let fail = |reason: String| Unreachable { url: self.url.clone(), reason };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail(e.to_string()))?;
        rt.block_on(async {
            match tokio::time::timeout(TIMEOUT, self.send(method, path, body)).await {
                Ok(r) => r.map_err(fail),
                Err(_) => Err(fail(format!("no answer within {TIMEOUT:?}"))),
            }
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), String> {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let uri = format!("{}{}", self.url.trim_end_matches('/'), path);
        let mut b =
            Request::builder().method(method).uri(&uri).header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = &self.token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let payload = body.map(|v| Bytes::from(v.to_string())).unwrap_or_default();
        let req = b.body(Full::new(payload)).map_err(|e| format!("bad admin URL `{uri}`: {e}"))?;
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        Ok((status, json))
    }
}
