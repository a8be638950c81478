//! What went wrong, ranked, with the evidence and what to change. Each finding is derived
//! from the analysis alone; the advice names each mitigation's cost.

use std::fmt::Write;

use super::Analysis;
use crate::nat::ClockModel;
use crate::timefmt::rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub fn key(&self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub title: String,
    pub evidence: Vec<String>,
    pub advice: Vec<String>,
}

const ADVICE_CLIENT_CLOSES: &str = "Let clients close first (HTTP keep-alive, or the server waits for the client's FIN): the server then holds no TIME_WAIT per client tuple. Cost: each client holds TIME_WAIT for 60 s per connection and needs enough local ports.";
const ADVICE_LINGER: &str = "Close server sockets with SO_LINGER {on, 0}: a RST instead of a FIN, no TIME_WAIT. Cost: unsent data is discarded and the peer sees a reset; only safe once the response is known delivered.";
const ADVICE_MORE_ADDRESSES: &str = "Give the NAT more public addresses or a wider port pool: each tuple is reused less often, so fewer SYNs meet a TIME_WAIT. Cost: addresses, and conntrack memory.";
const ADVICE_RFC1337: &str = "Keep net.ipv4.tcp_rfc1337=0 (the default) on the server: the client's RST after a challenge ACK then clears TIME_WAIT and its retransmitted SYN gets through. Cost: RSTs can end TIME_WAIT early (RFC 1337 hazards).";
const ADVICE_TIMESTAMPS: &str = "Negotiate TCP timestamps end to end (enable them on the load balancer): TIME_WAIT can then accept SYNs by TSval, and clients can use tcp_tw_reuse. Cost: 12 bytes per segment.";
const ADVICE_NO_RECYCLE: &str = "Never enable net.ipv4.tcp_tw_recycle behind NAT (it was removed in Linux 4.12): it drops SYNs from every host whose clock is behind the last one to close. Cost: none on current kernels.";
const ADVICE_PORT_RANGE: &str = "Widen net.ipv4.ip_local_port_range, or spread connections over more source addresses or server ip:ports: each (source, destination) pair has its own ports.";
const ADVICE_SERVER_CLOSES: &str = "Have the server close first (HTTP `Connection: close` from the server): clients then keep no TIME_WAIT and do not run out of ports. Cost: the server holds TIME_WAIT, and behind NAT PAWS may reject reused tuples.";
const ADVICE_TW_REUSE: &str = "Enable net.ipv4.tcp_tw_reuse=1 on the clients: connect() may reuse a TIME_WAIT port older than 1 s, but only for connections that negotiated timestamps.";

/// Builds the ranked findings for an analysis.
pub fn findings(analysis: &Analysis) -> Vec<Finding> {
    let mut out = Vec::new();
    let syns = &analysis.syns;
    let flow = &analysis.flow;
    let attempts = &syns.attempt_totals;
    let v = &syns.verdicts;
    let window = match (syns.first_reject_ns, syns.last_reject_ns) {
        (Some(first), Some(last)) => format!("between {} and {}", rfc3339(first), rfc3339(last)),
        _ => String::new(),
    };
    let worst_tuples = || {
        let mut tuples: Vec<_> = syns.rejects_by_tuple.iter().collect();
        tuples.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let listed: Vec<String> = tuples
            .iter()
            .take(3)
            .map(|(tuple, n)| format!("{tuple} ({n})"))
            .collect();
        format!("most rejected tuples: {}", listed.join(", "))
    };

    if v.paws_reject > 0 {
        let severity = if attempts.failed_after_reject > 0 {
            Severity::High
        } else {
            Severity::Medium
        };
        let mut evidence = vec![
            format!(
                "{} SYNs rejected by PAWS on a server TIME_WAIT {window} (TcpExtPAWSTimewait {})",
                v.paws_reject, flow.counters.paws_timewait
            ),
            format!(
                "{} of {} connect attempts were delayed (mean {:.0} ms, worst {:.0} ms); {} failed after a rejection",
                attempts.delayed,
                attempts.attempts,
                mean_ms(attempts.delay_total_ns, attempts.delayed),
                attempts.delay_max_ns as f64 / 1e6,
                attempts.failed_after_reject
            ),
            worst_tuples(),
        ];
        if flow.counters.ack_skipped_timewait > 0 {
            evidence.push(format!(
                "{} challenge ACKs were suppressed by the 500 ms rate limit: those SYNs got no answer at all",
                flow.counters.ack_skipped_timewait
            ));
        }
        out.push(Finding {
            id: "paws-time-wait",
            severity,
            title: "Reused tuples meet the server's TIME_WAIT and PAWS rejects their SYNs".into(),
            evidence,
            advice: vec![
                ADVICE_CLIENT_CLOSES.into(),
                ADVICE_LINGER.into(),
                ADVICE_MORE_ADDRESSES.into(),
                ADVICE_RFC1337.into(),
            ],
        });
    }
    if analysis.settings.contains("tcp_rfc1337=1") && (v.paws_reject > 0 || v.seq_reject > 0) {
        out.push(Finding {
            id: "rfc1337-blocks-recovery",
            severity: Severity::High,
            title: "The server runs with tcp_rfc1337=1: clients' RSTs cannot clear TIME_WAIT".into(),
            evidence: vec![format!(
                "{} attempts failed after a TIME_WAIT rejection; {} challenge ACKs were rate limited",
                attempts.failed_after_reject, flow.counters.ack_skipped_timewait
            )],
            advice: vec![ADVICE_RFC1337.into(), ADVICE_CLIENT_CLOSES.into()],
        });
    }
    if v.seq_reject > 0 {
        out.push(Finding {
            id: "seq-time-wait",
            severity: if attempts.failed_after_reject > 0 { Severity::High } else { Severity::Medium },
            title: "SYNs on reused tuples rejected by TIME_WAIT's sequence check".into(),
            evidence: vec![
                format!("{} SYNs had a sequence number not after the TIME_WAIT's rcv_nxt and no newer TSval {window}", v.seq_reject),
                worst_tuples(),
            ],
            advice: vec![ADVICE_TIMESTAMPS.into(), ADVICE_CLIENT_CLOSES.into(), ADVICE_MORE_ADDRESSES.into()],
        });
    }
    if v.paws_passive_drop > 0 {
        out.push(Finding {
            id: "tw-recycle-drops",
            severity: Severity::High,
            title: "tcp_tw_recycle would drop SYNs from hosts behind shared addresses (simulated)".into(),
            evidence: vec![format!(
                "{} SYNs dropped silently by the per-address PAWS check (TcpExtPAWSPassive), {} connect attempts failed",
                v.paws_passive_drop, attempts.failed
            )],
            advice: vec![ADVICE_NO_RECYCLE.into()],
        });
    }
    for ports in &analysis.ports {
        let share = f64::from(ports.peak_in_use) / f64::from(ports.range_size.max(1));
        if ports.exhausted_ns.is_none() && share < 0.5 {
            continue;
        }
        let mut evidence = vec![
            format!(
                "{} toward {}: up to {} of {} local ports held at {} ({} connections, {} left the client in TIME_WAIT)",
                ports.client,
                ports.server,
                ports.peak_in_use,
                ports.range_size,
                ports.peak_ns.map(rfc3339).unwrap_or_default(),
                ports.connections,
                ports.client_time_waits
            ),
            format!(
                "busiest rate {:.1} connects/s against a sustainable {:.1}/s (ports / TIME_WAIT)",
                ports.peak_rate_per_s, ports.sustainable_rate_per_s
            ),
        ];
        if let Some(at) = ports.exhausted_ns {
            evidence.push(format!(
                "the range was full at {}: later connect() calls fail with EADDRNOTAVAIL and send no SYN",
                rfc3339(at)
            ));
        }
        let mut advice = vec![ADVICE_PORT_RANGE.into(), ADVICE_SERVER_CLOSES.into()];
        if ports.ts_negotiated == ports.connections {
            advice.push(ADVICE_TW_REUSE.into());
        } else {
            evidence.push(format!(
                "only {} of {} connections negotiated timestamps: tcp_tw_reuse cannot help the others",
                ports.ts_negotiated, ports.connections
            ));
            advice.push(ADVICE_TIMESTAMPS.into());
        }
        out.push(Finding {
            id: if ports.exhausted_ns.is_some() {
                "client-ports-exhausted"
            } else {
                "client-ports-pressure"
            },
            severity: if ports.exhausted_ns.is_some() {
                Severity::High
            } else {
                Severity::Medium
            },
            title: format!(
                "Client {} runs out of local ports toward {}",
                ports.client, ports.server
            ),
            evidence,
            advice,
        });
    }
    if v.no_listener > 0 {
        out.push(Finding {
            id: "no-listener",
            severity: Severity::Low,
            title: "SYNs to ports where nothing listens".into(),
            evidence: vec![format!(
                "{} SYNs answered with RST or never with SYN-ACK",
                v.no_listener
            )],
            advice: vec!["Check the service's port and that it was running.".into()],
        });
    }
    let disagreements = syns.agreement.disagreements();
    if disagreements > 0 {
        out.push(Finding {
            id: "model-disagrees",
            severity: Severity::Low,
            title: format!("The server did not behave as the {} policy predicts", analysis.policy_name),
            evidence: vec![format!(
                "{disagreements} SYNs were answered otherwise than predicted ({} reply mismatches)",
                syns.agreement.reply_not_as_predicted
            )],
            advice: vec!["Check the server's kernel and settings (--policy, --rfc1337, --tw-len), or a middlebox answering for it.".into()],
        });
    }
    // The busiest few addresses are enough to make the point.
    for address in analysis.nat.addresses.iter().take(3) {
        match address.clocks.model() {
            ClockModel::PerHost if address.hosts_lower_bound() > 1 => out.push(Finding {
                id: "nat-hosts",
                severity: Severity::Info,
                title: format!("{} hides at least {} hosts", address.source, address.hosts_lower_bound()),
                evidence: vec![format!(
                    "{} distinct TCP timestamp clocks; {} segments went below the address's previous TSval",
                    address.clocks.clock_count(),
                    address.clocks.decreases
                )],
                advice: vec![ADVICE_NO_RECYCLE.into()],
            }),
            ClockModel::PerConnection => out.push(Finding {
                id: "per-connection-timestamps",
                severity: Severity::Info,
                title: format!("TCP timestamps from {} are offset per connection", address.source),
                evidence: vec![format!(
                    "{} clocks for {} connections: hosts cannot be counted from timestamps, and a reused tuple's new TSval is older than the last one about half the time",
                    address.clocks.clock_count(),
                    address.clocks.connections()
                )],
                advice: vec![],
            }),
            _ => {}
        }
    }
    for (key, setting) in super::server_settings(analysis) {
        if setting.contradicted {
            out.push(Finding {
                id: "setting-contradicted",
                severity: Severity::Medium,
                title: format!("The capture contradicts {key}={} ({})", setting.value, setting.source.key()),
                evidence: vec![setting.evidence],
                advice: vec!["Check the server's actual setting (sysctl on the server) and judge again with --sysctl.".into()],
            });
        }
    }
    let serious = out.iter().any(|f| f.severity <= Severity::Medium);
    if !serious {
        out.push(Finding {
            id: "all-clear",
            severity: Severity::Info,
            title: "No TIME_WAIT, PAWS or port problem found".into(),
            evidence: vec![format!(
                "{} connections, {} connect attempts, none rejected by TIME_WAIT; {} failed",
                flow.counters.passive_opens, attempts.attempts, attempts.failed
            )],
            advice: vec![],
        });
    }
    out.sort_by_key(|f| f.severity);
    out
}

fn mean_ms(total_ns: i64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        total_ns as f64 / n as f64 / 1e6
    }
}

/// The findings as text lines for the summary.
pub fn findings_text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for (i, f) in findings.iter().enumerate() {
        let _ = writeln!(out, "{}. [{}] {}", i + 1, f.severity.key(), f.title);
        for e in &f.evidence {
            let _ = writeln!(out, "     - {e}");
        }
        for a in &f.advice {
            let _ = writeln!(out, "     fix: {a}");
        }
    }
    out
}
