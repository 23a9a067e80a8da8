//! The OpenAPI 3.1 document served at `/v1/openapi.json`: every route, its auth, what it
//! takes and what it answers. Built from [`OPERATIONS`], which a test compares with the
//! router so that neither drifts. What a route answers is the JSON Schema of its
//! `thwonk_control::views` type (the type the route itself returns), under
//! `components/schemas`.

use axum::Json;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};
use thwonk_control::views::{
    DeployView, DryRunView, FeedItemsView, FileListView, FileWrittenView, InvokeView, RunListView,
    RunView, ThwonkDetailView, ThwonkListView, ThwonkView, VersionListView, VersionView,
};

/// How an operation takes its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    None,
    Json,
    /// A raw body: the script's source, a file's bytes.
    Raw,
}

/// One route and method.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// False for the health checks and this document.
    pub auth: bool,
    pub input: Input,
    /// The success status.
    pub ok: u16,
    /// The schema of a JSON success answer (its view type), when it has one.
    pub answers: Option<fn(&mut SchemaGenerator) -> Schema>,
}

/// The schema of view type `T` (a reference into `components/schemas`).
fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

impl Operation {
    /// This operation answers a `T` (a view type) on success.
    const fn answers(mut self, f: fn(&mut SchemaGenerator) -> Schema) -> Operation {
        self.answers = Some(f);
        self
    }
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    input: Input,
    ok: u16,
) -> Operation {
    Operation {
        method,
        path,
        summary,
        auth: true,
        input,
        ok,
        answers: None,
    }
}

const T: &str = "/v1/thwonks/{address}";

macro_rules! t {
    ($rest:literal) => {
        concat!("/v1/thwonks/{address}", $rest)
    };
}

/// Every operation of the API.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/healthz",
        summary: "The process answers.",
        auth: false,
        input: Input::None,
        ok: 200,
        answers: None,
    },
    Operation {
        method: "get",
        path: "/readyz",
        summary: "The database and Redis answer (503 when not).",
        auth: false,
        input: Input::None,
        ok: 200,
        answers: None,
    },
    Operation {
        method: "get",
        path: "/v1/openapi.json",
        summary: "This document.",
        auth: false,
        input: Input::None,
        ok: 200,
        answers: None,
    },
    op(
        "get",
        "/v1/thwonks",
        "List the thwonks the caller may see.",
        Input::None,
        200,
    )
    .answers(schema::<ThwonkListView>),
    op(
        "post",
        "/v1/thwonks",
        "Create an empty thwonk: {\"address\", \"owner\"?} (owner: admins only). 409 address_taken when taken (\"taken by another owner\" as PUT .../script answers); for an owner, 403 address_not_allowed outside the server's (or granted) domains, for reserved local parts and address literals, 403 thwonk_limit past budgets.thwonks_per_owner.",
        Input::Json,
        201,
    )
    .answers(schema::<ThwonkView>),
    op("get", T, "Show a thwonk.", Input::None, 200).answers(schema::<ThwonkDetailView>),
    op(
        "delete",
        T,
        "Delete a thwonk and everything it owns.",
        Input::None,
        204,
    ),
    op(
        "post",
        t!("/disable"),
        "Stop accepting mail (and schedules).",
        Input::None,
        200,
    )
    .answers(schema::<ThwonkView>),
    op(
        "post",
        t!("/enable"),
        "Accept mail again.",
        Input::None,
        200,
    )
    .answers(schema::<ThwonkView>),
    op(
        "get",
        t!("/script"),
        "The active script's source as raw text (application/javascript), so that it round-trips with PUT; with Accept: application/json the version as JSON with its source.",
        Input::None,
        200,
    )
    .answers(schema::<VersionView>),
    op(
        "put",
        t!("/script"),
        "Deploy the body (UTF-8 source) as the next version, with the CLI's checks; creates the thwonk when the address is free (201), under the same address policy as POST /v1/thwonks (403 address_not_allowed, thwonk_limit). 409 address_taken when another owner holds it; 422 script_refused with line and column.",
        Input::Raw,
        200,
    )
    .answers(schema::<DeployView>),
    op(
        "get",
        t!("/versions"),
        "Every script version, newest first.",
        Input::None,
        200,
    )
    .answers(schema::<VersionListView>),
    op(
        "get",
        t!("/versions/{version}"),
        "One script version's source as raw text; with Accept: application/json as JSON with its source.",
        Input::None,
        200,
    )
    .answers(schema::<VersionView>),
    op(
        "post",
        t!("/rollback"),
        "Make an existing version active: {\"version\"}.",
        Input::Json,
        200,
    )
    .answers(schema::<ThwonkView>),
    op(
        "post",
        t!("/test"),
        "Dry run: {\"message\", \"mail_from\"?, \"script\"?}. The run's result and would-be effects; nothing is committed. One at a time per owner: 429 busy while another of the caller's dry runs is running.",
        Input::Json,
        200,
    )
    .answers(schema::<DryRunView>),
    op(
        "get",
        t!("/runs"),
        "Recent runs, newest first (?limit=, at most 200), with logs, errors and cost.",
        Input::None,
        200,
    )
    .answers(schema::<RunListView>),
    op("get", t!("/runs/{run_id}"), "One run.", Input::None, 200).answers(schema::<RunView>),
    op(
        "get",
        t!("/files"),
        "List files (?prefix=).",
        Input::None,
        200,
    )
    .answers(schema::<FileListView>),
    op(
        "get",
        t!("/files/{path}"),
        "A file's bytes.",
        Input::None,
        200,
    ),
    op(
        "put",
        t!("/files/{path}"),
        "Store the body as the file (at most limits.file_max_bytes).",
        Input::Raw,
        200,
    )
    .answers(schema::<FileWrittenView>),
    op(
        "delete",
        t!("/files/{path}"),
        "Delete a file.",
        Input::None,
        204,
    ),
    op(
        "get",
        t!("/feeds/{name}"),
        "A feed's newest items (at most http.max_feed_items), oldest first.",
        Input::None,
        200,
    )
    .answers(schema::<FeedItemsView>),
    op(
        "get",
        t!("/feeds/{name}/events"),
        "The feed's changes as Server-Sent Events (event: publish|edit|retract|position; id: item id; data: {\"id\",\"item\"}). Honours Last-Event-ID.",
        Input::None,
        200,
    ),
    op(
        "post",
        t!("/invoke"),
        "Run the script's onRequest with the JSON body (req.body; req.caller.kind \"owner\"); answers the run and its JSON value. Honest statuses: 404 no_handler, 500 script_error (the script threw; error.run_id names the run), 503 over_budget (instructions, time or memory), 409 disabled, 504 on timeout, 503 unavailable when the runner cannot be reached.",
        Input::Json,
        200,
    )
    .answers(schema::<InvokeView>),
    op(
        "post",
        t!("/invoke/{method}"),
        "Run the script's exported methods[method] (export const methods = { name(req, thwonk) {} }) with the JSON body, as /invoke runs onRequest; the same statuses (404 no_handler when there is no such method).",
        Input::Json,
        200,
    )
    .answers(schema::<InvokeView>),
];

/// The public side (no token), `/pub/{address}/...`: documented with the rest, kept apart
/// from [`OPERATIONS`] because it answers for a thwonk's web visitors, not for its owner.
pub const PUBLIC_OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/pub/{address}/{path}",
        summary: "A published file: public/{path} of the thwonk's files (index.html for a folder; a folder without its trailing / is redirected, 308). Content type from the extension, ETag and If-None-Match (304), Last-Modified, Cache-Control, X-Content-Type-Options: nosniff and a restrictive Content-Security-Policy. HEAD answers the same headers. When no file answers and the script's publicRoutes admit the request, its onRequest answers (as for POST). 400 bad_path for . or .. segments, backslashes or NUL however spelt; 404 when nothing is published there and no route admits it; 409 disabled; 429 rate_limited (Retry-After).",
        auth: false,
        input: Input::None,
        ok: 200,
        answers: None,
    },
    Operation {
        method: "post",
        path: "/pub/{address}/{path}",
        summary: "A public request handler (any method; POST shown): runs onRequest(req, thwonk) when the script's export publicRoutes admits \"METHOD /path\" (POST /invoke/{name} runs methods[name]); req is {method, path, query, headers, body, text(), json(), caller: {kind: \"public\", ip}}. Answers the returned value as JSON 200, or a returned {status, headers, body}. 404 not admitted or no handler; 500 script_error with error.run_id; 503 over_budget or busy (public.max_concurrent_per_thwonk, public.runner_share_percent; Retry-After); 409 disabled; 413 over public.max_body_bytes; 429 rate_limited.",
        auth: false,
        input: Input::Raw,
        ok: 200,
        answers: None,
    },
];

/// `GET .../script` and `GET .../versions/{version}`: the source as raw text, or by
/// `Accept: application/json` the version as JSON.
fn answers_source(o: &Operation) -> bool {
    o.method == "get" && (o.path == t!("/script") || o.path == t!("/versions/{version}"))
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// The document.
pub fn document() -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let mut paths = Map::new();
    for o in OPERATIONS.iter().chain(PUBLIC_OPERATIONS) {
        let mut responses = Map::new();
        let ok_content = if o.path.ends_with("/events") {
            json!({"text/event-stream": {}})
        } else if o.path.starts_with("/pub/") {
            json!({"*/*": {}})
        } else if o.path.contains("/files/") && o.method == "get" {
            json!({"application/octet-stream": {}})
        } else if let (Some(answers), true) = (o.answers, answers_source(o)) {
            json!({
                "application/javascript": {"schema": {"type": "string"}},
                "application/json": {"schema": answers(&mut generator)},
            })
        } else if let Some(answers) = o.answers {
            json!({"application/json": {"schema": answers(&mut generator)}})
        } else {
            json!({"application/json": {}})
        };
        responses.insert(
            o.ok.to_string(),
            if o.ok == 204 {
                json!({"description": "done"})
            } else {
                json!({"description": "success", "content": ok_content})
            },
        );
        if o.path.starts_with("/pub/") {
            for (code, what) in [
                (
                    "400",
                    "bad_path: a . or .. segment, a backslash or NUL, however spelt",
                ),
                (
                    "404",
                    "nothing published there and no public route admits the request, or no handler",
                ),
                ("409", "disabled: the thwonk is disabled"),
                (
                    "429",
                    "rate_limited: too many requests from this IP (Retry-After)",
                ),
                ("500", "script_error: the script threw (error.run_id)"),
                ("503", "over_budget or busy (Retry-After)"),
            ] {
                responses.insert(code.into(), error_response(what));
            }
        }
        if o.path.contains("/invoke") {
            for (code, what) in [
                ("500", "script_error: the script threw (error.run_id)"),
                (
                    "503",
                    "over_budget: the run ran out of instructions, time or memory (error.run_id); or unavailable",
                ),
                ("409", "disabled: the thwonk is disabled"),
                ("504", "no runner answered in time"),
            ] {
                responses.insert(code.into(), error_response(what));
            }
        }
        if o.auth {
            responses.insert(
                "401".into(),
                error_response("no token, or an unknown or revoked one"),
            );
            if o.path.contains("{address}") {
                responses.insert(
                    "404".into(),
                    error_response("no such thwonk, or another owner's"),
                );
            }
        }
        if (o.method, o.path) == ("put", t!("/script"))
            || (o.method, o.path) == ("post", "/v1/thwonks")
        {
            responses.insert(
                "409".into(),
                error_response(
                    "address_taken: the address belongs to another owner (or, for POST, exists)",
                ),
            );
        }
        if o.input != Input::None {
            responses.insert("400".into(), error_response("malformed input"));
            responses.insert(
                "413".into(),
                error_response("body larger than http.max_body_bytes"),
            );
        }
        let parameters: Vec<Value> = o
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut operation = json!({
            "summary": o.summary,
            "parameters": parameters,
            "responses": responses,
        });
        if !o.auth {
            operation["security"] = json!([]);
        }
        match o.input {
            Input::None => {}
            Input::Json => {
                operation["requestBody"] =
                    json!({"required": true, "content": {"application/json": {}}});
            }
            Input::Raw => {
                operation["requestBody"] = json!({"required": true, "content": {
                    "text/plain": {}, "application/octet-stream": {}
                }});
            }
        }
        let entry = paths.entry(o.path.to_string()).or_insert_with(|| json!({}));
        entry[o.method] = operation;
    }
    let mut schemas = generator.take_definitions(true);
    schemas.insert("Error".into(), error_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Thwonk HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Thwonks (rules addresses), their scripts, runs, files and feeds. \
                Authenticate with `Authorization: Bearer thw_...` (`thwonk token create`). \
                An owner sees only its own thwonks; others answer 404, and creating their \
                address (POST, or PUT .../script) 409 address_taken. \
                Errors are {\"error\": {\"code\", \"message\"}}. \
                Under /pub/{address}/ (no token) a thwonk is on the web: its published \
                files and the requests its publicRoutes admit."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
        "paths": paths,
    })
}

/// Every error's shape (`crate::error`).
fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "run_id": {"type": "string"},
                "line": {"type": "integer"},
                "column": {"type": "integer"}
            }
        }}
    })
}

pub async fn serve() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_described_by_their_view_types() {
        let doc = document();
        let list = &doc["paths"]["/v1/thwonks"]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"];
        assert_eq!(list["$ref"], "#/components/schemas/ThwonkListView");
        let schemas = &doc["components"]["schemas"];
        for field in ["id", "address", "status", "active_version", "schedule"] {
            assert!(
                schemas["ThwonkView"]["properties"][field].is_object(),
                "ThwonkView.{field}: {:#}",
                schemas["ThwonkView"]
            );
        }
        assert!(schemas["RunView"]["properties"]["cost"].is_object());
        assert!(schemas["Error"]["properties"]["error"].is_object());
        // The public side is listed, without auth.
        let public = &doc["paths"]["/pub/{address}/{path}"];
        assert_eq!(public["get"]["security"], json!([]));
        assert!(public["post"]["responses"]["429"].is_object());
        // Every reference resolves inside the document.
        let text = doc.to_string();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(schemas[name].is_object(), "dangling $ref {name}");
        }
    }
}
