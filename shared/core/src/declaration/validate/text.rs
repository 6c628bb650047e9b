//! Hand-written matchers for the botocore patterns and bounds, and the messages they produce.
//!
//! Lengths count characters, not bytes: the service counts characters, and a byte count would
//! refuse non-ASCII values that fit.

/// The character classes of the botocore patterns.
#[derive(Debug, Clone, Copy)]
pub(super) enum Charset {
    /// Pipeline, stage, action and rule names: `[A-Za-z0-9.@\-_]`.
    Name,
    /// Artifact names: `[a-zA-Z0-9_\-]`.
    Artifact,
    /// Namespaces and pipeline variable names: `[A-Za-z0-9@\-_]`.
    Namespace,
    /// Provider and version: `[0-9A-Za-z_-]`.
    Token,
    /// Environment variable names: `[A-Za-z0-9_]`.
    EnvName,
    /// Bucket names: `[a-zA-Z0-9\-\.]`.
    Bucket,
}

impl Charset {
    fn extra(self) -> &'static [char] {
        match self {
            Charset::Name => &['.', '@', '-', '_'],
            Charset::Artifact | Charset::Token => &['-', '_'],
            Charset::Namespace => &['@', '-', '_'],
            Charset::EnvName => &['_'],
            Charset::Bucket => &['-', '.'],
        }
    }

    fn allows(self, c: char) -> bool {
        c.is_ascii_alphanumeric() || self.extra().contains(&c)
    }

    fn describe(self) -> String {
        let quoted: Vec<String> = self.extra().iter().map(|c| format!("\"{c}\"")).collect();
        match quoted.split_last() {
            Some((last, [])) => format!("letters, digits and {last}"),
            Some((last, rest)) => format!("letters, digits, {} and {last}", rest.join(", ")),
            None => "letters and digits".to_string(),
        }
    }
}

/// `what` must be `min..=max` characters long.
pub(super) fn length(what: &str, value: &str, min: usize, max: usize) -> Option<String> {
    let n = value.chars().count();
    if (min..=max).contains(&n) {
        None
    } else if n == 0 {
        Some(format!("{what} must not be empty"))
    } else if min <= 1 && n > max {
        Some(format!("{what} must be at most {max} characters long, not {n}"))
    } else {
        Some(format!("{what} must be {min} to {max} characters long, not {n}"))
    }
}

/// `what` must be `min..=max` characters of `charset`.
pub(super) fn token(
    what: &str,
    value: &str,
    min: usize,
    max: usize,
    charset: Charset,
) -> Option<String> {
    length(what, value, min, max).or_else(|| {
        (!value.chars().all(|c| charset.allows(c)))
            .then(|| format!("{what} \"{value}\" may only contain {}", charset.describe()))
    })
}

/// `subject` must have `min..=max` of `noun` (a plural): `a stage must have 1 to 50 actions, not 0`.
pub(super) fn count(subject: &str, noun: &str, n: usize, min: usize, max: usize) -> Option<String> {
    if (min..=max).contains(&n) {
        return None;
    }
    let bounds = match (min, max) {
        (1, 1) => format!("exactly 1 {}", singular(noun)),
        (0, max) => format!("at most {max} {noun}"),
        (min, max) if min == max => format!("exactly {min} {noun}"),
        (min, max) => format!("{min} to {max} {noun}"),
    };
    Some(format!("{subject} must have {bounds}, not {n}"))
}

fn singular(noun: &str) -> String {
    match noun.strip_suffix("ies") {
        Some(stem) => format!("{stem}y"),
        None => noun.strip_suffix('s').unwrap_or(noun).to_string(),
    }
}

/// A number must be within `min..=max`.
pub(super) fn range(what: &str, value: i64, min: i64, max: i64) -> Option<String> {
    (!(min..=max).contains(&value))
        .then(|| format!("{what} must be between {min} and {max}, not {value}"))
}

/// A string must be one of `allowed`.
pub(super) fn one_of(what: &str, value: &str, allowed: &[&str]) -> Option<String> {
    (!allowed.contains(&value))
        .then(|| format!("{what} must be {}, not \"{value}\"", alternatives(allowed)))
}

/// `A, B or C`.
pub(super) fn alternatives(items: &[&str]) -> String {
    match items.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Checks a role ARN against `arn:aws(-[\w]+)*:iam::[0-9]{12}:role/.*` and its 1024 limit.
pub(super) fn role_arn(what: &str, value: &str) -> Option<String> {
    if let Some(too_long) = length(what, value, 1, 1024) {
        return Some(too_long);
    }
    (!is_role_arn(value)).then(|| {
        format!("{what} \"{value}\" is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    })
}

fn is_role_arn(value: &str) -> bool {
    let Some(rest) = value.strip_prefix("arn:aws") else {
        return false;
    };
    let Some((partition_suffix, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some(rest) = rest.strip_prefix("iam::") else {
        return false;
    };
    let Some((account, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some(path) = rest.strip_prefix("role/") else {
        return false;
    };
    is_partition_suffix(partition_suffix)
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        // `.` in the pattern does not cross a line break.
        && !path.contains(['\n', '\r'])
}

/// `(-[\w]+)*`: empty, or dash-separated non-empty word runs after a leading dash.
fn is_partition_suffix(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    let Some(body) = s.strip_prefix('-') else {
        return false;
    };
    body.split('-')
        .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_follow_the_botocore_pattern() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/Pipeline"));
        assert!(is_role_arn("arn:aws-us-gov:iam::123456789012:role/path/To-Role"));
        assert!(is_role_arn("arn:aws-cn:iam::123456789012:role/"));
        assert!(!is_role_arn("arn:aws:iam::12345678901:role/Short"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/Someone"));
        assert!(!is_role_arn("arn:aws-:iam::123456789012:role/X"));
        assert!(!is_role_arn("arn:azure:iam::123456789012:role/X"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:role/a\nb"));
    }

    #[test]
    fn token_messages_name_the_charset() {
        assert_eq!(
            token("stage name", "Build Stage", 1, 100, Charset::Name).as_deref(),
            Some(
                "stage name \"Build Stage\" may only contain letters, digits, \".\", \"@\", \"-\" and \"_\""
            )
        );
        assert_eq!(
            token("environment variable name", "A-B", 1, 128, Charset::EnvName).as_deref(),
            Some("environment variable name \"A-B\" may only contain letters, digits and \"_\"")
        );
        assert_eq!(
            token("bucket", "ab", 3, 63, Charset::Bucket).as_deref(),
            Some("bucket must be 3 to 63 characters long, not 2")
        );
        assert_eq!(
            token("name", "", 1, 100, Charset::Name).as_deref(),
            Some("name must not be empty")
        );
        assert_eq!(token("name", "ok.name@x-y_z", 1, 100, Charset::Name), None);
    }

    #[test]
    fn lengths_count_characters() {
        assert_eq!(length("value", "ééé", 1, 3), None);
        assert!(length("value", "éééé", 1, 3).is_some());
    }
}
