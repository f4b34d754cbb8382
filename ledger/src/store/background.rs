//! RocksDB's background threads (flushes, compactions) at the lowest CPU priority.
//!
//! Why: at full load a node's cores are busy with consensus, execution and commits, and a
//! memtable flush at normal priority took its share of them for the whole flush. Every block
//! committed meanwhile waited longer: on a devnet, whose four nodes hold the same data and so
//! flush at the same moment on the same cores, those were the slowest blocks and set the p99
//! latency. At nice 19 the flush takes the cores the node leaves idle; an 8 MB memtable
//! takes seconds to fill under load, and RocksDB keeps up to two per family, so a flush has
//! that long to finish before writes wait for it.
//!
//! How: RocksDB's own `LowerThreadPoolCPUPriority` only takes effect when a pool thread next
//! runs a job, so the first flush of a process still ran at normal priority. Its pool threads
//! exist once the options are built (`increase_parallelism` starts them) and are named
//! `rocksdb:low` / `rocksdb:high`; [`lower_rocksdb_threads`] sets each one's nice value (a
//! per-thread attribute on Linux) directly, and the environment's own setting covers threads
//! RocksDB starts later. Elsewhere than Linux it does nothing.

use rocksdb::Env;

/// The nice value of RocksDB's background threads.
pub const BACKGROUND_NICE: i32 = 19;

/// Ask RocksDB's default environment to run both pools at low priority (from each thread's
/// next job on). Returns the environment to set on the database options.
pub fn low_priority_env() -> Result<Env, rocksdb::Error> {
    let mut env = Env::new()?;
    env.lower_thread_pool_cpu_priority();
    env.lower_high_priority_thread_pool_cpu_priority();
    Ok(env)
}

/// Set every RocksDB thread of this process (`rocksdb:*`) to [`BACKGROUND_NICE`] now; threads
/// that end meanwhile, or a system without `/proc`, are skipped.
pub fn lower_rocksdb_threads() {
    #[cfg(target_os = "linux")]
    {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return;
        };
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let is_rocksdb = std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with("rocksdb:"));
            if is_rocksdb {
                // A thread that ended since the listing is the only expected failure.
                let _ = rustix::process::setpriority_process(
                    rustix::process::Pid::from_raw(tid),
                    BACKGROUND_NICE,
                );
            }
        }
    }
}
