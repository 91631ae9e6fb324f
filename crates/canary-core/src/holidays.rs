//! Built-in public holidays (`[windows] builtin_holidays`): which table of
//! holidays a calendar refuses without anyone typing the days in, and the
//! years that table knows. A year it does not know is said, never passed off
//! as a year without holidays.

use crate::holidays_kr;

/// A built-in table of public holidays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Builtin {
    /// No table: only the days the config lists.
    #[default]
    None,
    /// South Korea's, [`holidays_kr`].
    Kr,
}

impl Builtin {
    /// Parses `kr` or `none`.
    pub fn parse(s: &str) -> Result<Builtin, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "kr" => Ok(Builtin::Kr),
            "none" => Ok(Builtin::None),
            _ => Err(format!(
                "`{s}` is not a built-in holiday table; use \"kr\" (South Korea, {}-{}) or \"none\"",
                holidays_kr::FIRST_YEAR,
                holidays_kr::LAST_YEAR
            )),
        }
    }

    /// The name as written in the config: `kr` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Builtin::None => "none",
            Builtin::Kr => "kr",
        }
    }

    /// The name of the built-in holiday on `date`, if there is one.
    pub fn name_on(self, date: (i16, u8, u8)) -> Option<&'static str> {
        match self {
            Builtin::None => None,
            Builtin::Kr => holidays_kr::name_on(date),
        }
    }

    /// What to tell a person when `year` is outside the table: its holidays
    /// are unknown, not absent.
    pub fn gap_note(self, year: i16) -> Option<String> {
        match self {
            Builtin::Kr if !holidays_kr::covers(year) => Some(format!(
                "built-in Korean public holidays cover {}-{}; {year} is not covered: list its holidays in `[windows] holidays` or `holidays_file`",
                holidays_kr::FIRST_YEAR,
                holidays_kr::LAST_YEAR
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kr_or_none_and_says_what_else_to_write() {
        assert_eq!(Builtin::parse("kr"), Ok(Builtin::Kr));
        assert_eq!(Builtin::parse(" KR "), Ok(Builtin::Kr));
        assert_eq!(Builtin::parse("none"), Ok(Builtin::None));
        let e = Builtin::parse("jp").unwrap_err();
        assert!(e.contains("`jp`") && e.contains("\"kr\"") && e.contains("\"none\""), "{e}");
    }

    #[test]
    fn a_year_outside_the_table_is_said_not_treated_as_free() {
        assert_eq!(Builtin::Kr.name_on((2026, 9, 25)), Some("Chuseok (추석)"));
        assert_eq!(Builtin::None.name_on((2026, 9, 25)), None);
        assert_eq!(Builtin::Kr.gap_note(2027), None);
        let note = Builtin::Kr.gap_note(2031).unwrap_or_default();
        assert!(note.contains("2025-2030") && note.contains("2031"), "{note}");
        assert_eq!(Builtin::None.gap_note(2031), None, "no table, nothing missing");
    }
}
