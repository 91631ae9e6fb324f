//! The command line's contract: every refusal exits with its documented code
//! and says which input is wrong, on stderr.

use crate::support::*;

#[test]
fn every_bad_input_exits_2_and_names_the_input() {
    let (closed, _reserved) = reserved();
    let admin = format!("http://{closed}");
    let cases: [(&[&str], &str); 7] = [
        (&["monitor", "soon"], "`soon` is not a number"),
        (&["monitor", "http://127.0.0.1:1", "0"], "minutes `0`"),
        (&["monitor", "1", "--interval", "0"], "--interval 0"),
        (&["health", "http://127.0.0.1:1", "--timeout", "0"], "--timeout 0"),
        (&["adjust", "150", "--admin", &admin], "150"),
        (&["flags", "frobnicate", "--admin", &admin], "`frobnicate`"),
        (&["demo-service", "--error-rate", "200"], "--error-rate 200"),
    ];
    for (args, needle) in cases {
        let (code, out, err) = cli(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(needle), "{args:?}: stderr lacks {needle:?}: {err}");
    }
}

#[test]
fn an_unreachable_admin_api_exits_1_and_says_where_it_looked() {
    let (closed, _reserved) = reserved();
    let admin = format!("http://{closed}");
    for args in [["status", "--admin", &admin], ["history", "--admin", &admin]] {
        let (code, _, err) = cli(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("cannot reach the admin API") && err.contains(&admin), "{args:?}: {err}");
    }
}

/// A one-shot admin API: answers the first request with `status` and `body`,
/// and hands back the request it got (head and body).
fn one_answer(status: &'static str, body: &'static str) -> (String, std::thread::JoinHandle<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // Read the head, then as many body bytes as it announces.
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got).to_string();
        let head_len = text.find("\r\n\r\n").unwrap() + 4;
        let len: usize = text
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while got.len() < head_len + len {
            let n = s.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        let reply = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(reply.as_bytes()).unwrap();
        String::from_utf8_lossy(&got).to_string()
    });
    (url, handle)
}

#[test]
fn adjust_force_sends_force_and_a_409_is_exit_3_with_the_servers_message() {
    let (admin, seen) = one_answer(
        "409 Conflict",
        r#"{"error":"conflict","message":"the canary was rolled back: use --force"}"#,
    );
    let (code, _, err) = cli(&["adjust", "30", "--force", "--admin", &admin]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("the canary was rolled back: use --force"), "{err}");
    let request = seen.join().unwrap();
    assert!(request.starts_with("POST /api/rollout/adjust "), "{request}");
    let body: serde_json::Value = serde_json::from_str(request.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body, serde_json::json!({"share": 30.0, "force": true}));

    // Without --force the body is the one every server takes.
    let (admin, seen) = one_answer("409 Conflict", r#"{"message":"no canary configured"}"#);
    let (code, _, err) = cli(&["adjust", "30", "--admin", &admin]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no canary configured"), "{err}");
    let request = seen.join().unwrap();
    let body: serde_json::Value = serde_json::from_str(request.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body, serde_json::json!({"share": 30.0}));
}

#[test]
fn completions_for_each_shell_name_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = cli(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for name in ["deploy", "rollback", "monitor", "health-check", "admin"] {
            assert!(out.contains(name), "{shell} completions lack {name}");
        }
    }
    let (code, _, err) = cli(&["completions", "ksh"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ksh") && err.contains("bash, zsh, fish"), "{err}");
}

#[test]
fn the_man_pages_come_from_the_definitions() {
    let (code, out, err) = cli(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(".ie") && out.contains(".TH canary 1"), "{out}");
    assert!(out.contains("canary\\-deploy(1)") && out.contains("Exit status: 0 done"), "{out}");
    let (code, out, _) = cli(&["man", "deploy"]);
    assert_eq!(code, 0);
    assert!(out.contains(".TH canary-deploy 1") && out.contains("\\-\\-final\\-watch"), "{out}");
    let (code, _, err) = cli(&["man", "deplo"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no command `deplo`") && err.contains("deploy"), "{err}");
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let (code, out, _) = cli(&["--version"]);
    assert_eq!(code, 0);
    // "canary 0.1.0 (1a2b3c4)", or "(unknown)" when built outside a git checkout.
    let commit = out
        .trim()
        .strip_prefix(&format!("canary {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|r| r.strip_suffix(')'));
    let commit = commit.unwrap_or_else(|| panic!("unexpected version line: {out}"));
    let hex = commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit());
    assert!(hex || commit == "unknown", "{out}");
}
