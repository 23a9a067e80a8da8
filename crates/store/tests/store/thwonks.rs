use thwonk_core::status::ThwonkStatus;
use thwonk_store::{Store, StoreError};

use crate::common::addr;

on_both!(
    deploy_creates_the_thwonk_then_increments_versions,
    lookups_of_unknown_thwonks_are_none,
    thwonks_are_listed_in_byte_order_of_address,
    concurrent_deploys_get_consecutive_versions,
    status_can_be_changed,
    a_domain_has_thwonks_only_for_whole_domain_matches,
);

async fn deploy_creates_the_thwonk_then_increments_versions(store: Store) {
    let a = addr("List@Example.org");
    let first = store.deploy_script(&a, "v1", None).await.unwrap();
    assert!(first.created);
    assert_eq!(first.version, 1);
    assert_eq!(first.thwonk.address.as_str(), "list@example.org");
    assert_eq!(first.thwonk.status, ThwonkStatus::Active);
    assert_eq!(first.thwonk.active_version, Some(1));

    let second = store
        .deploy_script(&a, "v2", Some("0 * * * *"))
        .await
        .unwrap();
    assert!(!second.created);
    assert_eq!(second.version, 2);
    assert_eq!(second.thwonk.id, first.thwonk.id);
    assert_eq!(second.thwonk.active_version, Some(2));
    assert_eq!(second.thwonk.schedule.as_deref(), Some("0 * * * *"));

    let active = store
        .active_script(&first.thwonk.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.version, 2);
    assert_eq!(active.source, "v2");
    assert_eq!(active.schedule.as_deref(), Some("0 * * * *"));
    let old = store
        .script_version(&first.thwonk.id, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.source, "v1");
    assert_eq!(old.schedule, None);

    let by_addr = store.thwonk_by_address(&a).await.unwrap().unwrap();
    let by_id = store.thwonk(&first.thwonk.id).await.unwrap().unwrap();
    assert_eq!(by_addr, by_id);
    assert_eq!(by_id, second.thwonk);

    // A third deploy without a schedule clears it.
    let third = store.deploy_script(&a, "v3", None).await.unwrap();
    assert_eq!(third.version, 3);
    assert_eq!(third.thwonk.schedule, None);
}

async fn a_domain_has_thwonks_only_for_whole_domain_matches(store: Store) {
    assert!(!store.domain_has_thwonks("example.org").await.unwrap());
    store
        .deploy_script(&addr("List@Example.org"), "v1", None)
        .await
        .unwrap();
    assert!(store.domain_has_thwonks("example.org").await.unwrap());
    // The whole domain, not a part of it, and LIKE's wildcards are plain characters.
    for other in [
        "ample.org",
        "xexample.org",
        "example.or",
        "exampl_.org",
        "%.org",
        "%",
    ] {
        assert!(!store.domain_has_thwonks(other).await.unwrap(), "{other}");
    }
}

async fn lookups_of_unknown_thwonks_are_none(store: Store) {
    assert_eq!(
        store
            .thwonk_by_address(&addr("nobody@x.org"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.thwonk("no-such-id").await.unwrap(), None);
    assert_eq!(store.active_script("no-such-id").await.unwrap(), None);
    assert!(store.list_thwonks().await.unwrap().is_empty());
}

async fn thwonks_are_listed_in_byte_order_of_address(store: Store) {
    // Locale collations ignore punctuation and would put "a@" before "a-b@".
    for a in ["b@x.org", "a@x.org", "a-b@x.org", "B2@x.org"] {
        store.deploy_script(&addr(a), "x", None).await.unwrap();
    }
    let listed: Vec<String> = store
        .list_thwonks()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.address.to_string())
        .collect();
    assert_eq!(listed, ["a-b@x.org", "a@x.org", "b2@x.org", "b@x.org"]);
}

async fn concurrent_deploys_get_consecutive_versions(store: Store) {
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .deploy_script(&addr("race@x.org"), &format!("v{i}"), None)
                    .await
            })
        })
        .collect();
    let mut versions = Vec::new();
    let mut created = 0;
    for t in tasks {
        let d = t.await.unwrap().expect("deploy under concurrency");
        versions.push(d.version);
        created += usize::from(d.created);
    }
    versions.sort();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
    assert_eq!(created, 1);
    let t = store
        .thwonk_by_address(&addr("race@x.org"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.active_version, Some(6));
}

async fn status_can_be_changed(store: Store) {
    let t = crate::common::thwonk(&store, "s@x.org").await;
    store
        .set_thwonk_status(&t.id, ThwonkStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(
        store.thwonk(&t.id).await.unwrap().unwrap().status,
        ThwonkStatus::Disabled
    );
    // Redeploying does not re-enable it.
    let d = store
        .deploy_script(&addr("s@x.org"), "again", None)
        .await
        .unwrap();
    assert_eq!(d.thwonk.status, ThwonkStatus::Disabled);
    assert!(matches!(
        store.set_thwonk_status("nope", ThwonkStatus::Active).await,
        Err(StoreError::NotFound(_))
    ));
}
