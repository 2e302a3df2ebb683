//! `SpanContext`: a span's identity as carried between processes.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::ids::{SpanId, TraceId};
use crate::propagation::{self, Extracted};

/// A span's identity as carried between processes: what `extract` returns
/// and `start_span(parent=...)` accepts.
/// A parent context read from a carrier, without a Python object.
#[derive(Clone)]
pub struct RemoteParent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
    /// The W3C Level 2 `random` trace flag (see `propagation.rs`).
    pub random: bool,
    /// A `SpanContext(is_remote=False)` continues a trace as a local parent.
    pub remote: bool,
    pub tracestate: Option<std::sync::Arc<str>>,
}

#[pyclass(name = "SpanContext", module = "ferrotrace._core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct SpanContextPy {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
    /// The W3C Level 2 `random` trace flag: the trace id's rightmost 7 bytes
    /// are random.
    pub random: bool,
    pub remote: bool,
    /// W3C `tracestate`, validated and normalised; never empty.
    pub tracestate: Option<String>,
}

impl SpanContextPy {
    /// A context read from incoming headers.
    pub fn remote(extracted: Extracted) -> Self {
        SpanContextPy {
            trace_id: extracted.trace_id,
            span_id: extracted.span_id,
            sampled: extracted.sampled,
            random: extracted.random,
            remote: true,
            tracestate: extracted.tracestate,
        }
    }

    /// This context as a new span's parent.
    pub fn as_parent(&self) -> RemoteParent {
        RemoteParent {
            trace_id: self.trace_id,
            span_id: self.span_id,
            sampled: self.sampled,
            random: self.random,
            remote: self.remote,
            tracestate: self.tracestate.as_deref().map(std::sync::Arc::from),
        }
    }

    /// This context as the propagation formats write it.
    pub fn propagated(&self) -> propagation::Context<'_> {
        propagation::Context {
            trace_id: self.trace_id,
            span_id: self.span_id,
            sampled: self.sampled,
            random: self.random,
            tracestate: self.tracestate.as_deref(),
        }
    }
}

#[pymethods]
impl SpanContextPy {
    #[new]
    #[pyo3(signature = (trace_id, span_id, sampled=true, is_remote=true, tracestate=None, random=false))]
    fn py_new(
        trace_id: &str,
        span_id: &str,
        sampled: bool,
        is_remote: bool,
        tracestate: Option<&str>,
        random: bool,
    ) -> PyResult<Self> {
        let trace = TraceId::from_hex(trace_id).ok_or_else(|| {
            PyValueError::new_err(format!(
                "trace_id must be 32 lowercase hex digits, not all zero: {trace_id:?}"
            ))
        })?;
        let span = SpanId::from_hex(span_id).ok_or_else(|| {
            PyValueError::new_err(format!(
                "span_id must be 16 lowercase hex digits, not all zero: {span_id:?}"
            ))
        })?;
        let tracestate = match tracestate {
            None => None,
            Some(text) if text.trim_matches([' ', '\t']).is_empty() => None,
            Some(text) => Some(propagation::parse_tracestate(&[text]).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "tracestate is not a valid W3C tracestate (comma-separated key=value \
                     members, at most 32, lower-case keys, printable ASCII values): {:?}",
                    text.chars().take(200).collect::<String>()
                ))
            })?),
        };
        Ok(SpanContextPy {
            trace_id: trace,
            span_id: span,
            sampled,
            random,
            remote: is_remote,
            tracestate,
        })
    }

    /// The W3C `tracestate` carried with this context, or None.
    #[getter]
    fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    #[getter]
    fn trace_id(&self) -> String {
        self.trace_id.to_hex().as_str().to_owned()
    }

    #[getter]
    fn span_id(&self) -> String {
        self.span_id.to_hex().as_str().to_owned()
    }

    #[getter]
    fn sampled(&self) -> bool {
        self.sampled
    }

    /// W3C Level 2: the trace id's rightmost 7 bytes are random (trace
    /// flag 0x02).
    #[getter]
    fn random(&self) -> bool {
        self.random
    }

    #[getter]
    fn is_remote(&self) -> bool {
        self.remote
    }

    #[getter]
    fn trace_flags(&self) -> u8 {
        propagation::trace_flags(self.sampled, self.random)
    }

    fn __repr__(&self) -> String {
        format!(
            "SpanContext(trace_id='{}', span_id='{}', sampled={}, is_remote={}{}{})",
            self.trace_id,
            self.span_id,
            if self.sampled { "True" } else { "False" },
            if self.remote { "True" } else { "False" },
            match &self.tracestate {
                Some(state) => format!(", tracestate={}", python_str_repr(state)),
                None => String::new(),
            },
            if self.random { ", random=True" } else { "" },
        )
    }
}

/// `repr()` of a str of printable ASCII, as Python writes it.
fn python_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        if c == quote || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push(quote);
    out
}
