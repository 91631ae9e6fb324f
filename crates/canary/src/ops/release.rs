//! The release tag after a promotion (S6): an annotated git tag named from a
//! strftime-style pattern (default `v2-api-release-%Y%m%d`), made unique with
//! `-2`, `-3`... when the name exists, pushed when configured.

use super::config::Release;
use super::error::ActionError;
use canary_core::rollout::Rollout;
use tokio::process::Command;

/// Tags the repository; returns the tag made.
pub async fn tag(rel: &Release, rollout: &Rollout) -> Result<String, ActionError> {
    let tz = rel.timezone.as_deref().unwrap_or(crate::windows::DEFAULT_TZ);
    let now =
        jiff::Timestamp::now().in_tz(tz).map_err(|source| ActionError::TimeZone { tz: tz.into(), source })?;
    let base = now.strftime(&rel.pattern).to_string();
    let name = unique(rel, &base).await?;
    let message = format!("v2 API Production Release: rollout {} promoted {}", rollout.id, rollout.canary);
    git(rel, &["tag", "-a", &name, "-m", &message]).await?;
    if rel.push {
        git(rel, &["push", &rel.remote, &name]).await?;
    }
    Ok(name)
}

async fn unique(rel: &Release, base: &str) -> Result<String, ActionError> {
    for n in 1..1000 {
        let name = if n == 1 { base.to_string() } else { format!("{base}-{n}") };
        if git(rel, &["rev-parse", "-q", "--verify", &format!("refs/tags/{name}")]).await.is_err() {
            return Ok(name);
        }
    }
    Err(ActionError::NoFreeTag(base.to_string()))
}

async fn git(rel: &Release, args: &[&str]) -> Result<String, ActionError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(&rel.repo)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| ActionError::Spawn { git: true, source })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(ActionError::Git { args: args.join(" "), stderr })
    }
}
