//! Which traces are recorded.
//!
//! Head sampling decides when a trace starts here:
//! * a ratio of trace ids (the OpenTelemetry `TraceIdRatioBased` rule on the
//!   id's low 64 bits), so every service seeing the same trace id with the
//!   same rate agrees without coordination;
//! * optionally at most N new traces per second (a token bucket);
//! * parent-based by default: a span whose parent came from another process
//!   follows the parent's sampled flag; local children always follow their
//!   parent.
//!
//! Tail rules keep a trace that head sampling dropped when, by the time its
//! local root finishes, it turned out to fail or to be slow. Its spans are
//! held by the writer thread until then (see `live.rs`).

use std::time::Instant;

use crate::sync::Mutex;

use crate::ids::TraceId;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatioSampler {
    /// Traces whose low 64 id bits are below this bound are sampled.
    bound: u64,
    always: bool,
}

impl RatioSampler {
    pub fn new(rate: f64) -> Self {
        let rate = if rate.is_nan() {
            1.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        RatioSampler {
            bound: (rate * (u64::MAX as f64)) as u64,
            always: rate >= 1.0,
        }
    }

    #[inline]
    pub fn should_sample(&self, trace_id: TraceId) -> bool {
        self.always || (trace_id.0 as u64) < self.bound
    }
}

/// At most `rate` events per second, with bursts up to one second's worth.
pub struct TokenBucket {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(rate: f64) -> Self {
        TokenBucket {
            rate,
            state: Mutex::new((rate.max(1.0), Instant::now())),
        }
    }

    pub fn try_take(&self) -> bool {
        self.try_take_at(Instant::now())
    }

    fn try_take_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock();
        let (tokens, last) = &mut *state;
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.rate.max(1.0));
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Tail rules applied when a head-unsampled trace's local root finishes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TailRules {
    pub keep_errors: bool,
    pub keep_slower_than_ms: Option<f64>,
}

impl TailRules {
    /// Whether unsampled spans must be recorded and held for a decision.
    pub fn enabled(&self) -> bool {
        self.keep_errors || self.keep_slower_than_ms.is_some()
    }

    pub fn keeps(&self, error_count: u64, root_duration_ms: f64) -> bool {
        (self.keep_errors && error_count > 0)
            || self
                .keep_slower_than_ms
                .is_some_and(|t| root_duration_ms >= t)
    }
}

/// The head sampling decision for new traces and remote parents.
pub struct Sampler {
    ratio: RatioSampler,
    rate_limit: Option<TokenBucket>,
    parent_based: bool,
}

impl Sampler {
    pub fn new(rate: f64, max_traces_per_second: Option<f64>, parent_based: bool) -> Self {
        Sampler {
            ratio: RatioSampler::new(rate),
            rate_limit: max_traces_per_second.map(TokenBucket::new),
            parent_based,
        }
    }

    /// A trace starting here.
    #[inline]
    pub fn sample_new_trace(&self, trace_id: TraceId) -> bool {
        self.ratio.should_sample(trace_id)
            && self.rate_limit.as_ref().is_none_or(TokenBucket::try_take)
    }

    /// A trace continued from another process whose decision was `parent_sampled`.
    #[inline]
    pub fn sample_remote_child(&self, trace_id: TraceId, parent_sampled: bool) -> bool {
        if self.parent_based {
            parent_sampled
        } else {
            self.sample_new_trace(trace_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn extremes_and_ratio() {
        assert!(RatioSampler::new(1.0).should_sample(TraceId(u128::MAX)));
        assert!(!RatioSampler::new(0.0).should_sample(TraceId(1)));
        let s = RatioSampler::new(0.25);
        let kept = (0..20_000)
            .filter(|_| s.should_sample(TraceId::random()))
            .count();
        assert!((4_000..6_000).contains(&kept), "{kept}");
        // Deterministic: the same id always gets the same answer.
        let id = TraceId::random();
        assert_eq!(s.should_sample(id), s.should_sample(id));
    }

    #[test]
    fn token_bucket_limits_rate() {
        let bucket = TokenBucket::new(10.0);
        let t0 = Instant::now();
        let burst = (0..100).filter(|_| bucket.try_take_at(t0)).count();
        assert_eq!(burst, 10);
        assert!(!bucket.try_take_at(t0));
        // Half a second later, five more.
        let later = t0 + Duration::from_millis(500);
        assert_eq!((0..100).filter(|_| bucket.try_take_at(later)).count(), 5);
    }

    #[test]
    fn parent_based_follows_the_remote_flag() {
        let s = Sampler::new(0.0, None, true);
        assert!(s.sample_remote_child(TraceId(5), true));
        assert!(!s.sample_remote_child(TraceId(5), false));
        assert!(!s.sample_new_trace(TraceId(5)));
        let ratio_only = Sampler::new(1.0, None, false);
        assert!(ratio_only.sample_remote_child(TraceId(5), false));
    }

    #[test]
    fn tail_rules() {
        let none = TailRules::default();
        assert!(!none.enabled());
        let rules = TailRules {
            keep_errors: true,
            keep_slower_than_ms: Some(100.0),
        };
        assert!(rules.enabled());
        assert!(rules.keeps(1, 1.0));
        assert!(rules.keeps(0, 100.0));
        assert!(!rules.keeps(0, 99.9));
    }
}
