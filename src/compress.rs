//! Gzip of rotated files (`compress_rotated`), on a thread of its own.
//!
//! The file sink's thread only queues a rotated file here: compressing a
//! 100 MB file takes seconds of CPU, and the sink must keep writing
//! meanwhile. The compressor thread runs at a lower scheduling priority, so
//! when CPU is short the traced application wins and compression waits.
//!
//! Crash safety: the compressed data goes to `name.jsonl.gz.tmp`, which is
//! fsynced, renamed to `name.jsonl.gz` (and the directory fsynced), and only
//! then is the plain file removed. A crash at any point leaves the plain
//! file, or a complete `.gz` (readers ignore `.tmp`, and read a `.gz` in
//! place of a plain twin). A failure (a full disk) removes the `.tmp` and
//! keeps the plain file: nothing written is lost.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex};
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::retention::RotatedFiles;
use crate::warnings::Warnings;

/// gzip's own default level (what `gzip` and `zlib` use): on span JSONL it
/// compresses within a few percent of level 9 at a fraction of the cost,
/// and about a third smaller than level 1 (see benches/bench_compress.py).
pub const LEVEL: u32 = 6;

/// Input read (and compressed) between two looks at whether to stop.
const CHUNK: usize = 1 << 20;

/// How long a stopping sink waits for the compressor to discard its
/// unfinished file: one chunk's work, with room to spare.
const STOP_WAIT: Duration = Duration::from_millis(500);

/// `x.jsonl` → `x.jsonl.gz`.
pub fn compressed_name(plain: &Path) -> PathBuf {
    let mut name = plain.as_os_str().to_owned();
    name.push(".gz");
    PathBuf::from(name)
}

/// `x.jsonl` → `x.jsonl.gz.tmp`: the compressed data until it is complete.
pub fn temporary_name(plain: &Path) -> PathBuf {
    let mut name = plain.as_os_str().to_owned();
    name.push(".gz.tmp");
    PathBuf::from(name)
}

/// What became of one file handed to [`compress_rotated`].
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It now lives as this `.gz`; the plain file is gone.
    Compressed(PathBuf),
    /// Retention deleted it meanwhile, or the compressor is stopping: the
    /// `.tmp` was removed and the plain file (if still kept) left as is.
    Abandoned,
}

/// Compresses the rotated file `plain` of `family` (see the module docs
/// for the steps). An error leaves the plain file and no `.tmp`.
pub fn compress_rotated(
    family: &Mutex<RotatedFiles>,
    plain: &Path,
    stop: &AtomicBool,
) -> io::Result<Outcome> {
    if !family.lock().contains(plain) {
        return Ok(Outcome::Abandoned);
    }
    let tmp = temporary_name(plain);
    let keep_going = || !stop.load(Ordering::Relaxed) && family.lock().contains(plain);
    let finished = match write_compressed(plain, &tmp, keep_going) {
        Ok(finished) => finished,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let gz = compressed_name(plain);
    {
        // The rename happens under the family's lock, so retention cannot
        // delete the plain file between the check and the rename and leave
        // a `.gz` no list knows about. Once the list knows the `.gz`,
        // retention deletes that, and the plain twin is ours to remove.
        let mut files = family.lock();
        if !finished || !files.contains(plain) {
            let _ = fs::remove_file(&tmp);
            return Ok(Outcome::Abandoned);
        }
        if let Err(e) = fs::rename(&tmp, &gz) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        files.compressed(plain, gz.clone());
    }
    if let Some(dir) = plain.parent() {
        // Makes the rename durable before the plain file goes. Some file
        // systems refuse to fsync a directory; the rename stands anyway.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    // Should this fail, the plain twin stays beside its `.gz`; readers
    // read the `.gz` only, so nothing is counted twice.
    let _ = fs::remove_file(plain);
    Ok(Outcome::Compressed(gz))
}

/// Writes `plain` gzipped to `tmp` and fsyncs it. Returns false (leaving
/// `tmp` for the caller to remove) once `keep_going` says to stop.
fn write_compressed(plain: &Path, tmp: &Path, keep_going: impl Fn() -> bool) -> io::Result<bool> {
    let mut input = File::open(plain)?;
    let output = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)?;
    let mut encoder = GzEncoder::new(
        BufWriter::with_capacity(256 << 10, output),
        Compression::new(LEVEL),
    );
    let mut chunk = vec![0u8; CHUNK];
    loop {
        if !keep_going() {
            return Ok(false);
        }
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        encoder.write_all(&chunk[..n])?;
    }
    let output = encoder
        .finish()?
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?;
    output.sync_all()?;
    Ok(true)
}

/// One rotated file to compress, with the family that keeps it.
pub struct Job {
    pub family: Arc<Mutex<RotatedFiles>>,
    pub plain: PathBuf,
}

struct Shared {
    stop: AtomicBool,
    finished: Mutex<bool>,
    finished_cond: Condvar,
}

/// The compressor thread ("ferrotrace-gzip") of one file sink: files are
/// compressed one at a time, in the order they were rotated out.
pub struct Compressor {
    jobs: Option<Sender<Job>>,
    shared: Arc<Shared>,
}

impl Compressor {
    /// Starts the thread; its failures are reported through `warnings`.
    pub fn start(warnings: Arc<Warnings>) -> io::Result<Compressor> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            finished: Mutex::new(false),
            finished_cond: Condvar::new(),
        });
        let thread_shared = Arc::clone(&shared);
        thread::Builder::new()
            .name("ferrotrace-gzip".into())
            .spawn(move || {
                crate::priority::yield_to_application();
                for job in queue {
                    if thread_shared.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Err(e) = compress_rotated(&job.family, &job.plain, &thread_shared.stop) {
                        warnings.warn_once(
                            "jsonl-compress",
                            format!(
                                "ferrotrace jsonl: cannot compress {}: {e}; rotated files stay \
                                 uncompressed, nothing is lost (this warning is shown once)",
                                job.plain.display()
                            ),
                        );
                    }
                }
                *thread_shared.finished.lock() = true;
                thread_shared.finished_cond.notify_all();
            })?;
        Ok(Compressor {
            jobs: Some(jobs),
            shared,
        })
    }

    /// Queues a rotated file (never waits).
    pub fn compress(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            // A send fails only if the thread is gone; the file then stays
            // plain, which readers read as well.
            let _ = jobs.send(job);
        }
    }
}

impl Drop for Compressor {
    /// Stops the thread without waiting for the queue: files not yet
    /// compressed stay plain, and an unfinished `.tmp` is removed. The wait
    /// is bounded, so stopping never holds up shutdown or exit.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.jobs = None;
        let deadline = Instant::now() + STOP_WAIT;
        self.shared
            .finished_cond
            .wait_for(&self.shared.finished, deadline, |finished| *finished);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::ClosedFile;
    use flate2::read::MultiGzDecoder;

    fn rotated(
        dir: &Path,
        content: &[u8],
        max_files: usize,
    ) -> (Arc<Mutex<RotatedFiles>>, PathBuf) {
        let plain = dir.join("spans-svc-1-0.jsonl");
        fs::write(&plain, content).unwrap();
        let listed = Arc::new(Mutex::new(vec![plain.clone()]));
        let family = Arc::new(Mutex::new(RotatedFiles::new(max_files, listed)));
        family.lock().add(ClosedFile {
            path: plain.clone(),
            lines: 1,
        });
        (family, plain)
    }

    fn gunzip(path: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        MultiGzDecoder::new(File::open(path).unwrap())
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn lines(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "ab".repeat(i % 50)))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn replaces_the_plain_file_with_a_complete_gz() {
        let dir = tempfile::tempdir().unwrap();
        let content = lines(50_000);
        let (family, plain) = rotated(dir.path(), &content, 10);
        let outcome = compress_rotated(&family, &plain, &AtomicBool::new(false)).unwrap();
        let gz = compressed_name(&plain);
        assert_eq!(outcome, Outcome::Compressed(gz.clone()));
        assert_eq!(names(dir.path()), vec!["spans-svc-1-0.jsonl.gz"]);
        assert_eq!(gunzip(&gz), content);
        assert!(fs::metadata(&gz).unwrap().len() * 5 < content.len() as u64);
        assert_eq!(family.lock().kept(), vec![gz]);
    }

    #[test]
    fn a_file_deleted_by_retention_meanwhile_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (family, plain) = rotated(dir.path(), &lines(10), 1);
        // Retention deletes it (a newer file arrives) before compression.
        let newer = dir.path().join("spans-svc-1-1.jsonl");
        fs::write(&newer, b"{}\n").unwrap();
        family.lock().add(ClosedFile {
            path: newer,
            lines: 1,
        });
        let outcome = compress_rotated(&family, &plain, &AtomicBool::new(false)).unwrap();
        assert_eq!(outcome, Outcome::Abandoned);
        assert_eq!(names(dir.path()), vec!["spans-svc-1-1.jsonl"]);
    }

    #[test]
    fn stopping_discards_the_unfinished_tmp_and_keeps_the_plain_file() {
        let dir = tempfile::tempdir().unwrap();
        let content = lines(10);
        let (family, plain) = rotated(dir.path(), &content, 10);
        let outcome = compress_rotated(&family, &plain, &AtomicBool::new(true)).unwrap();
        assert_eq!(outcome, Outcome::Abandoned);
        assert_eq!(names(dir.path()), vec!["spans-svc-1-0.jsonl"]);
        assert_eq!(fs::read(&plain).unwrap(), content);
    }

    #[test]
    fn a_full_disk_keeps_the_plain_file_and_leaves_no_tmp() {
        if !Path::new("/dev/full").exists() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let content = lines(50_000);
        let (family, plain) = rotated(dir.path(), &content, 10);
        // The temporary file's name leads to /dev/full: every write fails
        // with ENOSPC, as on a full disk.
        std::os::unix::fs::symlink("/dev/full", temporary_name(&plain)).unwrap();
        let error = compress_rotated(&family, &plain, &AtomicBool::new(false)).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(names(dir.path()), vec!["spans-svc-1-0.jsonl"]);
        assert_eq!(fs::read(&plain).unwrap(), content);
        assert!(family.lock().contains(&plain));
        assert!(Path::new("/dev/full").exists());
    }

    #[test]
    fn the_thread_compresses_queued_files_and_stops_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let content = lines(1000);
        let (family, plain) = rotated(dir.path(), &content, 10);
        let compressor = Compressor::start(Arc::new(Warnings::default())).unwrap();
        compressor.compress(Job {
            family: Arc::clone(&family),
            plain: plain.clone(),
        });
        let gz = compressed_name(&plain);
        let deadline = Instant::now() + Duration::from_secs(30);
        while family.lock().contains(&plain) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        drop(compressor);
        assert_eq!(names(dir.path()), vec!["spans-svc-1-0.jsonl.gz"]);
        assert_eq!(gunzip(&gz), content);
    }
}
