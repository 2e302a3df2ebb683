//! Keyword arguments of `Tracer`/`configure` turned into option values,
//! driven by the option table (`options.rs` in the core).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};

use crate::config::{Config, ProcessEnv};
use crate::options::{self, Kind, OptionSpec, Value};

use super::convert;

/// Checks every keyword against the table and resolves the configuration.
/// `None` for an option means "not given" (the environment or default
/// decides), except `output_dir=None`, which disables files.
pub fn resolve(
    py: Python<'_>,
    given: &[(&str, Bound<'_, PyAny>)],
) -> PyResult<(Config, Vec<String>)> {
    let mut values = Vec::with_capacity(given.len());
    for (name, value) in given {
        let spec = options::find(name).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "Tracer() got an unexpected keyword argument {name:?}; options are: {}",
                options::OPTIONS
                    .iter()
                    .map(|o| o.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        if value.is_none() && spec.kind != Kind::Dir {
            continue;
        }
        let raw = to_value(py, spec, value)?;
        let checked = options::check_given(spec, raw).map_err(|e| PyValueError::new_err(e.0))?;
        values.push((spec, checked));
    }
    options::resolve(&values, &ProcessEnv).map_err(|e| PyValueError::new_err(e.0))
}

fn type_error(spec: &OptionSpec, value: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "{} must be {}, not {}",
        spec.name,
        spec.kind.expected(),
        convert::display(&value.get_type().into_any())
    ))
}

fn to_value(py: Python<'_>, spec: &OptionSpec, v: &Bound<'_, PyAny>) -> PyResult<Value> {
    let is_bool = v.is_instance_of::<PyBool>();
    Ok(match spec.kind {
        Kind::Text | Kind::Choice { .. } | Kind::Url => match v.cast::<PyString>() {
            Ok(s) => Value::Str(convert::text(s).to_string()),
            Err(_) => return Err(type_error(spec, v)),
        },
        Kind::Dir | Kind::File => {
            if v.is_none() {
                return Ok(Value::Null);
            }
            let path = py
                .import("os")?
                .call_method1("fspath", (v,))
                .map_err(|_| type_error(spec, v))?;
            match path.cast::<PyString>() {
                Ok(s) => Value::Str(s.to_str()?.to_owned()),
                Err(_) => {
                    return Err(PyTypeError::new_err(format!(
                        "{} must be a str path (bytes paths are not supported)",
                        spec.name
                    )))
                }
            }
        }
        Kind::Int { .. } if v.is_instance_of::<PyInt>() && !is_bool => {
            Value::Int(v.extract::<i64>().map_err(|_| {
                PyValueError::new_err(format!("{} is out of range: {v}", spec.name))
            })?)
        }
        Kind::Number { .. } | Kind::OptionalNumber { .. }
            if (v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>()) && !is_bool =>
        {
            Value::Float(v.extract::<f64>()?)
        }
        Kind::Bool if is_bool => Value::Bool(v.extract::<bool>()?),
        Kind::Names { .. } => {
            if let Ok(s) = v.cast::<PyString>() {
                Value::List(s.to_str()?.split(',').map(str::to_owned).collect())
            } else if v.is_instance_of::<PyList>() || v.is_instance_of::<pyo3::types::PyTuple>() {
                let mut names = Vec::new();
                for item in v.try_iter()? {
                    let item = item?;
                    let s = item
                        .cast::<PyString>()
                        .map_err(|_| type_error(spec, &item))?;
                    names.push(s.to_str()?.to_owned());
                }
                Value::List(names)
            } else {
                return Err(type_error(spec, v));
            }
        }
        Kind::Map => {
            let dict = v.cast::<PyDict>().map_err(|_| type_error(spec, v))?;
            let mut pairs = Vec::new();
            for (k, val) in dict.iter() {
                let key = k.cast::<PyString>().map_err(|_| type_error(spec, v))?;
                pairs.push((key.to_str()?.to_owned(), convert::display(&val).to_string()));
            }
            Value::Map(pairs)
        }
        _ => return Err(type_error(spec, v)),
    })
}

/// An option's resolved value as Python shows it in `tracer.config`.
pub fn to_py<'py>(py: Python<'py>, value: Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => f.into_pyobject(py)?.into_any(),
        Value::Str(s) => PyString::new(py, &s).into_any(),
        Value::List(l) => PyList::new(py, l)?.into_any(),
        Value::Map(m) => {
            let d = PyDict::new(py);
            for (k, v) in m {
                d.set_item(k, v)?;
            }
            d.into_any()
        }
    })
}

/// The option table as dicts (name, env, default, doc): `_core._options()`.
#[pyfunction]
pub fn _options(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for o in options::OPTIONS {
        let d = PyDict::new(py);
        d.set_item("name", o.name)?;
        d.set_item("env", o.env.iter().map(|(k, _)| *k).collect::<Vec<_>>())?;
        d.set_item("default", o.default)?;
        d.set_item("doc", o.doc)?;
        list.append(d)?;
    }
    Ok(list)
}

/// The README's option table, generated from the same list.
#[pyfunction]
pub fn _options_markdown() -> String {
    options::markdown_table()
}
