//! The OpenAPI 3.1 document: shared schemas, the error responses every
//! endpoint refers to, and the security schemes.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Object, Ref, RefOr, Response, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "no API token with id 7"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `bad_request`, `unauthenticated`,
    /// `forbidden`, `not_found`, `method_not_allowed`, `username_taken`,
    /// `conflict`, `payload_too_large`, `unsupported_media_type`,
    /// `validation_failed`, `rate_limited`, `unavailable`, `internal`.
    #[schema(example = "validation_failed")]
    pub code: String,
    /// For people; may change between versions.
    #[schema(example = "name: must be 1 to 100 characters long")]
    pub message: String,
    /// 422 only: one message per invalid field or query parameter.
    #[schema(example = json!({"name": "must be 1 to 100 characters long"}))]
    pub fields: Option<BTreeMap<String, String>>,
}

fn error_response(
    description: &str,
    example: serde_json::Value,
    headers: &[(&str, Type, &str)],
) -> RefOr<Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .example(Some(example))
            .build(),
    );
    for (name, ty, description) in headers {
        response = response.header(
            *name,
            HeaderBuilder::new()
                .schema(Some(Object::with_type(ty.clone())))
                .description(Some(*description))
                .build(),
        );
    }
    RefOr::T(response.build())
}

/// One reusable response per error status; `#/components/responses/<Name>`.
macro_rules! error_responses {
    ($($name:ident: $description:literal, $code:literal, $message:literal $(, fields = $fields:tt)? $(, header $header:literal: $ty:ident = $header_description:literal)*;)*) => {
        $(
            #[doc = $description]
            pub struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    #[allow(unused_mut)]
                    let mut error = json!({ "code": $code, "message": $message });
                    $( error["fields"] = json!($fields); )?
                    (
                        stringify!($name),
                        error_response(
                            $description,
                            json!({ "error": error }),
                            &[$(($header, Type::$ty, $header_description)),*],
                        ),
                    )
                }
            }
        )*
    };
}

error_responses! {
    BadRequest: "The request could not be read: malformed JSON, or a query string that cannot be parsed.",
        "bad_request", "the body is not valid JSON: EOF while parsing an object";
    Unauthenticated: "No valid credentials: send `Authorization: Bearer <token>` (or sign in).",
        "unauthenticated", "sign in or send a valid API token",
        header "WWW-Authenticate": String = "`Bearer realm=\"ispd\"`";
    Forbidden: "The caller's role does not allow this.",
        "forbidden", "your role does not allow this";
    NotFound: "Nothing with this id, or no such path.",
        "not_found", "no API token with id 7";
    Conflict: "The request conflicts with what exists, e.g. a username that is taken.",
        "username_taken", "a staff member named \"noc\" already exists";
    PayloadTooLarge: "The body is larger than the API accepts (64 KiB).",
        "payload_too_large", "the request body is too large (at most 65536 bytes)";
    UnsupportedMediaType: "The body is not sent as `application/json`.",
        "unsupported_media_type", "send the body as JSON, with Content-Type: application/json";
    ValidationFailed: "The request was read, but some fields or parameters are not valid; `fields` says which.",
        "validation_failed", "these fields are not valid: name, role",
        fields = {"name": "must be 1 to 100 characters long", "role": "\"root\" is not a role (admin, operator or viewer)"};
    RateLimited: "Too many requests from this token or address.",
        "rate_limited", "too many requests: try again in 1 s",
        header "Retry-After": Integer = "Seconds to wait before the next request.";
    Internal: "Something failed on the server; the details are logged, never sent.",
        "internal", "something went wrong on our side; it has been logged";
    Unavailable: "A dependency (a database) does not answer.",
        "unavailable", "the database does not answer";
    IpamConflict: "The IPAM change conflicts with the current state: `subnet_full`, `address_in_use` (the requested address is allocated), or `conflict` (e.g. deleting a pool that still has active allocations, allocating from a reserved subnet).",
        "subnet_full", "subnet 10.0.0.0/29 is full: 5 of 5 usable addresses allocated";
    IpamBusy: "The subnet's lock was not granted within IPAM_LOCK_TIMEOUT: other changes to it are under way. Retry after `Retry-After` seconds.",
        "unavailable", "the subnet is busy with other changes; try again in a moment",
        header "Retry-After": Integer = "Seconds to wait before retrying.";
    RouterFailed: "A MikroTik router could not be reached, refused the login or the command, closed the session, or answered something unreadable; the message names the router and says which. Codes: `router_unreachable`, `router_tls_failed`, `router_login_failed`, `router_error`, `router_fatal`, `router_protocol_error`, `router_out_of_step`. Nothing was saved.",
        "router_unreachable", "router core-1 is unreachable: 192.0.2.1:8728: Connection refused (os error 111)";
    RouterTimeout: "A MikroTik router did not answer within MIKROTIK_API_TIMEOUT. Nothing was saved; a change the router may have applied late was checked and undone.",
        "router_timeout", "router core-1 did not answer within 30 s";
}

/// The security schemes: a bearer API token, or the staff session cookie.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("ispd API token".into());
        bearer.description = Some(
            "An API token from `ispd token create` or `POST /api/v1/tokens`: \
             `Authorization: Bearer ispd_...`."
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::web::SESSION_COOKIE,
                "The staff web session. Requests that change state must also send the \
                 session's CSRF token in `X-CSRF-Token`.",
            ))),
        );
    }
}

/// The answers every protected operation can give, added here so that each
/// `#[utoipa::path]` lists only its successes and its own domain errors
/// (409, 502, 503, 504, or a 4xx with a more specific example):
///
/// - every operation: 401, 429 and 500, and the `bearer`/`session` security
///   requirement;
/// - a method other than GET: 403 (it changes something, which a viewer may
///   not; a GET that only admins may call lists its own 403);
/// - a path parameter: 404;
/// - a query string or a body: 400 (unreadable) and 422 (invalid);
/// - a body: 413 and 415.
///
/// An operation that declares `security(())` is public and gets none of
/// these; one that already lists a status keeps its own answer.
pub struct StandardResponses;

impl StandardResponses {
    fn add_to(method: &str, operation: &mut Operation) {
        let public = operation.security.as_ref().is_some_and(|requirements| {
            requirements
                .iter()
                .all(|requirement| *requirement == SecurityRequirement::default())
        });
        if public {
            return;
        }
        operation.security.get_or_insert_with(|| {
            vec![
                SecurityRequirement::new("bearer", Vec::<String>::new()),
                SecurityRequirement::new("session", Vec::<String>::new()),
            ]
        });
        let has_parameter_in = |wanted: ParameterIn| {
            operation
                .parameters
                .iter()
                .flatten()
                .any(|parameter| match parameter {
                    RefOr::T(parameter) => parameter.parameter_in == wanted,
                    RefOr::Ref(_) => false,
                })
        };
        let has_path = has_parameter_in(ParameterIn::Path);
        let has_query = has_parameter_in(ParameterIn::Query);
        let has_body = operation.request_body.is_some();
        let mut standard = vec![
            ("401", "Unauthenticated"),
            ("429", "RateLimited"),
            ("500", "Internal"),
        ];
        if method != "get" {
            standard.push(("403", "Forbidden"));
        }
        if has_path {
            standard.push(("404", "NotFound"));
        }
        if has_query || has_body {
            standard.push(("400", "BadRequest"));
            standard.push(("422", "ValidationFailed"));
        }
        if has_body {
            standard.push(("413", "PayloadTooLarge"));
            standard.push(("415", "UnsupportedMediaType"));
        }
        for (status, name) in standard {
            operation
                .responses
                .responses
                .entry(status.to_string())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
        }
    }
}

impl Modify for StandardResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    Self::add_to(method, operation);
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ispd API",
        description = "The JSON API of ispd. Conventions (authentication, errors, pagination, \
            sorting, rate limits, request ids) are described in docs/API.md.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    modifiers(&SecuritySchemes),
    components(
        schemas(ErrorBody, ErrorDetail),
        responses(
            BadRequest,
            Unauthenticated,
            Forbidden,
            NotFound,
            Conflict,
            PayloadTooLarge,
            UnsupportedMediaType,
            ValidationFailed,
            RateLimited,
            Internal,
            Unavailable,
            IpamConflict,
            IpamBusy,
            RouterFailed,
            RouterTimeout,
        ),
    ),
    tags(
        (name = "system", description = "Health and the caller's identity."),
        (name = "tokens", description = "API tokens (admin)."),
        (name = "staff", description = "Staff accounts (admin)."),
        (name = "audit", description = "The audit log: who changed what."),
        (name = "ipam", description = "IP address management: pools, subnets, allocations and \
            address history. Viewers read; operators and admins change."),
        (name = "users", description = "Network users (subscribers). Passwords are write-only; \
            operators and admins may reveal one, which the audit log records. Viewers read; \
            operators and admins change."),
        (name = "mikrotik", description = "MikroTik routers (RouterOS API) and the PPPoE secrets \
            ispd keeps on them. Changes go to the router first, then the database. Router \
            passwords and PPP passwords are write-only. Viewers read; operators and admins change."),
        (name = "packages", description = "Service packages: rates, burst, limits, RADIUS group \
            and MikroTik profile. Viewers read; operators and admins change."),
        (name = "policies", description = "Service policies: what a suspended or expired \
            subscriber gets (reject, walled garden, throttle), from the policy's own RADIUS \
            group. Viewers read; operators and admins change."),
        (name = "nas", description = "RADIUS clients (FreeRADIUS's `nas` table): the routers \
            FreeRADIUS accepts and where ispd sends Disconnect/CoA. Shared secrets are \
            write-only. Viewers read; operators and admins change."),
        (name = "radius", description = "RADIUS sessions and accounting (FreeRADIUS's \
            `radacct`), and RFC 5176 Disconnect/CoA requests to a session's NAS."),
        (name = "jobs", description = "Background jobs: schedule (UTC), run history, and \
            \"run now\". Viewers read; operators and admins start runs."),
        (name = "webhooks", description = "Outbound webhooks: endpoints that events are \
            pushed to (signed with HMAC-SHA256, retried until they answer 2xx), their \
            deliveries, and replaying one. Admins only; secrets are write-only."),
    ),
)]
pub struct ApiDoc;
