//! Bulkhead: a maximum of concurrent calls with an optional bounded wait.
