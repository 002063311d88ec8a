//! Parsing of the HTTP `Retry-After` header into a delay.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::RETRY_AFTER;

/// Parses a `Retry-After` value into the delay it requests, measured from now.
///
/// RFC 9110, section 10.2.3 allows two forms: delta-seconds (`120`) and an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, or the obsolete RFC 850 and asctime forms). A date in
/// the past gives [`Duration::ZERO`]. Anything else (a sign, a fraction, an empty value, a
/// malformed date) gives `None`, so the caller falls back to its own backoff. Spaces and tabs
/// around the value are ignored, and delta-seconds beyond `u64::MAX` saturate.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use obskit::resilience::retry::parse_retry_after;
///
/// assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT"), Some(Duration::ZERO));
/// assert_eq!(parse_retry_after("-5"), None);
/// ```
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    parse_retry_after_at(value, SystemTime::now())
}

/// Parses a `Retry-After` value as [`parse_retry_after`] does, measuring an HTTP-date from
/// `now` instead of the system clock.
pub fn parse_retry_after_at(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Some(Duration::from_secs(parse_delta_seconds(value)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Reads the `Retry-After` header of a response, as [`parse_retry_after`] parses it.
///
/// `None` when the header is missing, not visible ASCII or invalid. With several
/// `Retry-After` fields, which the RFC does not allow, only the first is read.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use http::{HeaderMap, HeaderValue, header::RETRY_AFTER};
/// use obskit::resilience::retry::retry_after_from_headers;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
/// assert_eq!(retry_after_from_headers(&headers), Some(Duration::from_secs(3)));
/// ```
pub fn retry_after_from_headers(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value)
}

/// Parses a string of ASCII digits, saturating at `u64::MAX`.
fn parse_delta_seconds(digits: &str) -> u64 {
    digits.bytes().fold(0u64, |seconds, digit| {
        seconds
            .saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    /// 1994-11-06 08:49:37 UTC, the example date of RFC 9110.
    fn example_date() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[test]
    fn delta_seconds_parse() {
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 7\t"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("007"), Some(Duration::from_secs(7)));
    }

    #[test]
    fn delta_seconds_saturate() {
        let huge = "99999999999999999999999999";
        assert_eq!(parse_retry_after(huge), Some(Duration::from_secs(u64::MAX)));
    }

    #[test]
    fn invalid_values_are_ignored() {
        for value in [
            "",
            " ",
            "-5",
            "+5",
            "1.5",
            "5s",
            "5 5",
            "0x10",
            "soon",
            "١٢",
            "Sun, 06 Nov 1994",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
        ] {
            assert_eq!(parse_retry_after(value), None, "value {value:?}");
        }
    }

    #[test]
    fn all_three_date_forms_parse() {
        let now = example_date() - Duration::from_secs(90);
        for value in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after_at(value, now),
                Some(Duration::from_secs(90)),
                "value {value:?}"
            );
        }
    }

    #[test]
    fn past_date_means_no_wait() {
        let now = example_date() + Duration::from_secs(1);
        assert_eq!(
            parse_retry_after_at("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn future_date_is_measured_from_system_clock() {
        let in_a_minute = SystemTime::now() + Duration::from_secs(60);
        let value = httpdate::fmt_http_date(in_a_minute);
        let delay = parse_retry_after(&value).unwrap();
        // The date has whole seconds, and a second of the test may pass in between.
        assert!(delay <= Duration::from_secs(60), "{delay:?}");
        assert!(delay >= Duration::from_secs(58), "{delay:?}");
    }

    #[test]
    fn header_map_reads_first_value() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after_from_headers(&headers), None);
        headers.append(RETRY_AFTER, "4".parse().unwrap());
        headers.append(RETRY_AFTER, "9".parse().unwrap());
        assert_eq!(
            retry_after_from_headers(&headers),
            Some(Duration::from_secs(4))
        );
        headers.insert(RETRY_AFTER, "later".parse().unwrap());
        assert_eq!(retry_after_from_headers(&headers), None);
    }
}
