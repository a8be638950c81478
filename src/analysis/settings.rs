//! Server settings that change the verdicts: what the user stated, what the capture shows,
//! and the default otherwise, each with its evidence.

use std::collections::BTreeMap;

use super::Analysis;
use crate::fastmap::FastMap;
use crate::flow::{Assumption, FoundState, ObservedReply, SynRecord, TupleKey, Verdict};

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

/// net.ipv4.tcp_invalid_ratelimit's default, ms.
pub const DEFAULT_RATE_LIMIT_MS: i64 = 500;
/// Values tried, most common first, when the capture contradicts the default (ms).
const LIKELY_RATE_LIMITS_MS: [i64; 8] = [500, 1000, 250, 200, 100, 50, 2000, 0];
/// The kernel measures the limit in jiffies: at HZ=250 an interval is known to 4 ms.
const JIFFY_SLACK_NS: i64 = 4_000_000;

impl RateLimitEvidence {
    /// Whether a limit of `ms` explains the spacing seen: every silent pair closer than it,
    /// every answered pair at least that far apart (to a tick).
    pub fn fits(&self, ms: i64) -> bool {
        let ns = ms.saturating_mul(1_000_000);
        self.silent_below_ns.is_none_or(|s| s < ns)
            && self
                .answered_from_ns
                .is_none_or(|a| a >= ns - JIFFY_SLACK_NS)
    }

    /// The limit to judge with when the default does not explain the spacing: the most
    /// common value that does, else the next millisecond above the longest silent spacing.
    /// `None` when the default fits or nothing shows the limit.
    pub fn inferred_ms(&self) -> Option<i64> {
        if self.pairs == 0 || self.fits(DEFAULT_RATE_LIMIT_MS) {
            return None;
        }
        LIKELY_RATE_LIMITS_MS
            .into_iter()
            .find(|&ms| self.fits(ms))
            .or_else(|| self.silent_below_ns.map(|s| s / 1_000_000 + 1))
    }

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

/// The server settings the capture shows nothing of (neither stated nor inferred): a SYN
/// whose verdict or reply rests on one is marked, and its reason says so.
#[derive(Debug, Clone, Copy)]
pub struct UnsupportedAssumptions {
    rfc1337: bool,
    rate_limit: bool,
}

impl UnsupportedAssumptions {
    /// What `analysis` shows nothing of (its records aside: they are not read).
    pub fn of(analysis: &Analysis) -> Self {
        let given = &analysis.given_settings;
        // A single candidate was the user's choice (--rfc1337 0|1 or --sysctl).
        let rfc1337_shown = given.contains_key("net.ipv4.tcp_rfc1337")
            || !analysis.settings_inferred
            || analysis.settings_evidence;
        let rate_limit_shown = given.contains_key("net.ipv4.tcp_invalid_ratelimit")
            || analysis
                .inferred_settings
                .contains_key("net.ipv4.tcp_invalid_ratelimit")
            || analysis.syns.rate_limit.pairs > 0;
        UnsupportedAssumptions {
            rfc1337: !rfc1337_shown,
            rate_limit: !rate_limit_shown,
        }
    }

    pub fn mark(&self, syn: &mut SynRecord) {
        syn.assumption_unsupported = syn.rests_on.is_some_and(|assumption| match assumption {
            Assumption::Rfc1337Off | Assumption::Rfc1337On => self.rfc1337,
            Assumption::RateLimit => self.rate_limit,
        });
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
            None if analysis.settings_inferred && analysis.settings_evidence => Setting {
                value: rfc1337.into(),
                source: Source::Inferred,
                evidence,
                contradicted: false,
            },
            None => Setting {
                value: rfc1337.into(),
                source: Source::Default,
                evidence: if v.paws_reject + v.seq_reject == 0 {
                    "no SYN met a TIME_WAIT socket: nothing shows the setting".into()
                } else {
                    format!(
                        "judged both ways, the replies seen agree equally ({} disagreement(s)): nothing shows the setting",
                        a.disagreements()
                    )
                },
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
    let inferred_limit = analysis
        .inferred_settings
        .get("net.ipv4.tcp_invalid_ratelimit");
    let limit_ms: i64 = given_limit
        .or(inferred_limit)
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_RATE_LIMIT_MS);
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
        "paws_stale_secs",
        match given.get("paws_stale_secs") {
            Some(value) => Setting {
                value: value.clone(),
                source: Source::Given,
                evidence: "stated with --paws-stale".into(),
                contradicted: false,
            },
            None => Setting {
                value: (crate::policy::linux::PAWS_WRAP_NS / 1_000_000_000).to_string(),
                source: Source::Default,
                evidence: "TCP_PAWS_WRAP is compiled into Linux (24 days before 4.x; --paws-stale)"
                    .into(),
                contradicted: false,
            },
        },
    );
    out.insert(
        "net.ipv4.tcp_invalid_ratelimit",
        Setting {
            value: limit_ms.to_string(),
            source: if given_limit.is_some() {
                Source::Given
            } else if inferred_limit.is_some() || rate_limit.pairs > 0 {
                Source::Inferred
            } else {
                Source::Default
            },
            evidence: range,
            contradicted: !rate_limit.fits(limit_ms),
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn evidence(silent_below_ms: Option<i64>, answered_from_ms: Option<i64>) -> RateLimitEvidence {
        RateLimitEvidence {
            silent_below_ns: silent_below_ms.map(|m| m * MS),
            answered_from_ns: answered_from_ms.map(|m| m * MS),
            pairs: u64::from(silent_below_ms.is_some()) + u64::from(answered_from_ms.is_some()),
        }
    }

    #[test]
    fn no_pairs_leave_the_default_and_say_nothing_was_inferred() {
        assert_eq!(RateLimitEvidence::default().inferred_ms(), None);
        assert!(RateLimitEvidence::default().fits(DEFAULT_RATE_LIMIT_MS));
    }

    #[test]
    fn spacing_the_default_explains_keeps_the_default() {
        // Silent 300 ms after an ACK, answered 700 ms after one: 500 ms explains both.
        let e = evidence(Some(300), Some(700));
        assert!(e.fits(500));
        assert_eq!(e.inferred_ms(), None);
        // An answer 497 ms after the last ACK is within a tick of 500 ms.
        assert!(evidence(None, Some(497)).fits(500));
    }

    #[test]
    fn a_shorter_limit_is_inferred_from_answers_the_default_would_have_suppressed() {
        // Answered 150 ms after an ACK, silent 60 ms after one: 100 ms is the most common
        // value that explains it (250 and 200 would have suppressed the 150 ms answer).
        let e = evidence(Some(60), Some(150));
        assert!(!e.fits(500));
        assert_eq!(e.inferred_ms(), Some(100));
    }

    #[test]
    fn a_longer_limit_is_inferred_from_silences_the_default_would_have_answered() {
        assert_eq!(evidence(Some(800), None).inferred_ms(), Some(1000));
        assert_eq!(evidence(Some(1500), Some(2100)).inferred_ms(), Some(2000));
    }

    #[test]
    fn spacing_no_common_value_explains_gets_the_next_millisecond() {
        // Silent at 130 ms, answered at 140 ms: none of the common values fits.
        assert_eq!(evidence(Some(130), Some(140)).inferred_ms(), Some(131));
    }
}
