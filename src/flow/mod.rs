//! Segments in, per-tuple connection lifecycles and judged SYNs out.

mod connection;
mod stats;
mod syn;
mod tracker;
mod tuple;

pub use connection::{CloseOutcome, Connection, Handshake};
pub use stats::{FlowStats, KernelCounters, TimeWaitStats};
pub use syn::{FoundState, ObservedReply, SynRecord, SynSink, Verdict};
pub use tracker::Tracker;
pub use tuple::{Direction, TupleKey};

#[cfg(test)]
mod tests;
