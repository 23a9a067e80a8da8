//! `thwonk.jobs(queue).publish(payload)` and `onJobResult(result, thwonk)` in the sandbox:
//! ids, payload forms, names and limits refused at the call, nothing from a failed run, and
//! the result object as the handler sees it.

mod common;

use common::{MemFs, assert_ok, logged, request, run_body};
use thwonk_core::run::{ErrorKind, JobPublish, Trigger};

fn job(queue: &str, id: &str, payload: &str) -> JobPublish {
    JobPublish {
        queue: queue.into(),
        id: id.into(),
        payload: payload.into(),
    }
}

#[test]
fn publish_buffers_jobs_with_run_scoped_ids_strings_as_they_are_values_as_json() {
    let out = run_body(
        r#"
        const q = thwonk.jobs("reports");
        thwonk.log(q.queue, q.publish({ week: 12, tags: ["a"] }), q.publish("plain text"));
        thwonk.log(thwonk.jobs("other.queue_2-x").publish(42));
        "#,
    );
    assert_ok(&out);
    assert_eq!(logged(&out), ["reports run-1.j1 run-1.j2", "run-1.j3"]);
    assert_eq!(
        out.effects.jobs,
        [
            job("reports", "run-1.j1", r#"{"week":12,"tags":["a"]}"#),
            job("reports", "run-1.j2", "plain text"),
            job("other.queue_2-x", "run-1.j3", "42"),
        ]
    );
}

#[test]
fn bad_queue_names_and_payloads_throw_at_the_call_and_can_be_caught() {
    let out = run_body(
        r#"
        for (const name of ["inbound/../x", "a/b", "a:b", "a b", "", "q".repeat(65), "é"]) {
          try { thwonk.jobs(name); thwonk.log("accepted", name); }
          catch (e) { thwonk.log(e.message.startsWith("job queue") ? "refused" : e.message); }
        }
        try { thwonk.jobs("q").publish(); } catch (e) { thwonk.log(e.name); }
        try { thwonk.jobs("q").publish(() => 1); } catch (e) { thwonk.log(e.name); }
        thwonk.log(thwonk.jobs("q".repeat(64)).publish("ok"));
        "#,
    );
    assert_ok(&out);
    let mut want = vec!["refused"; 7];
    want.extend(["TypeError", "TypeError", "run-1.j1"]);
    assert_eq!(logged(&out), want);
}

#[test]
fn the_payload_size_and_the_jobs_per_run_are_limited() {
    let out = run_body(
        r#"
        try { thwonk.jobs("q").publish("x".repeat(1024 * 1024 + 1)); }
        catch (e) { thwonk.log(e.name); }
        thwonk.jobs("q").publish("x".repeat(1024 * 1024));
        let n = 1;
        try { for (;;) { thwonk.jobs("q").publish("j"); n++; } }
        catch (e) { thwonk.log(e.name, n, e.message); }
        "#,
    );
    assert_ok(&out);
    assert_eq!(
        logged(&out),
        [
            "LimitError",
            "LimitError 100 job limit of 100 per run exceeded"
        ]
    );
    assert_eq!(out.effects.jobs.len(), 100);
}

#[test]
fn a_failed_run_publishes_no_job() {
    let out = run_body(r#"thwonk.jobs("q").publish("x"); throw new Error("no");"#);
    assert_eq!(out.error.as_ref().unwrap().kind, ErrorKind::ScriptError);
    assert!(out.effects.jobs.is_empty());
}

#[test]
fn on_job_result_sees_the_result_object_and_may_publish_again() {
    let script = r#"
        export function onMessage() {}
        export function onJobResult(result, thwonk) {
          thwonk.log(JSON.stringify(result));
          if (!result.ok) thwonk.jobs(result.queue).publish("again");
        }
    "#;
    let result = serde_json::json!({"id": "r0.j1", "queue": "q", "status": "error", "ok": false,
        "value": null, "error": "boom"});
    let out = thwonk_sandbox::run(
        &request(
            script,
            Trigger::JobResult {
                result: result.clone(),
            },
        ),
        &mut MemFs::default(),
    );
    assert_ok(&out);
    let logged: serde_json::Value = serde_json::from_str(&logged(&out)[0]).unwrap();
    assert_eq!(logged, result);
    assert_eq!(out.effects.jobs, [job("q", "run-1.j1", "again")]);

    // Without the handler: NoHandler, named.
    let out = thwonk_sandbox::run(
        &request(
            "export function onMessage() {}",
            Trigger::JobResult { result },
        ),
        &mut MemFs::default(),
    );
    let e = out.error.unwrap();
    assert_eq!(e.kind, ErrorKind::NoHandler);
    assert!(e.message.contains("onJobResult"), "{}", e.message);
}
