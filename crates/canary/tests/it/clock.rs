//! Bakes are measured on the monotonic clock: `canary serve` runs under
//! Debian's libfaketime, whose wall clock the test steps an hour forward
//! during one step and back during the next, as NTP or a person could. Each
//! step still lasts its bake: not ended early, not stretched by the hour.

use crate::load::*;
use crate::support::*;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Each step's bake.
const BAKE: Duration = Duration::from_secs(10);

/// How much shorter than the bake a step may look from outside: the looks
/// are 50 ms apart and each may wait on a busy machine. A jump ahead ended
/// step 1 after about 4 s of a 10 s bake before the controller's clock was
/// monotonic.
const LOOK_SLACK: Duration = Duration::from_secs(2);

/// `canary serve` whose wall clock is offset by what `offset` holds (`+0`, `+1h`, `-1h`).
fn serve_with_offset(stable: &Upstream, dir: &Path, offset: &Path) -> Process {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is needed: apt-get install faketime (./test.sh does)"
    );
    std::fs::write(offset, "+0").unwrap();
    let (url, state, offset) = (stable.url(), arg(dir, "canary.db"), offset.display().to_string());
    // The monotonic clock stays real, as it does when a real wall clock is
    // stepped; the offset file is read again at most once a second.
    let env = [
        ("LD_PRELOAD", LIBFAKETIME),
        ("FAKETIME_TIMESTAMP_FILE", offset.as_str()),
        ("FAKETIME_CACHE_DURATION", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    let args =
        ["serve", "--stable", &url, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--state", &state];
    Process::start_env(&args, &env)
}

/// The rollout's step number, as `/api/rollout` says.
async fn step(p: &Process) -> u64 {
    admin_json(&client(), p.admin, "/api/rollout").await["rollout"]["step"].as_u64().unwrap_or(0)
}

/// Waits for the step to leave `from`. Returns when the last look that still
/// saw it began and when the first look that saw the next one ended: the
/// step ended between the two.
async fn step_ends(p: &Process, from: u64, since: Instant) -> (Instant, Instant) {
    let deadline = since + BAKE + Duration::from_secs(40);
    let mut last_seen = since;
    while Instant::now() < deadline {
        let look = Instant::now();
        if step(p).await != from {
            return (last_seen, Instant::now());
        }
        last_seen = look;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("step {from} still going {:?} after it began: the bake was stretched", since.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_clock_step_of_an_hour_neither_ends_a_bake_early_nor_stretches_it() {
    let (stable, canary, dir) = (Upstream::start("stable"), Upstream::start("canary"), tempdir());
    let offset = dir.path().join("offset");
    let p = serve_with_offset(&stable, dir.path(), &offset);
    let faked = admin_json(&client(), p.admin, "/api/v2/health").await;
    assert!(faked["uptime_seconds"].is_u64(), "{faked}");
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(p.proxy, 300, Arc::clone(&stop));
    let admin = format!("http://{}", p.admin);
    let bake = format!("{}s", BAKE.as_secs());
    let deploy = ["deploy", "50", &canary.url(), "--steps", "50,75,100", "--bake", &bake, "--admin", &admin];
    let (code, out, err) = cli(&deploy);
    // Step 1 began before the deploy answered.
    let deployed = Instant::now();
    assert_eq!(code, 0, "{out}{err}");
    // Step 1: the wall clock jumps an hour ahead a second in.
    tokio::time::sleep(Duration::from_secs(1)).await;
    std::fs::write(&offset, "+1h").unwrap();
    let (first_seen_last, second_began) = step_ends(&p, 1, deployed).await;
    // Step 2: and back an hour, a second in.
    tokio::time::sleep(Duration::from_secs(1)).await;
    std::fs::write(&offset, "+0").unwrap();
    let (second_seen_last, _) = step_ends(&p, 2, second_began).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap().assert_none_lost("load through the clock steps");
    // Not early: each step lasted at least this long (less than it did).
    let first = first_seen_last - deployed;
    let second = second_seen_last - second_began;
    assert!(first + LOOK_SLACK >= BAKE, "step 1 ended after {first:?}, its bake is {BAKE:?}");
    assert!(second + LOOK_SLACK >= BAKE, "step 2 ended after {second:?}, its bake is {BAKE:?}");
    // And the hour back was not waited out (step_ends would have panicked).
    let events = admin_json(&client(), p.admin, "/api/events").await;
    let advanced: Vec<&serde_json::Value> =
        events["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "step_advanced").collect();
    assert_eq!(advanced.len(), 2, "{events}");
    // The clock really was an hour ahead when step 1 ended (newest first).
    let real = canary::store::now().as_i64();
    let ahead = advanced[1]["at_ms"].as_i64().unwrap() - real;
    assert!(ahead > 3_500_000, "the wall clock was not stepped ({ahead} ms ahead): {events}");
}
