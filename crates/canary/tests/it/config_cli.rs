//! `canary serve` refuses bad input at start: exit code 2, with the file, key and reason.

use crate::support::*;

#[test]
fn each_bad_value_is_refused_with_its_reason_and_exit_2() {
    let dir = tempdir();
    let cfg = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let url = cfg("url.toml", "[upstreams]\nstable = \"http//broken\"\n");
    let share = cfg("share.toml", "[upstreams]\nstable = \"http://127.0.0.1:1\"\n[routing]\nshare = 150\n");
    let key = cfg("key.toml", "[upstreams]\nstable = \"http://127.0.0.1:1\"\nbogus = 1\n");
    let glob = cfg(
        "glob.toml",
        "[upstreams]\nstable = \"http://127.0.0.1:1\"\n[routing]\nexclude = [\"/api/[admin\"]\n",
    );
    let tunnels = cfg(
        "tunnels.toml",
        "[upstreams]\nstable = \"http://127.0.0.1:1\"\n[routing]\nupgraded_on_rollback = \"drop\"\n",
    );
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (vec!["--config".into(), url.clone()], vec![&url, "upstreams.stable", "http//broken"]),
        (vec!["--config".into(), tunnels.clone()], vec![&tunnels, "routing.upgraded_on_rollback", "drop"]),
        (vec!["--config".into(), share.clone()], vec![&share, "routing.share", "150 is outside 0..100"]),
        (vec!["--config".into(), key.clone()], vec![&key, "unknown field `bogus`"]),
        (vec!["--config".into(), glob.clone()], vec![&glob, "routing.exclude", "/api/[admin"]),
        (vec!["--stable".into(), "not a url".into()], vec!["--stable", "not a URL"]),
        (
            vec!["--stable".into(), "http://127.0.0.1:1".into(), "--share".into(), "150".into()],
            vec!["--share", "outside 0..100"],
        ),
        (
            vec!["--config".into(), dir.path().join("missing.toml").display().to_string()],
            vec!["missing.toml", "cannot read"],
        ),
    ];
    for (args, needles) in cases {
        let mut full = vec!["serve".to_string()];
        full.extend(args.iter().cloned());
        full.extend(["--state".into(), arg(dir.path(), "never.db")]);
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        let (code, stderr) = run_canary(&refs);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{args:?}: stderr lacks {n:?}: {stderr}");
        }
    }
    assert!(!dir.path().join("never.db").exists(), "a refused start writes no state");
}

#[test]
fn a_bad_dynamic_config_file_is_refused_at_start() {
    let dir = tempdir();
    let flags = dir.path().join("flags.json");
    std::fs::write(&flags, r#"{"v2-api-canary": {"enabled": true, "percentage": 250}}"#).unwrap();
    let f = flags.display().to_string();
    let (code, stderr) = run_canary(&[
        "serve",
        "--stable",
        "http://127.0.0.1:1",
        "--flags",
        &f,
        "--state",
        &arg(dir.path(), "s.db"),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("flags.json") && stderr.contains("outside 0..100"), "{stderr}");
}
