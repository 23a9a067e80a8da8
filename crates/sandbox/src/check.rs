//! Deploy-time checks: size and nesting (before Boa sees the source), parse, kind, handlers
//! and schedule.

use std::ops::ControlFlow;

use boa_engine::ast::scope::Scope;
use boa_engine::ast::visitor::{VisitWith, Visitor};
use boa_engine::ast::{Expression, ModuleItem, Spanned};
use boa_engine::interner::Interner;
use boa_engine::interner::Sym;
use boa_engine::module::Module;
use boa_engine::parser::{Error as ParseError, Parser, Source};
use boa_engine::{Context, js_string};
use serde::{Deserialize, Serialize};
use thwonk_core::run::SandboxLimits;

use crate::engine::{new_context, on_engine_thread};
use crate::scan::scan;
use crate::settle::{Settled, settle};

/// What a deployable script is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptInfo {
    pub kind: ScriptKind,
    /// Which of `onMessage`, `onSchedule`, `onRequest`, `onJobResult` it exports (empty for classic scripts).
    pub handlers: Vec<String>,
    /// The module's exported `schedule` (cron, UTC), if any.
    pub schedule: Option<String>,
    /// The module's exported `publicRoutes` (checked by `thwonk_core::public_routes`).
    #[serde(default)]
    pub public_routes: Vec<String>,
    /// The names of the functions in its exported `methods` object.
    #[serde(default)]
    pub methods: Vec<String>,
}

/// An ES module with handlers, or a classic Thwonk script (no `export`) run top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScriptKind {
    Module,
    Classic,
}

/// Why a script was refused, with a 1-based position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{line}:{column}: {message}")]
pub struct CheckError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl CheckError {
    fn at_start(message: impl Into<String>) -> Self {
        CheckError {
            line: 1,
            column: 1,
            message: message.into(),
        }
    }
}

/// The handlers a module may export, in the order they are reported.
pub const HANDLERS: [&str; 4] = ["onMessage", "onSchedule", "onRequest", "onJobResult"];

/// Static checks + parse, for deploy: source size (`limits.script_max_bytes`), nesting depth
/// (`limits.script_max_depth`) with a scanner that understands strings, comments, template
/// literals and regex literals, then a Boa parse. Errors carry 1-based line and column.
///
/// A module's top-level code is evaluated (under the run limits, on a fresh context) to read
/// its exports; it has no `thwonk` to act with, so this has no effects.
pub fn check(source: &str, limits: &SandboxLimits) -> Result<ScriptInfo, CheckError> {
    scan(source, limits.script_max_bytes, limits.script_max_depth)?;
    on_engine_thread(|| inspect(source, limits)).unwrap_or_else(|| {
        Err(CheckError::at_start(
            "the script engine failed on this script (an internal error)",
        ))
    })
}

fn inspect(source: &str, limits: &SandboxLimits) -> Result<ScriptInfo, CheckError> {
    match script_kind(source)? {
        ScriptKind::Classic => Ok(ScriptInfo {
            kind: ScriptKind::Classic,
            handlers: Vec::new(),
            schedule: None,
            public_routes: Vec::new(),
            methods: Vec::new(),
        }),
        ScriptKind::Module => inspect_module(source, limits),
    }
}

/// Module or classic, decided on the parsed AST: a module is source with at least one
/// `import` or `export` declaration. Source that parses only as a classic (sloppy) script is
/// classic too. Call only after [`scan`]: this parses with Boa.
pub fn script_kind(source: &str) -> Result<ScriptKind, CheckError> {
    let mut interner = Interner::default();
    let module =
        Parser::new(Source::from_bytes(source)).parse_module(&Scope::new_global(), &mut interner);
    match module {
        Ok(module) => {
            let declares = module.items().items().iter().any(|item| {
                matches!(
                    item,
                    ModuleItem::ExportDeclaration(_) | ModuleItem::ImportDeclaration(_)
                )
            });
            if declares {
                refuse_code_from_strings(&module, &interner)?;
                return Ok(ScriptKind::Module);
            }
            // No exports: classic, but it must also parse as a classic script.
            parse_classic(source)
        }
        Err(module_error) => match parse_classic(source) {
            Ok(kind) => Ok(kind),
            Err(_) => Err(parse_error(&module_error, source)),
        },
    }
}

fn parse_classic(source: &str) -> Result<ScriptKind, CheckError> {
    let mut interner = Interner::default();
    let script = Parser::new(Source::from_bytes(source))
        .parse_script(&Scope::new_global(), &mut interner)
        .map_err(|e| parse_error(&e, source))?;
    refuse_code_from_strings(&script, &interner)?;
    Ok(ScriptKind::Classic)
}

/// `eval` and the `Function` constructor compile strings at run time, which the engine refuses
/// (see [`crate::engine`]): a script that uses them would fail every run, so it is refused
/// here, at the first use, with its position. Refused: any reference to `eval`, and calling
/// `Function(...)` or `new Function(...)`. Spellings no parser can see
/// (`globalThis["ev" + "al"]`) still fail at run time with an `EvalError`.
fn refuse_code_from_strings(ast: &impl VisitWith, interner: &Interner) -> Result<(), CheckError> {
    struct Finder {
        eval: Option<Sym>,
        function: Option<Sym>,
    }
    impl<'ast> Visitor<'ast> for Finder {
        type BreakTy = CheckError;

        fn visit_expression(&mut self, e: &'ast Expression) -> ControlFlow<CheckError> {
            let is = |e: &Expression, sym: Option<Sym>| match e {
                Expression::Identifier(id) => Some(id.sym()) == sym,
                _ => false,
            };
            let refused = match e {
                Expression::Identifier(id) if Some(id.sym()) == self.eval => Some((
                    id.span().start(),
                    "eval is not available: code cannot be compiled from strings at run time",
                )),
                // A call's own span starts at its arguments: point at the callee.
                Expression::Call(call) if is(call.function(), self.function) => Some((
                    call.function().span().start(),
                    "Function(...) is not available: code cannot be compiled from strings at run time",
                )),
                Expression::New(new) if is(new.call().function(), self.function) => Some((
                    new.span().start(),
                    "new Function(...) is not available: code cannot be compiled from strings at run time",
                )),
                _ => None,
            };
            if let Some((at, message)) = refused {
                return ControlFlow::Break(CheckError {
                    line: at.line_number(),
                    column: at.column_number(),
                    message: message.to_string(),
                });
            }
            e.visit_with(self)
        }
    }
    let mut finder = Finder {
        eval: interner.get("eval"),
        function: interner.get("Function"),
    };
    if finder.eval.is_none() && finder.function.is_none() {
        return Ok(());
    }
    match ast.visit_with(&mut finder) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// A parse error with its position; Boa's "at line N, col M" suffix is dropped from the
/// message since the position is carried separately.
fn parse_error(error: &ParseError, source: &str) -> CheckError {
    let position = match error {
        ParseError::Expected { span, .. } | ParseError::Unexpected { span, .. } => {
            Some(span.start())
        }
        ParseError::General { position, .. } => Some(*position),
        ParseError::Lex {
            err: boa_engine::parser::lexer::error::Error::Syntax(_, position),
        } => Some(*position),
        _ => None,
    };
    let (line, column) = match (position, error) {
        (Some(p), _) => (p.line_number(), p.column_number()),
        (None, ParseError::AbruptEnd) => end_of(source),
        (None, _) => (1, 1),
    };
    let mut message = error.to_string();
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    CheckError {
        line,
        column,
        message,
    }
}

/// 1-based line and column just past the last character.
fn end_of(source: &str) -> (u32, u32) {
    let line = source.matches('\n').count() as u32 + 1;
    let column = source.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
    (line, column)
}

fn inspect_module(source: &str, limits: &SandboxLimits) -> Result<ScriptInfo, CheckError> {
    let (mut context, _meter) = new_context(limits, 0, "check")
        .map_err(|e| CheckError::at_start(format!("engine setup failed: {e}")))?;
    // Handlers get the real console; top-level code at deploy gets a silent one.
    context
        .eval(Source::from_bytes(
            "globalThis.console = { log() {}, info() {}, warn() {}, error() {} };",
        ))
        .map_err(|e| CheckError::at_start(format!("engine setup failed: {e}")))?;
    let module = Module::parse(Source::from_bytes(source), None, &mut context)
        .map_err(|e| CheckError::at_start(e.to_string()))?;
    let promise = module.load_link_evaluate(&mut context);
    match settle(&promise, &mut context) {
        Settled::Fulfilled(_) => {}
        Settled::Failed(error) => {
            return Err(CheckError::at_start(format!(
                "the module's top-level code failed: {error}"
            )));
        }
        Settled::Pending => {
            return Err(CheckError::at_start(
                "the module's top-level code never finished (a top-level await that never resolves)",
            ));
        }
    }
    let namespace = module.namespace(&mut context);
    let mut handlers = Vec::new();
    for name in HANDLERS {
        let value = get(&namespace, name, &mut context)?;
        if value.is_undefined() {
            continue;
        }
        if !value.is_callable() {
            return Err(CheckError::at_start(format!("{name} must be a function")));
        }
        handlers.push(name.to_string());
    }
    if !handlers.iter().any(|h| h == "onMessage") {
        return Err(CheckError::at_start(
            "onMessage is required: export function onMessage(msg, thwonk) { ... }",
        ));
    }
    let schedule = match get(&namespace, "schedule", &mut context)? {
        v if v.is_undefined() => None,
        v => match v.as_string() {
            Some(s) => Some(s.to_std_string_escaped()),
            None => {
                return Err(CheckError::at_start(
                    "schedule must be a cron string, e.g. \"0 0 * * *\"",
                ));
            }
        },
    };
    if schedule.is_some() && !handlers.iter().any(|h| h == "onSchedule") {
        return Err(CheckError::at_start(
            "a schedule needs an onSchedule handler to run",
        ));
    }
    let public_routes = public_routes(&namespace, &mut context)?;
    let methods = methods(&namespace, &mut context)?;
    Ok(ScriptInfo {
        kind: ScriptKind::Module,
        handlers,
        schedule,
        public_routes,
        methods,
    })
}

/// `export const publicRoutes = ["GET /archive/*", ...]`: an array of valid entries.
fn public_routes(
    namespace: &boa_engine::JsObject,
    context: &mut Context,
) -> Result<Vec<String>, CheckError> {
    let value = get(namespace, "publicRoutes", context)?;
    if value.is_undefined() {
        return Ok(Vec::new());
    }
    let shape = || {
        CheckError::at_start(
            "publicRoutes must be an array of strings, e.g. [\"GET /archive/*\", \"POST /unsubscribe\"]",
        )
    };
    let Some(array) = value.as_object().filter(|o| o.is_array()) else {
        return Err(shape());
    };
    let array =
        boa_engine::object::builtins::JsArray::from_object(array.clone()).map_err(|_| shape())?;
    let len = array.length(context).map_err(|_| shape())?;
    if len > thwonk_core::public_routes::MAX_PUBLIC_ROUTES as u64 {
        return Err(CheckError::at_start(format!(
            "publicRoutes lists {len} entries; at most {}",
            thwonk_core::public_routes::MAX_PUBLIC_ROUTES
        )));
    }
    let mut entries = Vec::new();
    for i in 0..len {
        let item = array.get(i, context).map_err(|_| shape())?;
        let Some(s) = item.as_string() else {
            return Err(shape());
        };
        entries.push(s.to_std_string_escaped());
    }
    thwonk_core::public_routes::parse_all(&entries).map_err(CheckError::at_start)?;
    Ok(entries)
}

/// `export const methods = { name(req, thwonk) {} }`: the names of its own functions.
fn methods(
    namespace: &boa_engine::JsObject,
    context: &mut Context,
) -> Result<Vec<String>, CheckError> {
    let value = get(namespace, "methods", context)?;
    if value.is_undefined() {
        return Ok(Vec::new());
    }
    let shape = || {
        CheckError::at_start("methods must be an object of functions: { hello(req, thwonk) {} }")
    };
    let Some(object) = value.as_object() else {
        return Err(shape());
    };
    let mut names = Vec::new();
    let keys = object.own_property_keys(context).map_err(|_| shape())?;
    for key in keys {
        let boa_engine::property::PropertyKey::String(name) = &key else {
            continue;
        };
        let name = name.to_std_string_escaped();
        let f = object.get(key.clone(), context).map_err(|_| shape())?;
        if !f.is_callable() {
            return Err(CheckError::at_start(format!(
                "methods.{name} must be a function"
            )));
        }
        if !thwonk_core::public_routes::is_method_name(&name) {
            return Err(CheckError::at_start(format!(
                "methods.{name}: a method name is 1 to 64 of A-Z a-z 0-9 _ $, not starting with a digit"
            )));
        }
        names.push(name);
    }
    Ok(names)
}

fn get(
    namespace: &boa_engine::JsObject,
    name: &str,
    context: &mut Context,
) -> Result<boa_engine::JsValue, CheckError> {
    namespace
        .get(js_string!(name), context)
        .map_err(|e| CheckError::at_start(format!("reading export {name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_follows_the_ast_not_the_text() {
        assert_eq!(
            script_kind("export function onMessage() {}").unwrap(),
            ScriptKind::Module
        );
        // "export" in a string or comment does not make a module.
        assert_eq!(
            script_kind("// export function x\nthwonk.print('export')").unwrap(),
            ScriptKind::Classic
        );
        // Sloppy-mode code that is not valid module code is classic.
        assert_eq!(
            script_kind("with (Math) { print(PI) }").unwrap(),
            ScriptKind::Classic
        );
    }

    #[test]
    fn end_position_is_past_the_last_character() {
        assert_eq!(end_of("ab\ncd"), (2, 3));
        assert_eq!(end_of(""), (1, 1));
    }
}
