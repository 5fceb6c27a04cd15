//! Timestamps as stored: fixed-width UTC text with microsecond precision.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};

/// `2026-02-06T15:17:13.000000Z`: fixed width, so text order is time order.
const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// Formats an instant as stored (truncated to the microsecond).
pub(crate) fn format(time: &DateTime<Utc>) -> String {
    time.format(FORMAT).to_string()
}

/// The current instant, truncated to the microsecond (what a column keeps).
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Parses a stored timestamp: the stored form, any RFC 3339 instant, or
/// SQLite's own `YYYY-MM-DD HH:MM:SS[.fff]` (taken as UTC), so rows written
/// by hand or by `CURRENT_TIMESTAMP` still read.
pub(crate) fn parse(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    callview_core::call::parse_twilio_time(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn stored_form_is_fixed_width_and_round_trips() {
        let t = Utc.with_ymd_and_hms(2026, 2, 6, 15, 17, 13).unwrap();
        assert_eq!(format(&t), "2026-02-06T15:17:13.000000Z");
        assert_eq!(parse(&format(&t)), Some(t));
        let precise = now();
        assert_eq!(format(&precise).len(), 27);
        assert_eq!(parse(&format(&precise)), Some(precise));
    }

    #[test]
    fn text_order_is_time_order() {
        let a = Utc.with_ymd_and_hms(2026, 2, 6, 9, 0, 0).unwrap();
        let b = a + chrono::Duration::microseconds(1);
        let c = a + chrono::Duration::hours(3);
        assert!(format(&a) < format(&b) && format(&b) < format(&c));
    }

    #[test]
    fn other_forms_parse() {
        let t = Utc.with_ymd_and_hms(2026, 2, 6, 15, 17, 13).unwrap();
        assert_eq!(parse("2026-02-06 15:17:13"), Some(t));
        assert_eq!(parse("2026-02-06T15:17:13.000Z"), Some(t));
        assert_eq!(parse("2026-02-06T17:17:13+02:00"), Some(t));
        assert_eq!(parse("Fri, 06 Feb 2026 15:17:13 +0000"), Some(t));
        assert_eq!(parse("soon"), None);
    }
}
