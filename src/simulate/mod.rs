//! `pawscope simulate`: synthetic captures of hosts behind NAT connecting to a server that
//! holds TIME_WAIT, written with the ground truth they were generated from.
//!
//! `params` checks the parameters, `hosts` models the hosts' timestamp clocks and the NAT's
//! port pools, `server` the server's kernel (current Linux, `tcp_tw_recycle`, no
//! timestamps), `engine` the clients' behaviour and the time order of events, `pcap` the
//! packets and the file, `truth` the ground truth.

mod engine;
mod hosts;
mod params;
mod pcap;
mod rng;
mod server;
mod truth;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub use params::{
    Arrivals, ClockOffsets, CloseSide, MAX_PACKETS, ParamError, Params, PortOrder, RawParams,
    ServerKind, TimestampMode,
};
pub use truth::Truth;

/// The command line's defaults, as text.
pub mod params_default {
    pub use super::params::{
        DEFAULT_ARRIVALS as ARRIVALS, DEFAULT_CLOCK_OFFSETS as CLOCK_OFFSETS,
        DEFAULT_CLOCK_RATES as CLOCK_RATES, DEFAULT_CLOSE as CLOSE, DEFAULT_DURATION as DURATION,
        DEFAULT_HOSTS as HOSTS, DEFAULT_NAT_ADDRS as NAT_ADDRS, DEFAULT_PORT_ORDER as PORT_ORDER,
        DEFAULT_PORTS as PORTS, DEFAULT_RATE as RATE, DEFAULT_SEED as SEED,
        DEFAULT_SERVER as SERVER, DEFAULT_SERVER_ADDR as SERVER_ADDR,
        DEFAULT_TIMESTAMPS as TIMESTAMPS,
    };
}

use engine::{Engine, START_US};
use pcap::{PcapWriter, WriteError};
use rng::Rng;

/// Why a simulation wrote nothing.
#[derive(Debug)]
pub enum SimError {
    /// The run needed more than [`MAX_PACKETS`] packets.
    TooManyPackets(u64),
    /// A file could not be written.
    Io { path: PathBuf, message: String },
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::TooManyPackets(limit) => write!(
                f,
                "the simulation needs more than {limit} packets; lower --rate or --duration"
            ),
            SimError::Io { path, message } => write!(f, "{}: {message}", path.display()),
        }
    }
}

impl std::error::Error for SimError {}

/// Runs the simulation, writing the pcap to `out`; returns the ground truth and `out`.
pub fn generate<W: Write>(params: &Params, out: W) -> Result<(Truth, W), SimError> {
    let io_error = |e: std::io::Error| SimError::Io {
        path: PathBuf::from("<capture>"),
        message: e.to_string(),
    };
    let writer = PcapWriter::new(out, MAX_PACKETS).map_err(io_error)?;
    let (hosts, nats) = hosts::build(params, &mut Rng::new(params.seed, 0x4057_5000));
    let (writer, outcome) =
        Engine::new(params, hosts, nats, writer)
            .run()
            .map_err(|e| match e {
                WriteError::TooMany(limit) => SimError::TooManyPackets(limit),
                WriteError::Io(e) => io_error(e),
            })?;
    let truth = Truth::build(params, &outcome, writer.packets(), START_US);
    Ok((truth, writer.into_inner()))
}

/// A temporary name beside `target`, for writing it whole before it appears.
fn temp_beside(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "simulate".into());
    target.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes the capture to `pcap_path` and, when asked, the truth to `truth_path`. Both are
/// written under temporary names and renamed into place only when both are complete.
pub fn simulate_to_files(
    params: &Params,
    pcap_path: &Path,
    truth_path: Option<&Path>,
) -> Result<Truth, SimError> {
    let pcap_temp = temp_beside(pcap_path);
    let truth_temp = truth_path.map(temp_beside);
    let result = (|| {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e: std::io::Error| SimError::Io {
                path,
                message: e.to_string(),
            }
        };
        let file = File::create(&pcap_temp).map_err(io(pcap_path))?;
        let (truth, mut out) =
            generate(params, BufWriter::with_capacity(1 << 20, file)).map_err(|e| match e {
                SimError::Io { message, .. } => SimError::Io {
                    path: pcap_path.to_path_buf(),
                    message,
                },
                other => other,
            })?;
        out.flush().map_err(io(pcap_path))?;
        drop(out);
        if let (Some(temp), Some(target)) = (&truth_temp, truth_path) {
            std::fs::write(temp, truth.to_json()).map_err(io(target))?;
        }
        std::fs::rename(&pcap_temp, pcap_path).map_err(io(pcap_path))?;
        if let (Some(temp), Some(target)) = (&truth_temp, truth_path) {
            std::fs::rename(temp, target).map_err(io(target))?;
        }
        Ok(truth)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&pcap_temp);
        if let Some(temp) = &truth_temp {
            let _ = std::fs::remove_file(temp);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(edit: impl FnOnce(&mut RawParams)) -> Params {
        let mut raw = RawParams::default();
        edit(&mut raw);
        Params::from_raw(&raw).unwrap()
    }

    /// (seconds, microseconds) of every record.
    fn record_times(pcap: &[u8]) -> Vec<i64> {
        let mut times = Vec::new();
        let mut at = 24;
        while at + 16 <= pcap.len() {
            let field = |o: usize| u32::from_le_bytes(pcap[at + o..at + o + 4].try_into().unwrap());
            times.push(i64::from(field(0)) * 1_000_000 + i64::from(field(4)));
            at += 16 + field(8) as usize;
        }
        assert_eq!(at, pcap.len(), "records end where the file does");
        times
    }

    #[test]
    fn same_parameters_same_bytes_and_records_in_time_order() {
        let p = params(|r| {
            r.rate = "40".into();
            r.duration = "5".into();
            r.timestamps = "mixed".into();
        });
        let (truth, bytes) = generate(&p, Vec::new()).unwrap();
        let (again, bytes_again) = generate(&p, Vec::new()).unwrap();
        assert_eq!(truth, again);
        assert!(bytes == bytes_again);
        let times = record_times(&bytes);
        assert_eq!(times.len() as u64, truth.packets);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(times[0] >= START_US);
    }

    #[test]
    fn counts_add_up() {
        for server in ["linux", "tw-recycle", "no-timestamps"] {
            let p = params(|r| {
                r.rate = "30".into();
                r.duration = "10".into();
                r.server = server.into();
            });
            let (t, _) = generate(&p, Vec::new()).unwrap();
            assert_eq!(
                t.connects.attempted,
                t.connects.established + t.connects.failed
            );
            assert_eq!(
                t.syns.sent,
                t.syns.answered_syn_ack + t.syns.answered_challenge_ack + t.syns.unanswered
            );
            assert_eq!(t.syns.answered_challenge_ack, t.challenge_acks.sent);
            assert_eq!(t.challenge_acks.sent, t.client_rsts);
            assert_eq!(t.server_counters.TcpPassiveOpens, t.connects.established);
            // Every established connection closes with the server first: all enter TIME_WAIT.
            assert_eq!(t.server_counters.TcpExtTW, t.connects.established);
            // Connects accepted after a challenge ACK: the client's RST ended the TIME_WAIT.
            assert_eq!(t.time_wait.killed_by_rst, t.client_rsts);
        }
    }

    #[test]
    fn clients_closing_first_leave_the_server_no_time_wait() {
        let p = params(|r| {
            r.close = "client".into();
            r.rate = "40".into();
            r.duration = "5".into();
        });
        let (t, _) = generate(&p, Vec::new()).unwrap();
        assert_eq!(t.server_counters.TcpExtTW, 0);
        assert_eq!(t.challenge_acks.sent, 0);
        assert!(t.connects.established > 0);
    }

    #[test]
    fn files_are_renamed_into_place() {
        let dir = std::env::temp_dir().join(format!("pawscope-sim-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pcap = dir.join("x.pcap");
        let truth = dir.join("x.json");
        let p = params(|r| r.duration = "1".into());
        let t = simulate_to_files(&p, &pcap, Some(&truth)).unwrap();
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&truth).unwrap()).unwrap();
        assert_eq!(written["packets"], t.packets);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
