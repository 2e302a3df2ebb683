//! Head sampling: which new traces are recorded.
//!
//! The decision is a pure function of the trace id (the OpenTelemetry
//! `TraceIdRatioBased` rule on the id's low 64 bits), so every service that
//! sees the same trace id with the same rate agrees without coordination.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
