//! The China day: campus allowances, a courier's withdrawals, WeChat Pay's
//! bills and the ledger's day lines all turn over at midnight UTC+8.

use std::fmt;

use time::{Date, OffsetDateTime, Time, UtcOffset};

use super::ValidationError;

/// China time (UTC+8).
pub const CHINA: UtcOffset = time::macros::offset!(+8);

/// One China day, written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, utoipa::ToSchema)]
#[schema(value_type = String, format = Date, example = "2026-12-07")]
pub struct ChinaDay(Date);

impl ChinaDay {
    /// The China day `at` falls on.
    pub fn of(at: OffsetDateTime) -> Self {
        Self(at.to_offset(CHINA).date())
    }

    /// The China day of a time in Unix milliseconds (a time before the
    /// epoch or beyond year 9999 counts as the epoch's day).
    pub fn of_unix_ms(at_unix_ms: i64) -> Self {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_unix_ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Self::of(at)
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        Date::parse(text, format)
            .map(Self)
            .map_err(|_| ValidationError::new("a day is written YYYY-MM-DD"))
    }

    /// Midnight on campus that starts the day, as a UTC time.
    pub fn start(self) -> OffsetDateTime {
        self.0
            .with_time(Time::MIDNIGHT)
            .assume_offset(CHINA)
            .to_offset(UtcOffset::UTC)
    }

    /// The day before (itself on the first day there is).
    pub fn before(self) -> Self {
        Self(self.0.previous_day().unwrap_or(self.0))
    }

    /// `YYYYMMDD`, as WeChat Pay's bill API names a day.
    pub fn compact(self) -> String {
        self.to_string().replace('-', "")
    }

    /// The day after (itself on the last day there is).
    pub fn after(self) -> Self {
        Self(self.0.next_day().unwrap_or(self.0))
    }
}

impl fmt::Display for ChinaDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // time's Date prints ISO 8601 (`YYYY-MM-DD`) for the years a campus sees.
        fmt::Display::fmt(&self.0, f)
    }
}

impl serde::Serialize for ChinaDay {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).expect("time")
    }

    #[test]
    fn the_day_turns_over_at_midnight_in_china() {
        assert_eq!(
            ChinaDay::of(at("2026-12-03T15:59:59Z")).to_string(),
            "2026-12-03"
        );
        assert_eq!(
            ChinaDay::of(at("2026-12-03T16:00:00Z")).to_string(),
            "2026-12-04"
        );
        assert_eq!(
            ChinaDay::of(at("2026-12-03T23:30:00Z")).start(),
            at("2026-12-03T16:00:00Z")
        );
    }

    #[test]
    fn days_parse_print_and_step() {
        let day = ChinaDay::parse("2026-03-01").expect("day");
        assert_eq!(day.before().to_string(), "2026-02-28");
        assert_eq!(day.after().to_string(), "2026-03-02");
        assert_eq!(day.to_string(), "2026-03-01");
        assert_eq!(
            ChinaDay::of_unix_ms(day.start().unix_timestamp() * 1000),
            day
        );
        assert!(ChinaDay::parse("2026-3-1x").is_err());
        assert!(ChinaDay::parse("2026-02-30").is_err());
    }
}
