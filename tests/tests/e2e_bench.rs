//! End-to-end test of `gongzhi devnet bench`: the real binary starts a 4-validator devnet,
//! drives a fixed-rate load over gRPC, prints its table, and leaves no node process behind.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use gongzhi_devnet::process::{gongzhi_next_to_test, processes_mentioning};

/// How long the whole bench may take (devnet start, setup, 1 s warm-up, 5 s load, drain).
const DEADLINE: Duration = Duration::from_secs(150);

/// The value column of the table row named `metric`.
fn row<'a>(table: &'a str, metric: &str) -> Option<&'a str> {
    table.lines().find_map(|line| {
        let mut cells = line.split('|').map(str::trim).filter(|c| !c.is_empty());
        (cells.next()? == metric).then(|| cells.next()).flatten()
    })
}

fn number(text: &str) -> Option<f64> {
    text.trim_end_matches(" ms").replace(',', "").parse().ok()
}

/// Run `gongzhi devnet bench` with `args` (space-separated) on a devnet in `net`; its output,
/// once it exited successfully within [`DEADLINE`].
fn run_bench(net: &Path, out_path: &Path, args: &str) -> Result<String> {
    let out = std::fs::File::create(out_path)?;
    let mut child = Command::new(gongzhi_next_to_test()?)
        .args(["devnet", "bench", "--validators", "4"])
        .args(args.split_whitespace())
        .arg("--dir")
        .arg(net)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out))
        .spawn()?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "bench did not finish within {DEADLINE:?}:\n{}",
                std::fs::read_to_string(out_path)?
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(out_path)?;
    assert!(status.success(), "bench failed ({status}):\n{output}");
    Ok(output)
}

/// The four node processes the bench printed (and any other process of `net`) are gone.
fn assert_nodes_gone(output: &str, net: &Path) {
    let pids: Vec<u32> = output
        .lines()
        .filter_map(|line| {
            let rest = line.trim().split_once(" pid ")?.1;
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect();
    assert_eq!(pids.len(), 4, "expected four node pids in:\n{output}");
    for pid in pids {
        let alive = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(&*net.to_string_lossy()))
            .unwrap_or(false);
        assert!(!alive, "node process {pid} is still running");
    }
    let left = processes_mentioning(net);
    assert!(left.is_empty(), "processes left running: {left:?}");
}

#[test]
fn bench_reports_commits_and_latency_and_stops_every_node() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let net = dir.path().join("net");
    let out_path = dir.path().join("bench.out");
    let output = run_bench(
        &net,
        &out_path,
        "--duration 5s --warmup 1s --rate 200 --drain 20s",
    )?;

    let committed = row(&output, "committed txs").and_then(number);
    assert!(
        committed.is_some_and(|n| n > 0.0),
        "no committed txs in:\n{output}"
    );
    let rate = row(&output, "committed tx/s").and_then(number).unwrap();
    assert!(
        rate > 20.0,
        "a 200 tx/s load committed only {rate} tx/s:\n{output}"
    );
    let p50 = row(&output, "submit→commit p50").and_then(number);
    let p99 = row(&output, "submit→commit p99").and_then(number);
    assert!(
        p50.is_some() && p99.is_some(),
        "latency percentiles missing:\n{output}"
    );
    assert!(p50 <= p99, "p50 above p99:\n{output}");
    assert!(
        row(&output, "blocks/s").and_then(number).unwrap() > 0.0,
        "no blocks/s:\n{output}"
    );
    assert!(
        row(&output, "bytes/s").and_then(number).unwrap() > 0.0,
        "no bytes/s:\n{output}"
    );

    // Where the heights' time went, as the nodes measured it: five step means, all numbers.
    let steps = row(
        &output,
        "consensus step mean, ms (propose / prevote / precommit / commit / wait)",
    )
    .unwrap_or("");
    let means: Vec<f64> = steps.split(" / ").filter_map(number).collect();
    assert_eq!(means.len(), 5, "step means {steps:?} in:\n{output}");
    assert!(means[0] > 0.0, "no time in propose:\n{output}");
    // The machine's speed around the run, for comparing runs made at different times.
    let speed = row(
        &output,
        "machine speed, ed25519 checks/s on one core (before / after)",
    )
    .unwrap_or("");
    let rates: Vec<f64> = speed.split(" / ").filter_map(number).collect();
    assert!(
        rates.len() == 2 && rates.iter().all(|r| *r > 100.0),
        "machine speed {speed:?} in:\n{output}"
    );

    // The four node processes it started are gone (the bench reaped them before exiting).
    assert_nodes_gone(&output, &net);

    // As fast as the nodes go, batched calls, each signer's txs to one validator: every tx of
    // the window commits, none is refused, and the nodes are stopped again.
    let net = dir.path().join("net-max");
    let output = run_bench(
        &net,
        &out_path,
        "--duration 3s --warmup 1s --rate max --drain 40s --submit-batch 16 --route-by-signer",
    )?;
    assert!(
        output.contains("up to 16 txs per SubmitTxs call, each signer to one validator"),
        "the header does not say how txs were sent:\n{output}"
    );
    assert!(
        row(&output, "committed txs")
            .and_then(number)
            .is_some_and(|n| n > 0.0),
        "no committed txs in:\n{output}"
    );
    for metric in ["rejected", "not committed after drain"] {
        assert_eq!(
            row(&output, metric).and_then(number),
            Some(0.0),
            "{metric} in:\n{output}"
        );
    }
    assert_nodes_gone(&output, &net);
    Ok(())
}
