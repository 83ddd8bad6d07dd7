//! The HTTP API, compatible with the web app's routes. Handlers are small
//! functions of typed extractors; authentication is one middleware layer.

use super::runner::ChildProcessRunner;
use super::AppState;
use crate::clock;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use treza_core::{Enclave, NewEnclave, Status};
use treza_store::{ApiKey, Condition, StoreError};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/enclaves", get(list_enclaves).post(create_enclave))
        .route(
            "/api/enclaves/{id}",
            get(get_enclave).patch(patch_enclave).delete(delete_enclave),
        )
        .route("/api/enclaves/{id}/logs", get(enclave_logs))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .route("/healthz", get(|| async { Json(json!({"ok": true})) }))
        .with_state(state)
}

/// An error response: `{error, field?, rule?, errors?}` with a status code.
pub struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: json!({"error": message.into()}),
        }
    }
    fn field(status: StatusCode, field: &str, rule: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: json!({"error": message.into(), "field": field, "rule": rule}),
        }
    }
    fn not_found(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("enclave '{id}' not found"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal storage error")
    }
}

type ApiResult<T> = Result<T, ApiError>;

async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing credentials: send 'Authorization: Bearer <api key>' (create one with `treza keys create`)",
        )
        .into_response();
    };
    match state.store.authenticate(token) {
        Ok(Some(key)) => {
            req.extensions_mut().insert(key);
            next.run(req).await
        }
        Ok(None) => ApiError::new(StatusCode::UNAUTHORIZED, "invalid API key").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn require(key: &ApiKey, permission: &str) -> ApiResult<()> {
    if key.permissions.iter().any(|p| p == permission) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this API key lacks the '{permission}' permission"),
        ))
    }
}

/// Loads an enclave the caller owns; another wallet's enclave does not exist for it.
fn owned(state: &AppState, key: &ApiKey, id: &str) -> ApiResult<Enclave> {
    match state.store.get_enclave(id)? {
        Some(e) if e.wallet_address == key.wallet => Ok(e),
        _ => Err(ApiError::not_found(id)),
    }
}

/// What the API returns for an enclave: the record, plus the workflow's progress.
fn with_progress(state: &AppState, e: &Enclave) -> ApiResult<Value> {
    let mut v = serde_json::to_value(e)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "encode"))?;
    if let Some(obj) = v.as_object_mut() {
        obj.remove("version");
        if let Some(x) = state
            .store
            .executions_for_enclave(&e.id)?
            .into_iter()
            .last()
        {
            obj.insert(
                "workflow".into(),
                json!({"execution": x.name, "stateMachine": x.state_machine, "status": x.status, "currentStep": x.current_step}),
            );
        }
    }
    Ok(v)
}

#[derive(Deserialize)]
struct ListQuery {
    wallet: Option<String>,
}

async fn list_enclaves(
    State(state): State<AppState>,
    Extension(key): Extension<ApiKey>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    require(&key, "enclaves:read")?;
    let Query(q) = q.map_err(|e| {
        ApiError::field(
            StatusCode::BAD_REQUEST,
            "query",
            "type",
            format!("invalid query: {}", e.body_text()),
        )
    })?;
    if let Some(w) = q.wallet.as_deref() {
        if w != key.wallet {
            return Err(ApiError::field(
                StatusCode::FORBIDDEN,
                "wallet",
                "own-wallet",
                "wallet must be the wallet this API key belongs to",
            ));
        }
    }
    let list = state.store.list_enclaves(Some(&key.wallet), None)?;
    let enclaves = list
        .iter()
        .map(|e| with_progress(&state, e))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(json!({ "enclaves": enclaves })))
}

async fn create_enclave(
    State(state): State<AppState>,
    Extension(key): Extension<ApiKey>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    require(&key, "enclaves:write")?;
    let Json(mut body) = body.map_err(|e| {
        ApiError::field(
            StatusCode::BAD_REQUEST,
            "body",
            "json",
            format!("request body must be a JSON object: {}", e.body_text()),
        )
    })?;
    let obj = body.as_object_mut().ok_or_else(|| {
        ApiError::field(
            StatusCode::BAD_REQUEST,
            "body",
            "type",
            "request body must be a JSON object",
        )
    })?;
    match obj.get("walletAddress") {
        None | Some(Value::Null) => {
            obj.insert("walletAddress".into(), json!(key.wallet));
        }
        Some(Value::String(w)) if *w == key.wallet => {}
        Some(_) => {
            return Err(ApiError::field(
                StatusCode::FORBIDDEN,
                "walletAddress",
                "own-wallet",
                "walletAddress must be the wallet this API key belongs to",
            ))
        }
    }
    let req: NewEnclave = serde_json::from_value(body).map_err(|e| {
        ApiError::field(
            StatusCode::BAD_REQUEST,
            "body",
            "type",
            format!("invalid request: {e}"),
        )
    })?;
    if let Err(errors) = treza_core::validate_new_enclave(&req) {
        let first = errors.0.first();
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({
                "error": errors.to_string(),
                "field": first.map(|f| f.field.clone()),
                "rule": first.map(|f| f.rule.clone()),
                "errors": errors.0,
            }),
        });
    }
    let now = clock::now_iso();
    let mut random = [0u8; 9];
    getrandom_fill(&mut random);
    let enclave = Enclave {
        id: treza_core::record::new_enclave_id(clock::now_millis(), random),
        name: req.name,
        description: req.description,
        region: req.region,
        wallet_address: key.wallet.clone(),
        provider_id: req.provider_id,
        provider_config: req.provider_config,
        status: Status::PendingDeploy,
        created_at: now.clone(),
        updated_at: now,
        error_message: None,
        error_type: None,
        instance_id: None,
        outputs: Default::default(),
        version: 0,
    };
    let stored = state.store.insert_enclave(&enclave)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "enclave": with_progress(&state, &stored)? })),
    ))
}

fn getrandom_fill(buf: &mut [u8]) {
    // Randomness only makes ids unguessable; a failure falls back to the clock.
    if getrandom::fill(buf).is_err() {
        let n = clock::now().timestamp_subsec_nanos().to_le_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = n[i % n.len()].wrapping_add(i as u8);
        }
    }
}

async fn get_enclave(
    State(state): State<AppState>,
    Extension(key): Extension<ApiKey>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    require(&key, "enclaves:read")?;
    let e = owned(&state, &key, &id)?;
    Ok(Json(json!({ "enclave": with_progress(&state, &e)? })))
}

#[derive(Deserialize)]
struct PatchBody {
    action: Option<String>,
}

async fn patch_enclave(
    State(state): State<AppState>,
    Extension(key): Extension<ApiKey>,
    Path(id): Path<String>,
    body: Result<Json<PatchBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    require(&key, "enclaves:write")?;
    let Json(body) = body.map_err(|e| {
        ApiError::field(
            StatusCode::BAD_REQUEST,
            "body",
            "json",
            format!("request body must be JSON: {}", e.body_text()),
        )
    })?;
    let current = owned(&state, &key, &id)?;
    let (allowed, target, message): (&[Status], Status, &str) = match body.action.as_deref() {
        Some("terminate") => (
            &[Status::Deployed, Status::Paused, Status::Failed],
            Status::PendingDestroy,
            "termination requested",
        ),
        Some(action @ ("pause" | "resume")) if current.provider_id != "local" => {
            return Err(ApiError::field(
                StatusCode::BAD_REQUEST,
                "action",
                "unsupported",
                format!("{action} is available for the local provider on this server; this enclave uses '{}'", current.provider_id),
            ))
        }
        Some("pause") => (&[Status::Deployed], Status::Pausing, "pause requested"),
        Some("resume") => (&[Status::Paused], Status::Resuming, "resume requested"),
        other => {
            return Err(ApiError::field(
                StatusCode::BAD_REQUEST,
                "action",
                "enum",
                format!(
                    "action must be one of pause, resume, terminate; got {}",
                    other.map_or("nothing".to_string(), |a| format!("'{a}'"))
                ),
            ))
        }
    };
    let cond = Condition {
        expected_version: Some(current.version),
        expected_status: Some(allowed.to_vec()),
    };
    match state
        .store
        .update_enclave(&id, &cond, &clock::now_iso(), |e| {
            e.status = target;
            Ok::<(), std::convert::Infallible>(())
        }) {
        Ok(e) => {
            if matches!(e.status, Status::Pausing | Status::Resuming) {
                state.wake_monitor.notify_one();
            }
            Ok(Json(
                json!({"enclave": with_progress(&state, &e)?, "message": message}),
            ))
        }
        Err(treza_store::UpdateError::Store(
            StoreError::ConditionFailed { .. } | StoreError::IllegalTransition(_),
        )) => {
            let now = state
                .store
                .get_enclave(&id)?
                .map(|e| e.status.to_string())
                .unwrap_or_default();
            Err(ApiError::field(
                StatusCode::CONFLICT,
                "status",
                "state",
                format!(
                    "cannot {} an enclave in status {now}: allowed from {}",
                    body.action.as_deref().unwrap_or_default(),
                    allowed
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        }
        Err(treza_store::UpdateError::Store(e)) => Err(e.into()),
        Err(treza_store::UpdateError::Rejected(never)) => match never {},
    }
}

async fn delete_enclave(
    State(state): State<AppState>,
    Extension(key): Extension<ApiKey>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    require(&key, "enclaves:write")?;
    let e = owned(&state, &key, &id)?;
    if !matches!(e.status, Status::Destroyed | Status::Failed) {
        return Err(ApiError::field(
            StatusCode::CONFLICT,
            "status",
            "state",
            format!(
                "only DESTROYED or FAILED enclaves can be deleted; this one is {}",
                e.status
            ),
        ));
    }
    if state
        .store
        .executions_for_enclave(&id)?
        .iter()
        .any(|x| x.status == "RUNNING")
    {
        return Err(ApiError::field(
            StatusCode::CONFLICT,
            "status",
            "state",
            "a workflow is still running for this enclave; wait for it to finish",
        ));
    }
    if has_resources(&state, &id) {
        return Err(ApiError::field(
            StatusCode::CONFLICT,
            "status",
            "resources",
            "the enclave still has provisioned resources: terminate it first, then delete",
        ));
    }
    let cond = Condition {
        expected_version: Some(e.version),
        expected_status: Some(vec![e.status]),
    };
    state
        .store
        .delete_enclave(&id, &cond)
        .map_err(|err| match err {
            StoreError::ConditionFailed { .. } => ApiError::field(
                StatusCode::CONFLICT,
                "status",
                "state",
                "the enclave changed meanwhile; retry",
            ),
            other => other.into(),
        })?;
    // Nothing runs for it any more: its workspace and workload logs go too.
    let dir = ChildProcessRunner::enclave_dir(&state.data_dir, &id);
    if let Err(err) = std::fs::remove_dir_all(&dir) {
        if err.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(enclave = %id, error = %err, "cannot remove the enclave's directory");
        }
    }
    Ok(Json(json!({"message": "enclave deleted", "id": id})))
}

/// Whether the enclave's Terraform state still records resources. Fails
/// closed: a state that exists but cannot be read counts as resources.
fn has_resources(state: &AppState, id: &str) -> bool {
    let path =
        ChildProcessRunner::enclave_dir(&state.data_dir, id).join("terraform/terraform.tfstate");
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(_) => true,
        Ok(text) => serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("resources")
                    .and_then(Value::as_array)
                    .map(|r| !r.is_empty())
            })
            .unwrap_or(true),
    }
}

#[derive(Deserialize)]
struct LogsQuery {
    r#type: Option<String>,
    limit: Option<usize>,
}

const LOG_SOURCES: [&str; 5] = ["ecs", "stepfunctions", "lambda", "application", "errors"];

async fn enclave_logs(
    State(state): State<AppState>,
    Extension(key): Extension<ApiKey>,
    Path(id): Path<String>,
    q: Result<Query<LogsQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    require(&key, "logs:read")?;
    let Query(q) = q.map_err(|e| {
        ApiError::field(
            StatusCode::BAD_REQUEST,
            "query",
            "type",
            format!(
                "invalid query: {}; limit must be a whole number between 1 and 1000",
                e.body_text()
            ),
        )
    })?;
    let e = owned(&state, &key, &id)?;
    let kind = q.r#type.as_deref().unwrap_or("all");
    if kind != "all" && !LOG_SOURCES.contains(&kind) {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "type",
            "enum",
            format!(
                "type must be one of all, {}; got '{kind}'",
                LOG_SOURCES.join(", ")
            ),
        ));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let mut logs = serde_json::Map::new();
    for source in LOG_SOURCES {
        if kind != "all" && kind != source {
            continue;
        }
        let entries: Vec<Value> = if source == "application" {
            application_logs(&state, &e, limit)
        } else {
            state
                .store
                .logs(&id, Some(source), limit)?
                .into_iter()
                .map(|l| {
                    let mut v =
                        json!({"timestamp": l.timestamp, "message": l.message, "source": source});
                    if let (Some(f), Some(o)) = (l.fields, v.as_object_mut()) {
                        o.insert("fields".into(), f);
                    }
                    v
                })
                .collect()
        };
        logs.insert(source.into(), Value::Array(entries));
    }
    Ok(Json(json!({
        "enclave_id": e.id,
        "enclave_name": e.name,
        "enclave_status": e.status,
        "logs": logs,
    })))
}

/// How much of the end of a workload's log one request reads at most.
const APPLICATION_LOG_TAIL_BYTES: u64 = 256 * 1024;

/// The workload's own output, from the file its supervisor writes (the last
/// `APPLICATION_LOG_TAIL_BYTES` of it), with the enclave's environment values
/// masked whether or not its stored configuration still validates.
fn application_logs(state: &AppState, e: &Enclave, limit: usize) -> Vec<Value> {
    use std::io::{Read, Seek, SeekFrom};
    let path =
        ChildProcessRunner::enclave_dir(&state.data_dir, &e.id).join("workload/workload.log");
    let Ok(mut file) = std::fs::File::open(&path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(APPLICATION_LOG_TAIL_BYTES);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // a partial line
    }
    let redactor = treza_core::Redactor::new(environment_values(e));
    let first = lines.len().saturating_sub(limit);
    lines[first..]
        .iter()
        .map(|l| json!({"timestamp": Value::Null, "message": redactor.redact(l), "source": "application"}))
        .collect()
}

/// The values of `providerConfig.environmentVariables` (object or JSON string).
fn environment_values(e: &Enclave) -> Vec<String> {
    let parsed;
    let env = match e.provider_config.get("environmentVariables") {
        Some(Value::String(s)) => {
            parsed = serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
            &parsed
        }
        Some(v) => v,
        None => return Vec::new(),
    };
    env.as_object()
        .map(|m| {
            m.values()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}
