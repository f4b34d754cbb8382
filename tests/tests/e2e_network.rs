//! End-to-end tests over real `gongzhi` processes on loopback (issue 4's "must show").
//!
//! Each test builds its own devnet in a temporary directory with OS-assigned ports, waits on
//! conditions with generous deadlines (2 busy cores), and stops its nodes even when it fails
//! (`NodeProcess` kills its child on drop).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use gongzhi_contracts::governance::proposals::ProposalAction;
use gongzhi_contracts::{Call, CallOutput};
use gongzhi_devnet::client::NodeClientBlocking;
use gongzhi_devnet::demo;
use gongzhi_devnet::process::{gongzhi_next_to_test, wait_until};
use gongzhi_devnet::{Devnet, DevnetOptions};
use gongzhi_ledger::{Canonical, Hash, Keypair, Outcome, Tx};

const DEADLINE: Duration = Duration::from_secs(120);

fn devnet(validators: usize, observers: usize) -> Result<(tempfile::TempDir, Devnet)> {
    let dir = tempfile::tempdir()?;
    let mut devnet = Devnet::create(&DevnetOptions {
        dir: dir.path().join("net"),
        validators,
        chain_id: "e2e".into(),
        seed: "e2e".into(),
        binary: gongzhi_next_to_test()?,
        empty_block_interval_ms: 300,
        timeout_propose_ms: 1200,
        observers,
    })?;
    devnet.start_all()?;
    devnet.wait_ready(DEADLINE)?;
    Ok((dir, devnet))
}

/// Award calls from one issuer, signed with consecutive nonces starting at `first_nonce`.
fn awards(devnet: &Devnet, issuer: &str, first_nonce: u64, count: u64) -> Vec<gongzhi_ledger::Tx> {
    let key = demo::demo_key(&devnet.record.seed, issuer, "operator");
    (0..count)
        .map(|i| {
            Call::Award {
                resident: demo::resident(&format!("load-{i}")),
                reason: "garbage-sorting".into(),
                points: 1,
            }
            .sign(&key, &devnet.record.chain_id, first_nonce + i)
        })
        .collect()
}

/// Every node has the same block hash and state root at every height up to `height`.
fn assert_identical_chains(devnet: &Devnet, nodes: &[usize], height: u64) -> Result<()> {
    let mut clients: Vec<NodeClientBlocking> = nodes
        .iter()
        .map(|&i| devnet.client(i, DEADLINE))
        .collect::<Result<_>>()?;
    for h in 1..=height {
        let mut seen: BTreeMap<(Hash, Hash), Vec<usize>> = BTreeMap::new();
        for (client, &node) in clients.iter_mut().zip(nodes) {
            let (block, cert) = client
                .block(h)?
                .with_context(|| format!("node {node} lacks block {h}"))?;
            assert_eq!(
                cert.block_hash,
                block.hash(),
                "certificate of block {h} on node {node}"
            );
            seen.entry((block.hash(), block.header.state_root))
                .or_default()
                .push(node);
        }
        assert_eq!(seen.len(), 1, "nodes disagree at height {h}: {seen:?}");
    }
    Ok(())
}

#[test]
fn validators_agree_survive_a_crash_and_reject_bad_txs() -> Result<()> {
    let (_dir, mut net) = devnet(4, 1)?;

    // The demo story runs through real consensus.
    let story = net.seed(0)?;
    assert!(story.len() > 20, "story told {} steps", story.len());
    let height = net.wait_height(0, 5, DEADLINE)?;
    for i in 1..4 {
        net.wait_height(i, height, DEADLINE)?;
    }
    assert_identical_chains(&net, &[0, 1, 2, 3], height)?;
    // Operators can see where each height's time went: every step and execution was timed.
    let text = scrape_metrics(net.record.nodes[0].metrics_port)?;
    for step in ["propose", "prevote", "precommit", "commit", "wait"] {
        let series = format!("gongzhi_consensus_step_seconds_count{{step=\"{step}\"}}");
        let count = metric_value(&text, &series).with_context(|| format!("no {series}"))?;
        assert!(count >= 3.0, "{series} = {count} after {height} heights");
    }
    let executions: f64 = ["build", "verify"]
        .iter()
        .filter_map(|kind| {
            metric_value(
                &text,
                &format!("gongzhi_block_execution_seconds_count{{kind=\"{kind}\"}}"),
            )
        })
        .sum();
    assert!(executions >= 3.0, "{executions} block executions timed");
    // The audit bureau's observer follows the same chain without voting.
    net.wait_height(4, height, DEADLINE)?;
    assert_identical_chains(&net, &[0, 4], height)?;

    // Bad input: each refused with a clear reason, none reaches a block.
    let mut client = net.client(0, DEADLINE)?;
    let stranger = Keypair::from_secret([42; 32]);
    let call = Call::Award {
        resident: demo::resident("x"),
        reason: "garbage-sorting".into(),
        points: 1,
    };
    let non_member = call.sign(&stranger, "e2e", 1);
    let status = client.submit_raw(non_member.encode(), false).unwrap_err();
    assert!(
        status.message().contains("not an operator key"),
        "{status:?}"
    );
    let issuer = demo::demo_key("e2e", "zhanlan-street", "operator");
    let wrong_chain = call.sign(&issuer, "other-chain", 100);
    let status = client.submit_raw(wrong_chain.encode(), false).unwrap_err();
    assert!(status.message().contains("other-chain"), "{status:?}");
    let reused = call.sign(&issuer, "e2e", 1);
    let status = client.submit_raw(reused.encode(), false).unwrap_err();
    assert!(status.message().contains("already used"), "{status:?}");
    let oversized = vec![1u8; 70 * 1024];
    let status = client.submit_raw(oversized, false).unwrap_err();
    assert!(status.message().contains("over the limit"), "{status:?}");
    for bad in [&non_member, &wrong_chain] {
        assert_eq!(client.tx_height(&bad.hash())?, None);
    }

    // Kill -9 one validator under load: the others keep committing; acknowledged txs stay.
    let metrics_port = net.record.nodes[0].metrics_port;
    let extra_rounds = || {
        let text = scrape_metrics(metrics_port).ok()?;
        metric_value(&text, "gongzhi_extra_rounds_total")
    };
    let rounds_before = extra_rounds().context("node 0 reports no extra_rounds_total")?;
    let issuer_key = demo::demo_key("e2e", "huaxia-property", "operator");
    let next_nonce = client.nonce(&issuer_key.public())? + 1;
    let txs = awards(&net, "huaxia-property", next_nonce, 60);
    let mut acknowledged = Vec::new();
    for (i, tx) in txs.iter().enumerate() {
        if i == 20 {
            net.nodes[3].kill9()?;
        }
        // Every tenth submission waits for its commit: those are the acknowledged ones.
        let wait = i % 10 == 9;
        if let Ok(Some(_)) = client.submit_raw(tx.encode(), wait) {
            acknowledged.push(tx.hash());
        }
    }
    let before = net.height(0).context("node 0 down")?;
    net.wait_height(0, before + 2, DEADLINE)?;
    // Node 3's turns to propose now time out into round 1, and operators can see it.
    wait_until("node 0 to count a round past the first", DEADLINE, || {
        extra_rounds().filter(|n| *n > rounds_before)
    })?;
    net.nodes[3].start()?;
    let tip = net.height(0).context("node 0 down")?;
    net.wait_height(3, tip, DEADLINE)?;
    for hash in &acknowledged {
        assert!(
            client.tx_height(hash)?.is_some(),
            "acknowledged tx {hash} missing"
        );
    }
    assert!(
        acknowledged.len() >= 5,
        "only {} txs acknowledged",
        acknowledged.len()
    );
    let tip = net.height(3).context("node 3 down")?;
    assert_identical_chains(&net, &[0, 1, 2, 3], tip)?;
    net.stop_all(Duration::from_secs(10))
}

#[test]
fn two_of_four_down_halts_until_one_returns() -> Result<()> {
    let (_dir, mut net) = devnet(4, 0)?;
    let mut client = net.client(0, DEADLINE)?;
    let txs = awards(&net, "zhanlan-street", 1, 30);
    client
        .submit_raw(txs[0].encode(), true)
        .map_err(|s| anyhow::anyhow!("{s:?}"))?;
    net.nodes[2].kill9()?;
    net.nodes[3].kill9()?;
    let stuck = net.height(0).context("node 0 down")?;
    for tx in &txs[1..10] {
        let _ = client.submit_raw(tx.encode(), false);
    }
    // With half the power gone no block can get 2/3: the height stays, for a generous while.
    let moved = gongzhi_devnet::process::wait_until(
        "the chain to (wrongly) advance",
        Duration::from_secs(8),
        || net.height(0).filter(|h| *h > stuck),
    );
    assert!(moved.is_err(), "committed without a quorum");
    net.nodes[2].start()?;
    net.wait_height(0, stuck + 1, DEADLINE)?;
    net.stop_all(Duration::from_secs(10))
}

/// Propose (and so approve) `action` as `proposer`, then approve it as each of `approvers`,
/// waiting for every commit; returns the height at which the last approval was committed.
fn pass_proposal(
    net: &Devnet,
    client: &mut NodeClientBlocking,
    action: ProposalAction,
    proposer: &str,
    approvers: &[&str],
) -> Result<u64> {
    let sign = |client: &mut NodeClientBlocking, org: &str, call: Call| -> Result<Tx> {
        let key = demo::demo_key(&net.record.seed, org, "operator");
        let nonce = client.nonce(&key.public())? + 1;
        Ok(call.sign(&key, &net.record.chain_id, nonce))
    };
    let tx = sign(client, proposer, Call::Propose(action))?;
    let (_, receipt) = client.submit(&tx, true)?;
    let receipt = receipt.context("no receipt for the proposal")?;
    let Outcome::Success { data } = &receipt.outcome else {
        bail!("the proposal failed: {:?}", receipt.outcome);
    };
    let CallOutput::Proposal(progress) = CallOutput::from_data(data)? else {
        bail!("a proposal returned something else");
    };
    let mut height = 0;
    for org in approvers {
        let tx = sign(client, org, Call::Approve(progress.id))?;
        let (committed, receipt) = client.submit(&tx, true)?;
        let receipt = receipt.context("no receipt for the approval")?;
        assert!(
            receipt.is_success(),
            "approval by {org}: {:?}",
            receipt.outcome
        );
        height = committed.context("approval not committed")?;
    }
    Ok(height)
}

#[test]
fn a_removed_member_is_disconnected_and_refused() -> Result<()> {
    let (_dir, mut net) = devnet(4, 1)?;
    let observer = 4;
    let mut client = net.client(0, DEADLINE)?;
    let mut watcher = net.client(observer, DEADLINE)?;
    // The audit bureau's observer is connected and following.
    net.wait_height(observer, 2, DEADLINE)?;
    wait_until("the observer to connect", DEADLINE, || {
        (watcher.status().ok()?.peers_count > 0).then_some(())
    })?;

    // Governance removes the audit bureau: 3 of 4 validators (more than 2/3 of the power).
    let removed_at = pass_proposal(
        &net,
        &mut client,
        ProposalAction::RemoveOrg("audit-bureau".into()),
        "yuetan-street",
        &["zhanlan-street", "huaxia-property"],
    )?;

    // Every validator closes its connections to the removed member's node and refuses it from
    // then on: the observer loses all peers and stops following, while the chain goes on.
    wait_until(
        "the removed member's node to be disconnected",
        DEADLINE,
        || (watcher.status().ok()?.peers_count == 0).then_some(()),
    )?;
    let stuck_at = watcher.status()?.latest_height;
    assert!(
        stuck_at <= removed_at + 2,
        "the observer committed {stuck_at}, past the removal at {removed_at}"
    );
    let tip = net.wait_height(0, stuck_at + 4, DEADLINE)?;
    // It keeps redialing (with backoff) and keeps being refused.
    let status = watcher.status()?;
    assert_eq!(status.peers_count, 0, "a removed member reconnected");
    assert!(
        status.latest_height < tip,
        "the removed node followed the chain to {} (tip {tip})",
        status.latest_height
    );
    // The remaining members still talk to each other (waited for: on two busy cores a link
    // between validators can drop and redial), and say why they dropped the peer.
    wait_until(
        "node 0 to be connected to the 3 other validators",
        DEADLINE,
        || (client.status().ok()?.peers_count >= 3).then_some(()),
    )?;
    let log = net.nodes[0].log_tail(5000);
    assert!(
        log.contains("membership changed: allowed peers updated"),
        "node 0 never applied the new membership:\n{log}"
    );
    net.stop_all(Duration::from_secs(10))
}

/// The Prometheus text a node serves at `http://127.0.0.1:<port>/metrics`.
fn scrape_metrics(port: u16) -> Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    if !response.starts_with("HTTP/1.1 200") {
        bail!("metrics answered {:?}", response.lines().next());
    }
    Ok(response)
}

/// The value of `series` (name and labels, as printed) in a Prometheus text exposition.
fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A member's node that gossips garbage: node 3 is stopped and an in-process libp2p peer with
/// its node key (so a member, let through the connection gate) connects to node 0 and sends
/// undecodable consensus messages. Node 0 drops them without forwarding, bans the peer after
/// `[p2p] ban_after_invalid` (10) of them, refuses it from then on, and the three remaining
/// validators keep committing.
#[test]
fn a_member_peer_sending_garbage_is_banned_and_the_chain_goes_on() -> Result<()> {
    use gongzhi_node::network::{
        peer_id_from_node_key, GossipTopic, Network, NetworkConfig, NetworkError, PeerAddress,
    };

    let (_dir, mut net) = devnet(4, 0)?;
    net.nodes[3].kill9()?;
    let node_key =
        |index: usize| demo::demo_key(&net.record.seed, &net.record.nodes[index].org, "node");
    let node0 = peer_id_from_node_key(node_key(0).public().0)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let rogue = runtime.block_on(async {
        let mut config =
            NetworkConfig::new(net.record.chain_id.clone(), node_key(3).secret_bytes());
        config.listen_addrs = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
        config.peers = vec![PeerAddress {
            peer_id: node0,
            address: format!("/ip4/127.0.0.1/tcp/{}", net.record.nodes[0].p2p_port).parse()?,
        }];
        config.allowed_peers = [node0].into_iter().collect();
        let (handle, events) = Network::start(config)?;
        anyhow::Ok((handle, events))
    })?;
    let (rogue, _events) = rogue;
    wait_until(
        "the rogue peer to join node 0's consensus topic",
        DEADLINE,
        || {
            let peers = runtime
                .block_on(rogue.topic_peers(GossipTopic::Consensus))
                .ok()?;
            peers.contains(&node0).then_some(())
        },
    )?;
    let mut client = net.client(0, DEADLINE)?;
    wait_until(
        "node 0 to count the rogue among its 3 peers",
        DEADLINE,
        || (client.status().ok()?.peers_count == 3).then_some(()),
    )?;
    let start = net.height(0).context("node 0 answers")?;

    // Node 0 bans after the 10th; it may close the connection before the rogue has sent the
    // last two, and then publishing them finds no peer, which is the ban working.
    for i in 0..12u32 {
        let garbage = format!("not a consensus message {i}").into_bytes();
        match runtime.block_on(rogue.publish_consensus(garbage)) {
            Ok(()) => {}
            Err(NetworkError::NoPeersSubscribed { .. }) if i >= 10 => break,
            Err(error) => {
                return Err(error).with_context(|| format!("publishing garbage message {i}"))
            }
        }
    }
    wait_until("node 0 to ban the rogue peer", DEADLINE, || {
        net.nodes[0]
            .log_tail(2000)
            .contains("peer banned")
            .then_some(())
    })?;
    wait_until("node 0 to drop the rogue peer", DEADLINE, || {
        let peers = runtime.block_on(rogue.connected_peers()).ok()?;
        (!peers.contains(&node0)).then_some(())
    })?;
    let log = net.nodes[0].log_tail(2000);
    assert!(
        log.contains("dropped malformed consensus message"),
        "node 0 did not say why it dropped the messages:\n{log}"
    );
    // Operators see it in the metrics too.
    let metrics_port = net.record.nodes[0].metrics_port;
    wait_until("node 0's metrics to count the ban", DEADLINE, || {
        let text = scrape_metrics(metrics_port).ok()?;
        text.lines()
            .any(|line| line == "gongzhi_peers_banned_total 1")
            .then_some(())
    })?;

    // The chain goes on with three validators, and the banned peer stays out meanwhile (it
    // redials with backoff; the ban lasts 300 s).
    net.wait_height(0, start + 3, DEADLINE)?;
    net.wait_height(1, start + 3, DEADLINE)?;
    // Node 0 counts a peer once it is identified, which a refused redial never is (the
    // rogue may see a redial's connection for the instant before node 0 closes it).
    let peers = client.status()?.peers_count;
    assert!(
        peers <= 2,
        "node 0 counts {peers} peers: the banned one is back (nodes 1 and 2 are the others)"
    );
    runtime.block_on(rogue.shutdown())?;
    net.stop_all(Duration::from_secs(10))
}
