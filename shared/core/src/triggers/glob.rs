//! The glob patterns of trigger filters, as CodePipeline documents them (Java's `glob:` path
//! matcher): `*` within a path segment, `**` across segments, `?` one character, `[...]` a set
//! (`!` negates, `a-z` ranges), `{a,b}` alternatives, `\` escapes.

/// Whether `text` matches `pattern` as a whole.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    match_at(&p, &t)
}

fn match_at(p: &[char], t: &[char]) -> bool {
    let Some((&c, rest)) = p.split_first() else { return t.is_empty() };
    match c {
        '*' if rest.first() == Some(&'*') => {
            let rest = &rest[1..];
            (0..=t.len()).any(|i| match_at(rest, &t[i..]))
        }
        '*' => {
            let within = t.iter().position(|&x| x == '/').unwrap_or(t.len());
            (0..=within).any(|i| match_at(rest, &t[i..]))
        }
        '?' => t.first().is_some_and(|&x| x != '/') && match_at(rest, &t[1..]),
        '[' => match set(rest) {
            Some((accepts, after)) => {
                t.first().is_some_and(|&x| x != '/' && accepts(x)) && match_at(after, &t[1..])
            }
            None => t.first() == Some(&'[') && match_at(rest, &t[1..]),
        },
        '{' => match group(rest) {
            Some((alternatives, after)) => alternatives.iter().any(|alt| {
                let mut joined = alt.clone();
                joined.extend_from_slice(after);
                match_at(&joined, t)
            }),
            None => t.first() == Some(&'{') && match_at(rest, &t[1..]),
        },
        '\\' => match rest.split_first() {
            Some((&escaped, after)) => t.first() == Some(&escaped) && match_at(after, &t[1..]),
            None => t == ['\\'],
        },
        _ => t.first() == Some(&c) && match_at(rest, &t[1..]),
    }
}

type Accepts = Box<dyn Fn(char) -> bool>;

/// A `[...]` set after its `[`: what it accepts and the pattern after its `]`.
fn set(p: &[char]) -> Option<(Accepts, &[char])> {
    let end = p.iter().skip(1).position(|&c| c == ']')? + 1;
    let (body, after) = (&p[..end], &p[end + 1..]);
    let (negated, body) = match body.first() {
        Some('!') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == '-' {
            ranges.push((body[i], body[i + 2]));
            i += 3;
        } else {
            ranges.push((body[i], body[i]));
            i += 1;
        }
    }
    Some((Box::new(move |c| ranges.iter().any(|&(a, b)| a <= c && c <= b) != negated), after))
}

/// A `{a,b}` group after its `{`: the alternatives and the pattern after its `}`.
fn group(p: &[char]) -> Option<(Vec<Vec<char>>, &[char])> {
    let end = p.iter().position(|&c| c == '}')?;
    let alternatives = p[..end].split(|&c| c == ',').map(<[char]>::to_vec).collect();
    Some((alternatives, &p[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn one_star_stays_in_its_segment_two_cross_them() {
        assert!(matches("feature/*", "feature/login"));
        assert!(!matches("feature/*", "feature/login/v2"));
        assert!(matches("feature/**", "feature/login/v2"));
        assert!(matches("**/README.md", "docs/api/README.md"));
        assert!(matches("common/**/*.js", "common/ui/button.js"));
        assert!(!matches("common/**/*.js", "common/ui/button.ts"));
        assert!(matches("*.java", "Main.java"));
        assert!(!matches("*.java", "src/Main.java"));
    }

    #[test]
    fn question_sets_groups_and_escapes() {
        assert!(matches("foo.?", "foo.c"));
        assert!(!matches("foo.?", "foo.cc"));
        assert!(matches("*.{java,class}", "A.class"));
        assert!(!matches("*.{java,class}", "A.kt"));
        assert!(matches("release-v[0-9]", "release-v7"));
        assert!(!matches("release-v[!0-9]", "release-v7"));
        assert!(matches(r"what\*", "what*"));
        assert!(!matches(r"what\*", "whatever"));
        assert!(matches("mainline", "mainline"));
        assert!(!matches("main", "mainline"));
    }
}
