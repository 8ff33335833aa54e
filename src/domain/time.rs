//! Time and identity: the clock, instants as microseconds, their RFC 3339
//! spelling (event payloads, webhook bodies), and fresh resource ids. Every
//! layer takes these from here, so no layer formats a time its own way.

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;

/// Current time in microseconds since the epoch.
pub fn now_micros() -> Micros {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

/// A fresh resource id: a UUIDv7 in lowercase hex, so ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The instant as `google.protobuf.Timestamp` holds it (seconds and a
/// non-negative nanosecond part, also before 1970).
pub fn timestamp(micros: Micros) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// The instant in RFC 3339, UTC, as the proto3 JSON mapping spells a
/// timestamp: `2026-11-22T10:00:00Z`, `2026-11-22T10:00:00.250Z`.
pub fn rfc3339(micros: Micros) -> String {
    timestamp(micros).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_the_proto_json_spelling() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_860_000_250_000), "2026-11-28T10:00:00.250Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn ids_are_32_hex_digits() {
        let a = new_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
