//! The query layer: typed questions over traces, asked the same way of
//! every source, answered by the same rules.
//!
//! * [`TraceQueries`] is the interface: find traces ([`TraceQuery`]), get
//!   one, latency, the operations table ([`OperationQuery`]), the service
//!   graph, error groups, critical paths, services and their span names.
//! * [`TraceStore`] holds traces fed span by span in any order, bounded by
//!   a [`Retention`] rule (evictions counted). The file analysis
//!   ([`Analysis`]) fills one with no retention; the server feeds one live.
//! * `LiveAnalysis`, the in-process tracer's, implements the trait too: its
//!   trace questions go through a [`TraceStore`] built from a snapshot at
//!   query time, its statistics come from its sketches.
//!
//! The rules both follow are stated in README.md ("Analysis").

mod files;
mod live;
mod operation_query;
mod store;
mod trace_queries;
mod trace_query;

pub use files::Analysis;
pub use live::LiveTraces;
pub use operation_query::{OperationOrder, OperationQuery};
pub use store::{Retention, StoreCounters, TraceStore};
pub use trace_queries::{SpanName, TraceQueries};
pub use trace_query::{tag_text, QueryError, TraceOrder, TraceQuery};
