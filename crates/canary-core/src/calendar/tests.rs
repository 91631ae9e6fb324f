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

/// A Civil time on a date, with its weekday given.
fn on(date: (i16, u8, u8), weekday: u8, hhmm: &str) -> Civil {
    Civil { date, weekday, minute: parse_time(hhmm).unwrap() }
}

#[test]
fn a_built_in_holiday_refuses_by_its_name() {
    let mut cal = Calendar::seed();
    cal.builtin = crate::holidays::Builtin::Kr;
    // Chuseok 2026 is a Friday; Thursday the 24th, the day before, would be a best window.
    let a = cal.check(&on((2026, 9, 24), 4, "10:30"));
    assert_eq!(a, Answer::Refused("public holiday: Chuseok, the day before (추석 전날), 2026-09-24".into()));
    let a = cal.check(&on((2026, 9, 25), 5, "10:30"));
    assert_eq!(a.to_string(), "refused: public holiday: Chuseok (추석), 2026-09-25");
    // A substitute holiday on a Monday afternoon, which is otherwise a fine window.
    let a = cal.check(&on((2026, 10, 5), 1, "14:30"));
    assert!(a.to_string().contains("Substitute holiday for National Foundation Day"), "{a}");
    assert!(cal.check(&on((2026, 9, 29), 2, "10:30")).allowed(), "the Tuesday after");
    // Without the built-in table the same day is the seed's best window.
    assert!(Calendar::seed().check(&on((2026, 9, 24), 4, "10:30")).allowed());
}

#[test]
fn the_configs_own_days_add_to_the_built_in_ones_and_the_built_in_name_wins() {
    let mut cal = Calendar::seed();
    cal.builtin = crate::holidays::Builtin::Kr;
    cal.holidays = vec![(2026, 12, 8), (2026, 9, 25)];
    assert_eq!(cal.holiday_on((2026, 12, 8)), Some(Holiday { date: (2026, 12, 8), name: None }));
    assert_eq!(cal.holiday_on((2026, 9, 25)).and_then(|h| h.name), Some("Chuseok (추석)"));
    assert_eq!(cal.holiday_on((2026, 12, 9)), None);
    assert_eq!(cal.holidays_note((2026, 12, 9)), None);
    assert!(cal.holidays_note((2031, 1, 1)).is_some_and(|n| n.contains("2025-2030")));
}
