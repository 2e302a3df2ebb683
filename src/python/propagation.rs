//! `inject` and `extract`: the formats of [`crate::propagation`] over Python
//! carriers (dicts, framework header classes, lists of `(name, value)`
//! pairs as ASGI, gRPC and Kafka use).
//!
//! Extraction reads attacker-controlled input from arbitrary objects, so it
//! never raises because of what a carrier holds: keys and values of the
//! wrong type are skipped, values longer than any format accepts are
//! replaced by an invalid marker before they are converted, and an
//! exception from the carrier's own methods means "no context". Only a
//! carrier that is not a mapping or a list of pairs at all is a TypeError.

use super::once::interned;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::propagation::{self, Propagator, MAX_HEADER_VALUE_LEN};

use super::context;
use super::convert;
use super::global;
use super::logging;
use super::span::SpanPy;
use super::span_context::SpanContextPy;

/// Every header name some format reads; a bit per name in a [`NameSet`].
const NAMES: [&str; 10] = [
    propagation::TRACEPARENT,
    propagation::TRACESTATE,
    propagation::B3,
    propagation::B3_TRACE_ID,
    propagation::B3_SPAN_ID,
    propagation::B3_SAMPLED,
    propagation::B3_FLAGS,
    propagation::X_TRACE_ID,
    propagation::X_SPAN_ID,
    propagation::X_SAMPLED,
];

/// Keys longer than this name nothing we read; skipped unconverted.
const LONGEST_NAME: usize = 12;

/// Values kept per header name; more is junk (a valid `tracestate` needs at
/// most 32 non-empty ones) and marks the header invalid.
const MAX_VALUES_PER_NAME: usize = 64;

/// Stands for a value no format accepts (too long, undecodable, too many).
const INVALID: &str = "\0";

#[derive(Clone, Copy)]
struct NameSet(u16);

impl NameSet {
    fn of(propagators: &[Propagator]) -> Self {
        let mut bits = 0u16;
        for p in propagators {
            for field in p.fields() {
                if let Some(i) = NAMES.iter().position(|n| n == field) {
                    bits |= 1 << i;
                }
            }
        }
        NameSet(bits)
    }

    /// The index of the wanted name `key` spells (any ASCII case).
    fn find(self, key: &[u8]) -> Option<usize> {
        if key.len() > LONGEST_NAME {
            return None;
        }
        NAMES
            .iter()
            .enumerate()
            .find(|(i, n)| self.0 & (1 << i) != 0 && n.as_bytes().eq_ignore_ascii_case(key))
            .map(|(i, _)| i)
    }
}

/// A header value as received, converted to text only when read.
enum Value<'py> {
    Str(Bound<'py, PyString>),
    Bytes(Bound<'py, PyBytes>),
    /// Non-ASCII bytes, decoded as Latin-1 (what HTTP/1 header bytes are).
    Decoded(String),
    Invalid,
}

impl Value<'_> {
    fn as_str(&self) -> &str {
        match self {
            Value::Str(s) => s.to_str().unwrap_or(INVALID),
            Value::Bytes(b) => std::str::from_utf8(b.as_bytes()).unwrap_or(INVALID),
            Value::Decoded(s) => s,
            Value::Invalid => INVALID,
        }
    }
}

/// The wanted headers of one carrier.
struct Headers<'py> {
    wanted: NameSet,
    values: Vec<(usize, Value<'py>)>,
    counts: [u8; NAMES.len()],
}

impl<'py> Headers<'py> {
    fn new(wanted: NameSet) -> Self {
        Headers {
            wanted,
            values: Vec::new(),
            counts: [0; NAMES.len()],
        }
    }

    /// The wanted name a key spells, if any. Keys that are not str or
    /// bytes, or too long to be a name we read, are not looked at.
    fn name_of(&self, key: &Bound<'py, PyAny>) -> Option<usize> {
        if let Ok(s) = key.cast::<PyString>() {
            if s.code_point_len().ok()? > LONGEST_NAME {
                return None;
            }
            return self.wanted.find(s.to_str().ok()?.as_bytes());
        }
        if let Ok(b) = key.cast::<PyBytes>() {
            return self.wanted.find(b.as_bytes());
        }
        None
    }

    fn push(&mut self, name: usize, value: Value<'py>) {
        let count = &mut self.counts[name];
        if usize::from(*count) < MAX_VALUES_PER_NAME {
            *count += 1;
            self.values.push((name, value));
        } else if usize::from(*count) == MAX_VALUES_PER_NAME {
            *count += 1;
            self.values.push((name, Value::Invalid));
        }
    }

    /// Adds a value (str, bytes, bytearray, or a list or tuple of them, as
    /// some dicts hold repeated headers); other types are skipped.
    fn add(&mut self, name: usize, value: &Bound<'py, PyAny>) -> PyResult<()> {
        if let Ok(s) = value.cast::<PyString>() {
            let v = if s.code_point_len()? > MAX_HEADER_VALUE_LEN {
                Value::Invalid
            } else {
                Value::Str(s.clone())
            };
            self.push(name, v);
        } else if let Ok(b) = value.cast::<PyBytes>() {
            self.push(name, bytes_value(b.as_bytes(), || Value::Bytes(b.clone())));
        } else if let Ok(b) = value.cast::<PyByteArray>() {
            let v = if b.len() > MAX_HEADER_VALUE_LEN {
                Value::Invalid
            } else {
                Value::Decoded(convert::latin1(&b.to_vec()).into())
            };
            self.push(name, v);
        } else if value.is_exact_instance_of::<PyList>() || value.is_exact_instance_of::<PyTuple>()
        {
            // Exact types only: iterating them runs no Python code, so a
            // dict being iterated cannot change under us.
            for item in value.try_iter()? {
                let item = item?;
                if usize::from(self.counts[name]) > MAX_VALUES_PER_NAME {
                    break;
                }
                if !(item.is_instance_of::<PyList>() || item.is_instance_of::<PyTuple>()) {
                    self.add(name, &item)?;
                }
            }
        }
        Ok(())
    }

    fn add_pair(&mut self, pair: &Bound<'py, PyAny>) -> PyResult<()> {
        let two = if let Ok(t) = pair.cast::<PyTuple>() {
            (t.len() == 2).then(|| (t.get_item(0), t.get_item(1)))
        } else if let Ok(l) = pair.cast::<PyList>() {
            (l.len() == 2).then(|| (l.get_item(0), l.get_item(1)))
        } else {
            None
        };
        if let Some((key, value)) = two {
            let (key, value) = (key?, value?);
            if let Some(name) = self.name_of(&key) {
                self.add(name, &value)?;
            }
        }
        Ok(())
    }

    /// Every value received under `name` (lower case), in order.
    fn get(&self, name: &str) -> Vec<&str> {
        match NAMES.iter().position(|n| *n == name) {
            Some(i) => self
                .values
                .iter()
                .filter(|(n, _)| *n == i)
                .map(|(_, v)| v.as_str())
                .collect(),
            None => Vec::new(),
        }
    }
}

fn bytes_value<'py>(bytes: &[u8], borrowed: impl FnOnce() -> Value<'py>) -> Value<'py> {
    if bytes.len() > MAX_HEADER_VALUE_LEN {
        Value::Invalid
    } else if bytes.is_ascii() {
        borrowed()
    } else {
        Value::Decoded(convert::latin1(bytes).into())
    }
}

/// Reads the wanted headers of `carrier`. Err for a carrier of no
/// supported shape, and for exceptions that are not an `Exception` (such as
/// KeyboardInterrupt); Ok(None) when the carrier's own methods fail.
fn read_carrier<'py>(
    carrier: &Bound<'py, PyAny>,
    wanted: NameSet,
) -> PyResult<Option<Headers<'py>>> {
    let py = carrier.py();
    let mut headers = Headers::new(wanted);
    match read_into(carrier, &mut headers) {
        Ok(true) => Ok(Some(headers)),
        Ok(false) => Err(PyTypeError::new_err(format!(
            "extract() takes a mapping of header names to values (a dict, a headers object) \
             or a list of (name, value) pairs, not {}",
            convert::display(&carrier.get_type().into_any())
        ))),
        Err(e) if e.is_instance_of::<PyException>(py) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Ok(false) when the carrier has no shape we read.
fn read_into<'py>(carrier: &Bound<'py, PyAny>, headers: &mut Headers<'py>) -> PyResult<bool> {
    let py = carrier.py();
    if let Ok(dict) = carrier.cast_exact::<PyDict>() {
        for (key, value) in dict.iter() {
            if let Some(name) = headers.name_of(&key) {
                headers.add(name, &value)?;
            }
        }
    } else if carrier.is_instance_of::<PyList>() || carrier.is_instance_of::<PyTuple>() {
        read_iter(carrier, |pair| headers.add_pair(&pair))?;
    } else if let Some(multi_items) = carrier.getattr_opt(interned!(py, "multi_items"))? {
        // httpx.Headers: items() joins repeated headers; this does not.
        read_iter(&multi_items.call0()?, |pair| headers.add_pair(&pair))?;
    } else if let Some(get_all) = multi_getter(carrier)? {
        // One call per distinct spelling of a wanted name: repeated headers
        // arrive as a list (starlette, werkzeug, http.client, multidict).
        let keys = carrier.call_method0(interned!(py, "keys"))?;
        let mut seen: Vec<Bound<'py, PyAny>> = Vec::new();
        read_iter(&keys, |key| {
            let Some(name) = headers.name_of(&key) else {
                return Ok(());
            };
            for earlier in &seen {
                if earlier.eq(&key)? {
                    return Ok(());
                }
            }
            let values = get_all.call1((&key,))?;
            if !values.is_none() {
                headers.add(name, &values)?;
            }
            seen.push(key);
            Ok(())
        })?;
    } else if let Some(items) = carrier.getattr_opt(interned!(py, "items"))? {
        read_iter(&items.call0()?, |pair| headers.add_pair(&pair))?;
    } else {
        return Ok(false);
    }
    Ok(true)
}

fn read_iter<'py>(
    iterable: &Bound<'py, PyAny>,
    mut f: impl FnMut(Bound<'py, PyAny>) -> PyResult<()>,
) -> PyResult<()> {
    for item in iterable.try_iter()? {
        f(item?)?;
    }
    Ok(())
}

/// The carrier's "all values of a header" method, if it has one.
fn multi_getter<'py>(carrier: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = carrier.py();
    for name in [
        interned!(py, "getlist"),
        interned!(py, "get_all"),
        interned!(py, "getall"),
        interned!(py, "get_list"),
    ] {
        if let Some(method) = carrier.getattr_opt(name)? {
            if method.is_callable() {
                return Ok(Some(method));
            }
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------
// Which formats

/// The formats named by a `propagators=` argument: a list of names or one
/// comma-separated string; None means the default (see [`default_propagators`]).
/// For `Tracer(propagators=...)` too.
pub fn resolve_propagators(
    py: Python<'_>,
    arg: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<Propagator>> {
    match arg.filter(|a| !a.is_none()) {
        None => Ok(default_propagators(py)),
        Some(names) => parse_names_arg(names),
    }
}

fn parse_names_arg(names: &Bound<'_, PyAny>) -> PyResult<Vec<Propagator>> {
    let text = if let Ok(s) = names.cast::<PyString>() {
        s.to_str()?.to_owned()
    } else {
        let mut joined = String::new();
        let items = names.try_iter().map_err(|_| names_type_error(names))?;
        for item in items {
            let item = item?;
            let name = item
                .cast::<PyString>()
                .map_err(|_| names_type_error(&item))?;
            joined.push_str(name.to_str()?);
            joined.push(',');
        }
        joined
    };
    propagation::parse_propagator_list(&text).map_err(PyValueError::new_err)
}

fn names_type_error(obj: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "propagators must be a list of names (\"tracecontext\", \"b3\", \"b3multi\", \
         \"xtrace\") or a comma-separated str, not {}",
        convert::display(&obj.get_type().into_any())
    ))
}

/// The global tracer's formats (resolved when it was made), else, before
/// any tracer exists, the environment's (FERROTRACE_PROPAGATORS, then
/// OTEL_PROPAGATORS), else `tracecontext`.
pub fn default_propagators(py: Python<'_>) -> Vec<Propagator> {
    match global::existing(py).map(|t| t.get().core.get().propagators.clone()) {
        Some(list) => list,
        None => env_propagators(py),
    }
}

static LAST_ENV_WARNING: crate::sync::Mutex<Option<String>> = crate::sync::Mutex::new(None);

/// The formats named by FERROTRACE_PROPAGATORS, else OTEL_PROPAGATORS,
/// else `tracecontext`. Unknown names are skipped with a warning (once per
/// distinct value).
pub fn env_propagators(py: Python<'_>) -> Vec<Propagator> {
    for var in ["FERROTRACE_PROPAGATORS", "OTEL_PROPAGATORS"] {
        let Ok(value) = std::env::var(var) else {
            continue;
        };
        if value.trim().is_empty() {
            continue;
        }
        let (found, unknown) = propagation::parse_propagator_env(&value);
        if !unknown.is_empty() {
            let mut last = LAST_ENV_WARNING.lock();
            if last.as_deref() != Some(value.as_str()) {
                *last = Some(value.clone());
                drop(last);
                logging::warning(
                    py,
                    &format!(
                        "{var}: ignoring unknown propagator(s) {}; known: tracecontext, b3, \
                         b3multi, xtrace, none",
                        unknown.join(", ")
                    ),
                );
            }
        }
        return found;
    }
    propagation::DEFAULT.to_vec()
}

// ---------------------------------------------------------------------------
// The functions

/// Reads a trace context from incoming headers: a `SpanContext` to pass as
/// `start_span(parent=...)`, or None when the carrier holds no valid one.
#[pyfunction]
#[pyo3(signature = (carrier, propagators=None))]
pub fn extract(
    py: Python<'_>,
    carrier: &Bound<'_, PyAny>,
    propagators: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<SpanContextPy>> {
    let propagators = resolve_propagators(py, propagators)?;
    let Some(headers) = read_carrier(carrier, NameSet::of(&propagators))? else {
        return Ok(None);
    };
    let found = propagation::extract_first(&propagators, |name| headers.get(name));
    Ok(found.map(SpanContextPy::remote))
}

/// Writes the active span's context (or `span`'s: a Span or a SpanContext)
/// into `carrier` as headers; writes nothing when there is no span.
#[pyfunction]
#[pyo3(signature = (carrier, span=None, propagators=None))]
pub fn inject(
    py: Python<'_>,
    carrier: &Bound<'_, PyAny>,
    span: Option<&Bound<'_, PyAny>>,
    propagators: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let source = match span.filter(|s| !s.is_none()) {
        Some(s) => {
            if !(s.is_instance_of::<SpanPy>() || s.is_instance_of::<SpanContextPy>()) {
                return Err(PyTypeError::new_err(format!(
                    "inject() span must be a Span, a SpanContext or None, not {}",
                    convert::display(&s.get_type().into_any())
                )));
            }
            s.clone()
        }
        None => match context::get(py)? {
            Some(active) if active.is_instance_of::<SpanPy>() => active,
            _ => return Ok(()),
        },
    };
    let propagators = resolve_propagators(py, propagators)?;
    let mut headers: Vec<(&'static str, String)> = Vec::with_capacity(4);
    let mut set = |name, value| headers.push((name, value));
    if let Ok(s) = source.cast::<SpanPy>() {
        propagation::inject_all(&propagators, s.get().propagated(), &mut set);
    } else if let Ok(c) = source.cast::<SpanContextPy>() {
        propagation::inject_all(&propagators, c.get().propagated(), &mut set);
    }
    write_carrier(carrier, &headers)
}

fn write_carrier(carrier: &Bound<'_, PyAny>, headers: &[(&'static str, String)]) -> PyResult<()> {
    if let Ok(list) = carrier.cast::<PyList>() {
        return write_pairs(list, headers);
    }
    if let Ok(dict) = carrier.cast_exact::<PyDict>() {
        for (name, value) in headers {
            dict.set_item(name, value)?;
        }
        return Ok(());
    }
    for (name, value) in headers {
        carrier.set_item(name, value).map_err(|e| {
            if e.is_instance_of::<PyTypeError>(carrier.py()) {
                PyTypeError::new_err(format!(
                    "inject() writes into a mutable mapping (carrier[name] = value) or a list \
                     of (name, value) pairs; {} does not support item assignment",
                    convert::display(&carrier.get_type().into_any())
                ))
            } else {
                e
            }
        })?;
    }
    Ok(())
}

/// Appends `(name, value)` pairs after removing any earlier ones of the
/// same names, as bytes when the list already holds bytes names (ASGI).
fn write_pairs(list: &Bound<'_, PyList>, headers: &[(&'static str, String)]) -> PyResult<()> {
    let py = list.py();
    let mut as_bytes = false;
    for i in (0..list.len()).rev() {
        let item = list.get_item(i)?;
        if !(item.is_instance_of::<PyTuple>() || item.is_instance_of::<PyList>()) {
            continue;
        }
        let Ok(key) = item.get_item(0) else { continue };
        let key_text = if let Ok(b) = key.cast::<PyBytes>() {
            as_bytes = true;
            Some(b.as_bytes())
        } else if let Ok(s) = key.cast::<PyString>() {
            s.to_str().ok().map(str::as_bytes)
        } else {
            None
        };
        let ours = key_text.is_some_and(|k| {
            headers
                .iter()
                .any(|(n, _)| n.as_bytes().eq_ignore_ascii_case(k))
        });
        if ours {
            list.del_item(i)?;
        }
    }
    for (name, value) in headers {
        let pair = if as_bytes {
            (
                PyBytes::new(py, name.as_bytes()),
                PyBytes::new(py, value.as_bytes()),
            )
                .into_pyobject(py)?
        } else {
            (PyString::new(py, name), PyString::new(py, value)).into_pyobject(py)?
        };
        list.append(pair)?;
    }
    Ok(())
}
