//! The rollout commands not covered elsewhere, against a real `canary serve`
//! process: `pause` with and without a reason, `promote --full`, `status
//! --watch` (it refreshes, and ends with the rollout), `report` of a rollout
//! that does not exist, and `deploy` with garbage `--steps` and `--bake`:
//! each refusal exits non-zero naming the input, and changes nothing.

use crate::support::*;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A canary serve process in front of `stable`, and a runner of client
/// commands against it.
struct Served {
    p: Process,
    admin: String,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start(stable: &Upstream) -> Served {
        let dir = tempdir();
        let p = serve_proc(stable, &arg(dir.path(), "s.db"), &[]);
        let admin = format!("http://{}", p.admin);
        Served { p, admin, _dir: dir }
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        cli(&[args, &["--admin", &self.admin]].concat())
    }

    /// `status --json`.
    fn status(&self) -> serde_json::Value {
        let (code, out, err) = self.run(&["status", "--json"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    }

    /// The event log, as `GET /api/events` answers it.
    fn events(&self) -> serde_json::Value {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(admin_json(&client(), self.p.admin, "/api/events?limit=1000"))
    }
}

#[test]
fn pause_with_and_without_a_reason_records_why_and_resume_continues() {
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let s = Served::start(&stable);
    // Nothing to pause yet: refused in the state it is in.
    let (code, _, err) = s.run(&["pause", "--reason", "too early"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("canary pause") && err.contains("no rollout is in progress"), "{err}");
    let (code, _, err) = s.run(&["deploy", "10", &canary.url(), "--bake", "10m"]);
    assert_eq!(code, 0, "{err}");
    for (args, why) in [
        (&["pause"][..], "no reason given"),
        (&["pause", "--reason", "db migration at 14:00"], "db migration at 14:00"),
    ] {
        let (code, out, err) = s.run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains("state: paused") && out.contains(why), "{args:?}: {out}");
        let st = s.status();
        assert_eq!((st["state"].as_str(), st["share"].as_f64()), (Some("paused"), Some(10.0)), "{st}");
        assert!(st["rollout"]["reason"].as_str().unwrap().contains(why), "{st}");
        let (code, out, err) = s.run(&["resume"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("state: progressing") && out.contains("step 1/5"), "{out}");
    }
    let ev = s.events();
    let reasons: Vec<String> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "paused")
        .map(|e| e["detail"].to_string())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("db migration at 14:00")),
        "the reason is recorded: {reasons:?}"
    );
    assert!(!reasons.iter().any(|r| r.contains("too early")), "the refused pause is not: {reasons:?}");
}

#[test]
fn promote_full_makes_the_canary_stable_at_once() {
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let s = Served::start(&stable);
    let (code, _, err) = s.run(&["deploy", "10", &canary.url(), "--bake", "10m"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = s.run(&["promote", "--full"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("state: promoted"), "{out}");
    let st = s.status();
    assert_eq!(st["state"], "promoted", "{st}");
    assert_eq!(st["stable"].as_str(), Some(canary.url().as_str()), "the canary is the stable now: {st}");
    // Users reach the new stable, the canary's build.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, version, body) = rt.block_on(get(&client(), s.p.proxy, "/api/v2/rooms", &[]));
    assert_eq!((status, version.as_str(), body.as_str()), (200, "stable", "canary"));
    // Nothing is left to promote.
    let (code, _, err) = s.run(&["promote", "--full"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("nothing to promote"), "{err}");
}

/// Reads `child`'s stdout until it holds `frames` screens of `status
/// --watch` (each starts by clearing the terminal), within `secs`.
fn frames(out: &mut impl Read, frames: usize, secs: u64) -> Vec<String> {
    const CLEAR: &str = "\x1b[2J\x1b[H";
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    // A frame is complete once the next one has begun, or the plan line is in it.
    while text.split(CLEAR).filter(|f| f.contains("rollout 1: step")).count() < frames {
        assert!(Instant::now() < deadline, "no {frames} frames within {secs} s: {text:?}");
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "status --watch ended early: {text:?}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    text.split(CLEAR).filter(|f| !f.is_empty()).map(String::from).collect()
}

#[test]
fn status_watch_refreshes_and_ends_with_the_rollout() {
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let s = Served::start(&stable);
    let (code, _, err) = s.run(&["deploy", "10", &canary.url(), "--bake", "10m"]);
    assert_eq!(code, 0, "{err}");
    let mut watch = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["status", "--watch", "--admin", &s.admin])
        .env_remove("CANARY_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = watch.stdout.take().unwrap();
    let got = frames(&mut out, 2, 20);
    for f in &got[..2] {
        assert!(f.contains("state: progressing") && f.contains("step 1/5"), "{f}");
    }
    // Each frame is read afresh: the bake's time left moves on.
    let left = |f: &str| {
        f.lines().find(|l| l.starts_with("rollout 1:")).unwrap().rsplit(", ").next().unwrap().to_string()
    };
    assert_ne!(left(&got[0]), left(&got[1]), "the second frame is a new reading");
    // The rollout ends: the watch shows it and exits by itself.
    let (code, _, err) = s.run(&["rollback", "--reason", "watch test"]);
    assert_eq!(code, 0, "{err}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = watch.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            watch.kill().unwrap();
            panic!("status --watch did not end with the rollout");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("state: rolled_back") && rest.contains("watch test"), "the last frame: {rest}");
}

#[test]
fn report_of_a_rollout_that_does_not_exist_exits_2_and_says_where_to_look() {
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let s = Served::start(&stable);
    // None at all yet, then one that is not the one asked for.
    let (code, out, err) = s.run(&["report"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("canary report") && err.contains("history"), "{err}");
    assert_eq!(s.run(&["deploy", "10", &canary.url(), "--bake", "10m"]).0, 0);
    for (id, needle) in [("99", "no rollout `99`"), ("abc", "`abc` is not a number")] {
        let (code, out, err) = s.run(&["report", id]);
        assert_eq!(code, 2, "report {id}: {out}{err}");
        assert!(out.is_empty(), "report {id}: nothing on stdout: {out}");
        assert!(err.contains(needle), "report {id}: {err}");
    }
    let (code, out, err) = s.run(&["report", "1", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"steps\""), "{out}");
}

#[test]
fn garbage_steps_and_bake_are_refused_naming_the_flag_and_change_nothing() {
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let s = Served::start(&stable);
    let url = canary.url();
    let (before, events) = (s.status(), s.events());
    let cases: [(&str, &str, &str); 9] = [
        ("--steps", "10,abc", "`abc` is not a number"),
        ("--steps", "50,20", "must rise"),
        ("--steps", "0", "last step must be 100"),
        ("--steps", "150", "outside 0..100"),
        ("--bake", "ten", "write a number with a unit"),
        ("--bake", "-5m", "write a number with a unit"),
        ("--bake", "0", "write a number with a unit"),
        ("--final-watch", "soon", "write a number with a unit"),
        ("--final-watch", "-1h", "write a number with a unit"),
    ];
    for (flag, value, needle) in cases {
        let (code, out, err) = s.run(&["deploy", "10", &url, flag, value]);
        assert_eq!(code, 2, "{flag} {value}: {out}{err}");
        assert!(
            err.contains(&format!("canary deploy: {flag} {value}")),
            "{flag} {value}: names the flag: {err}"
        );
        assert!(err.contains(needle), "{flag} {value}: {err}");
    }
    let after = s.status();
    assert_eq!((after["state"].as_str(), after["rollout"].is_null()), (Some("idle"), true), "{after}");
    assert_eq!(before, after, "nothing changed");
    assert_eq!(events, s.events(), "nothing recorded");
}
