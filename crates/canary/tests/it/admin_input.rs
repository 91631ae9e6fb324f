//! Bad bodies on every admin endpoint that takes one: malformed JSON, wrong
//! types, missing and unknown fields, unknown values, bodies past the limit,
//! bodies not said to be JSON. Each is refused (400, 413 or 415) in the API's
//! JSON shape, with a message naming the field (or the body) and what to
//! send, and changes nothing: routing, rollout, flags and the event log read
//! the same before and after.

use crate::support::*;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::net::SocketAddr;

/// A request with a raw body and content type; returns status and body.
async fn send(admin: SocketAddr, method: &str, path: &str, ct: Option<&str>, body: &[u8]) -> (u16, String) {
    let mut req = Request::builder().method(method).uri(format!("http://{admin}{path}"));
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    let resp = client().request(req.body(Full::new(Bytes::copy_from_slice(body))).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    (status, String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into())
}

/// Everything a refused call must leave as it was. The rollout is read
/// without what moves by itself (time left, the judge's latest figures).
async fn state(admin: SocketAddr) -> Vec<Value> {
    let r = admin_json(&client(), admin, "/api/rollout").await;
    let ro = &r["rollout"];
    let rollout = json!({
        "state": r["state"], "share": r["share"], "stable": r["stable"], "canary": r["canary"],
        "id": ro["id"], "rollout_canary": ro["canary"], "step": ro["step"], "plan": ro["plan"],
        "reason": ro["reason"], "awaiting_promote": ro["awaiting_promote"], "ended_ms": ro["ended_ms"],
        "thresholds": r["thresholds"],
    });
    let mut all = vec![rollout];
    for path in ["/api/routing", "/api/flags", "/api/events?limit=1000"] {
        all.push(admin_json(&client(), admin, path).await);
    }
    all
}

const JSON: Option<&str> = Some("application/json");

/// One refused call: method, path, content type, body, the status wanted and
/// what its message must contain.
type Case = (&'static str, &'static str, Option<&'static str>, Vec<u8>, u16, Vec<&'static str>);

fn json_cases(canary: &str) -> Vec<Case> {
    let j = |v: Value| v.to_string().into_bytes();
    let raw = |s: &str| s.as_bytes().to_vec();
    let deploy = |extra: Value| {
        let mut b = json!({"share": 10, "canary": canary});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        j(b)
    };
    let (put, post) = ("PUT", "POST");
    let (share, excludes, flag) = ("/api/routing/share", "/api/routing/excludes", "/api/flags/beta");
    let (dep, adjust) = ("/api/rollout/deploy", "/api/rollout/adjust");
    vec![
        (put, share, JSON, raw(r#"{"share": 25"#), 400, vec!["not valid JSON", r#"{"share": 25}"#]),
        (put, share, JSON, j(json!({"share": true})), 400, vec!["share", "a number"]),
        (put, share, JSON, j(json!({"share": 150})), 400, vec!["share", "150"]),
        (put, share, JSON, j(json!({})), 400, vec!["missing field `share`"]),
        (
            put,
            share,
            JSON,
            j(json!({"share": 5, "forse": true})),
            400,
            vec!["unknown field `forse`", "`force`"],
        ),
        (put, share, JSON, j(json!({"share": 5, "force": "yes"})), 400, vec!["force: invalid type: string"]),
        (put, share, JSON, raw("[25]"), 400, vec!["a JSON list", r#"{"share": 25}"#]),
        (put, share, JSON, raw(""), 400, vec!["the body is empty", r#"{"share": 25}"#]),
        (put, share, None, j(json!({"share": 25})), 415, vec!["Content-Type: application/json"]),
        (put, share, Some("text/plain"), j(json!({"share": 25})), 415, vec!["application/json"]),
        (
            put,
            excludes,
            JSON,
            j(json!({"excludes": "/x"})),
            400,
            vec!["excludes: invalid type: string", "a list"],
        ),
        (
            put,
            excludes,
            JSON,
            j(json!({"excludes": ["/a", 1]})),
            400,
            vec!["excludes[1]: invalid type: integer"],
        ),
        (put, excludes, JSON, j(json!({"excludes": ["api/x"]})), 400, vec!["api/x"]),
        (put, excludes, JSON, j(json!({"exclude": ["/x"]})), 400, vec!["unknown field `exclude`"]),
        (post, dep, JSON, j(json!({"share": 10})), 400, vec!["missing field `canary`"]),
        (
            post,
            dep,
            JSON,
            j(json!({"share": "10", "canary": canary})),
            400,
            vec!["share: invalid type: string"],
        ),
        (post, dep, JSON, deploy(json!({"steps": "10,abc"})), 400, vec!["steps", "`abc`"]),
        (post, dep, JSON, deploy(json!({"steps": [10, 100]})), 400, vec!["steps: invalid type: list"]),
        (post, dep, JSON, deploy(json!({"bake": "ten"})), 400, vec!["bake", "`ten`", "10m"]),
        (post, dep, JSON, deploy(json!({"manual": "yes"})), 400, vec!["manual: invalid type: string"]),
        (post, dep, JSON, deploy(json!({"stepz": "10,100"})), 400, vec!["unknown field `stepz`", "`steps`"]),
        (post, dep, JSON, j(json!({"share": 10, "canary": "ftp://x"})), 400, vec!["canary URL", "ftp://x"]),
        (post, dep, JSON, j(json!({"share": 0, "canary": canary})), 400, vec!["share", "above 0"]),
        (post, adjust, JSON, j(json!({"share": "25"})), 400, vec!["share: invalid type: string", "a number"]),
        (post, adjust, JSON, j(json!({"share": 150})), 400, vec!["share", "150"]),
        (post, adjust, JSON, j(json!({"force": true})), 400, vec!["missing field `share`"]),
        (post, adjust, JSON, j(json!({"share": 25, "force": 1})), 400, vec!["force: invalid type: integer"]),
        (post, adjust, JSON, raw("{share: 25}"), 400, vec!["not valid JSON"]),
        (put, flag, JSON, j(json!({"value": true})), 400, vec!["value: invalid type: boolean"]),
        (put, flag, JSON, j(json!({"value": "maybe"})), 400, vec!["value `maybe`"]),
        (put, flag, JSON, j(json!({"valu": "on"})), 400, vec!["unknown field `valu`"]),
        (
            put,
            flag,
            JSON,
            raw(r#"{"value": "on"} {"value": "off"}"#),
            400,
            vec!["not valid JSON", "trailing"],
        ),
        (
            post,
            "/api/rollout/promote",
            JSON,
            j(json!({"full": "yes"})),
            400,
            vec!["full: invalid type: string"],
        ),
        (post, "/api/rollout/promote", JSON, j(json!({"ful": true})), 400, vec!["unknown field `ful`"]),
        (
            post,
            "/api/rollout/pause",
            JSON,
            j(json!({"reason": 5})),
            400,
            vec!["reason: invalid type: integer"],
        ),
        (post, "/api/rollout/pause", JSON, raw(r#"{"reason": "x""#), 400, vec!["not valid JSON"]),
        (
            post,
            "/api/rollout/rollback",
            JSON,
            j(json!({"reason": ["x"]})),
            400,
            vec!["reason: invalid type: list"],
        ),
        (
            post,
            "/api/rollout/rollback",
            Some("text/plain"),
            j(json!({"reason": "x"})),
            415,
            vec!["application/json"],
        ),
        (
            post,
            "/api/checklist/run",
            JSON,
            j(json!({"confirm": "x"})),
            400,
            vec!["confirm: invalid type: string"],
        ),
    ]
}

/// Bodies past the limit: every endpoint, declared or streamed.
fn oversized() -> Vec<Case> {
    let big = format!(r#"{{"reason": "{}"}}"#, "x".repeat(100_000)).into_bytes();
    let paths: [(&str, &str); 9] = [
        ("PUT", "/api/routing/share"),
        ("PUT", "/api/routing/excludes"),
        ("POST", "/api/rollout/deploy"),
        ("POST", "/api/rollout/adjust"),
        ("PUT", "/api/flags/beta"),
        ("POST", "/api/rollout/promote"),
        ("POST", "/api/rollout/pause"),
        ("POST", "/api/rollout/rollback"),
        ("POST", "/api/checklist/run"),
    ];
    let needles = vec!["limit of 65536 bytes", "smaller"];
    paths.iter().map(|&(m, p)| (m, p, JSON, big.clone(), 413, needles.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_body_is_refused_in_json_naming_the_field_and_changes_nothing() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    let (c, a) = (client(), srv.admin_addr);
    // Something to change: a rollout at its first step, a flag, an exclude.
    let deploy = json!({"share": 10, "canary": canary.url(), "bake": "10m"});
    assert_eq!(admin_post(&c, a, "/api/rollout/deploy", deploy).await.0, 200);
    assert_eq!(admin_put(&c, a, "/api/flags/beta", json!({"value": "25%"})).await.0, 200);
    assert_eq!(admin_put(&c, a, "/api/routing/excludes", json!({"excludes": ["/api/admin/*"]})).await.0, 200);
    let before = state(a).await;

    let mut cases = json_cases(&canary.url());
    cases.extend(oversized());
    let login_big = format!("token={}", "x".repeat(100_000)).into_bytes();
    let form = Some("application/x-www-form-urlencoded");
    cases.push(("POST", "/admin/login", form, b"tok=abc".to_vec(), 400, vec!["`token`", "token="]));
    cases.push(("POST", "/admin/login", form, login_big, 413, vec!["limit of 65536 bytes"]));
    // Not bodies, but the same shape: a query axum cannot parse, a method a route does not take.
    cases.push(("GET", "/api/events?limit=abc", None, vec![], 400, vec!["limit", "/api/events"]));
    cases.push(("POST", "/api/routing", JSON, b"{}".to_vec(), 405, vec!["POST", "GET"]));
    for (method, path, ct, body, want, needles) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).to_string();
        let (status, reply) = send(a, method, path, ct, &body).await;
        let what = format!("{method} {path} {ct:?} {shown}");
        assert_eq!(status, want, "{what}: {reply}");
        let v: Value =
            serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {reply}"));
        let (error, message) = (v["error"].as_str(), v["message"].as_str().unwrap_or(""));
        assert!(error.is_some_and(|e| !e.is_empty()), "{what}: no error code: {reply}");
        for n in needles {
            assert!(message.contains(n), "{what}: the message lacks {n:?}: {message}");
        }
    }
    assert_eq!(state(a).await, before, "refused calls changed nothing");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_with_a_bad_plan_is_refused_before_the_checklist_runs() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let ran = dir.path().join("checklist-ran");
    let toml = format!(
        "[[checklist]]\nname = \"marks that it ran\"\ncommand = \"touch {}\"\ntimeout = \"10s\"\n",
        ran.display()
    );
    let srv = start(config_of(stable.url(), None, "0", dir.path(), Some(&toml)));
    let (c, a) = (client(), srv.admin_addr);
    let before = state(a).await;
    for (extra, needle) in [("steps", "10,abc"), ("bake", "ten"), ("final_watch", "-5m")] {
        let body = json!({"share": 10, "canary": canary.url(), extra: needle});
        let (status, reply) = admin_post(&c, a, "/api/rollout/deploy", body).await;
        assert_eq!(status, 400, "{extra}: {reply}");
        assert!(reply["message"].as_str().unwrap().contains(extra), "{extra}: {reply}");
    }
    assert!(!ran.exists(), "the checklist ran for a deploy refused on its plan");
    assert_eq!(state(a).await, before, "refused deploys changed nothing");
    // A good plan runs it, as before.
    let body = json!({"share": 10, "canary": canary.url(), "bake": "10m"});
    assert_eq!(admin_post(&c, a, "/api/rollout/deploy", body).await.0, 200);
    assert!(ran.exists(), "the checklist runs for a good deploy");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_sent_without_a_content_type_is_carried_out_with_its_reason() {
    // As scripts send it (`requests.post(url, data=...)`, `curl -d`'s form
    // type aside): a body with no Content-Type at all was always accepted.
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let srv = start(config(&stable, None, "0", dir.path()));
    let a = srv.admin_addr;
    let deploy = json!({"share": 10, "canary": canary.url(), "bake": "10m"});
    assert_eq!(admin_post(&client(), a, "/api/rollout/deploy", deploy).await.0, 200);
    let (status, reply) = send(a, "POST", "/api/rollout/rollback", None, br#"{"reason": "by script"}"#).await;
    assert_eq!(status, 200, "{reply}");
    let r = admin_json(&client(), a, "/api/rollout").await;
    assert_eq!(r["state"], "rolled_back", "{r}");
    assert!(r["rollout"]["reason"].as_str().unwrap_or_default().contains("by script"), "{r}");
    // And one whose body is not JSON: the rollback still happens (nothing to roll back now, 200).
    let (status, reply) = send(a, "POST", "/api/rollout/rollback", None, b"reason=later").await;
    assert_eq!(status, 200, "{reply}");
    srv.shutdown();
}
