use thwonk_store::{Role, Store, StoreError};

use crate::common::{addr, mail, ok_commit, one_message, thwonk, write};

on_both!(
    tokens_are_found_by_hash_until_revoked,
    user_names_are_unique,
    create_thwonk_settles_the_owner_once,
    a_version_can_be_made_active_again,
    delete_thwonk_takes_everything_it_owns,
);

async fn tokens_are_found_by_hash_until_revoked(store: Store) {
    let u = store.add_user("dora", Role::Owner).await.unwrap();
    let t = store.add_token(&u.id, "laptop", "h1").await.unwrap();
    assert_eq!((t.user_name.as_str(), t.name.as_str()), ("dora", "laptop"));
    assert_eq!(t.last_used_at_ms, None);
    let found = store.user_by_token_hash("h1").await.unwrap().unwrap();
    assert_eq!((found.id, found.role), (u.id.clone(), Role::Owner));
    assert!(store.user_by_token_hash("h2").await.unwrap().is_none());
    let listed = store.list_tokens().await.unwrap();
    assert!(
        listed[0].last_used_at_ms.is_some(),
        "a lookup records the use"
    );
    assert!(store.revoke_token(&t.id).await.unwrap());
    assert!(!store.revoke_token(&t.id).await.unwrap(), "already revoked");
    assert!(store.user_by_token_hash("h1").await.unwrap().is_none());
    assert!(
        store.list_tokens().await.unwrap()[0]
            .revoked_at_ms
            .is_some()
    );
}

async fn user_names_are_unique(store: Store) {
    store.add_user("root", Role::Admin).await.unwrap();
    let again = store.add_user("root", Role::Owner).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let u = store.user_by_name("root").await.unwrap().unwrap();
    assert_eq!(u.role, Role::Admin);
}

async fn create_thwonk_settles_the_owner_once(store: Store) {
    let a = store.add_user("a", Role::Owner).await.unwrap();
    let b = store.add_user("b", Role::Owner).await.unwrap();
    let address = addr("x@example.org");
    assert!(store.create_thwonk(&address, Some(&a.id)).await.unwrap());
    assert!(!store.create_thwonk(&address, Some(&b.id)).await.unwrap());
    let t = store.thwonk_by_address(&address).await.unwrap().unwrap();
    assert_eq!(t.active_version, None);
    assert_eq!(store.thwonk_owner(&t.id).await.unwrap(), Some(a.id.clone()));
    // A deploy keeps the owner.
    store.deploy_script(&address, "v1", None).await.unwrap();
    assert_eq!(store.thwonk_owner(&t.id).await.unwrap(), Some(a.id.clone()));
    let cli = thwonk(&store, "cli@example.org").await;
    assert_eq!(store.thwonk_owner(&cli.id).await.unwrap(), None);
    let owned = store.list_thwonks_owned_by(&a.id).await.unwrap();
    assert_eq!(owned.len(), 1);
    assert!(store.list_thwonks_owned_by(&b.id).await.unwrap().is_empty());
}

async fn a_version_can_be_made_active_again(store: Store) {
    let a = addr("v@example.org");
    let first = store
        .deploy_script(&a, "v1", Some("0 * * * *"))
        .await
        .unwrap();
    store.deploy_script(&a, "v2", None).await.unwrap();
    let id = first.thwonk.id;
    let versions = store.list_script_versions(&id).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![2, 1]
    );
    let t = store.activate_version(&id, 1).await.unwrap();
    assert_eq!(
        (t.active_version, t.schedule.as_deref()),
        (Some(1), Some("0 * * * *"))
    );
    assert_eq!(
        store.active_script(&id).await.unwrap().unwrap().source,
        "v1"
    );
    let missing = store.activate_version(&id, 7).await;
    // Named by the address the user knows, not the internal id.
    match &missing {
        Err(StoreError::NotFound(what)) => {
            assert_eq!(what, "v@example.org has no version 7");
            assert!(!what.contains(&id), "{what}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.thwonk(&id).await.unwrap().unwrap().active_version,
        Some(1)
    );
}

async fn delete_thwonk_takes_everything_it_owns(store: Store) {
    let t = thwonk(&store, "gone@example.org").await;
    let keep = thwonk(&store, "kept@example.org").await;
    for th in [&t, &keep] {
        let m = one_message(&store, &th.id).await;
        let commit = ok_commit(
            &th.id,
            Some(&m),
            vec![write("a.txt", "A")],
            vec![mail("x@example.net")],
        );
        store.commit_run(&commit).await.unwrap();
    }
    assert!(store.delete_thwonk(&t.id).await.unwrap());
    assert!(!store.delete_thwonk(&t.id).await.unwrap());
    assert!(store.thwonk(&t.id).await.unwrap().is_none());
    assert!(store.list_runs(&t.id, 10).await.unwrap().is_empty());
    assert!(store.list_files(&t.id, "").await.unwrap().is_empty());
    assert!(store.list_script_versions(&t.id).await.unwrap().is_empty());
    // The other thwonk is untouched.
    assert_eq!(store.list_runs(&keep.id, 10).await.unwrap().len(), 1);
    assert_eq!(store.list_files(&keep.id, "").await.unwrap().len(), 1);
}
