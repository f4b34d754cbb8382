//! The gRPC API: tonic services over committed state, plus the standard health and reflection
//! services so grpcurl, grpcui, Postman and generated stubs work without our files.
//!
//! Status codes follow their spec: `InvalidArgument` names the field, `NotFound` for absent
//! objects, `FailedPrecondition` for a state that forbids the call, `ResourceExhausted` for
//! limits, `DeadlineExceeded` when a wait outlives the request deadline, `Unavailable` while
//! the node is catching up. Message size, concurrency and the default deadline come from
//! `[rpc]` in the config.

pub mod authorization;
mod civility;
mod consistency;
mod convert;
mod ledger;
mod node;
pub mod receipt;
mod registry;

use std::time::Duration;

use anyhow::{Context, Result};
use gongzhi_proto::v1::authorization_server::AuthorizationServer;
use gongzhi_proto::v1::civility_server::CivilityServer;
use gongzhi_proto::v1::ledger_server::LedgerServer;
use gongzhi_proto::v1::node_server::NodeServer;
use gongzhi_proto::v1::registry_server::RegistryServer;
use tokio::sync::watch;

pub use consistency::{deadline_of, resolve_height, ResolvedState};

use crate::run::NodeContext;

/// Serve the API on `[rpc] listen` until `shutdown` fires.
pub async fn serve(context: NodeContext, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let rpc = context.config.rpc.clone();
    let addr: std::net::SocketAddr = rpc
        .listen
        .parse()
        .with_context(|| format!("[rpc] listen = {:?} is not host:port", rpc.listen))?;
    let max = rpc.max_message_bytes;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<LedgerServer<ledger::LedgerService>>()
        .await;
    health_reporter
        .set_serving::<NodeServer<node::NodeService>>()
        .await;
    health_reporter
        .set_serving::<AuthorizationServer<authorization::AuthorizationService>>()
        .await;
    health_reporter
        .set_serving::<CivilityServer<civility::CivilityService>>()
        .await;
    health_reporter
        .set_serving::<RegistryServer<registry::RegistryService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(gongzhi_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("cannot build the reflection service")?;

    let ledger = LedgerServer::new(ledger::LedgerService::new(context.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let node = NodeServer::new(node::NodeService::new(context.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let latest_index = authorization::LatestIndex::spawn(context.clone());
    let authorization = AuthorizationServer::new(authorization::AuthorizationService::new(
        context.clone(),
        latest_index,
    ))
    .max_decoding_message_size(max)
    .max_encoding_message_size(max);
    let civility = CivilityServer::new(civility::CivilityService::new(context.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let registry = RegistryServer::new(registry::RegistryService::new(context.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);

    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen for gRPC on {addr} (in use? change [rpc] listen)")
    })?;
    tracing::info!(%addr, "gRPC API listening");
    tonic::transport::Server::builder()
        .concurrency_limit_per_connection(rpc.concurrency_limit)
        .timeout(Duration::from_millis(rpc.default_deadline_ms))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(ledger)
        .add_service(node)
        .add_service(authorization)
        .add_service(civility)
        .add_service(registry)
        .serve_with_incoming_shutdown(
            // TCP_NODELAY on every accepted connection: without it a response written in two
            // segments waits for the client's delayed ACK (~40 ms) under Nagle's algorithm.
            tokio_stream::StreamExt::map(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                |conn| {
                    if let Ok(stream) = &conn {
                        let _ = stream.set_nodelay(true);
                    }
                    conn
                },
            ),
            async move {
                let _ = shutdown.changed().await;
            },
        )
        .await
        .context("gRPC server failed")?;
    Ok(())
}
