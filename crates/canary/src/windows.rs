//! Deployment windows in the shell: the `[windows]` config, the timezone, the
//! built-in holidays it implies, and the search for the next allowed time. The
//! rules themselves are `canary_core::calendar`; this file turns timestamps
//! into local civil time.

use canary_core::calendar::{Answer, Calendar, Civil, Days, Freeze, Holiday, Span, parse_time};
use canary_core::holidays::Builtin;
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
    /// Built-in public holidays: `kr` (South Korea's) or `none`; default `kr`
    /// in Asia/Seoul, `none` in any other timezone.
    pub builtin_holidays: Option<String>,
    /// Public holidays, `YYYY-MM-DD`, beside the built-in ones.
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

    /// The answer at `t` with what a person needs beside it: the next allowed
    /// time when refused, the day's holiday and a note on the holidays' years.
    pub fn judge(&self, t: Timestamp) -> Judgement {
        let (answer, local) = self.check(t);
        let next = if answer.allowed() { None } else { self.next_allowed(t) };
        let date = civil(&local).date;
        let note = self
            .calendar
            .holidays_note(date)
            .or_else(|| next.as_ref().and_then(|(z, _)| self.calendar.holidays_note(civil(z).date)));
        Judgement { holiday: self.calendar.holiday_on(date), answer, local, next, note }
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

/// Everything said about one moment.
#[derive(Debug, Clone)]
pub struct Judgement {
    /// Allowed or refused, and by which rule.
    pub answer: Answer,
    /// The moment in the policy's timezone.
    pub local: Zoned,
    /// When refused: the first allowed moment within 60 days, and its rule.
    pub next: Option<(Zoned, String)>,
    /// The public holiday on that day, if it is one.
    pub holiday: Option<Holiday>,
    /// Said when the built-in holidays do not cover the day's year (or the
    /// next allowed time's): there, a day may be a holiday nobody listed.
    pub note: Option<String>,
}

impl Judgement {
    /// What `deploy` answers when refused: the rule (a holiday by its name),
    /// the next allowed time, the note if any, and how to deploy anyway.
    pub fn deploy_refusal(&self) -> Option<String> {
        let Answer::Refused(rule) = &self.answer else { return None };
        let next =
            self.next.as_ref().map_or("none in the next 60 days".into(), |(z, r)| format!("{z} ({r})"));
        let note = self.note.as_ref().map_or(String::new(), |n| format!("; note: {n}"));
        Some(format!(
            "deploy refused at {}: {rule}; next allowed: {next}{note}; to deploy anyway: --force --reason TEXT",
            self.local
        ))
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
        let builtin = match &self.builtin_holidays {
            Some(b) => Builtin::parse(b).map_err(|e| format!("`windows.builtin_holidays`: {e}"))?,
            None => default_builtin(&tz_name),
        };
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
            calendar: Calendar { allow, deny, holidays, builtin, freezes },
            tz,
            tz_name,
            enabled: self.enabled,
        })
    }
}

/// Korea's holidays where the team's clock is Korea's; elsewhere none, since
/// no other country's table is built in.
fn default_builtin(tz_name: &str) -> Builtin {
    let korea = ["Asia/Seoul", "ROK"].iter().any(|k| k.eq_ignore_ascii_case(tz_name.trim()));
    if korea { Builtin::Kr } else { Builtin::None }
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

    fn seoul(at: &str) -> Judgement {
        Windows::seed().unwrap().judge(parse_at(at).unwrap())
    }

    #[test]
    fn korean_holidays_are_built_in_in_seoul_only_unless_chosen() {
        let chuseok = parse_at("2026-09-24T10:30:00+09:00").unwrap(); // Thursday: a best window otherwise
        let refused = |cfg: WindowsConfig| !cfg.build().unwrap().check(chuseok).0.allowed();
        assert!(refused(WindowsConfig::default()), "Asia/Seoul by default: kr");
        let paris = || WindowsConfig { timezone: Some("Europe/Paris".into()), ..WindowsConfig::default() };
        // 10:30 in Seoul is 03:30 in Paris: ask at 10:30 Paris time instead.
        let at_paris = parse_at("2026-09-24T10:30:00+02:00").unwrap();
        assert!(paris().build().unwrap().check(at_paris).0.allowed(), "elsewhere: none");
        let kr_in_paris = WindowsConfig { builtin_holidays: Some("kr".into()), ..paris() };
        assert!(!kr_in_paris.build().unwrap().check(at_paris).0.allowed(), "chosen explicitly");
        let none = WindowsConfig { builtin_holidays: Some("none".into()), ..WindowsConfig::default() };
        assert!(!refused(none), "turned off");
        let bad = WindowsConfig { builtin_holidays: Some("jp".into()), ..WindowsConfig::default() };
        let e = bad.build().unwrap_err();
        assert!(e.contains("windows.builtin_holidays") && e.contains("\"kr\""), "{e}");
    }

    #[test]
    fn next_allowed_skips_a_whole_seollal_and_chuseok_with_their_substitutes() {
        // Friday afternoon before Seollal 2027 (Sat-Mon, substitute Tuesday).
        let (z, rule) = seoul("2027-02-05T15:00:00+09:00").next.unwrap();
        assert_eq!((z.month(), z.day(), z.hour()), (2, 10, 10), "Wednesday 10:00: {z}");
        assert!(rule.contains("best"), "{rule}");
        // Thursday evening before 2025's long October: 10/3, the weekend,
        // Chuseok 10/5-7, its substitute 10/8, Hangul Day 10/9, then a Friday.
        let (z, _) = seoul("2025-10-02T20:00:00+09:00").next.unwrap();
        assert_eq!((z.month(), z.day(), z.hour()), (10, 13, 14), "Monday 14:00: {z}");
    }

    #[test]
    fn deploy_refusal_names_the_holiday_and_the_next_allowed_time() {
        let j = seoul("2026-09-25T10:30:00+09:00");
        assert_eq!(j.holiday.and_then(|h| h.name), Some("Chuseok (추석)"));
        let text = j.deploy_refusal().unwrap();
        assert!(text.contains("refused at 2026-09-25T10:30:00+09:00[Asia/Seoul]"), "{text}");
        assert!(text.contains(": public holiday: Chuseok (추석), 2026-09-25;"), "{text}");
        assert!(text.contains("next allowed: 2026-09-28T14:00:00+09:00"), "{text}");
        assert!(text.contains("--force --reason TEXT") && !text.contains("note:"), "{text}");
        assert_eq!(seoul("2026-09-29T10:30:00+09:00").deploy_refusal(), None);
    }

    #[test]
    fn a_year_the_table_does_not_cover_is_noted() {
        let j = seoul("2031-01-07T10:30:00+09:00");
        assert!(j.answer.allowed(), "{}", j.answer);
        assert!(j.note.as_deref().is_some_and(|n| n.contains("2025-2030") && n.contains("2031")));
        // Refused in 2030, allowed next on New Year's Day 2031, which the table does not know.
        let j = seoul("2030-12-31T20:00:00+09:00");
        assert_eq!(j.next.as_ref().map(|(z, _)| (z.year(), z.day())), Some((2031, 1)));
        assert!(j.deploy_refusal().is_some_and(|t| t.contains("; note: built-in Korean public holidays")));
        assert_eq!(seoul("2030-12-31T10:30:00+09:00").note, None);
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
