//! Recurring tasks against a real redis-server: atomic take-and-reschedule, numeric order,
//! and many schedulers racing for the same ticks.

mod common;

use common::*;
use std::sync::Arc;
use thwonk_thoonk::{DueTask, Recurring};

#[tokio::test]
async fn get_takes_the_earliest_due_task_and_reschedules_it_by_its_interval() {
    let f = fixture().await;
    let r = Recurring::new(&f.redis, "ticks");
    r.add("slow", 1_000, Some(10_000)).await.unwrap();
    r.add("fast", 900, Some(100)).await.unwrap();
    // 900 < 1000 numerically (as strings "900" > "1000": the original's bug).
    assert_eq!(
        r.get(1_000).await.unwrap(),
        Some(DueTask {
            task: "fast".into(),
            due_ms: 900
        })
    );
    assert_eq!(r.get(1_000).await.unwrap().unwrap().task, "slow");
    assert_eq!(r.get(1_000).await.unwrap(), None, "both rescheduled");
    let tasks = r.tasks().await.unwrap();
    assert_eq!(tasks[0].task, "fast");
    assert_eq!(tasks[0].due_ms, 1_100);
    assert_eq!(tasks[1].due_ms, 11_000);
    // Missed ticks are skipped, not replayed.
    assert_eq!(r.get(1_555).await.unwrap().unwrap().due_ms, 1_100);
    assert_eq!(r.tasks().await.unwrap()[0].due_ms, 1_600);
    let registered: Vec<String> = raw(&f.redis, &["SMEMBERS", "recurrings"]).await;
    assert_eq!(registered, vec!["ticks"]);
    let score: i64 = raw(&f.redis, &["ZSCORE", "recurring:ticks", "slow"]).await;
    assert_eq!(score, 11_000);
}

#[tokio::test]
async fn a_task_without_interval_fires_once_and_remove_unregisters() {
    let f = fixture().await;
    let r = Recurring::new(&f.redis, "ticks");
    r.add("once", 5, None).await.unwrap();
    assert_eq!(r.get(10).await.unwrap().unwrap().task, "once");
    assert_eq!(r.get(10).await.unwrap(), None);
    r.add("x", 5, Some(5)).await.unwrap();
    assert!(r.remove("x").await.unwrap());
    assert!(!r.remove("x").await.unwrap());
    assert!(r.tasks().await.unwrap().is_empty());
}

#[tokio::test]
async fn take_due_swaps_in_the_callers_next_time_only_if_still_due() {
    let f = fixture().await;
    let r = Recurring::new(&f.redis, "cron");
    r.add("t", 1_000, None).await.unwrap();
    assert!(
        r.take_due(999, |_, d| Some(d + 60_000))
            .await
            .unwrap()
            .is_none()
    );
    let got = r.take_due(1_000, |_, d| Some(d + 60_000)).await.unwrap();
    assert_eq!(got.unwrap().due_ms, 1_000);
    assert!(!r.claim("t", 1_000, 5).await.unwrap(), "the tick is gone");
    assert_eq!(r.tasks().await.unwrap()[0].due_ms, 61_000);
    // An unschedulable task is dropped rather than spun on.
    assert!(r.take_due(70_000, |_, _| None).await.unwrap().is_none());
    assert!(r.tasks().await.unwrap().is_empty());
}

#[tokio::test]
async fn many_schedulers_fire_each_tick_exactly_once() {
    let f = fixture().await;
    let r = Recurring::new(&f.redis, "race");
    for t in 0..5 {
        r.add(&format!("task{t}"), 0, None).await.unwrap();
    }
    // Ticks every 10 ms from 0; the schedulers all believe it is 995 ms, so each task has
    // 100 ticks due and every tick must be fired by exactly one of them.
    let fired = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for _ in 0..6 {
        let r = r.clone();
        let fired = fired.clone();
        handles.push(tokio::spawn(async move {
            while let Some(t) = r.take_due(995, |_, d| Some(d + 10)).await.unwrap() {
                fired.lock().unwrap().push((t.task, t.due_ms));
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let mut fired = fired.lock().unwrap().clone();
    let n = fired.len();
    fired.sort();
    fired.dedup();
    assert_eq!(n, fired.len(), "no tick fired twice");
    assert_eq!(n, 5 * 100, "every tick fired");
}
