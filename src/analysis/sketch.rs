//! A mergeable quantile sketch after DDSketch (Masson, Rim and Lee, VLDB
//! 2019): values fall into logarithmically spaced buckets, so any quantile
//! is reported within a relative error `alpha` of the exact nearest-rank
//! value, in memory bounded by the bucket count whatever the number of
//! values. This is what the in-process tracer keeps per operation.
//!
//! Bucket `i` holds values in (γ^(i-1), γ^i] with γ = (1+α)/(1-α), and
//! reports 2γ^i/(γ+1), which is within α of everything in it. Zero (and
//! anything below [`MIN_POSITIVE`]) has its own bucket. Past `max_buckets`
//! the lowest buckets are collapsed into one: low quantiles lose accuracy
//! first, while the tail that latency work cares about stays exact to α.
//! (With α = 1% and 2048 buckets, that only happens when one operation's
//! durations span more than 17 orders of magnitude.)

use super::percentile::{nearest_rank, LatencyStats};

/// Default relative accuracy: quantiles within 1% of the exact value.
pub(crate) const DEFAULT_ALPHA: f64 = 0.01;
/// Default bound on the number of buckets (8 bytes each).
pub(crate) const DEFAULT_MAX_BUCKETS: usize = 2048;
/// Values at or below this count as zero (durations are in ms, and a
/// nanosecond is 1e-6 ms).
pub(crate) const MIN_POSITIVE: f64 = 1e-9;

/// `x.ceil() as i32` without the call: `f64::ceil` is a libm call on
/// baseline x86_64 (no SSE4.1 `roundsd`), made for every value added.
#[inline]
fn ceil_to_i32(x: f64) -> i32 {
    let truncated = x as i32;
    if f64::from(truncated) < x {
        truncated + 1
    } else {
        truncated
    }
}

/// Why two sketches cannot be merged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AccuracyMismatch {
    pub ours: f64,
    pub theirs: f64,
}

impl std::fmt::Display for AccuracyMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot merge sketches of relative accuracy {} and {}",
            self.ours, self.theirs
        )
    }
}

impl std::error::Error for AccuracyMismatch {}

/// A DDSketch with exact count, sum, min and max.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QuantileSketch {
    alpha: f64,
    ln_gamma: f64,
    /// 1/ln γ: every added value is mapped to its bucket, and a multiply
    /// is several times cheaper than a division there.
    inv_ln_gamma: f64,
    /// 2/(γ+1): a bucket's reported value is γ^i times this.
    value_factor: f64,
    max_buckets: usize,
    /// Bucket index of `bins[0]`.
    offset: i32,
    bins: Vec<u64>,
    zero_count: u64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Default for QuantileSketch {
    fn default() -> Self {
        Self::new()
    }
}

impl QuantileSketch {
    /// A sketch with 1% relative accuracy and at most 2048 buckets.
    pub fn new() -> Self {
        Self::with_accuracy(DEFAULT_ALPHA, DEFAULT_MAX_BUCKETS)
    }

    /// A sketch with relative accuracy `alpha` (clamped to [1e-6, 0.5]) and
    /// at most `max_buckets` (at least 2) non-zero buckets.
    pub fn with_accuracy(alpha: f64, max_buckets: usize) -> Self {
        let alpha = if alpha.is_nan() {
            DEFAULT_ALPHA
        } else {
            alpha.clamp(1e-6, 0.5)
        };
        let gamma = (1.0 + alpha) / (1.0 - alpha);
        QuantileSketch {
            alpha,
            ln_gamma: gamma.ln(),
            inv_ln_gamma: gamma.ln().recip(),
            value_factor: 2.0 / (gamma + 1.0),
            max_buckets: max_buckets.max(2),
            offset: 0,
            bins: Vec::new(),
            zero_count: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// The relative accuracy this sketch guarantees.
    #[cfg(test)]
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Records one value. Negative values count as zero (durations cannot be
    /// negative); NaN is ignored.
    pub fn add(&mut self, value: f64) {
        if value.is_nan() {
            return;
        }
        let value = value.max(0.0);
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if value <= MIN_POSITIVE {
            self.zero_count += 1;
        } else {
            self.insert(self.index_of(value), 1);
        }
    }

    /// Adds everything `other` recorded. Both must have the same accuracy;
    /// the bucket bound stays this sketch's.
    pub fn merge(&mut self, other: &QuantileSketch) -> Result<(), AccuracyMismatch> {
        if (self.alpha - other.alpha).abs() > f64::EPSILON {
            return Err(AccuracyMismatch {
                ours: self.alpha,
                theirs: other.alpha,
            });
        }
        if other.count == 0 {
            return Ok(());
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.zero_count += other.zero_count;
        if other.bins.is_empty() {
            return Ok(());
        }
        let top = other.offset + other.bins.len() as i32 - 1;
        // Widen to the full range first (top, then bottom) so the bins move
        // at most twice, then add the rest.
        let order = std::iter::once(top).chain(other.offset..top);
        for index in order {
            let c = other.bins[(index - other.offset) as usize];
            if c > 0 || index == top || index == other.offset {
                self.insert(index, c);
            }
        }
        Ok(())
    }

    /// The value at quantile `q` in [0, 1] (nearest rank, ceil(q·n)), within
    /// `alpha` relative error (exact at the first and last rank); `None` if
    /// nothing was recorded.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = nearest_rank(q * 100.0, self.count as usize) as u64;
        // The extreme ranks are the exact min and max, which are kept.
        if rank >= self.count {
            return Some(self.max);
        }
        if rank == 1 {
            return Some(self.min);
        }
        let estimate = if rank <= self.zero_count {
            0.0
        } else {
            let mut seen = self.zero_count;
            let mut estimate = self.max;
            for (i, &c) in self.bins.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    estimate = self.value_of(self.offset + i as i32);
                    break;
                }
            }
            estimate
        };
        Some(estimate.clamp(self.min, self.max))
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Exact sum of the values recorded.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Exact smallest value, if any.
    #[cfg(test)]
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// Exact largest value, if any.
    #[cfg(test)]
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// Buckets currently allocated (bounded by `max_buckets`).
    #[cfg(test)]
    pub fn bucket_count(&self) -> usize {
        self.bins.len()
    }

    /// Count, exact min/max/avg and sketched p50/p95/p99.
    pub fn stats(&self) -> LatencyStats {
        if self.count == 0 {
            return LatencyStats::default();
        }
        let at = |q| self.quantile(q).unwrap_or(0.0);
        LatencyStats {
            count: self.count,
            min: self.min,
            max: self.max,
            avg: self.sum / self.count as f64,
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
        }
    }

    fn index_of(&self, value: f64) -> i32 {
        // |ln v| <= ~745 for positive doubles and ln γ >= 2e-6, so the
        // index fits an i32. (A value on a bucket's upper edge may land in
        // the next bucket by a rounding of the product: its reported value
        // is then off by exactly α, still within the guarantee.)
        ceil_to_i32(value.ln() * self.inv_ln_gamma)
    }

    fn value_of(&self, index: i32) -> f64 {
        (f64::from(index) * self.ln_gamma).exp() * self.value_factor
    }

    fn insert(&mut self, index: i32, count: u64) {
        if self.bins.is_empty() {
            self.offset = index;
            self.bins.push(count);
            return;
        }
        let top = self.offset + self.bins.len() as i32 - 1;
        let high = top.max(index);
        let low = self.offset.min(index);
        let mut index = index;
        if (high - low + 1) as usize > self.max_buckets {
            let floor = high - self.max_buckets as i32 + 1;
            self.collapse_below(floor);
            index = index.max(floor);
        }
        if index < self.offset {
            let mut grown = vec![0; (self.offset - index) as usize];
            grown.extend_from_slice(&self.bins);
            self.bins = grown;
            self.offset = index;
        }
        let slot = (index - self.offset) as usize;
        if slot >= self.bins.len() {
            self.bins.resize(slot + 1, 0);
        }
        self.bins[slot] += count;
    }

    /// Folds every bucket below `floor` into bucket `floor`.
    fn collapse_below(&mut self, floor: i32) {
        if floor <= self.offset {
            return;
        }
        let cut = ((floor - self.offset) as usize).min(self.bins.len());
        let folded: u64 = self.bins.drain(..cut).sum();
        // Either the first bucket left is bucket `floor`, or none is left.
        match self.bins.first_mut() {
            Some(first) => *first += folded,
            None => self.bins.push(folded),
        }
        self.offset = floor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::percentile::percentile_sorted;
    use proptest::prelude::*;

    /// The sketch's promise against the exact nearest-rank value.
    fn assert_within_alpha(sketch: &QuantileSketch, values: &[f64], q: f64) {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let exact = percentile_sorted(&sorted, q * 100.0).unwrap();
        let got = sketch.quantile(q).unwrap();
        let bound = sketch.alpha() * exact * (1.0 + 1e-9);
        assert!(
            (got - exact).abs() <= bound,
            "q={q}: got {got}, exact {exact}, bound {bound}"
        );
    }

    #[test]
    fn empty_sketch_has_no_quantiles() {
        let s = QuantileSketch::new();
        assert_eq!(s.quantile(0.5), None);
        assert_eq!(s.min(), None);
        assert_eq!(s.stats(), LatencyStats::default());
    }

    #[test]
    fn zeros_have_their_own_bucket() {
        let mut s = QuantileSketch::new();
        for v in [0.0, 0.0, 0.0, 5.0, -1.0] {
            s.add(v);
        }
        s.add(f64::NAN);
        assert_eq!(s.count(), 5);
        assert_eq!(s.quantile(0.5), Some(0.0));
        assert_eq!(s.quantile(0.8), Some(0.0));
        assert_eq!(s.quantile(1.0), Some(5.0)); // clamped to the exact max
        assert_eq!(s.min(), Some(0.0));
        assert_eq!(s.bucket_count(), 1);
    }

    #[test]
    fn count_sum_min_max_are_exact() {
        let mut s = QuantileSketch::new();
        let values = [12.5, 0.3, 99.0, 7.25];
        for v in values {
            s.add(v);
        }
        let stats = s.stats();
        assert_eq!(stats.count, 4);
        assert_eq!(stats.min, 0.3);
        assert_eq!(stats.max, 99.0);
        assert_eq!(s.sum(), values.iter().sum::<f64>());
        assert_eq!(stats.avg, values.iter().sum::<f64>() / 4.0);
        for q in [0.0, 0.25, 0.5, 0.75, 0.95, 1.0] {
            assert_within_alpha(&s, &values, q);
        }
    }

    #[test]
    fn buckets_stay_bounded_and_the_tail_stays_accurate() {
        let mut s = QuantileSketch::with_accuracy(DEFAULT_ALPHA, 64);
        let values: Vec<f64> = (0..2000).map(|i| 1e-6 * 1.05f64.powi(i % 700)).collect();
        for &v in &values {
            s.add(v);
        }
        assert!(s.bucket_count() <= 64, "{}", s.bucket_count());
        assert_eq!(s.count(), 2000);
        for q in [0.99, 0.999, 1.0] {
            assert_within_alpha(&s, &values, q);
        }
        // The collapsed low end is still inside [min, max].
        let low = s.quantile(0.01).unwrap();
        assert!(low >= s.min().unwrap() && low <= s.max().unwrap());
    }

    #[test]
    fn merge_equals_adding_everything() {
        let a_values: Vec<f64> = (1..500).map(|i| f64::from(i) * 0.37).collect();
        let b_values: Vec<f64> = (1..300).map(|i| f64::from(i) * 11.0).chain([0.0]).collect();
        let mut a = QuantileSketch::new();
        let mut b = QuantileSketch::new();
        let mut all = QuantileSketch::new();
        a_values.iter().for_each(|&v| a.add(v));
        b_values.iter().for_each(|&v| b.add(v));
        a_values.iter().chain(&b_values).for_each(|&v| all.add(v));
        a.merge(&b).unwrap();
        assert_eq!(a.count(), all.count());
        assert_eq!(a.min(), all.min());
        assert_eq!(a.max(), all.max());
        for q in [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0] {
            assert_eq!(a.quantile(q), all.quantile(q), "q={q}");
        }
        let mut c = QuantileSketch::with_accuracy(0.05, 100);
        assert!(c.merge(&a).is_err());
        // Merging into an empty sketch copies.
        let mut empty = QuantileSketch::new();
        empty.merge(&all).unwrap();
        assert_eq!(empty.quantile(0.5), all.quantile(0.5));
    }

    #[test]
    fn merging_single_bucket_and_zero_only_sketches() {
        let mut a = QuantileSketch::new();
        let mut one = QuantileSketch::new();
        one.add(18.0);
        let mut zeros = QuantileSketch::new();
        zeros.add(0.0);
        a.merge(&one).unwrap();
        a.merge(&one).unwrap();
        a.merge(&zeros).unwrap();
        assert_eq!(a.count(), 3);
        assert_eq!(a.quantile(0.3), Some(0.0));
        assert_eq!(a.quantile(1.0), Some(18.0));
        assert_within_alpha(&a, &[18.0, 18.0, 0.0], 0.5);
    }

    #[test]
    fn merge_respects_the_bucket_bound() {
        let mut a = QuantileSketch::with_accuracy(DEFAULT_ALPHA, 32);
        let mut b = QuantileSketch::with_accuracy(DEFAULT_ALPHA, 32);
        a.add(1e-6);
        b.add(1e6);
        a.merge(&b).unwrap();
        assert!(a.bucket_count() <= 32);
        assert_eq!(a.count(), 2);
        assert_within_alpha(&a, &[1e-6, 1e6], 1.0);
    }

    fn durations() -> impl Strategy<Value = f64> {
        prop_oneof![
            1 => Just(0.0),
            8 => (-6.0f64..7.0).prop_map(|e| 10f64.powf(e)),
            3 => 0.0f64..50.0,
        ]
    }

    proptest! {
        #[test]
        fn quantiles_within_one_percent_of_exact(
            values in prop::collection::vec(durations(), 1..400),
            q in 0.0f64..=1.0,
        ) {
            let mut s = QuantileSketch::new();
            for &v in &values {
                s.add(v);
            }
            for q in [q, 0.5, 0.95, 0.99] {
                assert_within_alpha(&s, &values, q);
            }
        }

        #[test]
        fn merged_sketches_keep_the_bound(
            a in prop::collection::vec(durations(), 1..200),
            b in prop::collection::vec(durations(), 1..200),
            q in 0.0f64..=1.0,
        ) {
            let mut sa = QuantileSketch::new();
            let mut sb = QuantileSketch::new();
            a.iter().for_each(|&v| sa.add(v));
            b.iter().for_each(|&v| sb.add(v));
            sa.merge(&sb).unwrap();
            let all: Vec<f64> = a.iter().chain(&b).copied().collect();
            assert_within_alpha(&sa, &all, q);
        }
    }

    #[test]
    fn quantile_sketch_example() {
        let mut s = QuantileSketch::new();
        for ms in 1..=1000 {
            s.add(f64::from(ms));
        }
        let p99 = s.quantile(0.99).unwrap();
        assert!((p99 - 990.0).abs() <= 0.01 * 990.0);
        assert_eq!(s.count(), 1000);
    }
}
