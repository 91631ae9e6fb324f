//! The CLI's HTTP client, for `https://` as well as `http://` URLs: the
//! admin API (`--admin https://...`) and the services `canary health` and
//! `canary monitor` poll. Certificates are verified against `--ca-file`
//! (env `CANARY_CA_FILE`) *instead of* the system's roots when it is given,
//! as `curl --cacert` does, else against the system's roots.

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::path::Path;

/// A client for http and https URLs (HTTP/1.1 or h2, as the server picks).
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why no client could be made: the CA file is at fault (bad input).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}; give a PEM file of CA certificates with --ca-file (or CANARY_CA_FILE)")]
pub struct BadCa(pub String);

/// A client for `url`. The roots are read only for an https URL, so plain
/// http never warns about a machine without them.
pub fn client(url: &str, ca_file: Option<&Path>) -> Result<HttpClient, BadCa> {
    let https = url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    let tls = if https || ca_file.is_some() {
        canary_proxy::tls::client::verifying(ca_file, "CA file (--ca-file)")
            .map_err(|e| BadCa(e.to_string()))?
    } else {
        // Never used for an http:// URL; no roots to read.
        canary_proxy::tls::client::verifying_none()
    };
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}
