//! The OpenAPI 3.1 document served at `/v1/openapi.json`: every route, its auth, what it
//! takes and what it answers. Built from [`OPERATIONS`], which a test compares with the
//! router so that neither drifts.

use axum::Json;
use serde_json::{Map, Value, json};

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
    },
    Operation {
        method: "get",
        path: "/readyz",
        summary: "The database and Redis answer (503 when not).",
        auth: false,
        input: Input::None,
        ok: 200,
    },
    Operation {
        method: "get",
        path: "/v1/openapi.json",
        summary: "This document.",
        auth: false,
        input: Input::None,
        ok: 200,
    },
    op(
        "get",
        "/v1/thwonks",
        "List the thwonks the caller may see.",
        Input::None,
        200,
    ),
    op(
        "post",
        "/v1/thwonks",
        "Create an empty thwonk: {\"address\", \"owner\"?} (owner: admins only). 409 when taken.",
        Input::Json,
        201,
    ),
    op("get", T, "Show a thwonk.", Input::None, 200),
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
    ),
    op(
        "post",
        t!("/enable"),
        "Accept mail again.",
        Input::None,
        200,
    ),
    op(
        "get",
        t!("/script"),
        "The active script version with its source.",
        Input::None,
        200,
    ),
    op(
        "put",
        t!("/script"),
        "Deploy the body (UTF-8 source) as the next version, with the CLI's checks; creates the thwonk when the address is free (201). 422 script_refused with line and column.",
        Input::Raw,
        200,
    ),
    op(
        "get",
        t!("/versions"),
        "Every script version, newest first.",
        Input::None,
        200,
    ),
    op(
        "get",
        t!("/versions/{version}"),
        "One script version with its source.",
        Input::None,
        200,
    ),
    op(
        "post",
        t!("/rollback"),
        "Make an existing version active: {\"version\"}.",
        Input::Json,
        200,
    ),
    op(
        "post",
        t!("/test"),
        "Dry run: {\"message\", \"mail_from\"?, \"script\"?}. The run's result and would-be effects; nothing is committed.",
        Input::Json,
        200,
    ),
    op(
        "get",
        t!("/runs"),
        "Recent runs, newest first (?limit=, at most 200), with logs, errors and cost.",
        Input::None,
        200,
    ),
    op("get", t!("/runs/{run_id}"), "One run.", Input::None, 200),
    op(
        "get",
        t!("/files"),
        "List files (?prefix=).",
        Input::None,
        200,
    ),
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
    ),
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
    ),
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
        "Run the script's onRequest with the JSON body; answers its JSON value. 504 on timeout, 503 when the runner cannot be reached.",
        Input::Json,
        200,
    ),
];

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for o in OPERATIONS {
        let mut responses = Map::new();
        let ok_content = if o.path.ends_with("/events") {
            json!({"text/event-stream": {}})
        } else if o.path.contains("/files/") && o.method == "get" {
            json!({"application/octet-stream": {}})
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
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Thwonk HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Thwonks (rules addresses), their scripts, runs, files and feeds. \
                Authenticate with `Authorization: Bearer thw_...` (`thwonk token create`). \
                An owner sees only its own thwonks; others answer 404. \
                Errors are {\"error\": {\"code\", \"message\"}}."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "line": {"type": "integer"},
                        "column": {"type": "integer"}
                    }
                }}
            }}
        },
        "paths": paths,
    })
}

pub async fn serve() -> Json<Value> {
    Json(document())
}
