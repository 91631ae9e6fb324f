//! Deployment windows from the command line: `canary window`, and `deploy`
//! refused outside a window unless forced with a reason.

use crate::support::*;

#[test]
fn window_answers_by_the_seed_rules_or_the_config() {
    let cases = [
        ("2026-12-08T10:30:00+09:00", 0, "best window"),
        ("2026-12-08T01:30:00Z", 0, "best window"), // the same instant in UTC
        ("2026-12-11T15:00:00+09:00", 1, "Friday afternoon"),
        ("2026-12-12T11:00:00+09:00", 1, "weekend"),
        ("2026-12-09T20:00:00+09:00", 1, "evening peak"),
        ("2026-12-10T02:00:00+09:00", 1, "night hours"),
        ("not-a-time", 2, ""),
    ];
    for (at, code, needle) in cases {
        let (got, out, err) = cli(&["window", "--at", at]);
        assert_eq!(got, code, "{at}: {out}{err}");
        assert!(out.contains(needle), "{at}: {out}");
    }
    let (_, out, _) = cli(&["window", "--at", "2026-12-11T15:00:00+09:00"]);
    assert!(out.contains("next allowed: 2026-12-14T14:00:00+09:00"), "{out}");
    // A config with a holiday and another timezone.
    let dir = tempdir();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[windows]\ntimezone = \"Europe/Paris\"\nholidays = [\"2026-12-08\"]\n").unwrap();
    let c = cfg.display().to_string();
    let (code, out, _) = cli(&["window", "--config", &c, "--at", "2026-12-08T10:30:00+01:00"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("public holiday (2026-12-08)") && out.contains("Europe/Paris"), "{out}");
    let (code, out, _) = cli(&["window", "--config", &c, "--at", "2026-12-09T10:30:00+01:00"]);
    assert_eq!(code, 0, "{out}");
    std::fs::write(&cfg, "[windows]\ntimezone = \"Nowhere/Land\"\n").unwrap();
    let (code, _, err) = cli(&["window", "--config", &c]);
    assert_eq!(code, 2);
    assert!(err.contains("windows.timezone"), "{err}");
}

#[test]
fn korean_public_holidays_are_built_in_and_named() {
    let (code, out, _) = cli(&["window", "--at", "2026-09-25T10:30:00+09:00"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused: public holiday: Chuseok (추석), 2026-09-25"), "{out}");
    // Chuseok runs Thursday to Saturday; Monday morning is no window, its afternoon is.
    assert!(out.contains("next allowed: 2026-09-28T14:00:00+09:00"), "{out}");
    let (code, out, _) = cli(&["window", "--at", "2026-09-29T10:30:00+09:00"]);
    assert_eq!(code, 0, "the Tuesday after: {out}");
    assert!(out.contains("best window") && !out.contains("note:"), "{out}");
    let (code, out, _) = cli(&["window", "--json", "--at", "2026-10-05T14:30:00+09:00"]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let name = "Substitute holiday for National Foundation Day (개천절 대체공휴일)";
    assert_eq!(v["holiday"], serde_json::json!({"date": "2026-10-05", "name": name}));
    assert_eq!(v["rule"], format!("public holiday: {name}, 2026-10-05"));
    assert_eq!((v["allowed"].as_bool(), v["timezone"].as_str()), (Some(false), Some("Asia/Seoul")));
    assert_eq!(v["next_allowed"]["at"], "2026-10-06T10:00:00+09:00[Asia/Seoul]");
    assert_eq!((v["builtin_holidays"].as_str(), v["note"].is_null()), (Some("kr"), true));
    // A year the table does not know is said, not passed off as free of holidays.
    let (code, out, _) = cli(&["window", "--at", "2031-01-07T10:30:00+09:00"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("note: built-in Korean public holidays cover 2025-2030; 2031 is not covered"),
        "{out}"
    );
}

#[test]
fn builtin_holidays_none_allows_a_holiday_inside_an_allowed_span() {
    let dir = tempdir();
    let cfg = dir.path().join("c.toml");
    let c = cfg.display().to_string();
    // The day before Chuseok 2026 is a Thursday: 10:30 is the best window on any other week.
    let at = "2026-09-24T10:30:00+09:00";
    std::fs::write(&cfg, "[windows]\nholidays = [\"2026-12-08\"]\n").unwrap();
    let (code, out, _) = cli(&["window", "--config", &c, "--at", at]);
    assert_eq!(code, 1, "built in by default beside the config's own days: {out}");
    assert!(out.contains("Chuseok, the day before (추석 전날)"), "{out}");
    std::fs::write(&cfg, "[windows]\nbuiltin_holidays = \"none\"\nholidays = [\"2026-12-08\"]\n").unwrap();
    let (code, out, _) = cli(&["window", "--config", &c, "--at", at]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("allowed: best window"), "{out}");
    let (code, out, _) = cli(&["window", "--config", &c, "--at", "2026-12-08T10:30:00+09:00"]);
    assert_eq!(code, 1, "the config's own day still counts: {out}");
    std::fs::write(&cfg, "[windows]\nbuiltin_holidays = \"us\"\n").unwrap();
    let (code, _, err) = cli(&["window", "--config", &c]);
    assert_eq!(code, 2);
    assert!(err.contains("windows.builtin_holidays") && err.contains("\"none\""), "{err}");
}

#[test]
fn deploy_outside_a_window_is_refused_unless_forced_with_a_reason() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[windows]\nenabled = true\n[[windows.freeze]]\nfrom = \"2000-01-01\"\nto = \"2999-12-31\"\nreason = \"release freeze\"\n").unwrap();
    let (c, state) = (cfg.display().to_string(), arg(dir.path(), "s.db"));
    let p = serve_proc(&stable, &state, &["--config", &c]);
    let admin = format!("http://{}", p.admin);
    let (code, _, err) = cli(&["deploy", "10", &canary.url(), "--admin", &admin]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("freeze: release freeze") && err.contains("--force --reason"), "{err}");
    let (code, _, err) = cli(&["deploy", "10", &canary.url(), "--admin", &admin, "--force"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--reason"), "{err}");
    let (code, out, _) = cli(&["status", "--json", "--admin", &admin]);
    assert_eq!(code, 0);
    assert!(out.contains("\"state\":\"idle\""), "refusals changed nothing: {out}");
    let (code, out, err) = cli(&[
        "deploy",
        "10",
        &canary.url(),
        "--admin",
        &admin,
        "--force",
        "--reason",
        "hotfix for checkout",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let events = rt.block_on(async { admin_json(&client(), p.admin, "/api/events").await });
    let overridden = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "window_overridden")
        .expect("the override is recorded");
    assert_eq!(overridden["detail"]["reason"], "hotfix for checkout");
    assert_eq!(overridden["detail"]["rule"], "freeze: release freeze");
}

#[test]
fn the_checklist_gates_deploy_and_is_kept_in_the_history() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let flag = dir.path().join("migration.ok");
    let cfg = dir.path().join("c.toml");
    let text = format!(
        "[[checklist]]\nname = \"unit tests\"\ncommand = \"true\"\n\n[[checklist]]\nname = \"migration ready\"\ncommand = \"test -f {}\"\ntimeout = \"5s\"\n\n[[checklist]]\nname = \"rollback plan\"\nmanual = true\n",
        flag.display()
    );
    std::fs::write(&cfg, text).unwrap();
    let (c, state) = (cfg.display().to_string(), arg(dir.path(), "s.db"));
    let p = serve_proc(&stable, &state, &["--config", &c]);
    let admin = format!("http://{}", p.admin);
    let (code, out, _) = cli(&["check", "--admin", &admin]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[x] unit tests")
            && out.contains("[ ] migration ready")
            && out.contains("not confirmed"),
        "{out}"
    );
    let (code, _, err) = cli(&["deploy", "10", &canary.url(), "--admin", &admin]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("pre-deploy checklist failed") && err.contains("migration ready"), "{err}");
    std::fs::write(&flag, "").unwrap();
    let (code, out, err) =
        cli(&["deploy", "10", &canary.url(), "--admin", &admin, "--confirm", "rollback plan"]);
    assert_eq!(code, 0, "{out}{err}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let events = rt.block_on(async { admin_json(&client(), p.admin, "/api/events").await });
    let check = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "checklist")
        .expect("the checklist is recorded");
    assert_eq!(check["detail"]["passed"], true);
    assert_eq!(check["detail"]["items"].as_array().unwrap().len(), 3);
}
