//! The demo: a GamePlaza-style service (`canary demo-service`) and the
//! one-command rollout that shows canary at work (`canary demo`).
//!
//! # Layout
//! - [`service`]: the demo API with fault knobs, on canary-probe.
//! - [`run`]: `canary demo`: two service processes, `canary serve`, a load of
//!   many users, a compressed rollout shown live, and a clean exit.

pub mod run;
pub mod service;
