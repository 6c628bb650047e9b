//! Names the user may have meant: every error about a name that does not exist lists the
//! nearest ones that do.

/// `: the nearest are "A", "B"` (up to three, nearest first), or `: there are none` when
/// nothing of the kind exists.
pub(crate) fn nearest<'a>(wanted: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    let wanted_lower = wanted.to_lowercase();
    let mut ranked: Vec<(usize, &str)> =
        known.into_iter().map(|k| (distance(&wanted_lower, &k.to_lowercase()), k)).collect();
    if ranked.is_empty() {
        return ": there are none".to_owned();
    }
    ranked.sort();
    ranked.dedup_by(|a, b| a.1 == b.1);
    let names: Vec<String> = ranked.iter().take(3).map(|(_, k)| format!("\"{k}\"")).collect();
    match names.as_slice() {
        [one] => format!(": the only one is {one}"),
        many => format!(": the nearest are {}", many.join(", ")),
    }
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_names_come_first_and_case_does_not_count() {
        let stages = ["Source", "Build", "Test", "Approve", "Deploy"];
        assert_eq!(nearest("biuld", stages), ": the nearest are \"Build\", \"Deploy\", \"Source\"");
        assert_eq!(nearest("x", ["Only"]), ": the only one is \"Only\"");
        assert_eq!(nearest("x", []), ": there are none");
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
