//! Graceful shutdown: fail readiness, wait, stop accepting, drain, run hooks, flush.
//!
//! obskit never installs signal handlers on its own. The application creates a [`Shutdown`],
//! calls [`Shutdown::listen_for_signals`] if it wants signal handling, and runs its server
//! through [`Shutdown::serve`] or [`Shutdown::run`]. When shutdown is triggered (first
//! SIGTERM or SIGINT, or [`Shutdown::trigger`]) the steps are:
//!
//! 1. the trigger callbacks run (obskit's readiness probe starts responding 503);
//! 2. the pre-stop delay passes, so load balancers and Kubernetes endpoints notice;
//! 3. the server stops accepting connections and drains in-flight requests, for at most the
//!    shutdown timeout;
//! 4. registered hooks run in registration order, each with its own timeout;
//! 5. finalizers run (obskit flushes logs here), then [`Shutdown::run`] returns its report.
//!
//! A second signal while shutting down exits the process at once with status 130.

mod coordinator;
mod hooks;
#[cfg(feature = "http")]
mod server;

pub use coordinator::{Shutdown, ShutdownError, ShutdownReport};
pub use hooks::{HookOutcome, HookReport};
