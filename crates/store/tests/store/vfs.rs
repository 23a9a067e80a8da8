use thwonk_store::Store;

use crate::common::thwonk;

on_both!(
    files_are_written_read_replaced_and_deleted,
    listings_are_in_byte_order_and_filtered_by_prefix,
    files_belong_to_one_thwonk,
);

async fn files_are_written_read_replaced_and_deleted(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    assert_eq!(store.read_file(&t.id, "members.json").await.unwrap(), None);
    store
        .put_file(&t.id, "members.json", b"[\"a\"]", 100)
        .await
        .unwrap();
    assert_eq!(
        store
            .read_file(&t.id, "members.json")
            .await
            .unwrap()
            .unwrap(),
        b"[\"a\"]"
    );
    store
        .put_file(&t.id, "members.json", b"[]", 200)
        .await
        .unwrap();
    let listed = store.list_files(&t.id, "").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].path, "members.json");
    assert_eq!(listed[0].size, 2);
    assert_eq!(listed[0].updated_at_ms, 200);
    // Empty files and binary content are files too.
    store.put_file(&t.id, "empty", b"", 300).await.unwrap();
    assert_eq!(
        store.read_file(&t.id, "empty").await.unwrap(),
        Some(Vec::new())
    );
    store
        .put_file(&t.id, "bin", &[0, 255, 1], 300)
        .await
        .unwrap();
    assert_eq!(
        store.read_file(&t.id, "bin").await.unwrap(),
        Some(vec![0, 255, 1])
    );

    assert!(store.delete_file(&t.id, "members.json").await.unwrap());
    assert!(!store.delete_file(&t.id, "members.json").await.unwrap());
    assert_eq!(store.read_file(&t.id, "members.json").await.unwrap(), None);
}

async fn listings_are_in_byte_order_and_filtered_by_prefix(store: Store) {
    let t = thwonk(&store, "list@x.org").await;
    let paths = [
        "archive/2026/2.txt",
        "archive/2026/10.txt",
        "archive-old/1.txt",
        "archive0",
        "archive/\u{e9}t\u{e9}.txt",
        "Archive/upper.txt",
        "members.json",
        "archive/\u{10FFFF}",
        "a_b",
        "a%b",
    ];
    for p in paths {
        store.put_file(&t.id, p, p.as_bytes(), 1).await.unwrap();
    }
    let list = |prefix: &'static str| {
        let store = store.clone();
        let id = t.id.clone();
        async move {
            store
                .list_files(&id, prefix)
                .await
                .unwrap()
                .into_iter()
                .map(|f| f.path)
                .collect::<Vec<_>>()
        }
    };
    let mut all: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    all.sort();
    assert_eq!(list("").await, all);
    assert_eq!(
        list("archive/").await,
        [
            "archive/2026/10.txt",
            "archive/2026/2.txt",
            "archive/\u{e9}t\u{e9}.txt",
            "archive/\u{10FFFF}",
        ]
    );
    assert_eq!(
        list("archive").await,
        [
            "archive-old/1.txt",
            "archive/2026/10.txt",
            "archive/2026/2.txt",
            "archive/\u{e9}t\u{e9}.txt",
            "archive/\u{10FFFF}",
            "archive0",
        ]
    );
    // Prefixes are case-sensitive and LIKE wildcards mean nothing.
    assert_eq!(list("Archive").await, ["Archive/upper.txt"]);
    assert_eq!(list("a_").await, ["a_b"]);
    assert_eq!(list("a%").await, ["a%b"]);
    assert!(list("zzz").await.is_empty());
    assert_eq!(list("members.json").await, ["members.json"]);
}

async fn files_belong_to_one_thwonk(store: Store) {
    let a = thwonk(&store, "a@x.org").await;
    let b = thwonk(&store, "b@x.org").await;
    store.put_file(&a.id, "f", b"a", 1).await.unwrap();
    assert_eq!(store.read_file(&b.id, "f").await.unwrap(), None);
    assert!(store.list_files(&b.id, "").await.unwrap().is_empty());
    assert!(!store.delete_file(&b.id, "f").await.unwrap());
    assert!(store.read_file(&a.id, "f").await.unwrap().is_some());
}
