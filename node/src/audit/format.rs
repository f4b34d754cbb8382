//! The audit export file: one gzip stream holding a header, the genesis document, one record per
//! block and a trailer (the byte layout is in `docs/EXPORT_FORMAT.md`).
//!
//! Decompressed layout:
//! ```text
//! magic "GZAUDIT\n" (8 bytes) ‖ format version (u32 LE)
//! record*  where record = kind (u8) ‖ length (u32 LE) ‖ payload
//!   kind 1  genesis   postcard of `gongzhi_contracts::Genesis` (exactly the bytes its hash covers)
//!   kind 2  block     canonical `AuditBlock` (block, its commit certificate, its receipts)
//!   kind 3  trailer   block count (u64 LE) ‖ hash of the last block (32 bytes)
//! ```
//!
//! Invariants: the writer and the reader hold one record at a time (streaming, memory bounded by
//! the largest block); the reader never trusts a length before checking it against the limit of
//! its kind; every malformation is a [`FormatError`] naming the record number. The trailer only
//! detects truncation: it is not signed, the commit certificates are what proves the chain.

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind as IoErrorKind, Read, Write};
use std::path::Path;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use gongzhi_contracts::Genesis;
use gongzhi_ledger::codec::{from_bytes, to_bytes};
use gongzhi_ledger::{Block, Canonical, CommitCertificate, Hash, Receipt};
use serde::{Deserialize, Serialize};

/// First bytes of the decompressed stream.
pub const MAGIC: [u8; 8] = *b"GZAUDIT\n";
/// Version of the layout written by this code. Besides the record layout it names the contract
/// state layout the chain's roots were computed under: version 2 (chunked lists, resident
/// accounts) replaces version 1, whose chains do not re-execute to the same roots here.
pub const FORMAT_VERSION: u32 = 2;
/// Largest genesis record accepted.
pub const MAX_GENESIS_BYTES: usize = 16 * 1024 * 1024;

const KIND_GENESIS: u8 = 1;
const KIND_BLOCK: u8 = 2;
const KIND_TRAILER: u8 = 3;
const TRAILER_BYTES: usize = 8 + 32;

/// A block as the export carries it: the block, the certificate that committed it, and the
/// receipts its execution produced (authenticated by the header's receipts root).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditBlock {
    /// The block.
    pub block: Block,
    /// The commit certificate of this block.
    pub certificate: CommitCertificate,
    /// One receipt per tx, in order, as the chain recorded them.
    pub receipts: Vec<Receipt>,
}

impl Canonical for AuditBlock {
    const KIND: &'static str = "audit block";
    const MAX_BYTES: usize = gongzhi_ledger::block::MAX_BLOCK_BYTES * 2;
}

/// End-of-file marker: how many blocks precede it and the hash of the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Number of block records in the file.
    pub blocks: u64,
    /// Hash of the last block (the genesis hash when there are none).
    pub last_block_hash: Hash,
}

/// A malformed or unreadable export file.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Reading or writing the file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The stream is not gzip, or is corrupt inside (a changed byte fails gzip's CRC).
    #[error("record {record}: the file is not a valid gzip stream or is damaged ({source}); re-export it")]
    Corrupt {
        /// Records read before the damage.
        record: u64,
        /// The decoder's error.
        source: std::io::Error,
    },
    /// Not an audit export.
    #[error("not a Gongzhi audit export (magic bytes {found:02x?}); pass a file written by `gongzhi audit export`")]
    BadMagic {
        /// What the file starts with.
        found: Vec<u8>,
    },
    /// Written by another version of this tool.
    #[error("export format version {found}; this tool reads version {supported} (use a matching gongzhi release)")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Version this code reads.
        supported: u32,
    },
    /// The stream ends inside a record or before the trailer.
    #[error(
        "the file ends after {records} records without its trailer: it is truncated; re-export it"
    )]
    Truncated {
        /// Complete records read.
        records: u64,
    },
    /// A record kind this version does not know.
    #[error("record {record}: unknown record kind {kind}")]
    UnknownKind {
        /// Record number (0 = genesis).
        record: u64,
        /// The kind byte.
        kind: u8,
    },
    /// A record longer than its kind allows.
    #[error("record {record}: {kind} record of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Record number.
        record: u64,
        /// Kind name.
        kind: &'static str,
        /// Declared size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// A record that does not decode.
    #[error("record {record}: the {kind} does not decode: {reason}")]
    Undecodable {
        /// Record number.
        record: u64,
        /// Kind name.
        kind: &'static str,
        /// Decoder message.
        reason: String,
    },
    /// Records in the wrong order (genesis first, blocks, trailer last).
    #[error("record {record}: expected {expected}, found a {found} record")]
    UnexpectedRecord {
        /// Record number.
        record: u64,
        /// What should come here.
        expected: &'static str,
        /// What came.
        found: &'static str,
    },
    /// Bytes after the trailer.
    #[error("data follows the trailer: the file was appended to; re-export it")]
    DataAfterTrailer,
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        KIND_GENESIS => "genesis",
        KIND_BLOCK => "block",
        KIND_TRAILER => "trailer",
        _ => "unknown",
    }
}

/// Writes an export file record by record.
pub struct ExportWriter<W: Write> {
    out: GzEncoder<W>,
    blocks: u64,
    last_hash: Hash,
}

impl<W: Write> std::fmt::Debug for ExportWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportWriter")
            .field("blocks", &self.blocks)
            .finish()
    }
}

impl ExportWriter<BufWriter<File>> {
    /// Create (or truncate) `path` and write the header and genesis record.
    pub fn create(path: &Path, genesis: &Genesis) -> Result<Self, FormatError> {
        let file = File::create(path).map_err(|source| FormatError::Io {
            action: "cannot create",
            path: path.display().to_string(),
            source,
        })?;
        ExportWriter::new(BufWriter::with_capacity(1 << 20, file), genesis)
    }
}

impl<W: Write> ExportWriter<W> {
    /// Start an export on `sink`: header and genesis record.
    pub fn new(sink: W, genesis: &Genesis) -> Result<Self, FormatError> {
        // Level 1: signatures and hashes do not compress, so higher levels cost time for little.
        let mut writer = ExportWriter {
            out: GzEncoder::new(sink, Compression::fast()),
            blocks: 0,
            last_hash: genesis.hash(),
        };
        writer.write_all(&MAGIC)?;
        writer.write_all(&FORMAT_VERSION.to_le_bytes())?;
        writer.write_record(KIND_GENESIS, &to_bytes(genesis))?;
        Ok(writer)
    }

    /// Append one block record.
    pub fn write_block(&mut self, block: &AuditBlock) -> Result<(), FormatError> {
        self.write_record(KIND_BLOCK, &block.encode())?;
        self.blocks += 1;
        self.last_hash = block.block.hash();
        Ok(())
    }

    /// Append an already encoded [`AuditBlock`] (its hash is given by the caller).
    pub fn write_encoded_block(
        &mut self,
        encoded: &[u8],
        block_hash: Hash,
    ) -> Result<(), FormatError> {
        self.write_record(KIND_BLOCK, encoded)?;
        self.blocks += 1;
        self.last_hash = block_hash;
        Ok(())
    }

    /// Blocks written so far.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Write the trailer, finish the gzip stream and flush; returns the sink.
    pub fn finish(mut self) -> Result<W, FormatError> {
        let mut trailer = Vec::with_capacity(TRAILER_BYTES);
        trailer.extend_from_slice(&self.blocks.to_le_bytes());
        trailer.extend_from_slice(&self.last_hash.0);
        self.write_record(KIND_TRAILER, &trailer)?;
        let mut sink = self.out.finish().map_err(write_error)?;
        sink.flush().map_err(write_error)?;
        Ok(sink)
    }

    fn write_record(&mut self, kind: u8, payload: &[u8]) -> Result<(), FormatError> {
        let len = u32::try_from(payload.len()).map_err(|_| FormatError::TooLarge {
            record: self.blocks + 1,
            kind: kind_name(kind),
            size: payload.len(),
            max: u32::MAX as usize,
        })?;
        self.write_all(&[kind])?;
        self.write_all(&len.to_le_bytes())?;
        self.write_all(payload)
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), FormatError> {
        self.out.write_all(bytes).map_err(write_error)
    }
}

fn write_error(source: std::io::Error) -> FormatError {
    FormatError::Io {
        action: "cannot write",
        path: "the export".into(),
        source,
    }
}

/// One record of the block section.
#[derive(Debug)]
pub enum BlockRecord {
    /// A block record's raw payload (decode with [`AuditBlock::decode`]), with its number.
    Block {
        /// Position among block records, from 1.
        index: u64,
        /// Canonical bytes of an [`AuditBlock`].
        bytes: Vec<u8>,
    },
    /// The trailer: the end.
    End(Trailer),
}

/// Reads an export file record by record.
pub struct ExportReader<R: Read> {
    input: GzDecoder<R>,
    records: u64,
    genesis: Genesis,
    finished: bool,
}

impl<R: Read> std::fmt::Debug for ExportReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportReader")
            .field("chain_id", &self.genesis.chain_id)
            .field("records", &self.records)
            .finish()
    }
}

impl ExportReader<BufReader<File>> {
    /// Open `path`, check the header and read the genesis record.
    pub fn open(path: &Path) -> Result<Self, FormatError> {
        let file = File::open(path).map_err(|source| FormatError::Io {
            action: "cannot open",
            path: path.display().to_string(),
            source,
        })?;
        ExportReader::new(BufReader::with_capacity(1 << 20, file))
    }
}

impl<R: Read> ExportReader<R> {
    /// Start reading from `source`: header and genesis record.
    pub fn new(source: R) -> Result<Self, FormatError> {
        let mut input = GzDecoder::new(source);
        let mut header = [0u8; 12];
        read_exact(&mut input, &mut header, 0)?;
        if header[..8] != MAGIC {
            return Err(FormatError::BadMagic {
                found: header[..8].to_vec(),
            });
        }
        let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if version != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let (kind, payload) = read_record(&mut input, 0)?;
        if kind != KIND_GENESIS {
            return Err(FormatError::UnexpectedRecord {
                record: 0,
                expected: "the genesis record",
                found: kind_name(kind),
            });
        }
        let genesis: Genesis =
            from_bytes(&payload, "genesis").map_err(|e| FormatError::Undecodable {
                record: 0,
                kind: "genesis",
                reason: e.to_string(),
            })?;
        Ok(ExportReader {
            input,
            records: 0,
            genesis,
            finished: false,
        })
    }

    /// The genesis document of the file.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The next block record or the trailer. After the trailer, checks that nothing follows.
    pub fn next_record(&mut self) -> Result<BlockRecord, FormatError> {
        let record = self.records + 1;
        let (kind, payload) = read_record(&mut self.input, record)?;
        match kind {
            KIND_BLOCK => {
                self.records = record;
                Ok(BlockRecord::Block {
                    index: record,
                    bytes: payload,
                })
            }
            KIND_TRAILER => {
                let trailer = parse_trailer(&payload, record)?;
                let mut extra = [0u8; 1];
                match self.input.read(&mut extra) {
                    Ok(0) => {}
                    Ok(_) => return Err(FormatError::DataAfterTrailer),
                    Err(source) => return Err(FormatError::Corrupt { record, source }),
                }
                self.finished = true;
                Ok(BlockRecord::End(trailer))
            }
            KIND_GENESIS => Err(FormatError::UnexpectedRecord {
                record,
                expected: "a block or the trailer",
                found: "genesis",
            }),
            other => Err(FormatError::UnknownKind {
                record,
                kind: other,
            }),
        }
    }

    /// Whether the trailer has been read.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

fn parse_trailer(payload: &[u8], record: u64) -> Result<Trailer, FormatError> {
    let malformed = || FormatError::Undecodable {
        record,
        kind: "trailer",
        reason: format!("{} bytes, expected {TRAILER_BYTES}", payload.len()),
    };
    if payload.len() != TRAILER_BYTES {
        return Err(malformed());
    }
    let count: [u8; 8] = payload[..8].try_into().map_err(|_| malformed())?;
    let hash: [u8; 32] = payload[8..].try_into().map_err(|_| malformed())?;
    Ok(Trailer {
        blocks: u64::from_le_bytes(count),
        last_block_hash: Hash(hash),
    })
}

fn read_record<R: Read>(input: &mut R, record: u64) -> Result<(u8, Vec<u8>), FormatError> {
    let mut head = [0u8; 5];
    read_exact(input, &mut head, record)?;
    let kind = head[0];
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let max = match kind {
        KIND_GENESIS => MAX_GENESIS_BYTES,
        KIND_BLOCK => AuditBlock::MAX_BYTES,
        KIND_TRAILER => TRAILER_BYTES,
        other => {
            return Err(FormatError::UnknownKind {
                record,
                kind: other,
            })
        }
    };
    if len > max {
        return Err(FormatError::TooLarge {
            record,
            kind: kind_name(kind),
            size: len,
            max,
        });
    }
    let mut payload = vec![0u8; len];
    read_exact(input, &mut payload, record)?;
    Ok((kind, payload))
}

fn read_exact<R: Read>(input: &mut R, buf: &mut [u8], record: u64) -> Result<(), FormatError> {
    input.read_exact(buf).map_err(|source| match source.kind() {
        IoErrorKind::UnexpectedEof => FormatError::Truncated {
            records: record.saturating_sub(1),
        },
        _ => FormatError::Corrupt { record, source },
    })
}

/// Decode a block record's payload.
pub fn decode_block(index: u64, bytes: &[u8]) -> Result<AuditBlock, FormatError> {
    AuditBlock::decode(bytes).map_err(|e| FormatError::Undecodable {
        record: index,
        kind: "block",
        reason: e.to_string(),
    })
}
