//! The query methods' Python arguments, shared by `Tracer` and `Analysis`
//! so both take them by the same rules: limits, trace ids, tags and orders
//! become the query layer's types ([`crate::query`]), and its errors become
//! ValueError. Results cross as plain dicts and lists (see [`super::values`]).

use std::collections::BTreeMap;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};
use serde::Serialize;
use serde_json::Value;

use crate::ids::TraceId;
use crate::query::QueryError;

/// A result limit: None (no limit) or an int >= 0. Anything else — a
/// negative int, a bool, a float, a str — is a ValueError, on every query
/// method alike. An int too large for memory means no limit.
pub fn limit_arg(limit: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    let Some(limit) = limit.filter(|l| !l.is_none()) else {
        return Ok(None);
    };
    let bad = || -> PyResult<Option<usize>> {
        Err(PyValueError::new_err(format!(
            "limit must be None or a non-negative int, not {}",
            limit.repr()?
        )))
    };
    if limit.is_instance_of::<PyBool>() || !limit.is_instance_of::<PyInt>() {
        return bad();
    }
    if let Ok(n) = limit.extract::<u64>() {
        return Ok(Some(usize::try_from(n).unwrap_or(usize::MAX)));
    }
    if limit.lt(0)? {
        return bad();
    }
    Ok(Some(usize::MAX))
}

/// A point in time, Unix nanoseconds: None or an int >= 0 (ValueError
/// otherwise, as for limits). Beyond the u64 range means "never".
pub fn time_arg(name: &str, time: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    let Some(time) = time.filter(|t| !t.is_none()) else {
        return Ok(None);
    };
    if time.is_instance_of::<PyInt>() && !time.is_instance_of::<PyBool>() {
        if let Ok(ns) = time.extract::<u64>() {
            return Ok(Some(ns));
        }
        if !time.lt(0)? {
            return Ok(Some(u64::MAX));
        }
    }
    Err(PyValueError::new_err(format!(
        "{name} must be None or an int of Unix nanoseconds >= 0, not {}",
        time.repr()?
    )))
}

/// A trace id argument: a str (anything else is a TypeError). A str that
/// is not 32 lowercase hex digits is no error: no trace has that id.
pub fn trace_id_arg(obj: &Bound<'_, PyAny>) -> PyResult<Option<TraceId>> {
    match obj.cast::<PyString>() {
        Ok(s) => Ok(TraceId::from_hex(&s.to_cow()?)),
        Err(_) => Err(PyTypeError::new_err(format!(
            "trace_id must be a str of 32 hex digits, not {}",
            obj.get_type().name()?
        ))),
    }
}

/// Tags to match: a dict of str keys to str, bool, int or float values,
/// each compared by its text form (`true`, `3`, `1.5`) as the query layer
/// compares span attributes (see [`crate::query::tag_text`]).
pub fn tags_arg(tags: Option<&Bound<'_, PyAny>>) -> PyResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Some(tags) = tags.filter(|t| !t.is_none()) else {
        return Ok(out);
    };
    let dict = tags.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!(
            "tags must be a dict of str to str, bool, int or float, not {}",
            tags.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    for (key, value) in dict.iter() {
        let key: String = key.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "tag keys must be str, not {}",
                key.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?;
        let text = if let Ok(s) = value.cast::<PyString>() {
            s.to_cow()?.into_owned()
        } else if let Ok(b) = value.cast::<PyBool>() {
            b.is_true().to_string()
        } else if value.is_instance_of::<PyInt>() {
            value.str()?.to_cow()?.into_owned()
        } else if let Ok(f) = value.cast::<PyFloat>() {
            Value::from(f.value()).to_string()
        } else {
            return Err(PyTypeError::new_err(format!(
                "tag {key:?} must be a str, bool, int or float, not {}",
                value.get_type().name()?
            )));
        };
        out.insert(key, text);
    }
    Ok(out)
}

/// The query layer's refusal, as the ValueError it is to Python callers.
pub fn query_error(err: QueryError) -> PyErr {
    PyValueError::new_err(err.to_string())
}

/// Serialises a result (without the GIL, typically) for [`super::values::json_to_py`].
pub fn serialize<T: Serialize + ?Sized>(value: &T) -> PyResult<Value> {
    serde_json::to_value(value)
        .map_err(|e| PyValueError::new_err(format!("cannot convert analysis result: {e}")))
}
