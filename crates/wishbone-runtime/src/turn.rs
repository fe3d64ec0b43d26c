//! Taking turns on a shared thread: a module whose work per event may be
//! long (a jq condition or program runs up to its budget per event) stops
//! working through a parcel once a turn is over, passes on what it has
//! done, and lets the other modules of its thread run before it takes up
//! the rest. A quick module never looks at the clock.

use std::time::{Duration, Instant};

use crate::Parcel;

/// How long a module keeps its thread before letting others run.
pub const TURN: Duration = Duration::from_millis(2);

/// One turn of a module's work.
#[derive(Clone, Copy, Debug)]
pub struct Turn {
    /// When it ends; `None` for a module that does not take turns.
    ends: Option<Instant>,
}

impl Turn {
    /// A turn from now, if the module takes turns (`paced`); otherwise one
    /// that never ends.
    pub fn start(paced: bool) -> Self {
        Self {
            ends: paced.then(|| Instant::now() + TURN),
        }
    }

    /// Whether the turn is over: the module passes on what it has done.
    pub fn is_over(&self) -> bool {
        self.ends.is_some_and(|ends| Instant::now() >= ends)
    }
}

/// Hands `each` the events of `parcel`, in order: every one, or, when
/// `paced`, as many as a turn allows (at least one). Returns how many.
pub fn each_in_turn(parcel: &Parcel, paced: bool, mut each: impl FnMut(&[u8])) -> usize {
    let turn = Turn::start(paced);
    let mut count = 0;
    let mut take = |data: &[u8]| {
        each(data);
        count += 1;
        !turn.is_over()
    };
    match parcel {
        Parcel::Lines(lines) => lines.iter().take_while(|line| take(line)).for_each(drop),
        Parcel::Events(batch) => batch
            .iter()
            .take_while(|event| take(event.data()))
            .for_each(drop),
    }
    count
}

/// What `f` makes of each event of `parcel`, in order: every one, or, when
/// `paced`, as many as a turn allows (at least one). With `workers` above
/// 1 and `paced` (a module whose work per event is long), the events are
/// shared out among the process's pool of that many threads
/// ([`crate::workers::Pool::map_in_turn`]); the results come back in the
/// events' order.
pub fn map_in_turn<T: Send>(
    parcel: &Parcel,
    paced: bool,
    workers: usize,
    f: impl Fn(&[u8]) -> T + Sync,
) -> Vec<T> {
    let pool = paced.then(|| crate::workers::pool(workers)).flatten();
    map_on(pool, parcel, paced, f)
}

/// How many events a parcel of a quick module needs before they are shared
/// out to the pool: below it, waking the pool's threads costs about what
/// they would save on events of a microsecond (a syslog line decoded).
pub const SHARED_FROM: usize = 256;

/// What `f` makes of every event of `parcel`, in order, for a module whose
/// work per event is short but not trivial (decoding): with `workers`
/// above 1 and at least [`SHARED_FROM`] events, shared out among the
/// process's pool of that many threads.
pub fn map_shared<T: Send>(
    parcel: &Parcel,
    workers: usize,
    f: impl Fn(&[u8]) -> T + Sync,
) -> Vec<T> {
    let pool = (parcel.len() >= SHARED_FROM)
        .then(|| crate::workers::pool(workers))
        .flatten();
    map_on(pool, parcel, false, f)
}

/// What `f` makes of the events of `parcel`, in order, as many as a turn
/// allows when `paced`: on `pool` if there is one, else on this thread.
fn map_on<T: Send>(
    pool: Option<std::sync::Arc<crate::workers::Pool>>,
    parcel: &Parcel,
    paced: bool,
    f: impl Fn(&[u8]) -> T + Sync,
) -> Vec<T> {
    let Some(pool) = pool else {
        let mut out = Vec::with_capacity(parcel.len());
        each_in_turn(parcel, paced, |data| out.push(f(data)));
        return out;
    };
    pool.map_in_turn(&events_of(parcel), &f, Turn::start(paced))
}

fn events_of(parcel: &Parcel) -> Vec<&[u8]> {
    match parcel {
        Parcel::Lines(lines) => lines.iter().collect(),
        Parcel::Events(batch) => batch.iter().map(|event| &event.data()[..]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_ends_after_its_time_and_an_unpaced_one_never() {
        let turn = Turn::start(true);
        assert!(!turn.is_over());
        std::thread::sleep(TURN + Duration::from_millis(1));
        assert!(turn.is_over());
        assert!(!Turn::start(false).is_over());
    }

    #[test]
    fn a_paced_parcel_is_handed_out_until_the_turn_ends() {
        let parcel = Parcel::Events((0..10).map(|n| crate::Event::new(n.to_string())).collect());
        let mut seen = Vec::new();
        let slow = |data: &[u8]| {
            seen.push(data.to_vec());
            std::thread::sleep(TURN);
        };
        assert_eq!(each_in_turn(&parcel, true, slow), 1);
        assert_eq!(seen, vec![b"0".to_vec()]);
        assert_eq!(
            each_in_turn(&parcel, false, |_| std::thread::sleep(TURN)),
            10
        );
    }

    #[test]
    fn work_shared_among_threads_comes_back_in_order() {
        let parcel = Parcel::Events(
            (0..1000)
                .map(|n| crate::Event::new(n.to_string()))
                .collect(),
        );
        let parse = |data: &[u8]| String::from_utf8_lossy(data).parse::<usize>().unwrap();
        let all = map_in_turn(&parcel, true, 3, parse);
        assert!(!all.is_empty());
        assert!(
            all.iter()
                .enumerate()
                .all(|(index, number)| index == *number)
        );
        assert_eq!(map_in_turn(&parcel, false, 3, parse).len(), 1000);
        // Slow events: a turn ends after a round or two, in order still.
        let slow = map_in_turn(&parcel, true, 2, |data| {
            std::thread::sleep(TURN);
            parse(data)
        });
        // One event a thread that started before the turn ended.
        assert!((1..=2).contains(&slow.len()), "{}", slow.len());
        assert!(
            slow.iter()
                .enumerate()
                .all(|(index, number)| index == *number)
        );
    }
}
