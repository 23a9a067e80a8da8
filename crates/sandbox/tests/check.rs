//! Deploy checks: `thwonk_sandbox::check`.

use thwonk_core::run::SandboxLimits;
use thwonk_sandbox::{ScriptKind, check};

fn limits() -> SandboxLimits {
    SandboxLimits::default()
}

#[test]
fn a_module_reports_its_handlers_and_schedule() {
    let info = check(
        r#"export function onMessage(msg, thwonk) {}
        export const schedule = "0 0 * * *";
        export async function onSchedule(event, thwonk) {}
        export function onRequest(req, thwonk) { return 1 }"#,
        &limits(),
    )
    .unwrap();
    assert_eq!(info.kind, ScriptKind::Module);
    assert_eq!(info.handlers, ["onMessage", "onSchedule", "onRequest"]);
    assert_eq!(info.schedule.as_deref(), Some("0 0 * * *"));
}

#[test]
fn a_script_without_exports_is_classic() {
    let info = check("thwonk.print('export is just a word here')", &limits()).unwrap();
    assert_eq!(info.kind, ScriptKind::Classic);
    assert!(info.handlers.is_empty());
    assert_eq!(info.schedule, None);
}

#[test]
fn on_message_is_required() {
    let err = check("export function onRequest() {}", &limits()).unwrap_err();
    assert!(err.message.contains("onMessage is required"), "{err}");
    let err = check("export const onMessage = 5;", &limits()).unwrap_err();
    assert!(err.message.contains("must be a function"), "{err}");
}

#[test]
fn a_syntax_error_has_line_and_column() {
    let err = check("export function onMessage() {\n  let x = ;\n}", &limits()).unwrap_err();
    assert_eq!((err.line, err.column), (2, 11));
    assert!(err.to_string().starts_with("2:11: "), "{err}");
}

#[test]
fn an_unterminated_script_points_at_its_end() {
    let err = check("export function onMessage() {\n  if (x) {", &limits()).unwrap_err();
    assert_eq!(err.line, 2);
}

#[test]
fn three_hundred_nested_parens_are_refused_without_crashing() {
    let src = format!(
        "export function onMessage() {{\n  return {}1{};\n}}",
        "(".repeat(300),
        ")".repeat(300)
    );
    let err = check(&src, &limits()).unwrap_err();
    assert_eq!(err.line, 2);
    assert_eq!(err.column, 10 + 63);
    assert!(err.message.contains("nested more than 64"), "{err}");
}

#[test]
fn oversized_source_is_refused() {
    let src = format!(
        "export function onMessage() {{}}\n//{}",
        "x".repeat(300 * 1024)
    );
    let err = check(&src, &limits()).unwrap_err();
    assert!(err.message.contains("limit is 262144 bytes"), "{err}");
}

#[test]
fn schedule_must_be_a_string_with_a_handler() {
    let err = check(
        "export function onMessage() {}\nexport const schedule = 5;",
        &limits(),
    )
    .unwrap_err();
    assert!(err.message.contains("cron string"), "{err}");
    let err = check(
        "export function onMessage() {}\nexport const schedule = '* * * * *';",
        &limits(),
    )
    .unwrap_err();
    assert!(err.message.contains("onSchedule"), "{err}");
}

#[test]
fn top_level_code_that_throws_or_spins_is_refused() {
    let err = check(
        "throw new Error('no');\nexport function onMessage() {}",
        &limits(),
    )
    .unwrap_err();
    assert!(err.message.contains("no"), "{err}");
    let small = SandboxLimits {
        instructions: 10_000,
        ..limits()
    };
    let err = check("for (;;) {}\nexport function onMessage() {}", &small).unwrap_err();
    assert!(err.message.contains("failed"), "{err}");
}

#[test]
fn top_level_console_is_harmless_at_deploy() {
    check(
        "console.log('hi');\nexport function onMessage() {}",
        &limits(),
    )
    .unwrap();
}

#[test]
fn eval_and_the_function_constructor_are_refused_at_their_position() {
    let err = check(
        "export function onMessage(msg) {\n  const v = eval(msg.text);\n}",
        &limits(),
    )
    .unwrap_err();
    assert_eq!((err.line, err.column), (2, 13), "{err}");
    assert!(err.message.starts_with("eval is not available"), "{err}");

    let err = check(
        "export function onMessage(msg) {\n  return new Function('a', 'return a')(1);\n}",
        &limits(),
    )
    .unwrap_err();
    assert_eq!((err.line, err.column), (2, 10), "{err}");
    assert!(err.message.starts_with("new Function(...)"), "{err}");

    let err = check("thwonk.print(1);\nvar f = Function('return 1');", &limits()).unwrap_err();
    assert_eq!((err.line, err.column), (2, 9), "{err}");

    // Indirect eval is eval too; in a classic script as well.
    let err = check("var e = (0, eval);", &limits()).unwrap_err();
    assert_eq!((err.line, err.column), (1, 13), "{err}");

    // The words alone are fine: a property named eval, a string, `instanceof Function`.
    check(
        "export function onMessage(msg, thwonk) {\n  const o = { eval: 1 };\n  thwonk.log(o.eval, 'eval(1)', o instanceof Function);\n}",
        &limits(),
    )
    .unwrap();
}
