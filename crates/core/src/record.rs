//! The enclave record, attribute for attribute as the existing table holds it.

use crate::status::Status;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One row of the enclave table. Attribute names are camelCase everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enclave {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub region: String,
    pub wallet_address: String,
    pub provider_id: String,
    /// Kept as written (the app writes numbers as strings); `validate`
    /// turns it into a typed [`crate::validate::ProviderConfig`].
    #[serde(default)]
    pub provider_config: Map<String, Value>,
    pub status: Status,
    /// ISO-8601, as the app writes it.
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub outputs: Map<String, Value>,
    /// Incremented by every write; conditional writes compare it.
    #[serde(default)]
    pub version: u64,
}

/// Maximum lengths for free-text fields (stored literally, never interpreted).
pub const MAX_NAME_LEN: usize = 128;
pub const MAX_DESCRIPTION_LEN: usize = 1024;

/// Enclave ids look like the app's: `enc_<millis>_<9 base36 chars>`.
pub fn new_enclave_id(now_millis: u64, random: [u8; 9]) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let tail: String = random
        .iter()
        .map(|b| ALPHABET[(*b as usize) % 36] as char)
        .collect();
    format!("enc_{now_millis}_{tail}")
}
