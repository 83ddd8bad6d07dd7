//! API keys. Only the SHA-256 of a key is stored; the plaintext exists once,
//! in the return value of [`Store::create_api_key`].

use crate::error::StoreError;
use crate::store::Store;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Every key starts with this; 32 lowercase hex characters follow.
pub const KEY_PREFIX: &str = "treza_live_";
const KEY_HEX_LEN: usize = 32;

/// A key as the store knows it: never the plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Stable handle for listing and revoking: `key_` + 16 hex of the hash.
    pub id: String,
    /// The first characters of the key, for people to recognise it.
    pub prefix: String,
    pub wallet: String,
    pub permissions: Vec<String>,
    pub created_at: String,
}

fn hash_hex(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// `true` for `treza_live_` followed by exactly 32 lowercase hex characters.
pub fn is_well_formed_key(key: &str) -> bool {
    match key.strip_prefix(KEY_PREFIX) {
        Some(rest) => {
            rest.len() == KEY_HEX_LEN
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        None => false,
    }
}

impl Store {
    /// Creates a key for `wallet` and returns its plaintext, which is not
    /// stored and cannot be recovered. Permissions are stored as given
    /// (the caller checks them against the known ones).
    pub fn create_api_key(
        &self,
        wallet: &str,
        permissions: &[&str],
        now_iso: &str,
    ) -> Result<String, StoreError> {
        let mut random = [0u8; KEY_HEX_LEN / 2];
        getrandom::fill(&mut random).map_err(|e| StoreError::Entropy(e.to_string()))?;
        let mut key = String::with_capacity(KEY_PREFIX.len() + KEY_HEX_LEN);
        key.push_str(KEY_PREFIX);
        for b in random {
            key.push_str(&format!("{b:02x}"));
        }
        let hash = hash_hex(&key);
        let id = format!("key_{}", &hash[..16]);
        let prefix = key[..KEY_PREFIX.len() + 4].to_string();
        let permissions = serde_json::to_string(permissions)
            .map_err(|e| StoreError::Corrupt(format!("api key permissions: {e}")))?;
        let conn = self.write_conn();
        conn.prepare_cached(
            "INSERT INTO api_keys (key_hash, id, prefix, wallet_address, permissions, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![hash, id, prefix, wallet, permissions, now_iso])?;
        Ok(key)
    }

    /// The key's owner and permissions, or `None` for an unknown or malformed
    /// key. Lookup is by hash, so no comparison ever touches a stored secret.
    pub fn authenticate(&self, key: &str) -> Result<Option<ApiKey>, StoreError> {
        if !is_well_formed_key(key) {
            return Ok(None);
        }
        let hash = hash_hex(key);
        let conn = self.read_conn();
        let raw = conn
            .prepare_cached(
                "SELECT id, prefix, wallet_address, permissions, created_at FROM api_keys
                 WHERE key_hash = ?1",
            )?
            .query_row([hash], read_key)
            .optional()?;
        raw.map(parse_key).transpose()
    }

    /// Keys (never their plaintext), optionally of one wallet, oldest first.
    pub fn list_api_keys(&self, wallet: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
        let conn = self.read_conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, prefix, wallet_address, permissions, created_at FROM api_keys
             WHERE ?1 IS NULL OR wallet_address = ?1 ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([wallet], read_key)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(parse_key(row?)?);
        }
        Ok(out)
    }

    /// Deletes a key by its id; `false` if there was none.
    pub fn revoke_api_key(&self, id: &str) -> Result<bool, StoreError> {
        let conn = self.write_conn();
        let n = conn
            .prepare_cached("DELETE FROM api_keys WHERE id = ?1")?
            .execute([id])?;
        Ok(n > 0)
    }
}

type RawKey = (String, String, String, String, String);

fn read_key(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawKey> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn parse_key((id, prefix, wallet, permissions, created_at): RawKey) -> Result<ApiKey, StoreError> {
    let permissions: Vec<String> = serde_json::from_str(&permissions).map_err(|e| {
        StoreError::Corrupt(format!(
            "api key {id}: permissions are not a JSON list of strings: {e}"
        ))
    })?;
    Ok(ApiKey {
        id,
        prefix,
        wallet,
        permissions,
        created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shape_is_checked_before_lookup() {
        assert!(is_well_formed_key(
            "treza_live_0123456789abcdef0123456789abcdef"
        ));
        assert!(!is_well_formed_key(
            "treza_live_0123456789ABCDEF0123456789abcdef"
        ));
        assert!(!is_well_formed_key("treza_live_0123"));
        assert!(!is_well_formed_key(
            "treza_test_0123456789abcdef0123456789abcdef"
        ));
        assert!(!is_well_formed_key(""));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
