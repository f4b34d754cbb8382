//! Compiles `gongzhi/v1/*.proto` without a system `protoc`.
//!
//! 1. `protox` (a protobuf compiler written in Rust) parses the files into a
//!    `FileDescriptorSet`, keeping source info so the `//` comments become Rust doc comments.
//! 2. The encoded descriptor set is written to `$OUT_DIR/gongzhi_v1_descriptor.bin`; `lib.rs`
//!    exposes it as `FILE_DESCRIPTOR_SET` for the gRPC reflection service.
//! 3. `tonic-prost-build` turns the descriptor set into prost messages plus tonic clients and
//!    servers in `$OUT_DIR/gongzhi.v1.rs`.

use std::error::Error;
use std::path::{Path, PathBuf};

/// Directory (relative to this crate) that `import` statements are resolved against.
const INCLUDE_DIR: &str = ".";
/// Directory holding the package's `.proto` files.
const PROTO_DIR: &str = "gongzhi/v1";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={PROTO_DIR}");

    let protos = proto_files(Path::new(PROTO_DIR))?;
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    let mut compiler = protox::Compiler::new([INCLUDE_DIR])?;
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files(&protos)?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("gongzhi_v1_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

/// All `.proto` files in `dir`, sorted so the generated code does not depend on directory order.
fn proto_files(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path
            .extension()
            .is_some_and(|extension| extension == "proto")
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
