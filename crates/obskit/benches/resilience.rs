//! Resilience overhead on the success path, each next to the peer it builds on.
//!
//! - Retry around a ready `Ok` future: obskit and backon's `Retryable::retry`.
//! - Bulkhead acquire and release: obskit and a bare tokio semaphore.
//! - Timeout around a ready future: obskit and `tokio::time::timeout`.
//! - The full policy (timeout, retry, breaker, bulkhead) around a ready future: obskit and
//!   the peers stacked by hand.
//! - Buffering a 16 KiB request body of 4 frames before a service: obskit's `BufferBodyLayer`
//!   and http-body-util's `Limited::collect` called by hand.
//!
//! Each iteration runs a batch of `BATCH` calls inside one `block_on`, so the runtime's own
//! cost is spread over the batch; divide the figures by `BATCH` for one call.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use obskit::metrics::Registry;
use obskit::resilience::bulkhead::{Bulkhead, BulkheadConfig};
use obskit::resilience::retry::{Retry, RetryBudget, RetryPolicy};
use obskit::resilience::timeout::Timeout;
use tokio::sync::Semaphore;

/// Calls per iteration.
const BATCH: u64 = 100;

fn main() {
    divan::main();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn ready(value: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(value))
}

mod retry_ready_ok {
    use super::*;

    #[divan::bench]
    fn obskit(bencher: divan::Bencher<'_, '_>) {
        let runtime = runtime();
        let retry =
            Retry::with_registry("bench", RetryPolicy::new(), &Registry::default()).unwrap();
        bencher.bench_local(|| {
            runtime.block_on(async {
                for value in 0..BATCH {
                    black_box(retry.call(|| ready(value)).await.unwrap());
                }
            });
        });
    }

    #[divan::bench]
    fn obskit_with_budget(bencher: divan::Bencher<'_, '_>) {
        let runtime = runtime();
        let retry = Retry::with_registry("bench", RetryPolicy::new(), &Registry::default())
            .unwrap()
            .with_budget(RetryBudget::default());
        bencher.bench_local(|| {
            runtime.block_on(async {
                for value in 0..BATCH {
                    black_box(retry.call(|| ready(value)).await.unwrap());
                }
            });
        });
    }

    #[divan::bench]
    fn backon(bencher: divan::Bencher<'_, '_>) {
        let runtime = runtime();
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(10))
            .with_max_times(2)
            .with_jitter();
        bencher.bench_local(|| {
            runtime.block_on(async {
                for value in 0..BATCH {
                    black_box((|| ready(value)).retry(backoff).await.unwrap());
                }
            });
        });
    }
}

mod bulkhead_acquire_release {
    use super::*;

    #[divan::bench]
    fn obskit(bencher: divan::Bencher<'_, '_>) {
        let config = BulkheadConfig::default();
        let bulkhead = Bulkhead::with_registry("bench", config, &Registry::default()).unwrap();
        bencher.bench_local(|| {
            for _ in 0..BATCH {
                drop(black_box(bulkhead.try_acquire().unwrap()));
            }
        });
    }

    #[divan::bench]
    fn tokio_semaphore(bencher: divan::Bencher<'_, '_>) {
        let semaphore = Arc::new(Semaphore::new(25));
        bencher.bench_local(|| {
            for _ in 0..BATCH {
                drop(black_box(
                    Arc::clone(&semaphore).try_acquire_owned().unwrap(),
                ));
            }
        });
    }
}

mod timeout_ready {
    use super::*;

    #[divan::bench]
    fn obskit(bencher: divan::Bencher<'_, '_>) {
        let runtime = runtime();
        let timeout =
            Timeout::with_registry("bench", Duration::from_secs(1), &Registry::default()).unwrap();
        bencher.bench_local(|| {
            runtime.block_on(async {
                for value in 0..BATCH {
                    black_box(timeout.call(ready(value)).await.unwrap());
                }
            });
        });
    }

    #[divan::bench]
    fn tokio(bencher: divan::Bencher<'_, '_>) {
        let runtime = runtime();
        bencher.bench_local(|| {
            runtime.block_on(async {
                for value in 0..BATCH {
                    let result = tokio::time::timeout(Duration::from_secs(1), ready(value)).await;
                    black_box(result.unwrap().unwrap());
                }
            });
        });
    }
}

/// The full composition around a ready future: timeout, retry, circuit breaker and bulkhead.
/// The peer stacks the crates obskit's parts compare with by hand: backon's retry around a
/// failsafe breaker around `tokio::time::timeout` around a tokio semaphore.
mod policy_ready_ok {
    use super::*;
    use obskit::resilience::Policy;
    use obskit::resilience::breaker::{CircuitBreaker, CircuitBreakerConfig};

    fn policy(slow_call_tracking: bool) -> Policy<std::io::Error> {
        let registry = Registry::default();
        let mut config = CircuitBreakerConfig::default();
        if !slow_call_tracking {
            config.slow_call_duration_threshold = None;
        }
        Policy::builder("bench")
            .retry(Retry::with_registry("bench", RetryPolicy::new(), &registry).unwrap())
            .circuit_breaker(
                CircuitBreaker::builder("bench")
                    .config(config)
                    .registry(&registry)
                    .build()
                    .unwrap(),
            )
            .timeout(Timeout::with_registry("bench", Duration::from_secs(1), &registry).unwrap())
            .bulkhead(
                Bulkhead::with_registry("bench", BulkheadConfig::default(), &registry).unwrap(),
            )
            .build()
    }

    /// `slow_call_tracking = true` is the breaker's default.
    #[divan::bench(args = [false, true])]
    fn obskit(bencher: divan::Bencher<'_, '_>, slow_call_tracking: bool) {
        let runtime = runtime();
        let policy = policy(slow_call_tracking);
        bencher.bench_local(|| {
            runtime.block_on(async {
                for value in 0..BATCH {
                    black_box(policy.call(|| ready(value)).await.unwrap());
                }
            });
        });
    }

    #[divan::bench]
    fn peers_stacked(bencher: divan::Bencher<'_, '_>) {
        use failsafe::futures::CircuitBreaker as _;

        let runtime = runtime();
        let breaker = failsafe::Config::new().build();
        let semaphore = Arc::new(Semaphore::new(25));
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(10))
            .with_max_times(2)
            .with_jitter();
        bencher.bench_local(|| {
            runtime.block_on(async {
                for value in 0..BATCH {
                    let attempt = || async {
                        breaker
                            .call(async {
                                let _permit = semaphore.try_acquire().unwrap();
                                tokio::time::timeout(Duration::from_secs(1), ready(value))
                                    .await
                                    .unwrap()
                            })
                            .await
                    };
                    black_box(attempt.retry(backoff).await.unwrap());
                }
            });
        });
    }
}

#[cfg(feature = "http")]
mod buffer_body_16k {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body::Frame;
    use http_body_util::{BodyExt as _, Full, Limited, StreamBody};
    use obskit::resilience::BufferBodyLayer;
    use tower::{Layer as _, Service as _, ServiceExt};

    use super::*;

    const FRAME: usize = 4 * 1024;

    type Chunked = StreamBody<
        futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>,
    >;

    fn request(frame: &Bytes) -> http::Request<Chunked> {
        let frames: Vec<_> = (0..4)
            .map(|_| Ok::<_, Infallible>(Frame::data(frame.clone())))
            .collect();
        http::Request::new(StreamBody::new(futures_util::stream::iter(frames)))
    }

    async fn body_len(request: http::Request<Full<Bytes>>) -> Result<usize, Infallible> {
        Ok(request
            .into_body()
            .into_inner()
            .map_or(0, |body| body.len()))
    }

    #[divan::bench]
    fn obskit(bencher: divan::Bencher<'_, '_>) {
        let runtime = runtime();
        let frame = Bytes::from(vec![7; FRAME]);
        let layer = BufferBodyLayer::with_registry("bench", 1 << 20, &Registry::default()).unwrap();
        let mut service = layer.layer(tower::service_fn(body_len));
        bencher.bench_local(|| {
            runtime.block_on(async {
                for _ in 0..BATCH {
                    let ready = ServiceExt::<http::Request<Chunked>>::ready(&mut service)
                        .await
                        .unwrap();
                    black_box(ready.call(request(&frame)).await.unwrap());
                }
            });
        });
    }

    #[divan::bench]
    fn http_body_util_limited(bencher: divan::Bencher<'_, '_>) {
        let runtime = runtime();
        let frame = Bytes::from(vec![7; FRAME]);
        let mut service = tower::service_fn(body_len);
        bencher.bench_local(|| {
            runtime.block_on(async {
                for _ in 0..BATCH {
                    let (parts, body) = request(&frame).into_parts();
                    let bytes = Limited::new(body, 1 << 20)
                        .collect()
                        .await
                        .unwrap()
                        .to_bytes();
                    let buffered = http::Request::from_parts(parts, Full::new(bytes));
                    let ready = service.ready().await.unwrap();
                    black_box(ready.call(buffered).await.unwrap());
                }
            });
        });
    }
}
