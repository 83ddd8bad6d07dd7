//! The command line: `treza up`, `treza keys`, and `treza enclave ...`, a
//! client of the HTTP API.

pub mod asl;
mod client;
mod progress;

use crate::server;
use anyhow::{bail, Context};
use clap::Subcommand;
use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use client::Client;

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Args, Clone)]
pub struct ClientOpts {
    /// Server URL (default: the one `treza up` recorded in the data directory, else http://127.0.0.1:7420).
    #[arg(long, env = "TREZA_SERVER", global = true)]
    pub server: Option<String>,
    /// API key (default: the one `treza keys create` saved in the data directory).
    #[arg(long, env = "TREZA_API_KEY", global = true, hide_env_values = true)]
    pub api_key: Option<String>,
    /// Data directory of the local server.
    #[arg(long, env = "TREZA_DATA_DIR", default_value = ".treza", global = true)]
    pub data_dir: PathBuf,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text, global = true)]
    pub output: Output,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create an API key bound to a wallet; prints it once and saves it as this data directory's default.
    Create {
        #[arg(long)]
        wallet: String,
        /// Permissions granted (comma-separated).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "enclaves:read,enclaves:write,logs:read"
        )]
        permissions: Vec<String>,
        /// Do not save the key as the CLI's default.
        #[arg(long)]
        no_save: bool,
    },
}

#[derive(Subcommand)]
pub enum EnclaveCommand {
    /// Request a new enclave.
    Create(Box<CreateArgs>),
    /// List your enclaves.
    List,
    /// Show one enclave.
    Get { id: String },
    /// Follow an enclave through its lifecycle until it settles.
    Watch {
        id: String,
        #[arg(long, default_value_t = 1800)]
        timeout_seconds: u64,
    },
    /// Show an enclave's logs (runner, workflow, workload).
    Logs {
        id: String,
        /// all, ecs, stepfunctions, lambda, application or errors.
        #[arg(long = "type", default_value = "all")]
        kind: String,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Terminate an enclave: destroy its resources.
    Destroy {
        id: String,
        /// Follow progress until the enclave is DESTROYED or FAILED.
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value_t = 1800)]
        timeout_seconds: u64,
    },
    /// Delete a DESTROYED or FAILED enclave's record.
    Delete { id: String },
}

#[derive(clap::Args)]
pub struct CreateArgs {
    #[arg(long)]
    name: String,
    #[arg(long, default_value = "")]
    description: String,
    #[arg(long, default_value = "local")]
    provider: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// The workload's command line (local provider), split like a shell would split words; no shell runs it.
    #[arg(long)]
    command: Option<String>,
    /// batch, service or daemon.
    #[arg(long = "workload", default_value = "service")]
    workload_type: String,
    /// A port the workload listens on (repeatable).
    #[arg(long = "port")]
    ports: Vec<u16>,
    #[arg(long)]
    health_path: Option<String>,
    #[arg(long)]
    health_interval: Option<u32>,
    /// An environment variable for the workload, NAME=VALUE (repeatable).
    #[arg(long = "env")]
    env: Vec<String>,
    /// Container image (aws-nitro).
    #[arg(long)]
    image: Option<String>,
    #[arg(long)]
    cpu: Option<u32>,
    #[arg(long)]
    memory: Option<u32>,
    #[arg(long)]
    instance_type: Option<String>,
    #[arg(long)]
    debug: bool,
    /// Follow progress until the enclave is DEPLOYED or FAILED.
    #[arg(long)]
    wait: bool,
    #[arg(long, default_value_t = 1800)]
    timeout_seconds: u64,
}

pub async fn up(
    data_dir: PathBuf,
    listen: SocketAddr,
    max_concurrent_runs: usize,
) -> anyhow::Result<()> {
    let mut config = server::ServerConfig::new(data_dir.clone(), listen);
    config.max_concurrent_runs = max_concurrent_runs;
    let handle = server::start(config).await?;
    let url = handle.url();
    std::fs::write(
        data_dir.join("server.json"),
        serde_json::to_vec(&json!({"url": url, "pid": std::process::id()}))?,
    )?;
    tracing::info!(%url, data_dir = %data_dir.display(), resumed = handle.resumed, "treza is up");
    eprintln!(
        "treza is listening on {url} (data in {}); Ctrl-C stops it",
        data_dir.display()
    );
    tokio::signal::ctrl_c().await?;
    eprintln!("stopping; running workflows resume at the next `treza up`");
    let _ = std::fs::remove_file(data_dir.join("server.json"));
    handle.shutdown().await;
    Ok(())
}

fn credentials_path(data_dir: &Path) -> PathBuf {
    data_dir.join("credentials.json")
}

pub fn keys(cmd: KeysCommand, opts: &ClientOpts) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create {
            wallet,
            permissions,
            no_save,
        } => {
            if wallet.trim().is_empty() {
                bail!("--wallet must not be empty");
            }
            for p in &permissions {
                if !["enclaves:read", "enclaves:write", "logs:read"].contains(&p.as_str()) {
                    bail!("--permissions: unknown permission '{p}'; allowed: enclaves:read, enclaves:write, logs:read");
                }
            }
            std::fs::create_dir_all(&opts.data_dir)
                .with_context(|| format!("cannot create {}", opts.data_dir.display()))?;
            let store = treza_store::Store::open(&server::database_path(&opts.data_dir))?;
            let perms: Vec<&str> = permissions.iter().map(String::as_str).collect();
            let key = store.create_api_key(&wallet, &perms, &crate::clock::now_iso())?;
            if !no_save {
                let path = credentials_path(&opts.data_dir);
                write_private(
                    &path,
                    &serde_json::to_vec_pretty(&json!({"apiKey": key, "wallet": wallet}))?,
                )?;
            }
            match opts.output {
                Output::Json => println!(
                    "{}",
                    json!({"key": key, "wallet": wallet, "permissions": permissions})
                ),
                Output::Text => {
                    println!("{key}");
                    if !no_save {
                        eprintln!("saved as the default key for {}", opts.data_dir.display());
                    }
                }
            }
            Ok(())
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode on open: tighten it before writing.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    Ok(())
}

fn client(opts: &ClientOpts) -> anyhow::Result<Client> {
    let server = match &opts.server {
        Some(s) => s.clone(),
        None => std::fs::read(opts.data_dir.join("server.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v.get("url").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| "http://127.0.0.1:7420".to_string()),
    };
    let key = match &opts.api_key {
        Some(k) => k.clone(),
        None => std::fs::read(credentials_path(&opts.data_dir))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v.get("apiKey").and_then(Value::as_str).map(str::to_string))
            .context("no API key: pass --api-key, set TREZA_API_KEY, or run `treza keys create --wallet <address>`")?,
    };
    Ok(Client::new(server, key))
}

/// Splits a command line into argv the way a shell splits words (quotes and
/// backslashes), without expanding anything: nothing here runs a shell.
pub fn split_words(s: &str) -> anyhow::Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => bail!("--command: unterminated single quote"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x) => cur.push(x),
                            None => bail!("--command: trailing backslash"),
                        },
                        Some(x) => cur.push(x),
                        None => bail!("--command: unterminated double quote"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(x) => cur.push(x),
                    None => bail!("--command: trailing backslash"),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn create_body(a: &CreateArgs) -> anyhow::Result<Value> {
    let mut config = serde_json::Map::new();
    if let Some(c) = &a.command {
        config.insert("command".into(), json!(split_words(c)?));
    }
    config.insert("workloadType".into(), json!(a.workload_type));
    if !a.ports.is_empty() {
        config.insert("exposePorts".into(), json!(a.ports));
    }
    if let Some(p) = &a.health_path {
        config.insert("healthCheckPath".into(), json!(p));
    }
    if let Some(i) = a.health_interval {
        config.insert("healthCheckInterval".into(), json!(i));
    }
    if !a.env.is_empty() {
        let mut env = serde_json::Map::new();
        for kv in &a.env {
            let (k, v) = kv.split_once('=').with_context(|| {
                format!(
                    "--env '{k}' must look like NAME=VALUE",
                    k = kv.split('=').next().unwrap_or("")
                )
            })?;
            env.insert(k.to_string(), json!(v));
        }
        config.insert("environmentVariables".into(), Value::Object(env));
    }
    for (k, v) in [
        ("dockerImage", a.image.clone().map(Value::from)),
        ("cpuCount", a.cpu.map(Value::from)),
        ("memoryMiB", a.memory.map(Value::from)),
        ("instanceType", a.instance_type.clone().map(Value::from)),
    ] {
        if let Some(v) = v {
            config.insert(k.into(), v);
        }
    }
    config.insert("enableDebug".into(), json!(a.debug));
    Ok(json!({
        "name": a.name,
        "description": a.description,
        "region": a.region,
        "providerId": a.provider,
        "providerConfig": config,
    }))
}

/// Returns the process exit code: 0, or 1 when a watched enclave ended FAILED.
pub fn enclave(cmd: EnclaveCommand, opts: &ClientOpts) -> anyhow::Result<u8> {
    let c = client(opts)?;
    let json_out = opts.output == Output::Json;
    match cmd {
        EnclaveCommand::Create(a) => {
            let body = create_body(&a)?;
            let created = c.post("/api/enclaves", &body)?;
            let e = &created["enclave"];
            let id = e["id"].as_str().unwrap_or_default().to_string();
            if a.wait {
                return progress::watch(
                    &c,
                    &id,
                    json_out,
                    a.timeout_seconds,
                    &["DEPLOYED", "FAILED", "DESTROYED"],
                );
            }
            if json_out {
                println!("{}", serde_json::to_string_pretty(e)?);
            } else {
                println!("{id}  {}", e["status"].as_str().unwrap_or_default());
            }
            Ok(0)
        }
        EnclaveCommand::List => {
            let v = c.get("/api/enclaves")?;
            if json_out {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!(
                    "{}",
                    progress::table(v["enclaves"].as_array().map(Vec::as_slice).unwrap_or(&[]))
                );
            }
            Ok(0)
        }
        EnclaveCommand::Get { id } => {
            let v = c.get(&format!("/api/enclaves/{}", client::path_segment(&id)))?;
            if json_out {
                println!("{}", serde_json::to_string_pretty(&v["enclave"])?);
            } else {
                print!("{}", progress::describe(&v["enclave"]));
            }
            Ok(0)
        }
        EnclaveCommand::Watch {
            id,
            timeout_seconds,
        } => progress::watch(
            &c,
            &id,
            json_out,
            timeout_seconds,
            &["DEPLOYED", "FAILED", "DESTROYED", "PAUSED"],
        ),
        EnclaveCommand::Logs { id, kind, limit } => {
            let v = c.get(&format!(
                "/api/enclaves/{}/logs?type={}&limit={limit}",
                client::path_segment(&id),
                client::path_segment(&kind)
            ))?;
            if json_out {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", progress::logs(&v));
            }
            Ok(0)
        }
        EnclaveCommand::Destroy {
            id,
            wait,
            timeout_seconds,
        } => {
            let v = c.patch(
                &format!("/api/enclaves/{}", client::path_segment(&id)),
                &json!({"action": "terminate"}),
            )?;
            if wait {
                return progress::watch(
                    &c,
                    &id,
                    json_out,
                    timeout_seconds,
                    &["DESTROYED", "FAILED"],
                );
            }
            if json_out {
                println!("{}", serde_json::to_string_pretty(&v["enclave"])?);
            } else {
                println!(
                    "{id}  {}",
                    v["enclave"]["status"].as_str().unwrap_or_default()
                );
            }
            Ok(0)
        }
        EnclaveCommand::Delete { id } => {
            let v = c.delete(&format!("/api/enclaves/{}", client::path_segment(&id)))?;
            if json_out {
                println!("{v}");
            } else {
                println!("deleted {id}");
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_words;

    #[test]
    fn words_split_like_a_shell_without_expansion() {
        assert_eq!(
            split_words("python3 -m http.server 8111").unwrap(),
            ["python3", "-m", "http.server", "8111"]
        );
        assert_eq!(
            split_words(r#"sh -c 'echo $(id)' "a b" c\ d"#).unwrap(),
            ["sh", "-c", "echo $(id)", "a b", "c d"]
        );
        assert_eq!(split_words("''").unwrap(), [""]);
        assert!(split_words("'open").is_err());
    }
}
