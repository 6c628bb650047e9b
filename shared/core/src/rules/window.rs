//! `DeploymentWindow`: is "now" inside a window written as a Quartz-style cron expression in a
//! time zone?
//!
//! CodePipeline's rule takes six fields and an optional year (`seconds minutes hours
//! day-of-month month day-of-week [year]`), with `? L W #` on the day fields, and a time zone
//! as a tz name (`Europe/Paris`), `UTC±HH:MM` or a short id. Only matching the current minute
//! is needed (never the next firing), so this is a small matcher rather than a scheduler; no
//! maintained crate matches Quartz's `L`, `W` and `#` together with tz names.

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::{Offset, TimeZone};

/// A parsed window.
#[derive(Debug, Clone)]
pub struct Window {
    minutes: Vec<Range>,
    hours: Vec<Range>,
    days: Vec<DayOfMonth>,
    months: Vec<Range>,
    weekdays: Vec<DayOfWeek>,
    years: Option<Vec<Range>>,
    zone: TimeZone,
}

/// `from-to/step`; a single value is `v-v/1`.
#[derive(Debug, Clone, Copy)]
struct Range {
    from: u32,
    to: u32,
    step: u32,
}

impl Range {
    fn contains(self, v: u32) -> bool {
        v >= self.from && v <= self.to && (v - self.from).is_multiple_of(self.step)
    }
}

#[derive(Debug, Clone, Copy)]
enum DayOfMonth {
    Any,
    Days(Range),
    /// `L` or `L-n`: the last day, less `n`.
    Last(u32),
    /// `nW`: the weekday nearest day `n`, within the month.
    NearestWeekday(u32),
    /// `LW`: the last weekday of the month.
    LastWeekday,
}

#[derive(Debug, Clone, Copy)]
enum DayOfWeek {
    Any,
    /// 1 = Sunday ... 7 = Saturday.
    Days(Range),
    /// `nL`: the last such weekday of the month.
    Last(u32),
    /// `n#k`: the k-th such weekday of the month.
    Nth(u32, u32),
}

const MONTHS: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Java's short zone ids, which CodePipeline's `TimeZone` takes beside tz names.
const SHORT_IDS: [(&str, &str); 25] = [
    ("ACT", "Australia/Darwin"),
    ("AET", "Australia/Sydney"),
    ("AGT", "America/Argentina/Buenos_Aires"),
    ("ART", "Africa/Cairo"),
    ("AST", "America/Anchorage"),
    ("BET", "America/Sao_Paulo"),
    ("BST", "Asia/Dhaka"),
    ("CAT", "Africa/Harare"),
    ("CNT", "America/St_Johns"),
    ("CST", "America/Chicago"),
    ("CTT", "Asia/Shanghai"),
    ("EAT", "Africa/Addis_Ababa"),
    ("ECT", "Europe/Paris"),
    ("IET", "America/Indiana/Indianapolis"),
    ("IST", "Asia/Kolkata"),
    ("JST", "Asia/Tokyo"),
    ("MIT", "Pacific/Apia"),
    ("NET", "Asia/Yerevan"),
    ("NST", "Pacific/Auckland"),
    ("PLT", "Asia/Karachi"),
    ("PNT", "America/Phoenix"),
    ("PRT", "America/Puerto_Rico"),
    ("PST", "America/Los_Angeles"),
    ("SST", "Pacific/Guadalcanal"),
    ("VST", "Asia/Ho_Chi_Minh"),
];

impl Window {
    /// Parses `Cron` and `TimeZone` (UTC when absent).
    ///
    /// # Errors
    /// A sentence naming the field that is wrong.
    pub fn parse(cron: &str, time_zone: Option<&str>) -> Result<Self, String> {
        let fields: Vec<&str> = cron.split_whitespace().collect();
        if !(6..=7).contains(&fields.len()) {
            return Err(format!(
                "Cron must have 6 fields and an optional year, not {} (\"{cron}\")",
                fields.len()
            ));
        }
        if fields[0] != "*" {
            return Err(format!("Cron's seconds field must be \"*\", not \"{}\"", fields[0]));
        }
        let minutes = ranges("minutes", fields[1], 0, 59, &[])?;
        let hours = ranges("hours", fields[2], 0, 23, &[])?;
        let days = day_of_month(fields[3])?;
        let months = ranges("month", fields[4], 1, 12, &MONTHS)?;
        let weekdays = day_of_week(fields[5])?;
        let years = fields.get(6).map(|y| ranges("year", y, 1970, 2199, &[])).transpose()?;
        Ok(Self { minutes, hours, days, months, weekdays, years, zone: zone(time_zone)? })
    }

    /// Whether the instant `millis` (since the epoch) falls inside the window.
    pub fn contains(&self, millis: i64) -> bool {
        let Ok(at) = Timestamp::from_millisecond(millis) else { return false };
        let local = self.zone.to_datetime(at);
        let date = local.date();
        let any = |rs: &[Range], v: u32| rs.iter().any(|r| r.contains(v));
        let year_ok = self.years.as_ref().is_none_or(|ys| any(ys, date.year() as u32));
        year_ok
            && any(&self.minutes, local.minute() as u32)
            && any(&self.hours, local.hour() as u32)
            && any(&self.months, date.month() as u32)
            && self.days.iter().any(|d| d.matches(date))
            && self.weekdays.iter().any(|d| d.matches(date))
    }
}

fn zone(name: Option<&str>) -> Result<TimeZone, String> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(TimeZone::UTC);
    };
    if let Some(rest) = name.strip_prefix("UTC").or_else(|| name.strip_prefix("GMT"))
        && !rest.is_empty()
    {
        return fixed_offset(rest)
            .ok_or_else(|| format!("TimeZone \"{name}\" must be written UTC+HH:MM or UTC-HH:MM"));
    }
    if let Some((_, id)) = SHORT_IDS.iter().find(|(short, _)| *short == name) {
        return TimeZone::get(id).map_err(|e| format!("TimeZone \"{name}\": {e}"));
    }
    match name {
        "EST" => return Ok(TimeZone::fixed(Offset::constant(-5))),
        "MST" => return Ok(TimeZone::fixed(Offset::constant(-7))),
        "HST" => return Ok(TimeZone::fixed(Offset::constant(-10))),
        _ => {}
    }
    TimeZone::get(name).map_err(|_| {
        format!("TimeZone \"{name}\" is not a time zone name (such as Europe/Paris), UTC±HH:MM or a short id (such as PST)")
    })
}

fn fixed_offset(text: &str) -> Option<TimeZone> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 18 || m > 59 {
        return None;
    }
    let offset = Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()?;
    Some(TimeZone::fixed(offset))
}

fn ranges(
    field: &str,
    text: &str,
    min: u32,
    max: u32,
    names: &[&str],
) -> Result<Vec<Range>, String> {
    text.split(',').map(|item| range(field, item, min, max, names)).collect()
}

fn range(field: &str, item: &str, min: u32, max: u32, names: &[&str]) -> Result<Range, String> {
    let wrong = || {
        format!(
            "Cron's {field} field has \"{item}\", which is not a value from {min} to {max}, a range or a step"
        )
    };
    let (span, step) = match item.split_once('/') {
        Some((span, step)) => {
            (span, step.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(wrong)?)
        }
        None => (item, 1),
    };
    let value = |t: &str| -> Result<u32, String> {
        let named = names.iter().position(|n| n.eq_ignore_ascii_case(t)).map(|i| i as u32 + min);
        named.or_else(|| t.parse().ok()).filter(|v| (min..=max).contains(v)).ok_or_else(wrong)
    };
    let (from, to) = match span {
        "*" => (min, max),
        _ => match span.split_once('-') {
            Some((a, b)) => (value(a)?, value(b)?),
            // `5/15` runs from 5 to the end; `5` alone is just 5.
            None if item.contains('/') => (value(span)?, max),
            None => (value(span)?, value(span)?),
        },
    };
    if from > to {
        return Err(wrong());
    }
    Ok(Range { from, to, step })
}

fn day_of_month(text: &str) -> Result<Vec<DayOfMonth>, String> {
    text.split(',')
        .map(|item| {
            let wrong =
                || format!("Cron's day-of-month field has \"{item}\", which it cannot read");
            Ok(match item {
                "?" | "*" => DayOfMonth::Any,
                "L" => DayOfMonth::Last(0),
                "LW" => DayOfMonth::LastWeekday,
                _ if item.starts_with("L-") => {
                    DayOfMonth::Last(item[2..].parse().ok().filter(|n| *n < 31).ok_or_else(wrong)?)
                }
                _ if item.ends_with('W') => DayOfMonth::NearestWeekday(
                    item[..item.len() - 1]
                        .parse()
                        .ok()
                        .filter(|d| (1..=31).contains(d))
                        .ok_or_else(wrong)?,
                ),
                _ => DayOfMonth::Days(range("day-of-month", item, 1, 31, &[])?),
            })
        })
        .collect()
}

fn day_of_week(text: &str) -> Result<Vec<DayOfWeek>, String> {
    let weekday = |t: &str| -> Option<u32> {
        let named = WEEKDAYS.iter().position(|n| n.eq_ignore_ascii_case(t)).map(|i| i as u32 + 1);
        named.or_else(|| t.parse().ok()).filter(|d| (1..=7).contains(d))
    };
    text.split(',')
        .map(|item| {
            let wrong = || format!("Cron's day-of-week field has \"{item}\", which it cannot read");
            Ok(match item {
                "?" | "*" => DayOfWeek::Any,
                "L" => DayOfWeek::Days(Range { from: 7, to: 7, step: 1 }),
                _ if item.ends_with('L') => {
                    DayOfWeek::Last(weekday(&item[..item.len() - 1]).ok_or_else(wrong)?)
                }
                _ if item.contains('#') => {
                    let (d, n) = item.split_once('#').ok_or_else(wrong)?;
                    let n = n.parse().ok().filter(|n| (1..=5).contains(n)).ok_or_else(wrong)?;
                    DayOfWeek::Nth(weekday(d).ok_or_else(wrong)?, n)
                }
                _ => DayOfWeek::Days(range("day-of-week", item, 1, 7, &WEEKDAYS)?),
            })
        })
        .collect()
}

/// 1 = Sunday ... 7 = Saturday, as Quartz counts.
fn quartz_weekday(date: Date) -> u32 {
    date.weekday().to_sunday_one_offset() as u32
}

impl DayOfMonth {
    fn matches(self, date: Date) -> bool {
        let day = date.day() as u32;
        let last = date.days_in_month() as u32;
        match self {
            Self::Any => true,
            Self::Days(r) => r.contains(day),
            Self::Last(less) => last.checked_sub(less) == Some(day),
            Self::NearestWeekday(n) => nearest_weekday(date, n.min(last)) == day,
            Self::LastWeekday => nearest_weekday(date, last) == day,
        }
    }
}

/// The weekday of `date`'s month nearest its day `n`, never crossing into another month.
fn nearest_weekday(date: Date, n: u32) -> u32 {
    let Ok(target) = date.with().day(n as i8).build() else { return 0 };
    let last = date.days_in_month() as u32;
    match target.weekday() {
        Weekday::Saturday if n == 1 => 3,
        Weekday::Saturday => n - 1,
        Weekday::Sunday if n == last => n - 2,
        Weekday::Sunday => n + 1,
        _ => n,
    }
}

impl DayOfWeek {
    fn matches(self, date: Date) -> bool {
        let weekday = quartz_weekday(date);
        let day = date.day() as u32;
        match self {
            Self::Any => true,
            Self::Days(r) => r.contains(weekday),
            Self::Last(d) => weekday == d && day + 7 > date.days_in_month() as u32,
            Self::Nth(d, n) => weekday == d && (day - 1) / 7 + 1 == n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds of a UTC civil time.
    fn at(text: &str) -> i64 {
        let t: Timestamp = format!("{text}Z").parse().unwrap();
        t.as_millisecond()
    }

    fn open(cron: &str, tz: Option<&str>, when: &str) -> bool {
        Window::parse(cron, tz).unwrap().contains(at(when))
    }

    #[test]
    fn business_hours_on_weekdays() {
        let cron = "* * 9-17 ? * MON-FRI *";
        // 2026-12-07 is a Monday.
        assert!(open(cron, None, "2026-12-07T09:00:00"));
        assert!(open(cron, None, "2026-12-07T17:59:00"));
        assert!(!open(cron, None, "2026-12-07T18:00:00"));
        assert!(!open(cron, None, "2026-12-06T10:00:00"), "Sunday");
    }

    #[test]
    fn the_time_zone_moves_the_window() {
        let cron = "* * 9-17 ? * * *";
        // 08:30 UTC is 09:30 in Paris (winter, UTC+1) and 00:30 in Los Angeles.
        assert!(open(cron, Some("Europe/Paris"), "2026-12-07T08:30:00"));
        assert!(!open(cron, Some("America/Los_Angeles"), "2026-12-07T08:30:00"));
        assert!(!open(cron, Some("PST"), "2026-12-07T08:30:00"));
        assert!(open(cron, Some("UTC+05:30"), "2026-12-07T04:00:00"));
        assert!(!open(cron, Some("UTC-05:00"), "2026-12-07T04:00:00"));
    }

    #[test]
    fn steps_lists_and_names() {
        assert!(open("* 0/15 * * * ? *", None, "2026-12-07T10:45:00"));
        assert!(!open("* 0/15 * * * ? *", None, "2026-12-07T10:46:00"));
        assert!(open("* 5,10 * * JAN,DEC ?", None, "2026-12-07T10:10:00"));
        assert!(!open("* 5,10 * * JAN-NOV ?", None, "2026-12-07T10:10:00"));
        assert!(!open("* * * * * ? 2027", None, "2026-12-07T10:10:00"));
    }

    #[test]
    fn last_nearest_weekday_and_nth() {
        // December 2026: the 31st is a Thursday; the 5th a Saturday; the first Monday the 7th.
        assert!(open("* * * L * ?", None, "2026-12-31T01:00:00"));
        assert!(open("* * * L-1 * ?", None, "2026-12-30T01:00:00"));
        assert!(open("* * * 5W * ?", None, "2026-12-04T01:00:00"), "Saturday 5th -> Friday 4th");
        assert!(open("* * * LW * ?", None, "2026-12-31T01:00:00"));
        assert!(open("* * * ? * 2#1", None, "2026-12-07T01:00:00"));
        assert!(!open("* * * ? * 2#2", None, "2026-12-07T01:00:00"));
        assert!(open("* * * ? * 5L", None, "2026-12-31T01:00:00"), "last Thursday");
        assert!(!open("* * * ? * 5L", None, "2026-12-24T01:00:00"));
        // 2027-05-01 is a Saturday: 1W is Monday the 3rd.
        assert!(open("* * * 1W * ?", None, "2027-05-03T01:00:00"));
    }

    #[test]
    fn mistakes_name_their_field() {
        let err = |cron: &str| Window::parse(cron, None).unwrap_err();
        assert!(err("* * 25 * * ?").contains("hours"), "{}", err("* * 25 * * ?"));
        assert!(err("* * *").contains("6 fields"));
        assert!(err("0 * * * * ?").contains("seconds"));
        assert!(err("* * * ? * 8").contains("day-of-week"));
        let tz = Window::parse("* * * * * ?", Some("Mars/Olympus")).unwrap_err();
        assert!(tz.contains("Mars/Olympus"), "{tz}");
    }
}
