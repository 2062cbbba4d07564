//! `{{ name }}` substitution for playbook parameters.
//!
//! Deliberately not a template *language*: a placeholder names one value and
//! is replaced by its text, nothing is evaluated, and the result is always a
//! single data item (an argv element, a path, a URL), never code. That keeps
//! the safety promise easy to audit, and lets the validator know every name a
//! playbook reads. Names are `[A-Za-z_][A-Za-z0-9_.]*`.

use std::collections::BTreeMap;
use std::ops::Range;

/// One `{{ name }}` found in a string: the name and its byte range in the string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub name: String,
    pub range: Range<usize>,
}

/// A syntax problem in a template string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
    pub range: Range<usize>,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Every placeholder in `s`, or the first syntax error.
pub fn placeholders(s: &str) -> Result<Vec<Placeholder>, TemplateError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(rel) = s[pos..].find("{{") {
        let start = pos + rel;
        let Some(close_rel) = s[start + 2..].find("}}") else {
            return Err(TemplateError {
                message: "`{{` without a closing `}}`".into(),
                range: start..s.len(),
            });
        };
        let end = start + 2 + close_rel + 2;
        let name = s[start + 2..end - 2].trim();
        if !valid_name(name) {
            return Err(TemplateError {
                message: format!(
                    "`{}` is not a value name (templates only substitute names like `{{{{ upstream }}}}`)",
                    &s[start..end]
                ),
                range: start..end,
            });
        }
        out.push(Placeholder {
            name: name.to_owned(),
            range: start..end,
        });
        pos = end;
    }
    Ok(out)
}

/// The values templates read: variables, discovered facts and derived values.
pub type Values = BTreeMap<String, String>;

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("no value for `{0}` yet (not given with --var and not discovered)")]
    Missing(String),
    #[error(transparent)]
    Syntax(#[from] TemplateError),
}

/// Substitute every placeholder in `s` from `values`.
pub fn render(s: &str, values: &Values) -> Result<String, RenderError> {
    let ph = placeholders(s)?;
    if ph.is_empty() {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for p in ph {
        out.push_str(&s[last..p.range.start]);
        let v = values
            .get(&p.name)
            .ok_or_else(|| RenderError::Missing(p.name.clone()))?;
        out.push_str(v);
        last = p.range.end;
    }
    out.push_str(&s[last..]);
    Ok(out)
}

/// Render every string inside a JSON value (the serialised check or action
/// parameters). An array item that is exactly one placeholder whose value has
/// several lines becomes one item per line: list-valued facts such as
/// `error_logs` expand into list parameters.
pub fn render_json(
    v: &serde_json::Value,
    values: &Values,
) -> Result<serde_json::Value, RenderError> {
    use serde_json::Value;
    Ok(match v {
        Value::String(s) => Value::String(render(s, values)?),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                if let Value::String(s) = item {
                    let ph = placeholders(s)?;
                    if ph.len() == 1 && ph[0].range == (0..s.len()) {
                        let val = values
                            .get(&ph[0].name)
                            .ok_or_else(|| RenderError::Missing(ph[0].name.clone()))?;
                        out.extend(
                            val.lines()
                                .filter(|l| !l.is_empty())
                                .map(|l| Value::String(l.to_owned())),
                        );
                        continue;
                    }
                }
                out.push(render_json(item, values)?);
            }
            Value::Array(out)
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, values)?)))
                .collect::<Result<_, RenderError>>()?,
        ),
        other => other.clone(),
    })
}

/// Like [`render_json`], for check parameters: a parameter or list item
/// that is exactly one placeholder with no value yet is left out, so an
/// optional parameter takes its default and a list of optional sources
/// (`["{{ error_logs }}", "{{ php_fpm.error_log }}"]`) keeps the known ones.
/// Returns the rendered value and the names left out; a missing value inside
/// other text is still an error.
pub fn render_json_optional(
    v: &serde_json::Value,
    values: &Values,
) -> Result<(serde_json::Value, Vec<String>), RenderError> {
    let mut missing = Vec::new();
    let out = render_opt(v, values, &mut missing)?;
    Ok((out, missing))
}

/// The name of a string that is exactly one placeholder with no value.
fn lone_missing(v: &serde_json::Value, values: &Values) -> Result<Option<String>, RenderError> {
    let serde_json::Value::String(s) = v else {
        return Ok(None);
    };
    let ph = placeholders(s)?;
    Ok(
        (ph.len() == 1 && ph[0].range == (0..s.len()) && !values.contains_key(&ph[0].name))
            .then(|| ph[0].name.clone()),
    )
}

fn render_opt(
    v: &serde_json::Value,
    values: &Values,
    missing: &mut Vec<String>,
) -> Result<serde_json::Value, RenderError> {
    use serde_json::Value;
    Ok(match v {
        Value::Array(items) => {
            let mut kept = Vec::with_capacity(items.len());
            for item in items {
                match lone_missing(item, values)? {
                    Some(name) => missing.push(name),
                    None => kept.push(item.clone()),
                }
            }
            let rendered = render_json(&Value::Array(kept), values)?;
            match rendered {
                Value::Array(a) => Value::Array(
                    a.iter()
                        .map(|x| render_opt(x, values, missing))
                        .collect::<Result<_, _>>()?,
                ),
                other => other,
            }
        }
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                match lone_missing(v, values)? {
                    Some(name) => missing.push(name),
                    None => {
                        out.insert(k.clone(), render_opt(v, values, missing)?);
                    }
                }
            }
            Value::Object(out)
        }
        other => render_json(other, values)?,
    })
}

/// Every placeholder name in the strings of a JSON value.
pub fn names_in_json(v: &serde_json::Value, out: &mut Vec<String>) -> Result<(), TemplateError> {
    use serde_json::Value;
    match v {
        Value::String(s) => out.extend(placeholders(s)?.into_iter().map(|p| p.name)),
        Value::Array(items) => {
            for i in items {
                names_in_json(i, out)?;
            }
        }
        Value::Object(map) => {
            for v in map.values() {
                names_in_json(v, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(pairs: &[(&str, &str)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn substitutes_names_and_keeps_other_text() {
        let v = vals(&[("url.host", "shop.example"), ("port", "8080")]);
        assert_eq!(
            render("{{url.host}}:{{ port }}/x", &v).unwrap(),
            "shop.example:8080/x"
        );
        assert_eq!(render("no placeholders", &v).unwrap(), "no placeholders");
    }

    #[test]
    fn values_are_data_never_reinterpreted() {
        // A value that looks like a template or shell is copied verbatim.
        let v = vals(&[("x", "{{ y }}; rm -rf / $(id) `id`")]);
        assert_eq!(render("{{x}}", &v).unwrap(), "{{ y }}; rm -rf / $(id) `id`");
    }

    #[test]
    fn reports_missing_values_and_syntax_errors() {
        assert_eq!(
            render("{{ nope }}", &Values::new()),
            Err(RenderError::Missing("nope".into()))
        );
        let e = placeholders("a {{ b").unwrap_err();
        assert_eq!(e.range, 2..6);
        let e = placeholders("{{ a | upper }}").unwrap_err();
        assert!(e.message.contains("not a value name"), "{}", e.message);
    }

    #[test]
    fn optional_parameters_without_a_value_are_left_out() {
        let v = vals(&[("logs", "/a.log")]);
        let j = serde_json::json!({"paths": ["{{ logs }}", "{{ fpm_log }}"], "user": "{{ worker_user }}", "url": "x"});
        let (r, missing) = render_json_optional(&j, &v).unwrap();
        assert_eq!(r, serde_json::json!({"paths": ["/a.log"], "url": "x"}));
        assert_eq!(
            missing,
            vec!["fpm_log".to_owned(), "worker_user".to_owned()]
        );
        let inner = serde_json::json!({"url": "http://{{ host }}/"});
        assert!(
            render_json_optional(&inner, &v).is_err(),
            "a missing value inside text is an error"
        );
    }

    #[test]
    fn list_values_expand_in_arrays() {
        let v = vals(&[("logs", "/a.log\n/b.log")]);
        let j = serde_json::json!({"paths": ["{{ logs }}", "/c.log"], "one": "{{ logs }}"});
        let r = render_json(&j, &v).unwrap();
        assert_eq!(
            r["paths"],
            serde_json::json!(["/a.log", "/b.log", "/c.log"])
        );
    }
}
