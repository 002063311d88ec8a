//! The breaker's state machine: permits, recording outcomes and transitions.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use super::State;
use super::config::{
    BreakerError, CircuitBreakerConfig, Compiled, Preset, SlidingWindowType, is_valid_name, nanos,
    open_state_wait,
};
use super::metrics::BreakerMetrics;
use super::snapshot::Snapshot;
use super::window::{CountWindow, Counts, Record, TimeWindow, Window};
use crate::metrics::{Pending, Registry};
use crate::resilience::{Clock, CoarseMonotonicClock, Error};

/// Log target of every transition.
const LOG_TARGET: &str = "obskit::resilience";

/// The state word packs the state in its low 8 bits and a generation, increased by every
/// transition, above them. Permits keep the word they were issued under.
const STATE_BITS: u32 = 8;
const STATE_MASK: u64 = (1 << STATE_BITS) - 1;

const fn state_code(state: State) -> u64 {
    match state {
        State::Closed => 0,
        State::Open => 1,
        State::HalfOpen => 2,
        State::ForcedOpen => 3,
        State::Disabled => 4,
    }
}

const CLOSED: u64 = state_code(State::Closed);
const HALF_OPEN: u64 = state_code(State::HalfOpen);

fn state_of(word: u64) -> State {
    match word & STATE_MASK {
        0 => State::Closed,
        1 => State::Open,
        2 => State::HalfOpen,
        3 => State::ForcedOpen,
        _ => State::Disabled,
    }
}

fn generation_of(word: u64) -> u64 {
    word >> STATE_BITS
}

/// Probe permits: the low 32 bits of the half-open generation above the permits left.
const PERMIT_TAG_SHIFT: u32 = 32;
const PERMITS_MASK: u64 = (1 << PERMIT_TAG_SHIFT) - 1;

/// Probe counts: calls, failures and slow calls in 14 bits each (at most 10,000 probes), and
/// the low 22 bits of the half-open generation above them, so a late outcome from an earlier
/// half-open period cannot count in this one.
const PROBE_FIELD_BITS: u32 = 14;
const PROBE_FIELD_MASK: u64 = (1 << PROBE_FIELD_BITS) - 1;
const PROBE_TAG_SHIFT: u32 = 3 * PROBE_FIELD_BITS;

fn permit_tag(word: u64) -> u64 {
    generation_of(word) & PERMITS_MASK
}

fn probe_tag(word: u64) -> u64 {
    generation_of(word) & ((1 << (64 - PROBE_TAG_SHIFT)) - 1)
}

fn decode_probes(word: u64) -> Counts {
    let field = |index: u32| {
        u32::try_from((word >> (index * PROBE_FIELD_BITS)) & PROBE_FIELD_MASK).unwrap_or(0)
    };
    Counts {
        calls: field(0),
        failures: field(1),
        slow: field(2),
    }
}

/// The outcome of the call behind a permit, as the breaker records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The call succeeded. It still counts as slow when it took too long.
    Success,
    /// The call failed and counts toward the failure rate.
    Failure,
    /// The call is not recorded, as for a client error that is unrelated to the
    /// dependency's health. A half-open breaker lets another probe take its place.
    Ignored,
}

/// A circuit breaker. Cheap to clone: clones share the state.
///
/// See the [module documentation](super) for the states and settings.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use obskit::resilience::breaker::{CircuitBreaker, CircuitBreakerConfig, Outcome};
/// use obskit::resilience::{ManualClock, State};
///
/// let clock = ManualClock::new();
/// let breaker = CircuitBreaker::builder("search")
///     .config(CircuitBreakerConfig {
///         sliding_window_size: 4,
///         minimum_number_of_calls: 4,
///         wait_duration_in_open_state: Duration::from_secs(10),
///         ..CircuitBreakerConfig::default()
///     })
///     .registry(&obskit::metrics::Registry::default())
///     .clock(clock.clone())
///     .build()?;
///
/// // Code that cannot be wrapped in `call` takes a permit and records the outcome.
/// for failed in [true, false, true, false] {
///     let permit = breaker.try_acquire()?;
///     permit.record(if failed { Outcome::Failure } else { Outcome::Success });
/// }
/// assert_eq!(breaker.state(), State::Open);
///
/// let rejection = breaker.try_acquire().err();
/// assert_eq!(rejection.and_then(|r| r.retry_after), Some(Duration::from_secs(10)));
///
/// clock.advance(Duration::from_millis(10_001));
/// assert!(breaker.try_acquire().is_ok());
/// assert_eq!(breaker.state(), State::HalfOpen);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

struct Inner {
    name: Arc<str>,
    config: CircuitBreakerConfig,
    compiled: Compiled,
    clock: BreakerClock,
    /// State and generation; see [`STATE_BITS`].
    state: AtomicU64,
    window: Window,
    /// Clock time, in nanoseconds, after which an open breaker lets a probe through.
    open_until: AtomicU64,
    /// Clock time, in nanoseconds, at which the breaker last became half-open.
    half_open_since: AtomicU64,
    probe_permits: AtomicU64,
    probe_counts: AtomicU64,
    /// Rejected calls since the breaker last closed.
    not_permitted: AtomicU64,
    /// Successes of the count window already added to the success counter.
    folded_successes: AtomicU64,
    /// Taken only to change state. Holds the number of consecutive openings, which sets the
    /// open-state wait when it grows.
    transition: Mutex<u32>,
    metrics: BreakerMetrics,
}

/// Why a transition happened and the rates behind it, for the log line.
#[derive(Debug, Clone, Copy)]
struct Cause {
    reason: &'static str,
    counts: Option<(Counts, u32)>,
}

impl Cause {
    const fn manual(reason: &'static str) -> Self {
        Self {
            reason,
            counts: None,
        }
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.inner.name)
            .field("state", &state_of(self.inner.state.load(Ordering::Acquire)))
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// Starts a builder for a breaker called `name`, with the default settings, the global
    /// metric registry and the monotonic clock.
    pub fn builder(name: impl Into<String>) -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            name: name.into(),
            config: CircuitBreakerConfig::default(),
            registry: None,
            clock: None,
        }
    }

    /// Returns the breaker's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Returns the breaker's settings.
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.inner.config
    }

    /// Runs `future` if the breaker permits it, and records its outcome: every error counts as
    /// a failure.
    ///
    /// A future dropped before it finishes records nothing and frees its half-open slot.
    ///
    /// # Errors
    ///
    /// [`Error::Inner`] with the call's error, or [`Error::NotPermitted`] when the breaker
    /// rejected the call without running it.
    pub async fn call<T, E, F>(&self, future: F) -> Result<T, Error<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_with(future, |_| Outcome::Failure).await
    }

    /// As [`call`](Self::call), with `classify` deciding how an error is recorded: as a
    /// failure, as ignored, or as a success.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call); the call's error is returned whatever `classify` says.
    ///
    /// # Example
    ///
    /// ```
    /// use obskit::resilience::breaker::{CircuitBreaker, Outcome};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let breaker = CircuitBreaker::builder("users")
    ///     .registry(&obskit::metrics::Registry::default())
    ///     .build()?;
    /// // A 404 is unrelated to the health of the user service.
    /// let result = breaker
    ///     .call_with(async { Err::<(), u16>(404) }, |status| {
    ///         if *status < 500 { Outcome::Ignored } else { Outcome::Failure }
    ///     })
    ///     .await;
    /// assert_eq!(result.err().and_then(|error| error.into_inner()), Some(404));
    /// assert_eq!(breaker.snapshot().buffered_calls, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })
    /// # }
    /// ```
    pub async fn call_with<T, E, F>(
        &self,
        future: F,
        classify: impl FnOnce(&E) -> Outcome,
    ) -> Result<T, Error<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire()?;
        let result = future.await;
        match &result {
            Ok(_) => permit.success(),
            Err(error) => permit.record(classify(error)),
        }
        result.map_err(Error::Inner)
    }

    /// Asks for permission to make one call, for code that cannot be wrapped in
    /// [`call`](Self::call). Record the outcome on the returned [`Permit`].
    ///
    /// # Errors
    ///
    /// [`NotPermitted`] when the breaker is open or forced open, or half-open with every probe
    /// slot taken. The rejection is counted.
    #[inline(always)]
    pub fn try_acquire(&self) -> Result<Permit<'_>, NotPermitted> {
        let word = self.inner.state.load(Ordering::Acquire);
        if word & STATE_MASK == state_code(State::Closed) {
            return Ok(self.permit(word));
        }
        // The decision comes back in registers and the rejection is built here: a slow path
        // that wrote the result through memory would keep the fast path's permit there too.
        match self.try_acquire_slow(word) {
            Decision::Permit(word) => Ok(self.permit(word)),
            Decision::Reject(state, wait) => Err(NotPermitted {
                name: Arc::clone(&self.inner.name),
                state,
                retry_after: (wait != u64::MAX).then(|| Duration::from_nanos(wait)),
            }),
        }
    }

    #[cold]
    fn try_acquire_slow(&self, mut word: u64) -> Decision {
        let inner = &*self.inner;
        loop {
            match state_of(word) {
                State::Closed => return Decision::Permit(word),
                State::Disabled => return Decision::Permit(word),
                State::ForcedOpen => return inner.reject(State::ForcedOpen, None),
                State::Open => {
                    let now = inner.now_nanos();
                    let until = inner.open_until.load(Ordering::Acquire);
                    if now <= until {
                        return inner.reject(State::Open, Some((until - now).max(1)));
                    }
                    inner.transition(
                        word,
                        State::HalfOpen,
                        Cause::manual("the wait in the open state elapsed"),
                    );
                }
                State::HalfOpen => {
                    if inner.half_open_timed_out() {
                        let counts = decode_probes(inner.probe_counts.load(Ordering::Acquire));
                        inner.transition(
                            word,
                            State::Open,
                            Cause {
                                reason: "the probes did not finish within max_wait_duration_in_half_open_state",
                                counts: Some((counts, 1)),
                            },
                        );
                    } else if inner.take_probe(word) {
                        return Decision::Permit(word);
                    } else if inner.state.load(Ordering::Acquire) == word {
                        return inner.reject(State::HalfOpen, None);
                    }
                }
            }
            word = inner.state.load(Ordering::Acquire);
        }
    }

    #[inline(always)]
    fn permit(&self, word: u64) -> Permit<'_> {
        let disabled = word & STATE_MASK == state_code(State::Disabled);
        let started = match self.inner.compiled.slow_call_nanos {
            Some(_) if !disabled => self.inner.now_nanos(),
            _ => 0,
        };
        Permit {
            breaker: &self.inner,
            word,
            started,
        }
    }

    /// Returns the current state. An open breaker with
    /// `automatic_transition_from_open_to_half_open_enabled` whose wait has passed moves to
    /// half-open first.
    pub fn state(&self) -> State {
        let inner = &*self.inner;
        let word = inner.state.load(Ordering::Acquire);
        if state_of(word) == State::Open
            && inner.compiled.automatic_transition
            && inner.now_nanos() > inner.open_until.load(Ordering::Acquire)
        {
            inner.transition(
                word,
                State::HalfOpen,
                Cause::manual("the wait in the open state elapsed"),
            );
            return state_of(inner.state.load(Ordering::Acquire));
        }
        state_of(word)
    }

    /// Returns the breaker's state, rates and counts, for an admin page or a health check.
    ///
    /// In the half-open state the rates and counts are those of the probes.
    pub fn snapshot(&self) -> Snapshot {
        let inner = &*self.inner;
        let state = self.state();
        let now = inner.now_nanos();
        let (counts, minimum) = if state == State::HalfOpen {
            let counts = decode_probes(inner.probe_counts.load(Ordering::Acquire));
            (counts, inner.compiled.permitted_calls_in_half_open_state)
        } else {
            (
                inner.window_counts(now),
                inner.compiled.minimum_number_of_calls,
            )
        };
        let next_probe = (state == State::Open).then(|| {
            let until = inner.open_until.load(Ordering::Acquire);
            Duration::from_nanos(until.saturating_sub(now))
        });
        Snapshot {
            name: inner.name.to_string(),
            state,
            failure_rate: counts.failure_rate(minimum),
            slow_call_rate: counts.slow_call_rate(minimum),
            buffered_calls: counts.calls,
            failed_calls: counts.failures,
            slow_calls: counts.slow,
            not_permitted_calls: inner.not_permitted.load(Ordering::Relaxed),
            next_probe_in_seconds: next_probe.map(|wait| wait.as_secs_f64()),
        }
    }

    /// Moves the breaker to forced-open: every call is rejected until the state is changed by
    /// hand (Resilience4j `transitionToForcedOpenState`).
    pub fn force_open(&self) {
        self.inner
            .force(State::ForcedOpen, Cause::manual("forced open by hand"));
    }

    /// Moves the breaker to disabled: every call passes and nothing is recorded
    /// (Resilience4j `transitionToDisabledState`).
    pub fn disable(&self) {
        self.inner
            .force(State::Disabled, Cause::manual("disabled by hand"));
    }

    /// Moves the breaker to closed with an empty window (Resilience4j
    /// `transitionToClosedState`). The open-state wait falls back to its base value.
    pub fn transition_to_closed(&self) {
        self.inner
            .force(State::Closed, Cause::manual("closed by hand"));
    }

    /// Moves the breaker to open, for the wait that the consecutive openings give
    /// (Resilience4j `transitionToOpenState`).
    pub fn transition_to_open(&self) {
        self.inner
            .force(State::Open, Cause::manual("opened by hand"));
    }

    /// Moves the breaker to half-open with a fresh set of probe slots (Resilience4j
    /// `transitionToHalfOpenState`).
    pub fn transition_to_half_open(&self) {
        self.inner
            .force(State::HalfOpen, Cause::manual("half-opened by hand"));
    }

    /// Returns the breaker to its initial state: closed, with an empty window, the base
    /// open-state wait and a zero rejection count (Resilience4j `reset`). A breaker that was
    /// already closed logs the reset but counts no transition.
    pub fn reset(&self) {
        self.inner.reset();
    }
}

/// Builds a [`CircuitBreaker`].
#[derive(Debug)]
#[must_use]
pub struct CircuitBreakerBuilder {
    name: String,
    config: CircuitBreakerConfig,
    registry: Option<Registry>,
    clock: Option<Arc<dyn Clock>>,
}

impl CircuitBreakerBuilder {
    /// Sets every setting.
    pub fn config(mut self, config: CircuitBreakerConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets every setting to a preset's.
    pub fn preset(mut self, preset: Preset) -> Self {
        self.config = preset.config();
        self
    }

    /// Registers the breaker's metrics in `registry` instead of [`Registry::global`].
    pub fn registry(mut self, registry: &Registry) -> Self {
        self.registry = Some(registry.clone());
        self
    }

    /// Reads time from `clock` instead of a [`CoarseMonotonicClock`]; a
    /// [`ManualClock`](crate::resilience::ManualClock) in tests.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Reads time from `clock` when given, or from a coarse clock of the breaker's own.
    pub(crate) fn shared_clock(mut self, clock: Option<Arc<dyn Clock>>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the settings, registers the metrics and returns the breaker, closed.
    ///
    /// # Errors
    ///
    /// [`BreakerError::InvalidName`] for an empty name, one over 64 characters or one with
    /// control characters, [`BreakerError::InvalidConfig`] listing every setting out of range,
    /// and [`BreakerError::Metrics`] when the metric families exist with other labels.
    pub fn build(self) -> Result<CircuitBreaker, BreakerError> {
        if !is_valid_name(&self.name) {
            return Err(BreakerError::InvalidName { name: self.name });
        }
        let name: Arc<str> = self.name.into();
        if let Err(problems) = self.config.validate() {
            return Err(BreakerError::InvalidConfig { name, problems });
        }

        let registry = self.registry.unwrap_or_else(|| Registry::global().clone());
        let metrics = BreakerMetrics::new(&registry, &name)?;
        let window = match self.config.sliding_window_type {
            SlidingWindowType::Count => {
                Window::Count(CountWindow::new(self.config.sliding_window_size))
            }
            SlidingWindowType::Time => {
                Window::Time(TimeWindow::new(self.config.sliding_window_size))
            }
        };
        let clock = match self.clock {
            Some(clock) => BreakerClock::Given(clock),
            None => BreakerClock::Coarse(CoarseMonotonicClock::new()),
        };

        let breaker = CircuitBreaker {
            inner: Arc::new(Inner {
                name,
                compiled: Compiled::new(&self.config),
                config: self.config,
                clock,
                state: AtomicU64::new(state_code(State::Closed)),
                window,
                open_until: AtomicU64::new(0),
                half_open_since: AtomicU64::new(0),
                probe_permits: AtomicU64::new(0),
                probe_counts: AtomicU64::new(0),
                not_permitted: AtomicU64::new(0),
                folded_successes: AtomicU64::new(0),
                transition: Mutex::new(0),
                metrics,
            }),
        };
        let pending: Weak<dyn Pending> = Arc::downgrade(&breaker.inner) as Weak<Inner>;
        registry.add_pending(pending);
        Ok(breaker)
    }
}

/// The clock a breaker reads: the default coarse clock is called directly, without the
/// dynamic dispatch of a given clock, because the closed path reads it twice per call.
#[derive(Debug)]
enum BreakerClock {
    Coarse(CoarseMonotonicClock),
    Given(Arc<dyn Clock>),
}

impl BreakerClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        match self {
            Self::Coarse(clock) => clock.now_nanos(),
            Self::Given(clock) => nanos(clock.now()),
        }
    }
}

/// The outcome of an acquire in a state other than closed, small enough for two registers.
#[derive(Debug, Clone, Copy)]
enum Decision {
    /// Permit the call: the state word it was permitted in.
    Permit(u64),
    /// Reject the call: the state and the wait in nanoseconds, `u64::MAX` for none.
    Reject(State, u64),
}

/// What a permit's outcome is recorded into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PermitKind {
    /// The closed breaker's sliding window.
    Window,
    /// The half-open breaker's probes.
    Probe,
    /// Nothing: the breaker is disabled.
    Untracked,
}

/// Permission to make one call through a breaker. Record how the call ended with
/// [`success`](Self::success), [`failure`](Self::failure) or [`ignore`](Self::ignore).
///
/// The call's duration, for slow-call tracking, runs from [`CircuitBreaker::try_acquire`] to
/// the record. A permit dropped without a record counts as ignored and frees its half-open
/// probe slot.
#[must_use = "record the call's outcome on the permit; dropping it records the call as ignored"]
pub struct Permit<'a> {
    breaker: &'a Inner,
    word: u64,
    /// Clock time of the acquire, in nanoseconds; 0 when slow-call tracking is off.
    started: u64,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name)
            .field("state", &state_of(self.word))
            .finish_non_exhaustive()
    }
}

impl Permit<'_> {
    /// Returns where the outcome is recorded, which follows from the state the call was
    /// permitted in.
    #[inline(always)]
    fn kind(&self) -> PermitKind {
        match self.word & STATE_MASK {
            CLOSED => PermitKind::Window,
            HALF_OPEN => PermitKind::Probe,
            _ => PermitKind::Untracked,
        }
    }

    /// Records a success, or a slow call when it took too long.
    #[inline]
    pub fn success(self) {
        ManuallyDrop::new(self).finish(Outcome::Success);
    }

    /// Records a failure.
    pub fn failure(self) {
        ManuallyDrop::new(self).finish(Outcome::Failure);
    }

    /// Records nothing, as for an error that is unrelated to the dependency's health.
    pub fn ignore(self) {
        ManuallyDrop::new(self).finish(Outcome::Ignored);
    }

    /// Records `outcome`.
    pub fn record(self, outcome: Outcome) {
        ManuallyDrop::new(self).finish(outcome);
    }

    /// Records `outcome`. The consuming methods wrap the permit in `ManuallyDrop`, so the drop
    /// records an ignored call only for a permit that was never recorded.
    ///
    /// A success in a closed count window is recorded inline, and every other case out of line.
    #[inline(always)]
    fn finish(&self, outcome: Outcome) {
        let inner = self.breaker;
        let slow = match (self.kind(), inner.compiled.slow_call_nanos) {
            (PermitKind::Untracked, _) | (_, None) => false,
            (_, Some(threshold)) => inner.now_nanos().saturating_sub(self.started) > threshold,
        };
        if outcome == Outcome::Success
            && !slow
            && self.kind() == PermitKind::Window
            && inner.record_success_in_count_window()
        {
            return;
        }
        self.finish_other(outcome, slow);
    }

    #[inline(never)]
    fn finish_other(&self, outcome: Outcome, slow: bool) {
        if self.kind() == PermitKind::Untracked {
            return;
        }
        let inner = self.breaker;
        if outcome == Outcome::Ignored {
            inner.metrics.ignored.inc();
            if self.kind() == PermitKind::Probe {
                inner.release_probe(self.word);
            }
            return;
        }

        let failed = outcome == Outcome::Failure;
        if slow {
            inner.metrics.slow.inc();
        } else if failed {
            inner.metrics.failure.inc();
        }

        let record = Record::new(failed, slow);
        let windowed = match self.kind() {
            PermitKind::Window => inner.record_in_window(self.word, record),
            PermitKind::Probe => {
                inner.record_probe(self.word, record);
                false
            }
            PermitKind::Untracked => false,
        };
        // A success ticketed by a count window is counted from the window at scrape time.
        if record == Record::Success && !windowed {
            inner.metrics.success.inc();
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.finish(Outcome::Ignored);
    }
}

/// A rejected call: the breaker was open, forced open, or half-open without a free probe slot.
///
/// Converts into [`Error::NotPermitted`] with `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotPermitted {
    /// The breaker's name.
    pub name: Arc<str>,
    /// The breaker's state when it rejected the call.
    pub state: State,
    /// Time until the next probe is let through; `None` when forced open or half-open.
    pub retry_after: Option<Duration>,
}

impl NotPermitted {
    /// Converts the rejection into the error every resilience wrapper returns.
    pub fn into_error<E>(self) -> Error<E> {
        Error::NotPermitted {
            name: self.name,
            state: self.state,
            retry_after: self.retry_after,
        }
    }
}

impl<E> From<NotPermitted> for Error<E> {
    fn from(rejection: NotPermitted) -> Self {
        rejection.into_error()
    }
}

impl fmt::Display for NotPermitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.clone().into_error::<Infallible>().fmt(f)
    }
}

impl std::error::Error for NotPermitted {}

impl Pending for Inner {
    fn fold(&self) {
        let Window::Count(window) = &self.window else {
            return;
        };
        let total = window.successes();
        // fetch_max keeps the counter exact when scrapes fold at the same time.
        let previous = self.folded_successes.fetch_max(total, Ordering::AcqRel);
        if total > previous {
            self.metrics.success.inc_by(total - previous);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The counter series outlives the breaker; it keeps the last successes.
        self.fold();
    }
}

impl Inner {
    #[inline]
    fn now_nanos(&self) -> u64 {
        self.clock.now_nanos()
    }

    /// Counts a rejection; `wait` is the time in nanoseconds until the next probe.
    fn reject(&self, state: State, wait: Option<u64>) -> Decision {
        self.metrics.not_permitted.inc();
        self.not_permitted.fetch_add(1, Ordering::Relaxed);
        // u64::MAX nanoseconds is 584 years, never a real wait, so it stands for no wait.
        let wait = match wait {
            Some(nanos) => nanos.min(u64::MAX - 1),
            None => u64::MAX,
        };
        Decision::Reject(state, wait)
    }

    fn window_counts(&self, now: u64) -> Counts {
        match &self.window {
            Window::Count(window) => window.counts(),
            Window::Time(window) => window.counts(now / 1_000_000_000),
        }
    }

    fn half_open_timed_out(&self) -> bool {
        let max = self.compiled.max_half_open_nanos;
        max > 0
            && self
                .now_nanos()
                .saturating_sub(self.half_open_since.load(Ordering::Acquire))
                > max
    }

    /// Takes one probe slot of the half-open period that `word` belongs to.
    fn take_probe(&self, word: u64) -> bool {
        let tag = permit_tag(word);
        self.probe_permits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |permits| {
                let left = permits & PERMITS_MASK;
                (permits >> PERMIT_TAG_SHIFT == tag && left > 0).then(|| permits - 1)
            })
            .is_ok()
    }

    /// Frees a probe slot, unless the half-open period it was taken in has ended.
    fn release_probe(&self, word: u64) {
        let tag = permit_tag(word);
        // An error means the period ended, and the slot went with it.
        let _ = self
            .probe_permits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |permits| {
                (permits >> PERMIT_TAG_SHIFT == tag).then(|| permits + 1)
            });
    }

    /// Records a success in a closed breaker's count window and returns `true`. A time window
    /// or a breaker no longer closed gets `false`, and nothing is recorded.
    #[inline(always)]
    fn record_success_in_count_window(&self) -> bool {
        let Window::Count(window) = &self.window else {
            return false;
        };
        let current = self.state.load(Ordering::Acquire);
        if current & STATE_MASK != state_code(State::Closed) {
            return false;
        }
        // A changed window only follows a failure; the check below is then rare.
        if let Some(counts) = window.record(Record::Success) {
            self.evaluate_window(current, counts);
        }
        true
    }

    /// Records an outcome of a call permitted while closed, and opens the breaker when a rate
    /// reaches its threshold. Returns whether a count window took the record.
    #[inline]
    fn record_in_window(&self, permit_word: u64, record: Record) -> bool {
        let current = self.state.load(Ordering::Acquire);
        let state = state_of(current);
        // A call that finishes after its window opened the breaker still counts in that
        // window. Once the breaker has moved on, the window it was permitted in is gone.
        let opened_by_this_window =
            state == State::Open && generation_of(current) == generation_of(permit_word) + 1;
        if state != State::Closed && !opened_by_this_window {
            return false;
        }

        let counts = match &self.window {
            Window::Count(window) => match window.record(record) {
                Some(counts) => counts,
                None => return true,
            },
            Window::Time(window) => {
                let counts = window.record(self.now_nanos() / 1_000_000_000, record);
                if state == State::Closed {
                    self.evaluate_window(current, counts);
                }
                return false;
            }
        };
        if state == State::Closed {
            self.evaluate_window(current, counts);
        }
        true
    }

    #[inline(never)]
    fn evaluate_window(&self, word: u64, counts: Counts) {
        let minimum = self.compiled.minimum_number_of_calls;
        if self.exceeds_thresholds(counts, minimum) {
            self.transition(
                word,
                State::Open,
                Cause {
                    reason: "the failure rate or the slow-call rate reached its threshold",
                    counts: Some((counts, minimum)),
                },
            );
        }
    }

    fn exceeds_thresholds(&self, counts: Counts, minimum: u32) -> bool {
        let failure = counts.failure_rate(minimum);
        let slow = counts.slow_call_rate(minimum);
        failure.is_some_and(|rate| rate >= self.compiled.failure_rate_threshold)
            || slow.is_some_and(|rate| rate >= self.compiled.slow_call_rate_threshold)
    }

    /// Records a probe's outcome. The last probe's record decides between closed and open.
    fn record_probe(&self, permit_word: u64, record: Record) {
        let tag = probe_tag(permit_word);
        let delta = 1
            | u64::from(record.is_failure()) << PROBE_FIELD_BITS
            | u64::from(record.is_slow()) << (2 * PROBE_FIELD_BITS);
        let updated =
            self.probe_counts
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |counts| {
                    (counts >> PROBE_TAG_SHIFT == tag).then(|| counts + delta)
                });
        let Ok(previous) = updated else {
            return;
        };

        let counts = decode_probes(previous + delta);
        let permitted = self.compiled.permitted_calls_in_half_open_state;
        if counts.calls < permitted {
            return;
        }
        let (to, reason) = if self.exceeds_thresholds(counts, permitted) {
            (State::Open, "a probe rate reached its threshold")
        } else {
            (
                State::Closed,
                "the probe rates stayed below their thresholds",
            )
        };
        self.transition(
            permit_word,
            to,
            Cause {
                reason,
                counts: Some((counts, permitted)),
            },
        );
    }

    /// Moves from the state of `expected` to `to`, unless another thread changed the state
    /// first. Returns whether this call made the transition.
    fn transition(&self, expected: u64, to: State, cause: Cause) -> bool {
        let mut attempts = self.transition.lock();
        let current = self.state.load(Ordering::Acquire);
        if current != expected {
            return false;
        }
        self.enter(current, to, &mut attempts, cause);
        true
    }

    /// Moves to `to` from whatever the state is, as the manual transitions do.
    fn force(&self, to: State, cause: Cause) {
        let mut attempts = self.transition.lock();
        let current = self.state.load(Ordering::Acquire);
        let cause = Cause {
            counts: Some(self.current_counts(current)),
            ..cause
        };
        self.enter(current, to, &mut attempts, cause);
    }

    fn reset(&self) {
        let mut attempts = self.transition.lock();
        let current = self.state.load(Ordering::Acquire);
        if state_of(current) == State::Closed {
            *attempts = 0;
            self.window.reset();
            self.not_permitted.store(0, Ordering::Relaxed);
            self.state.store(
                (generation_of(current) + 1) << STATE_BITS | state_code(State::Closed),
                Ordering::Release,
            );
            tracing::info!(
                target: LOG_TARGET,
                circuit_breaker = &*self.name,
                state = State::Closed.as_str(),
                "circuit breaker reset"
            );
            return;
        }
        let cause = Cause {
            counts: Some(self.current_counts(current)),
            ..Cause::manual("reset by hand")
        };
        self.enter(current, State::Closed, &mut attempts, cause);
    }

    fn current_counts(&self, word: u64) -> (Counts, u32) {
        if state_of(word) == State::HalfOpen {
            let counts = decode_probes(self.probe_counts.load(Ordering::Acquire));
            (counts, self.compiled.permitted_calls_in_half_open_state)
        } else {
            let counts = self.window_counts(self.now_nanos());
            (counts, self.compiled.minimum_number_of_calls)
        }
    }

    /// Prepares the data of state `to`, publishes it, updates the metrics and logs the
    /// transition. Callers hold the transition lock.
    fn enter(&self, current: u64, to: State, attempts: &mut u32, cause: Cause) {
        let from = state_of(current);
        let generation = generation_of(current) + 1;
        let next = generation << STATE_BITS | state_code(to);
        let now = self.now_nanos();

        let mut next_probe = None;
        match to {
            State::Closed => {
                *attempts = 0;
                self.window.reset();
                self.not_permitted.store(0, Ordering::Relaxed);
            }
            State::Open => {
                *attempts = attempts.saturating_add(1);
                let wait = open_state_wait(&self.config, *attempts);
                self.open_until
                    .store(now.saturating_add(nanos(wait)), Ordering::Release);
                next_probe = Some(wait);
            }
            State::HalfOpen => {
                self.half_open_since.store(now, Ordering::Release);
                self.probe_counts
                    .store(probe_tag(next) << PROBE_TAG_SHIFT, Ordering::Release);
                let permitted = u64::from(self.compiled.permitted_calls_in_half_open_state);
                self.probe_permits.store(
                    permit_tag(next) << PERMIT_TAG_SHIFT | permitted,
                    Ordering::Release,
                );
            }
            State::ForcedOpen | State::Disabled => {}
        }
        self.state.store(next, Ordering::Release);

        self.metrics.show_state(to);
        self.metrics.count_transition(&self.name, from, to);
        self.log_transition(from, to, cause, next_probe);
    }

    fn log_transition(&self, from: State, to: State, cause: Cause, next_probe: Option<Duration>) {
        let (failure_rate, slow_call_rate) = match cause.counts {
            Some((counts, minimum)) => {
                (counts.failure_rate(minimum), counts.slow_call_rate(minimum))
            }
            None => (None, None),
        };
        let failure_rate = failure_rate.map(f64::from);
        let slow_call_rate = slow_call_rate.map(f64::from);
        let next_probe_in_seconds = next_probe.map(|wait| wait.as_secs_f64());
        let name = &*self.name;
        if matches!(to, State::Open | State::ForcedOpen) {
            tracing::warn!(
                target: LOG_TARGET,
                circuit_breaker = name,
                from = from.as_str(),
                to = to.as_str(),
                failure_rate,
                slow_call_rate,
                next_probe_in_seconds,
                reason = cause.reason,
                "circuit breaker opened"
            );
        } else {
            tracing::info!(
                target: LOG_TARGET,
                circuit_breaker = name,
                from = from.as_str(),
                to = to.as_str(),
                failure_rate,
                slow_call_rate,
                reason = cause.reason,
                "circuit breaker changed state"
            );
        }
    }
}
