//! The per-enclave workspace: a copy of the provider module, the variables
//! as `terraform.tfvars.json`, an empty CLI configuration, and the state.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::backend::{StateBackend, BACKEND_FILE};

pub const TFVARS_FILE: &str = "terraform.tfvars.json";
pub const STATE_FILE: &str = "terraform.tfstate";
/// Saved plans are named `tfplan-<pid>` so that two runs sharing a
/// workspace never apply each other's plan.
pub const PLAN_FILE: &str = "tfplan";
pub const CLI_CONFIG_FILE: &str = ".treza-terraform.rc";

/// Paths of a prepared workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub dir: PathBuf,
    pub cli_config: PathBuf,
}

impl Workspace {
    pub fn state_file(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    pub fn has_state(&self) -> bool {
        self.state_file().is_file()
    }
}

fn is_module_file(name: &str) -> bool {
    name.ends_with(".tf") || name.ends_with(".tf.json")
}

/// Files of the module that are never copied: runtime artefacts that belong
/// to the workspace, not the module.
fn skip_when_copying(name: &str) -> bool {
    name == ".terraform"
        || name == ".terraform.lock.hcl"
        || name.starts_with("terraform.tfstate")
        || name.ends_with(".tfvars")
        || name.ends_with(".tfvars.json")
        || name == PLAN_FILE
        || name.starts_with("tfplan-")
}

/// Makes `req.workspace_dir` ready for a run of the module. Variables are
/// written with serde; when `variables` is empty and a previous run left a
/// tfvars file (destroy without configuration), that file is kept. The S3
/// backend gets its constant [`BACKEND_FILE`]; the module may not bring one.
pub fn prepare(
    module_dir: &Path,
    workspace_dir: &Path,
    variables: &Map<String, Value>,
    backend: &StateBackend,
) -> Result<Workspace, String> {
    if module_dir.join(BACKEND_FILE).exists() {
        return Err(format!(
            "module directory {} holds a {BACKEND_FILE}: the runner owns the backend configuration",
            module_dir.display()
        ));
    }
    let has_module_file = fs::read_dir(module_dir)
        .map_err(|e| format!("module directory {}: {e}", module_dir.display()))?
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_str().is_some_and(is_module_file));
    if !has_module_file {
        return Err(format!(
            "module directory {} holds no .tf or .tf.json file",
            module_dir.display()
        ));
    }
    fs::create_dir_all(workspace_dir)
        .map_err(|e| format!("workspace {}: {e}", workspace_dir.display()))?;
    // State and tfvars may hold secrets: owner only.
    let _ = fs::set_permissions(workspace_dir, fs::Permissions::from_mode(0o700));

    // Stale module files from an older version of the module must not linger.
    for entry in fs::read_dir(workspace_dir)
        .map_err(|e| format!("workspace {}: {e}", workspace_dir.display()))?
        .filter_map(Result::ok)
    {
        let name = entry.file_name();
        if name.to_str().is_some_and(is_module_file) && entry.path().is_file() {
            fs::remove_file(entry.path())
                .map_err(|e| format!("remove stale {}: {e}", entry.path().display()))?;
        }
    }
    copy_tree(module_dir, workspace_dir)
        .map_err(|e| format!("copy module {} into workspace: {e}", module_dir.display()))?;

    let tfvars = workspace_dir.join(TFVARS_FILE);
    if !variables.is_empty() || !tfvars.exists() {
        let text = serde_json::to_string_pretty(&Value::Object(variables.clone()))
            .map_err(|e| format!("encode {TFVARS_FILE}: {e}"))?;
        write_private(&tfvars, text.as_bytes())
            .map_err(|e| format!("write {}: {e}", tfvars.display()))?;
    }

    if let Some(text) = backend.backend_file() {
        write_private(&workspace_dir.join(BACKEND_FILE), text.as_bytes())
            .map_err(|e| format!("write {BACKEND_FILE}: {e}"))?;
    }

    let cli_config = workspace_dir.join(CLI_CONFIG_FILE);
    write_private(&cli_config, b"").map_err(|e| format!("write {}: {e}", cli_config.display()))?;
    Ok(Workspace {
        dir: workspace_dir.to_path_buf(),
        cli_config,
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp-treza");
    fs::write(&tmp, bytes)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
    fs::rename(&tmp, path)
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        match name.to_str() {
            Some(n) if !skip_when_copying(n) => {}
            _ => continue,
        }
        let kind = entry.file_type()?;
        let target = to.join(&name);
        if kind.is_dir() {
            fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prepare_copies_module_and_writes_vars_verbatim() {
        let module = tempfile::tempdir().expect("tmp");
        let ws = tempfile::tempdir().expect("tmp");
        fs::write(module.path().join("main.tf"), "# m").expect("write");
        fs::write(module.path().join("terraform.tfstate"), "{}").expect("write");
        fs::write(ws.path().join("old.tf"), "# stale").expect("write");
        let hostile = "$(touch /tmp/x) ${file(\"/etc/passwd\")} \"\n";
        let Value::Object(vars) = json!({"a": hostile, "n": 3}) else {
            unreachable!()
        };
        let w = prepare(module.path(), ws.path(), &vars, &StateBackend::Local).expect("prepare");
        assert!(ws.path().join("main.tf").is_file());
        assert!(!ws.path().join("old.tf").exists());
        assert!(!ws.path().join("terraform.tfstate").exists());
        let written: Value =
            serde_json::from_str(&fs::read_to_string(ws.path().join(TFVARS_FILE)).expect("read"))
                .expect("json");
        assert_eq!(written["a"], json!(hostile));
        assert_eq!(fs::read(&w.cli_config).expect("read"), b"");

        // Empty variables keep the previous tfvars (destroy without configuration).
        prepare(module.path(), ws.path(), &Map::new(), &StateBackend::Local)
            .expect("prepare again");
        let kept: Value =
            serde_json::from_str(&fs::read_to_string(ws.path().join(TFVARS_FILE)).expect("read"))
                .expect("json");
        assert_eq!(kept["n"], json!(3));
    }

    #[test]
    fn module_without_tf_files_is_rejected() {
        let module = tempfile::tempdir().expect("tmp");
        let ws = tempfile::tempdir().expect("tmp");
        let err = prepare(module.path(), ws.path(), &Map::new(), &StateBackend::Local)
            .expect_err("no tf");
        assert!(err.contains("no .tf"), "{err}");
    }

    #[test]
    fn s3_backend_writes_a_constant_backend_file_and_local_removes_it() {
        let module = tempfile::tempdir().expect("tmp");
        let ws = tempfile::tempdir().expect("tmp");
        fs::write(module.path().join("main.tf"), "# m").expect("write");
        let s3 = StateBackend::S3(crate::backend::S3Backend {
            bucket: "b-1x".into(),
            region: "us-east-1".into(),
            lock_table: None,
        });
        prepare(module.path(), ws.path(), &Map::new(), &s3).expect("prepare");
        let text = fs::read_to_string(ws.path().join(BACKEND_FILE)).expect("backend.tf");
        assert_eq!(text, crate::backend::S3_BACKEND_TF);
        assert!(!text.contains("b-1x") && !text.contains("us-east-1"));
        // Back to local: the stale backend file goes with the other .tf files.
        prepare(module.path(), ws.path(), &Map::new(), &StateBackend::Local).expect("prepare");
        assert!(!ws.path().join(BACKEND_FILE).exists());
    }

    #[test]
    fn module_with_its_own_backend_file_is_rejected() {
        let module = tempfile::tempdir().expect("tmp");
        let ws = tempfile::tempdir().expect("tmp");
        fs::write(module.path().join("main.tf"), "# m").expect("write");
        fs::write(module.path().join(BACKEND_FILE), "# b").expect("write");
        let err = prepare(module.path(), ws.path(), &Map::new(), &StateBackend::Local)
            .expect_err("own backend");
        assert!(err.contains(BACKEND_FILE), "{err}");
    }
}
