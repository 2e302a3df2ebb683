//! Reading span files: a directory of `spans*.jsonl` files (at any depth) or
//! one file, streamed line by line. Memory is one line buffer plus whatever
//! the caller keeps of each [`SpanRow`]; malformed lines are counted and
//! skipped, never fatal, so a torn last line from a live writer is harmless.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::record::{RecordError, SpanRow};

/// Why a path could not be read at all.
#[derive(Debug)]
pub enum AnalysisError {
    /// The path does not exist.
    NotFound(PathBuf),
    /// The path exists but reading it (or listing it) failed.
    Io { path: PathBuf, source: io::Error },
}

impl AnalysisError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            AnalysisError::NotFound(path) | AnalysisError::Io { path, .. } => path,
        }
    }

    fn io(path: &Path, source: io::Error) -> Self {
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
        }
    }
}

impl std::error::Error for AnalysisError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AnalysisError::NotFound(_) => None,
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
    mut reader: R,
    origin: &Path,
    report: &mut ReadReport,
    on_span: &mut impl FnMut(SpanRow),
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
        match SpanRow::parse_bytes(&line) {
            Ok(row) => {
                report.spans += 1;
                on_span(row);
            }
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
