use std::collections::VecDeque;

/// Lines waiting for carbon, bounded: when full, the oldest are dropped and
/// counted, so a long outage costs old points, never unbounded memory.
#[derive(Debug)]
pub struct LineBuffer {
    lines: VecDeque<String>,
    capacity: usize,
    dropped: u64,
}

impl LineBuffer {
    /// A buffer of at most `capacity` lines (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            lines: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    /// Adds lines at the back, dropping from the front beyond the capacity.
    pub fn extend(&mut self, lines: impl IntoIterator<Item = String>) {
        for line in lines {
            if self.lines.len() == self.capacity {
                self.lines.pop_front();
                self.dropped += 1;
            }
            self.lines.push_back(line);
        }
    }

    /// The waiting lines joined, oldest first, ready to write.
    pub fn joined(&self) -> String {
        let mut text = String::with_capacity(self.lines.iter().map(|line| line.len() + 1).sum());
        for line in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Everything was written.
    pub fn clear(&mut self) {
        self.lines.clear();
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Lines dropped so far because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_lines_go_first_and_are_counted() {
        let mut buffer = LineBuffer::new(3);
        buffer.extend((0..5).map(|i| format!("a {i} 0")));
        assert_eq!(buffer.len(), 3);
        assert_eq!(buffer.dropped(), 2);
        assert_eq!(buffer.joined(), "a 2 0\na 3 0\na 4 0\n");
        buffer.clear();
        assert!(buffer.is_empty());
    }
}
