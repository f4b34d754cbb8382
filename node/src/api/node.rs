//! `gongzhi.v1.Node`: what this node is and where it stands.

use gongzhi_proto::v1::node_server::Node;
use gongzhi_proto::v1::{NodeRole, StatusRequest, StatusResponse};
use tonic::{Request, Response, Status};

use crate::config::Role;
use crate::run::NodeContext;

/// The Node service.
#[derive(Debug, Clone)]
pub struct NodeService {
    context: NodeContext,
}

impl NodeService {
    /// Serve from `context`.
    pub fn new(context: NodeContext) -> NodeService {
        NodeService { context }
    }
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let status = self.context.driver.status.borrow().clone();
        Ok(Response::new(StatusResponse {
            chain_id: self.context.chain.chain_id().to_string(),
            latest_height: status.height,
            latest_block_hash: status.block_hash.0.to_vec(),
            latest_block_time_ms: status.block_time.millis(),
            role: match self.context.role {
                Role::Validator => NodeRole::Validator as i32,
                Role::Observer => NodeRole::Observer as i32,
            },
            peers_count: status.peers as u32,
            syncing: status.syncing,
            node_version: env!("CARGO_PKG_VERSION").to_string(),
            earliest_height: 1,
            org_id: String::new(),
            node_public_key: self.context.node_key.0.to_vec(),
        }))
    }
}
