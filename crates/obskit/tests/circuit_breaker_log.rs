//! Circuit breaker transition logs. Each transition writes one line with the breaker's name and
//! the rates that caused it, and an opening also gives the time to the next probe.
#![cfg(feature = "resilience")]
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests fail by panicking"
)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use obskit::metrics::Registry;
use obskit::resilience::breaker::{CircuitBreakerConfig, CircuitBreakerRegistry};
use obskit::resilience::{ManualClock, State};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Events of target `obskit::resilience`, each as its level and fields rendered to text.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

impl Events {
    fn take(&self) -> Vec<BTreeMap<String, String>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl<S: Subscriber> Layer<S> for Events {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        if event.metadata().target() != "obskit::resilience" {
            return;
        }
        let mut fields = BTreeMap::new();
        fields.insert("level".to_owned(), event.metadata().level().to_string());
        event.record(&mut FieldText(&mut fields));
        self.0.lock().unwrap().push(fields);
    }
}

struct FieldText<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldText<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

fn field<'a>(event: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    event.get(name).map(String::as_str)
}

#[test]
fn each_transition_logged_once() {
    let events = Events::default();
    let subscriber = tracing_subscriber::registry().with(events.clone());
    let metrics = Registry::default();
    let clock = ManualClock::new();
    let breakers = CircuitBreakerRegistry::new(&metrics).with_clock(clock.clone());
    let breaker = breakers
        .get_or_create_with(
            "payments",
            CircuitBreakerConfig {
                sliding_window_size: 10,
                minimum_number_of_calls: 10,
                permitted_number_of_calls_in_half_open_state: 2,
                wait_duration_in_open_state: Duration::from_secs(10),
                ..CircuitBreakerConfig::default()
            },
        )
        .unwrap();

    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..10 {
            breaker.try_acquire().unwrap().failure();
        }
        assert_eq!(breaker.state(), State::Open);
        for _ in 0..5 {
            assert!(breaker.try_acquire().is_err());
        }
        let opened = events.take();
        assert_eq!(opened.len(), 1, "{opened:?}");
        let opened = &opened[0];
        assert_eq!(field(opened, "level"), Some("WARN"));
        assert_eq!(field(opened, "message"), Some("circuit breaker opened"));
        assert_eq!(field(opened, "circuit_breaker"), Some("payments"));
        assert_eq!(field(opened, "from"), Some("closed"));
        assert_eq!(field(opened, "to"), Some("open"));
        assert_eq!(field(opened, "failure_rate"), Some("100.0"));
        assert_eq!(field(opened, "slow_call_rate"), Some("0.0"));
        assert_eq!(field(opened, "next_probe_in_seconds"), Some("10.0"));

        clock.advance(Duration::from_millis(10_001));
        let first_probe = breaker.try_acquire().unwrap();
        let second_probe = breaker.try_acquire().unwrap();
        let half_open = events.take();
        assert_eq!(half_open.len(), 1, "{half_open:?}");
        assert_eq!(field(&half_open[0], "level"), Some("INFO"));
        assert_eq!(field(&half_open[0], "from"), Some("open"));
        assert_eq!(field(&half_open[0], "to"), Some("half_open"));

        first_probe.success();
        second_probe.success();
        let closed = events.take();
        assert_eq!(closed.len(), 1, "{closed:?}");
        let closed = &closed[0];
        assert_eq!(field(closed, "level"), Some("INFO"));
        assert_eq!(
            field(closed, "message"),
            Some("circuit breaker changed state")
        );
        assert_eq!(field(closed, "circuit_breaker"), Some("payments"));
        assert_eq!(field(closed, "from"), Some("half_open"));
        assert_eq!(field(closed, "to"), Some("closed"));
        assert_eq!(field(closed, "failure_rate"), Some("0.0"));
        assert_eq!(field(closed, "slow_call_rate"), Some("0.0"));
    });
    assert_eq!(breaker.state(), State::Closed);
}
