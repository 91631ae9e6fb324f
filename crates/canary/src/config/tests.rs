use super::*;
use std::io::Write;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn with_stable() -> Overrides {
    Overrides { stable: Some("http://127.0.0.1:3000".into()), ..Overrides::default() }
}

fn load_text(text: &str, cli: &Overrides) -> Result<ServeConfig, ConfigError> {
    let f = file(text);
    load(Some(f.path()), cli)
}

#[test]
fn defaults_follow_the_issue() {
    let c = load(None, &with_stable()).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.admin.to_string(), "127.0.0.1:9090");
    assert_eq!(c.state, PathBuf::from("canary.db"));
    assert_eq!(c.rollout, "v2-api-canary");
    assert_eq!(c.user_key, UserKey::Header(HeaderName::from_static("x-user-id")));
    assert!(c.version_header);
}

#[test]
fn flags_override_the_file() {
    let cli = Overrides { share: Some("25".into()), ..with_stable() };
    let c = load_text("[routing]\nshare = 10\n[upstreams]\nstable = \"http://10.0.0.1:1\"\n", &cli).unwrap();
    assert_eq!(c.share.basis_points(), 2500);
    assert_eq!(c.stable.url(), "http://127.0.0.1:3000");
}

#[test]
fn file_can_say_everything() {
    let text = r#"
rollout = "checkout"
listen = "127.0.0.1:1"
admin = "127.0.0.1:2"
state = "/tmp/x.db"
[upstreams]
stable = "http://127.0.0.1:3000"
canary = "http://127.0.0.1:3001"
[routing]
share = 12.5
exclude = ["/api/admin/*"]
user_cookie = "uid"
version_header = false
[proxy]
connect_timeout_ms = 100
workers = 3
[metrics]
routes = ["/api/v2/rooms/{id}"]
max_routes = 10
"#;
    let c = load_text(text, &Overrides::default()).unwrap();
    assert_eq!((c.rollout.as_str(), c.share.basis_points(), c.proxy.workers), ("checkout", 1250, 3));
    assert_eq!(c.user_key, UserKey::Cookie("uid".into()));
    assert!(c.excludes.matches("/api/admin/x") && !c.version_header);
    assert_eq!(c.canary.unwrap().url(), "http://127.0.0.1:3001");
}

#[test]
fn bad_values_name_file_key_and_reason() {
    let cases = [
        ("[routing]\nshare = 150\n", "`routing.share`", "outside 0..100"),
        ("[routing]\nexclude = [\"/a/[x\"]\n", "`routing.exclude`", "not a valid glob"),
        ("[upstreams]\ncanary = \"not a url\"\n", "`upstreams.canary`", "not a URL"),
        ("[routing]\nsharee = 1\n", "line 2", "unknown field `sharee`"),
        ("listen = \"localhost\"\n", "`listen`", "not an address"),
        ("[proxy]\nworkers = 0\n", "`proxy.workers`", "outside 1..256"),
        ("[routing]\nupgraded_on_rollback = \"drop\"\n", "`routing.upgraded_on_rollback`", "\"close\""),
        ("[proxy]\nupgraded_idle_timeout_ms = 0\n", "`proxy.upgraded_idle_timeout_ms`", "above 0"),
    ];
    for (text, key, reason) in cases {
        let f = file(text);
        let e = load(Some(f.path()), &with_stable()).unwrap_err().to_string();
        assert!(e.starts_with(&f.path().display().to_string()), "{e}");
        assert!(e.contains(key) && e.contains(reason), "{text:?} gave {e}");
    }
}

#[test]
fn bad_flags_name_the_flag() {
    let e = load(None, &Overrides { share: Some("150".into()), ..with_stable() }).unwrap_err();
    assert_eq!((e.origin.as_str(), e.key.as_str()), ("command line", "--share"));
    let e = load(None, &Overrides { stable: Some("ftp://x".into()), ..Overrides::default() }).unwrap_err();
    assert_eq!(e.key, "--stable");
    let e = load(None, &Overrides::default()).unwrap_err();
    assert!(e.reason.contains("stable upstream is required"), "{e}");
}

#[test]
fn plan_policy_and_controls_come_from_the_file() {
    let text = "[plan]\nsteps = [5, 50, 100]\nbake = \"2m\"\nfinal_watch = \"5m\"\nmanual = true\n\
                [policy]\nmax_p95_ms = 300.0\n[controls]\nrollback_after = 3\nmax_hold = \"1h\"\n";
    let c = load_text(text, &with_stable()).unwrap();
    assert_eq!(c.plan.steps.iter().map(|s| s.percent()).collect::<Vec<_>>(), [5.0, 50.0, 100.0]);
    assert_eq!((c.plan.bake_ms, c.plan.final_watch_ms, c.plan.manual), (120_000, 300_000, true));
    assert_eq!(
        (c.policy.max_p95_ms, c.policy.max_error_rate),
        (300.0, 1.0),
        "unset keys keep the seed's values"
    );
    assert_eq!((c.controls.rollback_after, c.controls.max_hold_ms), (3, 3_600_000));
}

#[test]
fn bad_plan_and_policy_values_are_refused() {
    let cases = [
        ("[plan]\nsteps = [50, 10, 100]\n", "`plan.steps`"),
        ("[plan]\nbake = \"ten minutes\"\n", "`plan.bake`"),
        ("[policy]\nmax_p95 = 1.0\n", "unknown field `max_p95`"),
        ("[controls]\nmax_hold = \"x\"\n", "`controls.max_hold`"),
        ("[policy]\nalpha_rollback = 0.0\n", "alpha_rollback = 0: must be a probability between 0 and 1"),
        ("[policy]\nalpha_step = 1.5\n", "alpha_step = 1.5"),
        ("[policy]\nrollback_effect = 1.0\n", "rollback_effect = 1: must be above 1"),
    ];
    for (text, needle) in cases {
        let e = load_text(text, &with_stable()).unwrap_err().to_string();
        assert!(e.contains(needle), "{text:?} gave {e}");
    }
}

#[test]
fn the_older_z_keys_are_still_read_as_alphas() {
    let c = load_text("[policy]\nconfidence_z = 1.645\nroute_z = 3.09\n", &with_stable()).unwrap();
    assert!((c.policy.step_alpha() - 0.05).abs() < 1e-3, "{}", c.policy.step_alpha());
    assert!((c.policy.route_alpha() - 0.001).abs() < 1e-4, "{}", c.policy.route_alpha());
    let c = load_text("[policy]\nalpha_step = 0.02\n", &with_stable()).unwrap();
    assert_eq!(c.policy.step_alpha(), 0.02);
}

#[test]
fn an_admin_api_beyond_loopback_needs_a_token() {
    let open = Overrides { admin: Some("0.0.0.0:9090".into()), ..with_stable() };
    let e = load(None, &open).unwrap_err().to_string();
    assert!(e.contains("beyond loopback") && e.contains("--admin-token"), "{e}");
    let guarded = Overrides { admin_token: Some("t".into()), ..open };
    assert_eq!(load(None, &guarded).unwrap().admin_token.as_deref(), Some("t"));
}

#[test]
fn text_is_validated_like_a_file() {
    assert!(load_str("[upstreams]\nstable = \"http://127.0.0.1:1\"\n").is_ok());
    assert!(load_str("[upstreams\n").unwrap_err().to_string().contains("line 1"));
}

#[test]
fn tls_settings_are_read_and_a_half_pair_is_refused() {
    let text = r#"
[upstreams]
stable = "https://api.internal"
ca_file = "/etc/canary/ca.pem"
insecure_skip_verify = false
[tls]
cert = "/etc/canary/tls.crt"
key = "/etc/canary/tls.key"
"#;
    let c = load_text(text, &Overrides::default()).unwrap();
    assert_eq!(c.stable.url(), "https://api.internal");
    assert_eq!(c.upstream_tls.ca_file, Some(PathBuf::from("/etc/canary/ca.pem")));
    assert!(!c.upstream_tls.insecure_skip_verify);
    let tls = c.tls.unwrap();
    assert_eq!(
        (tls.cert, tls.key),
        (PathBuf::from("/etc/canary/tls.crt"), PathBuf::from("/etc/canary/tls.key"))
    );

    let e = load_text("[tls]\ncert = \"/x.crt\"\n", &with_stable()).unwrap_err();
    assert_eq!(e.key, "tls.key", "{e}");
    let cli = Overrides { tls_key: Some("/x.key".into()), ..with_stable() };
    let e = load(None, &cli).unwrap_err();
    assert_eq!((e.origin.as_str(), e.key.as_str()), ("command line", "--tls-cert"), "{e}");
}

#[test]
fn upgraded_connections_close_on_rollback_and_after_an_idle_hour_by_default() {
    let c = load(None, &with_stable()).unwrap();
    assert_eq!(c.upgraded_on_rollback, OnRollback::Close);
    assert_eq!(c.proxy.upgraded_idle_timeout, Duration::from_secs(3600));
    let text = "[routing]\nupgraded_on_rollback = \"keep\"\n[proxy]\nupgraded_idle_timeout_ms = 250\n";
    let c = load_text(text, &with_stable()).unwrap();
    assert_eq!(c.upgraded_on_rollback, OnRollback::Keep);
    assert_eq!(c.proxy.upgraded_idle_timeout, Duration::from_millis(250));
}

#[test]
fn grpc_error_codes_by_number_or_name() {
    let c = load(None, &with_stable()).unwrap();
    assert_eq!(c.grpc_errors, canary_core::grpc_codes::Codes::default());
    let c = load_text("[metrics]\ngrpc_error_codes = [14, \"internal\"]\n", &with_stable()).unwrap();
    assert!(c.grpc_errors.counts(14) && c.grpc_errors.counts(13) && !c.grpc_errors.counts(2));
    let e = load_text("[metrics]\ngrpc_error_codes = [\"SLOW\"]\n", &with_stable()).unwrap_err();
    assert_eq!(e.key, "metrics.grpc_error_codes");
    assert!(e.reason.contains("\"SLOW\" is not a gRPC error code"), "{e}");
}

#[test]
fn h2c_upstreams_are_accepted_and_other_schemes_named() {
    let cli = Overrides { canary: Some("h2c://127.0.0.1:50051".into()), ..with_stable() };
    let c = load(None, &cli).unwrap();
    assert_eq!(c.canary.unwrap().url(), "h2c://127.0.0.1:50051");
    let cli = Overrides { canary: Some("grpc://127.0.0.1:50051".into()), ..with_stable() };
    let e = load(None, &cli).unwrap_err();
    assert_eq!(e.key, "--canary");
    assert!(e.reason.contains("`grpc` is not supported") && e.reason.contains("h2c://"), "{e}");
}
