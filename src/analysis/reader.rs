//! Reading span files: a directory of `spans*.jsonl` and `spans*.jsonl.gz`
//! files (at any depth) or one file, streamed line by line. Memory is one
//! line buffer plus whatever the caller keeps of each [`SpanRow`];
//! malformed lines are counted and skipped, never fatal, so a torn last
//! line from a live writer, or a `.gz` cut short, is harmless.
//!
//! Gzip is recognised by its first two bytes, whatever the file's name.
//! Writers with `compress_rotated` swap files while readers list them: a
//! plain file and its `.gz` twin listed together are read once (the
//! `.gz`), and a listed plain file gone by the time it is opened is read
//! as its `.gz` (or skipped, when retention deleted it).

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use flate2::bufread::MultiGzDecoder;

use super::record::{RecordError, SpanRow};
use crate::compress::compressed_name;

/// The first bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

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

/// Whether `name` is a span file name: `spans*.jsonl` or `spans*.jsonl.gz`
/// (not the `.gz.tmp` of a compression under way).
pub fn is_span_file_name(name: &str) -> bool {
    name.starts_with("spans") && (name.ends_with(".jsonl") || name.ends_with(".jsonl.gz"))
}

/// The span files `path` stands for: itself if it is a file (whatever its
/// name), else every `spans*.jsonl` and `spans*.jsonl.gz` below it, in path
/// order, a plain file whose `.gz` is listed too left out. Symlinked
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
    // A plain file beside its `.gz` is one compressed a moment ago (or a
    // crash hit between the rename and the removal): the same lines twice.
    let listed: HashSet<PathBuf> = files.iter().cloned().collect();
    files.retain(|f| !listed.contains(&compressed_name(f)));
    files.sort();
    Ok(files)
}

/// Opens a listed span file. A plain file compressed since it was listed
/// is opened as its `.gz`; None if it is gone altogether (deleted by
/// retention since it was listed).
fn open_span_file(file: &Path) -> Result<Option<(File, PathBuf)>, AnalysisError> {
    match File::open(file) {
        Ok(handle) => Ok(Some((handle, file.to_path_buf()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let gz = compressed_name(file);
            match File::open(&gz) {
                Ok(handle) => Ok(Some((handle, gz))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(AnalysisError::io(&gz, e)),
            }
        }
        Err(e) => Err(AnalysisError::io(file, e)),
    }
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
    let Some((handle, path)) = open_span_file(file)? else {
        return Ok(());
    };
    report.files += 1;
    read_span_lines(BufReader::new(handle), &path, report, on_span)
        .map_err(|e| AnalysisError::io(&path, e))
}

/// Reads the lines of a file's contents, plain or gzip (see
/// [`read_lines`]). A gzip stream cut short or damaged ends the file: its
/// lines before that point are read, and the damage is counted as one
/// skipped line.
pub fn read_file_lines<R: BufRead>(
    mut reader: R,
    origin: &Path,
    report: &mut ReadReport,
    on_line: &mut impl FnMut(&[u8]) -> Result<(), RecordError>,
) -> io::Result<()> {
    if !reader.fill_buf()?.starts_with(&GZIP_MAGIC) {
        return read_lines(reader, origin, report, on_line);
    }
    let decoded = BufReader::with_capacity(
        256 << 10,
        UntilDamaged {
            inner: MultiGzDecoder::new(reader),
            damage: None,
        },
    );
    read_lines_with(decoded, origin, report, on_line, |r| {
        r.get_ref().damage.as_ref().map(ToString::to_string)
    })
}

/// A decoder that reads as ending where its data is cut short or damaged,
/// keeping the reason. Other errors (the file's own) pass through.
struct UntilDamaged<R> {
    inner: R,
    damage: Option<io::Error>,
}

impl<R: Read> Read for UntilDamaged<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.damage.is_some() {
            return Ok(0);
        }
        match self.inner.read(buf) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::InvalidInput
                        | io::ErrorKind::InvalidData
                ) =>
            {
                self.damage = Some(e);
                Ok(0)
            }
            other => other,
        }
    }
}

/// Reads span lines from any buffered source, plain or gzip; `origin`
/// names it in [`SkippedLine`]. Blank lines are ignored; malformed ones are
/// counted.
pub fn read_span_lines<R: BufRead>(
    reader: R,
    origin: &Path,
    report: &mut ReadReport,
    on_span: &mut impl FnMut(SpanRow),
) -> io::Result<()> {
    read_file_lines(reader, origin, report, &mut |line| {
        SpanRow::parse_bytes(line).map(&mut *on_span)
    })
}

/// Reads lines from any buffered source, handing each non-blank one to
/// `on_line`, which counts it as a span (`Ok`) or says why it is not one
/// (`Err`: counted as skipped; the first is kept in the report).
pub fn read_lines<R: BufRead>(
    reader: R,
    origin: &Path,
    report: &mut ReadReport,
    on_line: &mut impl FnMut(&[u8]) -> Result<(), RecordError>,
) -> io::Result<()> {
    read_lines_with(reader, origin, report, on_line, |_| None)
}

/// [`read_lines`] over a source that can end early with a reason
/// (`damage`): the line it cut short, or the missing rest when it cut at a
/// line's end, is one skipped line with that reason.
fn read_lines_with<R: BufRead>(
    mut reader: R,
    origin: &Path,
    report: &mut ReadReport,
    on_line: &mut impl FnMut(&[u8]) -> Result<(), RecordError>,
    damage: impl Fn(&R) -> Option<String>,
) -> io::Result<()> {
    let mut line = Vec::with_capacity(1024);
    let mut number = 0u64;
    loop {
        line.clear();
        let at_end = reader.read_until(b'\n', &mut line)? == 0;
        number += u64::from(!at_end);
        // Only the last line of a source lacks its newline: if the source
        // was cut short, that line is the cut one.
        if at_end || !line.ends_with(b"\n") {
            if let Some(why) = damage(&reader) {
                let number = if at_end { number + 1 } else { number };
                skip(report, origin, number, RecordError::Damaged(why));
                return Ok(());
            }
        }
        if at_end {
            return Ok(());
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match on_line(&line) {
            Ok(()) => {
                report.lines += 1;
                report.spans += 1;
            }
            Err(error) => skip(report, origin, number, error),
        }
    }
}

fn skip(report: &mut ReadReport, origin: &Path, line: u64, error: RecordError) {
    report.lines += 1;
    report.skipped += 1;
    if report.first_skipped.is_none() {
        report.first_skipped = Some(SkippedLine {
            path: origin.to_path_buf(),
            line,
            error,
        });
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
    let mut report = ReadReport::default();
    let mut output = start_file();
    let Some((handle, path)) = open_span_file(file)? else {
        return Ok((output, report));
    };
    report.files = 1;
    let reader = BufReader::with_capacity(
        256 << 10,
        Counted {
            inner: handle,
            progress,
        },
    );
    read_file_lines(reader, &path, &mut report, &mut |line| {
        on_line(&mut output, line)
    })
    .map_err(|e| AnalysisError::io(&path, e))?;
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
        assert!(is_span_file_name("spans-api-4242-3.jsonl.gz"));
        assert!(!is_span_file_name("spans-api-4242-3.jsonl.gz.tmp"));
        assert!(!is_span_file_name("traces-1.jsonl.gz"));
        assert!(!is_span_file_name("myspans.jsonl"));
    }

    fn gzip(content: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(content).unwrap();
        encoder.finish().unwrap()
    }

    fn write_bytes(path: &Path, content: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn spans_text(trace: u128, n: u64) -> String {
        (1..=n)
            .map(|i| span_line(trace, i, (i > 1).then_some(1)))
            .collect()
    }

    /// Every span id read under `path`, sorted, with the report: sequential
    /// and parallel reads must agree.
    fn read_all(path: &Path) -> (Vec<(u128, u64)>, ReadReport) {
        let mut ids = Vec::new();
        let report = read_spans(path, |r| ids.push((r.trace_id.0, r.span_id.0))).unwrap();
        ids.sort();
        let (parts, parallel) = read_span_files_parallel(
            path,
            3,
            &ReadProgress::new(),
            Vec::new,
            |ids: &mut Vec<(u128, u64)>, line| {
                let r = SpanRow::parse_bytes(line)?;
                ids.push((r.trace_id.0, r.span_id.0));
                Ok(())
            },
        )
        .unwrap();
        let mut parallel_ids: Vec<_> = parts.into_iter().flatten().collect();
        parallel_ids.sort();
        assert_eq!(parallel_ids, ids);
        assert_eq!(parallel, report);
        (ids, report)
    }

    #[test]
    fn gzipped_files_read_like_plain_ones() {
        let plain_dir = tempfile::tempdir().unwrap();
        let gz_dir = tempfile::tempdir().unwrap();
        for (n, trace) in [(0u32, 1u128), (1, 2), (2, 3)] {
            let text = spans_text(trace, 40);
            write(
                &plain_dir.path().join(format!("spans-a-1-{n}.jsonl")),
                &text,
            );
            // Mixed, as a directory with compress_rotated is: the open
            // file plain, the rotated ones gzipped.
            let name = format!("spans-a-1-{n}.jsonl");
            if n < 2 {
                write_bytes(&gz_dir.path().join(name + ".gz"), &gzip(text.as_bytes()));
            } else {
                write(&gz_dir.path().join(name), &text);
            }
        }
        let (plain_ids, plain_report) = read_all(plain_dir.path());
        let (gz_ids, gz_report) = read_all(gz_dir.path());
        assert_eq!(plain_ids.len(), 120);
        assert_eq!(gz_ids, plain_ids);
        assert_eq!(gz_report, plain_report);
        assert_eq!(gz_report.files, 3);
        assert_eq!((gz_report.spans, gz_report.skipped), (120, 0));
        // One file given by path is recognised by its content, not its name.
        let odd = gz_dir.path().join("copy.bin");
        fs::copy(gz_dir.path().join("spans-a-1-0.jsonl.gz"), &odd).unwrap();
        assert_eq!(read_all(&odd).0.len(), 40);
    }

    #[test]
    fn a_plain_file_beside_its_gz_is_read_once_and_tmp_files_never() {
        let dir = tempfile::tempdir().unwrap();
        let text = spans_text(1, 10);
        let plain = dir.path().join("spans-a-1-0.jsonl");
        write(&plain, &text);
        write_bytes(&compressed_name(&plain), &gzip(text.as_bytes()));
        // A compression under way: half a stream.
        let half = gzip(spans_text(2, 10).as_bytes());
        write_bytes(
            &dir.path().join("spans-a-1-1.jsonl.gz.tmp"),
            &half[..half.len() / 2],
        );
        assert_eq!(
            span_files(dir.path()).unwrap(),
            vec![compressed_name(&plain)]
        );
        let (ids, report) = read_all(dir.path());
        assert_eq!(ids.len(), 10);
        assert_eq!((report.files, report.skipped), (1, 0));
    }

    #[test]
    fn a_file_compressed_or_deleted_after_listing_is_still_read_right() {
        let dir = tempfile::tempdir().unwrap();
        let text = spans_text(1, 5);
        let compressed_since = dir.path().join("spans-a-1-0.jsonl");
        write_bytes(&compressed_name(&compressed_since), &gzip(text.as_bytes()));
        let deleted_since = dir.path().join("spans-a-1-1.jsonl");
        let mut report = ReadReport::default();
        let mut rows = 0;
        for listed in [&compressed_since, &deleted_since] {
            read_span_file(listed, &mut report, &mut |_| rows += 1).unwrap();
        }
        assert_eq!(rows, 5);
        assert_eq!((report.files, report.spans, report.skipped), (1, 5, 0));
    }

    #[test]
    fn a_truncated_gz_gives_its_readable_lines_and_counts_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let text = spans_text(1, 200);
        let whole = gzip(text.as_bytes());
        let path = dir.path().join("spans-a-1-0.jsonl.gz");
        let mut previous = 0;
        // Every cut, from just after the magic bytes to inside the trailer.
        for cut in (2..whole.len()).step_by(7).chain([whole.len() - 1]) {
            write_bytes(&path, &whole[..cut]);
            let mut spans = Vec::new();
            let mut report = ReadReport::default();
            read_span_file(&path, &mut report, &mut |r| spans.push(r.span_id.0)).unwrap();
            let n = spans.len() as u64;
            // What is read is the file's first n lines, in order.
            assert_eq!(spans, (1..=n).collect::<Vec<_>>(), "cut at {cut}");
            assert!(n >= previous, "a longer prefix never reads fewer lines");
            previous = n;
            assert_eq!(report.skipped, 1, "cut at {cut}");
            assert_eq!(report.lines, n + 1);
            let first = report.first_skipped.unwrap();
            assert!(matches!(first.error, RecordError::Damaged(_)), "{first:?}");
            assert_eq!(first.line, n + 1);
        }
        assert!(previous >= 199, "cut inside the trailer, read {previous}");
        // The parallel reader too: no error, the same counts.
        write_bytes(&path, &whole[..whole.len() / 2]);
        let (ids, report) = read_all(dir.path());
        assert_eq!(report.skipped, 1);
        assert_eq!(ids.len() as u64, report.spans);
    }

    #[test]
    fn garbage_after_the_gzip_magic_is_one_skipped_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spans-a-1-0.jsonl.gz");
        write_bytes(&path, &[0x1f, 0x8b, b'n', b'o', b't', b' ', b'g', b'z']);
        let (ids, report) = read_all(&path);
        assert!(ids.is_empty());
        assert_eq!((report.files, report.skipped), (1, 1));
    }
}
