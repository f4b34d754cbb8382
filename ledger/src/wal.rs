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
//! - [`Wal::checkpoint`] replaces every record by one, atomically: a new file is written and
//!   synced beside the log, then renamed over it, and the directory synced. A crash at any point
//!   leaves either the old records or the new one, never neither.
//!
//! Why checkpoint rather than truncate: truncating and re-appending costs two syncs, and a
//! node that did it every height paid them on the consensus path, where a sync waits for the
//! disk to take everyone's recent writes (docs/BENCHMARKS.md, session 15). A caller that only
//! needs the latest record lets the log grow and checkpoints rarely ([`Wal::len_bytes`] says
//! when).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
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
    len: u64,
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
                len: good_len as u64,
            },
            WalContents {
                records,
                truncated_bytes,
            },
        ))
    }

    /// Append one record and make it durable before returning.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), LedgerError> {
        let frame = frame(payload)?;
        self.file
            .write_all(&frame)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io_error(&self.path, "cannot append to WAL", e))?;
        self.len += frame.len() as u64;
        Ok(())
    }

    /// Bytes the log holds (every intact record, framed).
    pub fn len_bytes(&self) -> u64 {
        self.len
    }

    /// Replace every record by `payload`, durably and atomically: the log holds either its old
    /// records or exactly this one, whenever a crash comes. Costs a file creation, two syncs and
    /// a rename: for occasional compaction, not for every record.
    pub fn checkpoint(&mut self, payload: &[u8]) -> Result<(), LedgerError> {
        let frame = frame(payload)?;
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".checkpoint");
        let tmp = self.path.with_file_name(tmp_name);
        let written = File::create(&tmp)
            .and_then(|mut f| f.write_all(&frame).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .and_then(|()| sync_parent_dir(&self.path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_error(&self.path, "cannot checkpoint WAL", e));
        }
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| io_error(&self.path, "cannot reopen WAL after checkpoint", e))?;
        self.len = frame.len() as u64;
        Ok(())
    }
}

/// `len ‖ checksum ‖ payload`, or [`LedgerError::TooLarge`].
fn frame(payload: &[u8]) -> Result<Vec<u8>, LedgerError> {
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
    Ok(frame)
}

/// Make a rename in `path`'s directory durable.
fn sync_parent_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
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
    fn records_survive_reopen_and_checkpoint_keeps_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal");
        write_records(&path, &[b"one", b"", b"three"]);
        let (mut wal, contents) = Wal::open(&path).expect("reopen");
        assert_eq!(
            contents.records,
            vec![b"one".to_vec(), vec![], b"three".to_vec()]
        );
        assert_eq!(contents.truncated_bytes, 0);
        assert_eq!(wal.len_bytes(), 3 * HEADER_BYTES as u64 + 8);
        wal.checkpoint(b"four").expect("checkpoint");
        assert_eq!(wal.len_bytes(), HEADER_BYTES as u64 + 4);
        wal.append(b"five").expect("append after checkpoint");
        drop(wal);
        let (wal, contents) = Wal::open(&path).expect("reopen");
        assert_eq!(contents.records, vec![b"four".to_vec(), b"five".to_vec()]);
        assert_eq!(wal.len_bytes(), 2 * (HEADER_BYTES as u64 + 4));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("wal")],
            "no temp file left"
        );
    }

    #[test]
    fn a_checkpoint_that_cannot_write_leaves_the_log_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal");
        write_records(&path, &[b"kept"]);
        let (mut wal, _) = Wal::open(&path).expect("reopen");
        // A directory where the temporary file must go makes its creation fail.
        std::fs::create_dir(dir.path().join("wal.checkpoint")).expect("mkdir");
        let err = wal
            .checkpoint(b"lost")
            .expect_err("cannot create the temp file");
        assert!(err.to_string().contains("cannot checkpoint WAL"), "{err}");
        wal.append(b"after").expect("the log still appends");
        drop(wal);
        let (_, contents) = Wal::open(&path).expect("reopen");
        assert_eq!(contents.records, vec![b"kept".to_vec(), b"after".to_vec()]);
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
