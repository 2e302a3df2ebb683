//! Python values into span data. Nothing here raises for odd values:
//! anything that is not a str/bool/int/float (or a list of them) is stored
//! as its `str()`, and strings that are not valid UTF-8 (lone surrogates)
//! are stored with U+FFFD in their place, so every record serialises to
//! strict UTF-8 JSON.

use super::once::{interned, GilOnceCell};
use compact_str::CompactString;
use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};

use crate::attributes::AttrValue;
use crate::span::ErrorInfo;

/// A Python str as Rust text; lone surrogates become U+FFFD.
#[inline]
pub fn text(s: &Bound<'_, PyString>) -> CompactString {
    match s.to_str() {
        Ok(t) => CompactString::from(t),
        Err(_) => {
            let _ = PyErr::take(s.py());
            lossy(s)
        }
    }
}

/// Text with each lone surrogate replaced by one U+FFFD. (PyO3's
/// `to_string_lossy` would give three: it sees the surrogate's three
/// "surrogatepass" bytes as three errors.)
#[cold]
fn lossy(s: &Bound<'_, PyString>) -> CompactString {
    let bytes = match s.call_method1("encode", ("utf-8", "surrogatepass")) {
        Ok(b) => b.extract::<Vec<u8>>().unwrap_or_default(),
        Err(_) => return CompactString::from("\u{fffd}"),
    };
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push('\u{fffd}');
                // A surrogate is ED A0..BF 80..BF: skip all three bytes.
                let is_surrogate = after.len() >= 3
                    && after[0] == 0xED
                    && (0xA0..=0xBF).contains(&after[1])
                    && (0x80..=0xBF).contains(&after[2]);
                let skip = if is_surrogate {
                    3
                } else {
                    e.error_len().unwrap_or(after.len()).max(1)
                };
                rest = &after[skip.min(after.len())..];
            }
        }
    }
    CompactString::from(out)
}

/// `str(obj)`, or a placeholder naming the type if `__str__` itself fails.
pub fn display(obj: &Bound<'_, PyAny>) -> CompactString {
    if let Ok(s) = obj.cast::<PyString>() {
        return text(s);
    }
    match obj.str() {
        Ok(s) => text(&s),
        Err(_) => {
            let type_name = obj
                .get_type()
                .name()
                .map(|n| text(&n))
                .unwrap_or_else(|_| "object".into());
            compact_str::format_compact!("<unprintable {type_name}>")
        }
    }
}

/// An attribute key: a str as is, anything else as its `str()`.
#[inline]
pub fn key(obj: &Bound<'_, PyAny>) -> CompactString {
    match obj.cast::<PyString>() {
        Ok(s) => text(s),
        Err(_) => display(obj),
    }
}

/// An attribute value. Exact type checks come first: they are the common case.
pub fn value(obj: &Bound<'_, PyAny>) -> AttrValue {
    scalar(obj).unwrap_or_else(|| {
        if obj.is_exact_instance_of::<PyList>() || obj.is_exact_instance_of::<PyTuple>() {
            if let Ok(items) = obj.try_iter() {
                let list = items
                    .map(|item| match item {
                        Ok(item) => scalar(&item).unwrap_or_else(|| AttrValue::Str(display(&item))),
                        Err(_) => AttrValue::Str("<unreadable>".into()),
                    })
                    .collect();
                return AttrValue::List(list);
            }
        }
        AttrValue::Str(display(obj))
    })
}

#[inline]
fn scalar(obj: &Bound<'_, PyAny>) -> Option<AttrValue> {
    if let Ok(s) = obj.cast_exact::<PyString>() {
        return Some(AttrValue::Str(text(s)));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Some(AttrValue::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return Some(match obj.extract::<i64>() {
            Ok(i) => AttrValue::Int(i),
            // Too big for JSON consumers' int64: keep every digit as text.
            Err(_) => AttrValue::Str(display(obj)),
        });
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Some(AttrValue::float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Some(AttrValue::Str(text(s)));
    }
    None
}

static FORMAT_EXCEPTION: GilOnceCell<Py<PyAny>> = GilOnceCell::new();

/// Type (module-qualified unless builtin), message and formatted stack of
/// an exception. Never fails: missing pieces are left empty.
pub fn exception(py: Python<'_>, exc: &Bound<'_, PyAny>) -> ErrorInfo {
    exception_with_traceback(py, exc, None)
}

/// As [`exception`], with the traceback given separately: an exception
/// caught as a `PyErr` before Python 3.12 has no `__traceback__` yet.
pub fn exception_with_traceback(
    py: Python<'_>,
    exc: &Bound<'_, PyAny>,
    traceback: Option<&Bound<'_, PyAny>>,
) -> ErrorInfo {
    let exc_type = exc.get_type();
    ErrorInfo {
        error_type: qualified_type_name(&exc_type),
        message: display(exc).to_string(),
        stack: format_stack(py, exc, traceback),
    }
}

/// An exception's type name, module-qualified unless builtin.
pub fn exception_type(exc: &Bound<'_, PyAny>) -> String {
    qualified_type_name(&exc.get_type())
}

fn qualified_type_name(t: &Bound<'_, PyType>) -> String {
    let name = t
        .qualname()
        .map(|n| text(&n).to_string())
        .unwrap_or_default();
    match t.module() {
        Ok(m) => {
            let m = text(&m);
            if m == "builtins" || m.is_empty() {
                name
            } else {
                format!("{m}.{name}")
            }
        }
        Err(_) => name,
    }
}

fn format_stack(
    py: Python<'_>,
    exc: &Bound<'_, PyAny>,
    traceback: Option<&Bound<'_, PyAny>>,
) -> Option<String> {
    let formatter = FORMAT_EXCEPTION
        .get_or_try_init(py, || {
            py.import("traceback")
                .and_then(|m| m.getattr("format_exception"))
                .map(Bound::unbind)
        })
        .ok()?
        .bind(py);
    let tb = match traceback {
        Some(tb) => tb.clone(),
        None => exc.getattr("__traceback__").ok()?,
    };
    let lines = formatter.call1((exc.get_type(), exc, tb)).ok()?;
    let joined = PyString::new(py, "").call_method1("join", (lines,)).ok()?;
    Some(display(&joined).to_string())
}

/// The error description for `set_error(...)`: an exception, or any other
/// value as a message.
pub fn error_argument(py: Python<'_>, error: &Bound<'_, PyAny>) -> ErrorInfo {
    if error.is_instance_of::<pyo3::exceptions::PyBaseException>() {
        return exception(py, error);
    }
    if let Ok(t) = error.cast::<PyType>() {
        if t.is_subclass_of::<pyo3::exceptions::PyBaseException>()
            .unwrap_or(false)
        {
            return ErrorInfo {
                error_type: qualified_type_name(t),
                message: String::new(),
                stack: None,
            };
        }
    }
    ErrorInfo {
        error_type: "Error".into(),
        message: display(error).to_string(),
        stack: None,
    }
}

/// A span name must be a str: anything else is API misuse.
#[inline]
pub fn span_name(name: &Bound<'_, PyAny>) -> PyResult<CompactString> {
    match name.cast::<PyString>() {
        Ok(s) => Ok(text(s)),
        Err(_) => Err(PyTypeError::new_err(format!(
            "span name must be a str, not {}",
            name.get_type()
                .name()
                .map(|n| text(&n).to_string())
                .unwrap_or_else(|_| "object".into())
        ))),
    }
}

/// Calls `f` for each (key, value) of a mapping: anything with `.items()`
/// (dicts, headers objects, mapping views). `message` is the TypeError for
/// something that is not a mapping.
pub fn for_each_item(
    mapping: &Bound<'_, PyAny>,
    message: &'static str,
    mut f: impl FnMut(&Bound<'_, PyAny>, &Bound<'_, PyAny>) -> PyResult<()>,
) -> PyResult<()> {
    if let Ok(dict) = mapping.cast_exact::<PyDict>() {
        // The common case (`tags={...}`, `attributes={...}`), without the
        // `.items()` view and a tuple per item. `f` may run Python code that
        // changes the dict: `PyDict_Next` then sees the new table, never
        // freed memory, and each pair is owned before `f` runs.
        let py = mapping.py();
        let mut pos: ffi::Py_ssize_t = 0;
        let mut key: *mut ffi::PyObject = std::ptr::null_mut();
        let mut value: *mut ffi::PyObject = std::ptr::null_mut();
        // (PyO3's safe `PyDict::iter` panics when the dict changes size
        // under it, and that panic would reach traced code.)
        //
        // SAFETY: `dict` is an exact dict kept alive by `mapping`, and the
        // GIL is held (`py`); `pos`, `key` and `value` are valid out
        // pointers. PyDict_Next bounds `pos` by the table it reads at each
        // call, so a dict changed by `f` is never read past its end.
        while unsafe { ffi::PyDict_Next(dict.as_ptr(), &mut pos, &mut key, &mut value) } != 0 {
            // SAFETY: on a non-zero return both are borrowed references to
            // live objects; `from_borrowed_ptr` increfs them at once, before
            // `f` (the only code that could drop them from the dict) runs.
            let (k, v) = unsafe {
                (
                    Bound::from_borrowed_ptr(py, key),
                    Bound::from_borrowed_ptr(py, value),
                )
            };
            f(&k, &v)?;
        }
        return Ok(());
    }
    let items = mapping
        .call_method0(interned!(mapping.py(), "items"))
        .map_err(|_| pyo3::exceptions::PyTypeError::new_err(message))?;
    for item in items.try_iter()? {
        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        f(&k, &v)?;
    }
    Ok(())
}

/// A str as is, or an enum member's `name` (OpenTelemetry's `SpanKind.SERVER`,
/// `StatusCode.ERROR`); None for anything else.
pub fn name_or_str(obj: &Bound<'_, PyAny>) -> Option<CompactString> {
    match obj.cast::<PyString>() {
        Ok(s) => Some(text(s)),
        Err(_) => obj
            .getattr(interned!(obj.py(), "name"))
            .ok()
            .and_then(|n| n.cast::<PyString>().ok().map(text)),
    }
}

/// HTTP/1 header bytes (and ASGI byte strings) as text: Latin-1, which
/// is plain ASCII almost always.
pub fn latin1(bytes: &[u8]) -> CompactString {
    match std::str::from_utf8(bytes) {
        Ok(ascii) if bytes.is_ascii() => CompactString::from(ascii),
        _ => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}
