//! [`RecordError`]: why a record made after the fact (a deployment report, an
//! incident record, the summary) could not be made. It keeps the cause (the
//! state's error, the file system's) as its source; its message is the one
//! the API, the event log and the CLI show.

use crate::store::StoreError;
use std::path::PathBuf;

/// A report, an incident record or the summary that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The state could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The rollout's record was written by a canary this one cannot read.
    #[error("rollout {id} was saved by a canary whose record this one cannot read ({problem})")]
    Unreadable {
        /// The rollout.
        id: i64,
        /// What is wrong with its record.
        problem: String,
    },
    /// The rollout is not in the state.
    #[error("rollout {0} is not in the state file")]
    Missing(i64),
    /// The folder for the records could not be made.
    #[error("cannot create {}: {source}", .path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The record could not be written.
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A message in the event log's `error` field: the text, as before.
impl serde::Serialize for RecordError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a hook's or the release tag's action failed: the program, the
/// webhook or git, with the cause as its source; the message is what the
/// `hook_failed` and `release_tag_failed` events record.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// A command hook with no program.
    #[error("empty command")]
    EmptyCommand,
    /// The program could not be started.
    #[error("cannot run{}: {source}", if *.git { " git" } else { "" })]
    Spawn {
        /// Whether the program was git (the release tag's).
        git: bool,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The command ended with a failure.
    #[error("exited with {status}: {stderr}")]
    Exited {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The start of what it wrote to stderr.
        stderr: String,
    },
    /// git refused.
    #[error("git {args}: {stderr}")]
    Git {
        /// Its arguments.
        args: String,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// The webhook's request could not be made.
    #[error("{0}")]
    Request(#[source] http::Error),
    /// The webhook could not be reached.
    #[error("{0}")]
    Send(#[source] hyper_util::client::legacy::Error),
    /// The webhook answered with a failure.
    #[error("answered {0}")]
    Status(http::StatusCode),
    /// An attempt outlived the hook's timeout.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// Every attempt failed; the last one's error is the source.
    #[error("{hook} failed after {attempts} attempts: {last}")]
    Attempts {
        /// The hook, described.
        hook: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        last: Box<ActionError>,
    },
    /// The release tag's time zone is not known.
    #[error("timezone `{tz}`: {source}")]
    TimeZone {
        /// The zone.
        tz: String,
        /// jiff's error.
        #[source]
        source: jiff::Error,
    },
    /// Every tag name up to `-999` is taken.
    #[error("no free tag name after {0}-999")]
    NoFreeTag(String),
}
