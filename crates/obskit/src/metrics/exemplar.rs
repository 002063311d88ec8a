//! Histogram exemplars: per-bucket storage and their OpenMetrics text encoding.
//!
//! Each histogram bucket keeps the latest observation made with trace context, as the
//! OpenMetrics exemplar `# {trace_id="…",span_id="…"} <value> <timestamp>` written after the
//! bucket line. Only the OpenMetrics format carries exemplars, because Prometheus text 0.0.4
//! has no syntax for them.
//!
//! # How the exemplars reach the output
//!
//! prometheus-client 0.26 writes exemplars only from its own `Exemplar` type, which has no
//! public constructor, so a custom metric type cannot hand it any. obskit therefore writes
//! them itself. [`encode_openmetrics`] runs the prometheus-client encoder while a per-thread
//! pass is active. During the pass, each histogram series with an exemplar leaves a copy of its
//! exemplars in the pass and adds the marker label `__obskit_exemplar="<n>"` to the first line
//! it writes. Afterwards the marker is removed, and the `_bucket` lines that follow it get the
//! exemplar of their bucket appended. prometheus-client writes the lines of one series in one
//! call, and OpenMetrics requires increasing `le`, so the n-th bucket line is bucket n. The `__` prefix is reserved for Prometheus, so the validated label names of a
//! family never clash with the marker.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

/// Trace id and span id of the span an observation was made in, as raw W3C bytes.
pub(crate) type SpanIds = ([u8; 16], [u8; 8]);

/// Name of the label that marks a series line during an OpenMetrics pass.
const MARKER_LABEL: &str = "__obskit_exemplar";

/// Label names of an exemplar. With a 32-digit trace id and a 16-digit span id they make 63
/// characters, within the OpenMetrics 1.0 limit of 128 for names and values together.
const TRACE_ID_LABEL: &str = "trace_id";
const SPAN_ID_LABEL: &str = "span_id";

/// Maximum characters of an exemplar label set, names and values together, in OpenMetrics 1.0.
const MAX_LABEL_SET_CHARS: usize = 128;

const _: () = assert!(
    TRACE_ID_LABEL.len() + 32 + SPAN_ID_LABEL.len() + 16 <= MAX_LABEL_SET_CHARS,
    "the exemplar label set must fit the OpenMetrics limit"
);

/// One stored exemplar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exemplar {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) value: f64,
    /// Time of the observation since the Unix epoch; `None` if the system clock is before it.
    pub(crate) timestamp: Option<Duration>,
}

impl Exemplar {
    /// Builds an exemplar stamped with the current time, or `None` when either id is all zeros,
    /// which W3C Trace Context defines as invalid.
    pub(crate) fn now(value: f64, (trace_id, span_id): SpanIds) -> Option<Self> {
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            value,
            timestamp: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok(),
        })
    }

    /// Writes ` # {trace_id="…",span_id="…"} <value> <timestamp>`, the exemplar suffix of an
    /// OpenMetrics sample line. The timestamp is in seconds with millisecond precision.
    pub(crate) fn write_openmetrics(&self, out: &mut String) -> fmt::Result {
        out.push_str(" # {");
        out.push_str(TRACE_ID_LABEL);
        out.push_str("=\"");
        push_hex(out, &self.trace_id);
        out.push_str("\",");
        out.push_str(SPAN_ID_LABEL);
        out.push_str("=\"");
        push_hex(out, &self.span_id);
        out.push_str("\"} ");
        push_number(out, self.value);
        if let Some(timestamp) = self.timestamp {
            write!(
                out,
                " {}.{:03}",
                timestamp.as_secs(),
                timestamp.subsec_millis()
            )?;
        }
        Ok(())
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    for byte in bytes {
        for nibble in [byte >> 4, byte & 0x0f] {
            if let Some(digit) = char::from_digit(u32::from(nibble), 16) {
                out.push(digit);
            }
        }
    }
}

/// Writes `value` as an OpenMetrics number: the shortest round-trip decimal form, `NaN`,
/// `+Inf` or `-Inf`.
fn push_number(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        out.push_str(ryu::Buffer::new().format_finite(value));
    }
}

/// The latest exemplar of each bucket of one histogram series.
///
/// The slots are allocated on the first exemplar, so a series observed only outside sampled
/// spans costs one empty [`OnceLock`]. Storing an exemplar locks the mutex of its bucket, and
/// an observation without an exemplar never touches the mutexes.
#[derive(Debug, Default)]
pub(crate) struct BucketExemplars {
    slots: OnceLock<Box<[Mutex<Option<Exemplar>>]>>,
}

impl BucketExemplars {
    /// Replaces the exemplar of bucket `index` of a series with `buckets` buckets.
    pub(crate) fn store(&self, index: usize, buckets: usize, exemplar: Exemplar) {
        let slots = self
            .slots
            .get_or_init(|| (0..buckets).map(|_| Mutex::new(None)).collect());
        if let Some(slot) = slots.get(index) {
            *slot.lock() = Some(exemplar);
        }
    }

    /// Returns a copy of the exemplar of every bucket, or `None` if no bucket has one.
    pub(crate) fn snapshot(&self) -> Option<Vec<Option<Exemplar>>> {
        let slots = self.slots.get()?;
        let copies: Vec<Option<Exemplar>> = slots.iter().map(|slot| *slot.lock()).collect();
        copies.iter().any(Option::is_some).then_some(copies)
    }
}

/// Returns the ids of the current span when its trace is sampled.
#[inline]
pub(crate) fn current_span_ids() -> Option<SpanIds> {
    #[cfg(test)]
    if let Some(ids) = test_span::get() {
        return Some(ids);
    }
    crate::trace::sampled_span_ids()
}

/// A per-thread stand-in for the span bridge, so unit tests can observe inside a "sampled span".
#[cfg(test)]
pub(crate) mod test_span {
    use std::cell::Cell;

    use super::SpanIds;

    thread_local! {
        static CURRENT: Cell<Option<SpanIds>> = const { Cell::new(None) };
    }

    pub(super) fn get() -> Option<SpanIds> {
        CURRENT.with(Cell::get)
    }

    /// Runs `f` as if inside a sampled span with `ids`.
    pub(crate) fn within<R>(ids: SpanIds, f: impl FnOnce() -> R) -> R {
        let previous = CURRENT.with(|current| current.replace(Some(ids)));
        let result = f();
        CURRENT.with(|current| current.set(previous));
        result
    }
}

thread_local! {
    /// Exemplars of the marked series of the OpenMetrics pass running on this thread, indexed
    /// by marker; `None` when no pass runs.
    static PASS: RefCell<Option<Vec<Vec<Option<Exemplar>>>>> = const { RefCell::new(None) };
}

/// Returns the marker for a series whose histogram is about to be encoded, or `None` when no
/// OpenMetrics pass runs or the series has no exemplar.
pub(crate) fn mark(exemplars: &BucketExemplars) -> Option<usize> {
    PASS.with(|pass| {
        let mut pass = pass.borrow_mut();
        let series = pass.as_mut()?;
        let snapshot = exemplars.snapshot()?;
        series.push(snapshot);
        Some(series.len() - 1)
    })
}

/// Writes the marker label of series `marker` through a label set encoder.
pub(crate) fn encode_marker(
    encoder: &mut prometheus_client::encoding::LabelSetEncoder<'_>,
    marker: usize,
) -> fmt::Result {
    let mut label = encoder.encode_label();
    let mut key = label.encode_label_key()?;
    key.write_str(MARKER_LABEL)?;
    let mut value = key.encode_label_value()?;
    value.write_str(itoa::Buffer::new().format(marker))?;
    value.finish()
}

/// Ends the pass of this thread when dropped, also when encoding fails or panics.
struct Pass {
    previous: Option<Vec<Vec<Option<Exemplar>>>>,
}

impl Pass {
    fn start() -> Self {
        let previous = PASS.with(|pass| pass.replace(Some(Vec::new())));
        Self { previous }
    }

    fn finish(self) -> Vec<Vec<Option<Exemplar>>> {
        PASS.with(|pass| pass.take()).unwrap_or_default()
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        let previous = self.previous.take();
        PASS.with(|pass| pass.replace(previous));
    }
}

/// Runs `encode`, which appends OpenMetrics text to `out`, and adds the exemplars of every
/// histogram series it encoded.
///
/// # Errors
///
/// The error of `encode`. `out` then contains the partial output, markers included.
pub(crate) fn encode_openmetrics(
    out: &mut String,
    encode: impl FnOnce(&mut String) -> fmt::Result,
) -> fmt::Result {
    let start = out.len();
    let pass = Pass::start();
    encode(out)?;
    let series = pass.finish();
    if series.is_empty() {
        return Ok(());
    }

    // `Registry::encode` starts with an empty buffer, which is taken without a copy.
    let encoded = if start == 0 {
        std::mem::take(out)
    } else {
        out.split_off(start)
    };
    out.reserve(encoded.len() + series.len() * 128);
    splice(&encoded, &series, out)
}

/// Copies `encoded` to `out`, removing every marker label and appending the exemplars of each
/// marked series to its bucket lines.
///
/// The text between the lines that change is copied in bulk.
fn splice(encoded: &str, series: &[Vec<Option<Exemplar>>], out: &mut String) -> fmt::Result {
    let mut copied = 0;
    for (at, _) in encoded.match_indices(MARKER_LABEL) {
        if at < copied {
            continue;
        }
        let Some(marker) = marker_at(encoded, at) else {
            continue;
        };
        out.push_str(encoded.get(copied..marker.start).unwrap_or_default());
        copied = marker.end;

        // The walk over the bucket lines stops at the last bucket with an exemplar.
        let Some(exemplars) = series.get(marker.series).and_then(|exemplars| {
            let last = exemplars.iter().rposition(Option::is_some)?;
            exemplars.get(..=last)
        }) else {
            continue;
        };
        for (line_end, exemplar) in bucket_line_ends(encoded, marker.line_start, exemplars) {
            out.push_str(encoded.get(copied..line_end).unwrap_or_default());
            copied = line_end;
            exemplar.write_openmetrics(out)?;
        }
    }
    out.push_str(encoded.get(copied..).unwrap_or_default());
    Ok(())
}

/// Returns the end of each bucket line of the series whose first line starts at `line_start`,
/// paired with the exemplar of that bucket, for the buckets that have one.
///
/// The series ends after `exemplars.len()` bucket lines, or at a line that is not a sample of
/// the same histogram.
fn bucket_line_ends<'a>(
    text: &'a str,
    line_start: usize,
    exemplars: &'a [Option<Exemplar>],
) -> impl Iterator<Item = (usize, Exemplar)> + 'a {
    let rest = text.get(line_start..).unwrap_or_default();
    let base = sample_name(rest)
        .map(|name| {
            HISTOGRAM_SUFFIXES
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name)
        })
        .unwrap_or_default();
    let same_histogram = move |name: &str| {
        name.strip_prefix(base)
            .is_some_and(|suffix| HISTOGRAM_SUFFIXES.contains(&suffix))
    };

    let mut offset = line_start;
    let lines = rest.split_inclusive('\n').map(move |line| {
        let start = offset;
        offset += line.len();
        (start + line.trim_end_matches('\n').len(), line)
    });
    lines
        .take_while(move |(_, line)| sample_name(line).is_some_and(same_histogram))
        .filter(|(_, line)| sample_name(line).is_some_and(|name| name.ends_with("_bucket")))
        .zip(exemplars)
        .filter_map(|((line_end, _), exemplar)| exemplar.map(|exemplar| (line_end, exemplar)))
}

/// Sample name suffixes of an OpenMetrics histogram.
const HISTOGRAM_SUFFIXES: [&str; 4] = ["_bucket", "_count", "_sum", "_created"];

/// Returns the metric name of a sample line: the text before its label set or value. Comment
/// lines have none.
fn sample_name(line: &str) -> Option<&str> {
    if line.starts_with('#') {
        return None;
    }
    // A byte scan, because a `char` pattern decodes UTF-8 and this runs for every bucket line.
    let end = line.bytes().position(|byte| byte == b'{' || byte == b' ')?;
    line.get(..end).filter(|name| !name.is_empty())
}

/// A marker label found in a sample line.
#[derive(Debug, PartialEq)]
struct Marker {
    /// Start of the bytes to remove: the `,` before the marker, or the `{` if it is the only
    /// label.
    start: usize,
    /// End of the bytes to remove: after the closing quote of the marker value, or after the
    /// `}` if the marker is the only label.
    end: usize,
    line_start: usize,
    series: usize,
}

/// Parses the marker whose name starts at byte `at` of `text`.
///
/// A marker is `{` or `,`, the marker name, `="`, digits and `"}`, on a line that is not a
/// comment. The text encoder writes every `"` inside a label value as `\\"`, so `="` directly
/// followed by digits and `"}` never occurs inside a value, and a match is always a label.
fn marker_at(text: &str, at: usize) -> Option<Marker> {
    let separator = at.checked_sub(1)?;
    let only_label = match text.as_bytes().get(separator)? {
        b'{' => true,
        b',' => false,
        _ => return None,
    };

    let value = text
        .get(at..)?
        .strip_prefix(MARKER_LABEL)?
        .strip_prefix("=\"")?;
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    let series = value.get(..digits)?.parse().ok()?;
    if !value.get(digits..)?.starts_with("\"}") {
        return None;
    }
    let value_end = text.len() - value.len() + digits + 1;

    let line_start = text.get(..at)?.rfind('\n').map_or(0, |newline| newline + 1);
    if text.get(line_start..)?.starts_with('#') {
        return None;
    }
    Some(Marker {
        start: separator,
        end: if only_label { value_end + 1 } else { value_end },
        line_start,
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE_ID: [u8; 16] = [
        0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47,
        0x36,
    ];
    const SPAN_ID: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];

    fn exemplar(value: f64) -> Exemplar {
        Exemplar {
            trace_id: TRACE_ID,
            span_id: SPAN_ID,
            value,
            timestamp: Some(Duration::from_millis(1_733_312_345_067)),
        }
    }

    fn rendered(exemplar: &Exemplar) -> Result<String, fmt::Error> {
        let mut out = String::new();
        exemplar.write_openmetrics(&mut out)?;
        Ok(out)
    }

    #[test]
    fn exemplar_renders_openmetrics_suffix() -> Result<(), fmt::Error> {
        assert_eq!(
            rendered(&exemplar(0.042))?,
            " # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"} 0.042 1733312345.067"
        );
        Ok(())
    }

    #[test]
    fn exemplar_label_set_fits_limit() -> Result<(), fmt::Error> {
        let text = rendered(&exemplar(1.0))?;
        let labels = text
            .split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
            .map(|(labels, _)| labels)
            .unwrap_or_default();
        let chars: usize = labels
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(name, value)| name.chars().count() + value.trim_matches('"').chars().count())
            .sum();
        assert_eq!(chars, 63);
        assert!(chars <= MAX_LABEL_SET_CHARS);
        Ok(())
    }

    #[test]
    fn special_values_use_openmetrics_spelling() -> Result<(), fmt::Error> {
        let mut without_time = exemplar(f64::NAN);
        without_time.timestamp = None;
        assert!(rendered(&without_time)?.ends_with("} NaN"));
        without_time.value = f64::INFINITY;
        assert!(rendered(&without_time)?.ends_with("} +Inf"));
        without_time.value = f64::NEG_INFINITY;
        assert!(rendered(&without_time)?.ends_with("} -Inf"));
        without_time.value = 2.0;
        assert!(rendered(&without_time)?.ends_with("} 2.0"));
        Ok(())
    }

    #[test]
    fn zero_ids_make_no_exemplar() {
        assert!(Exemplar::now(1.0, ([0; 16], SPAN_ID)).is_none());
        assert!(Exemplar::now(1.0, (TRACE_ID, [0; 8])).is_none());
        let made = Exemplar::now(1.0, (TRACE_ID, SPAN_ID));
        assert!(made.is_some_and(|made| made.timestamp.is_some()));
    }

    #[test]
    fn storage_keeps_latest_per_bucket() {
        let exemplars = BucketExemplars::default();
        assert!(exemplars.snapshot().is_none());
        exemplars.store(1, 3, exemplar(0.5));
        exemplars.store(1, 3, exemplar(0.7));
        exemplars.store(2, 3, exemplar(9.0));
        exemplars.store(7, 3, exemplar(1.0));
        let snapshot = exemplars.snapshot().unwrap_or_default();
        assert_eq!(snapshot.len(), 3);
        assert_eq!(snapshot.first().copied().flatten(), None);
        assert_eq!(snapshot.get(1).copied().flatten(), Some(exemplar(0.7)));
        assert_eq!(snapshot.get(2).copied().flatten(), Some(exemplar(9.0)));
    }

    #[test]
    fn slot_size_matches_docs() {
        // docs/metrics.md states 56 bytes per bucket for a series with exemplars.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(size_of::<Mutex<Option<Exemplar>>>(), 56);
    }

    #[test]
    fn marker_inside_label_value_ignored() {
        // A label value `a,__obskit_exemplar="1"}` as the text encoder escapes it.
        let line = "x_bucket{route=\"a,__obskit_exemplar=\\\"1\\\"}\",__obskit_exemplar=\"0\"} 3\n";
        let inside = line.find(MARKER_LABEL).unwrap_or_default();
        assert_eq!(marker_at(line, inside), None);
        let outside = line.rfind(MARKER_LABEL).unwrap_or_default();
        let found = marker_at(line, outside);
        assert_eq!(found.as_ref().map(|marker| marker.series), Some(0));
        assert_eq!(found.as_ref().map(|marker| marker.line_start), Some(0));
        let help = "# HELP x Text with ,__obskit_exemplar=\"0\"} in it.\n";
        assert_eq!(
            marker_at(help, help.find(MARKER_LABEL).unwrap_or_default()),
            None
        );
    }

    #[test]
    fn splice_removes_markers_and_appends_exemplars() -> Result<(), fmt::Error> {
        let encoded = concat!(
            "# TYPE x histogram\n",
            "x_sum{a=\"1\",__obskit_exemplar=\"0\"} 0.5\n",
            "x_count{a=\"1\"} 1\n",
            "x_bucket{le=\"0.1\",a=\"1\"} 0\n",
            "x_bucket{le=\"+Inf\",a=\"1\"} 1\n",
            "x_sum{a=\"2\"} 0.0\n",
            "x_bucket{le=\"+Inf\",a=\"2\"} 0\n",
            "y_sum{__obskit_exemplar=\"1\"} 0.05\n",
            "y_bucket{le=\"0.1\"} 1\n",
            "y_bucket{le=\"+Inf\"} 1\n",
            "# EOF\n",
        );
        let mut with_time = exemplar(0.5);
        with_time.timestamp = None;
        let series = vec![vec![None, Some(with_time)], vec![Some(exemplar(0.05))]];
        let mut out = String::new();
        splice(encoded, &series, &mut out)?;
        let expected = concat!(
            "# TYPE x histogram\n",
            "x_sum{a=\"1\"} 0.5\n",
            "x_count{a=\"1\"} 1\n",
            "x_bucket{le=\"0.1\",a=\"1\"} 0\n",
            "x_bucket{le=\"+Inf\",a=\"1\"} 1 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"} 0.5\n",
            "x_sum{a=\"2\"} 0.0\n",
            "x_bucket{le=\"+Inf\",a=\"2\"} 0\n",
            "y_sum 0.05\n",
            "y_bucket{le=\"0.1\"} 1 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"} 0.05 1733312345.067\n",
            "y_bucket{le=\"+Inf\"} 1\n",
            "# EOF\n",
        );
        assert_eq!(out, expected);
        Ok(())
    }

    #[test]
    fn pass_collects_only_while_active() {
        let exemplars = BucketExemplars::default();
        exemplars.store(0, 1, exemplar(0.1));
        assert_eq!(mark(&exemplars), None, "no pass runs");

        let mut markers = Vec::new();
        let result = encode_openmetrics(&mut String::new(), |_| {
            markers.push(mark(&exemplars));
            markers.push(mark(&BucketExemplars::default()));
            markers.push(mark(&exemplars));
            Ok(())
        });
        assert!(result.is_ok());
        assert_eq!(markers, vec![Some(0), None, Some(1)]);
        assert_eq!(mark(&exemplars), None, "the pass ended");
    }
}
