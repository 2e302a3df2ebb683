//! JSONL files on disk: one file per process and tracer (so pre-fork
//! workers never interleave lines), rotated by size, and written so that a
//! failed write never leaves a torn line behind. What happens to a file once
//! it is rotated out (retention, compression) is `retention.rs` and
//! `compress.rs`; this file hands it over as a [`ClosedFile`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Numbers every file this process opens, across tracers and rotations.
static FILE_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// What a batch write achieved.
#[derive(Debug)]
pub struct WriteOutcome {
    /// Complete lines now in the file.
    pub lines_written: usize,
    pub error: Option<io::Error>,
}

/// A file of the family that will not be written again (rotated out, or
/// closed after a write error), with the complete lines it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedFile {
    pub path: PathBuf,
    pub lines: u64,
}

/// An append-only JSONL file family `{prefix}-{service}-{pid}-{n}.jsonl`.
pub struct RotatingFile {
    dir: PathBuf,
    stem: String,
    max_bytes: u64,
    current: Option<OpenFile>,
    /// Files closed since the owner last asked ([`Self::take_closed`]).
    closed: Vec<ClosedFile>,
}

struct OpenFile {
    file: File,
    path: PathBuf,
    size: u64,
    /// Complete lines in the file.
    lines: u64,
    /// `size` when the page cache was last released.
    released_at: u64,
}

/// Bytes written between two releases of a file's page cache: often enough
/// to keep the cache small, rarely enough that the call (a walk over the
/// file's cached pages, which also starts their writeback) costs little per
/// span.
const RELEASE_CACHE_EVERY: u64 = 4 << 20;

impl RotatingFile {
    /// `prefix` is "spans" or "traces"; `service` is made filename-safe.
    pub fn new(dir: &Path, prefix: &str, service: &str, max_bytes: u64) -> Self {
        RotatingFile {
            dir: dir.to_path_buf(),
            stem: format!("{prefix}-{}-{}", filename_safe(service), std::process::id()),
            max_bytes: max_bytes.max(1),
            current: None,
            closed: Vec::new(),
        }
    }

    /// The files closed since the last call, oldest first.
    pub fn take_closed(&mut self) -> Vec<ClosedFile> {
        std::mem::take(&mut self.closed)
    }

    pub fn current_path(&self) -> Option<&Path> {
        self.current.as_ref().map(|f| f.path.as_path())
    }

    /// Appends `data`, whose lines end at the offsets in `line_ends`
    /// (exclusive, ascending, the last equal to `data.len()`). On an error
    /// the file is cut back to its last complete line and reopened on the
    /// next call.
    pub fn append(&mut self, data: &[u8], line_ends: &[usize]) -> WriteOutcome {
        if data.is_empty() {
            return WriteOutcome {
                lines_written: 0,
                error: None,
            };
        }
        if let Err(error) = self.ensure_open(data.len() as u64) {
            return WriteOutcome {
                lines_written: 0,
                error: Some(error),
            };
        }
        let Some(open) = self.current.as_mut() else {
            return WriteOutcome {
                lines_written: 0,
                error: Some(io::Error::other("file not open")),
            };
        };
        let mut written = 0usize;
        let mut error = None;
        while written < data.len() {
            match open.file.write(&data[written..]) {
                Ok(0) => {
                    error = Some(io::Error::new(io::ErrorKind::WriteZero, "write returned 0"));
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let lines_written = line_ends.partition_point(|&end| end <= written);
        if error.is_some() {
            let complete = if lines_written == 0 {
                0
            } else {
                line_ends[lines_written - 1]
            };
            if complete < written {
                // A torn line: cut it off so readers never see half a record.
                let _ = open.file.set_len(open.size + complete as u64);
            }
            open.lines += lines_written as u64;
            self.close_current();
        } else {
            open.size += written as u64;
            open.lines += lines_written as u64;
            if open.size - open.released_at >= RELEASE_CACHE_EVERY {
                release_page_cache(&open.file);
                open.released_at = open.size;
            }
        }
        WriteOutcome {
            lines_written,
            error,
        }
    }

    fn ensure_open(&mut self, incoming: u64) -> io::Result<()> {
        if let Some(open) = &self.current {
            if open.size == 0 || open.size + incoming <= self.max_bytes {
                return Ok(());
            }
        }
        self.close_current();
        fs::create_dir_all(&self.dir)?;
        let (file, path) = self.create_next()?;
        self.current = Some(OpenFile {
            file,
            path,
            size: 0,
            lines: 0,
            released_at: 0,
        });
        Ok(())
    }

    /// Creates the family's next file under a name no file has, plain or
    /// compressed. Only a dead process whose pid this one reuses can have
    /// left such a name: its file is skipped, never appended to (its lines
    /// would be counted, and deleted, as ours).
    fn create_next(&self) -> io::Result<(File, PathBuf)> {
        let mut last_error = None;
        for _ in 0..NAME_ATTEMPTS {
            let n = FILE_SEQUENCE.fetch_add(1, Ordering::Relaxed);
            let path = self.dir.join(format!("{}-{n}.jsonl", self.stem));
            if crate::compress::compressed_name(&path).exists() {
                continue;
            }
            match OpenOptions::new().create_new(true).append(true).open(&path) {
                Ok(file) => return Ok((file, path)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no free file name")))
    }

    /// Closes the open file for good. A file left without a line (its only
    /// write failed) is removed: it holds nothing, and kept it would count
    /// as a rotated file against `max_files`.
    fn close_current(&mut self) {
        let Some(open) = self.current.take() else {
            return;
        };
        release_page_cache(&open.file);
        drop(open.file);
        if open.lines == 0 {
            let _ = fs::remove_file(&open.path);
        } else {
            self.closed.push(ClosedFile {
                path: open.path,
                lines: open.lines,
            });
        }
    }
}

/// Names tried before giving up when earlier processes left files under the
/// names this one would use.
const NAME_ATTEMPTS: usize = 1000;

/// Starts writeback of what was written and lets the kernel drop the
/// file's clean cached pages. It is asked for the whole file every
/// [`RELEASE_CACHE_EVERY`] bytes and at close: pages still dirty at one call
/// are dropped by a later one, once written. Span files are written once and rarely read
/// back soon, so caching them only costs memory; and on virtual machines
/// that hand freed memory back to the host, appending into ever-new page
/// cache pages was measured 3-5x slower than recycling them this way.
#[cfg(target_os = "linux")]
fn release_page_cache(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; the call only advises the kernel.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

/// Elsewhere the page cache is left to the kernel.
#[cfg(not(target_os = "linux"))]
fn release_page_cache(_: &File) {}

/// Keeps letters, digits, `.`, `_` and `-`; anything else becomes `_`.
pub fn filename_safe(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        "service".to_string()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize, width: usize) -> (Vec<u8>, Vec<usize>) {
        let mut data = Vec::new();
        let mut ends = Vec::new();
        for i in 0..n {
            let line = format!("{{\"i\":{i:0width$}}}\n", width = width);
            data.extend_from_slice(line.as_bytes());
            ends.push(data.len());
        }
        (data, ends)
    }

    #[test]
    fn appends_and_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = RotatingFile::new(dir.path(), "spans", "api/v1", 100);
        let (data, ends) = lines(3, 20); // 3 lines of 28 bytes
        for _ in 0..4 {
            let out = file.append(&data, &ends);
            assert!(out.error.is_none());
            assert_eq!(out.lines_written, 3);
        }
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("spans-api_v1-")));
        let total: usize = names
            .iter()
            .map(|n| {
                fs::read_to_string(dir.path().join(n))
                    .unwrap()
                    .lines()
                    .count()
            })
            .sum();
        assert_eq!(total, 12);
    }

    #[test]
    fn unwritable_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let mut file = RotatingFile::new(&blocker.join("sub"), "spans", "svc", 1 << 20);
        let (data, ends) = lines(2, 1);
        let out = file.append(&data, &ends);
        assert_eq!(out.lines_written, 0);
        assert!(out.error.is_some());
    }

    #[test]
    fn full_disk_counts_no_lines() {
        // /dev/full accepts opens and fails every write with ENOSPC.
        if !Path::new("/dev/full").exists() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut file = RotatingFile::new(dir.path(), "spans", "svc", 1 << 20);
        // The open file is /dev/full under a name in `dir`: closing it
        // after the failed write must touch `dir` only.
        let named = dir.path().join("spans-svc-full.jsonl");
        file.current = Some(OpenFile {
            file: OpenOptions::new().write(true).open("/dev/full").unwrap(),
            path: named.clone(),
            size: 0,
            lines: 0,
            released_at: 0,
        });
        let (data, ends) = lines(2, 1);
        let out = file.append(&data, &ends);
        assert_eq!(out.lines_written, 0);
        assert_eq!(out.error.unwrap().raw_os_error(), Some(libc::ENOSPC));
        assert!(file.current.is_none());
        assert!(
            file.take_closed().is_empty(),
            "a file without a line is not kept"
        );
        assert!(Path::new("/dev/full").exists());
    }

    #[test]
    fn rotated_files_are_handed_over_with_their_line_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = RotatingFile::new(dir.path(), "spans", "svc", 100);
        let (data, ends) = lines(3, 20); // 84 bytes: one append per file
        for _ in 0..3 {
            assert_eq!(file.append(&data, &ends).lines_written, 3);
        }
        let closed = file.take_closed();
        assert_eq!(closed.len(), 2, "the third file is still open");
        assert!(closed.iter().all(|c| c.lines == 3 && c.path.exists()));
        assert_ne!(closed[0].path, closed[1].path);
        assert!(file.take_closed().is_empty());
        assert!(!closed
            .iter()
            .any(|c| Some(c.path.as_path()) == file.current_path()));
    }

    #[test]
    fn names_left_by_an_earlier_process_are_skipped_not_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = RotatingFile::new(dir.path(), "spans", "svc", 1 << 20);
        // The next sequence numbers, taken by "an earlier process with our
        // pid": one plain file and one compressed one.
        let next = FILE_SEQUENCE.load(Ordering::Relaxed);
        let stem = format!("spans-svc-{}", std::process::id());
        let mut taken = Vec::new();
        for n in next..next + 50 {
            let plain = dir.path().join(format!("{stem}-{n}.jsonl"));
            let path = if n % 2 == 0 {
                crate::compress::compressed_name(&plain)
            } else {
                plain
            };
            fs::write(&path, b"old\n").unwrap();
            taken.push(path);
        }
        let (data, ends) = lines(1, 1);
        assert_eq!(file.append(&data, &ends).lines_written, 1);
        let current = file.current_path().unwrap().to_path_buf();
        assert!(!taken.contains(&current));
        for path in &taken {
            assert_eq!(fs::read(path).unwrap(), b"old\n");
        }
        assert_eq!(fs::read(&current).unwrap(), data);
    }

    #[test]
    fn filenames_are_sanitised() {
        assert_eq!(filename_safe("api gateway/ü"), "api_gateway__");
        assert_eq!(filename_safe(""), "service");
        assert_eq!(filename_safe(".."), "service");
    }
}
