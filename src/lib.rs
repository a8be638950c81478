//! pawscope: explains TCP connection failures caused by TIME_WAIT meeting PAWS behind NAT.
//!
//! Data flows one way: [`capture`] (files -> frames), [`packet`] (frames -> segments),
//! [`flow`] (segments -> connection lifecycles and SYN judgements, asking [`policy`] for the
//! kernel's rules), [`analysis`] (judgements + observed replies -> findings), [`report`].
//! [`simulate`] runs the other way: it generates captures, with their ground truth, from a
//! model of hosts, NAT and server.

pub mod analysis;
pub mod capture;
pub mod chart;
pub mod cli;
pub mod fastmap;
pub mod flow;
pub mod hash_index;
pub mod nat;
pub mod output;
pub mod packet;
pub mod pair_numbers;
pub mod policy;
pub mod prefetch;
pub mod prefetch_map;
pub mod report;
pub mod seq;
pub mod simulate;
pub mod table;
pub mod threads;
pub mod timefmt;
