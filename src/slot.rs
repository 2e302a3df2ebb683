//! The collector's current pipeline: read on every span without touching a
//! reference count, replaced (never freed) in a forked child. See
//! ARCHITECTURE.md, "Fork". Model-checked with loom (`make check-deep`).

use std::marker::PhantomData;
use std::sync::Arc;

use crate::sync::atomic::{AtomicPtr, Ordering};

/// Holds one `Arc<T>` behind an atomic pointer. `get` is a single load;
/// `replace_leaking` installs a new value and deliberately leaks the old one,
/// so a reference handed out by `get` stays valid as long as the slot.
pub(crate) struct LeakySlot<T> {
    /// Always from `Arc::into_raw`; the slot owns one strong count of it.
    ptr: AtomicPtr<T>,
    /// Send and Sync exactly when `Arc<T>` is (an `AtomicPtr` alone would
    /// be both for any `T`).
    owns: PhantomData<Arc<T>>,
}

impl<T> LeakySlot<T> {
    pub fn new(value: Arc<T>) -> Self {
        LeakySlot {
            ptr: AtomicPtr::new(Arc::into_raw(value).cast_mut()),
            owns: PhantomData,
        }
    }

    #[inline]
    pub fn get(&self) -> &T {
        // Acquire pairs with the Release in `replace_leaking`: the new
        // value's contents, written before it was installed, are visible.
        let ptr = self.ptr.load(Ordering::Acquire);
        // SAFETY: `ptr` came from `Arc::into_raw` (in `new` or
        // `replace_leaking`) and that Arc's strong count is never given
        // back while `self` lives: the current value's only in `Drop`
        // (which needs `&mut self`, so no `&T` from `get` is alive), a
        // replaced value's never. So the pointee outlives the borrow of
        // `self` that this reference is tied to.
        unsafe { &*ptr }
    }

    /// Installs `value`; the previous value is leaked on purpose (in a
    /// forked child its locks may be held forever and its queues be
    /// mid-operation, so nothing may touch or free it).
    pub fn replace_leaking(&self, value: Arc<T>) {
        let fresh = Arc::into_raw(value).cast_mut();
        self.ptr.store(fresh, Ordering::Release);
    }
}

impl<T> Drop for LeakySlot<T> {
    fn drop(&mut self) {
        let ptr = self.ptr.load(Ordering::Acquire);
        // SAFETY: `ptr` came from `Arc::into_raw` and the slot still owns
        // that strong count (only the current value's is released, once,
        // here); `&mut self` means no reference from `get` is alive.
        drop(unsafe { Arc::from_raw(ptr) });
    }
}

#[cfg(all(test, not(ferrotrace_loom)))]
mod tests {
    use super::*;

    #[test]
    fn drop_releases_the_current_value_only() {
        let first = Arc::new(1);
        let second = Arc::new(2);
        let slot = LeakySlot::new(Arc::clone(&first));
        assert_eq!(*slot.get(), 1);
        slot.replace_leaking(Arc::clone(&second));
        assert_eq!(*slot.get(), 2);
        assert_eq!(Arc::strong_count(&second), 2);
        drop(slot);
        assert_eq!(Arc::strong_count(&second), 1);
        // The replaced value was leaked, never released.
        assert_eq!(Arc::strong_count(&first), 2);
        // SAFETY: gives back the count the slot leaked (so that valgrind's
        // leak check stays clean); `first` still holds one of its own.
        unsafe { Arc::decrement_strong_count(Arc::as_ptr(&first)) };
        assert_eq!(Arc::strong_count(&first), 1);
    }
}

/// Model check (`make check-deep`): a reader racing a replacement sees the
/// old value or the new one, fully built, never anything else.
#[cfg(all(test, ferrotrace_loom))]
mod loom_model {
    use super::*;
    use crate::sync::atomic::AtomicUsize;
    use loom::thread;

    struct Pipeline {
        generation: AtomicUsize,
    }

    fn pipeline(generation: usize) -> Arc<Pipeline> {
        let p = Pipeline {
            generation: AtomicUsize::new(0),
        };
        // Written after construction and before publication, with no
        // ordering of its own: only the slot's Release/Acquire makes it
        // visible to a reader of the new pointer.
        p.generation.store(generation, Ordering::Relaxed);
        Arc::new(p)
    }

    #[test]
    fn loom_a_reader_racing_a_replacement_sees_a_whole_pipeline() {
        loom::model(|| {
            let slot = Arc::new(LeakySlot::new(pipeline(1)));
            let replacer = {
                let slot = Arc::clone(&slot);
                thread::spawn(move || slot.replace_leaking(pipeline(2)))
            };
            let first = slot.get().generation.load(Ordering::Relaxed);
            let second = slot.get().generation.load(Ordering::Relaxed);
            assert!(first == 1 || first == 2, "saw generation {first}");
            assert!(second >= first, "went back from {first} to {second}");
            replacer.join().unwrap();
            assert_eq!(slot.get().generation.load(Ordering::Relaxed), 2);
        });
    }
}
