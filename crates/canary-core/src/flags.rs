//! Feature flags (S15, S16): on, off, or on for a percentage of users, with
//! paths excluded; evaluated per user with the same sticky bucket as the
//! router, so a user keeps the same answer as a flag's percentage rises.
//!
//! Sources: `FEATURE_FLAG_*` environment variables (`FEATURE_FLAG_NEW_RESERVATION_FLOW=true`
//! is the flag `new-reservation-flow`; values true/false/on/off/1/0 or a
//! percentage such as `25%`), and the dynamic JSON file's entries in the
//! seed's shape (`{"name": {"enabled": true, "percentage": 30, "excludePatterns": [...]}}`).

use crate::bucket::bucket_of;
use crate::exclude::Excludes;
use crate::share::Share;
use serde::Deserialize;

/// One flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    /// Its name, e.g. `new-reservation-flow`.
    pub name: String,
    /// Off for everyone when false.
    pub enabled: bool,
    /// The share of users it is on for (100% = everyone).
    pub percentage: Share,
    /// Paths it is always off on.
    pub excludes: Excludes,
    /// Where it came from: `env`, `file`, `api`.
    pub source: &'static str,
}

impl Flag {
    /// Whether the flag is on for `user` (on `path`, if given).
    pub fn on_for(&self, user: &str, path: Option<&str>) -> bool {
        if !self.enabled || path.is_some_and(|p| self.excludes.matches(p)) {
            return false;
        }
        self.percentage == Share::FULL
            || bucket_of(&self.name, user.as_bytes()) < self.percentage.basis_points()
    }
}

/// Reads `FEATURE_FLAG_*` pairs; the error names the variable.
pub fn from_env<'a>(vars: impl Iterator<Item = (&'a str, &'a str)>) -> Result<Vec<Flag>, String> {
    let mut out = Vec::new();
    for (k, v) in vars {
        let Some(rest) = k.strip_prefix("FEATURE_FLAG_") else { continue };
        let name = rest.to_ascii_lowercase().replace('_', "-");
        let (enabled, percentage) = parse_value(v).map_err(|e| format!("{k}={v}: {e}"))?;
        out.push(Flag { name, enabled, percentage, excludes: Excludes::none(), source: "env" });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Parses `true`, `off`, `1`, `25%`...
pub fn parse_value(v: &str) -> Result<(bool, Share), String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "1" | "yes" => Ok((true, Share::FULL)),
        "false" | "off" | "0" | "no" => Ok((false, Share::FULL)),
        p if p.ends_with('%') => p.parse::<Share>().map(|s| (true, s)).map_err(|e| e.to_string()),
        _ => Err("use true/false, on/off, 1/0, or a percentage such as 25%".into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Entry {
    enabled: bool,
    #[serde(default = "full")]
    percentage: Share,
    #[serde(default)]
    exclude_patterns: Vec<String>,
}

fn full() -> Share {
    Share::FULL
}

/// The flags in a dynamic config file: every top-level entry but `rollout`'s.
pub fn from_file(text: &str, rollout: &str) -> Result<Vec<Flag>, String> {
    let doc: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
    let mut out = Vec::new();
    for (name, v) in doc.iter().filter(|(k, _)| k.as_str() != rollout) {
        let e = Entry::deserialize(v).map_err(|err| format!("flag `{name}`: {err}"))?;
        let excludes = Excludes::new(&e.exclude_patterns).map_err(|err| format!("flag `{name}`: {err}"))?;
        out.push(Flag {
            name: name.clone(),
            enabled: e.enabled,
            percentage: e.percentage,
            excludes,
            source: "file",
        });
    }
    Ok(out)
}

/// Merges sources, later ones winning per name.
pub fn merge(layers: &[&[Flag]]) -> Vec<Flag> {
    let mut out: Vec<Flag> = Vec::new();
    for f in layers.iter().flat_map(|l| l.iter()) {
        match out.iter_mut().find(|o| o.name == f.name) {
            Some(o) => *o = f.clone(),
            None => out.push(f.clone()),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_flags_are_named_and_parsed() {
        let vars = [
            ("FEATURE_FLAG_V2_API", "true"),
            ("FEATURE_FLAG_NEW_RESERVATION_FLOW", "25%"),
            ("HOME", "/root"),
            ("FEATURE_FLAG_ENHANCED_MONITORING", "off"),
        ];
        let f = from_env(vars.iter().copied()).unwrap();
        let names: Vec<&str> = f.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["enhanced-monitoring", "new-reservation-flow", "v2-api"]);
        assert!(!f[0].enabled && f[1].percentage.basis_points() == 2500 && f[2].on_for("anyone", None));
        assert!(
            from_env([("FEATURE_FLAG_X", "maybe")].iter().copied())
                .unwrap_err()
                .contains("FEATURE_FLAG_X=maybe")
        );
    }

    #[test]
    fn percentages_are_sticky_and_excludes_win() {
        let text = r#"{"v2-api-canary": {"enabled": true, "percentage": 10},
                       "new-flow": {"enabled": true, "percentage": 30, "excludePatterns": ["/api/admin/*"]}}"#;
        let f = &from_file(text, "v2-api-canary").unwrap()[0];
        let on = (0..10_000).filter(|i| f.on_for(&format!("u{i}"), None)).count();
        assert!((2_700..3_300).contains(&on), "{on}");
        let user = (0..).map(|i| format!("u{i}")).find(|u| f.on_for(u, None)).unwrap();
        assert!(!f.on_for(&user, Some("/api/admin/x")), "excluded path");
        let mut wider = f.clone();
        wider.percentage = Share::from_percent(60.0).unwrap();
        assert!(wider.on_for(&user, None), "raising the percentage keeps the users it had");
    }

    #[test]
    fn later_sources_win() {
        let env = from_env([("FEATURE_FLAG_A", "on")].iter().copied()).unwrap();
        let file = from_file(r#"{"a": {"enabled": false}}"#, "r").unwrap();
        let m = merge(&[&env, &file]);
        assert_eq!((m.len(), m[0].enabled, m[0].source), (1, false, "file"));
    }
}
