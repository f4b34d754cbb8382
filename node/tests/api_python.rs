//! The Python example client (`examples/python/client.py`) against a real node: it generates
//! its stubs from our `.proto` files, signs txs in pure Python (canonical tx encoding,
//! ed25519), registers a dataset, requests and approves access, checks, revokes and checks
//! again. Needs `python3` with the packages of `examples/python/requirements.txt`
//! (`make deps` installs them).

#![allow(clippy::unwrap_used, clippy::panic)]

mod api_common;

use std::path::Path;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_signs_submits_and_checks() {
    // The checkout under test (set by `cargo test` at run time; the compile-time value names
    // wherever this binary was built, which a shared target directory can make another one).
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let repo = Path::new(&manifest_dir).parent().unwrap().to_path_buf();
    let probe = Command::new("python3")
        .args(["-c", "import grpc, grpc_tools, cryptography"])
        .status()
        .expect("python3 is needed for this test");
    assert!(
        probe.success(),
        "the Python client needs grpcio, grpcio-tools and cryptography: run `make deps` \
         (or pip install -r examples/python/requirements.txt)"
    );
    let net = api_common::start().await;
    let addr = net.addr();
    let keys = net.devnet.dir.join("keys");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(repo.join("examples/python/client.py"))
            .arg("--node")
            .arg(addr)
            .arg("--keys")
            .arg(keys)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client.py failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(": ALLOW"), "{stdout}");
    assert!(stdout.contains("DENY REVOKED"), "{stdout}");
    assert!(
        stdout.contains("RESULT: ALLOW before the revocation, REVOKED after it"),
        "{stdout}"
    );
}
