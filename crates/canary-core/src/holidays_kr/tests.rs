use super::*;

type Date = (i16, u8, u8);

/// 1 = Monday ... 7 = Sunday (Sakamoto's method).
fn weekday((y, m, d): Date) -> u8 {
    const T: [i32; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let y = i32::from(y) - i32::from(m < 3);
    let sunday_zero = (y + y / 4 - y / 100 + y / 400 + T[usize::from(m) - 1] + i32::from(d)) % 7;
    if sunday_zero == 0 { 7 } else { sunday_zero as u8 }
}

fn next_day((y, m, d): Date) -> Date {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let len = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][usize::from(m) - 1];
    match (d < len, m < 12) {
        (true, _) => (y, m, d + 1),
        (false, true) => (y, m + 1, 1),
        (false, false) => (y + 1, 1, 1),
    }
}

fn prev_day(date: Date) -> Date {
    let mut d = (date.0, date.1, 1);
    if date.2 == 1 {
        d = if date.1 == 1 { (date.0 - 1, 12, 1) } else { (date.0, date.1 - 1, 1) };
    }
    while next_day(d) != date {
        d = next_day(d);
    }
    d
}

fn is_substitute(name: &str) -> bool {
    name.starts_with("Substitute holiday")
}

#[test]
fn the_table_is_sorted_one_entry_a_day_with_both_names() {
    for pair in HOLIDAYS.windows(2) {
        assert!(pair[0].0 < pair[1].0, "out of order or twice: {:?} then {:?}", pair[0], pair[1]);
    }
    for &(date, name) in HOLIDAYS {
        assert!(covers(date.0), "{date:?} is outside {FIRST_YEAR}-{LAST_YEAR}");
        let korean = name.rsplit_once(" (").map(|(_, k)| k).unwrap_or("");
        assert!(korean.ends_with(')') && !korean.is_ascii(), "{name}: English (Korean)");
    }
    assert!(covers(2025) && covers(2030) && !covers(2024) && !covers(2031));
}

#[test]
fn lunar_holidays_fall_on_their_dates_with_the_days_around_them() {
    // (Seollal, Buddha's Birthday, Chuseok), lunar 1/1, 4/8 and 8/15 in KST.
    let lunar: [(Date, Date, Date); 6] = [
        ((2025, 1, 29), (2025, 5, 5), (2025, 10, 6)),
        ((2026, 2, 17), (2026, 5, 24), (2026, 9, 25)),
        ((2027, 2, 7), (2027, 5, 13), (2027, 9, 15)),
        ((2028, 1, 27), (2028, 5, 2), (2028, 10, 3)),
        ((2029, 2, 13), (2029, 5, 20), (2029, 9, 22)),
        ((2030, 2, 3), (2030, 5, 9), (2030, 9, 12)),
    ];
    for (seollal, buddha, chuseok) in lunar {
        assert!(name_on(buddha).is_some_and(|n| n.contains("Buddha's Birthday (")), "{buddha:?}");
        for (day, what) in [(seollal, "Seollal"), (chuseok, "Chuseok")] {
            // 2028's Chuseok shares its day with National Foundation Day.
            let named =
                |n: &str| n.starts_with(&format!("{what} (")) || n.starts_with(&format!("{what} and "));
            assert!(name_on(day).is_some_and(named), "{day:?}");
            let before = format!("{what}, the day before (");
            assert!(name_on(prev_day(day)).is_some_and(|n| n.starts_with(&before)), "{day:?}");
            let after = format!("{what}, the day after (");
            assert!(name_on(next_day(day)).is_some_and(|n| n.starts_with(&after)), "{day:?}");
        }
    }
    assert_eq!(name_on((2026, 9, 25)), Some("Chuseok (추석)"));
}

#[test]
fn fixed_holidays_every_year_and_the_new_ones_from_2026() {
    let fixed = [(1, 1), (3, 1), (5, 5), (6, 6), (8, 15), (10, 3), (10, 9), (12, 25)];
    for y in FIRST_YEAR..=LAST_YEAR {
        for (m, d) in fixed {
            assert!(name_on((y, m, d)).is_some(), "{y}-{m}-{d}");
        }
        // Labor Day and Constitution Day became public holidays in 2026.
        assert_eq!(name_on((y, 5, 1)).is_some(), y >= 2026, "{y}-05-01");
        assert_eq!(name_on((y, 7, 17)).is_some(), y >= 2026, "{y}-07-17");
    }
    assert_eq!(name_on((2026, 12, 25)), Some("Christmas (기독탄신일)"));
    assert_eq!(name_on((2026, 12, 24)), None);
}

#[test]
fn known_substitutes_and_days_that_get_none() {
    let substitutes: [(Date, &str); 10] = [
        ((2025, 3, 3), "Independence Movement Day"), // 3/1 a Saturday
        ((2025, 5, 6), "Children's Day and Buddha's Birthday"), // the same Monday
        ((2025, 10, 8), "Chuseok"),                  // its first day a Sunday
        ((2026, 3, 2), "Independence Movement Day"), // 3/1 a Sunday
        ((2026, 5, 25), "Buddha's Birthday"),        // a Sunday
        ((2026, 8, 17), "Liberation Day"),           // 8/15 a Saturday
        ((2026, 10, 5), "National Foundation Day"),  // 10/3 a Saturday
        ((2027, 2, 9), "Seollal"),                   // Seollal itself a Sunday
        ((2027, 12, 27), "Christmas"),               // a Saturday
        ((2028, 10, 5), "Chuseok"),                  // Chuseok on 10/3
    ];
    for (date, of) in substitutes {
        let name = name_on(date).unwrap_or("");
        assert!(name.starts_with(&format!("Substitute holiday for {of} (")), "{date:?}: {name}");
    }
    // Memorial Day and New Year's Day have no substitute; nor Chuseok on a Saturday.
    for date in [(2026, 6, 8), (2028, 1, 3), (2026, 9, 28)] {
        assert_eq!(name_on(date), None, "{date:?}");
    }
    assert_eq!(name_on((2025, 1, 27)), Some("Temporary holiday (임시공휴일)"));
    assert!(name_on((2025, 6, 3)).is_some() && name_on((2026, 6, 3)).is_some());
}

/// Holidays with a substitute when they fall on a Saturday or Sunday.
const WEEKEND_SUBSTITUTED: [&str; 8] = [
    "Independence Movement Day",
    "Liberation Day",
    "National Foundation Day",
    "Hangul Day",
    "Buddha's Birthday",
    "Christmas",
    "Labor Day",
    "Constitution Day",
];

/// The substitute days the rules give for one year, derived from the table's
/// other entries: the table's own substitutes must be exactly these.
fn derived_substitutes(year: i16) -> Vec<Date> {
    let base: Vec<(Date, &str)> =
        HOLIDAYS.iter().copied().filter(|&(d, n)| d.0 == year && !is_substitute(n)).collect();
    let english = |n: &'static str| n.split(" (").next().unwrap_or(n);
    let mut triggers: Vec<Date> = Vec::new();
    // Seollal and Chuseok: one of the three days on a Sunday or another holiday.
    for what in ["Seollal", "Chuseok"] {
        let days: Vec<(Date, &str)> = base
            .iter()
            .copied()
            .filter(|&(_, n)| english(n).split(" and ").any(|p| p.starts_with(what)))
            .collect();
        assert_eq!(days.len(), 3, "{what} {year}: three days");
        if days.iter().any(|&(d, n)| weekday(d) == 7 || english(n).contains(" and ")) {
            triggers.push(days[2].0);
        }
    }
    for &(date, name) in &base {
        let weekend = weekday(date) >= 6;
        for part in english(name).split(" and ") {
            let children = part == "Children's Day" && (weekend || english(name).contains(" and "));
            if children || (weekend && WEEKEND_SUBSTITUTED.contains(&part)) {
                triggers.push(date);
            }
        }
    }
    triggers.sort();
    let mut taken: Vec<Date> = Vec::new();
    for from in triggers {
        let mut d = next_day(from);
        while weekday(d) >= 6 || base.iter().any(|&(b, _)| b == d) || taken.contains(&d) {
            d = next_day(d);
        }
        taken.push(d);
    }
    taken.sort();
    taken
}

#[test]
fn every_substitute_follows_from_the_rules() {
    for year in FIRST_YEAR..=LAST_YEAR {
        let in_table: Vec<Date> =
            HOLIDAYS.iter().filter(|&&(d, n)| d.0 == year && is_substitute(n)).map(|&(d, _)| d).collect();
        assert_eq!(in_table, derived_substitutes(year), "substitute holidays of {year}");
        for d in in_table {
            assert!(weekday(d) <= 5, "{d:?} is a weekday");
        }
    }
}
