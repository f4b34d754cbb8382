//! Real node processes: start `gongzhi start --home DIR` as a child, stop it cleanly, kill it
//! with SIGKILL, pause and resume it (SIGSTOP/SIGCONT), and restart it on the same home.
//!
//! Invariant: a [`NodeProcess`] never outlives its owner — dropping it kills the child, so a
//! failing test cannot leave nodes running.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// One node process and where it lives.
#[derive(Debug)]
pub struct NodeProcess {
    /// Index in the network.
    pub index: usize,
    /// Its home directory.
    pub home: PathBuf,
    /// Its gRPC address (`127.0.0.1:port`).
    pub rpc_addr: String,
    /// Its metrics address.
    pub metrics_addr: String,
    binary: PathBuf,
    child: Option<Child>,
}

impl NodeProcess {
    /// Describe a node; [`NodeProcess::start`] runs it.
    pub fn new(
        index: usize,
        binary: &Path,
        home: PathBuf,
        rpc_addr: String,
        metrics_addr: String,
    ) -> NodeProcess {
        NodeProcess {
            index,
            home,
            rpc_addr,
            metrics_addr,
            binary: binary.to_path_buf(),
            child: None,
        }
    }

    /// The node's log file (stdout and stderr, appended across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.home.join("node.log")
    }

    /// Start the process (appending to its log).
    pub fn start(&mut self) -> Result<()> {
        if self.is_running() {
            bail!("node {} is already running", self.index);
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .with_context(|| format!("cannot open {}", self.log_path().display()))?;
        let log_err: File = log.try_clone()?;
        let child = Command::new(&self.binary)
            .arg("start")
            .arg("--home")
            .arg(&self.home)
            .env_remove("GONGZHI_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Whether the child is alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn signal(&self, signal: Signal) -> Result<()> {
        let pid = self.pid().context("node is not running")?;
        let pid = i32::try_from(pid).context("pid out of range")?;
        kill(Pid::from_raw(pid), signal)
            .with_context(|| format!("cannot send {signal} to node {}", self.index))
    }

    /// SIGKILL: no chance to flush anything (crash fault).
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("cannot SIGKILL the node")?;
            child.wait().context("cannot reap the node")?;
        }
        Ok(())
    }

    /// SIGTERM, then wait up to `grace` for a clean exit, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) -> Result<()> {
        if !self.is_running() {
            self.child = None;
            return Ok(());
        }
        self.signal(Signal::SIGTERM)?;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.is_running() {
                self.child = None;
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9()
    }

    /// SIGSTOP (the process freezes; peers see it silent).
    pub fn pause(&self) -> Result<()> {
        self.signal(Signal::SIGSTOP)
    }

    /// SIGCONT.
    pub fn resume(&self) -> Result<()> {
        self.signal(Signal::SIGCONT)
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Poll `condition` every 100 ms until it holds or `deadline` passes; the error names `what`.
pub fn wait_until<T>(
    what: &str,
    deadline: Duration,
    mut condition: impl FnMut() -> Option<T>,
) -> Result<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = condition() {
            return Ok(value);
        }
        if Instant::now() >= end {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ports handed to nodes are taken from here: below Linux's ephemeral range (32768–60999), so
/// no outgoing connection can take a port between the check and the node's bind.
const NODE_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A loopback port for a node to listen on: free when checked, never handed out twice by this
/// process, and outside the ephemeral range the OS gives outgoing connections. (Asking the OS
/// for port 0 raced with the many dials of devnets started side by side: a node then found its
/// port taken and exited.) Each process starts its search at a place of its own, so devnets
/// of different processes rarely try the same ports.
pub fn free_port() -> Result<u16> {
    static NEXT: std::sync::Mutex<Option<u16>> = std::sync::Mutex::new(None);
    let mut next = NEXT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let span = NODE_PORTS.end - NODE_PORTS.start;
    let mut candidate =
        next.unwrap_or(NODE_PORTS.start + (std::process::id() % u32::from(span)) as u16);
    for _ in 0..span {
        let port = candidate;
        candidate = if candidate + 1 >= NODE_PORTS.end {
            NODE_PORTS.start
        } else {
            candidate + 1
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            *next = Some(candidate);
            return Ok(port);
        }
    }
    bail!(
        "no free loopback port in {}..{}",
        NODE_PORTS.start,
        NODE_PORTS.end
    )
}

/// The processes whose command line mentions `needle` (a devnet's directory, say), each as
/// `"pid: command line"`: how a test checks that nothing of a devnet is left running.
pub fn processes_mentioning(needle: &Path) -> Vec<String> {
    let needle = needle.to_string_lossy();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmdline.contains(needle.as_ref()) {
                found.push(format!("{name}: {cmdline}"));
            }
        }
    }
    found
}

/// The `gongzhi` binary cargo built next to the running test executable
/// (`target/<profile>/gongzhi` for `target/<profile>/deps/<test>`): how end-to-end tests find
/// the real node to start.
pub fn gongzhi_next_to_test() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("unexpected test binary location")?;
    let binary = dir.join("gongzhi");
    if !binary.exists() {
        bail!(
            "{} not found: build the workspace first (`make build`)",
            binary.display()
        );
    }
    Ok(binary)
}
