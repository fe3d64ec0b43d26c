//! `docs/architecture.md`'s table of crates and what each depends on
//! within the workspace is what `cargo metadata` says, both ways.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

type Edges = BTreeMap<String, BTreeSet<String>>;

/// The table's rows: `| \`crate\` | \`a\`, \`b\` |` or `... | nothing |`.
fn documented() -> Edges {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .unwrap();
    let table = page
        .split("| crate | depends on, within the workspace |")
        .nth(1)
        .expect("the page has the table");
    table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = |cell: &str| cell.trim_matches('`').to_string();
            let depends = match cells[2] {
                "nothing" => BTreeSet::new(),
                list => list.split(',').map(|cell| name(cell.trim())).collect(),
            };
            (name(cells[1]), depends)
        })
        .collect()
}

/// What `cargo metadata` says: each package's normal dependencies that
/// are packages of the workspace (the end-to-end test package left out).
fn actual() -> Edges {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let names: BTreeSet<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    packages
        .iter()
        .filter(|package| package["name"] != "wishbone-e2e")
        .map(|package| {
            let depends = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|dependency| dependency["kind"].is_null())
                .filter_map(|dependency| dependency["name"].as_str())
                .filter(|name| names.contains(name))
                .map(str::to_string)
                .collect();
            (package["name"].as_str().unwrap().to_string(), depends)
        })
        .collect()
}

#[test]
fn the_crate_table_is_what_cargo_says() {
    let (documented, actual) = (documented(), actual());
    assert_eq!(
        documented.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "the crates"
    );
    for (name, depends) in &actual {
        assert_eq!(&documented[name], depends, "what `{name}` depends on");
    }
}
