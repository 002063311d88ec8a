//! RFC 3339 UTC timestamps with microsecond precision, cached per second.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of the `2026-12-04T15:26:22` prefix that changes once per second.
const PREFIX_LEN: usize = 19;

thread_local! {
    /// The second most recently formatted on this thread and its date-time prefix.
    static CACHE: Cell<(u64, [u8; PREFIX_LEN])> = const { Cell::new((u64::MAX, [0; PREFIX_LEN])) };
}

/// Appends the current time as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub(crate) fn write_now(out: &mut Vec<u8>) {
    write_timestamp(out, SystemTime::now());
}

/// Appends `time` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`; times before 1970 are written as the epoch.
pub(crate) fn write_timestamp(out: &mut Vec<u8>, time: SystemTime) {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let micros = since_epoch.subsec_micros();

    let prefix = CACHE.with(|cache| {
        let (cached_seconds, cached_prefix) = cache.get();
        if cached_seconds == seconds {
            return cached_prefix;
        }
        let prefix = format_prefix(seconds);
        cache.set((seconds, prefix));
        prefix
    });

    // The whole timestamp is assembled on the stack and appended with one copy.
    let mut stamp = [b'0'; PREFIX_LEN + 8];
    let (date_time, rest) = stamp.split_at_mut(PREFIX_LEN);
    date_time.copy_from_slice(&prefix);
    if let [dot, fraction @ .., zone] = rest {
        *dot = b'.';
        *zone = b'Z';
        let mut value = micros;
        for digit in fraction.iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    out.extend_from_slice(&stamp);
}

/// Formats the date and time of day of `seconds` since the Unix epoch.
///
/// Years are written with four digits, so instants after 9999-12-31 wrap; system clocks do not
/// reach them.
fn format_prefix(seconds: u64) -> [u8; PREFIX_LEN] {
    let days = seconds / 86_400;
    let second_of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);

    let mut prefix = *b"0000-00-00T00:00:00";
    write_digits(&mut prefix[0..4], year);
    write_digits(&mut prefix[5..7], month);
    write_digits(&mut prefix[8..10], day);
    write_digits(&mut prefix[11..13], second_of_day / 3600);
    write_digits(&mut prefix[14..16], second_of_day / 60 % 60);
    write_digits(&mut prefix[17..19], second_of_day % 60);
    prefix
}

fn write_digits(slot: &mut [u8], mut value: u64) {
    for digit in slot.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// This is Howard Hinnant's `civil_from_days` algorithm, restricted to non-negative days.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Length of `2026-12-04T15:26:22.123456Z`.
    const TIMESTAMP_LEN: usize = 27;

    fn format(seconds: u64, micros: u32) -> String {
        let mut out = Vec::new();
        let time = UNIX_EPOCH + Duration::new(seconds, micros * 1000);
        write_timestamp(&mut out, time);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn epoch() {
        assert_eq!(format(0, 0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn known_instants() {
        // Values checked against `date -u -d @SECONDS +%Y-%m-%dT%H:%M:%S`.
        assert_eq!(format(951_782_400, 1), "2000-02-29T00:00:00.000001Z");
        assert_eq!(
            format(1_709_251_199, 999_999),
            "2024-02-29T23:59:59.999999Z"
        );
        assert_eq!(
            format(1_796_397_982, 123_456),
            "2026-12-04T15:26:22.123456Z"
        );
        assert_eq!(format(4_102_444_800, 0), "2100-01-01T00:00:00.000000Z");
    }

    #[test]
    fn cache_follows_second_changes() {
        assert_eq!(format(1_796_397_982, 5), "2026-12-04T15:26:22.000005Z");
        assert_eq!(format(1_796_397_983, 5), "2026-12-04T15:26:23.000005Z");
        assert_eq!(format(1_796_397_982, 7), "2026-12-04T15:26:22.000007Z");
    }

    #[test]
    fn before_epoch_clamps() {
        let mut out = Vec::new();
        write_timestamp(&mut out, UNIX_EPOCH - Duration::from_secs(10));
        assert_eq!(out, b"1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn length_is_fixed() {
        let mut out = Vec::new();
        write_now(&mut out);
        assert_eq!(out.len(), TIMESTAMP_LEN);
    }

    #[test]
    fn every_day_of_a_leap_cycle() {
        // Walks 400 years day by day and checks that the calendar advances by exactly one day.
        let mut previous = civil_from_days(0);
        for days in 1..146_097 {
            let current = civil_from_days(days);
            let next_day = (previous.0, previous.1, previous.2 + 1);
            let next_month = (previous.0, previous.1 + 1, 1);
            let next_year = (previous.0 + 1, 1, 1);
            assert!(
                current == next_day || current == next_month || current == next_year,
                "{previous:?} -> {current:?}"
            );
            previous = current;
        }
        assert_eq!(previous, (2369, 12, 31));
    }
}
