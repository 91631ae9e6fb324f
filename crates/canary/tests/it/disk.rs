//! The state file's disk filling up mid-rollout: the rollout holds (paused),
//! says why, never advances unrecorded, and carries on once there is room.
//! Uses a small tmpfs, so it needs root: ignored by a plain `cargo test`, run
//! by `./test.sh` when it runs as root (CI does), listed as skipped otherwise.

use crate::load::*;
use crate::support::*;
use std::process::Command as Cmd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Cmd::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir)
            .status()
            .ok()?
            .success();
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Cmd::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: mounts a tmpfs"]
async fn a_full_disk_holds_the_rollout_and_says_why() {
    let dir = tempdir();
    let fs = Tmpfs::mount(&dir.path().join("state"))
        .expect("cannot mount a tmpfs: this test needs root (./test.sh runs it only as root)");
    let (stable, canary) = (Upstream::start("stable"), Upstream::start("canary"));
    let state = fs.0.join("s.db").display().to_string();
    let p = serve_proc(&stable, &state, &[]);
    let admin = format!("http://{}", p.admin);
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(p.proxy, 300, Arc::clone(&stop));
    let (code, _, err) = cli(&[
        "deploy",
        "50",
        &canary.url(),
        "--steps",
        "50,100",
        "--bake",
        "3s",
        "--final-watch",
        "3s",
        "--admin",
        &admin,
    ]);
    assert_eq!(code, 0, "{err}");
    let filler = fill(&fs.0);
    let status = || async {
        let (_, out, _) = cli(&["status", "--json", "--admin", &admin]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    // The next save (at most a second away) fails and the rollout holds.
    let held = eventually(20, || async { status().await["state"] == "paused" }).await;
    let s = status().await;
    assert!(held, "{s}");
    // Held for longer than the 3 s bake: nothing advances while it cannot be recorded.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let s = status().await;
    assert_eq!(s["state"], "paused", "{s}");
    assert_eq!(s["share"], 50.0, "never advanced without recording it: {s}");
    assert!(s["error"].as_str().unwrap_or("").contains("state file cannot be written"), "{s}");
    std::fs::remove_file(&filler).unwrap();
    let recovered = eventually(10, || async { status().await["error"].is_null() }).await;
    assert!(recovered, "the error clears once the file can be written");
    let (code, out, err) = cli(&["resume", "--admin", &admin]);
    assert_eq!(code, 0, "{out}{err}");
    // Two steps of a few seconds each, but each also waits for enough clean
    // canary requests (560 for the 1% bar), which a busy machine sends slower.
    let promoted = eventually(40, || async { status().await["state"] == "promoted" }).await;
    stop.store(true, Ordering::Relaxed);
    let tally = load.await.unwrap();
    assert!(promoted, "{}", status().await);
    tally.assert_none_lost("through it all");
    drop(p);
}
