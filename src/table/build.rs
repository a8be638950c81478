//! Builds tables on two threads, each handed on (encoded, for a file) as soon as it is built.
//! Building every table and then encoding every table left a core idle at the end of each
//! step; one queue of tables for two threads keeps both busy until the last table is done.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};

use polars::prelude::*;

use super::TableRecords;
use super::attempts::SharedAttempts;
use super::frames::{
    TABLE_NAMES, attempts_frame, connections_frame, nat_hosts_frame, reuse_frame, syns_frame_in,
    ts_events_frame,
};
use crate::flow::{IncarnationRecord, SynRecord};
use crate::nat::NatReport;
use crate::threads::{join, spawn_named};

/// What the tables are built from.
#[derive(Debug, Clone, Copy)]
pub struct TableInputs<'a> {
    pub syns: &'a [SynRecord],
    pub incarnations: &'a [IncarnationRecord],
    pub nat: &'a NatReport,
    /// The SYNs' attempts, chained by the tables or by another user of the same SYNs.
    pub attempts: &'a SharedAttempts,
}

impl<'a> TableInputs<'a> {
    /// The tables of an analysis's kept `records` and its NAT clocks.
    pub fn new(
        records: &'a TableRecords,
        nat: &'a NatReport,
        attempts: &'a SharedAttempts,
    ) -> Self {
        TableInputs {
            syns: &records.syns,
            incarnations: &records.incarnations,
            nat,
            attempts,
        }
    }
}

/// A step for a thread: chaining the SYNs into attempts (which the syns and attempts tables
/// need), or building a table.
#[derive(Debug, Clone, Copy)]
enum Job {
    ChainAttempts,
    Table(&'static str),
}

/// Jobs not yet taken, and whether chaining is under way: a thread finding no job waits
/// for the tables chaining will add instead of stopping.
struct Queue {
    jobs: VecDeque<Job>,
    chaining: bool,
}

/// Builds each of `wanted` (names from [`TABLE_NAMES`]; others are ignored) on two threads
/// and hands it to `done` on the thread that built it. Returns what `done` gave, in
/// [`TABLE_NAMES`] order, or the first error.
pub fn build_tables<T: Send>(
    inputs: TableInputs<'_>,
    wanted: &[&str],
    done: impl Fn(&'static str, DataFrame) -> T + Sync,
) -> PolarsResult<Vec<(&'static str, T)>> {
    let names: Vec<&'static str> = TABLE_NAMES
        .iter()
        .copied()
        .filter(|name| wanted.contains(name))
        .collect();
    let needs_attempts = |name: &str| matches!(name, "syns" | "attempts");
    let chaining = names.iter().any(|name| needs_attempts(name));
    // Chaining first, and the tables that wait for it are put at the front when it is done:
    // the biggest tables start as early as they can.
    let jobs = chaining
        .then_some(Job::ChainAttempts)
        .into_iter()
        .chain(
            names
                .iter()
                .filter(|name| !needs_attempts(name))
                .map(|name| Job::Table(name)),
        )
        .collect();
    let queue = Mutex::new(Queue { jobs, chaining });
    let woken = Condvar::new();
    let built: Mutex<Vec<(&'static str, PolarsResult<T>)>> = Mutex::new(Vec::new());

    let work = || {
        while let Some(job) = next_job(&queue, &woken) {
            match job {
                Job::ChainAttempts => {
                    let finished = ChainingOver {
                        queue: &queue,
                        woken: &woken,
                    };
                    inputs.attempts.of(inputs.syns);
                    let mut waiting = queue.lock().unwrap_or_else(PoisonError::into_inner);
                    for name in names.iter().rev().filter(|name| needs_attempts(name)) {
                        waiting.jobs.push_front(Job::Table(name));
                    }
                    drop(waiting);
                    drop(finished);
                }
                Job::Table(name) => {
                    let result = build(name, inputs).map(|frame| done(name, frame));
                    built
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((name, result));
                }
            }
        }
    };
    std::thread::scope(|scope| {
        let other = spawn_named(scope, "tables", work);
        work();
        join(other);
    });

    let mut built = built.into_inner().unwrap_or_else(PoisonError::into_inner);
    built.sort_by_key(|(name, _)| TABLE_NAMES.iter().position(|n| n == name));
    built
        .into_iter()
        .map(|(name, result)| result.map(|value| (name, value)))
        .collect()
}

/// Says chaining is over when dropped, after the tables that waited for it are queued or
/// when chaining panicked: a thread waiting for those tables is let go either way (a panic
/// then reaches the caller instead of leaving the other thread waiting for ever).
struct ChainingOver<'a> {
    queue: &'a Mutex<Queue>,
    woken: &'a Condvar,
}

impl Drop for ChainingOver<'_> {
    fn drop(&mut self) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.chaining = false;
        self.woken.notify_all();
    }
}

/// The next job, waiting while the queue is empty but chaining will add to it; `None` when
/// all are taken.
fn next_job(queue: &Mutex<Queue>, woken: &Condvar) -> Option<Job> {
    let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if let Some(job) = queue.jobs.pop_front() {
            return Some(job);
        }
        if !queue.chaining {
            return None;
        }
        queue = woken.wait(queue).unwrap_or_else(PoisonError::into_inner);
    }
}

/// The table `name`.
fn build(name: &str, inputs: TableInputs<'_>) -> PolarsResult<DataFrame> {
    let chained = || inputs.attempts.chained(inputs.syns);
    match name {
        "connections" => connections_frame(inputs.incarnations),
        "syns" => {
            let chained = chained();
            syns_frame_in(inputs.syns, &chained.ids, &chained.time_order)
        }
        "attempts" => attempts_frame(&chained().attempts),
        "reuse" => reuse_frame(inputs.syns),
        "nat_hosts" => nat_hosts_frame(inputs.nat),
        "ts_events" => ts_events_frame(inputs.nat),
        _ => unreachable!("{name} is not in TABLE_NAMES"),
    }
}

/// All the tables from one analysis's records.
pub struct Tables {
    pub connections: DataFrame,
    pub syns: DataFrame,
    pub attempts: DataFrame,
    pub reuse: DataFrame,
    pub nat_hosts: DataFrame,
    pub ts_events: DataFrame,
}

impl Tables {
    pub fn build(
        syns: &[SynRecord],
        incarnations: &[IncarnationRecord],
        nat: &NatReport,
    ) -> PolarsResult<Self> {
        let attempts = SharedAttempts::default();
        let inputs = TableInputs {
            syns,
            incarnations,
            nat,
            attempts: &attempts,
        };
        let mut frames = build_tables(inputs, &TABLE_NAMES, |_, frame| frame)?;
        let mut take = |name: &str| {
            let at = frames.iter().position(|(built, _)| *built == name);
            let (_, frame) = frames.swap_remove(at.expect("every table is built"));
            frame
        };
        Ok(Tables {
            connections: take("connections"),
            syns: take("syns"),
            attempts: take("attempts"),
            reuse: take("reuse"),
            nat_hosts: take("nat_hosts"),
            ts_events: take("ts_events"),
        })
    }

    pub fn get(&self, name: &str) -> Option<&DataFrame> {
        match name {
            "connections" => Some(&self.connections),
            "syns" => Some(&self.syns),
            "attempts" => Some(&self.attempts),
            "reuse" => Some(&self.reuse),
            "nat_hosts" => Some(&self.nat_hosts),
            "ts_events" => Some(&self.ts_events),
            _ => None,
        }
    }
}
