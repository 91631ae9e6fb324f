//! The CLI's reader of server-sent events from the admin API (`canary logs
//! --follow`): one GET held open, each event handed on as it arrives.

use super::client::Admin;
use bytes::{Buf, BytesMut};
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};

/// How a followed stream ended.
#[derive(Debug)]
pub enum Ended {
    /// The server closed it.
    Closed,
    /// The server refused the request: its status and JSON body.
    Refused(u16, serde_json::Value),
    /// No connection, or it broke: why.
    Broken(String),
}

/// GETs `path` and hands each event's name and data to `on` as it comes,
/// until the stream ends.
pub fn follow(admin: &Admin, path: &str, mut on: impl FnMut(&str, &str)) -> Ended {
    let client = match super::tls::client(&admin.url, admin.ca_file.as_deref()) {
        Ok(c) => c,
        Err(e) => return Ended::Broken(e.to_string()),
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return Ended::Broken(e.to_string()),
    };
    rt.block_on(async {
        let uri = format!("{}{}", admin.url.trim_end_matches('/'), path);
        let mut b =
            Request::builder().method(Method::GET).uri(&uri).header(header::ACCEPT, "text/event-stream");
        if let Some(t) = &admin.token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match b.body(Full::new(bytes::Bytes::new())) {
            Ok(r) => r,
            Err(e) => return Ended::Broken(format!("bad admin URL `{uri}`: {e}")),
        };
        let resp = match client.request(req).await {
            Ok(r) => r,
            Err(e) => return Ended::Broken(e.to_string()),
        };
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        if status != 200 {
            let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            let v = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
            return Ended::Refused(status, v);
        }
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(data) = f.data_ref() {
                        buf.extend_from_slice(data);
                        drain(&mut buf, &mut on);
                    }
                }
                Err(e) => return Ended::Broken(e.to_string()),
            }
        }
        Ended::Closed
    })
}

/// Hands on every complete event in `buf` (each ends with a blank line).
fn drain(buf: &mut BytesMut, on: &mut impl FnMut(&str, &str)) {
    while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
        let block = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.advance(end + 2);
        let (mut name, mut data) = ("message", Vec::new());
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = v.trim_start();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        // A keep-alive is a comment alone: no data, nothing to hand on.
        if !data.is_empty() {
            on(name, &data.join("\n"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_handed_on_whole_and_comments_skipped() {
        let mut got = Vec::new();
        let mut buf = BytesMut::from(&b"event: record\ndata: {\"a\":1}\n\n:\n\nevent: notice\ndata: x"[..]);
        drain(&mut buf, &mut |n: &str, d: &str| got.push((n.to_string(), d.to_string())));
        assert_eq!(got, vec![("record".to_string(), "{\"a\":1}".to_string())]);
        buf.extend_from_slice(b"\n\n");
        drain(&mut buf, &mut |n: &str, d: &str| got.push((n.to_string(), d.to_string())));
        assert_eq!(got[1], ("notice".to_string(), "x".to_string()));
    }
}
