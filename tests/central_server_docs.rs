//! `docs/central-server.md` shows the shipped central-server bootstrap as
//! it is (`bootstrap/central_server.yaml`, which `bootstrap_files.rs`
//! checks), so that the page and the file cannot drift apart.

#[test]
fn the_page_shows_the_shipped_bootstrap_file() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/central-server.md")).unwrap();
    let file = std::fs::read_to_string(root.join("bootstrap/central_server.yaml")).unwrap();
    let body: String = file
        .lines()
        .skip_while(|line| line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(
        page.contains(&format!("```yaml\n{body}```")),
        "the page's bootstrap differs from the file"
    );
}
