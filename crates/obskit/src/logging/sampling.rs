//! Random sampling of events below WARN, as a per-layer filter.

use prometheus_client::metrics::counter::Counter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Filter};

/// Keeps each INFO, DEBUG and TRACE event with probability `rate`; WARN and ERROR always pass.
///
/// The decision uses a thread-local random number per event and keeps no per-callsite state.
/// Removed events are counted in `sampled`.
#[derive(Debug, Clone)]
pub(crate) struct Sampler {
    /// Events are kept when a uniform random `u64` is below this value.
    threshold: u64,
    keep_all: bool,
    sampled: Counter,
}

impl Sampler {
    /// Creates a sampler for `rate` in `0.0..=1.0`; the caller has validated the range.
    pub(crate) fn new(rate: f64, sampled: Counter) -> Self {
        // `as` saturates, so 1.0 maps to u64::MAX; `keep_all` covers the last value.
        let threshold = (rate * u64::MAX as f64) as u64;
        Self {
            threshold,
            keep_all: rate >= 1.0,
            sampled,
        }
    }

    /// Decides whether an event at `level` is kept, counting it when it is not.
    pub(crate) fn keep(&self, level: &Level) -> bool {
        if self.keep_all || *level <= Level::WARN {
            return true;
        }
        if fastrand::u64(..) < self.threshold {
            return true;
        }
        self.sampled.inc();
        false
    }
}

impl<S> Filter<S> for Sampler {
    fn enabled(&self, _meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        true
    }

    /// Returns `always` for callsites this sampler never drops (spans, WARN and ERROR events, and
    /// every event when the rate is 1.0), so the level filter alone decides their interest and
    /// they skip the `enabled` pass.
    ///
    /// NOTE: other event callsites keep `Interest::sometimes()`. With `Interest::always()`,
    /// tracing-subscriber 0.3.23 skips `enabled` for the callsite and a `false` from
    /// `event_enabled` then leaves the per-layer filter state set for the next event (its debug
    /// assertion in `FilterState::event_enabled` fires).
    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.keep_all || meta.is_span() || *meta.level() <= Level::WARN {
            Interest::always()
        } else {
            Interest::sometimes()
        }
    }

    fn event_enabled(&self, event: &Event<'_>, _cx: &Context<'_, S>) -> bool {
        self.keep(event.metadata().level())
    }

    /// Returns `TRACE`: the sampler removes events at random, never by level.
    ///
    /// Without a hint, the `and` combinator with the level filter reports no hint either. The
    /// process-wide maximum level, and the `log` crate's maximum level copied from it, would
    /// then stay at TRACE whatever the configured level.
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;

    /// Declares a static callsite and returns its metadata.
    macro_rules! metadata {
        ($level:expr, $kind:expr) => {{
            struct Callsite;
            impl tracing::callsite::Callsite for Callsite {
                fn set_interest(&self, _: Interest) {}
                fn metadata(&self) -> &Metadata<'_> {
                    &META
                }
            }
            static CALLSITE: Callsite = Callsite;
            static META: Metadata<'static> = Metadata::new(
                "test",
                "test",
                $level,
                None,
                None,
                None,
                tracing::field::FieldSet::new(&[], tracing::callsite::Identifier(&CALLSITE)),
                $kind,
            );
            &META
        }};
    }

    #[test]
    fn interest_is_always_where_nothing_is_dropped() {
        use tracing::metadata::Kind;
        use tracing_subscriber::Registry;

        let info_event = metadata!(Level::INFO, Kind::EVENT);
        let warn_event = metadata!(Level::WARN, Kind::EVENT);
        let info_span = metadata!(Level::INFO, Kind::SPAN);
        let interest =
            |sampler: &Sampler, meta| Filter::<Registry>::callsite_enabled(sampler, meta);

        let half = Sampler::new(0.5, Counter::default());
        assert!(interest(&half, info_event).is_sometimes());
        assert!(interest(&half, warn_event).is_always());
        assert!(interest(&half, info_span).is_always());

        let all = Sampler::new(1.0, Counter::default());
        assert!(interest(&all, info_event).is_always());
    }

    #[test]
    fn level_hint_kept_by_and() {
        use tracing_subscriber::Registry;
        use tracing_subscriber::filter::FilterExt;

        let sampler = Sampler::new(0.5, Counter::default());
        let combined = LevelFilter::WARN.and(sampler);
        assert_eq!(
            Filter::<Registry>::max_level_hint(&combined),
            Some(LevelFilter::WARN)
        );
    }

    #[test]
    fn rate_zero_keeps_only_warn_and_error() {
        let sampler = Sampler::new(0.0, Counter::default());
        assert!(sampler.keep(&Level::ERROR));
        assert!(sampler.keep(&Level::WARN));
        assert!(!sampler.keep(&Level::INFO));
        assert!(!sampler.keep(&Level::DEBUG));
        assert!(!sampler.keep(&Level::TRACE));
        assert_eq!(sampler.sampled.get(), 3);
    }

    #[test]
    fn rate_one_keeps_everything() {
        let sampler = Sampler::new(1.0, Counter::default());
        assert!((0..1000).all(|_| sampler.keep(&Level::TRACE)));
        assert_eq!(sampler.sampled.get(), 0);
    }

    #[test]
    fn rate_half_keeps_about_half() {
        let sampler = Sampler::new(0.5, Counter::default());
        let kept = (0..10_000).filter(|_| sampler.keep(&Level::INFO)).count() as u64;
        // Binomial(10 000, 0.5) has a standard deviation of 50; 400 is eight of them.
        assert!((4600..=5400).contains(&kept), "kept {kept}");
        assert_eq!(kept + sampler.sampled.get(), 10_000);
    }
}
