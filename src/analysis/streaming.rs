//! [`StatsOnly`]: per-operation statistics streamed from files without
//! keeping the spans, for `ferrotrace stats` over files of any size.
//!
//! Memory is bounded by what the chosen [`Precision`] keeps per operation:
//!
//! * `Exact` (the default; README.md promises exact nearest-rank percentiles
//!   for files) keeps every duration as an `f64`: 8 bytes a span, against
//!   the few hundred bytes of its JSON line and of a parsed [`SpanRow`]. So
//!   memory grows with the span count, about 1/50th of the file size.
//! * `Sketch` keeps one [`QuantileSketch`] per operation: at most 16 KiB
//!   each whatever the span count, so memory is bounded by the number of
//!   operations, with percentiles within 1% of the exact values (count,
//!   min, max, average and total stay exact).
//!
//! Self time and time share need whole traces, so they are `None` here; use
//! [`super::Analysis`] for them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use compact_str::CompactString;

use super::operations::{sort_operations, OperationStats};
use super::percentile::LatencyStats;
use super::reader::{
    read_span_files_parallel, read_threads, AnalysisError, ReadProgress, ReadReport,
};
use super::record::{RecordError, SpanRow};
use super::scan::scan_stats_fields;
use super::sketch::QuantileSketch;

/// Below this many spans, sorting on one thread beats starting others.
const PARALLEL_SORT_SPANS: usize = 200_000;

/// How [`StatsOnly`] keeps durations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// Every duration: exact percentiles, 8 bytes a span.
    #[default]
    Exact,
    /// A DDSketch per operation: within 1%, bounded memory.
    Sketch,
}

#[derive(Clone, Debug)]
enum Durations {
    Exact(Vec<f64>),
    Sketch(QuantileSketch),
}

#[derive(Clone, Debug)]
struct OperationTally {
    durations: Durations,
    errors: u64,
    total_ms: f64,
}

impl OperationTally {
    /// Durations kept (exact) or counted (sketch).
    fn len(&self) -> usize {
        match &self.durations {
            Durations::Exact(values) => values.len(),
            Durations::Sketch(sketch) => sketch.count() as usize,
        }
    }

    fn new(precision: Precision) -> Self {
        OperationTally {
            durations: match precision {
                Precision::Exact => Durations::Exact(Vec::new()),
                Precision::Sketch => Durations::Sketch(QuantileSketch::new()),
            },
            errors: 0,
            total_ms: 0.0,
        }
    }

    fn latency(&self) -> LatencyStats {
        match &self.durations {
            Durations::Exact(values) => LatencyStats::from_values(&mut values.clone()),
            Durations::Sketch(sketch) => sketch.stats(),
        }
    }
}

/// Streaming per-(service, operation) counts, errors and latency.
#[derive(Clone, Debug, Default)]
pub struct StatsOnly {
    precision: Precision,
    /// service -> operation -> tally (nested so lookups need no allocation).
    by_service: HashMap<CompactString, HashMap<CompactString, OperationTally>>,
    report: ReadReport,
}

impl StatsOnly {
    /// An empty tally.
    pub fn new(precision: Precision) -> Self {
        StatsOnly {
            precision,
            ..StatsOnly::default()
        }
    }

    /// Streams every span under `path` (see [`super::span_files`]).
    ///
    /// ```no_run
    /// use _core::analysis::{Precision, StatsOnly};
    /// let stats = StatsOnly::open("traces/", Precision::Sketch).unwrap();
    /// for op in stats.operations() {
    ///     println!("{} {} p99={:.1}ms", op.service, op.operation, op.p99);
    /// }
    /// ```
    pub fn open(path: impl AsRef<Path>, precision: Precision) -> Result<Self, AnalysisError> {
        Self::open_with(path, precision, &ReadProgress::new())
    }

    /// [`Self::open`], reading files on every core (see
    /// [`read_span_files_parallel`]) and reporting to `progress`.
    pub fn open_with(
        path: impl AsRef<Path>,
        precision: Precision,
        progress: &ReadProgress,
    ) -> Result<Self, AnalysisError> {
        let (parts, report) = read_span_files_parallel(
            path.as_ref(),
            read_threads(),
            progress,
            || StatsOnly::new(precision),
            |stats, line| stats.add_line(line),
        )?;
        let mut stats = StatsOnly::new(precision);
        for part in parts {
            stats.absorb(part);
        }
        stats.report = report;
        Ok(stats)
    }

    /// Counts one span.
    pub fn add(&mut self, span: &SpanRow) {
        self.count(&span.service, &span.name, span.duration_ms, span.is_error());
    }

    /// Counts the span on one JSONL line, or says why it is not one. Lines
    /// as the writer writes them are read without building a [`SpanRow`]
    /// (see [`super::scan`]); the result is the same either way.
    pub fn add_line(&mut self, line: &[u8]) -> Result<(), RecordError> {
        if let Some(fields) = scan_stats_fields(line) {
            self.count(
                fields.service,
                fields.name,
                fields.duration_ms,
                fields.is_error,
            );
            return Ok(());
        }
        self.add(&SpanRow::parse_bytes(line)?);
        Ok(())
    }

    /// Adds the spans of another tally of the same precision.
    fn absorb(&mut self, other: StatsOnly) {
        for (service, ops) in other.by_service {
            for (operation, theirs) in ops {
                self.with_tally(&service, &operation, |mine| {
                    mine.errors += theirs.errors;
                    mine.total_ms += theirs.total_ms;
                    match (&mut mine.durations, theirs.durations) {
                        (Durations::Exact(a), Durations::Exact(b)) => a.extend(b),
                        (Durations::Sketch(a), Durations::Sketch(b)) => {
                            // Same accuracy by construction, so this cannot fail.
                            let _ = a.merge(&b);
                        }
                        (Durations::Sketch(a), Durations::Exact(b)) => {
                            b.into_iter().for_each(|v| a.add(v));
                        }
                        // Not reached: both sides come from one `precision`.
                        (Durations::Exact(_), Durations::Sketch(_)) => {}
                    }
                });
            }
        }
    }

    fn count(&mut self, service: &str, name: &str, duration_ms: f64, is_error: bool) {
        self.with_tally(service, name, |tally| {
            match &mut tally.durations {
                Durations::Exact(values) => values.push(duration_ms),
                Durations::Sketch(sketch) => sketch.add(duration_ms),
            }
            tally.errors += u64::from(is_error);
            tally.total_ms += duration_ms;
        });
    }

    fn with_tally(&mut self, service: &str, name: &str, f: impl FnOnce(&mut OperationTally)) {
        let precision = self.precision;
        let ops = match self.by_service.get_mut(service) {
            Some(ops) => ops,
            None => self.by_service.entry(service.into()).or_default(),
        };
        let tally = match ops.get_mut(name) {
            Some(tally) => tally,
            None => ops
                .entry(name.into())
                .or_insert_with(|| OperationTally::new(precision)),
        };
        f(tally);
    }

    /// What reading went through (zeros if spans were only [`Self::add`]ed).
    pub fn report(&self) -> &ReadReport {
        &self.report
    }

    /// How durations are kept.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Per-operation statistics, most total time first; `self_ms` and
    /// `time_share` are `None`.
    pub fn operations(&self) -> Vec<OperationStats> {
        let mut tallies: Vec<(&CompactString, &CompactString, &OperationTally)> = self
            .by_service
            .iter()
            .flat_map(|(service, ops)| ops.iter().map(move |(op, tally)| (service, op, tally)))
            .collect();
        // Exact percentiles sort every duration: the biggest operations
        // first, shared out among threads when there are many spans.
        tallies.sort_by_key(|(_, _, tally)| std::cmp::Reverse(tally.len()));
        let spans: usize = tallies.iter().map(|(_, _, tally)| tally.len()).sum();
        let threads = if spans >= PARALLEL_SORT_SPANS {
            read_threads()
        } else {
            1
        };
        let next = AtomicUsize::new(0);
        let work = || {
            let mut done = Vec::new();
            while let Some(&(service, operation, tally)) =
                tallies.get(next.fetch_add(1, Ordering::Relaxed))
            {
                done.push(OperationStats::new(
                    service.clone(),
                    operation.clone(),
                    tally.latency(),
                    tally.errors,
                    tally.total_ms,
                ));
            }
            done
        };
        let mut ops = if threads <= 1 {
            work()
        } else {
            std::thread::scope(|scope| {
                let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
                let mut ops = work();
                for helper in helpers {
                    match helper.join() {
                        Ok(done) => ops.extend(done),
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                }
                ops
            })
        };
        sort_operations(&mut ops);
        ops
    }

    /// Latency over the operations matching the filters (exact, or within
    /// 1% with [`Precision::Sketch`]).
    pub fn latency_stats(&self, operation: Option<&str>, service: Option<&str>) -> LatencyStats {
        let matching = self
            .by_service
            .iter()
            .filter(|(svc, _)| service.is_none_or(|s| *svc == s))
            .flat_map(|(_, ops)| ops.iter())
            .filter(|(op, _)| operation.is_none_or(|o| *op == o))
            .map(|(_, tally)| tally);
        match self.precision {
            Precision::Exact => {
                let mut values = Vec::new();
                for tally in matching {
                    if let Durations::Exact(v) = &tally.durations {
                        values.extend_from_slice(v);
                    }
                }
                LatencyStats::from_values(&mut values)
            }
            Precision::Sketch => {
                let mut merged = QuantileSketch::new();
                for tally in matching {
                    if let Durations::Sketch(s) = &tally.durations {
                        // Same accuracy by construction, so this cannot fail.
                        let _ = merged.merge(s);
                    }
                }
                merged.stats()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::operations::{latency_stats, operation_stats};
    use crate::analysis::traces::tests::{checkout_rows, failed, row};
    use crate::query::TraceStore;

    fn many_rows() -> Vec<SpanRow> {
        let mut rows = checkout_rows();
        for i in 0..200u64 {
            let r = row(
                100 + u128::from(i),
                1,
                None,
                "work",
                "worker",
                0,
                1 + i % 37,
            );
            rows.push(if i % 10 == 0 { failed(r, "E", "x") } else { r });
        }
        rows
    }

    #[test]
    fn exact_matches_the_full_analysis() {
        let rows = many_rows();
        let mut streamed = StatsOnly::new(Precision::Exact);
        rows.iter().for_each(|r| streamed.add(r));
        let full = operation_stats(TraceStore::from_iter(rows.clone()).views());
        let ops = streamed.operations();
        assert_eq!(ops.len(), full.len());
        for (s, f) in ops.iter().zip(&full) {
            assert_eq!((&s.service, &s.operation), (&f.service, &f.operation));
            assert_eq!(s.latency(), f.latency());
            assert_eq!((s.error_count, s.total_ms), (f.error_count, f.total_ms));
            assert_eq!(s.self_ms, None);
        }
        let work = ops.iter().find(|o| o.operation == "work").unwrap();
        assert_eq!(
            (work.count, work.error_count, work.error_rate),
            (200, 20, 0.1)
        );
        for (op, svc) in [(None, None), (Some("work"), None), (None, Some("orders"))] {
            assert_eq!(
                streamed.latency_stats(op, svc),
                latency_stats(&rows, op, svc)
            );
        }
    }

    #[test]
    fn sketch_is_within_one_percent() {
        let rows = many_rows();
        let mut streamed = StatsOnly::new(Precision::Sketch);
        rows.iter().for_each(|r| streamed.add(r));
        let exact = latency_stats(&rows, None, None);
        let sketched = streamed.latency_stats(None, None);
        assert_eq!(sketched.count, exact.count);
        assert_eq!((sketched.min, sketched.max), (exact.min, exact.max));
        for (got, want) in [
            (sketched.p50, exact.p50),
            (sketched.p95, exact.p95),
            (sketched.p99, exact.p99),
        ] {
            assert!((got - want).abs() <= 0.01 * want, "{got} vs {want}");
        }
        assert_eq!(streamed.precision(), Precision::Sketch);
    }

    #[test]
    fn streams_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spans.jsonl");
        let mut text = String::new();
        for r in checkout_rows() {
            text.push_str(&serde_json::to_string(&r).unwrap());
            text.push('\n');
        }
        text.push_str("torn{\n");
        std::fs::write(&path, text).unwrap();
        let stats = StatsOnly::open(dir.path(), Precision::Exact).unwrap();
        assert_eq!(stats.report().spans, 6);
        assert_eq!(stats.report().skipped, 1);
        assert_eq!(stats.operations().len(), 6);
        assert!(StatsOnly::open(dir.path().join("missing"), Precision::Exact).is_err());
    }
}
