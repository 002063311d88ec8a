//! Per-call timeout that cancels the inner future.
