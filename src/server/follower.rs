//! Every span file in the directory, read at start-up (in parallel) and
//! then followed: each round, every file's new complete lines go to the
//! index. A line still being written (no newline yet) waits for the next
//! round, so a record is never read half. Files are found anew each round:
//! the server's own, other processes' tracers', rotations.
//!
//! Compressed rotated files (`.gz`) do not grow: each is read once. This
//! process's own files are skipped: the receivers index what they write.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::analysis::{read_threads, span_files, SpanRow};

use super::index::Index;
use super::span_log::is_own_file;

/// The span files to follow: all but this process's own.
fn followed_files(dir: &Path) -> Option<Vec<PathBuf>> {
    let mut files = span_files(dir).ok()?;
    files.retain(|p| {
        !p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(is_own_file)
    });
    Some(files)
}

/// How far each file has been read: bytes of complete lines.
type Offsets = HashMap<PathBuf, u64>;

pub struct Follower {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Follower {
    /// Loads every span file into `index`, then follows the directory on a
    /// thread of its own until dropped.
    pub fn start(dir: PathBuf, index: Arc<Index>, interval: Duration) -> io::Result<Follower> {
        let mut offsets = Offsets::new();
        initial_load(&dir, &index, &mut offsets);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("ferrotrace-follow".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(interval);
                        follow_round(&dir, &index, &mut offsets);
                    }
                })?
        };
        Ok(Follower {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn is_compressed(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// What reading one file from an offset gave.
struct Chunk {
    rows: Vec<SpanRow>,
    skipped: u64,
    /// The new offset: the end of the last complete line read.
    offset: u64,
}

/// Reads `path`'s complete lines after `offset`.
fn read_from(path: &Path, offset: u64) -> io::Result<Chunk> {
    let mut file = File::open(path)?;
    let mut chunk = Chunk {
        rows: Vec::new(),
        skipped: 0,
        offset,
    };
    if is_compressed(path) {
        let reader = BufReader::new(flate2::read::MultiGzDecoder::new(file));
        read_lines(reader, &mut chunk, true)?;
        return Ok(chunk);
    }
    file.seek(SeekFrom::Start(offset))?;
    read_lines(BufReader::with_capacity(1 << 20, file), &mut chunk, false)?;
    Ok(chunk)
}

fn read_lines(mut reader: impl BufRead, chunk: &mut Chunk, whole: bool) -> io::Result<()> {
    let mut line = Vec::with_capacity(1024);
    let mut last_resource = None;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') && !whole {
            // Still being written: next round.
            return Ok(());
        }
        chunk.offset += n as u64;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match SpanRow::parse_bytes(text) {
            Ok(mut row) => {
                share_resource(&mut row, &mut last_resource);
                chunk.rows.push(row);
            }
            Err(_) => chunk.skipped += 1,
        }
    }
}

/// A file's received spans mostly repeat one process's resource: equal
/// resources share one allocation, as they did when received.
fn share_resource(
    row: &mut SpanRow,
    last: &mut Option<Arc<serde_json::Map<String, serde_json::Value>>>,
) {
    let Some(resource) = &row.resource else {
        return;
    };
    match last {
        Some(previous) if previous == resource => row.resource = Some(previous.clone()),
        _ => *last = Some(resource.clone()),
    }
}

fn initial_load(dir: &Path, index: &Index, offsets: &mut Offsets) {
    let files = followed_files(dir).unwrap_or_default();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = read_threads().min(files.len()).max(1);
    let results: Vec<Vec<(usize, io::Result<Chunk>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else { break };
                        done.push((i, read_from(path, 0)));
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut by_file: Vec<(usize, io::Result<Chunk>)> = results.into_iter().flatten().collect();
    by_file.sort_by_key(|(i, _)| *i);
    let mut parts = Vec::with_capacity(by_file.len());
    for (i, result) in by_file {
        match result {
            Ok(chunk) => {
                index.count_skipped(chunk.skipped);
                offsets.insert(files[i].clone(), chunk.offset);
                parts.push(chunk.rows);
            }
            Err(_) => index.count_read_error(),
        }
    }
    index.set_files_followed(offsets.len());
    index.load(parts);
}

fn follow_round(dir: &Path, index: &Index, offsets: &mut Offsets) {
    let Some(files) = followed_files(dir) else {
        return;
    };
    let mut rows = Vec::new();
    for path in files {
        let Ok(len) = std::fs::metadata(&path).map(|m| m.len()) else {
            continue;
        };
        let known = offsets.get(&path).copied();
        let from = match known {
            Some(_) if is_compressed(&path) => continue,
            // Cut shorter than what was read: rewritten from the start.
            Some(offset) if len < offset => 0,
            Some(offset) if len == offset => continue,
            Some(offset) => offset,
            None => 0,
        };
        match read_from(&path, from) {
            Ok(chunk) => {
                index.count_skipped(chunk.skipped);
                offsets.insert(path, chunk.offset);
                rows.extend(chunk.rows);
            }
            Err(_) => index.count_read_error(),
        }
    }
    // Files deleted (rotation retention) are forgotten.
    offsets.retain(|p, _| p.exists());
    index.set_files_followed(offsets.len());
    index.add(rows);
}
