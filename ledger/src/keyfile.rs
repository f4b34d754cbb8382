//! Key files: one ed25519 secret per file, owner-only permissions, never printed.
//!
//! Format (JSON, so operators can read which key a file holds without exposing it elsewhere):
//! `{"kind":"operator","public_key":"<hex>","secret_key":"<hex>"}`. Files are created with mode
//! 0600 and never overwritten; loading refuses files readable by group or others.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Keypair, LedgerError, PublicKey};

type Result<T> = std::result::Result<T, LedgerError>;

fn key_error(path: &Path, reason: impl Into<String>) -> LedgerError {
    LedgerError::KeyFile {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// What a key is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Signs transactions on behalf of an organisation.
    Operator,
    /// Identifies a node on the network and signs its consensus votes.
    Node,
}

impl KeyKind {
    /// File name inside a key directory.
    pub fn file_name(self) -> &'static str {
        match self {
            KeyKind::Operator => "operator.key",
            KeyKind::Node => "node.key",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    kind: KeyKind,
    public_key: String,
    secret_key: String,
}

/// Write `key` to `path` with mode 0600; refuses to overwrite an existing file.
pub fn write_key(path: &Path, kind: KeyKind, key: &Keypair) -> Result<()> {
    let file = KeyFile {
        kind,
        public_key: key.public().to_hex(),
        secret_key: hex::encode(key.secret_bytes()),
    };
    let mut handle = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if path.exists() {
                key_error(
                    path,
                    "already exists; keys are never overwritten (move it away first)",
                )
            } else {
                key_error(path, format!("cannot create: {e}"))
            }
        })?;
    let json = serde_json::to_string_pretty(&file).map_err(|e| key_error(path, e.to_string()))?;
    handle
        .write_all(json.as_bytes())
        .and_then(|()| handle.sync_all())
        .map_err(|e| key_error(path, format!("cannot write: {e}")))?;
    Ok(())
}

/// Read a key file written by [`write_key`].
pub fn read_key(path: &Path) -> Result<(KeyKind, Keypair)> {
    let meta = fs::metadata(path).map_err(|e| key_error(path, format!("cannot read: {e}")))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_error(
            path,
            format!(
                "is readable by others (mode {mode:o}); run `chmod 600 {}`",
                path.display()
            ),
        ));
    }
    let text =
        fs::read_to_string(path).map_err(|e| key_error(path, format!("cannot read: {e}")))?;
    let file: KeyFile = serde_json::from_str(&text)
        .map_err(|e| key_error(path, format!("is not a Gongzhi key file: {e}")))?;
    let secret: [u8; 32] = hex::decode(file.secret_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| key_error(path, "secret_key must be 64 hex characters"))?;
    let key = Keypair::from_secret(secret);
    let claimed = PublicKey::from_hex(&file.public_key)
        .map_err(|e| key_error(path, format!("public_key: {e}")))?;
    if claimed != key.public() {
        return Err(key_error(
            path,
            "public_key does not match the secret key (the file was edited or corrupted)",
        ));
    }
    Ok((file.kind, key))
}

/// Generate an operator key and a node key into `dir` (created if needed, mode 0700).
/// Returns the paths and public keys; secrets never leave the files.
pub fn generate_key_dir(dir: &Path) -> Result<Vec<(KeyKind, PathBuf, PublicKey)>> {
    fs::create_dir_all(dir).map_err(|e| key_error(dir, format!("cannot create directory: {e}")))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| key_error(dir, format!("cannot restrict permissions: {e}")))?;
    let mut out = Vec::new();
    for kind in [KeyKind::Operator, KeyKind::Node] {
        let path = dir.join(kind.file_name());
        let key = Keypair::generate();
        write_key(&path, kind, &key)?;
        out.push((kind, path, key.public()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_read_and_refuse_overwrite() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let keys = generate_key_dir(&dir.path().join("k"))?;
        assert_eq!(keys.len(), 2);
        for (kind, path, public) in &keys {
            let mode = fs::metadata(path)?.permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let (read_kind, key) = read_key(path)?;
            assert_eq!(read_kind, *kind);
            assert_eq!(key.public(), *public);
        }
        let again = generate_key_dir(&dir.path().join("k"));
        assert!(again.is_err_and(|e| e.to_string().contains("never overwritten")));
        Ok(())
    }

    #[test]
    fn refuses_world_readable_and_tampered_files(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("operator.key");
        write_key(&path, KeyKind::Operator, &Keypair::from_secret([1; 32]))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        assert!(read_key(&path).is_err_and(|e| e.to_string().contains("chmod 600")));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        let text = fs::read_to_string(&path)?;
        let other = Keypair::from_secret([2; 32]).public().to_hex();
        let tampered = text.replace(&Keypair::from_secret([1; 32]).public().to_hex(), &other);
        fs::write(&path, tampered)?;
        assert!(read_key(&path).is_err_and(|e| e.to_string().contains("does not match")));
        Ok(())
    }
}
