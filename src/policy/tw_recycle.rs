//! Linux 2.6.32 to 4.11 with `net.ipv4.tcp_tw_recycle = 1`, simulated from the kernel's source
//! (no kernel here runs it): the server remembers each peer address's latest TSval when a
//! connection with it enters TIME_WAIT, shortens that TIME_WAIT to 3.5 RTO, and silently drops
//! a later SYN from the address whose TSval is behind the remembered one
//! (`tcp_peer_is_proven()` called from `tcp_v4_conn_request()`). Behind a NAT every host whose
//! clock is behind the last-closing host's is locked out for up to 60 s.

use std::net::IpAddr;

use super::linux::{LinuxPolicy, PAWS_24DAYS_NS, PAWS_MSL_NS};
use super::{ListenerJudgement, PeerMemory, PeerStamp, ServerPolicy, TimeWait, TwJudgement};
use crate::packet::Segment;
use crate::seq::ts_diff;

/// TCP_PAWS_WINDOW: the per-peer check tolerates a TSval one tick behind.
const PAWS_WINDOW: i32 = 1;
/// 3.5 RTO with the minimum RTO of 200 ms: how long a recycled TIME_WAIT lasts on a LAN.
pub const RECYCLE_TIME_WAIT_NS: i64 = 700_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwRecyclePolicy {
    /// The TIME_WAIT rules otherwise (rfc1337, rate limit, PAWS staleness bound).
    pub linux: LinuxPolicy,
    /// The 24-day PAWS rule of the oldest kernels (TCP_PAWS_24DAYS instead of TCP_PAWS_WRAP).
    pub paws_24days: bool,
}

impl TwRecyclePolicy {
    pub fn new(linux: LinuxPolicy, paws_24days: bool) -> Self {
        let linux = LinuxPolicy {
            time_wait_len_ns: RECYCLE_TIME_WAIT_NS,
            paws_wrap_ns: if paws_24days {
                PAWS_24DAYS_NS
            } else {
                linux.paws_wrap_ns
            },
            ..linux
        };
        TwRecyclePolicy { linux, paws_24days }
    }
}

impl ServerPolicy for TwRecyclePolicy {
    fn name(&self) -> &'static str {
        if self.paws_24days {
            "linux-tw-recycle-24day"
        } else {
            "linux-tw-recycle"
        }
    }

    fn settings(&self) -> String {
        format!("tcp_tw_recycle=1, {}", self.linux.settings())
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

    /// `tcp_time_wait()`: the short TIME_WAIT needs timestamps (`recycle_ok` requires a
    /// ts_recent_stamp); without them it is the full TCP_TIMEWAIT_LEN.
    fn time_wait_len_for(&self, ts_negotiated: bool) -> i64 {
        if ts_negotiated {
            RECYCLE_TIME_WAIT_NS
        } else {
            super::linux::TIME_WAIT_LEN_NS
        }
    }

    fn expired(&self, tw: &TimeWait, now_ns: i64) -> bool {
        self.linux.expired(tw, now_ns)
    }

    fn on_time_wait_segment(&self, tw: &TimeWait, seg: &Segment) -> TwJudgement {
        self.linux.on_time_wait_segment(tw, seg)
    }

    /// `tcp_peer_is_proven(req, dst, true)`: drop when the peer's remembered TSval is more than
    /// TCP_PAWS_WINDOW ahead of the SYN's and was stored less than TCP_PAWS_MSL ago.
    fn on_listener_syn(&self, peers: &PeerMemory, seg: &Segment) -> ListenerJudgement {
        let (Some(tsval), Some(stamp)) = (seg.tsval(), peers.get(seg.src.ip())) else {
            return ListenerJudgement::Accept;
        };
        let fresh = seg.ts_ns - stamp.stored_ns < PAWS_MSL_NS;
        if fresh && ts_diff(stamp.tsval, tsval) > PAWS_WINDOW {
            ListenerJudgement::PawsPassiveDrop
        } else {
            ListenerJudgement::Accept
        }
    }

    /// `tcp_tw_remember_stamp()`: keep the TIME_WAIT's ts_recent for the peer unless what is
    /// remembered is newer and still fresh.
    fn on_time_wait_entry(&self, peers: &mut PeerMemory, peer: IpAddr, tw: &TimeWait) {
        let Some(stored_ns) = tw.ts_recent_stamp_ns else {
            return;
        };
        let keep_old = peers.get(peer).is_some_and(|old| {
            ts_diff(old.tsval, tw.ts_recent) > 0 && stored_ns - old.stored_ns < PAWS_MSL_NS
        });
        if !keep_old {
            peers.set(
                peer,
                PeerStamp {
                    tsval: tw.ts_recent,
                    stored_ns,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::packet::{TcpFlags, TcpOptions, Timestamp};

    const SEC: i64 = 1_000_000_000;

    fn syn(at: i64, tsval: u32) -> Segment {
        let src: SocketAddr = "203.0.113.1:40000".parse().unwrap();
        Segment {
            ts_ns: at,
            src,
            dst: "203.0.113.10:80".parse().unwrap(),
            seq: 1,
            ack: 0,
            flags: TcpFlags(TcpFlags::SYN),
            payload_len: 0,
            window: 1000,
            options: TcpOptions {
                timestamp: Some(Timestamp { val: tsval, ecr: 0 }),
                ..TcpOptions::default()
            },
        }
    }

    fn remembered(tsval: u32, at: i64) -> (TwRecyclePolicy, PeerMemory) {
        let policy = TwRecyclePolicy::new(LinuxPolicy::default(), false);
        let mut peers = PeerMemory::default();
        let tw = TimeWait {
            start_ns: at,
            deadline_ns: at + RECYCLE_TIME_WAIT_NS,
            rcv_nxt: 10,
            snd_nxt: 20,
            ts_recent: tsval,
            ts_recent_stamp_ns: Some(at),
            last_oow_ack_ns: None,
        };
        policy.on_time_wait_entry(&mut peers, "203.0.113.1".parse().unwrap(), &tw);
        (policy, peers)
    }

    #[test]
    fn syn_behind_the_remembered_tsval_is_dropped_within_60_s() {
        let (policy, peers) = remembered(50_000, 0);
        assert_eq!(
            policy.on_listener_syn(&peers, &syn(SEC, 1_000)),
            ListenerJudgement::PawsPassiveDrop
        );
        // Past TCP_PAWS_MSL the memory no longer counts.
        assert_eq!(
            policy.on_listener_syn(&peers, &syn(60 * SEC, 1_000)),
            ListenerJudgement::Accept
        );
    }

    #[test]
    fn one_tick_behind_is_tolerated() {
        let (policy, peers) = remembered(50_000, 0);
        assert_eq!(
            policy.on_listener_syn(&peers, &syn(SEC, 49_999)),
            ListenerJudgement::Accept
        );
        assert_eq!(
            policy.on_listener_syn(&peers, &syn(SEC, 49_998)),
            ListenerJudgement::PawsPassiveDrop
        );
    }

    #[test]
    fn time_wait_is_short_and_the_24_day_variant_says_so() {
        let policy = TwRecyclePolicy::new(LinuxPolicy::default(), true);
        assert_eq!(policy.time_wait_len_ns(), RECYCLE_TIME_WAIT_NS);
        assert_eq!(policy.linux.paws_wrap_ns, PAWS_24DAYS_NS);
        assert!(policy.simulated());
        assert_eq!(policy.name(), "linux-tw-recycle-24day");
    }

    #[test]
    fn a_newer_fresh_memory_is_kept() {
        let (policy, mut peers) = remembered(50_000, 0);
        let older = TimeWait {
            start_ns: SEC,
            deadline_ns: 2 * SEC,
            rcv_nxt: 1,
            snd_nxt: 1,
            ts_recent: 10,
            ts_recent_stamp_ns: Some(SEC),
            last_oow_ack_ns: None,
        };
        policy.on_time_wait_entry(&mut peers, "203.0.113.1".parse().unwrap(), &older);
        assert_eq!(
            peers.get("203.0.113.1".parse().unwrap()).map(|p| p.tsval),
            Some(50_000)
        );
    }
}
