//! The command line: `canary <command> ...`, parsed by clap into the
//! validated configuration each command runs with.

use crate::config::Overrides;
use crate::demo::service::DemoServiceArgs;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// `canary --version`: the crate's version and the commit it was built from
/// (set by build.rs; "unknown" outside a git checkout).
pub const VERSION: &str = crate::cluster::versions::RELEASE;

/// The exit codes, for `--help` and the man page.
const EXIT_STATUS: &str = "Exit status: 0 done (healthy, go, allowed); 1 failed, or the answer is no \
(unhealthy, no-go, outside a deployment window, a checklist item failed); 2 bad input, nothing \
changed (for health and monitor also: could not tell); 3 refused in the current state; \
4 unauthorized.

The admin API: --admin URL or CANARY_ADMIN (default http://127.0.0.1:9090; https:// is verified \
against the system's roots, or --ca-file FILE / CANARY_CA_FILE); --token TOKEN or CANARY_TOKEN.";

/// canary: put a new version of an HTTP API in front of a slice of users,
/// watch it, and promote it or pull it back.
#[derive(Debug, Parser)]
#[command(name = "canary", version = VERSION, about, long_about = None, after_long_help = EXIT_STATUS)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the traffic-splitting proxy and its admin API.
    Serve(Box<ServeArgs>),
    /// Start a rollout: the canary takes PERCENT of traffic, then the plan's steps.
    Deploy(DeployArgs),
    /// Set the canary's share by hand: a step of the plan moves the rollout there
    /// (the seed's `adjust 25`, `50`, `75`, `100`); any other share, `adjust 0`
    /// included, pauses the plan.
    Adjust {
        /// The share, 0 to 100.
        percent: String,
        /// Move past a failing verdict, or raise a rolled-back canary's share.
        #[arg(long)]
        force: bool,
        /// The admin API to talk to.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Go to the next step now (`--full`: make the canary stable now).
    Promote {
        /// Skip the remaining steps: the canary becomes the new stable.
        #[arg(long)]
        full: bool,
        /// The admin API to talk to.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Stop advancing (rollback checks stay armed).
    Pause {
        /// Why, for the record.
        #[arg(long)]
        reason: Option<String>,
        /// The admin API to talk to.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Continue a paused rollout at its step's share.
    Resume {
        /// The admin API to talk to.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Canary off at once (share 0); after a promotion, the previous stable back.
    Rollback {
        /// Why, for the record.
        #[arg(long)]
        reason: Option<String>,
        /// The admin API to talk to.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Where the rollout stands: state, share, step, time left, verdict.
    Status {
        /// Refresh every 2 seconds until the rollout ends (Ctrl-C to stop).
        #[arg(long)]
        watch: bool,
        /// Print JSON (top-level `state` and `share` are stable for scripts).
        #[arg(long)]
        json: bool,
        /// The admin API to talk to.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// See a whole rollout on this machine in about a minute (`--bad-canary`: a rollback).
    Demo {
        /// Make the canary fail 12% of its requests, to see it rolled back.
        #[arg(long)]
        bad_canary: bool,
    },
    /// Run the demo GamePlaza API (used by `canary demo` and tests).
    DemoService(DemoServiceArgs),
    /// Check a service's health endpoints (exit 0 healthy, 1 unhealthy, 2 unreachable or bad answer).
    // The seed's runbook calls it `health-check`.
    #[command(visible_alias = "health-check")]
    Health {
        /// The service's base URL, e.g. http://127.0.0.1:3000.
        url: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Seconds to wait for each answer.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
        /// Retries for a check that gets no answer.
        #[arg(long, default_value_t = 2)]
        retries: u32,
        /// For an https:// URL: trust the CAs in this PEM file instead of the system's.
        #[arg(long, value_name = "FILE", env = "CANARY_CA_FILE")]
        ca_file: Option<PathBuf>,
    },
    /// Watch metrics for MINUTES and judge them: go (0), no-go (1), could not measure (2).
    // The seed's runbook calls it `monitor-metrics`.
    #[command(visible_alias = "monitor-metrics")]
    Monitor(MonitorArgs),
    /// Recent requests: every failure and a sample of the rest, one line each,
    /// `ERROR` on the failures (`canary logs --since 30m | grep ERROR`).
    Logs(LogsArgs),
    /// What the shadow step's copies found: per route, the fields the
    /// canary answers differently from stable, beyond stable's own noise.
    Diff(DiffArgs),
    /// May a deploy start now (or --at TIME)? Exit 0 allowed, 1 refused, 2 unreadable TIME.
    Window {
        /// An RFC 3339 time, any offset, e.g. 2026-12-01T10:30:00+09:00 [default: now].
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// The config file whose `[windows]` policy applies [default: the seed's rules].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The deployment report of a rollout (default: the latest), markdown or --json;
    /// `--summary`: success indicators across the last rollouts.
    Report {
        /// The rollout's number.
        rollout: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Across rollouts: requests lost, rollbacks, each promotion's p95 and
        /// error rate before and after, and the trend.
        #[arg(long, conflicts_with = "rollout")]
        summary: bool,
        /// How many of the latest rollouts the summary covers.
        #[arg(long, value_name = "N", default_value_t = 10, requires = "summary")]
        last: usize,
        /// The admin API to talk to.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Run the pre-deploy checklist on the server (exit 0 all passed, 1 not).
    Check {
        /// Confirm a manual item, by name (repeatable).
        #[arg(long, value_name = "ITEM")]
        confirm: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The admin API to talk to.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Feature flags: list them, see them for a user, or `set NAME on|off|25%` / `unset NAME`.
    Flags {
        /// Nothing (list), `set NAME VALUE`, or `unset NAME`.
        args: Vec<String>,
        /// Show which flags are on for this user.
        #[arg(long, value_name = "ID")]
        user: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The admin API to talk to.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Past rollouts, newest first.
    History {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The admin API to talk to.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Print a shell completion script, e.g. `canary completions bash > /etc/bash_completion.d/canary`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (`canary man | man -l -`), or one command's (`canary man deploy`).
    Man {
        /// The command whose page to print [default: the main page].
        command: Option<String>,
    },
}

/// The shells `canary completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash (bash-completion).
    Bash,
    /// zsh (compinit).
    Zsh,
    /// fish.
    Fish,
}

/// Where the admin API is, for commands that talk to a running `canary serve`.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// The admin API's URL.
    #[arg(long, value_name = "URL", env = "CANARY_ADMIN", default_value = "http://127.0.0.1:9090")]
    pub admin: String,
    /// The admin token, when `canary serve` requires one.
    #[arg(long, value_name = "TOKEN", env = "CANARY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// For an https:// URL: trust the CAs in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE", env = "CANARY_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

/// `canary deploy <percent> <canary-url>`
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The first share, e.g. 10.
    pub percent: String,
    /// The canary's URL, e.g. http://10.0.0.6:3000.
    pub canary_url: String,
    // Values may start with '-' (`--bake -5m`), so that a bad one is
    // refused naming its flag rather than read as an unknown option.
    /// The plan's shares, e.g. 10,25,50,75,100 [default: the configured plan].
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    pub steps: Option<String>,
    /// Watching time per step, e.g. 10m.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub bake: Option<String>,
    /// Watching time at 100% before the canary becomes stable, e.g. 30m.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub final_watch: Option<String>,
    /// Wait for `canary promote` after every step.
    #[arg(long)]
    pub manual: bool,
    /// A shadow step first, e.g. 10m: copies of requests go to the canary
    /// and its answers are compared with stable's before any user meets it.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub shadow: Option<String>,
    /// Deploy outside the deployment windows (needs --reason; recorded).
    #[arg(long)]
    pub force: bool,
    /// Why the deploy is forced.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Confirm a manual checklist item, by name (repeatable).
    #[arg(long, value_name = "ITEM")]
    pub confirm: Vec<String>,
    /// The admin API to talk to.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// `canary monitor [URL] MINUTES`
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// `[URL] MINUTES`: a service's base URL (else the running canary's own figures) and the minutes to watch.
    #[arg(num_args = 1..=2, required = true, value_name = "[URL] MINUTES")]
    pub args: Vec<String>,
    /// Seconds between samples.
    #[arg(long, default_value_t = 5.0)]
    pub interval: f64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Judge by this config file's `[policy]` [default: without a URL, the running
    /// server's thresholds in force; with a URL, the seed's].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The admin API to talk to (without a URL).
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// `canary diff`
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Only this route (its label, as `status` and `/metrics` show it).
    #[arg(long, value_name = "ROUTE")]
    pub route: Option<String>,
    /// Print the admin API's JSON.
    #[arg(long)]
    pub json: bool,
    /// The admin API to talk to.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// `canary logs`
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Only requests that ended within this long, e.g. 30m, 90s [default: all kept].
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Only one version's: canary or stable.
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// Only a status class or status: 5xx (with failures that got none), 4xx, 503...
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only the failures of a version (the ERROR lines).
    #[arg(long)]
    pub errors: bool,
    /// Only one route label's, as `/api/v2/metrics` names routes.
    #[arg(long, value_name = "ROUTE")]
    pub route: Option<String>,
    /// Only one path's (without its query), as `recent_errors` lists it.
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Only one user's: the user key (header, cookie or client address) as sent.
    #[arg(long, value_name = "ID")]
    pub user: Option<String>,
    /// Only the request with this x-request-id.
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
    /// At most the newest N records.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub limit: usize,
    /// Keep printing requests as they come (Ctrl-C stops).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Print one JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// This replica's records only, not the fleet's.
    #[arg(long)]
    pub node: bool,
    /// The admin API to talk to.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// `canary serve` flags; each overrides the config file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The values that override the file.
    #[command(flatten)]
    pub overrides: Overrides,
}
