//! Records fresh captures from real kernels in network namespaces, with randomised client
//! counts, NAT port pools, pauses and timestamp settings, and checks pawscope's predictions
//! against the server's counters. Needs root and `ip netns` (CI has both); elsewhere it says
//! so and skips. Replay a failure with PAWSCOPE_LIVE_SEED=<seed printed on failure>.
//! Each scenario must also give every SYN the first reply predicted for it.

mod common;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{analyze_json, mismatches, read_json, repo_root};

/// How many scenarios one test run records (each takes 10-40 s); PAWSCOPE_LIVE_SCENARIOS
/// asks for more.
const DEFAULT_SCENARIOS: usize = 2;
/// Exit status of record-sample.sh when it cannot run here (not root, no netns).
const SKIP_STATUS: i32 = 77;

/// xorshift64*: enough randomness to vary scenarios, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() as usize % items.len()]
    }
}

fn scenario_args(rng: &mut Rng) -> Vec<String> {
    let clients = rng.range(2, 5);
    let first_port = 40000 + rng.range(0, 100);
    let ports = rng.range(1, 4);
    let client_ts: Vec<String> = (0..clients)
        .map(|_| if rng.range(0, 3) == 0 { "0" } else { "1" }.to_string())
        .collect();
    vec![
        format!("--clients={clients}"),
        format!("--ports={first_port}-{}", first_port + ports - 1),
        format!("--connects={}", rng.range(6, 14)),
        format!("--gap-ms={}", rng.range(20, 300)),
        format!("--jitter-ms={}", rng.range(0, 200)),
        format!("--client-ts={}", client_ts.join(",")),
        format!("--server-ts={}", rng.pick(&["1", "1", "1", "0"])),
        format!("--close={}", rng.pick(&["server", "server", "client"])),
        format!("--family={}", rng.pick(&["4", "6"])),
        format!("--capture={}", rng.pick(&["eth", "any"])),
        format!("--rfc1337={}", rng.pick(&["0", "0", "1"])),
        format!("--seed={}", rng.range(1, 1_000_000)),
    ]
}

#[test]
fn fresh_recordings_match_the_kernel() {
    let seed = std::env::var("PAWSCOPE_LIVE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let mut rng = Rng(seed);
    let out_dir = std::env::temp_dir().join(format!("pawscope-live-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).expect("create temp dir");
    let script = repo_root().join("scripts/record-sample.sh");

    let mut failures = Vec::new();
    let scenarios = std::env::var("PAWSCOPE_LIVE_SCENARIOS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SCENARIOS);
    for i in 0..scenarios {
        let name = format!("live{i}");
        let args = scenario_args(&mut rng);
        let status = Command::new("bash")
            .arg(&script)
            .arg(format!("--name={name}"))
            .arg(format!("--out={}", out_dir.display()))
            .args(&args)
            .status()
            .expect("run record-sample.sh");
        if status.code() == Some(SKIP_STATUS) {
            eprintln!(
                "skipped: recording needs root and network namespaces (see the message above)"
            );
            let _ = std::fs::remove_dir_all(&out_dir);
            return;
        }
        assert!(
            status.success(),
            "record-sample.sh {args:?} failed (seed {seed})"
        );
        let truth = read_json(&out_dir.join(format!("{name}.truth.json")));
        let report = analyze_json(&out_dir.join(format!("{name}.pcap")), &[]);
        for m in mismatches(&name, &report, &truth) {
            failures.push(format!("{m}  [seed {seed}, {args:?}]"));
        }
    }
    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&out_dir);
    }
    assert!(
        failures.is_empty(),
        "{}\n(captures kept in {})",
        failures.join("\n"),
        out_dir.display()
    );
}
