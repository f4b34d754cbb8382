//! Write-ahead log: length- and checksum-framed records, fsynced on every append.
//!
//! Frame: `len: u32 LE ‖ checksum: first 8 bytes of blake3(tag ‖ payload) ‖ payload`.
//!
//! Invariants:
//! - `append` returns only after the record is on disk (`sync_data`), so a caller that sends a
//!   message after appending it can never have sent something the log does not hold.
//! - On open, a torn tail (a final record cut short, or a final record whose checksum fails —
//!   what a crash in the middle of a write leaves) is truncated away and reported; it was never
//!   acknowledged, so nothing that depended on it escaped.
//! - A bad record *followed by more data* is corruption, not a torn write: opening fails with
//!   [`LedgerError::Corrupt`] naming the offset, and nothing is truncated. The operator decides.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::LedgerError;

/// Largest record accepted (and the largest length field believed when reading).
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;
const HEADER_BYTES: usize = 12;
const CHECKSUM_TAG: &str = "gongzhi/wal-record/v1";

/// An append-only, fsynced record log.
#[derive(Debug)]
pub struct Wal {
    file: File,
    path: PathBuf,
}

/// What opening found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalContents {
    /// Every intact record, in order.
    pub records: Vec<Vec<u8>>,
    /// Bytes of a torn tail that were truncated (0 when the log was clean).
    pub truncated_bytes: u64,
}

fn checksum(payload: &[u8]) -> [u8; 8] {
    let mut hasher = blake3::Hasher::new_derive_key(CHECKSUM_TAG);
    hasher.update(payload);
    let mut out = [0u8; 8];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    out
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> LedgerError {
    LedgerError::Storage(format!("{what} {}: {e}", path.display()))
}

impl Wal {
    /// Open (or create) the log at `path`, returning its intact records.
    pub fn open(path: &Path) -> Result<(Wal, WalContents), LedgerError> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| io_error(path, "cannot open WAL", e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| io_error(path, "cannot read WAL", e))?;
        let (records, good_len) = parse(&bytes, path)?;
        let truncated_bytes = (bytes.len() - good_len) as u64;
        if truncated_bytes > 0 {
            file.set_len(good_len as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_error(path, "cannot truncate torn tail of WAL", e))?;
        }
        Ok((
            Wal {
                file,
                path: path.to_path_buf(),
            },
            WalContents {
                records,
                truncated_bytes,
            },
        ))
    }

    /// Append one record and make it durable before returning.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), LedgerError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(LedgerError::TooLarge {
                kind: "WAL record",
                size: payload.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        let mut frame = Vec::with_capacity(HEADER_BYTES + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&checksum(payload));
        frame.extend_from_slice(payload);
        self.file
            .write_all(&frame)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io_error(&self.path, "cannot append to WAL", e))
    }

    /// Drop every record (e.g. when a height is committed) durably.
    pub fn clear(&mut self) -> Result<(), LedgerError> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::End(0)).map(|_| ()))
            .and_then(|()| self.file.sync_all())
            .map_err(|e| io_error(&self.path, "cannot clear WAL", e))
    }
}

/// Parse frames; returns intact records and the byte length they span.
fn parse(bytes: &[u8], path: &Path) -> Result<(Vec<Vec<u8>>, usize), LedgerError> {
    let mut records = Vec::new();
    let mut offset = 0usize;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if rest.len() < HEADER_BYTES {
            break; // torn header at the tail
        }
        let mut len_bytes = [0u8; 4];
        len_bytes.copy_from_slice(&rest[..4]);
        let len = u32::from_le_bytes(len_bytes) as usize;
        let end = HEADER_BYTES.saturating_add(len);
        if len > MAX_RECORD_BYTES || end > rest.len() {
            if len <= MAX_RECORD_BYTES {
                break; // record cut short at the tail
            }
            return Err(LedgerError::Corrupt(format!(
                "WAL {} at byte {offset}: record length {len} exceeds {MAX_RECORD_BYTES}",
                path.display()
            )));
        }
        let payload = &rest[HEADER_BYTES..end];
        if rest[4..HEADER_BYTES] != checksum(payload) {
            if end == rest.len() {
                break; // last record torn mid-write
            }
            return Err(LedgerError::Corrupt(format!(
                "WAL {} at byte {offset}: checksum mismatch with {} byte(s) after it; \
                 refusing to guess (move the file aside to start without it)",
                path.display(),
                rest.len() - end
            )));
        }
        records.push(payload.to_vec());
        offset += end;
    }
    Ok((records, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_records(path: &Path, records: &[&[u8]]) {
        let (mut wal, contents) = Wal::open(path).expect("open");
        assert!(contents.records.is_empty());
        for r in records {
            wal.append(r).expect("append");
        }
    }

    #[test]
    fn records_survive_reopen_and_clear_empties() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal");
        write_records(&path, &[b"one", b"", b"three"]);
        let (mut wal, contents) = Wal::open(&path).expect("reopen");
        assert_eq!(
            contents.records,
            vec![b"one".to_vec(), vec![], b"three".to_vec()]
        );
        assert_eq!(contents.truncated_bytes, 0);
        wal.clear().expect("clear");
        wal.append(b"four").expect("append");
        drop(wal);
        let (_, contents) = Wal::open(&path).expect("reopen");
        assert_eq!(contents.records, vec![b"four".to_vec()]);
    }

    #[test]
    fn every_truncation_point_recovers_a_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal");
        write_records(&path, &[b"alpha", b"beta", b"gamma"]);
        let full = std::fs::read(&path).expect("read");
        for cut in 0..full.len() {
            std::fs::write(&path, &full[..cut]).expect("write");
            let (_, contents) = Wal::open(&path).expect("a torn tail is recoverable");
            let expected: Vec<&[u8]> = [b"alpha".as_slice(), b"beta", b"gamma"]
                .into_iter()
                .take(contents.records.len())
                .collect();
            assert_eq!(contents.records, expected, "cut at {cut}");
            assert_eq!(
                std::fs::metadata(&path).expect("meta").len(),
                cut as u64 - contents.truncated_bytes
            );
        }
    }

    #[test]
    fn corruption_before_the_tail_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal");
        write_records(&path, &[b"alpha", b"beta"]);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[HEADER_BYTES] ^= 0xff; // first payload byte
        std::fs::write(&path, &bytes).expect("write");
        let err = Wal::open(&path).expect_err("must refuse");
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            bytes,
            "nothing truncated"
        );
    }

    #[test]
    fn oversized_append_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = Wal::open(&dir.path().join("wal")).expect("open");
        let big = vec![0u8; MAX_RECORD_BYTES + 1];
        assert!(matches!(
            wal.append(&big),
            Err(LedgerError::TooLarge { .. })
        ));
    }
}
