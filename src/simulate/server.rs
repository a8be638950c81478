//! The server's kernel: the ground truth every capture is generated from.
//!
//! Written from the kernel's rules (`tcp_timewait_state_process`, `tcp_paws_reject`,
//! `tcp_oow_rate_limited`, and for `tcp_tw_recycle` `tcp_conn_request`,
//! `tcp_peer_is_proven`, `tcp_remember_stamp`) and kept apart from `crate::policy` on
//! purpose: the analyzer's policy and this model are two implementations of one
//! behaviour, and the tests compare them.
//!
//! Times are microseconds since the simulation began.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use super::params::ServerKind;
use super::rng::Rng;

const US_PER_SEC: i64 = 1_000_000;
/// TCP_TIMEWAIT_LEN.
pub const TIME_WAIT_LEN_US: i64 = 60 * US_PER_SEC;
/// TIME_WAIT under tcp_tw_recycle: 3.5 RTO with the 200 ms minimum RTO of a LAN.
pub const RECYCLE_TIME_WAIT_US: i64 = 700_000;
/// TCP_PAWS_MSL: how long a per-source-IP timestamp is trusted under tcp_tw_recycle.
pub const PAWS_MSL_US: i64 = 60 * US_PER_SEC;
/// TCP_PAWS_WINDOW: how far behind the stored timestamp a SYN may be under tcp_tw_recycle.
pub const PAWS_WINDOW: i32 = 1;
/// TCP_PAWS_WRAP (current kernels): a TIME_WAIT's ts_recent is no longer trusted after this.
pub const PAWS_WRAP_US: i64 = 2147 * US_PER_SEC;
/// TCP_PAWS_24DAYS: the same limit in the kernels that had tcp_tw_recycle.
pub const PAWS_24DAYS_US: i64 = 24 * 86_400 * US_PER_SEC;
/// CONFIG_HZ: the out-of-window ACK rate limit counts jiffies of this length.
pub const HZ: i64 = 250;
/// net.ipv4.tcp_invalid_ratelimit, 500 ms, in jiffies.
pub const OOW_RATELIMIT_JIFFIES: i32 = (500 * HZ / 1000) as i32;
/// The server's TCP timestamp clock (Linux: 1 kHz).
pub const SERVER_CLOCK_HZ: i64 = 1000;

/// `after(a, b)` in sequence space.
fn after(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

/// `(s32)(a - b)`.
fn ts_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// The nstat counters the server would show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// TcpPassiveOpens: handshakes completed.
    pub passive_opens: u64,
    /// TcpExtPAWSTimewait: segments a TIME_WAIT socket rejected by PAWS.
    pub paws_timewait: u64,
    /// TcpExtTCPACKSkippedTimeWait: challenge ACKs the rate limit suppressed.
    pub ack_skipped_timewait: u64,
    /// TcpExtPAWSPassive: SYNs dropped by the per-source-IP check (tcp_tw_recycle).
    pub paws_passive: u64,
    /// TcpExtTW: sockets entering TIME_WAIT.
    pub tw: u64,
}

/// What else the model counts, for the ground truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub challenge_acks: u64,
    /// SYNs a TIME_WAIT socket rejected by the sequence rule (no PAWS failure).
    pub time_wait_seq_rejects: u64,
    /// SYNs a TIME_WAIT socket accepted as a new connection.
    pub accepted_from_time_wait: u64,
    /// TIME_WAIT sockets ended by an in-window RST.
    pub time_wait_killed_by_rst: u64,
}

/// How the server answers a SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynReply {
    /// A SYN-ACK with this ISN; `timestamps` when it carries the timestamp option.
    SynAck { isn: u32, timestamps: bool },
    /// A TIME_WAIT socket's ACK: seq = its snd_nxt, ack = its rcv_nxt, TSecr = ts_recent when
    /// the old connection used timestamps.
    ChallengeAck {
        seq: u32,
        ack: u32,
        ts_echo: Option<u32>,
    },
    /// The challenge ACK was due but rate-limited.
    RateLimited,
    /// Dropped by the tcp_tw_recycle per-source-IP check.
    Dropped,
}

/// A TIME_WAIT socket (struct tcp_timewait_sock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimeWaitSock {
    rcv_nxt: u32,
    snd_nxt: u32,
    ts_recent: u32,
    /// When ts_recent was stored; `None` when the connection did not use timestamps.
    ts_recent_stamp_us: Option<i64>,
    deadline_us: i64,
    /// Jiffies of the last challenge ACK, for the rate limit.
    last_oow_ack: Option<u32>,
}

/// The per-source-IP timestamp tcp_tw_recycle keeps (tcp_metrics' tcpm_ts, tcpm_ts_stamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PeerStamp {
    ts: u32,
    stamp_us: i64,
}

/// The server: its TIME_WAIT sockets, its per-source-IP timestamps, its counters.
#[derive(Debug)]
pub struct Server {
    kind: ServerKind,
    seed: u64,
    time_wait: HashMap<SocketAddr, TimeWaitSock>,
    peers: HashMap<IpAddr, PeerStamp>,
    clock_offsets: HashMap<IpAddr, u32>,
    isn_rng: Rng,
    pub counters: Counters,
    pub stats: Stats,
}

impl Server {
    pub fn new(kind: ServerKind, seed: u64) -> Self {
        Server {
            kind,
            seed,
            time_wait: HashMap::new(),
            peers: HashMap::new(),
            clock_offsets: HashMap::new(),
            isn_rng: Rng::new(seed, 0x5e7e_1500),
            counters: Counters::default(),
            stats: Stats::default(),
        }
    }

    /// The server's TSval towards `peer` at `now_us`: a 1 kHz clock with a random offset per
    /// address pair (Linux 4.10 and later).
    pub fn tsval(&mut self, peer: IpAddr, now_us: i64) -> u32 {
        let seed = self.seed;
        let offset = *self.clock_offsets.entry(peer).or_insert_with(|| {
            let key = match peer {
                IpAddr::V4(ip) => u64::from(u32::from(ip)),
                IpAddr::V6(ip) => {
                    let v = u128::from(ip);
                    (v as u64) ^ ((v >> 64) as u64).rotate_left(17)
                }
            };
            Rng::new(seed ^ key, 0x0c10_c000).next_u32()
        });
        offset.wrapping_add((now_us.max(0) * SERVER_CLOCK_HZ / US_PER_SEC) as u32)
    }

    /// How old a TIME_WAIT's ts_recent may be and still reject by PAWS.
    fn paws_horizon_us(&self) -> i64 {
        if self.kind.recycles() {
            PAWS_24DAYS_US
        } else {
            PAWS_WRAP_US
        }
    }

    /// The TIME_WAIT socket for `client`, if its timer has not fired by `now_us`.
    fn live_time_wait(&mut self, client: SocketAddr, now_us: i64) -> Option<&mut TimeWaitSock> {
        if self
            .time_wait
            .get(&client)
            .is_some_and(|tw| now_us >= tw.deadline_us)
        {
            self.time_wait.remove(&client);
        }
        self.time_wait.get_mut(&client)
    }

    /// The stored per-source-IP timestamp, unless the 24-day variant has aged it out.
    fn peer(&self, ip: IpAddr, now_us: i64) -> Option<PeerStamp> {
        let peer = self.peers.get(&ip).copied()?;
        let aged_out =
            self.kind == ServerKind::TwRecycle24Day && now_us - peer.stamp_us >= PAWS_24DAYS_US;
        (!aged_out).then_some(peer)
    }

    /// A SYN (no ACK) from `client` arrives.
    pub fn on_syn(
        &mut self,
        now_us: i64,
        client: SocketAddr,
        seq: u32,
        tsval: Option<u32>,
    ) -> SynReply {
        let horizon = self.paws_horizon_us();
        let mut isn_from_time_wait = None;
        if let Some(tw) = self.live_time_wait(client, now_us) {
            // Timestamp options are only parsed when the old connection used them.
            let seen = tw.ts_recent_stamp_us.and(tsval);
            let paws_reject = match (tw.ts_recent_stamp_us, seen) {
                (Some(stamp), Some(v)) => {
                    ts_diff(tw.ts_recent, v) > 0 && tw.ts_recent != 0 && now_us - stamp < horizon
                }
                _ => false,
            };
            let newer = seen.is_some_and(|v| ts_diff(tw.ts_recent, v) < 0);
            if !paws_reject && (after(seq, tw.rcv_nxt) || newer) {
                let mut isn = tw.snd_nxt.wrapping_add(65535 + 2);
                if isn == 0 {
                    isn = 1;
                }
                isn_from_time_wait = Some(isn);
            } else {
                let jiffies = (now_us / (US_PER_SEC / HZ)) as u32;
                if paws_reject {
                    // A PAWS failure re-arms the full TIME_WAIT timer.
                    tw.deadline_us = now_us + TIME_WAIT_LEN_US;
                }
                let limited = tw.last_oow_ack.is_some_and(|last| {
                    (0..OOW_RATELIMIT_JIFFIES).contains(&ts_diff(jiffies, last))
                });
                let reply = if limited {
                    SynReply::RateLimited
                } else {
                    tw.last_oow_ack = Some(jiffies);
                    SynReply::ChallengeAck {
                        seq: tw.snd_nxt,
                        ack: tw.rcv_nxt,
                        ts_echo: tw.ts_recent_stamp_us.map(|_| tw.ts_recent),
                    }
                };
                if paws_reject {
                    self.counters.paws_timewait += 1;
                } else {
                    self.stats.time_wait_seq_rejects += 1;
                }
                match reply {
                    SynReply::RateLimited => self.counters.ack_skipped_timewait += 1,
                    _ => self.stats.challenge_acks += 1,
                }
                return reply;
            }
        }
        if isn_from_time_wait.is_some() {
            self.time_wait.remove(&client);
            self.stats.accepted_from_time_wait += 1;
        }
        // The listener. A SYN that came through a TIME_WAIT socket skips the per-IP check:
        // the TIME_WAIT rules already judged it.
        if self.kind.recycles()
            && isn_from_time_wait.is_none()
            && let Some(v) = tsval
            && let Some(peer) = self.peer(client.ip(), now_us)
            && now_us < peer.stamp_us + PAWS_MSL_US
            && ts_diff(peer.ts, v) > PAWS_WINDOW
        {
            self.counters.paws_passive += 1;
            return SynReply::Dropped;
        }
        let isn = isn_from_time_wait.unwrap_or_else(|| self.isn_rng.next_u32());
        SynReply::SynAck {
            isn,
            timestamps: tsval.is_some() && self.kind != ServerKind::NoTimestamps,
        }
    }

    /// The client's ACK completed a handshake.
    pub fn on_established(&mut self) {
        self.counters.passive_opens += 1;
    }

    /// The server closed first and has the client's FIN, which acknowledged the server's:
    /// it enters TIME_WAIT. `ts_recent` is the FIN's TSval when timestamps were negotiated.
    pub fn on_time_wait(
        &mut self,
        now_us: i64,
        client: SocketAddr,
        rcv_nxt: u32,
        snd_nxt: u32,
        ts_recent: Option<u32>,
    ) {
        self.counters.tw += 1;
        let mut len = TIME_WAIT_LEN_US;
        if self.kind.recycles()
            && let Some(ts) = ts_recent
        {
            // tcp_remember_stamp(): keep the newer timestamp, or replace one older than
            // TCP_PAWS_MSL. Either way the TIME_WAIT is short.
            let replace = match self.peer(client.ip(), now_us) {
                Some(old) => ts_diff(old.ts, ts) <= 0 || now_us - old.stamp_us > PAWS_MSL_US,
                None => true,
            };
            if replace {
                self.peers.insert(
                    client.ip(),
                    PeerStamp {
                        ts,
                        stamp_us: now_us,
                    },
                );
            }
            len = RECYCLE_TIME_WAIT_US;
        }
        self.time_wait.insert(
            client,
            TimeWaitSock {
                rcv_nxt,
                snd_nxt,
                ts_recent: ts_recent.unwrap_or(0),
                ts_recent_stamp_us: ts_recent.map(|_| now_us),
                deadline_us: now_us + len,
                last_oow_ack: None,
            },
        );
    }

    /// A RST (no timestamp) from `client`: in window, it ends the TIME_WAIT (tcp_rfc1337 = 0).
    pub fn on_rst(&mut self, now_us: i64, client: SocketAddr, seq: u32) {
        if self
            .live_time_wait(client, now_us)
            .is_some_and(|tw| tw.rcv_nxt == seq)
        {
            self.time_wait.remove(&client);
            self.stats.time_wait_killed_by_rst += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = US_PER_SEC;

    fn client(port: u16) -> SocketAddr {
        SocketAddr::new("203.0.113.1".parse().unwrap(), port)
    }

    /// A server holding TIME_WAIT for client port 40000 since t = 10 s: rcv_nxt 1000,
    /// snd_nxt 5000, ts_recent 50000 (when `ts`).
    fn server_in_time_wait(kind: ServerKind, ts: bool) -> Server {
        let mut s = Server::new(kind, 1);
        s.on_time_wait(10 * SEC, client(40000), 1000, 5000, ts.then_some(50_000));
        s
    }

    #[test]
    fn linux_accepts_a_newer_tsval_with_isn_snd_nxt_plus_65537() {
        let mut s = server_in_time_wait(ServerKind::Linux, true);
        let reply = s.on_syn(11 * SEC, client(40000), 10, Some(50_001));
        assert_eq!(
            reply,
            SynReply::SynAck {
                isn: 5000 + 65537,
                timestamps: true
            }
        );
        assert_eq!(s.stats.accepted_from_time_wait, 1);
        // The socket is gone: the next SYN goes to the listener with a fresh ISN.
        assert!(matches!(
            s.on_syn(11 * SEC, client(40000), 10, Some(1)),
            SynReply::SynAck { isn, .. } if isn != 5000 + 65537
        ));
    }

    #[test]
    fn linux_challenges_an_older_tsval_and_the_rst_kills_time_wait() {
        let mut s = server_in_time_wait(ServerKind::Linux, true);
        let reply = s.on_syn(11 * SEC, client(40000), 2000, Some(49_999));
        assert_eq!(
            reply,
            SynReply::ChallengeAck {
                seq: 5000,
                ack: 1000,
                ts_echo: Some(50_000)
            }
        );
        assert_eq!(s.counters.paws_timewait, 1);
        // A RST off the window does nothing; the one at rcv_nxt ends the socket.
        s.on_rst(11 * SEC, client(40000), 1001);
        assert_eq!(s.stats.time_wait_killed_by_rst, 0);
        s.on_rst(11 * SEC, client(40000), 1000);
        assert_eq!(s.stats.time_wait_killed_by_rst, 1);
        assert!(matches!(
            s.on_syn(11 * SEC, client(40000), 2000, Some(49_999)),
            SynReply::SynAck { .. }
        ));
    }

    #[test]
    fn linux_rate_limits_challenge_acks_per_socket() {
        let mut s = server_in_time_wait(ServerKind::Linux, true);
        let at = 11 * SEC;
        assert!(matches!(
            s.on_syn(at, client(40000), 2000, Some(1)),
            SynReply::ChallengeAck { .. }
        ));
        // 124 jiffies (496 ms) later: suppressed; 125 jiffies later: sent.
        assert_eq!(
            s.on_syn(at + 496_000, client(40000), 2000, Some(1)),
            SynReply::RateLimited
        );
        assert!(matches!(
            s.on_syn(at + 500_000, client(40000), 2000, Some(1)),
            SynReply::ChallengeAck { .. }
        ));
        assert_eq!(s.counters.ack_skipped_timewait, 1);
        assert_eq!(s.counters.paws_timewait, 3);
        assert_eq!(s.stats.challenge_acks, 2);
    }

    #[test]
    fn sequence_decides_without_timestamps() {
        let mut s = server_in_time_wait(ServerKind::NoTimestamps, false);
        // seq == rcv_nxt is not after it: rejected, without a PAWS count.
        assert_eq!(
            s.on_syn(11 * SEC, client(40000), 1000, None),
            SynReply::ChallengeAck {
                seq: 5000,
                ack: 1000,
                ts_echo: None
            }
        );
        assert_eq!(s.counters.paws_timewait, 0);
        assert_eq!(s.stats.time_wait_seq_rejects, 1);
        // A TSval is not even looked at when the old connection had none.
        let mut s = server_in_time_wait(ServerKind::Linux, false);
        assert_eq!(
            s.on_syn(11 * SEC, client(40000), 1001, Some(1)),
            SynReply::SynAck {
                isn: 5000 + 65537,
                timestamps: true
            }
        );
        let mut s = server_in_time_wait(ServerKind::NoTimestamps, false);
        assert_eq!(
            s.on_syn(11 * SEC, client(40000), 1001, Some(1)),
            SynReply::SynAck {
                isn: 5000 + 65537,
                timestamps: false
            }
        );
    }

    #[test]
    fn time_wait_expires_after_60_s_and_paws_rearms_it() {
        let mut s = server_in_time_wait(ServerKind::Linux, true);
        // PAWS failure at 69 s re-arms until 129 s.
        assert!(matches!(
            s.on_syn(69 * SEC, client(40000), 2000, Some(1)),
            SynReply::ChallengeAck { .. }
        ));
        assert!(matches!(
            s.on_syn(128 * SEC, client(40000), 2000, Some(1)),
            SynReply::ChallengeAck { .. }
        ));
        let mut s = server_in_time_wait(ServerKind::Linux, true);
        assert!(matches!(
            s.on_syn(70 * SEC, client(40000), 2000, Some(1)),
            SynReply::SynAck { .. }
        ));
    }

    #[test]
    fn recycle_drops_older_tsvals_from_the_same_ip_for_60_s() {
        let mut s = server_in_time_wait(ServerKind::TwRecycle, true);
        // The tuple's own TIME_WAIT is short: 1 s.
        // Another port, same IP, older TSval: dropped silently.
        assert_eq!(
            s.on_syn(11 * SEC, client(40001), 7, Some(49_998)),
            SynReply::Dropped
        );
        // Within the window of 1 tick: accepted.
        assert!(matches!(
            s.on_syn(11 * SEC, client(40001), 7, Some(49_999)),
            SynReply::SynAck { .. }
        ));
        // No TSval: not checked.
        assert!(matches!(
            s.on_syn(11 * SEC, client(40002), 7, None),
            SynReply::SynAck { .. }
        ));
        // 60 s after the stamp: no longer checked.
        assert!(matches!(
            s.on_syn(70 * SEC, client(40003), 7, Some(1)),
            SynReply::SynAck { .. }
        ));
        assert_eq!(s.counters.paws_passive, 1);
        // Another source IP is not affected.
        let other = SocketAddr::new("203.0.113.2".parse().unwrap(), 40000);
        assert!(matches!(
            s.on_syn(12 * SEC, other, 7, Some(1)),
            SynReply::SynAck { .. }
        ));
    }

    #[test]
    fn recycle_time_wait_lasts_700_ms_with_timestamps_and_60_s_without() {
        let mut s = server_in_time_wait(ServerKind::TwRecycle, true);
        assert!(matches!(
            s.on_syn(10 * SEC + 699_999, client(40000), 7, Some(60_000)),
            SynReply::SynAck { isn, .. } if isn == 5000 + 65537
        ));
        let mut s = server_in_time_wait(ServerKind::TwRecycle, true);
        // Past 700 ms the tuple is free, and a newer TSval passes the per-IP check.
        assert!(matches!(
            s.on_syn(10 * SEC + 700_000, client(40000), 7, Some(60_000)),
            SynReply::SynAck { isn, .. } if isn != 5000 + 65537
        ));
        let mut s = server_in_time_wait(ServerKind::TwRecycle, false);
        assert!(matches!(
            s.on_syn(69 * SEC, client(40000), 7, None),
            SynReply::ChallengeAck { .. }
        ));
    }

    #[test]
    fn recycle_keeps_the_newer_stored_timestamp() {
        let mut s = Server::new(ServerKind::TwRecycle, 1);
        s.on_time_wait(10 * SEC, client(40000), 1, 1, Some(50_000));
        // An older TSval closing later does not replace it ...
        s.on_time_wait(20 * SEC, client(40001), 1, 1, Some(100));
        assert_eq!(
            s.on_syn(30 * SEC, client(40002), 7, Some(200)),
            SynReply::Dropped
        );
        // ... until the stored one is older than 60 s.
        s.on_time_wait(71 * SEC, client(40003), 1, 1, Some(300));
        assert!(matches!(
            s.on_syn(72 * SEC, client(40004), 7, Some(300)),
            SynReply::SynAck { .. }
        ));
        assert_eq!(
            s.on_syn(72 * SEC, client(40005), 7, Some(298)),
            SynReply::Dropped
        );
    }

    #[test]
    fn recycle_24day_ignores_stored_timestamps_older_than_24_days() {
        for (kind, aged_out) in [
            (ServerKind::TwRecycle, false),
            (ServerKind::TwRecycle24Day, true),
        ] {
            let mut s = Server::new(kind, 1);
            s.on_time_wait(10 * SEC, client(40000), 1, 1, Some(50_000));
            let later = 10 * SEC + PAWS_24DAYS_US;
            assert_eq!(s.peer(client(0).ip(), later).is_none(), aged_out);
            assert!(s.peer(client(0).ip(), later - 1).is_some());
        }
    }

    #[test]
    fn server_clock_runs_at_1_khz_per_peer() {
        let mut s = Server::new(ServerKind::Linux, 5);
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        let a0 = s.tsval(a, 0);
        assert_eq!(s.tsval(a, 2 * SEC).wrapping_sub(a0), 2000);
        assert_ne!(s.tsval(b, 0), a0);
    }
}
