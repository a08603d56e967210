//! `/api/v1/nas` (RADIUS clients) and the session actions
//! `/api/v1/radius/sessions/{radacctid}/disconnect` and `/coa`.
//!
//! Thin handlers over [`super::service`] and [`crate::radius::coa`]. Roles: any
//! signed-in caller reads NAS entries; operators and admins change them and
//! send Disconnect/CoA requests.
//!
//! A NAS's shared secret is write-only: no view has it (FreeRADIUS needs it
//! in clear in its `nas` table, so it is stored there as is; see
//! [`super::service`]).

use axum::extract::OriginalUri;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service::{coa_port, NasFilter, NasInput, NAS_SORTS};
use crate::api::auth::Api;
use crate::api::check;
use crate::api::created;
use crate::api::extract::{ApiJson, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::crypto::Secret;
use crate::error::{AppError, FieldErrors};
use crate::query::{filters, Sort};
use crate::radius::coa::{self, CoaChanges, CoaResult, CoaSettings};
use crate::radius::entities::nas;
use crate::staff::{Operator, Viewer};
use crate::web::pagination::{Page, PageParams, Paged};

/// The NAS and session-action routes, relative to `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_nas, create_nas))
        .routes(routes!(get_nas, update_nas, delete_nas))
        .routes(routes!(disconnect_session))
        .routes(routes!(change_session))
}

// ---------------------------------------------------------------- views

/// A RADIUS client (NAS). The shared secret is never part of it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "nasname": "192.0.2.1", "shortname": "bras-1",
    "type": "mikrotik", "ports": null, "coa_port": 3799, "server": null,
    "has_community": false, "description": "Core BRAS"}))]
pub struct NasView {
    #[schema(example = 1)]
    pub id: i32,
    /// The NAS's IP address or host name.
    #[schema(example = "192.0.2.1")]
    pub nasname: String,
    #[schema(example = "bras-1")]
    pub shortname: Option<String>,
    #[serde(rename = "type")]
    #[schema(example = "mikrotik")]
    pub nas_type: Option<String>,
    /// FreeRADIUS's `ports` column; ispd sends Disconnect/CoA to this UDP
    /// port when it is set.
    pub ports: Option<i32>,
    /// The UDP port Disconnect/CoA requests go to: `ports`, else 3799.
    #[schema(example = 3799)]
    pub coa_port: i32,
    /// The FreeRADIUS virtual server for this client.
    pub server: Option<String>,
    /// Whether an SNMP community (for FreeRADIUS's `checkrad`) is stored;
    /// the community itself is write-only.
    pub has_community: bool,
    pub description: Option<String>,
}

impl From<nas::Model> for NasView {
    fn from(n: nas::Model) -> Self {
        Self {
            coa_port: i32::from(coa_port(&n)),
            id: n.id,
            nasname: n.nasname,
            shortname: n.shortname,
            nas_type: n.nas_type,
            ports: n.ports,
            server: n.server,
            has_community: n.community.is_some(),
            description: n.description,
        }
    }
}

/// Filters and order of `GET /nas`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NasQuery {
    /// Part of the nasname, shortname or description, any case.
    pub q: Option<String>,
    /// `id`, `nasname`, `shortname` or `type`; `-` in front for
    /// descending; comma-separated for several. Default `nasname`.
    #[param(example = "nasname")]
    pub sort: Option<String>,
}

/// The body of `POST /nas` and `PUT /nas/{id}` (every field; an omitted
/// optional field is cleared, except `secret` and `community`, which an
/// update keeps).
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"nasname": "192.0.2.1", "shortname": "bras-1", "type": "mikrotik",
    "ports": 3799, "secret": "a-long-shared-secret", "server": null, "community": null,
    "description": "Core BRAS"}))]
pub struct NasBody {
    /// An IPv4/IPv6 address or a host name; unique. A NAS must be
    /// registered by the address it reports as NAS-IP-Address for
    /// Disconnect/CoA to find it.
    #[schema(example = "192.0.2.1", max_length = 128)]
    pub nasname: String,
    /// Letters, digits and `. _ -`, at most 32; defaults to the nasname.
    #[schema(max_length = 32)]
    pub shortname: Option<String>,
    /// One of `other` (default), `mikrotik`, `cisco`, `juniper`,
    /// `livingston`, `computone`, `max40xx`, `multitech`, `netserver`,
    /// `pathras`, `patton`, `portslave`, `tc`, `usrhiper`.
    #[serde(rename = "type")]
    #[schema(example = "mikrotik")]
    pub nas_type: Option<String>,
    /// 1 to 65535: the NAS's Disconnect/CoA UDP port (3799 when omitted).
    #[schema(minimum = 1, maximum = 65535)]
    pub ports: Option<i64>,
    /// The RADIUS shared secret: write-only, never returned. 16 to 60
    /// printable ASCII characters. Required on `POST`; on `PUT`, omitted
    /// keeps the current one (unless `nasname` changes: then it is
    /// required again).
    #[schema(write_only, min_length = 16, max_length = 60)]
    pub secret: Option<String>,
    /// A FreeRADIUS virtual server name (letters, digits, `. _ -`; at most 64).
    pub server: Option<String>,
    /// The SNMP community for FreeRADIUS's `checkrad`: write-only, never
    /// returned; at most 50 characters. On `PUT`, omitted keeps the stored
    /// one.
    #[schema(write_only, max_length = 50)]
    pub community: Option<String>,
    /// On `PUT`: removes the stored community.
    #[serde(default)]
    pub clear_community: bool,
    /// At most 200 characters.
    pub description: Option<String>,
}

impl From<NasBody> for NasInput {
    fn from(b: NasBody) -> Self {
        Self {
            nasname: b.nasname,
            shortname: b.shortname,
            nas_type: b.nas_type,
            ports: b.ports,
            secret: b.secret.map(Secret::new),
            server: b.server,
            community: b.community.map(Secret::new),
            clear_community: b.clear_community,
            description: b.description,
        }
    }
}

// ------------------------------------------------------------------ NAS

/// List RADIUS clients (NAS).
#[utoipa::path(
    get,
    path = "/nas",
    tag = "nas",
    operation_id = "list_nas",
    params(PageParams, NasQuery),
    responses(
        (status = 200, description = "One page of NAS entries (never their secrets).", body = Page<NasView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"id": 1, "nasname": "192.0.2.1", "shortname": "bras-1",
                "type": "mikrotik", "ports": null, "coa_port": 3799, "server": null,
                "has_community": false, "description": "Core BRAS"}],
                "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn list_nas(
    api: Api<Viewer>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<NasQuery>,
) -> Result<Paged<NasView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = NasFilter {
        q: filters::text("q", query.q.as_deref(), 100, &mut errors),
    };
    let sort = Sort::parse(query.sort.as_deref(), NAS_SORTS, "nasname", &mut errors);
    check(errors)?;
    let (rows, total) =
        super::service::list_nas(&api.state.db.radius, &filter, &sort, page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(NasView::from))
}

/// Register a NAS (a RADIUS client). FreeRADIUS reads the `nas` table at
/// start-up: restart or reload it to accept the new client.
#[utoipa::path(
    post,
    path = "/nas",
    tag = "nas",
    operation_id = "create_nas",
    request_body = NasBody,
    responses(
        (status = 201, description = "Created; `Location` names it. No secret in it.", body = NasView,
            headers(("Location" = String, description = "The new NAS's URL."))),
        (status = 409, description = "Another NAS has this nasname.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "nas_exists",
                "message": "a NAS named \"192.0.2.1\" already exists (id 1)"}})),
        (status = 422, description = "A field is not valid.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "validation_failed",
                "message": "these fields are not valid: nasname, secret",
                "fields": {"nasname": "\"10.0.0.300\" is neither an IP address (such as 10.0.0.1) nor a host name (such as nas1.example.net)",
                    "secret": "must be 8 to 60 characters long"}}})),
    ),
)]
pub async fn create_nas(
    api: Api<Operator>,
    ApiJson(body): ApiJson<NasBody>,
) -> Result<Response, AppError> {
    let nas = super::service::create_nas(api.db(), &api.state.db.radius, &api.actor, &body.into())
        .await?;
    Ok(created(&format!("/nas/{}", nas.id), NasView::from(nas)))
}

/// Show one NAS (never its secret).
#[utoipa::path(
    get,
    path = "/nas/{id}",
    tag = "nas",
    operation_id = "get_nas",
    params(("id" = i32, Path, description = "The NAS's id.")),
    responses(
        (status = 200, description = "The NAS.", body = NasView),
    ),
)]
pub async fn get_nas(
    api: Api<Viewer>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<NasView>, AppError> {
    Ok(Json(
        super::service::get_nas(&api.state.db.radius, id)
            .await?
            .into(),
    ))
}

/// Replace a NAS's settings (every field, as in `POST`; without `secret`
/// the current one stays).
#[utoipa::path(
    put,
    path = "/nas/{id}",
    tag = "nas",
    operation_id = "update_nas",
    params(("id" = i32, Path, description = "The NAS's id.")),
    request_body = NasBody,
    responses(
        (status = 200, description = "The NAS, changed.", body = NasView),
        (status = 409, description = "Another NAS has this nasname.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "nas_exists",
                "message": "a NAS named \"192.0.2.1\" already exists (id 1)"}})),
    ),
)]
pub async fn update_nas(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(body): ApiJson<NasBody>,
) -> Result<Json<NasView>, AppError> {
    let updated =
        super::service::update_nas(api.db(), &api.state.db.radius, &api.actor, id, &body.into())
            .await?;
    Ok(Json(updated.into()))
}

/// Delete a NAS. FreeRADIUS stops accepting it after its next restart or
/// reload; ispd can no longer send it Disconnect/CoA requests.
#[utoipa::path(
    delete,
    path = "/nas/{id}",
    tag = "nas",
    operation_id = "delete_nas",
    params(("id" = i32, Path, description = "The NAS's id.")),
    responses(
        (status = 204, description = "Deleted."),
    ),
)]
pub async fn delete_nas(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, AppError> {
    super::service::delete_nas(api.db(), &api.state.db.radius, &api.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------ session actions

/// What the NAS answered a Disconnect-Request or CoA-Request.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"radacctid": 42, "username": "alice", "acctsessionid": "81200007",
    "nas": "192.0.2.1", "port": 3799, "request": "Disconnect-Request", "result": "nak",
    "acknowledged": false, "error_cause": 503, "error_cause_text": "Session-Context-Not-Found",
    "attempts": 1}))]
pub struct SessionActionView {
    #[schema(example = 42)]
    pub radacctid: i64,
    pub username: Option<String>,
    pub acctsessionid: String,
    /// The NAS's nasname.
    #[schema(example = "192.0.2.1")]
    pub nas: String,
    /// The UDP port the request went to.
    #[schema(example = 3799)]
    pub port: u16,
    /// `Disconnect-Request` or `CoA-Request`.
    pub request: String,
    /// `ack` or `nak`.
    #[schema(example = "ack")]
    pub result: String,
    pub acknowledged: bool,
    /// A NAK's Error-Cause (RFC 5176 section 3.5), e.g. 503.
    pub error_cause: Option<u32>,
    /// The Error-Cause in words, e.g. `Session-Context-Not-Found`.
    pub error_cause_text: Option<String>,
    /// Sends until the answer came (1 unless retransmitted).
    pub attempts: u32,
}

impl From<CoaResult> for SessionActionView {
    fn from(r: CoaResult) -> Self {
        Self {
            acknowledged: r.acknowledged(),
            error_cause: r.error_cause(),
            error_cause_text: r
                .error_cause()
                .map(|c| coa::error_cause_text(c).to_string()),
            result: if r.acknowledged() { "ack" } else { "nak" }.into(),
            request: r.kind.name().into(),
            radacctid: r.session.radacctid,
            username: r.session.username,
            acctsessionid: r.session.acctsessionid,
            nas: r.nas,
            port: r.port,
            attempts: r.attempts,
        }
    }
}

/// The body of `POST /radius/sessions/{radacctid}/coa`: at least one change.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"rate_limit": "5M/20M", "session_timeout_secs": 3600}))]
pub struct CoaBody {
    /// A new `Mikrotik-Rate-Limit`, e.g. `5M/20M` or
    /// `5M/20M 8M/30M 4M/15M 10/10` (at most 128 characters).
    #[schema(example = "5M/20M")]
    pub rate_limit: Option<String>,
    /// A new `Session-Timeout`, 1 to 2147483647 seconds.
    #[schema(example = 3600, minimum = 1)]
    pub session_timeout_secs: Option<i64>,
}

/// Disconnect a session: sends an RFC 5176 Disconnect-Request to the NAS
/// that holds it (the `nas` row matching `radacct.nasipaddress`, on its
/// `ports` or 3799), retransmitted up to `RADIUS_COA_ATTEMPTS` times. An
/// answer, ACK or NAK, is 200 with `result`; a NAK carries its
/// Error-Cause. Every attempt is recorded in the audit log
/// (`radius_session.disconnect`).
#[utoipa::path(
    post,
    path = "/radius/sessions/{radacctid}/disconnect",
    tag = "radius",
    operation_id = "disconnect_radius_session",
    params(("radacctid" = i64, Path, description = "The session's radacct id.")),
    responses(
        (status = 200, description = "The NAS answered: `result` is `ack` (disconnected) or `nak` (refused, with `error_cause`).",
            body = SessionActionView,
            example = json!({"radacctid": 42, "username": "alice", "acctsessionid": "81200007",
                "nas": "192.0.2.1", "port": 3799, "request": "Disconnect-Request", "result": "ack",
                "acknowledged": true, "error_cause": null, "error_cause_text": null, "attempts": 1})),
        (status = 409, description = "The session has ended (`session_closed`), or its NAS is not registered (`nas_not_registered`) or has no usable address (`nas_unusable`).",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "nas_not_registered",
                "message": "NAS 192.0.2.1 is not registered: add it (with its shared secret) under NAS first"}})),
        (status = 502, description = "The NAS cannot be reached (ICMP unreachable, no route).",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "nas_unreachable",
                "message": "NAS 192.0.2.1:3799 cannot be reached: 192.0.2.1:3799 refused the packet (ICMP port unreachable): nothing listens on that port"}})),
        (status = 504, description = "The NAS did not answer any attempt in time.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "nas_timeout",
                "message": "NAS 192.0.2.1:3799 did not answer the Disconnect-Request (3 attempt(s), 3000 ms each)"}})),
    ),
)]
pub async fn disconnect_session(
    api: Api<Operator>,
    ApiPath(radacctid): ApiPath<i64>,
) -> Result<Json<SessionActionView>, AppError> {
    let result = coa::disconnect_session(
        api.db(),
        &api.state.db.radius,
        CoaSettings::from_config(&api.state.config),
        &api.actor,
        radacctid,
    )
    .await?;
    Ok(Json(result.into()))
}

/// Change a session: sends an RFC 5176 CoA-Request with a new
/// `Mikrotik-Rate-Limit` and/or `Session-Timeout` to the session's NAS,
/// as for a disconnect. Every attempt is recorded in the audit log
/// (`radius_session.coa`).
#[utoipa::path(
    post,
    path = "/radius/sessions/{radacctid}/coa",
    tag = "radius",
    operation_id = "change_radius_session",
    params(("radacctid" = i64, Path, description = "The session's radacct id.")),
    request_body = CoaBody,
    responses(
        (status = 200, description = "The NAS answered: `result` is `ack` (applied) or `nak` (refused, with `error_cause`).",
            body = SessionActionView),
        (status = 409, description = "The session has ended, or its NAS is not registered.",
            body = crate::api::docs::ErrorBody),
        (status = 422, description = "No change named, or a change is not valid.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "validation_failed",
                "message": "rate_limit: \"fast\" is not a MikroTik rate limit such as 5M/20M or 5M/20M 8M/30M 4M/15M 10/10",
                "fields": {"rate_limit": "\"fast\" is not a MikroTik rate limit such as 5M/20M or 5M/20M 8M/30M 4M/15M 10/10"}}})),
        (status = 502, description = "The NAS cannot be reached.", body = crate::api::docs::ErrorBody),
        (status = 504, description = "The NAS did not answer any attempt in time.", body = crate::api::docs::ErrorBody),
    ),
)]
pub async fn change_session(
    api: Api<Operator>,
    ApiPath(radacctid): ApiPath<i64>,
    ApiJson(body): ApiJson<CoaBody>,
) -> Result<Json<SessionActionView>, AppError> {
    let changes = CoaChanges::parse(body.rate_limit.as_deref(), body.session_timeout_secs)
        .map_err(AppError::validation)?;
    let result = coa::change_session(
        api.db(),
        &api.state.db.radius,
        CoaSettings::from_config(&api.state.config),
        &api.actor,
        radacctid,
        &changes,
    )
    .await?;
    Ok(Json(result.into()))
}
