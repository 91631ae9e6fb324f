//! How a command ends, in one type: every command returns an [`Exit`] and
//! `main` turns it into the process's exit status, so a number means the same
//! thing in every command and no refusal goes out without its reason.
//!
//! The numbers are a contract scripts rely on:
//! - 0 done (healthy, go, allowed, all checks passed);
//! - 1 failed (the admin API unreachable or failing, a start that failed), or
//!   the answer is no (unhealthy, no-go, not allowed now, a check failed);
//! - 2 bad input, nothing changed; or `health`/`monitor` could not find out;
//! - 3 refused in the current state;
//! - 4 unauthorized.

use std::fmt::Display;
use std::process::ExitCode;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done; for the commands that answer a question, yes.
    Done,
    /// 1: it could not be done: the admin API unreachable or failing, a server
    /// that could not start, a demo that did not end as it should.
    Failed,
    /// 1: the command ran and the answer is no: unhealthy (`health`), no-go
    /// (`monitor`), not allowed now (`window`), a checklist item failed (`check`).
    No,
    /// 2: bad input (an argument, a flag, a config file); nothing changed.
    BadInput,
    /// 2: `health` or `monitor` could not find out: the service unreachable,
    /// its answer not the expected shape, nothing measured.
    CannotTell,
    /// 3: refused in the current state (e.g. `promote` with nothing to promote).
    Refused,
    /// 4: the admin API wants a token, or another one.
    Unauthorized,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Failed | Exit::No => 1,
            Exit::BadInput | Exit::CannotTell => 2,
            Exit::Refused => 3,
            Exit::Unauthorized => 4,
        }
    }

    /// The exit for an admin API answer that is not a success.
    pub fn of_http(status: u16) -> Exit {
        match status {
            400 | 422 => Exit::BadInput,
            409 => Exit::Refused,
            401 | 403 => Exit::Unauthorized,
            _ => Exit::Failed,
        }
    }

    /// `Done` when `yes`, else `No`: for the commands that answer a question.
    pub fn answer(yes: bool) -> Exit {
        if yes { Exit::Done } else { Exit::No }
    }
}

/// Prints `canary CMD: WHY` on stderr and returns `exit`: the one way a
/// command refuses, so that no non-zero exit is silent.
pub fn fail(exit: Exit, cmd: &str, why: impl Display) -> Exit {
    eprintln!("canary {cmd}: {why}");
    exit
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_numbers_are_the_documented_ones() {
        let codes: Vec<u8> = [
            Exit::Done,
            Exit::Failed,
            Exit::No,
            Exit::BadInput,
            Exit::CannotTell,
            Exit::Refused,
            Exit::Unauthorized,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        assert_eq!(codes, [0, 1, 1, 2, 2, 3, 4]);
    }

    #[test]
    fn admin_api_statuses_map_to_the_rollout_commands_codes() {
        let got: Vec<u8> = [400, 422, 409, 401, 403, 500, 503].map(|s| Exit::of_http(s).code()).to_vec();
        assert_eq!(got, [2, 2, 3, 4, 4, 1, 1]);
    }
}
