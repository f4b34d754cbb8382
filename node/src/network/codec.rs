//! Wire format of the block-sync request-response protocol.
//!
//! One request or one response per stream, each as a single frame:
//! `u32 big-endian length ‖ postcard(value)`.
//!
//! Invariants:
//! - a frame whose declared length exceeds the limit is rejected with an `InvalidData` I/O error
//!   *before* anything is allocated for it, and the buffer then grows only with bytes actually
//!   received (a peer claiming 64 MiB and sending 10 bytes costs 10 bytes);
//! - a frame that is shorter than declared, fails to decode, or has trailing bytes after the
//!   value is rejected — never a panic; the request-response behaviour turns the error into an
//!   `InboundFailure`/`OutboundFailure` for that one request only;
//! - we never write a frame larger than our own limit for that direction.

use std::future::Future;
use std::io;
use std::pin::Pin;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{request_response, StreamProtocol};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Default limit of a response frame (a batch of blocks with their certificates): 64 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Limit of a request frame; requests are a few bytes.
pub const MAX_REQUEST_BYTES: usize = 1024;
/// Size of the length prefix.
const PREFIX_BYTES: usize = 4;
/// Initial buffer capacity, whatever length the peer announces.
const INITIAL_CAPACITY: usize = 64 * 1024;

/// A block-sync request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// "What is your latest committed height?"
    Status,
    /// "Send me at most `max` blocks starting at height `from`."
    Blocks {
        /// First height wanted.
        from: u64,
        /// Maximum number of blocks wanted (the server may send fewer).
        max: u32,
    },
}

impl SyncRequest {
    /// Name of the request kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            SyncRequest::Status => "Status",
            SyncRequest::Blocks { .. } => "Blocks",
        }
    }
}

/// A block-sync response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Answer to [`SyncRequest::Status`].
    Status {
        /// Latest committed height of the serving node.
        height: u64,
    },
    /// Answer to [`SyncRequest::Blocks`]: consecutive opaque encoded (block, certificate) pairs
    /// starting at the requested height; possibly fewer than asked, possibly none.
    Blocks(Vec<Vec<u8>>),
}

impl SyncResponse {
    /// Name of the response kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            SyncResponse::Status { .. } => "Status",
            SyncResponse::Blocks(_) => "Blocks",
        }
    }
}

/// The `request_response::Codec` of the block-sync protocol.
#[derive(Debug, Clone)]
pub struct SyncCodec {
    max_response_bytes: usize,
}

impl SyncCodec {
    /// A codec accepting and producing responses up to `max_response_bytes` (frame body).
    pub fn new(max_response_bytes: usize) -> Self {
        Self { max_response_bytes }
    }
}

/// Reads one frame of at most `max` body bytes and decodes it.
pub async fn read_frame<T, V>(io: &mut T, max: usize) -> io::Result<V>
where
    T: AsyncRead + Unpin + Send,
    V: DeserializeOwned,
{
    let mut prefix = [0u8; PREFIX_BYTES];
    io.read_exact(&mut prefix).await?;
    let declared = u32::from_be_bytes(prefix) as usize;
    if declared > max {
        return Err(invalid_data(format!(
            "frame of {declared} bytes exceeds the limit of {max} bytes"
        )));
    }
    let mut body = Vec::with_capacity(declared.min(INITIAL_CAPACITY));
    (&mut *io)
        .take(declared as u64)
        .read_to_end(&mut body)
        .await?;
    if body.len() != declared {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "frame declared {declared} bytes but the stream ended after {}",
                body.len()
            ),
        ));
    }
    decode_exact(&body)
}

/// Decodes a postcard value that must use every byte of `body`.
pub fn decode_exact<V: DeserializeOwned>(body: &[u8]) -> io::Result<V> {
    let (value, rest) = postcard::take_from_bytes::<V>(body)
        .map_err(|error| invalid_data(format!("malformed frame body: {error}")))?;
    if !rest.is_empty() {
        return Err(invalid_data(format!(
            "{} trailing bytes after the frame body",
            rest.len()
        )));
    }
    Ok(value)
}

/// Encodes `value` and writes it as one frame of at most `max` body bytes.
pub async fn write_frame<T, V>(io: &mut T, value: &V, max: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
    V: Serialize,
{
    let body = postcard::to_allocvec(value)
        .map_err(|error| invalid_data(format!("cannot encode frame: {error}")))?;
    let declared = u32::try_from(body.len())
        .ok()
        .filter(|len| (*len as usize) <= max)
        .ok_or_else(|| {
            invalid_data(format!(
                "refusing to send a frame of {} bytes over the limit of {max} bytes",
                body.len()
            ))
        })?;
    io.write_all(&declared.to_be_bytes()).await?;
    io.write_all(&body).await?;
    io.flush().await
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

type BoxedIo<'a, V> = Pin<Box<dyn Future<Output = io::Result<V>> + Send + 'a>>;

// `request_response::Codec` is declared with `#[async_trait]`; this impl spells out the
// desugared signatures so the crate needs no `async-trait` dependency.
impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    fn read_request<'life0, 'life1, 'life2, 'async_trait, T>(
        &'life0 mut self,
        _protocol: &'life1 Self::Protocol,
        io: &'life2 mut T,
    ) -> BoxedIo<'async_trait, SyncRequest>
    where
        T: AsyncRead + Unpin + Send + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { read_frame(io, MAX_REQUEST_BYTES).await })
    }

    fn read_response<'life0, 'life1, 'life2, 'async_trait, T>(
        &'life0 mut self,
        _protocol: &'life1 Self::Protocol,
        io: &'life2 mut T,
    ) -> BoxedIo<'async_trait, SyncResponse>
    where
        T: AsyncRead + Unpin + Send + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let max = self.max_response_bytes;
        Box::pin(async move { read_frame(io, max).await })
    }

    fn write_request<'life0, 'life1, 'life2, 'async_trait, T>(
        &'life0 mut self,
        _protocol: &'life1 Self::Protocol,
        io: &'life2 mut T,
        request: SyncRequest,
    ) -> BoxedIo<'async_trait, ()>
    where
        T: AsyncWrite + Unpin + Send + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { write_frame(io, &request, MAX_REQUEST_BYTES).await })
    }

    fn write_response<'life0, 'life1, 'life2, 'async_trait, T>(
        &'life0 mut self,
        _protocol: &'life1 Self::Protocol,
        io: &'life2 mut T,
        response: SyncResponse,
    ) -> BoxedIo<'async_trait, ()>
    where
        T: AsyncWrite + Unpin + Send + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let max = self.max_response_bytes;
        Box::pin(async move { write_frame(io, &response, max).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;

    fn frame(declared: u32, body: &[u8]) -> Cursor<Vec<u8>> {
        let mut bytes = declared.to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        Cursor::new(bytes)
    }

    fn roundtrip(response: &SyncResponse, max: usize) -> io::Result<SyncResponse> {
        let mut buffer = Cursor::new(Vec::new());
        block_on(write_frame(&mut buffer, response, max))?;
        buffer.set_position(0);
        block_on(read_frame(&mut buffer, max))
    }

    #[test]
    fn responses_roundtrip() {
        let blocks = SyncResponse::Blocks(vec![vec![1, 2, 3], vec![], vec![9; 1000]]);
        assert_eq!(roundtrip(&blocks, 4096).expect("fits"), blocks);
        let status = SyncResponse::Status { height: u64::MAX };
        assert_eq!(roundtrip(&status, 64).expect("fits"), status);
    }

    #[test]
    fn oversized_declared_length_is_rejected_before_reading_the_body() {
        // Declares 4 GiB - 1 and sends nothing: must fail on the prefix alone.
        let mut stream = frame(u32::MAX, &[]);
        let error =
            block_on(read_frame::<_, SyncResponse>(&mut stream, 1024)).expect_err("over the limit");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("exceeds the limit"));
    }

    #[test]
    fn writer_refuses_frames_over_its_limit() {
        let big = SyncResponse::Blocks(vec![vec![0; 2048]]);
        let error = roundtrip(&big, 1024).expect_err("over the limit");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn short_frame_is_an_eof_error() {
        let mut stream = frame(100, &[0, 5]);
        let error = block_on(read_frame::<_, SyncResponse>(&mut stream, 1024))
            .expect_err("stream ended early");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn trailing_bytes_and_garbage_are_rejected() {
        let mut body = postcard::to_allocvec(&SyncRequest::Status).expect("encodes");
        body.push(0);
        let mut stream = frame(body.len() as u32, &body);
        let error =
            block_on(read_frame::<_, SyncRequest>(&mut stream, 1024)).expect_err("trailing byte");
        assert!(error.to_string().contains("trailing"));

        let mut garbage = frame(3, &[0xff, 0xff, 0xff]);
        let error = block_on(read_frame::<_, SyncRequest>(&mut garbage, 1024))
            .expect_err("unknown variant");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn request_kinds_are_named() {
        assert_eq!(SyncRequest::Blocks { from: 1, max: 2 }.kind(), "Blocks");
        assert_eq!(SyncResponse::Status { height: 0 }.kind(), "Status");
    }
}
