//! What an event in the log says happened: [`EventKind`], one variant per
//! kind canary records, written and read as the snake_case names the event
//! log, `/api/events`, hooks (`CANARY_EVENT`, the webhook's `event`) and the
//! dashboard have always used.
//!
//! A name this build does not know (written by a newer build, or an older one
//! that has since dropped it) is kept as [`EventKind::Other`], never refused:
//! the log is read whole whatever wrote it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Defines [`EventKind`] with its names, so each name is written once.
macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// What happened, as the event log names it.
        #[derive(Debug, Clone)]
        pub enum EventKind {
            $($(#[$doc])* $variant,)*
            /// A name this build does not know, kept as read.
            Other(String),
        }

        impl EventKind {
            /// The name in the log and on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(EventKind::$variant => $name,)*
                    EventKind::Other(name) => name,
                }
            }

            /// The kind named `name`; an unknown name is [`EventKind::Other`].
            pub fn parse(name: &str) -> EventKind {
                match name {
                    $($name => EventKind::$variant,)*
                    other => EventKind::Other(other.to_string()),
                }
            }
        }
    };
}

kinds! {
    // === A rollout's own steps (the state machine's decisions) ===
    /// A rollout started.
    RolloutStarted = "rollout_started",
    /// A step's bake ended with too little traffic to judge.
    Holding = "holding",
    /// A rollout paused for a person.
    Paused = "paused",
    /// A manual plan's step passed and waits for `promote`.
    AwaitingPromote = "awaiting_promote",
    /// A rollout moved to its next step (or further, by hand).
    StepAdvanced = "step_advanced",
    /// A rollout moved back a step, by hand.
    SteppedBack = "stepped_back",
    /// A rollout was resumed.
    Resumed = "resumed",
    /// A rollout's share was set by hand, off its plan.
    Adjusted = "adjusted",
    /// The canary became the new stable.
    Promoted = "promoted",
    /// The canary was pulled back.
    RolledBack = "rolled_back",
    /// A shadow step failed: the canary answered copies differently from
    /// stable beyond noise, or failed them (before the rollback or pause
    /// that follows, which has its own event).
    ShadowFailed = "shadow_failed",
    // === Around a rollout (the controller) ===
    /// Another replica's controller took over.
    LeaderChanged = "leader_changed",
    /// A replica left the fleet's sum: its registration in etcd is gone
    /// (it stopped, or stopped renewing its lease).
    ReplicaDropped = "replica_dropped",
    /// A deploy outside the deployment windows, forced with a reason.
    WindowOverridden = "window_overridden",
    /// The pre-deploy checklist's results.
    Checklist = "checklist",
    // === Routing ===
    /// The first routing state of a new store.
    RoutingInitialised = "routing_initialised",
    /// The state was started again from the config (`--reset-state`).
    StateReset = "state_reset",
    /// The canary's share moved.
    ShareChanged = "share_changed",
    /// The exclude patterns changed.
    ExcludesChanged = "excludes_changed",
    /// The share and the excludes changed together.
    RoutingChanged = "routing_changed",
    /// The upstreams were replaced.
    UpstreamsChanged = "upstreams_changed",
    /// Every request was kept off the canary.
    CanaryBlocked = "canary_blocked",
    /// The canary may take requests again.
    CanaryUnblocked = "canary_unblocked",
    /// A dynamic config file was applied without changing the routing.
    FlagsApplied = "flags_applied",
    // === Feature flags and configuration ===
    /// A flag was set through the API.
    FlagSet = "flag_set",
    /// A flag's API value was removed.
    FlagUnset = "flag_unset",
    /// SIGHUP: the config file was applied.
    ConfigReloaded = "config_reloaded",
    /// SIGHUP: the config file was refused whole.
    ConfigReloadRefused = "config_reload_refused",
    // === After the fact (ops) ===
    /// A hook ran.
    HookOk = "hook_ok",
    /// A hook failed.
    HookFailed = "hook_failed",
    /// An incident record was written.
    IncidentRecorded = "incident_recorded",
    /// An incident record could not be written.
    IncidentFailed = "incident_failed",
    /// An issue was filed for the incident.
    IncidentIssueFiled = "incident_issue_filed",
    /// A release tag was made.
    ReleaseTagged = "release_tagged",
    /// A release tag could not be made.
    ReleaseTagFailed = "release_tag_failed",
    /// A deployment report was written.
    ReportWritten = "report_written",
    /// A deployment report could not be written.
    ReportFailed = "report_failed",
    // === Certificates ===
    /// A listener's certificate pair was reloaded.
    TlsReloaded = "tls_reloaded",
    /// A listener's new pair was refused; the one in service stays.
    TlsReloadFailed = "tls_reload_failed",
    /// The certificate in service has expired.
    TlsCertificateExpired = "tls_certificate_expired",
    /// The upstreams' CA file was reloaded.
    UpstreamCaReloaded = "upstream_ca_reloaded",
    /// The upstreams' new CA file was refused; the CAs in service stay.
    UpstreamCaReloadFailed = "upstream_ca_reload_failed",
}

// Two kinds are the same when their names are: `Other("promoted")` (however
// it was made) is `Promoted`.
impl PartialEq for EventKind {
    fn eq(&self, other: &EventKind) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for EventKind {}

impl std::hash::Hash for EventKind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for EventKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for EventKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<&str> for EventKind {
    fn from(name: &str) -> EventKind {
        EventKind::parse(name)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<EventKind, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(EventKind::parse(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn kinds_are_written_and_read_as_their_names() {
        for k in [EventKind::RolledBack, EventKind::UpstreamCaReloadFailed, EventKind::Checklist] {
            let text = serde_json::to_string(&k).unwrap();
            assert_eq!(text, format!("\"{}\"", k.as_str()));
            assert_eq!(serde_json::from_str::<EventKind>(&text).unwrap(), k);
        }
        assert_eq!(serde_json::to_string(&EventKind::RolledBack).unwrap(), "\"rolled_back\"");
    }

    #[test]
    fn an_unknown_name_is_kept_not_refused() {
        let k: EventKind = serde_json::from_str("\"made_by_a_newer_build\"").unwrap();
        assert_eq!(k, EventKind::Other("made_by_a_newer_build".into()));
        assert_eq!(serde_json::to_string(&k).unwrap(), "\"made_by_a_newer_build\"");
        assert_eq!(EventKind::Other("promoted".into()), EventKind::Promoted);
    }
}
