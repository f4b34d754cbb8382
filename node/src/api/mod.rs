//! The gRPC API: tonic services over committed state, plus the standard health and reflection
//! services so grpcurl, grpcui, Postman and generated stubs work without our files.
//!
//! Status codes follow their spec: `InvalidArgument` names the field, `NotFound` for absent
//! objects, `FailedPrecondition` for a state that forbids the call, `ResourceExhausted` for
//! limits, `DeadlineExceeded` when a wait outlives the request deadline, `Unavailable` while
//! the node is catching up. Message size, concurrency and the default deadline come from
//! `[rpc]` in the config.
//!
//! Threads: the API runs on its own threads, one per core, each a single-threaded tokio
//! runtime serving the connections handed to it (see [`serve`]); consensus and networking
//! keep the node's runtime. Handlers must not block: store reads go to `spawn_blocking`.
//! `gongzhi.v1.Authorization` calls skip tonic's generic router ([`ApiRouter`]).

pub mod authorization;
mod civility;
mod consistency;
mod convert;
mod ledger;
mod node;
pub mod receipt;
mod registry;
mod submit_checks;

use std::convert::Infallible;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::future::Either;
use gongzhi_proto::v1::authorization_server::AuthorizationServer;
use gongzhi_proto::v1::civility_server::CivilityServer;
use gongzhi_proto::v1::ledger_server::LedgerServer;
use gongzhi_proto::v1::node_server::NodeServer;
use gongzhi_proto::v1::registry_server::RegistryServer;
use tokio::sync::{mpsc, oneshot, watch};
use tonic::body::Body;
use tonic::codegen::{http, Service};
use tonic::server::NamedService;
use tonic::service::Routes;

pub use consistency::{deadline_of, resolve_height, ResolvedState};

use crate::config::RpcSection;
use crate::run::NodeContext;

/// Serve the API on `[rpc] listen` until `shutdown` fires.
///
/// Connections are accepted here and handed out round-robin to API threads, each running a
/// single-threaded runtime: a connection's frames, its streams' handlers and its writes stay
/// on one thread, so the answers to all the requests read in one pass go out in one write
/// instead of one each, and no task hops between cores. Handlers that read the store still
/// use `spawn_blocking` (each API runtime has its own blocking pool).
pub async fn serve(context: NodeContext, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let rpc = context.config.rpc.clone();
    let addr: std::net::SocketAddr = rpc
        .listen
        .parse()
        .with_context(|| format!("[rpc] listen = {:?} is not host:port", rpc.listen))?;
    let router = ApiRouter::build(&context).await?;

    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen for gRPC on {addr} (in use? change [rpc] listen)")
    })?;
    let threads = match rpc.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    tracing::info!(%addr, threads, "gRPC API listening");
    let mut workers = Vec::with_capacity(threads);
    for i in 0..threads {
        workers.push(ApiThread::spawn(i, router.clone(), &rpc, shutdown.clone())?);
    }
    let mut next = 0;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors or a connection reset before it was accepted:
                // keep serving the connections we have.
                tracing::warn!(error = %e, "gRPC API: cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // TCP_NODELAY on every accepted connection: without it a response written in two
        // segments waits for the client's delayed ACK (~40 ms) under Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "gRPC API: cannot hand a connection to an API thread");
                continue;
            }
        };
        if workers[next].connections.send(stream).is_err() {
            // That thread's server ended without a shutdown: the API is broken, say why.
            let stopped = workers.swap_remove(next);
            let ended = stopped
                .done
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a gRPC API thread panicked")));
            return ended.and_then(|()| Err(anyhow::anyhow!("a gRPC API thread stopped serving")));
        }
        next = (next + 1) % workers.len();
    }
    drop(listener);
    let mut result = Ok(());
    for worker in workers {
        let ApiThread { connections, done } = worker;
        drop(connections);
        let ended = done
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("a gRPC API thread panicked")));
        if result.is_ok() {
            result = ended;
        }
    }
    result
}

/// The transport settings of every API thread.
///
/// - No server-wide timeout layer: every handler that waits bounds its wait by
///   [`deadline_of`] (the call's `grpc-timeout`, capped by `[rpc] default_deadline_ms`) and
///   answers `DEADLINE_EXCEEDED` itself; the layer only added a timer per call and turned a
///   missed default deadline into `CANCELLED`. (tonic still honours a client's
///   `grpc-timeout`.)
/// - `[rpc] concurrency_limit` is HTTP/2's `max_concurrent_streams`: the client queues
///   requests beyond it, with no semaphore to take per call.
fn server(rpc: &RpcSection) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .max_concurrent_streams(u32::try_from(rpc.concurrency_limit).unwrap_or(u32::MAX))
}

/// One API thread: its single-threaded runtime serves the connections sent to it.
#[derive(Debug)]
struct ApiThread {
    connections: mpsc::UnboundedSender<std::net::TcpStream>,
    done: oneshot::Receiver<Result<()>>,
}

impl ApiThread {
    fn spawn(
        i: usize,
        router: ApiRouter,
        rpc: &RpcSection,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<ApiThread> {
        let (connections, incoming) = mpsc::unbounded_channel::<std::net::TcpStream>();
        let (done_tx, done) = oneshot::channel();
        let server = server(rpc);
        std::thread::Builder::new()
            .name(format!("gongzhi-api-{i}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("cannot start a gRPC API runtime")
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            let incoming = tokio_stream::StreamExt::map(
                                tokio_stream::wrappers::UnboundedReceiverStream::new(incoming),
                                tokio::net::TcpStream::from_std,
                            );
                            server
                                .serve_with_incoming_shutdown(router, incoming, async move {
                                    let _ = shutdown.changed().await;
                                })
                                .await
                                .context("gRPC server failed")
                        })
                    });
                let _ = done_tx.send(result);
            })
            .context("cannot start a gRPC API thread")?;
        Ok(ApiThread { connections, done })
    }
}

type AuthorizationApi = AuthorizationServer<authorization::AuthorizationService>;

/// Routes `gongzhi.v1.Authorization` calls straight to their service (the hot path: no
/// generic router, no body re-boxing) and everything else through tonic's `Routes`.
#[derive(Debug, Clone)]
struct ApiRouter {
    authorization: AuthorizationApi,
    other: Routes,
}

impl ApiRouter {
    async fn build(context: &NodeContext) -> Result<ApiRouter> {
        let max = context.config.rpc.max_message_bytes;
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<LedgerServer<ledger::LedgerService>>()
            .await;
        health_reporter
            .set_serving::<NodeServer<node::NodeService>>()
            .await;
        health_reporter.set_serving::<AuthorizationApi>().await;
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

        let latest_index = authorization::LatestIndex::spawn(context.clone());
        let authorization = AuthorizationServer::new(authorization::AuthorizationService::new(
            context.clone(),
            latest_index,
        ))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
        let other = Routes::new(health_service)
            .add_service(reflection)
            .add_service(
                LedgerServer::new(ledger::LedgerService::new(context.clone()))
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(
                NodeServer::new(node::NodeService::new(context.clone()))
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(authorization.clone())
            .add_service(
                CivilityServer::new(civility::CivilityService::new(context.clone()))
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(
                RegistryServer::new(registry::RegistryService::new(context.clone()))
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .prepare();
        Ok(ApiRouter {
            authorization,
            other,
        })
    }

    /// Whether `path` is `/gongzhi.v1.Authorization/<method>`.
    fn is_authorization(path: &str) -> bool {
        path.strip_prefix('/')
            .and_then(|p| p.strip_prefix(<AuthorizationApi as NamedService>::NAME))
            .is_some_and(|method| method.starts_with('/'))
    }
}

impl Service<http::Request<Body>> for ApiRouter {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Either<
        <AuthorizationApi as Service<http::Request<Body>>>::Future,
        <Routes as Service<http::Request<Body>>>::Future,
    >;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        // Both are always ready: the generated server and tonic's router do no back-pressure.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if ApiRouter::is_authorization(request.uri().path()) {
            Either::Left(self.authorization.call(request))
        } else {
            Either::Right(self.other.call(request))
        }
    }
}
