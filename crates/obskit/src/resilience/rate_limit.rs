//! Rate limiting backed by governor: direct and keyed limiters with bounded key memory.
