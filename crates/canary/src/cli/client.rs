//! The CLI's client for the admin API: one JSON request, answered with the
//! status code and the JSON body. Finds the API from `--admin`, env
//! `CANARY_ADMIN`, or `http://127.0.0.1:9090` (`https://` too, see
//! [`super::tls`]); sends the token from `--token` or env `CANARY_TOKEN`.

use super::AdminArgs;
use crate::exit::{Exit, fail};
use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use std::path::{Path, PathBuf};
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
    /// The CA file an https URL is verified with, instead of the system's roots.
    pub ca_file: Option<PathBuf>,
}

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot reach the admin API at {url}: {reason} (is `canary serve` running? set --admin or CANARY_ADMIN)"
)]
pub struct Unreachable {
    url: String,
    reason: String,
    /// The CA file given is at fault, not the server: bad input.
    bad_ca: bool,
}

impl Unreachable {
    /// The exit this means: bad input for an unusable CA file, else failed.
    pub fn exit(&self) -> Exit {
        if self.bad_ca { Exit::BadInput } else { Exit::Failed }
    }
}

impl Admin {
    /// Sends one request; returns the status and the body as JSON (or as a string).
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), Unreachable> {
        let fail = |reason: String| Unreachable { url: self.url.clone(), reason, bad_ca: false };
        let client = super::tls::client(&self.url, self.ca_file.as_deref()).map_err(|e| Unreachable {
            url: self.url.clone(),
            reason: e.to_string(),
            bad_ca: true,
        })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail(e.to_string()))?;
        rt.block_on(async {
            match tokio::time::timeout(TIMEOUT, self.send(&client, method, path, body)).await {
                Ok(r) => r.map_err(fail),
                Err(_) => Err(fail(format!("no answer within {TIMEOUT:?}"))),
            }
        })
    }

    async fn send(
        &self,
        client: &super::tls::HttpClient,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), String> {
        let uri = format!("{}{}", self.url.trim_end_matches('/'), path);
        let mut b =
            Request::builder().method(method).uri(&uri).header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = &self.token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let payload = body.map(|v| Bytes::from(v.to_string())).unwrap_or_default();
        let req = b.body(Full::new(payload)).map_err(|e| format!("bad admin URL `{uri}`: {e}"))?;
        let resp = client.request(req).await.map_err(|e| describe(&e))?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        Ok((status, json))
    }
}

/// What a plain GET of a URL gave.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The status code.
    pub status: u16,
    /// The body as JSON, or why it is not JSON.
    pub json: Result<serde_json::Value, String>,
}

/// GETs `url` within `timeout`, verifying an https URL against `ca_file`
/// (else the system's roots); the error says why nothing usable came back.
pub async fn fetch(url: &str, timeout: Duration, ca_file: Option<&Path>) -> Result<Fetched, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    let client = super::tls::client(url, ca_file).map_err(|e| e.to_string())?;
    let work = async {
        let resp = client.get(uri).await.map_err(|e| describe(&e))?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        let json = serde_json::from_slice(&bytes).map_err(|e| {
            let head: String = String::from_utf8_lossy(&bytes).chars().take(60).collect();
            format!("the answer is not JSON ({e}): {head:?}")
        });
        Ok(Fetched { status, json })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// A client error in words, with its cause (e.g. "connection refused").
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

impl From<&AdminArgs> for Admin {
    fn from(a: &AdminArgs) -> Admin {
        Admin { url: a.admin.clone(), token: a.token.clone(), ca_file: a.ca_file.clone() }
    }
}

/// Prints the admin API's refusal (its `message`, else the whole body) and
/// returns the exit its HTTP status means.
pub fn refused(cmd: &str, status: u16, v: &serde_json::Value) -> Exit {
    let msg =
        v.get("message").and_then(serde_json::Value::as_str).map_or_else(|| v.to_string(), str::to_string);
    fail(Exit::of_http(status), cmd, format!("refused ({status}): {msg}"))
}

/// The body of a successful call, or the exit after saying why there is none.
pub fn answered(
    cmd: &str,
    call: Result<(u16, serde_json::Value), Unreachable>,
) -> Result<serde_json::Value, Exit> {
    match call {
        Ok((200, v)) => Ok(v),
        Ok((status, v)) => Err(refused(cmd, status, &v)),
        Err(e) => Err(fail(e.exit(), cmd, e)),
    }
}
