//! `THWONK_<SECTION>_<KEY>` (and `THWONK_<KEY>` for top-level keys) folded over the file.
//!
//! The set of keys and each key's type come from the serialised defaults, so a misspelt
//! variable is refused rather than silently ignored, and `"1,2"` becomes a list where the
//! setting is one.

use super::{Config, ConfigError};

/// Variables with the `THWONK_` prefix that are not settings.
const NOT_SETTINGS: &[&str] = &["THWONK_CONFIG", "THWONK_LOG"];
const NOT_SETTINGS_PREFIX: &[&str] = &["THWONK_TEST_"];

/// Fold `THWONK_*` variables into the table, section by section. The key set comes from the
/// defaults, so a misspelt variable is refused rather than silently ignored.
pub(super) fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let defaults = match toml::Value::try_from(Config::default()) {
        Ok(toml::Value::Table(t)) => t,
        _ => unreachable!("the default config serialises to a table"),
    };
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("THWONK_"))
        .filter(|(k, _)| !NOT_SETTINGS.contains(&k.as_str()))
        .filter(|(k, _)| !NOT_SETTINGS_PREFIX.iter().any(|p| k.starts_with(p)))
        .collect();
    vars.sort();
    'vars: for (name, value) in vars {
        let rest = name["THWONK_".len()..].to_lowercase();
        for (key, default) in &defaults {
            match default {
                toml::Value::Table(section) => {
                    let Some(sub) = rest.strip_prefix(&format!("{key}_")) else {
                        continue;
                    };
                    if let Some(d) = section.get(sub) {
                        let v = env_value(&name, &value, d)?;
                        let t = table
                            .entry(key.clone())
                            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                        match t {
                            toml::Value::Table(t) => {
                                t.insert(sub.to_string(), v);
                            }
                            _ => {
                                return Err(ConfigError::new(
                                    key.clone(),
                                    "must be a table ([section])",
                                ));
                            }
                        }
                        continue 'vars;
                    }
                }
                other => {
                    if rest == *key {
                        let v = env_value(&name, &value, other)?;
                        table.insert(key.clone(), v);
                        continue 'vars;
                    }
                }
            }
        }
        return Err(ConfigError::new(
            name,
            "is not a setting (THWONK_<SECTION>_<KEY>, see config/thwonk.toml)",
        ));
    }
    Ok(())
}

/// Turn a variable's text into a TOML value of the same type as the setting's default.
fn env_value(name: &str, raw: &str, default: &toml::Value) -> Result<toml::Value, ConfigError> {
    let bad = |what: &str| ConfigError::new(name, format!("{raw:?} is not {what}"));
    Ok(match default {
        toml::Value::Integer(_) => {
            toml::Value::Integer(raw.trim().parse().map_err(|_| bad("an integer"))?)
        }
        toml::Value::Boolean(_) => {
            toml::Value::Boolean(raw.trim().parse().map_err(|_| bad("true or false"))?)
        }
        toml::Value::Float(_) => {
            toml::Value::Float(raw.trim().parse().map_err(|_| bad("a number"))?)
        }
        toml::Value::Array(items) => {
            let parts = raw.split(',').map(str::trim).filter(|s| !s.is_empty());
            // An empty default says nothing about the items' type: a list that is all
            // integers is integers (egress.retry_schedule_ms), anything else strings.
            let all_integers = {
                let mut p = parts.clone().peekable();
                p.peek().is_some() && p.all(|x| x.parse::<i64>().is_ok())
            };
            match items.first() {
                None if all_integers => toml::Value::Array(
                    parts
                        .map(|p| toml::Value::Integer(p.parse().unwrap_or_default()))
                        .collect(),
                ),
                Some(toml::Value::Integer(_)) => toml::Value::Array(
                    parts
                        .map(|p| {
                            p.parse()
                                .map(toml::Value::Integer)
                                .map_err(|_| bad("a comma-separated list of integers"))
                        })
                        .collect::<Result<_, _>>()?,
                ),
                _ => toml::Value::Array(parts.map(|p| toml::Value::String(p.into())).collect()),
            }
        }
        _ => toml::Value::String(raw.to_string()),
    })
}
