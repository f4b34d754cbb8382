//! End-to-end tests of `gongzhi_node::network` over real libp2p on loopback.
//!
//! Every node listens on `/ip4/127.0.0.1/tcp/0`; the actual address is read from its
//! `ListeningOn` event. Nothing sleeps for a fixed time: tests wait on conditions (an event, or
//! a state polled through the handle) with a generous deadline so they pass on a loaded machine.
//! Run with `RUST_LOG=gongzhi_node=debug` to see the network logs.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gongzhi_node::network::{
    keypair_from_node_key, BanPolicy, BlockSource, GossipTopic, Multiaddr, Network, NetworkConfig,
    NetworkError, NetworkEvent, NetworkHandle, PeerAddress, PeerId, Validation,
};
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
const CHAIN: &str = "gongzhi-test";

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn node_key(seed: u8) -> [u8; 32] {
    [seed; 32]
}

fn peer_id(seed: u8) -> PeerId {
    keypair_from_node_key(node_key(seed))
        .expect("any 32-byte seed is a valid ed25519 key")
        .public()
        .to_peer_id()
}

fn loopback(port: u16) -> Multiaddr {
    format!("/ip4/127.0.0.1/tcp/{port}")
        .parse()
        .expect("valid multiaddr")
}

struct TestNode {
    seed: u8,
    handle: NetworkHandle,
    events: mpsc::Receiver<NetworkEvent>,
    address: Multiaddr,
}

impl TestNode {
    fn peer_id(&self) -> PeerId {
        self.handle.local_peer_id()
    }

    fn as_peer(&self) -> PeerAddress {
        PeerAddress {
            peer_id: self.peer_id(),
            address: self.address.clone(),
        }
    }

    /// Collects events until one matches `what`; returns all of them, the match last.
    async fn events_until(
        &mut self,
        description: &str,
        mut what: impl FnMut(&NetworkEvent) -> bool,
    ) -> Vec<NetworkEvent> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "node {}: no {description} within {DEADLINE:?}; saw {seen:?}",
                        self.seed
                    )
                })
                .unwrap_or_else(|| panic!("node {}: event channel closed", self.seed));
            let done = what(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }

    /// Events already delivered, without waiting.
    fn drain(&mut self) -> Vec<NetworkEvent> {
        let mut seen = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            seen.push(event);
        }
        seen
    }
}

/// Starts a node on `port` (0: OS-assigned) and waits for its listen address.
async fn start_node(
    seed: u8,
    port: u16,
    allowed: &[u8],
    peers: Vec<PeerAddress>,
    adjust: impl FnOnce(&mut NetworkConfig),
) -> TestNode {
    let mut config = NetworkConfig::new(CHAIN, node_key(seed));
    config.listen_addrs = vec![loopback(port)];
    config.peers = peers;
    config.allowed_peers = allowed.iter().map(|seed| peer_id(*seed)).collect();
    adjust(&mut config);
    let (handle, events) = Network::start(config).expect("network starts");
    let mut node = TestNode {
        seed,
        handle,
        events,
        address: loopback(0),
    };
    let seen = node
        .events_until("listen address", |event| {
            matches!(event, NetworkEvent::ListeningOn(_))
        })
        .await;
    if let Some(NetworkEvent::ListeningOn(address)) = seen.last() {
        node.address = address.clone();
    }
    node
}

/// Polls `condition` until it holds or the deadline passes.
async fn eventually<F, Fut>(description: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reached within {DEADLINE:?}: {description}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `node` sees every peer of `others` connected and subscribed to both topics.
async fn wait_for_mesh(node: &TestNode, others: &[PeerId]) {
    let handle = node.handle.clone();
    let wanted: HashSet<PeerId> = others.iter().copied().collect();
    eventually(
        &format!("node {} subscribed with {} peers", node.seed, others.len()),
        || {
            let handle = handle.clone();
            let wanted = wanted.clone();
            async move {
                for topic in GossipTopic::ALL {
                    let peers: HashSet<PeerId> = handle
                        .topic_peers(topic)
                        .await
                        .expect("network running")
                        .into_iter()
                        .collect();
                    if !wanted.is_subset(&peers) {
                        return false;
                    }
                }
                true
            }
        },
    )
    .await;
}

fn count_consensus(events: &[NetworkEvent], payload: &[u8]) -> usize {
    events
        .iter()
        .filter(|event| matches!(event, NetworkEvent::Consensus { bytes, .. } if bytes == payload))
        .count()
}

fn is_consensus(event: &NetworkEvent, payload: &[u8]) -> bool {
    matches!(event, NetworkEvent::Consensus { bytes, .. } if bytes == payload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_reaches_all_members_once() {
    init_logs();
    let members = [11, 12, 13];
    let mut a = start_node(11, 0, &members, vec![], |_| {}).await;
    let mut b = start_node(12, 0, &members, vec![a.as_peer()], |_| {}).await;
    let mut c = start_node(13, 0, &members, vec![a.as_peer(), b.as_peer()], |_| {}).await;
    let (pa, pb, pc) = (a.peer_id(), b.peer_id(), c.peer_id());
    wait_for_mesh(&a, &[pb, pc]).await;
    wait_for_mesh(&b, &[pa, pc]).await;
    wait_for_mesh(&c, &[pa, pb]).await;

    a.handle
        .publish_consensus(b"vote h=1 r=0".to_vec())
        .await
        .expect("published");
    a.handle
        .publish_tx(b"tx nonce=1".to_vec())
        .await
        .expect("published");
    for node in [&mut b, &mut c] {
        let seen = node
            .events_until("consensus message", |event| {
                is_consensus(event, b"vote h=1 r=0")
            })
            .await;
        let via_member = seen.iter().all(|event| match event {
            NetworkEvent::Consensus { via, .. } => [pa, pb, pc].contains(via),
            _ => true,
        });
        assert!(via_member, "gossip comes from members only: {seen:?}");
        node.events_until("tx", |event| {
            matches!(event, NetworkEvent::Txs { txs, .. } if txs == &[b"tx nonce=1".to_vec()])
        })
        .await;
    }

    // The same payload published by two nodes is delivered once per node: ids are content
    // hashes, so the second copy is a duplicate wherever it arrives.
    let payload = b"proposal h=2".to_vec();
    a.handle
        .publish_consensus(payload.clone())
        .await
        .expect("published");
    c.handle
        .publish_consensus(payload.clone())
        .await
        .expect("a duplicate publish is accepted as a no-op");
    a.handle
        .publish_consensus(payload.clone())
        .await
        .expect("republishing is a no-op");
    // Sentinels from both publishers: once B has them, any copy of `payload` sent directly
    // before them has arrived.
    a.handle
        .publish_consensus(b"sentinel a".to_vec())
        .await
        .expect("published");
    c.handle
        .publish_consensus(b"sentinel c".to_vec())
        .await
        .expect("published");
    let mut seen_by_b = b
        .events_until("sentinel a", |event| is_consensus(event, b"sentinel a"))
        .await;
    if count_consensus(&seen_by_b, b"sentinel c") == 0 {
        seen_by_b.extend(
            b.events_until("sentinel c", |event| is_consensus(event, b"sentinel c"))
                .await,
        );
    }
    seen_by_b.extend(b.drain());
    assert_eq!(count_consensus(&seen_by_b, &payload), 1, "B: {seen_by_b:?}");

    let seen_by_c = c
        .events_until("sentinel a", |event| is_consensus(event, b"sentinel a"))
        .await;
    assert!(count_consensus(&seen_by_c, &payload) <= 1);
    let mut seen_by_a = a
        .events_until("sentinel c", |event| is_consensus(event, b"sentinel c"))
        .await;
    seen_by_a.extend(a.drain());
    assert_eq!(
        count_consensus(&seen_by_a, &payload),
        0,
        "A published it first, so C's copy is a duplicate for A"
    );
    assert_eq!(count_consensus(&seen_by_a, b"sentinel a"), 0, "no echo");

    for node in [&a, &b, &c] {
        node.handle.shutdown().await.expect("stops");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txs_travel_in_batches_in_order() {
    init_logs();
    let members = [81, 82];
    let a = start_node(81, 0, &members, vec![], |config| {
        // A long interval: only the count limit can complete the first batch.
        config.tx_batch.max_txs = 50;
        config.tx_batch.interval = Duration::from_secs(600);
    })
    .await;
    let mut b = start_node(82, 0, &members, vec![a.as_peer()], |_| {}).await;
    wait_for_mesh(&a, &[b.peer_id()]).await;
    wait_for_mesh(&b, &[a.peer_id()]).await;

    let sent: Vec<Vec<u8>> = (0..120u32)
        .map(|n| format!("tx {n}").into_bytes())
        .collect();
    for tx in &sent {
        a.handle.publish_tx(tx.clone()).await.expect("queued");
    }
    let oversized = vec![0; gongzhi_node::network::MAX_BATCH_TX_BYTES + 1];
    assert!(matches!(
        a.handle.publish_tx(oversized).await,
        Err(NetworkError::MessageTooLarge { .. })
    ));
    let seen = b
        .events_until(
            "second full batch",
            |event| matches!(event, NetworkEvent::Txs { txs, .. } if txs.last() == sent.get(99)),
        )
        .await;
    let batches: Vec<&Vec<Vec<u8>>> = seen
        .iter()
        .filter_map(|event| match event {
            NetworkEvent::Txs { txs, .. } => Some(txs),
            _ => None,
        })
        .collect();
    assert_eq!(batches, vec![&sent[..50].to_vec(), &sent[50..100].to_vec()]);
    // The last 20 wait for the (10-minute) interval: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !b.drain()
            .iter()
            .any(|event| matches!(event, NetworkEvent::Txs { .. })),
        "a partial batch went out before its deadline"
    );

    for node in [&a, &b] {
        node.handle.shutdown().await.expect("stops");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_is_refused() {
    init_logs();
    let members = [21, 22];
    let mut a = start_node(21, 0, &members, vec![], |_| {}).await;
    let mut b = start_node(22, 0, &members, vec![a.as_peer()], |_| {}).await;
    // The outsider would accept the members, but they do not accept it.
    let mut outsider =
        start_node(29, 0, &[21, 22, 29], vec![a.as_peer(), b.as_peer()], |_| {}).await;
    let (pa, pb, po) = (a.peer_id(), b.peer_id(), outsider.peer_id());
    wait_for_mesh(&a, &[pb]).await;

    // The outsider's requests fail: every connection it makes is closed by the member.
    for member in [pa, pb] {
        let result = outsider.handle.request_status(member).await;
        assert!(
            matches!(result, Err(NetworkError::SyncFailed { .. })),
            "outsider got {result:?}"
        );
    }

    a.handle
        .publish_consensus(b"members only".to_vec())
        .await
        .expect("published");
    b.events_until("consensus message", |event| {
        is_consensus(event, b"members only")
    })
    .await;

    let mut seen_by_a = a.drain();
    seen_by_a.extend(b.drain());
    assert!(
        !seen_by_a.contains(&NetworkEvent::PeerConnected(po)),
        "a member accepted the outsider: {seen_by_a:?}"
    );
    for member in [&a, &b] {
        let connected = member.handle.connected_peers().await.expect("running");
        assert!(!connected.contains(&po));
    }
    let seen_by_outsider = outsider.drain();
    assert!(
        !seen_by_outsider.iter().any(|event| matches!(
            event,
            NetworkEvent::Txs { .. } | NetworkEvent::Consensus { .. }
        )),
        "outsider received gossip: {seen_by_outsider:?}"
    );

    for node in [&a, &b, &outsider] {
        node.handle.shutdown().await.expect("stops");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_member_closes_its_connection() {
    init_logs();
    let members = [31, 32, 33];
    let mut a = start_node(31, 0, &members, vec![], |_| {}).await;
    let b = start_node(32, 0, &members, vec![a.as_peer()], |_| {}).await;
    let mut c = start_node(33, 0, &members, vec![a.as_peer(), b.as_peer()], |_| {}).await;
    let (pa, pb, pc) = (a.peer_id(), b.peer_id(), c.peer_id());
    wait_for_mesh(&a, &[pb, pc]).await;
    // A node reports the disconnection only of a peer it reported connected (after identify),
    // which may come after the gossip mesh forms: wait for those reports first.
    let mut reported = HashSet::new();
    a.events_until("B and C connected", |event| {
        if let NetworkEvent::PeerConnected(peer) = event {
            reported.insert(*peer);
        }
        reported.contains(&pb) && reported.contains(&pc)
    })
    .await;
    c.events_until("A connected", |event| {
        *event == NetworkEvent::PeerConnected(pa)
    })
    .await;

    a.handle
        .set_allowed_peers([pb].into_iter().collect())
        .await
        .expect("running");
    a.events_until("C disconnected", |event| {
        *event == NetworkEvent::PeerDisconnected(pc)
    })
    .await;
    c.events_until("A disconnected", |event| {
        *event == NetworkEvent::PeerDisconnected(pa)
    })
    .await;
    assert_eq!(a.handle.connected_peers().await.expect("running"), vec![pb]);
    // C keeps redialing A (it is configured), and A keeps refusing.
    let result = c.handle.request_status(pa).await;
    assert!(
        matches!(result, Err(NetworkError::SyncFailed { .. })),
        "{result:?}"
    );
    assert!(!a
        .handle
        .connected_peers()
        .await
        .expect("running")
        .contains(&pc));

    // Admitting C again lets its redial through.
    a.handle
        .set_allowed_peers([pb, pc].into_iter().collect())
        .await
        .expect("running");
    a.events_until("C reconnected", |event| {
        *event == NetworkEvent::PeerConnected(pc)
    })
    .await;

    for node in [&a, &b, &c] {
        node.handle.shutdown().await.expect("stops");
    }
}

/// Serves heights 1..=`height`; block `h` is the bytes of `h`, except that a block at
/// `HUGE_FROM` or above is 2 MiB.
struct TestChain {
    height: u64,
}

const HUGE_FROM: u64 = 1000;

impl BlockSource for TestChain {
    fn status(&self) -> u64 {
        self.height
    }

    fn blocks(&self, from: u64, max: u32) -> Vec<Vec<u8>> {
        if from >= HUGE_FROM {
            return vec![vec![7; 2 * 1024 * 1024]];
        }
        (from..=self.height)
            .take(max as usize)
            .map(|height| height.to_be_bytes().to_vec())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_sync_returns_what_the_server_answered() {
    init_logs();
    let members = [41, 42];
    let server = start_node(41, 0, &members, vec![], |config| {
        config.block_source = Arc::new(TestChain { height: 42 });
    })
    .await;
    let client = start_node(42, 0, &members, vec![server.as_peer()], |config| {
        config.max_sync_response_bytes = 1024 * 1024;
    })
    .await;
    let ps = server.peer_id();
    wait_for_mesh(&client, &[ps]).await;

    assert_eq!(client.handle.request_status(ps).await.expect("status"), 42);
    let blocks = client
        .handle
        .request_blocks(ps, 40, 10)
        .await
        .expect("blocks");
    let expected: Vec<Vec<u8>> = (40u64..=42).map(|h| h.to_be_bytes().to_vec()).collect();
    assert_eq!(blocks, expected);

    // The server sends a 2 MiB frame (within its 64 MiB limit); the client's limit is 1 MiB.
    let result = client.handle.request_blocks(ps, HUGE_FROM, 1).await;
    match result {
        Err(NetworkError::SyncFailed { peer, reason }) => {
            assert_eq!(peer, ps);
            assert!(reason.contains("exceeds the limit"), "{reason}");
        }
        other => panic!("oversized frame accepted: {other:?}"),
    }
    // Both nodes keep working.
    assert_eq!(client.handle.request_status(ps).await.expect("status"), 42);

    for node in [&server, &client] {
        node.handle.shutdown().await.expect("stops");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_peer_is_redialed() {
    init_logs();
    let members = [51, 52];
    let b = start_node(52, 0, &members, vec![], |_| {}).await;
    let port = b
        .address
        .iter()
        .find_map(|protocol| match protocol {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("tcp listen address");
    let mut a = start_node(51, 0, &members, vec![b.as_peer()], |_| {}).await;
    let pb = b.peer_id();
    a.events_until("B connected", |event| {
        *event == NetworkEvent::PeerConnected(pb)
    })
    .await;

    b.handle.shutdown().await.expect("stops");
    drop(b);
    a.events_until("B disconnected", |event| {
        *event == NetworkEvent::PeerDisconnected(pb)
    })
    .await;

    // Same key, same port; B dials nobody, so only A's backoff can reconnect them.
    let mut b = start_node(52, port, &members, vec![], |_| {}).await;
    let pa = a.peer_id();
    b.events_until("A reconnected", |event| {
        *event == NetworkEvent::PeerConnected(pa)
    })
    .await;
    a.events_until("B reconnected", |event| {
        *event == NetworkEvent::PeerConnected(pb)
    })
    .await;
    wait_for_mesh(&a, &[pb]).await;
    a.handle
        .publish_consensus(b"after restart".to_vec())
        .await
        .expect("published");
    b.events_until("gossip after restart", |event| {
        is_consensus(event, b"after restart")
    })
    .await;

    for node in [&a, &b] {
        node.handle.shutdown().await.expect("stops");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_port_is_an_actionable_error() {
    init_logs();
    let first = start_node(61, 0, &[61], vec![], |_| {}).await;
    let mut config = NetworkConfig::new(CHAIN, node_key(62));
    config.listen_addrs = vec![first.address.clone()];
    let error = Network::start(config).expect_err("port in use");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("cannot listen on {}", first.address)),
        "{message}"
    );
    assert!(message.to_lowercase().contains("in use"), "{message}");
    first.handle.shutdown().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_forwards_only_what_the_host_accepts() {
    init_logs();
    // A line A - B - C: A and C only accept B, so everything between them goes through B,
    // which validates manually.
    let a = start_node(71, 0, &[72], vec![], |_| {}).await;
    let mut b = start_node(72, 0, &[71, 73], vec![a.as_peer()], |config| {
        config.manual_validation = true;
    })
    .await;
    let mut c = start_node(73, 0, &[72], vec![b.as_peer()], |_| {}).await;
    let (pa, pb) = (a.peer_id(), b.peer_id());
    wait_for_mesh(&a, &[pb]).await;
    wait_for_mesh(&c, &[pb]).await;
    wait_for_mesh(&b, &[pa, c.peer_id()]).await;

    for (payload, verdict) in [
        (&b"valid 1"[..], Validation::Accept),
        (&b"invalid 2"[..], Validation::Reject),
        (&b"valid 3"[..], Validation::Accept),
    ] {
        a.handle
            .publish_consensus(payload.to_vec())
            .await
            .expect("published");
        let seen = b
            .events_until("message at the relay", |event| is_consensus(event, payload))
            .await;
        let Some(NetworkEvent::Consensus { id, via, .. }) = seen.last() else {
            panic!("consensus event expected");
        };
        assert_eq!(*via, pa);
        b.handle
            .report_validation(id.clone(), *via, verdict)
            .await
            .expect("running");
    }

    let mut seen_by_c = c
        .events_until("valid 1", |event| is_consensus(event, b"valid 1"))
        .await;
    if count_consensus(&seen_by_c, b"valid 3") == 0 {
        seen_by_c.extend(
            c.events_until("valid 3", |event| is_consensus(event, b"valid 3"))
                .await,
        );
    }
    seen_by_c.extend(c.drain());
    assert_eq!(
        count_consensus(&seen_by_c, b"invalid 2"),
        0,
        "{seen_by_c:?}"
    );
    let relayed = seen_by_c.iter().all(|event| match event {
        NetworkEvent::Consensus { via, .. } => *via == pb,
        _ => true,
    });
    assert!(relayed, "relay recorded: {seen_by_c:?}");

    for node in [&a, &b, &c] {
        node.handle.shutdown().await.expect("stops");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_gossip_is_rejected_is_banned_then_readmitted() {
    init_logs();
    // B validates manually and bans a peer after 3 rejected messages, for 3 s. A dials B and
    // keeps redialing it (backoff at most 500 ms), so the ban is what keeps them apart.
    let ban = Duration::from_secs(3);
    let mut b = start_node(91, 0, &[92], vec![], |config| {
        config.manual_validation = true;
        config.ban = BanPolicy {
            limit: 3,
            window: Duration::from_secs(60),
            duration: ban,
        };
    })
    .await;
    let a = start_node(92, 0, &[91], vec![b.as_peer()], |config| {
        config.max_backoff = Duration::from_millis(500);
    })
    .await;
    let (pa, pb) = (a.peer_id(), b.peer_id());
    wait_for_mesh(&a, &[pb]).await;
    wait_for_mesh(&b, &[pa]).await;

    // What B accepts never counts; two rejections stay under the limit.
    let mut verdicts = vec![(b"fine".to_vec(), Validation::Accept)];
    for i in 0..2 {
        verdicts.push((format!("garbage {i}").into_bytes(), Validation::Reject));
    }
    verdicts.push((b"fine again".to_vec(), Validation::Accept));
    verdicts.push((b"garbage 2".to_vec(), Validation::Reject));
    let mut banned_at = None;
    for (payload, verdict) in verdicts {
        a.handle
            .publish_consensus(payload.clone())
            .await
            .expect("published");
        let seen = b
            .events_until("the message", |event| is_consensus(event, &payload))
            .await;
        assert!(
            !seen.contains(&NetworkEvent::PeerDisconnected(pa)),
            "disconnected before the third rejection: {seen:?}"
        );
        let Some(NetworkEvent::Consensus { id, via, .. }) = seen.last() else {
            panic!("consensus event expected");
        };
        // Taken before the report: the ban starts when the network task handles it.
        banned_at = Some(std::time::Instant::now());
        b.handle
            .report_validation(id.clone(), *via, verdict)
            .await
            .expect("running");
    }
    let seen = b
        .events_until("A disconnected by the ban", |event| {
            *event == NetworkEvent::PeerDisconnected(pa)
        })
        .await;
    assert!(
        seen.contains(&NetworkEvent::PeerBanned(pa)),
        "the host is told of the ban: {seen:?}"
    );
    let banned_at = banned_at.expect("three rejections reported");
    assert!(
        !b.handle
            .connected_peers()
            .await
            .expect("running")
            .contains(&pa),
        "a banned peer stays disconnected"
    );

    // A redials every 500 ms at most, but B refuses it until the ban ends; then it is back
    // and its gossip is delivered again.
    b.events_until("A readmitted after the ban", |event| {
        *event == NetworkEvent::PeerConnected(pa)
    })
    .await;
    let apart = banned_at.elapsed();
    assert!(
        apart >= ban,
        "readmitted after {apart:?}, before the {ban:?} ban ended"
    );
    wait_for_mesh(&a, &[pb]).await;
    wait_for_mesh(&b, &[pa]).await;
    a.handle
        .publish_consensus(b"after the ban".to_vec())
        .await
        .expect("published");
    b.events_until("gossip after the ban", |event| {
        is_consensus(event, b"after the ban")
    })
    .await;

    for node in [&a, &b] {
        node.handle.shutdown().await.expect("stops");
    }
}
