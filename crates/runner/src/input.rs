//! Parsers for the runner's environment variables, one per kind of value.
//!
//! Each returns the rule the value broke, in words; the caller adds the
//! variable's name. No parser echoes the value it rejects unless the value
//! is an identifier that cannot be secret (a port, a region).

use std::time::Duration;

/// Longest accepted wallet address (mirrors `treza_core`'s limit).
pub const MAX_WALLET_LEN: usize = 128;

/// Whole seconds in `min..=max`.
pub fn seconds(text: &str, min: u64, max: u64) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "must be a whole number of seconds from {min} to {max}"
        )),
    }
}

/// A list given as a JSON array of scalars or as a comma-separated string.
fn list_items(text: &str) -> Result<Vec<String>, String> {
    let t = text.trim();
    if t.starts_with('[') {
        let items: Vec<serde_json::Value> = serde_json::from_str(t)
            .map_err(|_| "must be a JSON array or a comma-separated list".to_string())?;
        items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s.trim().to_string()),
                serde_json::Value::Number(n) => Ok(n.to_string()),
                _ => Err("list items must be strings or numbers".to_string()),
            })
            .collect()
    } else {
        Ok(t.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect())
    }
}

/// `EXPOSE_PORTS`: "80,443" or "[80, 443]"; 1..=65535, at most 32, duplicates dropped.
pub fn ports(text: &str) -> Result<Vec<u16>, String> {
    let mut out: Vec<u16> = Vec::new();
    for item in list_items(text)? {
        match item.parse::<u16>() {
            Ok(p) if p >= 1 => {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
            _ => {
                return Err(format!(
                    "must list port numbers from 1 to 65535, got {item:?}"
                ))
            }
        }
    }
    if out.len() > 32 {
        return Err(format!("must list at most 32 ports, got {}", out.len()));
    }
    Ok(out)
}

/// `AWS_SERVICES`: "kms,s3" or `["kms"]`; lowercase letters, digits and '-'.
pub fn aws_services(text: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for name in list_items(text)? {
        let ok = !name.is_empty()
            && name.len() <= 63
            && !name.starts_with('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(format!(
                "must list AWS service names such as kms or s3 (lowercase letters, digits and '-', at most 63), got {name:?}"
            ));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    if out.len() > 32 {
        return Err(format!("must list at most 32 services, got {}", out.len()));
    }
    Ok(out)
}

/// `WORKLOAD_TYPE`.
pub fn workload_type(text: &str) -> Result<&'static str, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "batch" => Ok("batch"),
        "service" => Ok("service"),
        "daemon" => Ok("daemon"),
        _ => Err("must be one of batch, service, daemon".to_string()),
    }
}

/// `HEALTH_CHECK_PATH`: starts with '/', printable ASCII without spaces, at most 1024.
pub fn health_check_path(text: &str) -> Result<String, String> {
    let ok = text.starts_with('/')
        && text.len() <= 1024
        && text.bytes().all(|b| (b'!'..=b'~').contains(&b));
    if ok {
        Ok(text.to_string())
    } else {
        Err("must be a URL path starting with '/', printable ASCII without spaces, at most 1024 characters".to_string())
    }
}

/// `WALLET_ADDRESS`: at most 128 characters, no spaces or control characters.
pub fn wallet_address(text: &str) -> Result<String, String> {
    if text.chars().count() > MAX_WALLET_LEN {
        return Err(format!("must be at most {MAX_WALLET_LEN} characters"));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".to_string());
    }
    Ok(text.to_string())
}

/// `DOCKER_IMAGE`: an image reference such as `nginx:1.27` or `repo/app@sha256:...`.
pub fn docker_image(text: &str) -> Result<String, String> {
    let ok = text.len() <= 512
        && text
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/:@+-".contains(&b));
    if ok {
        Ok(text.to_string())
    } else {
        Err("must be a container image reference such as nginx:1.27 (letters, digits and . _ / : @ + -, at most 512)".to_string())
    }
}

/// An AWS resource id `<prefix>-` followed by 8 or 17 lowercase hex digits.
pub fn aws_id(text: &str, prefix: &str) -> Result<String, String> {
    let hex = text
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'));
    match hex {
        Some(h)
            if (h.len() == 8 || h.len() == 17)
                && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(text.to_string())
        }
        _ => Err(format!(
            "must be an AWS id such as {prefix}-0123456789abcdef0 ({prefix}- then 8 or 17 lowercase hex digits)"
        )),
    }
}

/// `TF_STATE_BUCKET`: S3 bucket naming rules (3-63 lowercase letters, digits,
/// '.', '-'; starts and ends with a letter or digit; no "..", not an IP address).
pub fn s3_bucket(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ok = (3..=63).contains(&text.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && !text.contains("..")
        && text.parse::<std::net::Ipv4Addr>().is_err();
    if ok {
        Ok(text.to_string())
    } else {
        Err("must be an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit".to_string())
    }
}

/// `TF_STATE_REGION`: an AWS region name such as us-east-1 or us-gov-west-1.
pub fn region(text: &str) -> Result<String, String> {
    let parts: Vec<&str> = text.split('-').collect();
    let n = parts.len();
    let ok = n >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..n - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && !parts[n - 1].is_empty()
        && parts[n - 1].len() <= 2
        && parts[n - 1].bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(text.to_string())
    } else {
        Err(format!(
            "must be an AWS region name such as us-east-1, got {text:?}"
        ))
    }
}

/// `TF_LOCK_TABLE`: a DynamoDB table name (3-255 letters, digits, '_', '-', '.').
pub fn dynamodb_table(text: &str) -> Result<String, String> {
    let ok = (3..=255).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(text.to_string())
    } else {
        Err("must be a DynamoDB table name: 3-255 letters, digits, '_', '-' or '.'".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_bounds() {
        assert_eq!(seconds("0", 0, 10), Ok(Duration::ZERO));
        assert_eq!(seconds(" 7 ", 1, 10), Ok(Duration::from_secs(7)));
        assert!(seconds("0", 1, 10).is_err());
        assert!(seconds("11", 1, 10).is_err());
        assert!(seconds("1.5", 1, 10).is_err());
        assert!(seconds("-1", 0, 10).is_err());
    }

    #[test]
    fn ports_accept_both_list_forms() {
        assert_eq!(ports("80, 443,80"), Ok(vec![80, 443]));
        assert_eq!(ports("[8080, \"9090\"]"), Ok(vec![8080, 9090]));
        assert_eq!(ports(""), Ok(vec![]));
        assert!(ports("0").is_err());
        assert!(ports("65536").is_err());
        assert!(ports("80;rm -rf").is_err());
        assert!(ports("[{}]").is_err());
        assert!(ports("[1,").is_err());
        let many: Vec<String> = (1..=33).map(|p| p.to_string()).collect();
        assert!(ports(&many.join(",")).is_err());
    }

    #[test]
    fn aws_services_rules() {
        assert_eq!(
            aws_services("kms, s3,kms"),
            Ok(vec!["kms".to_string(), "s3".to_string()])
        );
        assert_eq!(aws_services("[\"secretsmanager\"]").map(|v| v.len()), Ok(1));
        assert!(aws_services("KMS").is_err());
        assert!(aws_services("-kms").is_err());
        assert!(aws_services("k ms").is_err());
    }

    #[test]
    fn workload_type_and_health_path() {
        assert_eq!(workload_type("Service"), Ok("service"));
        assert!(workload_type("cron").is_err());
        assert_eq!(health_check_path("/healthz?x=1"), Ok("/healthz?x=1".into()));
        assert!(health_check_path("healthz").is_err());
        assert!(health_check_path("/a b").is_err());
        assert!(health_check_path("/a\r\nX: y").is_err());
    }

    #[test]
    fn wallet_and_image() {
        assert!(wallet_address("0x742d35Cc6634C0532925a3b844Bc454e4438f44e").is_ok());
        assert!(wallet_address("0x1 2").is_err());
        assert!(wallet_address(&"a".repeat(129)).is_err());
        assert!(docker_image("nginx:1.27").is_ok());
        assert!(docker_image("123.dkr.ecr.us-east-1.amazonaws.com/app@sha256:abc").is_ok());
        assert!(docker_image("-nginx").is_err());
        assert!(docker_image("nginx; rm -rf /").is_err());
        assert!(docker_image("$(id)").is_err());
    }

    #[test]
    fn aws_ids() {
        assert!(aws_id("vpc-0123abcd", "vpc").is_ok());
        assert!(aws_id("subnet-0123456789abcdef0", "subnet").is_ok());
        assert!(aws_id("sg-0123456789abcdef0", "sg").is_ok());
        assert!(aws_id("vpc-0123ABCD", "vpc").is_err());
        assert!(aws_id("subnet-0123abcd", "vpc").is_err());
        assert!(aws_id("vpc-0123abc", "vpc").is_err());
        assert!(aws_id("vpc0123abcd", "vpc").is_err());
    }

    #[test]
    fn state_backend_names() {
        assert!(s3_bucket("treza-state.prod-1").is_ok());
        for bad in ["ab", "Treza", "-abc", "abc-", "a..b", "192.168.1.1", "a_b"] {
            assert!(s3_bucket(bad).is_err(), "{bad}");
        }
        assert!(s3_bucket(&"a".repeat(64)).is_err());
        for good in [
            "us-east-1",
            "eu-central-1",
            "us-gov-west-1",
            "ap-southeast-2",
        ] {
            assert!(region(good).is_ok(), "{good}");
        }
        for bad in ["us-east", "US-east-1", "useast1", "us-east-x", "u-east-1"] {
            assert!(region(bad).is_err(), "{bad}");
        }
        assert!(dynamodb_table("treza-locks").is_ok());
        assert!(dynamodb_table("ab").is_err());
        assert!(dynamodb_table("a b c").is_err());
    }
}
