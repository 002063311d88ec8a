//! Resilience benchmarks.

fn main() {}
