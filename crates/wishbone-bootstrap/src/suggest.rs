/// The candidate nearest to `word`, if one is near enough to be a likely
/// typo; else one of the same words in another order (`max_batch_events`
/// for `batch_max_events`); else the longest candidate of three letters or
/// more that `word`
/// holds or that holds `word`, as another program's name for it
/// (`listen_port` for `port`, `max_line` for `max_line_length`).
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let limit = (word.len() / 4).max(2);
    let typo = candidates
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), *candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate);
    let words = |text: &str| {
        let mut words: Vec<String> = text.split(['_', '.', '-']).map(str::to_string).collect();
        words.sort();
        words
    };
    typo.or_else(|| {
        candidates
            .iter()
            .find(|candidate| words(candidate) == words(word))
            .copied()
    })
    .or_else(|| {
        candidates
            .iter()
            .filter(|candidate| {
                candidate.len().min(word.len()) >= 3
                    && (word.contains(**candidate) || candidate.contains(word))
            })
            .max_by_key(|candidate| candidate.len())
            .copied()
    })
}

/// `; did you mean `x`?` or nothing.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    nearest(word, candidates)
        .map(|found| format!("; did you mean `{found}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_typo_and_ignores_strangers() {
        let kinds = ["wishbone.flow.roundrobin", "wishbone.flow.funnel"];
        assert_eq!(
            nearest("wishbone.flow.roundrobn", kinds),
            Some("wishbone.flow.roundrobin")
        );
        assert_eq!(nearest("kafka", kinds), None);
        let arguments = ["address", "port", "max_line_length", "reuse_port"];
        assert_eq!(nearest("prot", arguments), Some("port"));
        assert_eq!(nearest("listen_port", arguments), Some("port"));
        assert_eq!(nearest("max_line", arguments), Some("max_line_length"));
        assert_eq!(nearest("to", arguments), None, "too short to tell");
        assert_eq!(
            nearest("max_batch_events", ["batch_max_bytes", "batch_max_events"]),
            Some("batch_max_events")
        );
    }
}
