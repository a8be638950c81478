//! Current Linux (4.12 and later, checked against 6.18): the server's TIME_WAIT socket.
//!
//! Mirrors `tcp_timewait_state_process()` (net/ipv4/tcp_minisocks.c) for a socket in the true
//! TIME_WAIT substate, `tcp_paws_check()`/`tcp_paws_reject()` (include/net/tcp.h) and
//! `tcp_oow_rate_limited()` (net/ipv4/tcp_input.c).

use super::{ServerPolicy, TimeWait, TwJudgement, TwNext, TwReason, TwReply};
use crate::packet::Segment;
use crate::seq::{after, ts_diff};

const NS_PER_SEC: i64 = 1_000_000_000;
/// TCP_TIMEWAIT_LEN.
pub const TIME_WAIT_LEN_NS: i64 = 60 * NS_PER_SEC;
/// TCP_PAWS_WRAP: a ts_recent older than this is no longer trusted (INT_MAX / 1e6 seconds).
pub const PAWS_WRAP_NS: i64 = 2147 * NS_PER_SEC;
/// TCP_PAWS_MSL: RSTs are exempt from PAWS once ts_recent is this old.
pub const PAWS_MSL_NS: i64 = 60 * NS_PER_SEC;
/// net.ipv4.tcp_invalid_ratelimit default: one out-of-window ACK per socket per 500 ms.
pub const OOW_RATELIMIT_NS: i64 = 500_000_000;

/// Settings of the server whose behaviour is predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinuxPolicy {
    /// TIME_WAIT length (TCP_TIMEWAIT_LEN, 60 s; `--tw-len`).
    pub time_wait_len_ns: i64,
    /// net.ipv4.tcp_rfc1337: when set, an in-window RST does not kill TIME_WAIT.
    pub rfc1337: bool,
}

impl Default for LinuxPolicy {
    fn default() -> Self {
        LinuxPolicy {
            time_wait_len_ns: TIME_WAIT_LEN_NS,
            rfc1337: false,
        }
    }
}

impl LinuxPolicy {
    /// The segment's TSval as the TIME_WAIT socket sees it: options are only parsed when the
    /// old connection used timestamps (`tw_ts_recent_stamp != 0`).
    fn seen_tsval(tw: &TimeWait, seg: &Segment) -> Option<u32> {
        tw.ts_recent_stamp_ns.and(seg.tsval())
    }

    /// `tcp_paws_reject()` with a PAWS window of 0, as called from TIME_WAIT.
    pub fn paws_reject(tw: &TimeWait, seg: &Segment) -> bool {
        let (Some(stamp), Some(tsval)) = (tw.ts_recent_stamp_ns, Self::seen_tsval(tw, seg)) else {
            return false;
        };
        // tcp_paws_check(): a TSval not older than ts_recent always passes.
        if ts_diff(tw.ts_recent, tsval) <= 0 {
            return false;
        }
        // ... so does any TSval once ts_recent is too old to compare with (TCP_PAWS_WRAP).
        let age = seg.ts_ns - stamp;
        if age >= PAWS_WRAP_NS {
            return false;
        }
        // ... and any TSval when ts_recent is 0 (some stacks send TSval 0 in SYNs).
        if tw.ts_recent == 0 {
            return false;
        }
        // tcp_paws_reject(): a RST is let through once ts_recent is older than TCP_PAWS_MSL.
        if seg.flags.rst() && age >= PAWS_MSL_NS {
            return false;
        }
        true
    }

    /// `tcp_oow_rate_limited()`: may the socket send an out-of-window ACK now?
    /// Returns whether it may, and the socket's last-ACK time afterwards.
    fn oow_ack_allowed(tw: &TimeWait, seg: &Segment) -> (bool, Option<i64>) {
        // Data segments without SYN are not likely part of an ACK loop: never limited,
        // and they leave the rate-limit clock alone.
        if seg.end_seq() != seg.seq && !seg.flags.syn() {
            return (true, tw.last_oow_ack_ns);
        }
        match tw.last_oow_ack_ns {
            Some(last) if (0..OOW_RATELIMIT_NS).contains(&(seg.ts_ns - last)) => {
                (false, Some(last))
            }
            _ => (true, Some(seg.ts_ns)),
        }
    }
}

impl ServerPolicy for LinuxPolicy {
    fn name(&self) -> &'static str {
        "linux"
    }

    fn simulated(&self) -> bool {
        false
    }

    fn time_wait_len_ns(&self) -> i64 {
        self.time_wait_len_ns
    }

    fn expired(&self, tw: &TimeWait, now_ns: i64) -> bool {
        now_ns >= tw.deadline_ns
    }

    fn on_time_wait_segment(&self, tw: &TimeWait, seg: &Segment) -> TwJudgement {
        let paws_reject = Self::paws_reject(tw, seg);
        let tsval = Self::seen_tsval(tw, seg);
        let rst = seg.flags.rst();
        let mut next = *tw;

        // In-window segment: it may only be a RST or a bare ACK.
        if !paws_reject && seg.seq == tw.rcv_nxt && (seg.seq == seg.end_seq() || rst) {
            let reason = if rst {
                if !self.rfc1337 {
                    return TwJudgement {
                        next: TwNext::Killed,
                        reply: TwReply::Nothing,
                        paws_reject,
                        reason: TwReason::InWindowRst,
                    };
                }
                TwReason::InWindowRstIgnored
            } else {
                next.deadline_ns = seg.ts_ns + self.time_wait_len_ns;
                TwReason::InWindowAck
            };
            if let Some(tsval) = tsval {
                next.ts_recent = tsval;
                next.ts_recent_stamp_ns = Some(seg.ts_ns);
            }
            return TwJudgement {
                next: TwNext::Stay(next),
                reply: TwReply::Nothing,
                paws_reject,
                reason,
            };
        }

        // A new SYN is accepted if it is not an old duplicate (RFC 1122 4.2.2.13).
        if seg.is_syn() && !paws_reject {
            let newer_ts = tsval.is_some_and(|v| ts_diff(tw.ts_recent, v) < 0);
            if after(seg.seq, tw.rcv_nxt) || newer_ts {
                let mut server_isn = tw.snd_nxt.wrapping_add(65535 + 2);
                if server_isn == 0 {
                    server_isn = 1;
                }
                return TwJudgement {
                    next: TwNext::Reopened { server_isn },
                    reply: TwReply::ToListener,
                    paws_reject,
                    reason: if after(seg.seq, tw.rcv_nxt) {
                        TwReason::SeqAfterRcvNxt
                    } else {
                        TwReason::TsvalNewer
                    },
                };
            }
        }

        let reason = if paws_reject {
            TwReason::PawsOlderTsval
        } else if seg.is_syn() {
            TwReason::SeqNotAfterRcvNxt
        } else {
            TwReason::OutOfWindow
        };
        if rst {
            return TwJudgement {
                next: TwNext::Stay(next),
                reply: TwReply::Nothing,
                paws_reject,
                reason,
            };
        }
        // An ACK-less SYN may be a new connection with a random ISN below rcv_nxt: only
        // PAWS failures and ACKs restart the timer.
        if paws_reject || seg.flags.ack() {
            next.deadline_ns = seg.ts_ns + self.time_wait_len_ns;
        }
        let (allowed, last_oow_ack_ns) = Self::oow_ack_allowed(tw, seg);
        next.last_oow_ack_ns = last_oow_ack_ns;
        let reply = if allowed {
            TwReply::Ack
        } else {
            TwReply::RateLimited
        };
        TwJudgement {
            next: TwNext::Stay(next),
            reply,
            paws_reject,
            reason,
        }
    }
}
