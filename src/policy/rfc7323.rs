//! The plain RFC behaviour (RFC 7323 PAWS per connection, RFC 9293 TIME-WAIT): a TIME-WAIT
//! socket never reopens for a new SYN, whatever its sequence number or TSval; the SYN is
//! answered with an ACK and the client must wait out 2MSL. A what-if, to show what Linux's
//! RFC 1122 4.2.2.13 shortcut buys.

use super::linux::LinuxPolicy;
use super::{ServerPolicy, TimeWait, TwJudgement, TwNext, TwReason, TwReply};
use crate::packet::Segment;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc7323Policy {
    pub linux: LinuxPolicy,
}

impl ServerPolicy for Rfc7323Policy {
    fn name(&self) -> &'static str {
        "rfc7323"
    }

    fn settings(&self) -> String {
        "TIME-WAIT refuses every SYN".to_string()
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
        let judgement = self.linux.on_time_wait_segment(tw, seg);
        match judgement.next {
            // Where Linux would take the SYN, the RFC keeps TIME-WAIT and acknowledges.
            TwNext::Reopened { .. } => TwJudgement {
                next: TwNext::Stay(*tw),
                reply: TwReply::Ack,
                paws_reject: false,
                reason: TwReason::TimeWaitRefusesSyn,
            },
            _ => judgement,
        }
    }
}
