use serde_json::json;
use treza_store::{LogEntry, Store, KEY_PREFIX};

fn entry(i: usize, source: &str) -> LogEntry {
    LogEntry {
        timestamp: format!("2025-01-01T00:00:{i:02}.000Z"),
        source: source.to_string(),
        message: format!("line {i}"),
        fields: (i & 1 == 0).then(|| json!({"i": i})),
    }
}

#[test]
fn logs_return_the_most_recent_limit_oldest_first() {
    let store = Store::open_in_memory().unwrap();
    let entries: Vec<LogEntry> = (0..10)
        .map(|i| entry(i, if i % 3 == 0 { "errors" } else { "ecs" }))
        .collect();
    store.append_logs("enc_1", &entries[..4]).unwrap();
    store.append_logs("enc_2", &[entry(99, "ecs")]).unwrap();
    store.append_logs("enc_1", &entries[4..]).unwrap();

    let last3 = store.logs("enc_1", None, 3).unwrap();
    assert_eq!(last3, entries[7..].to_vec());
    assert_eq!(store.logs("enc_1", None, 100).unwrap(), entries);
    let errors: Vec<String> = store
        .logs("enc_1", Some("errors"), 2)
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(errors, ["line 6", "line 9"]);
    assert!(store.logs("enc_1", None, 0).unwrap().is_empty());
    assert_eq!(store.logs("enc_2", None, 10).unwrap().len(), 1);
    assert!(store.logs("enc_3", None, 10).unwrap().is_empty());
}

#[test]
fn api_keys_are_stored_only_as_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("treza.db");
    let store = Store::open(&path).unwrap();
    let key = store
        .create_api_key(
            "0xWallet",
            &["enclaves:read", "logs:read"],
            "2025-01-01T00:00:00Z",
        )
        .unwrap();
    let other = store
        .create_api_key("0xOther", &["enclaves:write"], "2025-01-01T00:00:01Z")
        .unwrap();
    assert_ne!(key, other);
    let hex = key.strip_prefix(KEY_PREFIX).unwrap();
    assert_eq!(hex.len(), 32);
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));

    let found = store.authenticate(&key).unwrap().unwrap();
    assert_eq!(found.wallet, "0xWallet");
    assert_eq!(found.permissions, ["enclaves:read", "logs:read"]);
    assert!(key.starts_with(&found.prefix));
    assert_eq!(
        store.authenticate(&other).unwrap().unwrap().wallet,
        "0xOther"
    );

    // Neither the key nor its random part is anywhere on disk (main file and WAL).
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        for secret in [key.as_bytes(), hex.as_bytes(), &hex.as_bytes()[4..]] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "plaintext key on disk"
            );
        }
    }

    let mut wrong = key.clone();
    let last = if wrong.ends_with('0') { "1" } else { "0" };
    wrong.replace_range(wrong.len() - 1.., last);
    assert_eq!(store.authenticate(&wrong).unwrap(), None);
    assert_eq!(store.authenticate("").unwrap(), None);
    assert_eq!(store.authenticate(&key.to_uppercase()).unwrap(), None);

    let listed = store.list_api_keys(Some("0xWallet")).unwrap();
    assert_eq!(listed, vec![found.clone()]);
    assert!(store.revoke_api_key(&found.id).unwrap());
    assert!(!store.revoke_api_key(&found.id).unwrap());
    assert_eq!(store.authenticate(&key).unwrap(), None);
    assert_eq!(store.list_api_keys(None).unwrap().len(), 1);
}
