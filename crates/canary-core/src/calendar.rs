//! Deployment windows (S19): when a deploy may start. Pure: the shell turns a
//! timestamp into local civil time in the configured timezone and asks.
//!
//! Checked in this order: a freeze period, a public holiday (a built-in one by
//! its name, see [`crate::holidays`], or one the config lists), a refused span
//! (Friday afternoon, weekend, night hours, the evening peak), then the allowed
//! spans (best: Tue-Thu 10-11h; fine: Mon-Fri 14-16h). Outside every allowed
//! span is refused too: deploys happen when people are there to watch.

use crate::holidays::Builtin;
use std::fmt;

/// A local date and time, as the shell read it in the policy's timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year, month (1-12), day (1-31).
    pub date: (i16, u8, u8),
    /// 1 = Monday ... 7 = Sunday.
    pub weekday: u8,
    /// Minutes since local midnight (0..1440).
    pub minute: u16,
}

/// Days of the week as a bit set (bit 1 = Monday ... bit 7 = Sunday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days(u8);

impl Days {
    /// Every day.
    pub const ALL: Days = Days(0b1111_1110);

    /// Parses `Mon-Fri`, `Tue-Thu`, `Sat,Sun`, `Fri`, `*` or `every day`.
    pub fn parse(s: &str) -> Result<Days, String> {
        let t = s.trim().to_ascii_lowercase();
        if t == "*" || t == "every day" || t == "daily" {
            return Ok(Days::ALL);
        }
        let mut bits = 0u8;
        for part in t.split(',') {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let (a, b) = (day(a)?, day(b)?);
            if b < a {
                return Err(format!("days `{s}`: a range runs forward, e.g. Mon-Fri"));
            }
            for d in a..=b {
                bits |= 1 << d;
            }
        }
        Ok(Days(bits))
    }

    fn has(self, weekday: u8) -> bool {
        self.0 & (1 << weekday) != 0
    }
}

fn day(s: &str) -> Result<u8, String> {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let t = s.trim();
    NAMES
        .iter()
        .position(|n| t.starts_with(n) && n.len() >= 3)
        .map(|i| i as u8 + 1)
        .ok_or_else(|| format!("`{s}` is not a day; use Mon, Tue, Wed, Thu, Fri, Sat, Sun"))
}

/// Parses `HH:MM` (up to `24:00`) into minutes since midnight.
pub fn parse_time(s: &str) -> Result<u16, String> {
    let err = || format!("`{s}` is not a time; write HH:MM such as 14:00");
    let (h, m) = s.trim().split_once(':').ok_or_else(err)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| err())?, m.parse().map_err(|_| err())?);
    if m >= 60 || h > 24 || (h == 24 && m > 0) {
        return Err(err());
    }
    Ok(h * 60 + m)
}

/// A span of time on some days: `from..to` minutes, wrapping past midnight
/// when `to <= from` (22:00-07:00 is the night).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The days it applies on (for a wrapping span: the day it starts).
    pub days: Days,
    /// Start, minutes since midnight.
    pub from: u16,
    /// End (exclusive), minutes since midnight.
    pub to: u16,
    /// Its name, shown as the reason.
    pub name: String,
}

impl Span {
    fn contains(&self, c: &Civil) -> bool {
        if self.from < self.to {
            return self.days.has(c.weekday) && (self.from..self.to).contains(&c.minute);
        }
        // Wrapping: the late part belongs to its own day, the early part to the day before.
        let yesterday = if c.weekday == 1 { 7 } else { c.weekday - 1 };
        (self.days.has(c.weekday) && c.minute >= self.from)
            || (self.days.has(yesterday) && c.minute < self.to)
    }
}

/// A freeze: no deploys from one date to another, inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze {
    /// First day.
    pub from: (i16, u8, u8),
    /// Last day.
    pub to: (i16, u8, u8),
    /// Why.
    pub reason: String,
}

/// The whole policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// Spans a deploy may start in.
    pub allow: Vec<Span>,
    /// Spans refused even inside an allowed one.
    pub deny: Vec<Span>,
    /// Public holidays the config lists (whole days), beside the built-in ones.
    pub holidays: Vec<(i16, u8, u8)>,
    /// The built-in table of public holidays, if any.
    pub builtin: Builtin,
    /// Freeze periods.
    pub freezes: Vec<Freeze>,
}

/// A public holiday on some day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holiday {
    /// The day.
    pub date: (i16, u8, u8),
    /// Its name when it comes from the built-in table, e.g. `Chuseok (추석)`;
    /// none for a day the config lists.
    pub name: Option<&'static str>,
}

impl fmt::Display for Holiday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.date;
        match self.name {
            Some(name) => write!(f, "public holiday: {name}, {y:04}-{m:02}-{d:02}"),
            None => write!(f, "public holiday ({y:04}-{m:02}-{d:02})"),
        }
    }
}

/// The answer for one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Allowed by this rule.
    Allowed(String),
    /// Refused by this rule.
    Refused(String),
}

impl Answer {
    /// Whether a deploy may start.
    pub fn allowed(&self) -> bool {
        matches!(self, Answer::Allowed(_))
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Allowed(r) => write!(f, "allowed: {r}"),
            Answer::Refused(r) => write!(f, "refused: {r}"),
        }
    }
}

fn span(days: &str, from: &str, to: &str, name: &str) -> Span {
    // Only called with the constant seed rules below, which all parse.
    Span {
        days: Days::parse(days).unwrap_or(Days::ALL),
        from: parse_time(from).unwrap_or(0),
        to: parse_time(to).unwrap_or(0),
        name: name.to_string(),
    }
}

impl Calendar {
    /// The seed's rules (S19), without holidays or freezes (the shell picks
    /// the built-in holidays by the timezone).
    pub fn seed() -> Calendar {
        Calendar {
            allow: Calendar::seed_allow(),
            deny: Calendar::seed_deny(),
            holidays: Vec::new(),
            builtin: Builtin::None,
            freezes: Vec::new(),
        }
    }

    /// The seed's allowed spans.
    pub fn seed_allow() -> Vec<Span> {
        vec![
            span("Tue-Thu", "10:00", "11:00", "best window (Tue-Thu 10-11h)"),
            span("Mon-Fri", "14:00", "16:00", "fine window (Mon-Fri 14-16h)"),
        ]
    }

    /// The seed's refused spans.
    pub fn seed_deny() -> Vec<Span> {
        vec![
            span("Fri", "12:00", "24:00", "Friday afternoon"),
            span("Sat-Sun", "00:00", "24:00", "weekend"),
            span("*", "19:00", "22:00", "evening peak (19-22h)"),
            span("*", "22:00", "07:00", "night hours (22-07h)"),
        ]
    }

    /// Whether a deploy may start at `c`, and by which rule.
    pub fn check(&self, c: &Civil) -> Answer {
        if let Some(f) = self.freezes.iter().find(|f| f.from <= c.date && c.date <= f.to) {
            return Answer::Refused(format!("freeze: {}", f.reason));
        }
        if let Some(h) = self.holiday_on(c.date) {
            return Answer::Refused(h.to_string());
        }
        if let Some(s) = self.deny.iter().find(|s| s.contains(c)) {
            return Answer::Refused(s.name.clone());
        }
        match self.allow.iter().find(|s| s.contains(c)) {
            Some(s) => Answer::Allowed(s.name.clone()),
            None => Answer::Refused("outside every deployment window".to_string()),
        }
    }

    /// The public holiday on `date`, if it is one: the built-in table's
    /// (with its name) before the config's own days.
    pub fn holiday_on(&self, date: (i16, u8, u8)) -> Option<Holiday> {
        match self.builtin.name_on(date) {
            Some(name) => Some(Holiday { date, name: Some(name) }),
            None => self.holidays.contains(&date).then_some(Holiday { date, name: None }),
        }
    }

    /// A note when the built-in holidays do not cover `date`'s year, so an
    /// answer there is not read as knowing that day is a working day.
    pub fn holidays_note(&self, date: (i16, u8, u8)) -> Option<String> {
        self.builtin.gap_note(date.0)
    }
}

#[cfg(test)]
mod tests;
