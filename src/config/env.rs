//! `Env`: typed reads of one variable each, so every group of settings reads its variables
//! the same way and every bad value is refused with a message naming its variable.

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::error::ConfigError;

/// Typed reads of one variable each: the default when unset (or empty), else a parsed and
/// range-checked value, else an error naming the variable.
pub(super) struct Env<'a>(pub(super) &'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    pub(super) fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn required(&self, var: &'static str) -> Result<String, ConfigError> {
        self.get(var).ok_or(ConfigError::Missing(var))
    }

    /// A whole number in `range`.
    pub(super) fn number<T>(
        &self,
        var: &'static str,
        default: T,
        range: RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
    {
        let Some(raw) = self.get(var) else {
            return Ok(default);
        };
        match raw.parse::<T>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(invalid(
                var,
                format!(
                    "expected a whole number from {} to {}, got {raw:?}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    /// Whole seconds in `range`.
    pub(super) fn secs(
        &self,
        var: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        let Some(raw) = self.get(var) else {
            return Ok(Duration::from_secs(default));
        };
        let value = raw
            .parse::<u64>()
            .map_err(|_| invalid(var, format!("expected a whole number of seconds, got {raw:?}")))?;
        if !range.contains(&value) {
            return Err(invalid(
                var,
                format!(
                    "must be between {} and {} seconds, got {value}",
                    range.start(),
                    range.end()
                ),
            ));
        }
        Ok(Duration::from_secs(value))
    }

    pub(super) fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => {
                parse_bool(&v).ok_or_else(|| invalid(var, format!("expected true or false, got {v:?}")))
            }
        }
    }

    /// One of `choices` (case-insensitive), mapped to its value.
    pub(super) fn choice<T: Copy>(
        &self,
        var: &'static str,
        default: T,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let Some(raw) = self.get(var) else {
            return Ok(default);
        };
        let wanted = raw.to_ascii_lowercase();
        choices
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, value)| *value)
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                invalid(var, format!("expected {}, got {raw:?}", names.join(" or ")))
            })
    }

    /// A comma list, trimmed, empty items and repeats dropped.
    pub(super) fn list(&self, var: &'static str, default: &str) -> Vec<String> {
        let mut items: Vec<String> = Vec::new();
        for item in self
            .get(var)
            .unwrap_or_else(|| default.to_owned())
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            if !items.iter().any(|i| i == item) {
                items.push(item.to_owned());
            }
        }
        items
    }

    pub(super) fn pg_url(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        let url = self.get(var);
        if let Some(url) = &url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid(var, "must start with postgres:// or postgresql://"));
        }
        Ok(url)
    }

    pub(super) fn socket_addr(
        &self,
        var: &'static str,
        example: &str,
    ) -> Result<Option<SocketAddr>, ConfigError> {
        self.get(var)
            .map(|v| {
                v.parse()
                    .map_err(|_| invalid(var, format!("expected host:port such as {example}, got {v:?}")))
            })
            .transpose()
    }

    pub(super) fn http_url(
        &self,
        var: &'static str,
        default: impl FnOnce() -> String,
    ) -> Result<String, ConfigError> {
        http_url(var, self.get(var).unwrap_or_else(default))
    }
}

pub(super) fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: reason.into(),
    }
}

pub(super) fn http_url(var: &'static str, value: String) -> Result<String, ConfigError> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(|| invalid(var, format!("expected an http:// or https:// URL, got {value:?}")))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(invalid(var, format!("the URL {value:?} has no host")));
    }
    Ok(value)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}
