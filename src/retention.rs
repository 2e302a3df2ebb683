//! Keeping a file family bounded: the files a tracer rotated out, oldest
//! first, of which at most `max_files` are kept (see README.md, "Files").
//!
//! The list is the tracer's memory of what it wrote, never a directory
//! listing: a process deletes only files it created itself, so two
//! processes (or two tracers) sharing a directory never touch each other's
//! files. Every deletion is counted with the lines the file held, which the
//! writer counted as it wrote them.
//!
//! The list is shared (behind a mutex) by the file sink's thread, which adds
//! and deletes files, and the compressor's thread, which swaps a plain file
//! for its `.gz`; holding the lock across the swap is what makes "deleted
//! while being compressed" safe (see `compress.rs`).

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::sync::Mutex;

use crate::writer::ClosedFile;

/// One file rotated out, as it is on disk now.
#[derive(Debug)]
struct Rotated {
    /// The name it was written under.
    plain: PathBuf,
    /// Its name once compressed (the plain file is then gone).
    compressed: Option<PathBuf>,
    lines: u64,
}

impl Rotated {
    fn on_disk(&self) -> &Path {
        self.compressed.as_deref().unwrap_or(&self.plain)
    }
}

/// What retention deleted so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    pub files: u64,
    /// Lines the deleted files held (spans, for a span family).
    pub lines: u64,
}

/// A deletion that failed: the file is forgotten (never retried, never
/// counted as deleted) and the caller warns once.
#[derive(Debug)]
pub struct DeleteError {
    pub path: PathBuf,
    pub error: io::Error,
}

/// The rotated files of one family, oldest first.
pub struct RotatedFiles {
    /// 0 keeps every file.
    max_files: usize,
    files: VecDeque<Rotated>,
    /// The tracer's list of its files (`tracer.files()`), kept true as
    /// files are compressed and deleted.
    listed: Arc<Mutex<Vec<PathBuf>>>,
    deleted: Deleted,
}

impl RotatedFiles {
    pub fn new(max_files: usize, listed: Arc<Mutex<Vec<PathBuf>>>) -> Self {
        RotatedFiles {
            max_files,
            files: VecDeque::new(),
            listed,
            deleted: Deleted::default(),
        }
    }

    /// Takes a file just rotated out, then deletes the oldest files beyond
    /// `max_files`. A file being compressed can be deleted too: its
    /// compressor sees it gone ([`Self::contains`]) and discards its work.
    pub fn add(&mut self, file: ClosedFile) -> Vec<DeleteError> {
        self.files.push_back(Rotated {
            plain: file.path,
            compressed: None,
            lines: file.lines,
        });
        let mut errors = Vec::new();
        while self.max_files > 0 && self.files.len() > self.max_files {
            let Some(oldest) = self.files.pop_front() else {
                break;
            };
            let path = oldest.on_disk().to_path_buf();
            self.listed.lock().retain(|p| *p != path);
            match fs::remove_file(&path) {
                Ok(()) => {
                    self.deleted.files += 1;
                    self.deleted.lines += oldest.lines;
                }
                // Someone else removed it: nothing of ours was deleted.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(error) => errors.push(DeleteError { path, error }),
            }
        }
        errors
    }

    /// Whether `plain` is still a kept file, not yet compressed.
    pub fn contains(&self, plain: &Path) -> bool {
        self.files
            .iter()
            .any(|f| f.plain == plain && f.compressed.is_none())
    }

    /// Records that `plain` now lives as `compressed` (the caller renamed
    /// it into place while holding this list's lock).
    pub fn compressed(&mut self, plain: &Path, compressed: PathBuf) {
        if let Some(file) = self.files.iter_mut().find(|f| f.plain == plain) {
            for listed in self.listed.lock().iter_mut().filter(|p| *p == plain) {
                listed.clone_from(&compressed);
            }
            file.compressed = Some(compressed);
        }
    }

    pub fn deleted(&self) -> Deleted {
        self.deleted
    }

    /// The files kept, oldest first, as named on disk now.
    #[cfg(test)]
    pub fn kept(&self) -> Vec<PathBuf> {
        self.files
            .iter()
            .map(|f| f.on_disk().to_path_buf())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotate(dir: &Path, files: &mut RotatedFiles, n: usize, lines: u64) -> Vec<DeleteError> {
        let path = dir.join(format!("spans-svc-1-{n}.jsonl"));
        fs::write(&path, "x\n".repeat(lines as usize)).unwrap();
        files.listed.lock().push(path.clone());
        files.add(ClosedFile { path, lines })
    }

    #[test]
    fn keeps_the_newest_max_files_and_counts_what_it_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let listed = Arc::new(Mutex::new(Vec::new()));
        let mut files = RotatedFiles::new(3, Arc::clone(&listed));
        for n in 0..10 {
            assert!(rotate(dir.path(), &mut files, n, n as u64 + 1).is_empty());
        }
        let kept: Vec<PathBuf> = (7..10)
            .map(|n| dir.path().join(format!("spans-svc-1-{n}.jsonl")))
            .collect();
        assert_eq!(files.kept(), kept);
        assert_eq!(*listed.lock(), kept);
        let mut on_disk: Vec<PathBuf> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        on_disk.sort();
        assert_eq!(on_disk, kept);
        // Files 0..=6 held 1+2+...+7 lines.
        assert_eq!(
            files.deleted(),
            Deleted {
                files: 7,
                lines: 28
            }
        );
    }

    #[test]
    fn zero_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = RotatedFiles::new(0, Arc::default());
        for n in 0..50 {
            rotate(dir.path(), &mut files, n, 1);
        }
        assert_eq!(files.kept().len(), 50);
        assert_eq!(files.deleted(), Deleted::default());
    }

    #[test]
    fn a_compressed_file_is_deleted_under_its_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let listed = Arc::new(Mutex::new(Vec::new()));
        let mut files = RotatedFiles::new(1, Arc::clone(&listed));
        rotate(dir.path(), &mut files, 0, 4);
        let plain = dir.path().join("spans-svc-1-0.jsonl");
        let gz = dir.path().join("spans-svc-1-0.jsonl.gz");
        assert!(files.contains(&plain));
        fs::rename(&plain, &gz).unwrap();
        files.compressed(&plain, gz.clone());
        assert!(
            !files.contains(&plain),
            "compressed: nothing left to compress"
        );
        assert_eq!(*listed.lock(), vec![gz.clone()]);
        rotate(dir.path(), &mut files, 1, 2);
        assert!(!gz.exists());
        assert_eq!(files.deleted(), Deleted { files: 1, lines: 4 });
    }

    #[test]
    fn a_file_removed_by_someone_else_is_not_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = RotatedFiles::new(1, Arc::default());
        rotate(dir.path(), &mut files, 0, 4);
        fs::remove_file(dir.path().join("spans-svc-1-0.jsonl")).unwrap();
        assert!(rotate(dir.path(), &mut files, 1, 2).is_empty());
        assert_eq!(files.deleted(), Deleted::default());
        assert_eq!(files.kept().len(), 1);
    }

    #[test]
    fn a_failed_deletion_is_reported_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = RotatedFiles::new(1, Arc::default());
        // A directory where the file should be: remove_file fails (EISDIR),
        // as it would on a read-only mount.
        let path = dir.path().join("spans-svc-1-0.jsonl");
        fs::create_dir(&path).unwrap();
        files.add(ClosedFile {
            path: path.clone(),
            lines: 3,
        });
        let errors = rotate(dir.path(), &mut files, 1, 2);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, path);
        assert_eq!(files.deleted(), Deleted::default());
        assert_eq!(files.kept().len(), 1);
    }
}
