//! Segments in, per-tuple connection lifecycles and judged SYNs out.

mod connection;
mod incarnation;
mod record_log;
mod stats;
mod syn;
mod tracker;
mod tuple;
mod tuple_table;

pub use connection::{CloseOutcome, Connection, Handshake};
pub use incarnation::{
    CloseKind, Closer, IncarnationRecord, SideTraffic, TimeWaitEnd, TimeWaitHolder,
};
pub use record_log::{Handed, HandedRecords, RecordLog};
pub use stats::{FlowStats, KernelCounters, TimeWaitStats};
pub use syn::{Assumption, FoundState, ObservedReply, RecordSink, Reuse, SynRecord, Verdict};
pub use tracker::Tracker;
pub use tuple::{Direction, TupleKey};

#[cfg(test)]
mod tests;
