//! Warnings raised on background threads, waiting for the binding layer to
//! log them on a Python thread (background threads never touch Python).
//! Each kind of problem is reported once per pipeline: a dead endpoint or a
//! full disk must not flood the host application's logs.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sync::Mutex;

#[derive(Default)]
pub struct Warnings {
    /// Lets the hot path check for pending warnings without a lock.
    pending: AtomicBool,
    messages: Mutex<Vec<String>>,
    seen: Mutex<HashSet<String>>,
}

impl Warnings {
    /// Queues `message` unless a warning of the same `kind` was queued before.
    pub fn warn_once(&self, kind: impl Into<String>, message: String) {
        if self.seen.lock().insert(kind.into()) {
            self.warn(message);
        }
    }

    pub fn warn(&self, message: String) {
        self.messages.lock().push(message);
        self.pending.store(true, Ordering::Release);
    }

    #[inline]
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    pub fn take(&self) -> Vec<String> {
        if !self.pending.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        std::mem::take(&mut *self.messages.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_once() {
        let w = Warnings::default();
        w.warn_once("disk", "full".into());
        w.warn_once("disk", "still full".into());
        w.warn_once("net", "down".into());
        assert!(w.pending());
        assert_eq!(w.take(), vec!["full".to_string(), "down".to_string()]);
        assert!(!w.pending());
        assert!(w.take().is_empty());
    }
}
