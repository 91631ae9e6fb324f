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
