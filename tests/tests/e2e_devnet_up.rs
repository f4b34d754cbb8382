//! End-to-end test of what `make run` runs, `gongzhi devnet up --validators 4 --dir D --fresh`:
//! the real binary creates a devnet, starts four node processes, seeds the demo district and
//! prints a live status line whose height rises; Ctrl-C (SIGINT) stops every node and says
//! where the data was kept.

#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use gongzhi_devnet::process::{gongzhi_next_to_test, processes_mentioning, wait_until};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Devnet creation, four node starts and the demo story's seeding on two busy cores.
const START_DEADLINE: Duration = Duration::from_secs(240);
/// Blocks come at least every 2 s (the devnet's empty-block interval).
const RISE_DEADLINE: Duration = Duration::from_secs(60);
/// Ctrl-C to exit: each node gets 10 s to stop before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(90);

/// The heights the live status line has shown so far (`\r  height N  tx/s …`), in order.
fn status_heights(output: &str) -> Vec<u64> {
    let Some((_, live)) = output.split_once("live status") else {
        return Vec::new();
    };
    live.split(['\r', '\n'])
        .filter_map(|segment| {
            let rest = segment.trim_start().strip_prefix("height")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

/// The child's stdout and stderr, gathered by a reader thread as they come.
fn capture(child: &mut Child) -> Arc<Mutex<String>> {
    let output = Arc::new(Mutex::new(String::new()));
    let streams: Vec<Box<dyn Read + Send>> = vec![
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for mut stream in streams {
        let output = output.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = stream.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                output
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        });
    }
    output
}

/// Stops the `devnet up` process if the test fails before its own Ctrl-C: SIGINT first, so
/// that it stops its nodes (a SIGKILL would leave them running), then SIGKILL if it has not
/// exited within [`STOP_DEADLINE`].
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(None)) {
            return;
        }
        if let Ok(pid) = i32::try_from(self.0.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
            let _ = wait_until("devnet up to stop its nodes", STOP_DEADLINE, || {
                self.0.try_wait().ok().flatten()
            });
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn devnet_up_shows_the_height_rising_and_ctrl_c_stops_every_node() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let net = dir.path().join(".devnet");
    let mut child = Command::new(gongzhi_next_to_test()?)
        .args(["devnet", "up", "--validators", "4", "--fresh", "--dir"])
        .arg(&net)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let output = capture(&mut child);
    let mut guard = Guard(child);
    let text = || output.lock().unwrap().clone();

    let first = wait_until("the first live status line", START_DEADLINE, || {
        if let Ok(Some(status)) = guard.0.try_wait() {
            panic!("devnet up exited early ({status}):\n{}", text());
        }
        status_heights(&text()).first().copied()
    })
    .with_context(text)?;
    let risen = wait_until("the status line's height to rise", RISE_DEADLINE, || {
        status_heights(&text())
            .into_iter()
            .find(|&height| height >= first + 2)
    })
    .with_context(text)?;
    let shown = text();
    assert!(
        shown.contains("creating a 4-validator devnet"),
        "no creation line:\n{shown}"
    );
    let node_lines = shown
        .lines()
        .filter(|line| line.trim_start().starts_with("node") && line.contains(" api "))
        .count();
    assert_eq!(node_lines, 4, "expected four node lines:\n{shown}");
    assert!(
        shown.contains("seeding the demo district"),
        "the demo district was not seeded:\n{shown}"
    );
    assert!(risen > first, "height {first} then {risen}");
    let nodes = processes_mentioning(&net)
        .into_iter()
        .filter(|process| process.contains(" start "))
        .count();
    assert_eq!(
        nodes, 4,
        "expected four node processes on the devnet's directory"
    );

    // Ctrl-C.
    let pid = i32::try_from(guard.0.id())?;
    kill(Pid::from_raw(pid), Signal::SIGINT)?;
    let status = wait_until("devnet up to exit after Ctrl-C", STOP_DEADLINE, || {
        guard.0.try_wait().ok().flatten()
    })
    .with_context(text)?;
    let shown = text();
    assert!(status.success(), "devnet up failed ({status}):\n{shown}");
    assert!(
        shown.contains("stopped. Data kept in"),
        "no clean stop:\n{shown}"
    );
    let left = processes_mentioning(&net);
    assert!(left.is_empty(), "processes left running: {left:?}");
    Ok(())
}
