//! Where each module goes on the page: columns by longest path from the
//! inputs, rows ordered to keep routes short. Plain logic, tested here.

use serde::Serialize;

/// A module's place: its column (left to right, along the flow) and its
/// row within the column (top to bottom).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Position {
    pub column: usize,
    pub row: usize,
}

/// Places `count` modules linked by `links` (`from`, `to` indices). A
/// module's column is the longest chain of routes leading to it, so every
/// route points right; a route closing a cycle is left out of that count.
/// Within a column, modules are ordered by the mean row of the modules
/// feeding them, then by their order in the bootstrap file.
pub fn layout(count: usize, links: &[(usize, usize)]) -> Vec<Position> {
    let forward = forward_links(count, links);
    let columns = longest_paths(count, &forward);
    let mut rows = vec![0usize; count];
    let width = columns.iter().max().map_or(0, |last| last + 1);
    for column in 0..width {
        let mut members: Vec<(f64, usize)> = (0..count)
            .filter(|&module| columns[module] == column)
            .map(|module| {
                let feeding: Vec<f64> = forward
                    .iter()
                    .filter(|&&(from, to)| to == module && columns[from] < column)
                    .map(|&(from, _)| rows[from] as f64)
                    .collect();
                let mean = if feeding.is_empty() {
                    f64::MAX
                } else {
                    feeding.iter().sum::<f64>() / feeding.len() as f64
                };
                (mean, module)
            })
            .collect();
        members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (row, (_, module)) in members.into_iter().enumerate() {
            rows[module] = row;
        }
    }
    (0..count)
        .map(|module| Position {
            column: columns[module],
            row: rows[module],
        })
        .collect()
}

/// The links without self-loops and without those closing a cycle (found
/// by a depth-first walk in bootstrap order).
fn forward_links(count: usize, links: &[(usize, usize)]) -> Vec<(usize, usize)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; count];
    let mut forward = Vec::new();
    for start in 0..count {
        if marks[start] != Mark::New {
            continue;
        }
        // An explicit stack of (module, next link to look at).
        let mut stack = vec![(start, 0usize)];
        marks[start] = Mark::Open;
        while let Some((module, next)) = stack.last_mut() {
            let module = *module;
            match links[*next..].iter().position(|&(from, _)| from == module) {
                Some(offset) => {
                    let index = *next + offset;
                    *next = index + 1;
                    let to = links[index].1;
                    match marks[to] {
                        Mark::Open => {} // closes a cycle (or a self-loop)
                        Mark::Done => forward.push((module, to)),
                        Mark::New => {
                            forward.push((module, to));
                            marks[to] = Mark::Open;
                            stack.push((to, 0));
                        }
                    }
                }
                None => {
                    marks[module] = Mark::Done;
                    stack.pop();
                }
            }
        }
    }
    forward
}

/// The longest chain of links leading to each module, over acyclic links.
fn longest_paths(count: usize, links: &[(usize, usize)]) -> Vec<usize> {
    let mut waiting = vec![0usize; count];
    for &(_, to) in links {
        waiting[to] += 1;
    }
    let mut ready: Vec<usize> = (0..count).filter(|&m| waiting[m] == 0).collect();
    let mut columns = vec![0usize; count];
    while let Some(module) = ready.pop() {
        for &(from, to) in links.iter().filter(|&&(from, _)| from == module) {
            columns[to] = columns[to].max(columns[from] + 1);
            waiting[to] -= 1;
            if waiting[to] == 0 {
                ready.push(to);
            }
        }
    }
    columns
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(column: usize, row: usize) -> Position {
        Position { column, row }
    }

    #[test]
    fn scenario_three_reads_left_to_right() {
        // input, roundrobin, funnel, output_1, output_2
        let links = [(0, 1), (1, 2), (1, 4), (4, 2), (2, 3)];
        let places = layout(5, &links);
        assert_eq!(places[0], place(0, 0));
        assert_eq!(places[1], place(1, 0));
        assert_eq!(places[4], place(2, 0), "output_2 after the round robin");
        assert_eq!(
            places[2],
            place(3, 0),
            "the funnel after output_2's failed queue"
        );
        assert_eq!(places[3], place(4, 0));
    }

    #[test]
    fn every_route_points_right_unless_it_closes_a_cycle() {
        let links = [(0, 1), (1, 2), (2, 0), (2, 2), (3, 1)];
        let places = layout(4, &links);
        let backwards: Vec<_> = links
            .iter()
            .filter(|&&(from, to)| places[to].column <= places[from].column)
            .collect();
        assert_eq!(backwards, [&(2, 0), &(2, 2)], "{places:?}");
    }

    #[test]
    fn thirty_modules_get_thirty_places() {
        // an input, a round robin, 28 outputs
        let links: Vec<_> = std::iter::once((0, 1))
            .chain((2..30).map(|output| (1, output)))
            .collect();
        let places = layout(30, &links);
        let mut distinct = places.clone();
        distinct.sort_by_key(|p| (p.column, p.row));
        distinct.dedup();
        assert_eq!(distinct.len(), 30);
        assert_eq!(
            places[29],
            place(2, 27),
            "outputs stacked in bootstrap order"
        );
    }

    #[test]
    fn rows_follow_the_modules_feeding_them() {
        // two inputs in column 0; the second's output is listed first
        let links = [(0, 3), (1, 2)];
        let places = layout(4, &links);
        assert_eq!(places[3], place(1, 0), "fed by row 0");
        assert_eq!(places[2], place(1, 1), "fed by row 1");
    }
}
