//! The gRPC client shared by `gongzhi tx`, `query`, `check` and `bench`: one channel to one
//! node, typed clients for every service, and the small reads the commands need (chain id,
//! next nonce).

use anyhow::{Context, Result};
use gongzhi_ledger::{PublicKey, Timestamp};
use gongzhi_proto::v1::authorization_client::AuthorizationClient;
use gongzhi_proto::v1::civility_client::CivilityClient;
use gongzhi_proto::v1::ledger_client::LedgerClient;
use gongzhi_proto::v1::node_client::NodeClient;
use gongzhi_proto::v1::registry_client::RegistryClient;
use gongzhi_proto::v1::{GetStateProofRequest, StatusRequest};
use tonic::transport::{Channel, Endpoint};

/// Default node address of every command.
pub const DEFAULT_NODE: &str = "127.0.0.1:9090";

/// Clients of every service over one connection.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// Node address as given.
    pub addr: String,
    /// `gongzhi.v1.Ledger`.
    pub ledger: LedgerClient<Channel>,
    /// `gongzhi.v1.Authorization`.
    pub authorization: AuthorizationClient<Channel>,
    /// `gongzhi.v1.Civility`.
    pub civility: CivilityClient<Channel>,
    /// `gongzhi.v1.Registry`.
    pub registry: RegistryClient<Channel>,
    /// `gongzhi.v1.Node`.
    pub node: NodeClient<Channel>,
}

/// `http://` + `addr` unless it has a scheme already.
pub fn endpoint_url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

impl ApiClient {
    /// Connect to the node at `addr` (`host:port` or a URL).
    pub async fn connect(addr: &str) -> Result<ApiClient> {
        let channel = Endpoint::from_shared(endpoint_url(addr))
            .with_context(|| format!("--node {addr:?} is not an address (use host:port)"))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(60))
            .connect()
            .await
            .with_context(|| {
                format!(
                    "cannot reach the node API at {addr}; is the node running? (see [rpc] listen)"
                )
            })?;
        Ok(ApiClient::from_channel(addr, channel))
    }

    /// Clients over an existing channel.
    pub fn from_channel(addr: &str, channel: Channel) -> ApiClient {
        ApiClient {
            addr: addr.to_string(),
            ledger: LedgerClient::new(channel.clone()),
            authorization: AuthorizationClient::new(channel.clone()),
            civility: CivilityClient::new(channel.clone()),
            registry: RegistryClient::new(channel.clone()),
            node: NodeClient::new(channel),
        }
    }

    /// The node's chain id.
    pub async fn chain_id(&mut self) -> Result<String> {
        Ok(self
            .node
            .status(StatusRequest {})
            .await
            .map_err(status_error)?
            .into_inner()
            .chain_id)
    }

    /// The next nonce of `signer`: its last used nonce in the latest state, plus one.
    pub async fn next_nonce(&mut self, signer: &PublicKey) -> Result<u64> {
        let response = self
            .ledger
            .get_state_proof(GetStateProofRequest {
                key: gongzhi_contracts::keys::nonce(signer),
                consistency: None,
            })
            .await
            .map_err(status_error)?
            .into_inner();
        let last: u64 = match response.value {
            Some(bytes) => gongzhi_ledger::codec::from_bytes(&bytes, "nonce")?,
            None => 0,
        };
        Ok(last + 1)
    }
}

/// A gRPC status as a readable error.
pub fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}

/// A current-thread runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Parse a time: milliseconds since the epoch, `now`, or `now`/`+` with an offset such as
/// `+30d`, `+2h`, `+15m`, `+90s`, `-1h`.
pub fn parse_time(text: &str, now: Timestamp) -> Result<Timestamp> {
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(Timestamp(ms));
    }
    let rest = text.strip_prefix("now").unwrap_or(text);
    let (sign, rest) = match rest.split_at_checked(1) {
        Some(("+", r)) => (1i128, r),
        Some(("-", r)) => (-1i128, r),
        _ => anyhow::bail!("time {text:?}: use milliseconds since the epoch, 'now', or an offset like +30d, +2h, -15m"),
    };
    let (digits, unit) = rest.split_at(rest.len().saturating_sub(1));
    let amount: i128 = digits
        .parse()
        .with_context(|| format!("time {text:?}: {digits:?} is not a number"))?;
    let unit_ms: i128 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => anyhow::bail!("time {text:?}: the unit must be s, m, h or d"),
    };
    let millis = i128::from(now.millis()) + sign * amount * unit_ms;
    u64::try_from(millis)
        .map(Timestamp)
        .map_err(|_| anyhow::anyhow!("time {text:?} is before 1970"))
}

/// Split `a,b,c` into trimmed, non-empty parts.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// 32 bytes from 64 hex characters; `what` names the argument in errors.
pub fn hex32(text: &str, what: &str) -> Result<[u8; 32]> {
    let bytes =
        hex::decode(text.trim()).with_context(|| format!("{what} must be 64 hex characters"))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        anyhow::anyhow!(
            "{what} must be 32 bytes (64 hex characters), got {}",
            b.len()
        )
    })
}
