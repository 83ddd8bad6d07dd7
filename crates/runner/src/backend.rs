//! Where an enclave's Terraform state lives.
//!
//! Local: `terraform.tfstate` in the enclave's workspace (Terraform's default
//! backend; nothing is generated). S3: the workspace gets a `backend.tf`
//! whose text is a constant, an empty `backend "s3" {}` block, and every
//! setting travels as its own `-backend-config=key=value` argument of
//! `terraform init`; no value is ever written into HCL.

/// The file the runner writes for the S3 backend.
pub const BACKEND_FILE: &str = "backend.tf";

/// The whole of [`BACKEND_FILE`]: static text, no values.
pub const S3_BACKEND_TF: &str = "# Written by treza-runner: the settings come from -backend-config arguments.\nterraform {\n  backend \"s3\" {}\n}\n";

/// The S3 backend's settings (validated by the front door).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Backend {
    pub bucket: String,
    pub region: String,
    /// DynamoDB lock table; `None` locks with an S3 lock file (`use_lockfile`).
    pub lock_table: Option<String>,
}

/// An enclave's state backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StateBackend {
    /// `terraform.tfstate` in the enclave's workspace.
    #[default]
    Local,
    /// Key `enclaves/<id>/terraform.tfstate` in a bucket, encrypted, locked.
    S3(S3Backend),
}

/// The state's object key for an enclave in the S3 backend.
pub fn s3_state_key(enclave_id: &str) -> String {
    format!("enclaves/{enclave_id}/terraform.tfstate")
}

impl StateBackend {
    /// Extra `terraform init` arguments, one argv element each.
    pub fn init_args(&self, enclave_id: &str) -> Vec<String> {
        match self {
            StateBackend::Local => Vec::new(),
            StateBackend::S3(s3) => {
                let mut args = vec![
                    // The settings are given in full every time; a reused
                    // workspace must not try to migrate state.
                    "-reconfigure".to_string(),
                    format!("-backend-config=bucket={}", s3.bucket),
                    format!("-backend-config=key={}", s3_state_key(enclave_id)),
                    format!("-backend-config=region={}", s3.region),
                    "-backend-config=encrypt=true".to_string(),
                ];
                match &s3.lock_table {
                    Some(table) => args.push(format!("-backend-config=dynamodb_table={table}")),
                    None => args.push("-backend-config=use_lockfile=true".to_string()),
                }
                args
            }
        }
    }

    /// The text of [`BACKEND_FILE`], or `None` when no file is written.
    pub fn backend_file(&self) -> Option<&'static str> {
        match self {
            StateBackend::Local => None,
            StateBackend::S3(_) => Some(S3_BACKEND_TF),
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, StateBackend::Local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_backend_adds_nothing() {
        assert!(StateBackend::Local.init_args("e1").is_empty());
        assert_eq!(StateBackend::Local.backend_file(), None);
    }

    #[test]
    fn s3_backend_args_are_separate_argv_elements() {
        let s3 = StateBackend::S3(S3Backend {
            bucket: "treza-state".into(),
            region: "eu-west-1".into(),
            lock_table: None,
        });
        assert_eq!(
            s3.init_args("enc_1"),
            vec![
                "-reconfigure",
                "-backend-config=bucket=treza-state",
                "-backend-config=key=enclaves/enc_1/terraform.tfstate",
                "-backend-config=region=eu-west-1",
                "-backend-config=encrypt=true",
                "-backend-config=use_lockfile=true",
            ]
        );
        let with_table = StateBackend::S3(S3Backend {
            bucket: "treza-state".into(),
            region: "eu-west-1".into(),
            lock_table: Some("treza-locks".into()),
        });
        let args = with_table.init_args("enc_1");
        assert_eq!(
            args.last().map(String::as_str),
            Some("-backend-config=dynamodb_table=treza-locks")
        );
        assert!(!args.iter().any(|a| a.contains("use_lockfile")));
    }

    #[test]
    fn backend_file_is_an_empty_block() {
        let text = S3_BACKEND_TF;
        assert!(text.contains("backend \"s3\" {}"));
        // No settings in the HCL: the only '=' would be an attribute.
        assert!(!text.contains('='));
    }
}
