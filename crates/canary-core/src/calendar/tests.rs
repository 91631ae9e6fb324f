use super::*;

/// 2026-12-07 is a Monday; day offsets from it give the weekday.
fn at(day_offset: u8, hhmm: &str) -> Civil {
    Civil { date: (2026, 12, 7 + day_offset), weekday: 1 + day_offset % 7, minute: parse_time(hhmm).unwrap() }
}

#[test]
fn every_seed_rule_across_the_week() {
    let cal = Calendar::seed();
    let cases = [
        (1, "10:30", true, "best"),     // Tuesday morning
        (3, "10:59", true, "best"),     // Thursday
        (0, "10:30", false, "outside"), // Monday morning is not a best day
        (0, "14:00", true, "fine"),     // Monday afternoon
        (2, "15:59", true, "fine"),     // Wednesday
        (2, "16:00", false, "outside"), // the end is exclusive
        (4, "10:30", false, "outside"), // Friday morning: not in a window
        (4, "14:30", false, "Friday afternoon"),
        (5, "10:30", false, "weekend"),
        (6, "14:30", false, "weekend"),
        (2, "19:30", false, "evening peak"),
        (2, "23:00", false, "night"),
        (3, "03:00", false, "night"), // after midnight, from the night before
        (0, "06:59", false, "night"), // Monday early: Sunday's night
    ];
    for (d, t, ok, why) in cases {
        let a = cal.check(&at(d, t));
        assert_eq!(a.allowed(), ok, "day {d} {t}: {a}");
        assert!(a.to_string().contains(why), "day {d} {t}: {a}");
    }
}

#[test]
fn holidays_and_freezes_win() {
    let mut cal = Calendar::seed();
    cal.holidays.push((2026, 12, 8));
    cal.freezes.push(Freeze { from: (2026, 12, 9), to: (2026, 12, 10), reason: "year-end".into() });
    assert_eq!(cal.check(&at(1, "10:30")), Answer::Refused("public holiday (2026-12-08)".into()));
    assert_eq!(cal.check(&at(2, "14:30")), Answer::Refused("freeze: year-end".into()));
    assert!(cal.check(&at(0, "14:30")).allowed(), "the day before is fine");
}

#[test]
fn days_and_times_parse_or_say_why() {
    assert_eq!(Days::parse("Mon-Fri").unwrap(), Days(0b0011_1110));
    assert_eq!(Days::parse("sat,sun").unwrap(), Days(0b1100_0000));
    assert!(Days::parse("Fri-Mon").is_err());
    assert!(Days::parse("Funday").is_err());
    assert_eq!(parse_time("24:00").unwrap(), 1440);
    assert!(parse_time("25:00").is_err() && parse_time("10h").is_err());
}
