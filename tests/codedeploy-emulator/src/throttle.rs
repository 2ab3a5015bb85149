//! Per-operation request-rate limits, so callers' retry/backoff paths can be
//! exercised against a `ThrottlingException` like the real service's.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

/// A token bucket per operation. Each bucket holds up to one second's worth
/// of requests (at least one), refilled continuously at the limit's rate.
#[derive(Debug)]
pub struct Throttle {
    limits: BTreeMap<String, f64>,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Throttle {
    /// Limits in requests per second by operation name; `*` applies to every
    /// operation without its own entry (each operation still has its own bucket).
    pub fn new(limits: &BTreeMap<String, f64>) -> Self {
        Self { limits: limits.clone(), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `operation`; `false` means the request is throttled.
    pub fn admit(&self, operation: &str) -> bool {
        let Some(&rate) = self.limits.get(operation).or_else(|| self.limits.get("*")) else {
            return true;
        };
        if rate <= 0.0 {
            return false;
        }
        let capacity = rate.max(1.0);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets.entry(operation.to_string()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
