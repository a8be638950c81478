//! Server settings that change the verdicts: what the user stated, what the capture shows,
//! and the default otherwise, each with its evidence.

use std::collections::BTreeMap;

use super::Analysis;
use crate::fastmap::FastMap;
use crate::flow::{FoundState, ObservedReply, SynRecord, TupleKey, Verdict};

/// Where a setting's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Given,
    Inferred,
    Default,
}

impl Source {
    pub fn key(&self) -> &'static str {
        match self {
            Source::Given => "given",
            Source::Inferred => "inferred",
            Source::Default => "default",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub value: String,
    pub source: Source,
    pub evidence: String,
    /// The capture contradicts the value (when it was given or defaulted).
    pub contradicted: bool,
}

/// What the capture says about the challenge-ACK rate limit: the longest spacing after which
/// a rejected SYN still got no ACK, and the shortest after which it got one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitEvidence {
    pub silent_below_ns: Option<i64>,
    pub answered_from_ns: Option<i64>,
    pub pairs: u64,
}

impl RateLimitEvidence {
    /// Adds a SYN judged on a TIME_WAIT socket; `last` remembers, per tuple, the socket
    /// (rcv_nxt, ts_recent) and when it last sent a challenge ACK. SYNs of one tuple arrive
    /// in time order.
    pub fn add(&mut self, syn: &SynRecord, last: &mut FastMap<TupleKey, (u32, u32, i64)>) {
        let FoundState::TimeWait {
            rcv_nxt, ts_recent, ..
        } = syn.found
        else {
            return;
        };
        if !matches!(syn.verdict, Verdict::PawsReject | Verdict::SeqReject) {
            return;
        }
        if let Some(&(r, t, ack_at)) = last.get(&syn.tuple)
            && (r, t) == (rcv_nxt, ts_recent)
        {
            let gap = syn.ts_ns - ack_at;
            self.pairs += 1;
            match syn.reply {
                ObservedReply::ChallengeAck => {
                    self.answered_from_ns = Some(self.answered_from_ns.map_or(gap, |g| g.min(gap)));
                }
                ObservedReply::None => {
                    self.silent_below_ns = Some(self.silent_below_ns.map_or(gap, |g| g.max(gap)));
                }
                _ => {}
            }
        }
        if syn.reply == ObservedReply::ChallengeAck {
            last.insert(
                syn.tuple,
                (
                    rcv_nxt,
                    ts_recent,
                    syn.ts_ns + syn.reply_delay_ns.unwrap_or(0),
                ),
            );
        }
    }
}

/// Settings as JSON-ready facts: `given` are the user's `--sysctl` values.
pub fn server_settings(analysis: &Analysis) -> BTreeMap<&'static str, Setting> {
    let given = &analysis.given_settings;
    let rate_limit = &analysis.syns.rate_limit;
    let mut out = BTreeMap::new();
    let v = &analysis.syns.verdicts;
    let a = &analysis.syns.agreement;

    let rfc1337 = if analysis.settings.contains("tcp_rfc1337=1") {
        "1"
    } else {
        "0"
    };
    let evidence = format!(
        "judged both ways, {} disagreement(s) with the replies seen under tcp_rfc1337={rfc1337}; {} SYNs met TIME_WAIT",
        a.disagreements(),
        v.paws_reject + v.seq_reject + analysis.flow.time_wait.reopened_by_syn
    );
    out.insert(
        "net.ipv4.tcp_rfc1337",
        match given.get("net.ipv4.tcp_rfc1337") {
            Some(value) => Setting {
                value: value.clone(),
                source: Source::Given,
                evidence: format!(
                    "{} disagreement(s) with the replies seen",
                    a.disagreements()
                ),
                contradicted: a.disagreements() > 0,
            },
            None if analysis.settings_inferred && v.paws_reject + v.seq_reject > 0 => Setting {
                value: rfc1337.into(),
                source: Source::Inferred,
                evidence,
                contradicted: false,
            },
            None => Setting {
                value: rfc1337.into(),
                source: Source::Default,
                evidence: "no SYN met a TIME_WAIT socket: nothing shows the setting".into(),
                contradicted: false,
            },
        },
    );

    let ms = |ns: Option<i64>| ns.map_or("-".to_string(), |n| format!("{:.0} ms", n as f64 / 1e6));
    let range = format!(
        "{} SYN pairs on one TIME_WAIT socket: silent up to {}, answered from {}",
        rate_limit.pairs,
        ms(rate_limit.silent_below_ns),
        ms(rate_limit.answered_from_ns)
    );
    let given_limit = given.get("net.ipv4.tcp_invalid_ratelimit");
    let limit_ms: i64 = given_limit.and_then(|v| v.parse().ok()).unwrap_or(500);
    let fits = |ms: i64| {
        let ns = ms * 1_000_000;
        rate_limit.silent_below_ns.is_none_or(|s| s < ns)
            && rate_limit
                .answered_from_ns
                .is_none_or(|a| a >= ns - 4_000_000)
    };
    out.insert(
        "net.ipv4.tcp_timestamps",
        timestamps_setting(analysis, given.get("net.ipv4.tcp_timestamps")),
    );
    out.insert("nat_port_reuse", nat_reuse_setting(analysis));
    out.insert(
        "time_wait_len_secs",
        Setting {
            value: format!("{}", analysis.time_wait_len_ns as f64 / 1e9),
            source: if given.contains_key("time_wait_len_secs") {
                Source::Given
            } else {
                Source::Default
            },
            evidence: "TCP_TIMEWAIT_LEN is compiled into Linux; other systems differ (--tw-len)"
                .into(),
            contradicted: false,
        },
    );
    out.insert(
        "net.ipv4.tcp_invalid_ratelimit",
        Setting {
            value: limit_ms.to_string(),
            source: if given_limit.is_some() {
                Source::Given
            } else if rate_limit.pairs > 0 {
                Source::Inferred
            } else {
                Source::Default
            },
            evidence: range,
            contradicted: !fits(limit_ms),
        },
    );

    out
}

/// Whether the server answers timestamped SYNs with timestamps (net.ipv4.tcp_timestamps).
fn timestamps_setting(analysis: &Analysis, given: Option<&String>) -> Setting {
    let asked = analysis.flow.synacks_to_ts_syns;
    let answered = analysis.flow.synacks_with_ts;
    let evidence = format!("{answered} of {asked} SYN-ACKs to SYNs with timestamps carried them");
    let seen = if asked == 0 {
        None
    } else if answered == asked {
        Some("1")
    } else if answered == 0 {
        Some("0")
    } else {
        None
    };
    match (given, seen) {
        (Some(value), seen) => Setting {
            value: value.clone(),
            source: Source::Given,
            contradicted: seen.is_some_and(|s| (s == "0") != (value == "0")),
            evidence,
        },
        (None, Some(value)) => Setting {
            value: value.into(),
            source: Source::Inferred,
            evidence,
            contradicted: false,
        },
        (None, None) => Setting {
            value: "1".into(),
            source: Source::Default,
            evidence,
            contradicted: false,
        },
    }
}

/// How the NAT picks public ports: reusing a tuple only when the new connection's sequence
/// numbers are past the old one's (Linux MASQUERADE since about 6.4), or regardless.
fn nat_reuse_setting(analysis: &Analysis) -> Setting {
    let met = analysis.syns.reuse_met_time_wait;
    let advanced = analysis.syns.reuse_seq_advanced;
    let value = if met == 0 {
        "unknown"
    } else if advanced == met {
        "sequence-aware"
    } else {
        "any"
    };
    Setting {
        value: value.into(),
        source: if met == 0 {
            Source::Default
        } else {
            Source::Inferred
        },
        evidence: format!(
            "{advanced} of {met} new SYNs on a tuple the server held in TIME_WAIT had a sequence number past its rcv_nxt"
        ),
        contradicted: false,
    }
}
