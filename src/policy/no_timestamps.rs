//! What if the server (or a load balancer in front of it) did not negotiate timestamps:
//! TIME_WAIT judges every SYN by sequence number alone, as Linux does when `tw_ts_recent_stamp`
//! is 0. A what-if: the capture's own server may well have used timestamps.

use super::linux::LinuxPolicy;
use super::{ServerPolicy, TimeWait, TwJudgement};
use crate::packet::Segment;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoTimestampsPolicy {
    pub linux: LinuxPolicy,
}

impl ServerPolicy for NoTimestampsPolicy {
    fn name(&self) -> &'static str {
        "no-timestamps"
    }

    fn settings(&self) -> String {
        format!("tcp_timestamps=0, {}", self.linux.settings())
    }

    fn tracking_key(&self) -> String {
        format!("{} {:?}", self.name(), self.linux.beyond_time_wait())
    }

    fn simulated(&self) -> bool {
        true
    }

    fn time_wait_len_ns(&self) -> i64 {
        self.linux.time_wait_len_ns
    }

    fn expired(&self, tw: &TimeWait, now_ns: i64) -> bool {
        self.linux.expired(tw, now_ns)
    }

    fn on_time_wait_segment(&self, tw: &TimeWait, seg: &Segment) -> TwJudgement {
        // Without negotiated timestamps the socket keeps no ts_recent_stamp, and options are
        // not even parsed.
        let without = TimeWait {
            ts_recent: 0,
            ts_recent_stamp_ns: None,
            ..*tw
        };
        self.linux.on_time_wait_segment(&without, seg)
    }
}
