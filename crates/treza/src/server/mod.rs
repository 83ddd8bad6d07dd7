//! The embedded server: store -> stream processor -> workflow engine ->
//! runner, and the HTTP API, wired on one machine.

pub mod api;
pub mod dynamo;
pub mod engine;
pub mod functions;
pub mod host;
pub mod monitor;
pub mod runner;
pub mod stream;

use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Notify;
use treza_store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub data_dir: PathBuf,
    /// Wakes the status monitor when a request moves an enclave to PAUSING
    /// or RESUMING (it also looks every 2 s, for writes by other processes).
    pub wake_monitor: Arc<Notify>,
}

pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub max_concurrent_runs: usize,
    /// The runner backend; `None` runs `treza runner` as a child process.
    pub runner: Option<Arc<dyn runner::RunnerBackend>>,
    pub providers_dir: PathBuf,
    pub terraform: Option<PathBuf>,
    /// The binary implementing `workload start|stop` (default: this executable).
    pub supervisor: Option<PathBuf>,
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Self {
        ServerConfig {
            data_dir,
            listen,
            max_concurrent_runs: 4,
            runner: None,
            providers_dir: default_providers_dir(),
            terraform: std::env::var_os("TREZA_TERRAFORM").map(PathBuf::from),
            supervisor: None,
        }
    }
}

/// `TREZA_PROVIDERS_DIR`, else `providers/` beside the executable's
/// repository checkout, else the source tree this binary was built from.
pub fn default_providers_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("TREZA_PROVIDERS_DIR") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            let candidate = dir.join("providers/local");
            if candidate.join("main.tf").is_file() {
                return dir.join("providers");
            }
        }
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../providers"))
}

pub fn database_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("treza.db")
}

pub struct ServerHandle {
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    pub resumed: usize,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// Held while the server runs: one server per data directory.
    _lock: std::fs::File,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ServerHandle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests and stops the stream processor. Running
    /// executions stay in the journal and resume at the next start.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
    }
}

/// Takes the data directory's exclusive lock: two servers driving the same
/// journal would run every workflow twice.
fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let path = data_dir.join("treza.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a descriptor we own; released when the file closes.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        anyhow::bail!(
            "another treza server is using {} (its lock {} is held)",
            data_dir.display(),
            path.display()
        );
    }
    Ok(file)
}

pub async fn start(config: ServerConfig) -> anyhow::Result<ServerHandle> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&config.data_dir)?;
    let lock = lock_data_dir(&data_dir)?;
    let store = Arc::new(Store::open(&database_path(&data_dir)).context("cannot open the store")?);
    let wake = Arc::new(Notify::new());
    let wake_monitor = Arc::new(Notify::new());
    {
        let wake = wake.clone();
        store.set_commit_listener(Box::new(move |_| wake.notify_one()));
    }
    let exe = std::env::current_exe().context("cannot locate the treza executable")?;
    let runner: Arc<dyn runner::RunnerBackend> = match config.runner {
        Some(r) => r,
        None => Arc::new(runner::ChildProcessRunner::new(
            exe.clone(),
            config.providers_dir.clone(),
            data_dir.clone(),
            config.terraform.clone(),
        )),
    };
    let host = Arc::new(host::Host::new(
        store.clone(),
        runner,
        config.max_concurrent_runs,
    ));
    let engine = Arc::new(engine::Engine::new(store.clone(), host)?);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let resumed = engine.resume_all()?;
    let addr = listener.local_addr()?;
    let data_dir_for_monitor = data_dir.clone();
    let app = api::router(AppState {
        store: store.clone(),
        data_dir,
        wake_monitor: wake_monitor.clone(),
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "http server stopped");
        }
    });
    let stream = tokio::spawn(stream::run(store.clone(), engine, wake));
    let monitor = Arc::new(monitor::Monitor::new(
        store.clone(),
        config.supervisor.unwrap_or(exe),
        data_dir_for_monitor,
    ));
    let monitor = tokio::spawn(monitor.run(wake_monitor));
    Ok(ServerHandle {
        addr,
        store,
        resumed,
        shutdown: Some(tx),
        _lock: lock,
        tasks: vec![stream, monitor, http],
    })
}
