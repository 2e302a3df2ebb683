//! Received spans appended to the traces directory by the tracers' own
//! file writer ([`RotatingFile`]: rotation by size, never a torn line), as
//! `spans-serve-{pid}-{n}.jsonl`, so every reader of the directory (the
//! `ferrotrace` CLI, `ft.analyze`, this server's follower) sees them as
//! it sees a tracer's. The index gets received spans straight from the
//! receiver; the follower skips these files (see [`is_own_file`]) rather
//! than parse back what was just written.

use std::io;
use std::path::Path;

use parking_lot::Mutex;

use crate::analysis::SpanRow;
use crate::writer::RotatingFile;

/// Rotate the server's own file at this size, as a tracer does by default.
const MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// The family name RotatingFile gives this process's files.
const SERVICE: &str = "serve";

/// Whether `file_name` is one of this process's own span files.
pub fn is_own_file(file_name: &str) -> bool {
    file_name
        .strip_prefix("spans-serve-")
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(pid, _)| pid == std::process::id().to_string())
}

pub struct SpanLog {
    inner: Mutex<Inner>,
}

/// The file and the buffers each batch is serialised into, reused: a
/// fresh buffer the size of a batch would be new pages from the kernel
/// on every request.
struct Inner {
    file: RotatingFile,
    data: Vec<u8>,
    ends: Vec<usize>,
}

/// A buffer grown past this by one huge batch is not kept.
const KEEP_BUFFER_BYTES: usize = 32 * 1024 * 1024;

impl SpanLog {
    pub fn new(dir: &Path) -> SpanLog {
        SpanLog {
            inner: Mutex::new(Inner {
                file: RotatingFile::new(dir, "spans", SERVICE, MAX_FILE_BYTES),
                data: Vec::new(),
                ends: Vec::new(),
            }),
        }
    }

    /// Appends `rows`; on an error, the lines before it are on disk and the
    /// caller is told how many (the client is asked to retry the request).
    pub fn append(&self, rows: &[SpanRow]) -> Result<(), (usize, io::Error)> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut inner = self.inner.lock();
        let Inner { file, data, ends } = &mut *inner;
        data.clear();
        ends.clear();
        for row in rows {
            crate::jsonl::write_row(data, row);
            ends.push(data.len());
        }
        let outcome = file.append(data, ends);
        if data.capacity() > KEEP_BUFFER_BYTES {
            *data = Vec::new();
            *ends = Vec::new();
        }
        match outcome.error {
            None => Ok(()),
            Some(e) => Err((outcome.lines_written, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_files_are_this_process_files_only() {
        let pid = std::process::id();
        assert!(is_own_file(&format!("spans-serve-{pid}-3.jsonl")));
        assert!(!is_own_file(&format!("spans-serve-{}-3.jsonl", pid + 1)));
        assert!(!is_own_file(&format!("spans-api-{pid}-3.jsonl")));
        let dir = tempfile::tempdir().unwrap();
        let log = SpanLog::new(dir.path());
        let row = crate::analysis::SpanRow::parse(
            r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7",
            "parent_id":null,"name":"x","service":"s","kind":"server","start_ns":1,"end_ns":2,
            "duration_ms":0.000001,"status":"ok","attributes":{},"events":[],"error":null}"#,
        )
        .unwrap();
        log.append(&[row.clone(), row.clone()]).unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(files.len(), 1);
        let name = files[0].file_name().into_string().unwrap();
        assert!(is_own_file(&name), "{name}");
        let text = std::fs::read_to_string(files[0].path()).unwrap();
        let back: Vec<_> = text
            .lines()
            .map(|l| crate::analysis::SpanRow::parse(l).unwrap())
            .collect();
        assert_eq!(back, vec![row.clone(), row]);
    }
}
