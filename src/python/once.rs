//! Values made once per process with the GIL held, safe across `fork()`.
//!
//! PyO3's `GilOnceCell` (and `intern!`, built on it) is not fork-safe: a
//! thread that initialises one marks it "running", then lets go of the GIL
//! while it waits to take it back for the initialiser. A thread that forks
//! in that window (it holds the GIL) gives the child a cell marked running by
//! a thread that does not exist there, and the child's first use of it waits
//! forever. `GilOnceCell` never holds a cell's state across a GIL release:
//! the value is computed with the GIL held and stored in one step that does
//! not let go of it, so no fork can fall inside. Two threads may both compute
//! it (the initialiser can run Python code that releases the GIL); the first
//! stored is kept and the other dropped, before anyone sees it. See
//! ARCHITECTURE.md, "Fork". `clippy.toml` keeps PyO3's versions out.

use std::sync::OnceLock;

use pyo3::Python;

pub struct GilOnceCell<T>(OnceLock<T>);

impl<T> GilOnceCell<T> {
    pub const fn new() -> Self {
        Self(OnceLock::new())
    }

    #[inline]
    pub fn get(&self, _py: Python<'_>) -> Option<&T> {
        self.0.get()
    }

    #[inline]
    pub fn get_or_init(&self, py: Python<'_>, init: impl FnOnce() -> T) -> &T {
        match self.0.get() {
            Some(value) => value,
            None => self.store(py, init()),
        }
    }

    #[inline]
    pub fn get_or_try_init<E>(
        &self,
        py: Python<'_>,
        init: impl FnOnce() -> Result<T, E>,
    ) -> Result<&T, E> {
        match self.0.get() {
            Some(value) => Ok(value),
            None => Ok(self.store(py, init()?)),
        }
    }

    /// Keeps the first value stored. `OnceLock` only blocks while another
    /// thread is inside this call, which holds the GIL throughout (as does a
    /// forking thread), so it never blocks here, nor in a child.
    #[cold]
    fn store(&self, _py: Python<'_>, value: T) -> &T {
        self.0.get_or_init(|| value)
    }
}

/// An interned Python `str` for `$text`, made once per process: what PyO3's
/// `intern!` does, on a [`GilOnceCell`].
macro_rules! interned {
    ($py:expr, $text:literal) => {{
        static INTERNED: $crate::python::once::GilOnceCell<::pyo3::Py<::pyo3::types::PyString>> =
            $crate::python::once::GilOnceCell::new();
        let py: ::pyo3::Python<'_> = $py;
        INTERNED
            .get_or_init(py, || ::pyo3::types::PyString::intern(py, $text).unbind())
            .bind(py)
    }};
}
pub(crate) use interned;

/// Initialises, at import, the lazy state PyO3 keeps in its own once-cells
/// and would otherwise create on first use, on whichever thread: the object
/// freelists of the span classes (the first span a thread starts), the type
/// of the one class not added to the module, and `PanicException`'s type.
/// Import runs before any thread can use them, so no fork finds them mid-way.
pub fn initialise_pyo3_lazy_state(py: Python<'_>) {
    use pyo3::impl_::pyclass::PyClassWithFreeList;

    drop(super::span::SpanPy::get_free_list(py));
    drop(super::otel::OtelSpanPy::get_free_list(py));
    drop(super::otel::CurrentSpanPy::get_free_list(py));
    py.get_type::<super::tracer_core::TracerCore>();
    py.get_type::<pyo3::panic::PanicException>();
}
