//! The JSONL files: `spans-*.jsonl` and `traces-*.jsonl` in `output_dir`,
//! rotated by size, never a torn line (see writer.rs for the file rules and
//! jsonl.rs for the line format). Rotated files are kept to `max_files` per
//! family (retention.rs) and, with `compress_rotated`, gzipped by a
//! compressor thread this sink starts on its first rotation (compress.rs).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::sync::Mutex;

use super::{Batch, Delivery, DeliveryError, FileCounts, Sink, SinkControl};
use crate::compress::{Compressor, Job};
use crate::config::Config;
use crate::jsonl;
use crate::retention::RotatedFiles;
use crate::writer::RotatingFile;

/// Spans serialised per write call: bounds the sink's memory.
const CHUNK: usize = 8192;

/// How big files grow, how many are kept and whether they are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLimits {
    pub max_file_bytes: u64,
    /// Rotated files kept per family; 0 keeps all.
    pub max_files: usize,
    pub compress_rotated: bool,
}

impl From<&Config> for FileLimits {
    fn from(config: &Config) -> Self {
        FileLimits {
            max_file_bytes: config.max_file_bytes,
            max_files: config.max_files,
            compress_rotated: config.compress_rotated,
        }
    }
}

/// One family of files (spans or trace summaries): the file being written
/// and the ones rotated out of it.
struct Family {
    writing: RotatingFile,
    rotated: Arc<Mutex<RotatedFiles>>,
}

pub struct JsonlSink {
    /// Every line's service name, written as JSON once.
    service: jsonl::ServiceJson,
    dir: PathBuf,
    limits: FileLimits,
    spans: Family,
    traces: Family,
    /// The files this sink holds now, in the order they were opened
    /// (shared with `tracer.files()`; retention and compression update it).
    files: Arc<Mutex<Vec<PathBuf>>>,
    files_opened: u64,
    /// Started on the first rotation when `compress_rotated` is on.
    compressor: Option<Compressor>,
    compressor_failed: bool,
    span_bytes: Vec<u8>,
    span_ends: Vec<usize>,
    trace_bytes: Vec<u8>,
    trace_ends: Vec<usize>,
    summaries_written: u64,
}

impl JsonlSink {
    pub fn new(
        dir: &Path,
        service: &str,
        limits: FileLimits,
        files: Arc<Mutex<Vec<PathBuf>>>,
    ) -> Self {
        let family = |prefix: &str| Family {
            writing: RotatingFile::new(dir, prefix, service, limits.max_file_bytes),
            rotated: Arc::new(Mutex::new(RotatedFiles::new(
                limits.max_files,
                Arc::clone(&files),
            ))),
        };
        JsonlSink {
            service: jsonl::ServiceJson::new(service),
            dir: dir.to_path_buf(),
            limits,
            spans: family("spans"),
            traces: family("traces"),
            files,
            files_opened: 0,
            compressor: None,
            compressor_failed: false,
            span_bytes: Vec::with_capacity(1 << 20),
            span_ends: Vec::with_capacity(CHUNK),
            trace_bytes: Vec::with_capacity(1 << 16),
            trace_ends: Vec::new(),
            summaries_written: 0,
        }
    }

    /// After a write: lists a newly opened file, and hands the files
    /// rotated out to retention and the compressor.
    fn after_write(&mut self, spans: bool, control: &SinkControl) {
        let family = if spans {
            &mut self.spans
        } else {
            &mut self.traces
        };
        if let Some(path) = family.writing.current_path() {
            let mut files = self.files.lock();
            if !files.iter().rev().any(|p| p == path) {
                files.push(path.to_path_buf());
                self.files_opened += 1;
            }
        }
        let closed = family.writing.take_closed();
        if closed.is_empty() {
            return;
        }
        let rotated = Arc::clone(&family.rotated);
        for file in closed {
            let plain = file.path.clone();
            let (failures, before, after) = {
                let mut kept = rotated.lock();
                let before = kept.deleted().files;
                let failures = kept.add(file);
                (failures, before, kept.deleted().files)
            };
            if before == 0 && after > 0 {
                control.warnings().warn_once(
                    "jsonl-retention",
                    format!(
                        "ferrotrace jsonl: deleting the oldest files in {} to keep {} rotated \
                         files per family (max_files); deleted files and spans are counted in \
                         metrics()['files_deleted'] and ['spans_deleted'] (this message is \
                         shown once)",
                        self.dir.display(),
                        self.limits.max_files
                    ),
                );
            }
            if let Some(failure) = failures.first() {
                control.warnings().warn_once(
                    "jsonl-retention-error",
                    format!(
                        "ferrotrace jsonl: cannot delete {}: {}; it is left in place and no \
                         longer counted against max_files (this warning is shown once)",
                        failure.path.display(),
                        failure.error
                    ),
                );
            }
            if self.limits.compress_rotated {
                self.compress(
                    Job {
                        family: Arc::clone(&rotated),
                        plain,
                    },
                    control,
                );
            }
        }
    }

    fn compress(&mut self, job: Job, control: &SinkControl) {
        if self.compressor.is_none() && !self.compressor_failed {
            match Compressor::start(Arc::clone(control.warnings())) {
                Ok(compressor) => self.compressor = Some(compressor),
                Err(e) => {
                    self.compressor_failed = true;
                    control.warnings().warn_once(
                        "jsonl-compress-thread",
                        format!(
                            "ferrotrace could not start its compressor thread ({e}); rotated \
                             files stay uncompressed"
                        ),
                    );
                }
            }
        }
        if let Some(compressor) = &self.compressor {
            compressor.compress(job);
        }
    }

    fn error(&self, what: &str, error: &std::io::Error) -> DeliveryError {
        DeliveryError {
            kind: "write".into(),
            message: format!("cannot write {what} to {:?}: {error}", self.dir.display()),
        }
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    fn is_file(&self) -> bool {
        true
    }

    fn deliver(&mut self, batch: &Batch, control: &SinkControl) -> Delivery {
        let mut delivery = Delivery::default();
        for chunk in batch.spans.chunks(CHUNK) {
            self.span_bytes.clear();
            self.span_ends.clear();
            for span in chunk {
                jsonl::write_span(&mut self.span_bytes, span, &self.service);
                self.span_ends.push(self.span_bytes.len());
            }
            let outcome = self.spans.writing.append(&self.span_bytes, &self.span_ends);
            delivery.delivered += outcome.lines_written as u64;
            delivery.lost += (chunk.len() - outcome.lines_written) as u64;
            self.after_write(true, control);
            if let Some(error) = outcome.error {
                delivery.error.get_or_insert(self.error("spans", &error));
            }
        }
        if !batch.summaries.is_empty() {
            self.trace_bytes.clear();
            self.trace_ends.clear();
            for summary in &batch.summaries {
                jsonl::write_trace_summary(&mut self.trace_bytes, summary);
                self.trace_ends.push(self.trace_bytes.len());
            }
            let outcome = self
                .traces
                .writing
                .append(&self.trace_bytes, &self.trace_ends);
            self.summaries_written += outcome.lines_written as u64;
            self.after_write(false, control);
            if let Some(error) = outcome.error {
                delivery
                    .error
                    .get_or_insert(self.error("trace summaries", &error));
            }
        }
        delivery
    }

    fn summaries_written(&self) -> u64 {
        self.summaries_written
    }

    fn file_counts(&self) -> FileCounts {
        let spans = self.spans.rotated.lock().deleted();
        let traces = self.traces.rotated.lock().deleted();
        FileCounts {
            files_opened: self.files_opened,
            files_deleted: spans.files + traces.files,
            spans_deleted: spans.lines,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{read_spans, span_files};
    use crate::ids::TraceId;
    use crate::span::SpanRecord;
    use std::time::{Duration, Instant};

    fn batch(first: u128, n: u128) -> Batch {
        Batch {
            spans: (first..first + n)
                .map(|t| {
                    let mut r = SpanRecord::new(TraceId(t + 1), None, "op".into());
                    r.start_ns = 1_700_000_000_000_000_000;
                    r.start_mono = 1;
                    r.end_mono = 2;
                    triomphe::Arc::new(r)
                })
                .collect(),
            summaries: Vec::new(),
        }
    }

    fn sink(dir: &Path, max_files: usize, compress_rotated: bool) -> JsonlSink {
        let limits = FileLimits {
            max_file_bytes: 4096,
            max_files,
            compress_rotated,
        };
        JsonlSink::new(dir, "svc", limits, Arc::default())
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn retention_keeps_max_files_and_counts_exactly_what_it_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(dir.path(), 4, false);
        let control = SinkControl::default();
        let mut delivered = 0;
        for i in 0..60 {
            delivered += sink.deliver(&batch(i * 10, 10), &control).delivered;
        }
        assert_eq!(delivered, 600);
        let counts = sink.file_counts();
        // 4 rotated files and the open one are left of every file opened.
        assert_eq!(span_files(dir.path()).unwrap().len(), 5);
        assert_eq!(names(dir.path()).len(), 5);
        assert_eq!(counts.files_opened, counts.files_deleted + 5);
        assert!(counts.files_deleted > 10, "{counts:?}");
        // Every span is on disk or counted as deleted; the newest survive.
        let mut left = Vec::new();
        read_spans(dir.path(), |row| left.push(row.trace_id.0)).unwrap();
        assert_eq!(left.len() as u64 + counts.spans_deleted, 600);
        left.sort();
        assert_eq!(*left.last().unwrap(), 600);
        assert_eq!(left, (601 - left.len() as u128..=600).collect::<Vec<_>>());
        let listed: Vec<PathBuf> = sink.files.lock().clone();
        assert_eq!(listed, span_files(dir.path()).unwrap());
        // Told once.
        assert_eq!(control.warnings().take().len(), 1);
    }

    #[test]
    fn rotated_files_are_compressed_in_the_background_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(dir.path(), 0, true);
        let control = SinkControl::default();
        for i in 0..30 {
            sink.deliver(&batch(i * 10, 10), &control);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let plain_rotated = |dir: &Path| {
            names(dir)
                .iter()
                .filter(|n| n.ends_with(".jsonl") || n.ends_with(".tmp"))
                .count()
        };
        while plain_rotated(dir.path()) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let all = names(dir.path());
        assert_eq!(plain_rotated(dir.path()), 1, "{all:?}");
        assert!(all.iter().filter(|n| n.ends_with(".jsonl.gz")).count() > 5);
        let mut ids = Vec::new();
        let report = read_spans(dir.path(), |row| ids.push(row.trace_id.0)).unwrap();
        ids.sort();
        assert_eq!(ids, (1..=300).collect::<Vec<_>>());
        assert_eq!(report.skipped, 0);
        let mut listed: Vec<PathBuf> = sink.files.lock().clone();
        listed.sort();
        assert_eq!(listed, span_files(dir.path()).unwrap());
        assert_eq!(sink.file_counts().files_deleted, 0);
        drop(sink);
        assert_eq!(names(dir.path()), all, "stopping changes nothing done");
    }
}
