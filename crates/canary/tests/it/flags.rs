//! Feature flags end to end: env, file and API sources, per-user answers,
//! persistence across a restart, refusals.

use crate::support::*;

#[test]
fn flags_come_from_env_file_and_api_and_are_answered_per_user() {
    let (stable, dir) = (Upstream::start("stable"), tempdir());
    let file = dir.path().join("flags.json");
    std::fs::write(
        &file,
        r#"{"v2-api-canary": {"enabled": true, "percentage": 0}, "enhanced-monitoring": {"enabled": false}}"#,
    )
    .unwrap();
    let (f, state) = (file.display().to_string(), arg(dir.path(), "s.db"));
    let args = [
        "serve",
        "--stable",
        &stable.url(),
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--state",
        &state,
        "--flags",
        &f,
    ];
    let env = [("FEATURE_FLAG_V2_API", "true"), ("FEATURE_FLAG_NEW_RESERVATION_FLOW", "30%")];
    let p = Process::start_env(&args, &env);
    let admin = format!("http://{}", p.admin);
    let (code, out, _) = cli(&["flags", "--admin", &admin]);
    assert_eq!(code, 0);
    for needle in [
        "enhanced-monitoring",
        "off",
        "from file",
        "new-reservation-flow",
        "on for 30%",
        "v2-api",
        "from env",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
    // Per user: v2-api on for all, the 30% flag for about 30% of users.
    let on = (0..300)
        .filter(|i| {
            let (_, out, _) = cli(&["flags", "--user", &format!("user-{i}"), "--json", "--admin", &admin]);
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["flags"]["v2-api"], true);
            v["flags"]["new-reservation-flow"] == true
        })
        .count();
    assert!((60..=120).contains(&on), "{on} of 300 users");
    let (code, _, err) = cli(&["flags", "set", "enhanced-monitoring", "maybe", "--admin", &admin]);
    assert_eq!(code, 2, "{err}");
    let (code, out, _) = cli(&["flags", "set", "enhanced-monitoring", "on", "--admin", &admin]);
    assert_eq!(code, 0, "{out}");
    drop(p);
    let p = Process::start_env(&args, &env);
    let admin = format!("http://{}", p.admin);
    let (_, out, _) = cli(&["flags", "--user", "anyone", "--json", "--admin", &admin]);
    assert!(out.contains("\"enhanced-monitoring\":true"), "the API's value survives a restart: {out}");
    let (code, _, _) = cli(&["flags", "unset", "enhanced-monitoring", "--admin", &admin]);
    assert_eq!(code, 0);
    let (_, out, _) = cli(&["flags", "--user", "anyone", "--json", "--admin", &admin]);
    assert!(out.contains("\"enhanced-monitoring\":false"), "back to the file's value: {out}");
}

#[test]
fn a_bad_feature_flag_variable_refuses_the_start() {
    let dir = tempdir();
    let state = arg(dir.path(), "s.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["serve", "--stable", "http://127.0.0.1:1", "--state", &state])
        .env("FEATURE_FLAG_NEW_FLOW", "sometimes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FEATURE_FLAG_NEW_FLOW=sometimes"));
    assert!(!dir.path().join("s.db").exists(), "nothing written");
}
