//! The operating rules' config sections.

use canary_core::event::EventKind;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything the ops worker needs.
#[derive(Debug, Clone, Default)]
pub struct OpsConfig {
    /// Hooks.
    pub hooks: Vec<Hook>,
    /// Where incident records go, and whether to file an issue.
    pub incidents: Incidents,
    /// Who is called, by priority (S20).
    pub contacts: Vec<Contact>,
    /// The release tag, when configured.
    pub release: Option<Release>,
    /// Where reports go.
    pub reports_dir: PathBuf,
    /// The rollout's name, for titles.
    pub rollout_name: String,
    /// The pre-deploy checklist.
    pub checklist: Vec<super::checklist::Item>,
}

/// A command or webhook run on events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// Event kinds (`rolled_back`, `promoted`, `step_advanced`, `holding`,
    /// `paused`, `rollout_started`, ...) or `*` for all.
    #[serde(default = "all_events")]
    pub events: Vec<String>,
    /// A shell command; gets `CANARY_EVENT` and `CANARY_EVENT_JSON` in its environment.
    pub command: Option<String>,
    /// A URL to POST the event to as JSON (with a Slack-compatible `text`).
    pub webhook: Option<String>,
    /// Per attempt, e.g. `5s` (default 10s).
    pub timeout: Option<String>,
    /// Extra attempts after a failure (default 2).
    pub retries: Option<u32>,
}

fn all_events() -> Vec<String> {
    vec!["*".into()]
}

/// A validated hook.
#[derive(Debug, Clone)]
pub struct Hook {
    /// Event kinds it runs on.
    pub events: Vec<String>,
    /// What it runs.
    pub action: HookAction,
    /// Per attempt.
    pub timeout: Duration,
    /// Extra attempts.
    pub retries: u32,
}

/// A hook's action.
#[derive(Debug, Clone)]
pub enum HookAction {
    /// `sh -c COMMAND`.
    Command(String),
    /// POST JSON to a URL.
    Webhook(String),
    /// A program with arguments (no shell), for built-in actions.
    Program(Vec<String>),
}

impl Hook {
    /// Whether it runs on `kind`.
    pub fn wants(&self, kind: &EventKind) -> bool {
        self.events.iter().any(|e| e == "*" || kind == e.as_str())
    }

    /// What it runs, for the record.
    pub fn describe(&self) -> String {
        match &self.action {
            HookAction::Command(c) => format!("command `{c}`"),
            HookAction::Webhook(u) => format!("webhook {u}"),
            HookAction::Program(p) => format!("`{}`", p.join(" ")),
        }
    }
}

impl HookConfig {
    /// Validates; the error names the hook.
    pub fn build(&self, i: usize) -> Result<Hook, String> {
        let at = |e: String| format!("`hooks[{i}]`: {e}");
        let action = match (&self.command, &self.webhook) {
            (Some(c), None) => HookAction::Command(c.clone()),
            (None, Some(u)) => {
                let url = canary_core::upstream::Upstream::parse(u).map_err(at)?;
                // The upstream parser also takes h2c://, which webhooks are not sent over.
                if url.protocol() == canary_core::upstream::Protocol::H2c {
                    return Err(at(format!("webhook `{u}`: write an http:// or https:// URL")));
                }
                HookAction::Webhook(u.clone())
            }
            _ => return Err(at("give exactly one of `command` or `webhook`".into())),
        };
        let timeout = match &self.timeout {
            Some(t) => canary_core::plan::parse_duration_ms(t).map_err(|e| at(e.to_string()))?,
            None => 10_000,
        };
        Ok(Hook {
            events: self.events.clone(),
            action,
            timeout: Duration::from_millis(timeout.max(1)),
            retries: self.retries.unwrap_or(2),
        })
    }
}

/// `[incidents]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incidents {
    /// Folder for the markdown records (default: `incidents` beside the state file).
    #[serde(default)]
    pub dir: PathBuf,
    /// Also run `gh issue create` with the seed's title.
    #[serde(default)]
    pub github: bool,
}

/// `[[contacts]]` (S20).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// e.g. "backend on-call".
    pub role: String,
    /// Who.
    pub person: String,
    /// 1 = called first.
    pub priority: u32,
    /// How to reach them.
    #[serde(default)]
    pub reach: Option<String>,
}

/// `[release]` (S6).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The git repository to tag.
    pub repo: PathBuf,
    /// The tag pattern, strftime-style (default `v2-api-release-%Y%m%d`).
    #[serde(default = "default_pattern")]
    pub pattern: String,
    /// Push the tag.
    #[serde(default)]
    pub push: bool,
    /// The remote to push to (default `origin`).
    #[serde(default = "default_remote")]
    pub remote: String,
    /// The timezone for the date in the tag (default Asia/Seoul).
    #[serde(default)]
    pub timezone: Option<String>,
}

fn default_pattern() -> String {
    "v2-api-release-%Y%m%d".into()
}

fn default_remote() -> String {
    "origin".into()
}

/// `[reports]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reports {
    /// Folder for reports (default: `reports` beside the state file).
    #[serde(default)]
    pub dir: PathBuf,
}

/// A folder as configured, or `default` beside the state file.
pub fn folder(configured: &Path, state: &Path, default: &str) -> PathBuf {
    if configured.as_os_str().is_empty() {
        state.parent().unwrap_or(Path::new(".")).join(default)
    } else {
        configured.to_path_buf()
    }
}
