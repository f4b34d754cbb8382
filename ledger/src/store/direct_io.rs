//! Whether RocksDB may write its table files with direct I/O in a store's directory.
//!
//! Why: a flush or compaction writes every byte of a new table file through the page cache,
//! which must find (and, on a VM whose freed memory goes back to the host, fault in) a fresh
//! page for each 4 KB, and keeps them cached although the block cache and the node's own
//! caches serve the reads. Writing table files with `O_DIRECT` skips that: on a 4-validator
//! devnet, kernel CPU per committed tx fell by about a sixth (docs/BENCHMARKS.md).
//!
//! Invariant: direct I/O is only turned on where it works. A filesystem without `O_DIRECT`
//! (tmpfs before Linux 6.6, some network filesystems) refuses the open with `EINVAL`, and
//! RocksDB would meet that refusal at its first flush, in the background, and stop taking
//! writes. [`supported`] makes the same open in the store's directory first; where it fails,
//! the store uses buffered I/O as before. Reads and the write-ahead log always stay buffered.

use std::path::Path;

/// The probe file's name inside the store's directory (removed right after the probe).
const PROBE: &str = ".direct-io-probe";

/// Whether a file in `dir` (created if missing) can be opened for writing with `O_DIRECT`.
/// Always false where the flag does not exist.
pub fn supported(dir: &Path) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::unix::fs::OpenOptionsExt;

        if std::fs::create_dir_all(dir).is_err() {
            return false;
        }
        let probe = dir.join(PROBE);
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
            .open(&probe);
        let _ = std::fs::remove_file(&probe);
        opened.is_ok()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (dir, PROBE);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_answers_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store_dir = dir.path().join("new-store");
        // The answer depends on the filesystem; either way the directory exists afterwards
        // (RocksDB would create it anyway) and holds no probe file.
        let _ = supported(&store_dir);
        assert!(store_dir.is_dir());
        assert!(!store_dir.join(PROBE).exists());
    }

    #[test]
    fn an_unusable_directory_means_no_direct_io() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").expect("a file");
        assert!(!supported(&file.join("below-a-file")));
    }

    /// The store's database options — direct table writes where the probe allows them, and
    /// recycled log files — flush, compact and recover: values written after a flush (into a
    /// recycled log) are there after a reopen, and so are the flushed ones.
    #[test]
    fn flushes_compactions_and_recovery_work_with_the_store_options() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let options = || {
            let direct = supported(dir.path());
            super::super::columns::db_options(direct).expect("options")
        };
        let key = |i: u32| i.to_be_bytes();
        {
            let db = rocksdb::DB::open(&options(), dir.path()).expect("open");
            for round in 1..=3u8 {
                for i in 0..2_000 {
                    db.put(key(i), [round; 100]).expect("put");
                }
                db.flush().expect("flush");
            }
            // Only in the write-ahead log (a recycled file by now) when the database closes.
            for i in 0..1_000 {
                db.put(key(i), [9u8; 100]).expect("put");
            }
        }
        let db = rocksdb::DB::open(&options(), dir.path()).expect("reopen");
        db.compact_range(None::<&[u8]>, None::<&[u8]>);
        for i in [0, 999] {
            assert_eq!(db.get(key(i)).expect("get"), Some(vec![9u8; 100]));
        }
        for i in [1_000, 1_999] {
            assert_eq!(db.get(key(i)).expect("get"), Some(vec![3u8; 100]));
        }
    }
}
