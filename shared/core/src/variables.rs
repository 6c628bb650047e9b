//! `#{namespace.key}` references in action configuration: finding them and resolving them.
//!
//! Pure text work shared by validation (every reference must be resolvable) and the engine
//! (references are resolved when the action starts).

/// A reference found in a value: `#{ns.key}` gives `("ns", "key")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference<'a> {
    /// The part before the first dot: `codepipeline`, `variables`, or an action namespace.
    pub namespace: &'a str,
    /// The part after the first dot.
    pub key: &'a str,
}

/// A value whose references cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// `#{` without a closing `}`.
    #[error("\"#{{\" at byte {0} is never closed")]
    Unterminated(usize),
    /// `#{name}` without a dot.
    #[error("\"#{{{0}}}\" has no namespace: write #{{namespace.variable}}")]
    NoNamespace(String),
}

/// Every reference in `value`, in order.
///
/// # Errors
/// [`ReferenceError`] for the first malformed reference.
pub fn references(value: &str) -> Result<Vec<Reference<'_>>, ReferenceError> {
    let mut found = Vec::new();
    let mut rest = value;
    let mut offset = 0;
    while let Some(start) = rest.find("#{") {
        let body_start = start + 2;
        let Some(len) = rest[body_start..].find('}') else {
            return Err(ReferenceError::Unterminated(offset + start));
        };
        let body = &rest[body_start..body_start + len];
        let Some((namespace, key)) = body.split_once('.') else {
            return Err(ReferenceError::NoNamespace(body.to_string()));
        };
        found.push(Reference { namespace, key });
        let next = body_start + len + 1;
        offset += next;
        rest = &rest[next..];
    }
    Ok(found)
}

/// Replaces every reference in `value` with what `lookup` returns for it.
///
/// # Errors
/// The text of the first reference `lookup` has no value for (as `ns.key`), or the reference
/// error for a malformed value.
pub fn resolve(
    value: &str,
    lookup: impl Fn(&str, &str) -> Option<String>,
) -> Result<String, String> {
    if !value.contains("#{") {
        return Ok(value.to_string());
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("#{") {
        out.push_str(&rest[..start]);
        let body_start = start + 2;
        let Some(len) = rest[body_start..].find('}') else {
            return Err(ReferenceError::Unterminated(start).to_string());
        };
        let body = &rest[body_start..body_start + len];
        let (namespace, key) = body
            .split_once('.')
            .ok_or_else(|| ReferenceError::NoNamespace(body.to_string()).to_string())?;
        match lookup(namespace, key) {
            Some(v) => out.push_str(&v),
            None => return Err(format!("{namespace}.{key}")),
        }
        rest = &rest[body_start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_in_order() {
        let refs = references("a #{build.CommitId} b #{variables.env}").unwrap();
        assert_eq!(
            refs,
            vec![
                Reference { namespace: "build", key: "CommitId" },
                Reference { namespace: "variables", key: "env" }
            ]
        );
    }

    #[test]
    fn an_unterminated_reference_is_an_error() {
        assert_eq!(references("x #{a.b"), Err(ReferenceError::Unterminated(2)));
    }

    #[test]
    fn a_reference_without_namespace_is_an_error() {
        assert!(matches!(references("#{plain}"), Err(ReferenceError::NoNamespace(_))));
    }

    #[test]
    fn resolve_replaces_known_and_names_the_unknown() {
        let lookup = |ns: &str, key: &str| (ns == "v" && key == "a").then(|| "1".to_string());
        assert_eq!(resolve("x-#{v.a}-y", lookup), Ok("x-1-y".to_string()));
        assert_eq!(resolve("#{v.b}", lookup), Err("v.b".to_string()));
    }
}
