//! Retry with exponential backoff, jitter, a deadline and a retry budget.
