//! Tables for incident reviews: polars DataFrames built from the analysis records
//! (connections, SYNs, connect attempts, tuple reuse) and their Parquet/CSV/JSON writers.

mod attempts;
mod build;
mod columns;
mod frames;
mod store;
mod write;

pub use attempts::{
    Attempt, AttemptKeys, ChainedSyns, Outcome, SharedAttempts, chain_attempts, chain_syns,
    same_clock,
};
pub use build::{TableInputs, Tables, build_tables};
pub use frames::{
    TABLE_NAMES, attempts_frame, connections_frame, nat_hosts_frame, reuse_frame, syns_frame,
    syns_frame_in, ts_events_frame,
};
pub use store::{MAX_CANDIDATES, RecordsView, SharedRecords};
pub use write::{ParquetCodec, StagedTable, TableFormat, WriteError, stage_tables, write_tables};

use crate::flow::{IncarnationRecord, RecordSink, SynRecord};

/// Keeps every record, for building tables.
#[derive(Debug, Clone, Default)]
pub struct TableRecords {
    pub syns: Vec<SynRecord>,
    pub incarnations: Vec<IncarnationRecord>,
}

impl RecordSink for TableRecords {
    fn syn(&mut self, syn: SynRecord) {
        self.syns.push(syn);
    }

    fn incarnation(&mut self, incarnation: IncarnationRecord) {
        self.incarnations.push(incarnation);
    }
}
