//! Where each key of a bootstrap file is: its line and column, by its path
//! of keys (`modules`, `input`, `arguments`, `port`) or list positions
//! (`routingtable`, `1`), so that a problem found in the parsed document
//! names its place in the file.
//!
//! serde_yaml gives values without positions; yaml-rust2's parser gives
//! every event with its mark, and the keys' paths are followed here.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A line and a column, both from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1.
    pub column: usize,
}

/// The place of every key and list item of one file.
#[derive(Debug, Default)]
pub(crate) struct Locations {
    places: HashMap<Vec<String>, Location>,
}

impl Locations {
    /// Reads `text`; a file the parser refuses gives what was read before
    /// the problem (its syntax error is reported with its own place).
    pub(crate) fn of(text: &str) -> Self {
        let mut walker = Walker::default();
        let _ = Parser::new_from_str(text).load(&mut walker, false);
        Self {
            places: walker.places,
        }
    }

    /// Where `path` is, or else the nearest enclosing key that is known.
    pub(crate) fn find(&self, path: &[&str]) -> Option<Location> {
        (1..=path.len()).rev().find_map(|length| {
            let key: Vec<String> = path[..length].iter().map(|part| part.to_string()).collect();
            self.places.get(&key).copied()
        })
    }
}

/// What the walk is inside of.
enum Frame {
    /// A mapping, and whether the next node is a value (its key on the path).
    Mapping { value_next: bool },
    /// A sequence, and the index of the next item.
    Sequence { next: usize },
}

#[derive(Default)]
struct Walker {
    frames: Vec<Frame>,
    path: Vec<String>,
    places: HashMap<Vec<String>, Location>,
}

impl Walker {
    /// A node begins: a key of a mapping (a scalar), a value, or an item.
    /// Returns whether the node is a mapping's key.
    fn begin(&mut self, key: Option<&str>, mark: Marker) -> bool {
        let at = Location {
            line: mark.line(),
            column: mark.col() + 1,
        };
        match self.frames.last_mut() {
            Some(Frame::Mapping { value_next }) if !*value_next => {
                *value_next = true;
                self.path.push(key.unwrap_or("?").to_string());
                self.places.entry(self.path.clone()).or_insert(at);
                true
            }
            Some(Frame::Sequence { next }) => {
                self.path.push(next.to_string());
                *next += 1;
                self.places.entry(self.path.clone()).or_insert(at);
                false
            }
            _ => false,
        }
    }

    /// A node (a value or an item) ended.
    fn end(&mut self) {
        match self.frames.last_mut() {
            Some(Frame::Mapping { value_next }) if *value_next => {
                *value_next = false;
                self.path.pop();
            }
            Some(Frame::Sequence { .. }) => {
                self.path.pop();
            }
            _ => {}
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            // A scalar or an alias that is not a key is a whole value.
            Event::Scalar(text, ..) if !self.begin(Some(&text), mark) => self.end(),
            Event::Alias(_) if !self.begin(None, mark) => self.end(),
            Event::MappingStart(..) => {
                self.begin(None, mark);
                self.frames.push(Frame::Mapping { value_next: false });
            }
            Event::SequenceStart(..) => {
                self.begin(None, mark);
                self.frames.push(Frame::Sequence { next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.frames.pop();
                self.end();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "modules:\n  input:\n    module: wishbone.input.tcp\n    arguments:\n      listen_port: 1234\n  out: {module: wishbone.output.tcp, arguments: {port: 1}}\nroutingtable:\n  - input.outbox -> out.inbox\n  - input.outbx -> out.inbox\n";

    fn at(line: usize, column: usize) -> Option<Location> {
        Some(Location { line, column })
    }

    #[test]
    fn block_and_flow_keys_and_list_items_have_their_places() {
        let places = Locations::of(TEXT);
        assert_eq!(places.find(&["modules", "input"]), at(2, 3));
        assert_eq!(
            places.find(&["modules", "input", "arguments", "listen_port"]),
            at(5, 7)
        );
        assert_eq!(places.find(&["modules", "out", "module"]), at(6, 9));
        assert_eq!(
            places.find(&["modules", "out", "arguments", "port"]),
            at(6, 50)
        );
        assert_eq!(places.find(&["routingtable", "1"]), at(9, 5));
        assert_eq!(
            places.find(&["modules", "out", "arguments", "missing"]),
            at(6, 38),
            "the nearest known key"
        );
        assert_eq!(places.find(&["nothing"]), None);
    }

    #[test]
    fn a_broken_file_keeps_what_came_before_the_break() {
        let places = Locations::of("modules:\n  input: {module: x\n  broken: [\n");
        assert_eq!(places.find(&["modules", "input"]), at(2, 3));
    }
}
