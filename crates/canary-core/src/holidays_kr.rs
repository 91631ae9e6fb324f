//! South Korea's public holidays, 2025-2030, as data: what `[windows]
//! builtin_holidays = "kr"` refuses (the default in Asia/Seoul).
//!
//! Source: the 월력요항, the official almanac computed by the Korea Astronomy
//! and Space Science Institute (KASI, 한국천문연구원) and published in the
//! official gazette each June for the year after (data.go.kr's 특일 정보 serves
//! the same days). It applies the Public Holidays Act (공휴일에 관한 법률) and
//! the 관공서의 공휴일에 관한 규정. 2025-2027 are as published there; 2028-2030
//! are not published yet and follow from the same rules:
//! - Lunar days in Korean time (KST): Seollal = lunar 1/1 with the day before
//!   and after, Buddha's Birthday = lunar 4/8, Chuseok = lunar 8/15 with the
//!   day before and after. Each was checked against KASI's lunar table and
//!   against the new moons and principal solar terms computed astronomically in
//!   KST (UTC+9): they agree on every date. 2027-02-07 and 2028-01-27 are a day
//!   later than the Chinese New Year: the new moon falls just after midnight in
//!   Korea (00:56 and 00:12 KST) and just before it in China.
//! - Fixed days: 1/1, 3/1, 5/5, 6/6, 8/15, 10/3, 10/9, 12/25; from 2026 also
//!   Labor Day (5/1) and Constitution Day (7/17), made public holidays by the
//!   2026 amendments of the Public Holidays Act (both in the 2026 and 2027
//!   월력요항).
//! - Substitute holidays (대체공휴일), on the first following day that is not a
//!   Saturday, Sunday or holiday: for Seollal and Chuseok when one of their three
//!   days is a Sunday or another holiday; for Children's Day when it is a
//!   Saturday, Sunday or another holiday; for 3/1, 8/15, 10/3, 10/9 (since 2021),
//!   Buddha's Birthday and Christmas (since 2023), Labor Day and Constitution Day
//!   (since 2026) when they fall on a Saturday or Sunday. Memorial Day and New
//!   Year's Day have none.
//! - Days declared one at a time: the temporary holiday of 2025-01-27, the
//!   presidential election of 2025-06-03 and the local elections of 2026-06-03
//!   (all three in the published lists). Later election days are not included: the election
//!   law puts the next ones on 2028-04-12 (National Assembly), 2030-03-27
//!   (President) and 2030-06-12 (local), but they are not published yet and can
//!   still move; a team adds them with `[windows] holidays` when they are.
//!   Temporary holidays declared after this table was written are not in it
//!   either.
//!
//! One entry per date, sorted, so a lookup is a binary search. When two
//! holidays fall on one day (2025-05-05, 2028-10-03) the entry names both.

/// The first year the table covers, whole.
pub const FIRST_YEAR: i16 = 2025;

/// The last year the table covers, whole.
pub const LAST_YEAR: i16 = 2030;

/// Every public holiday from [`FIRST_YEAR`] to [`LAST_YEAR`]: (year, month,
/// day) and its English and Korean name.
pub const HOLIDAYS: &[((i16, u8, u8), &str)] = &[
    // 2025
    ((2025, 1, 1), "New Year's Day (1월 1일)"),
    ((2025, 1, 27), "Temporary holiday (임시공휴일)"), // declared in January 2025
    ((2025, 1, 28), "Seollal, the day before (설날 전날)"),
    ((2025, 1, 29), "Seollal (설날)"),
    ((2025, 1, 30), "Seollal, the day after (설날 다음 날)"),
    ((2025, 3, 1), "Independence Movement Day (3·1절)"),
    ((2025, 3, 3), "Substitute holiday for Independence Movement Day (3·1절 대체공휴일)"),
    ((2025, 5, 5), "Children's Day and Buddha's Birthday (어린이날, 부처님 오신 날)"), // one day, one substitute
    (
        (2025, 5, 6),
        "Substitute holiday for Children's Day and Buddha's Birthday (어린이날·부처님 오신 날 대체공휴일)",
    ),
    ((2025, 6, 3), "Presidential election (대통령선거)"), // the early election, declared a holiday
    ((2025, 6, 6), "Memorial Day (현충일)"),
    ((2025, 8, 15), "Liberation Day (광복절)"),
    ((2025, 10, 3), "National Foundation Day (개천절)"),
    ((2025, 10, 5), "Chuseok, the day before (추석 전날)"),
    ((2025, 10, 6), "Chuseok (추석)"),
    ((2025, 10, 7), "Chuseok, the day after (추석 다음 날)"),
    ((2025, 10, 8), "Substitute holiday for Chuseok (추석 대체공휴일)"),
    ((2025, 10, 9), "Hangul Day (한글날)"),
    ((2025, 12, 25), "Christmas (기독탄신일)"),
    // 2026
    ((2026, 1, 1), "New Year's Day (1월 1일)"),
    ((2026, 2, 16), "Seollal, the day before (설날 전날)"),
    ((2026, 2, 17), "Seollal (설날)"),
    ((2026, 2, 18), "Seollal, the day after (설날 다음 날)"),
    ((2026, 3, 1), "Independence Movement Day (3·1절)"),
    ((2026, 3, 2), "Substitute holiday for Independence Movement Day (3·1절 대체공휴일)"),
    ((2026, 5, 1), "Labor Day (노동절)"),
    ((2026, 5, 5), "Children's Day (어린이날)"),
    ((2026, 5, 24), "Buddha's Birthday (부처님 오신 날)"),
    ((2026, 5, 25), "Substitute holiday for Buddha's Birthday (부처님 오신 날 대체공휴일)"),
    ((2026, 6, 3), "Local elections (전국동시지방선거)"), // fixed by the election law
    ((2026, 6, 6), "Memorial Day (현충일)"),
    ((2026, 7, 17), "Constitution Day (제헌절)"),
    ((2026, 8, 15), "Liberation Day (광복절)"),
    ((2026, 8, 17), "Substitute holiday for Liberation Day (광복절 대체공휴일)"),
    ((2026, 9, 24), "Chuseok, the day before (추석 전날)"),
    ((2026, 9, 25), "Chuseok (추석)"),
    ((2026, 9, 26), "Chuseok, the day after (추석 다음 날)"),
    ((2026, 10, 3), "National Foundation Day (개천절)"),
    ((2026, 10, 5), "Substitute holiday for National Foundation Day (개천절 대체공휴일)"),
    ((2026, 10, 9), "Hangul Day (한글날)"),
    ((2026, 12, 25), "Christmas (기독탄신일)"),
    // 2027
    ((2027, 1, 1), "New Year's Day (1월 1일)"),
    ((2027, 2, 6), "Seollal, the day before (설날 전날)"),
    ((2027, 2, 7), "Seollal (설날)"), // a Sunday: substitute on 2/9
    ((2027, 2, 8), "Seollal, the day after (설날 다음 날)"),
    ((2027, 2, 9), "Substitute holiday for Seollal (설날 대체공휴일)"),
    ((2027, 3, 1), "Independence Movement Day (3·1절)"),
    ((2027, 5, 1), "Labor Day (노동절)"),
    ((2027, 5, 3), "Substitute holiday for Labor Day (노동절 대체공휴일)"),
    ((2027, 5, 5), "Children's Day (어린이날)"),
    ((2027, 5, 13), "Buddha's Birthday (부처님 오신 날)"),
    ((2027, 6, 6), "Memorial Day (현충일)"),
    ((2027, 7, 17), "Constitution Day (제헌절)"),
    ((2027, 7, 19), "Substitute holiday for Constitution Day (제헌절 대체공휴일)"),
    ((2027, 8, 15), "Liberation Day (광복절)"),
    ((2027, 8, 16), "Substitute holiday for Liberation Day (광복절 대체공휴일)"),
    ((2027, 9, 14), "Chuseok, the day before (추석 전날)"),
    ((2027, 9, 15), "Chuseok (추석)"),
    ((2027, 9, 16), "Chuseok, the day after (추석 다음 날)"),
    ((2027, 10, 3), "National Foundation Day (개천절)"),
    ((2027, 10, 4), "Substitute holiday for National Foundation Day (개천절 대체공휴일)"),
    ((2027, 10, 9), "Hangul Day (한글날)"),
    ((2027, 10, 11), "Substitute holiday for Hangul Day (한글날 대체공휴일)"),
    ((2027, 12, 25), "Christmas (기독탄신일)"),
    ((2027, 12, 27), "Substitute holiday for Christmas (기독탄신일 대체공휴일)"),
    // 2028
    ((2028, 1, 1), "New Year's Day (1월 1일)"),
    ((2028, 1, 26), "Seollal, the day before (설날 전날)"),
    ((2028, 1, 27), "Seollal (설날)"),
    ((2028, 1, 28), "Seollal, the day after (설날 다음 날)"),
    ((2028, 3, 1), "Independence Movement Day (3·1절)"),
    ((2028, 5, 1), "Labor Day (노동절)"),
    ((2028, 5, 2), "Buddha's Birthday (부처님 오신 날)"),
    ((2028, 5, 5), "Children's Day (어린이날)"),
    ((2028, 6, 6), "Memorial Day (현충일)"),
    ((2028, 7, 17), "Constitution Day (제헌절)"),
    ((2028, 8, 15), "Liberation Day (광복절)"),
    ((2028, 10, 2), "Chuseok, the day before (추석 전날)"),
    ((2028, 10, 3), "Chuseok and National Foundation Day (추석, 개천절)"), // overlap: substitute on 10/5
    ((2028, 10, 4), "Chuseok, the day after (추석 다음 날)"),
    ((2028, 10, 5), "Substitute holiday for Chuseok (추석 대체공휴일)"),
    ((2028, 10, 9), "Hangul Day (한글날)"),
    ((2028, 12, 25), "Christmas (기독탄신일)"),
    // 2029
    ((2029, 1, 1), "New Year's Day (1월 1일)"),
    ((2029, 2, 12), "Seollal, the day before (설날 전날)"),
    ((2029, 2, 13), "Seollal (설날)"),
    ((2029, 2, 14), "Seollal, the day after (설날 다음 날)"),
    ((2029, 3, 1), "Independence Movement Day (3·1절)"),
    ((2029, 5, 1), "Labor Day (노동절)"),
    ((2029, 5, 5), "Children's Day (어린이날)"),
    ((2029, 5, 7), "Substitute holiday for Children's Day (어린이날 대체공휴일)"),
    ((2029, 5, 20), "Buddha's Birthday (부처님 오신 날)"),
    ((2029, 5, 21), "Substitute holiday for Buddha's Birthday (부처님 오신 날 대체공휴일)"),
    ((2029, 6, 6), "Memorial Day (현충일)"),
    ((2029, 7, 17), "Constitution Day (제헌절)"),
    ((2029, 8, 15), "Liberation Day (광복절)"),
    ((2029, 9, 21), "Chuseok, the day before (추석 전날)"),
    ((2029, 9, 22), "Chuseok (추석)"), // with the day after on a Sunday: substitute on 9/24
    ((2029, 9, 23), "Chuseok, the day after (추석 다음 날)"),
    ((2029, 9, 24), "Substitute holiday for Chuseok (추석 대체공휴일)"),
    ((2029, 10, 3), "National Foundation Day (개천절)"),
    ((2029, 10, 9), "Hangul Day (한글날)"),
    ((2029, 12, 25), "Christmas (기독탄신일)"),
    // 2030
    ((2030, 1, 1), "New Year's Day (1월 1일)"),
    ((2030, 2, 2), "Seollal, the day before (설날 전날)"),
    ((2030, 2, 3), "Seollal (설날)"), // a Sunday: substitute on 2/5
    ((2030, 2, 4), "Seollal, the day after (설날 다음 날)"),
    ((2030, 2, 5), "Substitute holiday for Seollal (설날 대체공휴일)"),
    ((2030, 3, 1), "Independence Movement Day (3·1절)"),
    ((2030, 5, 1), "Labor Day (노동절)"),
    ((2030, 5, 5), "Children's Day (어린이날)"),
    ((2030, 5, 6), "Substitute holiday for Children's Day (어린이날 대체공휴일)"),
    ((2030, 5, 9), "Buddha's Birthday (부처님 오신 날)"),
    ((2030, 6, 6), "Memorial Day (현충일)"),
    ((2030, 7, 17), "Constitution Day (제헌절)"),
    ((2030, 8, 15), "Liberation Day (광복절)"),
    ((2030, 9, 11), "Chuseok, the day before (추석 전날)"),
    ((2030, 9, 12), "Chuseok (추석)"),
    ((2030, 9, 13), "Chuseok, the day after (추석 다음 날)"),
    ((2030, 10, 3), "National Foundation Day (개천절)"),
    ((2030, 10, 9), "Hangul Day (한글날)"),
    ((2030, 12, 25), "Christmas (기독탄신일)"),
];

/// The name of the holiday on `date`, if the table has one.
pub fn name_on(date: (i16, u8, u8)) -> Option<&'static str> {
    HOLIDAYS.binary_search_by_key(&date, |&(d, _)| d).ok().map(|i| HOLIDAYS[i].1)
}

/// Whether the table covers `year` (outside it, no day is known to be a holiday).
pub fn covers(year: i16) -> bool {
    (FIRST_YEAR..=LAST_YEAR).contains(&year)
}

#[cfg(test)]
mod tests;
