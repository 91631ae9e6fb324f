//! Deployment windows in the shell: the `[windows]` config, the timezone, and
//! the search for the next allowed time. The rules themselves are
//! `canary_core::calendar`; this file turns timestamps into local civil time.

use canary_core::calendar::{Answer, Calendar, Civil, Days, Freeze, Span, parse_time};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, ZonedDateTime as Zoned};
use serde::Deserialize;
use std::path::PathBuf;

/// The seed team's timezone.
pub const DEFAULT_TZ: &str = "Asia/Seoul";

/// The `[windows]` section as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowsConfig {
    /// Enforce windows on `deploy` (default false: `canary window` still answers).
    #[serde(default)]
    pub enabled: bool,
    /// IANA timezone, default Asia/Seoul.
    pub timezone: Option<String>,
    /// Allowed spans (default: the seed's).
    pub allow: Option<Vec<SpanConfig>>,
    /// Refused spans (default: the seed's).
    pub deny: Option<Vec<SpanConfig>>,
    /// Public holidays, `YYYY-MM-DD`.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// A file of holidays, one `YYYY-MM-DD` a line (`#` comments).
    pub holidays_file: Option<PathBuf>,
    /// Freeze periods.
    #[serde(default)]
    pub freeze: Vec<FreezeConfig>,
}

/// One span as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanConfig {
    /// e.g. `Mon-Fri` (default every day).
    pub days: Option<String>,
    /// `HH:MM` (default 00:00).
    pub from: Option<String>,
    /// `HH:MM` (default 24:00).
    pub to: Option<String>,
    /// Shown as the reason.
    pub name: String,
}

/// One freeze as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeConfig {
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, inclusive.
    pub to: String,
    /// Why.
    pub reason: String,
}

/// A validated policy: the calendar and its timezone.
#[derive(Debug, Clone)]
pub struct Windows {
    /// The rules.
    pub calendar: Calendar,
    /// Their timezone.
    pub tz: TimeZone,
    /// The timezone's name.
    pub tz_name: String,
    /// Whether `deploy` enforces them.
    pub enabled: bool,
}

impl Windows {
    /// The seed's rules in Asia/Seoul (not enforced).
    pub fn seed() -> Result<Windows, String> {
        WindowsConfig::default().build()
    }

    /// The answer at `t`.
    pub fn check(&self, t: Timestamp) -> (Answer, Zoned) {
        let z = t.to_zoned_datetime(self.tz.clone());
        (self.calendar.check(&civil(&z)), z)
    }

    /// The first allowed moment after `t` within 60 days (in 5-minute steps,
    /// which every rule's HH:MM boundary falls on... or near enough to say).
    pub fn next_allowed(&self, t: Timestamp) -> Option<(Zoned, String)> {
        let mut z = t.to_zoned_datetime(self.tz.clone());
        // Start at the next whole 5 minutes so the answer reads cleanly.
        let rem = (z.minute() % 5) as i64;
        z = z.checked_add((5 - rem).minutes()).ok()?.with().second(0).subsec_nanosecond(0).build().ok()?;
        for _ in 0..(60 * 24 * 12) {
            if let Answer::Allowed(rule) = self.calendar.check(&civil(&z)) {
                return Some((z, rule));
            }
            z = z.checked_add(5.minutes()).ok()?;
        }
        None
    }
}

fn civil(z: &Zoned) -> Civil {
    Civil {
        date: (z.year(), z.month() as u8, z.day() as u8),
        weekday: z.weekday().to_monday_one_offset() as u8,
        minute: z.hour() as u16 * 60 + z.minute() as u16,
    }
}

impl WindowsConfig {
    /// Validates; the error names the key and what is wrong.
    pub fn build(&self) -> Result<Windows, String> {
        let tz_name = self.timezone.clone().unwrap_or_else(|| DEFAULT_TZ.to_string());
        let tz = TimeZone::get(&tz_name).map_err(|e| format!("`windows.timezone`: `{tz_name}` is not a known timezone ({e}); use an IANA name such as Asia/Seoul"))?;
        let allow = match &self.allow {
            Some(list) => spans(list, "windows.allow")?,
            None => Calendar::seed_allow(),
        };
        let deny = match &self.deny {
            Some(list) => spans(list, "windows.deny")?,
            None => Calendar::seed_deny(),
        };
        let mut holidays =
            self.holidays.iter().map(|d| date(d, "windows.holidays")).collect::<Result<Vec<_>, _>>()?;
        if let Some(path) = &self.holidays_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("`windows.holidays_file`: cannot read {}: {e}", path.display()))?;
            for line in
                text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty())
            {
                holidays.push(date(line, &format!("windows.holidays_file ({})", path.display()))?);
            }
        }
        let freezes = self
            .freeze
            .iter()
            .map(|f| {
                Ok(Freeze {
                    from: date(&f.from, "windows.freeze.from")?,
                    to: date(&f.to, "windows.freeze.to")?,
                    reason: f.reason.clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Windows {
            calendar: Calendar { allow, deny, holidays, freezes },
            tz,
            tz_name,
            enabled: self.enabled,
        })
    }
}

fn spans(list: &[SpanConfig], key: &str) -> Result<Vec<Span>, String> {
    list.iter()
        .map(|s| {
            let at = |e: String| format!("`{key}` `{}`: {e}", s.name);
            Ok(Span {
                days: s.days.as_deref().map_or(Ok(Days::ALL), Days::parse).map_err(at)?,
                from: s.from.as_deref().map_or(Ok(0), parse_time).map_err(at)?,
                to: s.to.as_deref().map_or(Ok(1440), parse_time).map_err(at)?,
                name: s.name.clone(),
            })
        })
        .collect()
}

fn date(s: &str, key: &str) -> Result<(i16, u8, u8), String> {
    let d: Date =
        s.trim().parse().map_err(|e| format!("`{key}`: `{s}` is not a date ({e}); write YYYY-MM-DD"))?;
    Ok((d.year(), d.month() as u8, d.day() as u8))
}

/// Parses `--at`: RFC 3339 with any offset.
pub fn parse_at(s: &str) -> Result<Timestamp, String> {
    s.parse::<Timestamp>()
        .map_err(|e| format!("`{s}` is not an RFC 3339 time ({e}); write e.g. 2026-12-01T10:30:00+09:00"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_instant_is_judged_in_the_policys_timezone() {
        let w = Windows::seed().unwrap();
        // 01:30 UTC on a Tuesday is 10:30 in Seoul: the best window.
        let (a, z) = w.check(parse_at("2026-12-08T01:30:00Z").unwrap());
        assert!(a.allowed(), "{a}");
        assert_eq!(z.hour(), 10);
        // The same wall time written with another offset is another instant.
        assert!(!w.check(parse_at("2026-12-08T10:30:00+01:00").unwrap()).0.allowed());
    }

    #[test]
    fn next_allowed_skips_the_weekend_and_a_holiday() {
        let cfg = WindowsConfig { holidays: vec!["2026-12-14".into()], ..WindowsConfig::default() };
        let w = cfg.build().unwrap();
        // Friday 2026-12-11 15:00 in Seoul: refused (Friday afternoon).
        let t = parse_at("2026-12-11T15:00:00+09:00").unwrap();
        let (z, rule) = w.next_allowed(t).unwrap();
        // Monday the 14th is a holiday; Tuesday 10:00 is the best window.
        assert_eq!((z.day(), z.hour(), z.minute()), (15, 10, 0), "{z}");
        assert!(rule.contains("best"));
    }

    #[test]
    fn bad_config_names_the_key() {
        let bad_tz = WindowsConfig { timezone: Some("Mars/Base".into()), ..WindowsConfig::default() };
        assert!(bad_tz.build().unwrap_err().contains("windows.timezone"));
        let bad_day = WindowsConfig { holidays: vec!["2026-13-01".into()], ..WindowsConfig::default() };
        assert!(bad_day.build().unwrap_err().contains("windows.holidays"));
        assert!(parse_at("tomorrow").is_err());
    }
}
