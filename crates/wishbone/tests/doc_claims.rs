//! Claims the documentation must not drift from: what each signal does is
//! said the same way on every page (SIGHUP reloads; it stops nothing), in
//! every module's `show --docs` and in the command's help.

use std::path::{Path, PathBuf};

/// The README and every page of `docs/`, with their names.
fn pages() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut paths: Vec<PathBuf> = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ending| ending == "md") {
            paths.push(path);
        }
    }
    let mut pages: Vec<(String, String)> = paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path.display().to_string(), text)
        })
        .collect();
    for kind in wishbone::builtin() {
        pages.push((format!("show --docs {}", kind.name), kind.docs.to_string()));
    }
    use clap::CommandFactory;
    let help = wishbone::Cli::command().render_long_help().to_string();
    pages.push(("wishbone --help".into(), help));
    pages
}

/// The sentences of a text, with its lines joined.
fn sentences(text: &str) -> Vec<String> {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.split(". ").map(str::to_string).collect()
}

/// A sentence that makes SIGHUP stop the server: "SIGHUP stops", or one
/// that names SIGHUP and a stop and says nothing of a reload.
fn says_sighup_stops(sentence: &str) -> bool {
    let lower = sentence.to_lowercase();
    lower.contains("sighup stops")
        || (sentence.contains("SIGHUP") && lower.contains("stop") && !lower.contains("reload"))
}

#[test]
fn no_page_says_that_sighup_stops_the_server() {
    assert!(says_sighup_stops(
        "SIGINT, SIGTERM or SIGHUP stops the inputs"
    ));
    assert!(says_sighup_stops(
        "No signal reloads anything: SIGHUP stops the server"
    ));
    assert!(!says_sighup_stops("SIGHUP reloads; SIGTERM stops"));
    let mut stale = Vec::new();
    for (page, text) in pages() {
        for sentence in sentences(&text) {
            if says_sighup_stops(&sentence) {
                stale.push(format!("{page}: {sentence}"));
            }
        }
    }
    assert!(stale.is_empty(), "SIGHUP reloads:\n{}", stale.join("\n"));
}
