//! `canary completions SHELL` and `canary man [COMMAND]`: shell completion
//! scripts and man pages generated from the clap definitions, so they can
//! never describe flags the binary does not have.

use super::{Cli, Shell};
use crate::exit::{Exit, fail};
use clap::CommandFactory;
use std::io::Write;

/// Prints the completion script for `shell`.
pub fn completions(shell: Shell) -> Exit {
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(generator, &mut Cli::command(), "canary", &mut out);
    print("completions", &out)
}

/// Prints the main man page, or the page of one command.
pub fn man(command: Option<&str>) -> Exit {
    let mut root = Cli::command();
    // Building names each command as installed beside the main page:
    // canary-deploy(1), with `canary deploy` in its synopsis.
    root.build();
    let page = match command {
        None => root,
        Some(name) => match root.find_subcommand(name) {
            Some(sub) => sub.clone().version(super::VERSION),
            None => {
                let names: Vec<&str> = root.get_subcommands().map(|c| c.get_name()).collect();
                let why = format!("no command `{name}`; one of: {}", names.join(", "));
                return fail(Exit::BadInput, "man", why);
            }
        },
    };
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(page).render(&mut out) {
        return fail(Exit::Failed, "man", e);
    }
    print("man", &out)
}

/// Writes to stdout; a reader that stops early (`| head`) is not an error.
fn print(cmd: &str, bytes: &[u8]) -> Exit {
    match std::io::stdout().write_all(bytes) {
        Ok(()) => Exit::Done,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Done,
        Err(e) => fail(Exit::Failed, cmd, e),
    }
}
