//! `gongzhi check …` (one authorisation question, optionally with a receipt),
//! `gongzhi verify-receipt …` (offline verification against a genesis file) and
//! `gongzhi bench checks …` (checks/s and latency from many concurrent requests).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use gongzhi_proto::v1::authorization_client::AuthorizationClient;
use gongzhi_proto::v1::{
    consistency::Requirement, BatchCheckItem, BatchCheckRequest, CheckRequest, CheckResponse,
    Consistency, Decision, ExplainDenialRequest,
};
use tonic::transport::Endpoint;

use super::api_client::{endpoint_url, runtime, split_list, status_error, ApiClient, DEFAULT_NODE};
use crate::api::receipt::verify_receipt;

/// `gongzhi check` arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Organisation that wants to use the data.
    #[arg(long)]
    pub grantee: String,
    /// Dataset.
    #[arg(long)]
    pub dataset: String,
    /// Fields, comma-separated.
    #[arg(long)]
    pub fields: String,
    /// Purpose code.
    #[arg(long)]
    pub purpose: String,
    /// Read-your-writes: evaluate at this height or later (waits for it).
    #[arg(long, conflicts_with = "at")]
    pub at_least: Option<u64>,
    /// Historic: evaluate exactly the state after this height.
    #[arg(long)]
    pub at: Option<u64>,
    /// Write the decision receipt (canonical bytes) to this file.
    #[arg(long)]
    pub receipt: Option<PathBuf>,
    /// Also explain the decision grant by grant.
    #[arg(long)]
    pub explain: bool,
    /// Node gRPC address.
    #[arg(long, default_value = DEFAULT_NODE)]
    pub node: String,
}

/// `gongzhi verify-receipt` arguments.
#[derive(Debug, Args)]
pub struct VerifyReceiptArgs {
    /// Receipt file written by `gongzhi check --receipt`.
    pub receipt: PathBuf,
    /// Genesis file of the chain (the root of trust).
    #[arg(long)]
    pub genesis: PathBuf,
}

/// `gongzhi bench …`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Checks per second and latency percentiles against one node.
    #[command(
        after_help = "Example:\n  gongzhi bench checks --node 127.0.0.1:9090 --concurrency 32 --connections 2 --duration 30s\n\nEach connection has its own client thread (a single-threaded runtime); the requests in\nflight are spread evenly over the connections. Reproduce the documented figures with\nscripts/bench-checks.sh."
    )]
    Checks(BenchArgs),
}

/// `gongzhi bench checks` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Node gRPC address.
    #[arg(long, default_value = DEFAULT_NODE)]
    pub node: String,
    /// Requests in flight at any time (closed loop: each sends its next request when answered).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// HTTP/2 connections the requests are spread over, each driven by its own client thread.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    /// Measured duration, e.g. 30s or 2m (after a 2 s warm-up).
    #[arg(long, default_value = "30s")]
    pub duration: String,
    /// Questions per request: 1 sends `Check`, more send `BatchCheck` with that many items
    /// (checks/s then counts items; latencies are per request).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Question: grantee.
    #[arg(long, default_value = "health-commission")]
    pub grantee: String,
    /// Question: dataset.
    #[arg(long, default_value = "elderly-subsidy-roll")]
    pub dataset: String,
    /// Question: fields, comma-separated.
    #[arg(long, default_value = "age,street")]
    pub fields: String,
    /// Question: purpose.
    #[arg(long, default_value = "elderly-care")]
    pub purpose: String,
}

fn print_answer(a: &CheckResponse) {
    let allowed = a.decision == Decision::Allow as i32;
    let grants: Vec<String> = a.grant_ids.iter().map(|g| format!("grant#{g}")).collect();
    if allowed {
        println!("ALLOW  by {}", grants.join(", "));
    } else {
        println!(
            "DENY   {}{}",
            a.reason_name,
            if grants.is_empty() {
                String::new()
            } else {
                format!(" ({})", grants.join(", "))
            }
        );
    }
    println!("  {}", a.message);
    println!(
        "  evaluated at height {} (block {}, state root {})",
        a.evaluated_height,
        hex::encode(&a.evaluated_block_hash),
        hex::encode(&a.state_root)
    );
    println!(
        "  evaluation time {} ; latest block time {}",
        gongzhi_ledger::Timestamp(a.evaluation_time_ms),
        gongzhi_ledger::Timestamp(a.latest_block_time_ms)
    );
}

/// Run `gongzhi check`.
pub fn run_check(args: CheckArgs) -> Result<()> {
    let consistency = match (args.at_least, args.at) {
        (Some(h), _) => Some(Consistency {
            requirement: Some(Requirement::AtLeastHeight(h)),
        }),
        (_, Some(h)) => Some(Consistency {
            requirement: Some(Requirement::ExactHeight(h)),
        }),
        _ => None,
    };
    runtime()?.block_on(async move {
        let mut client = ApiClient::connect(&args.node).await?;
        let request = CheckRequest {
            grantee_org_id: args.grantee.clone(),
            dataset_id: args.dataset.clone(),
            fields: split_list(&args.fields),
            purpose_code: args.purpose.clone(),
            consistency,
            want_receipt: args.receipt.is_some(),
        };
        let answer = client.authorization.check(request).await.map_err(status_error)?.into_inner();
        print_answer(&answer);
        if let Some(path) = &args.receipt {
            let receipt = answer.receipt.as_ref().context("the node sent no receipt")?;
            std::fs::write(path, &receipt.canonical).with_context(|| format!("cannot write {}", path.display()))?;
            println!("  receipt {} → {} ({} bytes); verify it with: gongzhi verify-receipt {} --genesis GENESIS", hex::encode(&receipt.receipt_hash), path.display(), receipt.canonical.len(), path.display());
        }
        if args.explain {
            let explained = client
                .authorization
                .explain_denial(ExplainDenialRequest {
                    grantee_org_id: args.grantee,
                    dataset_id: args.dataset,
                    fields: split_list(&args.fields),
                    purpose_code: args.purpose,
                    consistency: Some(Consistency { requirement: Some(Requirement::ExactHeight(answer.evaluated_height)) }),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            for g in &explained.grants {
                let id = g.grant.as_ref().map_or(0, |g| g.grant_id);
                println!("  grant#{id}: {}", if g.allows { "allows".to_string() } else { format!("{} — {}", g.reason_name, g.message) });
            }
        }
        Ok(())
    })
}

/// Run `gongzhi verify-receipt`: print the decision and why it is trustworthy, or fail with
/// the precise reason it is not.
pub fn run_verify_receipt(args: VerifyReceiptArgs) -> Result<()> {
    let bytes = std::fs::read(&args.receipt)
        .with_context(|| format!("cannot read {}", args.receipt.display()))?;
    let genesis = crate::run::load_genesis(&args.genesis)?;
    let verified = verify_receipt(&bytes, &genesis)
        .map_err(|e| anyhow::anyhow!("the receipt is NOT trustworthy: {e}"))?;
    let q = &verified.question;
    match &verified.decision {
        gongzhi_contracts::Decision::Allow { grants } => {
            let names: Vec<String> = grants.iter().map(ToString::to_string).collect();
            println!(
                "ALLOW  {} may use [{}] of {} for {} — by {}",
                q.grantee,
                q.fields.join(","),
                q.dataset,
                q.purpose,
                names.join(", ")
            );
        }
        gongzhi_contracts::Decision::Deny(d) => {
            println!(
                "DENY   {} may not use [{}] of {} for {} — {}: {}",
                q.grantee,
                q.fields.join(","),
                q.dataset,
                q.purpose,
                d.reason,
                d.explanation
            );
        }
    }
    println!("Why this is trustworthy:");
    println!(
        "  - chain {}: trust starts at the genesis validator set of {}",
        genesis.chain_id,
        args.genesis.display()
    );
    if verified.handovers > 0 {
        println!(
            "  - followed {} validator-set change(s), each certified by the set before it",
            verified.handovers
        );
    }
    println!(
        "  - block {} at height {} ({}) is certified by {} of {} voting power ({} validators): more than 2/3",
        verified.block_hash, verified.height, verified.block_time, verified.signed_power, verified.total_power, verified.validators
    );
    println!(
        "  - all {} state value(s) the decision read are proven against state root {}",
        verified.proven_keys, verified.state_root
    );
    println!(
        "  - re-evaluating the rules over exactly those values at {} gives the same decision",
        verified.evaluation_time
    );
    println!(
        "  (the evaluation time is the answering node's clock; it is not before the block time)"
    );
    Ok(())
}

fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.trim_end_matches(|c: char| c.is_ascii_alphabetic())
            .len(),
    );
    let n: u64 = digits
        .parse()
        .with_context(|| format!("--duration {text:?}: write e.g. 30s or 2m"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        _ => bail!("--duration {text:?}: the unit must be ms, s or m"),
    })
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

/// A `BatchCheck` of `size` copies of `request`, or `None` for single checks.
fn batch_request(request: &CheckRequest, size: usize) -> Option<BatchCheckRequest> {
    (size > 1).then(|| BatchCheckRequest {
        items: vec![
            BatchCheckItem {
                grantee_org_id: request.grantee_org_id.clone(),
                dataset_id: request.dataset_id.clone(),
                fields: request.fields.clone(),
                purpose_code: request.purpose_code.clone(),
            };
            size
        ],
        consistency: None,
        want_receipt: false,
    })
}

/// Start and stop of the measured window, shared by the client threads.
#[derive(Debug, Default)]
struct BenchClock {
    measuring: AtomicBool,
    stop: AtomicBool,
}

/// What one connection measured: per-request latencies (µs) and failed or wrong answers.
#[derive(Debug, Default)]
struct Measured {
    latencies: Vec<u32>,
    errors: u64,
}

/// One connection's client thread: a single-threaded runtime, one HTTP/2 connection and
/// `in_flight` request loops on it, so a request never hops threads on the client side.
fn run_connection(
    url: String,
    in_flight: usize,
    request: CheckRequest,
    batch: Option<BatchCheckRequest>,
    expected: i32,
    clock: Arc<BenchClock>,
) -> Result<Measured> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let channel = Endpoint::from_shared(url.clone())?
            .connect()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let client = AuthorizationClient::new(channel);
        let mut loops = Vec::with_capacity(in_flight);
        for _ in 0..in_flight {
            let mut client = client.clone();
            let (request, batch, clock) = (request.clone(), batch.clone(), clock.clone());
            loops.push(tokio::spawn(async move {
                let mut measured = Measured {
                    latencies: Vec::with_capacity(1 << 16),
                    errors: 0,
                };
                while !clock.stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let ok = match &batch {
                        None => client
                            .check(request.clone())
                            .await
                            .is_ok_and(|answer| answer.get_ref().decision == expected),
                        Some(batch) => {
                            client.batch_check(batch.clone()).await.is_ok_and(|answer| {
                                answer.get_ref().results.len() == batch.items.len()
                            })
                        }
                    };
                    if clock.measuring.load(Ordering::Relaxed) {
                        if ok {
                            let micros = started.elapsed().as_micros();
                            measured
                                .latencies
                                .push(u32::try_from(micros).unwrap_or(u32::MAX));
                        } else {
                            measured.errors += 1;
                        }
                    }
                }
                measured
            }));
        }
        let mut all = Measured::default();
        for one in loops {
            let one = one.await?;
            all.latencies.extend(one.latencies);
            all.errors += one.errors;
        }
        Ok(all)
    })
}

/// Run `gongzhi bench checks`.
pub fn run_bench(command: BenchCommand) -> Result<()> {
    let BenchCommand::Checks(args) = command;
    let duration = parse_duration(&args.duration)?;
    let concurrency = args.concurrency.max(1);
    let connections = args.connections.clamp(1, concurrency);
    let request = CheckRequest {
        grantee_org_id: args.grantee.clone(),
        dataset_id: args.dataset.clone(),
        fields: split_list(&args.fields),
        purpose_code: args.purpose.clone(),
        consistency: None,
        want_receipt: false,
    };
    let first = runtime()?.block_on(async {
        let mut probe = ApiClient::connect(&args.node).await?;
        probe
            .authorization
            .check(request.clone())
            .await
            .map_err(status_error)
            .map(tonic::Response::into_inner)
    })?;
    println!(
        "question: {} {} [{}] {} → {}",
        args.grantee,
        args.dataset,
        args.fields,
        args.purpose,
        if first.decision == Decision::Allow as i32 {
            "ALLOW".to_string()
        } else {
            format!("DENY {}", first.reason_name)
        }
    );

    let clock = Arc::new(BenchClock::default());
    let batch = batch_request(&request, args.batch);
    let mut threads = Vec::with_capacity(connections);
    for i in 0..connections {
        let in_flight = concurrency / connections + usize::from(i < concurrency % connections);
        let (url, request, batch, clock) = (
            endpoint_url(&args.node),
            request.clone(),
            batch.clone(),
            clock.clone(),
        );
        let expected = first.decision;
        threads.push(
            std::thread::Builder::new()
                .name(format!("bench-connection-{i}"))
                .spawn(move || run_connection(url, in_flight, request, batch, expected, clock))?,
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    clock.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    std::thread::sleep(duration);
    clock.measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    clock.stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for thread in threads {
        let measured = thread
            .join()
            .map_err(|_| anyhow::anyhow!("a bench client thread panicked"))??;
        all.extend(measured.latencies);
        errors += measured.errors;
    }
    all.sort_unstable();
    let per_request = args.batch.max(1);
    let rate = (all.len() * per_request) as f64 / elapsed.as_secs_f64();
    println!(
        "requests      {} ({} check(s) each)",
        all.len(),
        per_request
    );
    println!("checks        {}", all.len() * per_request);
    println!("errors        {errors}");
    println!("duration      {:.1} s", elapsed.as_secs_f64());
    println!(
        "concurrency   {concurrency} over {connections} connection(s), one client thread each"
    );
    println!(
        "cores         {}",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!("checks/s      {rate:.0}");
    println!("latency p50   {:.3} ms", percentile(&all, 50.0));
    println!("latency p99   {:.3} ms", percentile(&all, 99.0));
    println!("latency max   {:.3} ms", percentile(&all, 100.0));
    Ok(())
}
