//! Sorting a parcel's events among destinations by what each event says:
//! the logic the filter and the selector share, with no queues in it.
//!
//! Lines stay lines (each destination gets its own buffer of the lines
//! chosen for it); an event chosen for several destinations is copied. A
//! token is split so that its event counts as delivered once every
//! destination that got a copy has delivered it, and as failed when one
//! fails; [`Sorted::settle_unconnected`] then acknowledges what goes to a
//! queue no route connects, so a buffer upstream does not replay events
//! the configuration chose to drop.

use wishbone_runtime::{Batch, LinesBuilder, Parcel, Positions};

/// The destinations chosen for one event, one bit each (bit 0 is the first
/// destination). At least one bit is set.
pub type Choice = u64;

/// The most destinations a sorter has.
pub const MOST_DESTINATIONS: usize = Choice::BITS as usize;

/// One parcel per destination, in the order the destinations were given;
/// empty where nothing goes.
#[derive(Debug)]
pub struct Sorted(pub Vec<Parcel>);

/// Sorts `parcel` among `destinations` destinations; `choose` says, for
/// each event's bytes, where it goes.
pub fn sort(
    parcel: Parcel,
    destinations: usize,
    mut choose: impl FnMut(&[u8]) -> Choice,
) -> Sorted {
    debug_assert!((1..=MOST_DESTINATIONS).contains(&destinations));
    match parcel {
        Parcel::Lines(mut lines) => {
            let mut builders: Vec<Option<LinesBuilder>> = (0..destinations).map(|_| None).collect();
            // Which of the block's events each destination carries, for
            // its share of the token: a failed share fails only those.
            let mut carried: Option<Vec<Positions>> =
                lines.ack().map(|_| vec![Positions::new(); destinations]);
            for (index, line) in lines.iter().enumerate() {
                for_each_bit(choose(line), destinations, |destination| {
                    builders[destination]
                        .get_or_insert_with(|| {
                            LinesBuilder::new(
                                lines.delimiter().clone(),
                                lines.data().len(),
                                lines.len(),
                            )
                        })
                        .push_from(&lines, index);
                    if let Some(carried) = &mut carried {
                        carried[destination].push(index);
                    }
                });
            }
            let mut shares = lines.take_ack().zip(carried).map(|(ack, carried)| {
                let parts = carried
                    .into_iter()
                    .filter(|part| !part.is_empty())
                    .collect();
                ack.parts(parts).into_iter()
            });
            Sorted(
                builders
                    .into_iter()
                    .map(|builder| match builder {
                        None => Parcel::default(),
                        Some(builder) => {
                            let sorted = builder.finish();
                            match shares.as_mut().and_then(Iterator::next) {
                                Some(share) => Parcel::Lines(sorted.with_ack(share)),
                                None => Parcel::Lines(sorted),
                            }
                        }
                    })
                    .collect(),
            )
        }
        Parcel::Events(batch) => {
            let mut sorted: Vec<Batch> = vec![Batch::new(); destinations];
            for event in batch {
                let choice = choose(event.data()) & mask(destinations);
                match (choice.count_ones(), event.ack()) {
                    (1, _) => sorted[choice.trailing_zeros() as usize].push(event),
                    (_, None) => for_each_bit(choice, destinations, |destination| {
                        sorted[destination].push(event.clone())
                    }),
                    (copies, Some(ack)) => {
                        let mut shares = ack.copies(copies as usize).into_iter();
                        let plain = event.with_data(event.data().clone());
                        drop(event);
                        for_each_bit(choice, destinations, |destination| {
                            if let Some(share) = shares.next() {
                                sorted[destination].push(plain.clone().with_ack(share));
                            }
                        });
                    }
                }
            }
            Sorted(sorted.into_iter().map(Parcel::Events).collect())
        }
    }
}

impl Sorted {
    /// Acknowledges the events for destinations that are not `connected`:
    /// they are handled by being dropped.
    pub fn settle_unconnected(&self, connected: impl Fn(usize) -> bool) {
        for (destination, parcel) in self.0.iter().enumerate() {
            if !connected(destination) {
                parcel.acknowledge();
            }
        }
    }
}

fn mask(destinations: usize) -> Choice {
    match destinations {
        MOST_DESTINATIONS => Choice::MAX,
        fewer => (1 << fewer) - 1,
    }
}

fn for_each_bit(choice: Choice, destinations: usize, mut each: impl FnMut(usize)) {
    let mut bits = choice & mask(destinations);
    while bits != 0 {
        each(bits.trailing_zeros() as usize);
        bits &= bits - 1;
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use wishbone_runtime::ack::{Outcome, issuer};
    use wishbone_runtime::{Event, Lines};

    use super::*;

    fn numbered(count: usize) -> Vec<Event> {
        (0..count).map(|n| Event::new(n.to_string())).collect()
    }

    fn texts(parcel: &Parcel) -> Vec<String> {
        parcel
            .clone()
            .into_events()
            .iter()
            .map(|event| String::from_utf8_lossy(event.data()).into_owned())
            .collect()
    }

    /// Even numbers to 0, multiples of three to 1 too, the rest to 2.
    fn by_number(data: &[u8]) -> Choice {
        let n: u32 = std::str::from_utf8(data).unwrap().parse().unwrap();
        match (n.is_multiple_of(2), n.is_multiple_of(3)) {
            (false, false) => 0b100,
            (even, three) => u64::from(even) | (u64::from(three) << 1),
        }
    }

    #[test]
    fn lines_and_events_are_sorted_alike_with_copies() {
        let lines = Parcel::Lines(Lines::encode(&numbered(7), &Bytes::from_static(b"\n")));
        let events = Parcel::Events(numbered(7));
        for parcel in [lines, events] {
            let Sorted(sorted) = sort(parcel, 3, by_number);
            assert_eq!(texts(&sorted[0]), ["0", "2", "4", "6"]);
            assert_eq!(texts(&sorted[1]), ["0", "3", "6"]);
            assert_eq!(texts(&sorted[2]), ["1", "5"]);
        }
    }

    #[test]
    fn a_copied_event_is_delivered_once_every_copy_is() {
        let (issuer, mut replies) = issuer();
        let events: Batch = numbered(7)
            .into_iter()
            .enumerate()
            .map(|(id, event)| event.with_ack(issuer.issue(id as u64)))
            .collect();
        let Sorted(sorted) = sort(Parcel::Events(events), 3, by_number);
        sorted[0].acknowledge();
        sorted[2].acknowledge();
        let mut heard = Vec::new();
        while let Ok(reply) = replies.try_recv() {
            heard.push(reply);
        }
        heard.sort_by_key(|(id, _)| *id);
        // 0 and 6 wait for their copy in destination 1; 3 is only there.
        let acknowledged = [
            (1, Outcome::Acknowledged),
            (2, Outcome::Acknowledged),
            (4, Outcome::Acknowledged),
            (5, Outcome::Acknowledged),
        ];
        assert_eq!(heard, acknowledged);
        drop(sorted);
        let mut rest: Vec<_> = std::iter::from_fn(|| replies.try_recv().ok()).collect();
        rest.sort_by_key(|(id, _)| *id);
        assert_eq!(
            rest,
            [
                (0, Outcome::Failed),
                (3, Outcome::Failed),
                (6, Outcome::Failed)
            ]
        );
    }

    #[test]
    fn a_block_is_delivered_once_every_destination_it_reached_delivers() {
        let (issuer, mut replies) = issuer();
        let lines =
            Lines::encode(&numbered(4), &Bytes::from_static(b"\n")).with_ack(issuer.issue(9));
        // Nothing goes to destination 1.
        let Sorted(sorted) = sort(Parcel::Lines(lines), 3, |data| {
            if data == b"1" { 0b100 } else { 0b001 }
        });
        assert!(sorted[1].is_empty());
        sorted[0].acknowledge();
        assert!(replies.try_recv().is_err());
        let sorted = Sorted(sorted);
        sorted.settle_unconnected(|destination| destination != 2);
        assert_eq!(replies.try_recv(), Ok((9, Outcome::Acknowledged)));
    }
}
