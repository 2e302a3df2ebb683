//! The JSONL files: `spans-*.jsonl` and `traces-*.jsonl` in `output_dir`,
//! rotated by size, never a torn line (see writer.rs for the file rules and
//! jsonl.rs for the line format).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::sync::Mutex;

use super::{Batch, Delivery, DeliveryError, Sink, SinkControl};
use crate::jsonl;
use crate::writer::RotatingFile;

/// Spans serialised per write call: bounds the sink's memory.
const CHUNK: usize = 8192;

pub struct JsonlSink {
    service: String,
    dir: PathBuf,
    spans_file: RotatingFile,
    traces_file: RotatingFile,
    /// Every file opened, in order (shared with `tracer.files()`).
    files: Arc<Mutex<Vec<PathBuf>>>,
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
        max_file_bytes: u64,
        files: Arc<Mutex<Vec<PathBuf>>>,
    ) -> Self {
        JsonlSink {
            service: service.to_string(),
            dir: dir.to_path_buf(),
            spans_file: RotatingFile::new(dir, "spans", service, max_file_bytes),
            traces_file: RotatingFile::new(dir, "traces", service, max_file_bytes),
            files,
            span_bytes: Vec::with_capacity(1 << 20),
            span_ends: Vec::with_capacity(CHUNK),
            trace_bytes: Vec::with_capacity(1 << 16),
            trace_ends: Vec::new(),
            summaries_written: 0,
        }
    }

    fn note_file(&self, file: &RotatingFile) {
        if let Some(path) = file.current_path() {
            let mut files = self.files.lock();
            if !files.iter().rev().any(|p| p == path) {
                files.push(path.to_path_buf());
            }
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

    fn deliver(&mut self, batch: &Batch, _: &SinkControl) -> Delivery {
        let mut delivery = Delivery::default();
        for chunk in batch.spans.chunks(CHUNK) {
            self.span_bytes.clear();
            self.span_ends.clear();
            for span in chunk {
                jsonl::write_span(&mut self.span_bytes, span, &self.service);
                self.span_ends.push(self.span_bytes.len());
            }
            let outcome = self.spans_file.append(&self.span_bytes, &self.span_ends);
            delivery.delivered += outcome.lines_written as u64;
            delivery.lost += (chunk.len() - outcome.lines_written) as u64;
            self.note_file(&self.spans_file);
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
            let outcome = self.traces_file.append(&self.trace_bytes, &self.trace_ends);
            self.summaries_written += outcome.lines_written as u64;
            self.note_file(&self.traces_file);
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
}
