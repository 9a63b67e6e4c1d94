//! "Did you mean ...?" hints for misspelled keys, kinds and names.

/// The candidate closest to `input` by edit distance, if it is close enough
/// to be a plausible typo.
pub(crate) fn closest<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let input_lower = input.to_ascii_lowercase();
    candidates
        .iter()
        .map(|&candidate| (edit_distance(&input_lower, &candidate.to_ascii_lowercase()), candidate))
        .filter(|&(distance, candidate)| distance <= candidate.len().max(input.len()).div_ceil(3))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// " (did you mean `x`?)" or nothing, to append to a message.
pub(crate) fn did_you_mean(input: &str, candidates: &[&str]) -> String {
    match closest(input, candidates) {
        Some(candidate) => format!(" (did you mean `{candidate}`?)"),
        None => String::new(),
    }
}

/// "`a`, `b` or `c`", for messages that name the valid choices.
pub(crate) fn one_of(candidates: &[&str]) -> String {
    match candidates {
        [] => String::new(),
        [only] => format!("`{only}`"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|c| format!("`{c}`")).collect();
            format!("{} or `{last}`", init.join(", "))
        }
    }
}

/// Edit distance (optimal string alignment): insertions, deletions,
/// substitutions and swaps of two neighbours cost one each.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j].
    let mut rows = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("restart", "restart"), 0);
        assert_eq!(edit_distance("restrat", "restart"), 1);
        assert_eq!(edit_distance("failed", "failure"), 3);
        assert_eq!(edit_distance("rstart", "restart"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn closest_candidate() {
        let keys = ["restart", "max", "on", "stop_timeout"];
        assert_eq!(closest("restat", &keys), Some("restart"));
        assert_eq!(closest("stop_timout", &keys), Some("stop_timeout"));
        assert_eq!(closest("Max", &keys), Some("max"));
        assert_eq!(closest("banana", &keys), None);
        assert_eq!(closest("deamon", &["daemon", "task"]), Some("daemon"));
        assert_eq!(closest("tsk", &["daemon", "task"]), Some("task"));
    }

    #[test]
    fn messages() {
        assert_eq!(did_you_mean("mx", &["max"]), " (did you mean `max`?)");
        assert_eq!(did_you_mean("zzzzzz", &["max"]), "");
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
        assert_eq!(one_of(&[]), "");
    }
}
