//! The token bucket every rate limit is made of: a session's message and
//! byte budgets, the pre-auth budget, the registration limits.

use std::time::{Duration, Instant};

/// A token bucket: `rate` per second sustained, `burst` at most.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub(crate) fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(burst);
        self.at = now;
    }

    /// The tokens there would be at `now`, without taking any.
    pub(crate) fn peek(&self, now: Instant, rate: f64, burst: f64) -> f64 {
        let mut b = *self;
        b.refill(now, rate, burst);
        b.tokens
    }

    /// Takes `n` tokens, or says how long until they are there.
    pub(crate) fn take(
        &mut self,
        n: f64,
        now: Instant,
        rate: f64,
        burst: f64,
    ) -> Result<(), Duration> {
        self.refill(now, rate, burst);
        // A cost above the burst could never be paid: charge it down to the
        // burst so an oversized (but allowed) frame waits, rather than forever.
        let n = n.min(burst);
        if self.tokens >= n {
            self.tokens -= n;
            Ok(())
        } else if rate <= 0.0 {
            Err(Duration::from_secs(3600))
        } else {
            Err(Duration::from_secs_f64((n - self.tokens) / rate).max(Duration::from_millis(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_its_rate_up_to_its_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::full(2.0, t0);
        assert!(b.take(1.0, t0, 10.0, 2.0).is_ok());
        assert!(b.take(1.0, t0, 10.0, 2.0).is_ok());
        let wait = b.take(1.0, t0, 10.0, 2.0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert!(b.take(1.0, t0 + wait, 10.0, 2.0).is_ok());
        // Long idle does not bank more than the burst.
        let later = t0 + Duration::from_secs(60);
        assert!(b.take(2.0, later, 10.0, 2.0).is_ok());
        assert!(b.take(1.0, later, 10.0, 2.0).is_err());
    }
}
