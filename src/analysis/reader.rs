//! Reading span files: a directory of `spans*.jsonl` files (at any depth) or
//! one file, streamed line by line. Memory is one line buffer plus whatever
//! the caller keeps of each [`SpanRow`]; malformed lines are counted and
//! skipped, never fatal, so a torn last line from a live writer is harmless.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::record::{RecordError, SpanRow};

/// Why a path could not be read at all.
#[derive(Debug)]
pub enum AnalysisError {
    /// The path does not exist.
    NotFound(PathBuf),
    /// The path exists but reading it (or listing it) failed.
    Io { path: PathBuf, source: io::Error },
    /// [`ReadProgress::cancel`] stopped the read of `path`.
    Cancelled(PathBuf),
}

impl AnalysisError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            AnalysisError::NotFound(path)
            | AnalysisError::Io { path, .. }
            | AnalysisError::Cancelled(path) => path,
        }
    }

    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            AnalysisError::NotFound(path.to_path_buf())
        } else {
            AnalysisError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

impl fmt::Display for AnalysisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnalysisError::NotFound(path) => {
                write!(f, "no such file or directory: {}", path.display())
            }
            AnalysisError::Io { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            AnalysisError::Cancelled(path) => {
                write!(f, "reading {} was cancelled", path.display())
            }
        }
    }
}

impl std::error::Error for AnalysisError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AnalysisError::NotFound(_) | AnalysisError::Cancelled(_) => None,
            AnalysisError::Io { source, .. } => Some(source),
        }
    }
}

/// The first malformed line met, to tell the user where to look.
#[derive(Clone, Debug, PartialEq)]
pub struct SkippedLine {
    pub path: PathBuf,
    /// 1-based line number within `path`.
    pub line: u64,
    pub error: RecordError,
}

/// What a read went through.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadReport {
    /// Span files read.
    pub files: usize,
    /// Non-blank lines seen.
    pub lines: u64,
    /// Lines that parsed into spans.
    pub spans: u64,
    /// Malformed lines skipped.
    pub skipped: u64,
    /// The first skipped line, if any.
    pub first_skipped: Option<SkippedLine>,
}

impl ReadReport {
    /// Adds another report's counts (e.g. of a second directory).
    pub fn merge(&mut self, other: ReadReport) {
        self.files += other.files;
        self.lines += other.lines;
        self.spans += other.spans;
        self.skipped += other.skipped;
        if self.first_skipped.is_none() {
            self.first_skipped = other.first_skipped;
        }
    }
}

/// Whether `name` is a span file name: `spans*.jsonl`.
pub fn is_span_file_name(name: &str) -> bool {
    name.starts_with("spans") && name.ends_with(".jsonl")
}

/// The span files `path` stands for: itself if it is a file (whatever its
/// name), else every `spans*.jsonl` below it, in path order. Symlinked
/// directories are not followed (no cycles); symlinked files are read.
pub fn span_files(path: &Path) -> Result<Vec<PathBuf>, AnalysisError> {
    let meta = fs::metadata(path).map_err(|e| AnalysisError::io(path, e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| AnalysisError::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| AnalysisError::io(&dir, e))?;
            let entry_path = entry.path();
            let file_type = entry
                .file_type()
                .map_err(|e| AnalysisError::io(&entry_path, e))?;
            if file_type.is_dir() {
                pending.push(entry_path);
                continue;
            }
            let is_file = file_type.is_file() || (file_type.is_symlink() && entry_path.is_file());
            if is_file && entry.file_name().to_str().is_some_and(is_span_file_name) {
                files.push(entry_path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Reads every span under `path` (see [`span_files`]), calling `on_span` for
/// each well-formed line in file order.
///
/// ```no_run
/// use _core::analysis::read_spans;
/// let mut count = 0;
/// let report = read_spans("traces/".as_ref(), |_row| count += 1).unwrap();
/// println!("{count} spans, {} malformed lines skipped", report.skipped);
/// ```
pub fn read_spans(
    path: &Path,
    mut on_span: impl FnMut(SpanRow),
) -> Result<ReadReport, AnalysisError> {
    let mut report = ReadReport::default();
    for file in span_files(path)? {
        read_span_file(&file, &mut report, &mut on_span)?;
    }
    Ok(report)
}

/// Reads one span file into `report` and `on_span`.
pub fn read_span_file(
    file: &Path,
    report: &mut ReadReport,
    on_span: &mut impl FnMut(SpanRow),
) -> Result<(), AnalysisError> {
    let handle = File::open(file).map_err(|e| AnalysisError::io(file, e))?;
    report.files += 1;
    read_span_lines(BufReader::new(handle), file, report, on_span)
        .map_err(|e| AnalysisError::io(file, e))
}

/// Reads span lines from any buffered source; `origin` names it in
/// [`SkippedLine`]. Blank lines are ignored; malformed ones are counted.
pub fn read_span_lines<R: BufRead>(
    reader: R,
    origin: &Path,
    report: &mut ReadReport,
    on_span: &mut impl FnMut(SpanRow),
) -> io::Result<()> {
    read_lines(reader, origin, report, &mut |line| {
        SpanRow::parse_bytes(line).map(&mut *on_span)
    })
}

/// Reads lines from any buffered source, handing each non-blank one to
/// `on_line`, which counts it as a span (`Ok`) or says why it is not one
/// (`Err`: counted as skipped; the first is kept in the report).
pub fn read_lines<R: BufRead>(
    mut reader: R,
    origin: &Path,
    report: &mut ReadReport,
    on_line: &mut impl FnMut(&[u8]) -> Result<(), RecordError>,
) -> io::Result<()> {
    let mut line = Vec::with_capacity(1024);
    let mut number = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        report.lines += 1;
        match on_line(&line) {
            Ok(()) => report.spans += 1,
            Err(error) => {
                report.skipped += 1;
                if report.first_skipped.is_none() {
                    report.first_skipped = Some(SkippedLine {
                        path: origin.to_path_buf(),
                        line: number,
                        error,
                    });
                }
            }
        }
    }
}

/// How far a read has got, shared with whoever watches it (a progress bar,
/// a Ctrl-C handler), and its brake.
#[derive(Debug, Default)]
pub struct ReadProgress {
    read: AtomicU64,
    total: AtomicU64,
    cancelled: AtomicBool,
}

impl ReadProgress {
    /// Nothing read yet.
    pub fn new() -> Self {
        ReadProgress::default()
    }

    /// Bytes of span files read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Total size of the span files being read (0 until they are listed).
    pub fn bytes_total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Stops the read soon: it fails with [`AnalysisError::Cancelled`].
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`Self::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// What reading one file gave: its accumulator and report.
type FileResult<T> = Result<(T, ReadReport), AnalysisError>;

/// Threads for reading files: one per available core, at most 8.
pub fn read_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Reads every span file under `path` (see [`span_files`]) on up to
/// `threads` threads, a whole file at a time, largest files first. Each
/// file gets a fresh accumulator from `start_file`, and `on_line` gets its
/// non-blank lines in order, returning whether each is a span (see
/// [`read_lines`]). Returns the accumulators in path order with the merged
/// report, so the result is the same as a sequential read's.
pub fn read_span_files_parallel<T: Send>(
    path: &Path,
    threads: usize,
    progress: &ReadProgress,
    start_file: impl Fn() -> T + Sync,
    on_line: impl Fn(&mut T, &[u8]) -> Result<(), RecordError> + Sync,
) -> Result<(Vec<T>, ReadReport), AnalysisError> {
    let files = span_files(path)?;
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| fs::metadata(f).map_or(0, |m| m.len()))
        .collect();
    progress.total.store(sizes.iter().sum(), Ordering::Relaxed);
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let worker = || {
        let mut done: Vec<(usize, FileResult<T>)> = Vec::new();
        while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            if failed.load(Ordering::Relaxed) {
                break;
            }
            let result = read_one_file(&files[i], progress, &start_file, &on_line);
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            done.push((i, result));
        }
        done
    };
    let threads = threads.clamp(1, files.len().max(1));
    let mut results = if threads == 1 {
        worker()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (1..threads)
                .map(|_| {
                    std::thread::Builder::new()
                        .name("ferrotrace-read".into())
                        .spawn_scoped(scope, worker)
                })
                .collect();
            let mut results = worker();
            for handle in handles {
                match handle {
                    Ok(handle) => match handle.join() {
                        Ok(done) => results.extend(done),
                        Err(panic) => std::panic::resume_unwind(panic),
                    },
                    // No thread to be had: this one reads the rest.
                    Err(_) => results.extend(worker()),
                }
            }
            results
        })
    };
    results.sort_by_key(|(i, _)| *i);
    if progress.is_cancelled() {
        return Err(AnalysisError::Cancelled(path.to_path_buf()));
    }
    let mut report = ReadReport::default();
    let mut outputs = Vec::with_capacity(results.len());
    for (_, result) in results {
        let (output, file_report) = result?;
        report.merge(file_report);
        outputs.push(output);
    }
    Ok((outputs, report))
}

fn read_one_file<T>(
    file: &Path,
    progress: &ReadProgress,
    start_file: &impl Fn() -> T,
    on_line: &impl Fn(&mut T, &[u8]) -> Result<(), RecordError>,
) -> FileResult<T> {
    let handle = File::open(file).map_err(|e| AnalysisError::io(file, e))?;
    let mut report = ReadReport {
        files: 1,
        ..ReadReport::default()
    };
    let mut output = start_file();
    let reader = BufReader::with_capacity(
        256 << 10,
        Counted {
            inner: handle,
            progress,
        },
    );
    read_lines(reader, file, &mut report, &mut |line| {
        on_line(&mut output, line)
    })
    .map_err(|e| AnalysisError::io(file, e))?;
    Ok((output, report))
}

/// A file that adds what it reads to a [`ReadProgress`] and stops when
/// the read is cancelled.
struct Counted<'a> {
    inner: File,
    progress: &'a ReadProgress,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.progress.is_cancelled() {
            return Err(io::Error::other("read cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.progress.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn span_line(trace: u128, span: u64, parent: Option<u64>) -> String {
        let parent = match parent {
            Some(p) => format!("\"{p:016x}\""),
            None => "null".to_string(),
        };
        format!(
            concat!(
                "{{\"trace_id\":\"{:032x}\",\"span_id\":\"{:016x}\",\"parent_id\":{},",
                "\"name\":\"op\",\"service\":\"svc\",\"kind\":\"internal\",\"start_ns\":1,",
                "\"end_ns\":1000001,\"duration_ms\":1.0,\"status\":\"ok\",\"attributes\":{{}},",
                "\"events\":[],\"error\":null}}\n"
            ),
            trace, span, parent
        )
    }

    fn write(path: &Path, content: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut f = File::create(path).unwrap();
        f.write_all(content.as_bytes()).unwrap();
    }

    #[test]
    fn reads_span_files_at_any_depth_and_ignores_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(&root.join("spans-1.jsonl"), &span_line(1, 1, None));
        write(
            &root.join("api/spans-2.jsonl"),
            &(span_line(1, 2, Some(1)) + &span_line(1, 3, Some(1))),
        );
        write(&root.join("a/b/spans.jsonl"), &span_line(2, 1, None));
        write(&root.join("traces-1.jsonl"), "{\"trace_id\": \"x\"}\n");
        write(&root.join("spans-1.jsonl.bak"), "garbage\n");
        write(&root.join("notes.txt"), "garbage\n");

        let files = span_files(root).unwrap();
        assert_eq!(files.len(), 3);
        let mut ids = Vec::new();
        let report = read_spans(root, |row| ids.push((row.trace_id.0, row.span_id.0))).unwrap();
        ids.sort();
        assert_eq!(ids, vec![(1, 1), (1, 2), (1, 3), (2, 1)]);
        assert_eq!(report.files, 3);
        assert_eq!(report.spans, 4);
        assert_eq!(report.skipped, 0);
    }

    #[test]
    fn malformed_lines_are_counted_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("spans.jsonl");
        let good = span_line(1, 1, None);
        let torn = &span_line(1, 2, Some(1))[..40];
        let content = format!(
            "{good}\nnot json\n{}{{\"trace_id\":\"{:032x}\"}}\n{good}{torn}",
            span_line(1, 3, Some(1)),
            7
        );
        write(&file, &content);
        let mut rows = 0;
        let report = read_spans(&file, |_| rows += 1).unwrap();
        assert_eq!(rows, 3);
        assert_eq!(report.spans, 3);
        assert_eq!(report.skipped, 3);
        assert_eq!(report.lines, 6);
        let first = report.first_skipped.unwrap();
        assert_eq!(first.line, 3);
        assert_eq!(first.path, file);
    }

    #[test]
    fn a_complete_last_line_without_newline_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("spans.jsonl");
        write(&file, span_line(1, 1, None).trim_end());
        let report = read_spans(&file, |_| {}).unwrap();
        assert_eq!((report.spans, report.skipped), (1, 0));
    }

    #[test]
    fn missing_path_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = read_spans(&missing, |_| {}).unwrap_err();
        assert!(matches!(err, AnalysisError::NotFound(_)));
        assert_eq!(err.path(), missing);
        assert_eq!(
            err.to_string(),
            format!("no such file or directory: {}", missing.display())
        );
    }

    #[test]
    fn empty_directory_reads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let report = read_spans(dir.path(), |_| panic!("no spans")).unwrap();
        assert_eq!(report, ReadReport::default());
    }

    #[test]
    fn span_file_names() {
        assert!(is_span_file_name("spans.jsonl"));
        assert!(is_span_file_name("spans-4242-3.jsonl"));
        assert!(!is_span_file_name("traces-1.jsonl"));
        assert!(!is_span_file_name("spans.jsonl.gz"));
        assert!(!is_span_file_name("myspans.jsonl"));
    }
}
