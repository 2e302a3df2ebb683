//! Received spans appended to the traces directory by the tracers' own
//! file writer ([`RotatingFile`]: rotation by size, never a torn line), as
//! `spans-serve-{pid}-{n}.jsonl`, so every reader of the directory (the
//! `ferrotrace` CLI, `ft.analyze`, this server's follower) sees them as
//! it sees a tracer's.

use std::io;
use std::path::Path;

use parking_lot::Mutex;

use crate::analysis::SpanRow;
use crate::writer::RotatingFile;

/// Rotate the server's own file at this size, as a tracer does by default.
const MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

pub struct SpanLog {
    file: Mutex<RotatingFile>,
}

impl SpanLog {
    pub fn new(dir: &Path) -> SpanLog {
        SpanLog {
            file: Mutex::new(RotatingFile::new(dir, "spans", "serve", MAX_FILE_BYTES)),
        }
    }

    /// Appends `rows`; on an error, the lines before it are on disk and the
    /// caller is told how many (the client is asked to retry the request).
    pub fn append(&self, rows: &[SpanRow]) -> Result<(), (usize, io::Error)> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut data = Vec::with_capacity(rows.len() * 512);
        let mut ends = Vec::with_capacity(rows.len());
        for row in rows {
            let start = data.len();
            // A SpanRow always serialises (string keys, finite numbers);
            // were it ever not to, no half line may stay behind.
            if serde_json::to_writer(&mut data, row).is_ok() {
                data.push(b'\n');
                ends.push(data.len());
            } else {
                data.truncate(start);
            }
        }
        let outcome = self.file.lock().append(&data, &ends);
        match outcome.error {
            None => Ok(()),
            Some(e) => Err((outcome.lines_written, e)),
        }
    }
}
