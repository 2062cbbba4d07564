//! Durations as operators write them (`500ms`, `5s`, `30m`, `1h30m`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration parsed from friendly text, e.g. `5s` or `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        // A bare number means seconds, as in most server configs.
        if let Ok(secs) = t.parse::<u64>() {
            return Ok(HumanDuration(Duration::from_secs(secs)));
        }
        let d: jiff::SignedDuration = t
            .parse()
            .map_err(|_| format!("`{s}` is not a duration (try 500ms, 5s, 30m or 1h30m)"))?;
        let d = Duration::try_from(d).map_err(|_| format!("`{s}` is negative"))?;
        Ok(HumanDuration(d))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_millis() != 0 || d.as_secs() == 0 {
            write!(f, "{}ms", d.as_millis())
        } else if d.as_secs() % 3600 == 0 {
            write!(f, "{}h", d.as_secs() / 3600)
        } else if d.as_secs() % 60 == 0 {
            write!(f, "{}m", d.as_secs() / 60)
        } else {
            write!(f, "{}s", d.as_secs())
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration such as 500ms, 5s, 30m or 1h30m",
            "pattern": "^\\s*[0-9].*$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_friendly_forms() {
        let p = |s: &str| s.parse::<HumanDuration>().unwrap().0;
        assert_eq!(p("5s"), Duration::from_secs(5));
        assert_eq!(p("500ms"), Duration::from_millis(500));
        assert_eq!(p("1h30m"), Duration::from_secs(5400));
        assert_eq!(p("30"), Duration::from_secs(30));
        assert!("soon".parse::<HumanDuration>().is_err());
        assert_eq!(HumanDuration(Duration::from_secs(1800)).to_string(), "30m");
    }
}
