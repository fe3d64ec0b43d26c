//! What a listening input knows of each client it serves: when the client
//! last made progress (completed a frame: a line, a RELP frame), and
//! whether a frame it began is still incomplete. Two decisions follow.
//!
//! - A frame begun and not completed within `frame_timeout` closes the
//!   client (`module.<name>.timed_out`): a client sending a byte a second
//!   cannot hold its slot for ever. A quiet client that completes its
//!   frames (an rsyslog whose RELP session stays open for hours) is never
//!   closed for being quiet.
//! - When every slot is taken and a new client waits, the client whose
//!   progress is oldest makes room (`module.<name>.evicted`): first one
//!   that is in the middle of a frame or never completed one, oldest first;
//!   only when there has been none for [`MIN_IDLE`], the one quiet longest.
//!   A client connected or heard from less than [`MIN_IDLE`] ago is never
//!   chosen, so a client that does its work is served however the other
//!   slots churn.

/// What `show --docs` of each listening input says of its slots and of
/// `frame_timeout`, for `concat!`.
#[macro_export]
macro_rules! slots_docs {
    () => {
        "  frame_timeout    seconds a client may take to complete a frame it began,
                   a line or a RELP frame (30; 0: no limit); then it is
                   closed, its unfinished frame counted as incomplete.
                   A client quiet between whole frames is never closed
                   for it

Slots
  When all max_connections slots are taken and another client connects,
  the client whose progress is oldest is closed to make room: first one
  in the middle of a frame, or that never completed one (a TLS handshake
  included), oldest first; when there is none, the one quiet longest.
  A client connected or heard from within the last second is never
  chosen, so a working client is served however often idle ones come
  back. Counted in module.<name>.evicted; closing for frame_timeout in
  module.<name>.timed_out.
"
    };
}

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use wishbone_runtime::Counted;

/// A client newer than this, or heard from within it, is never evicted.
pub const MIN_IDLE: Duration = Duration::from_secs(1);

/// A client's progress, and since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Connected, no frame begun or completed yet.
    Silent(Instant),
    /// A frame begun and not completed.
    Partial(Instant),
    /// Its last frame completed; nothing begun since.
    Quiet(Instant),
}

impl Stage {
    /// How eagerly it is evicted (lower first), and since when.
    fn rank(self) -> (u8, Instant) {
        match self {
            Stage::Silent(since) | Stage::Partial(since) => (0, since),
            Stage::Quiet(since) => (1, since),
        }
    }
}

/// The client to evict among `clients`, if any has been idle long enough;
/// a quiet one only with `quiet`.
pub fn choose(
    clients: impl Iterator<Item = (u64, Stage)>,
    now: Instant,
    quiet: bool,
) -> Option<u64> {
    clients
        .filter(|(_, progress)| quiet || !matches!(progress, Stage::Quiet(_)))
        .filter(|(_, progress)| now.saturating_duration_since(progress.rank().1) >= MIN_IDLE)
        .min_by_key(|(id, progress)| (progress.rank(), *id))
        .map(|(id, _)| id)
}

/// Why a client is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closing {
    /// Another client needed its slot.
    Evicted,
    /// A frame it began was not completed within `frame_timeout`.
    TimedOut,
}

struct Client {
    progress: Stage,
    evict: CancellationToken,
}

/// What the clients of one input share, under one lock.
#[derive(Default)]
struct Clients {
    next: u64,
    clients: BTreeMap<u64, Client>,
    frame_timeout: Option<Duration>,
}

/// The clients of one listening input.
#[derive(Clone)]
pub struct Registry {
    clients: Arc<Mutex<Clients>>,
    evicted: Arc<Counted>,
    timed_out: Arc<Counted>,
}

impl Registry {
    /// `frame_timeout` none: a frame may take as long as it takes.
    pub fn new(module: &str, frame_timeout: Option<Duration>) -> Self {
        Self {
            clients: Arc::new(Mutex::new(Clients {
                frame_timeout,
                ..Clients::default()
            })),
            evicted: Arc::new(Counted::new(module, "evicted")),
            timed_out: Arc::new(Counted::new(module, "timed_out")),
        }
    }

    /// A new client, silent since now.
    pub fn join(&self) -> Presence {
        let evict = CancellationToken::new();
        let mut clients = self.clients();
        let id = clients.next;
        clients.next += 1;
        clients.clients.insert(
            id,
            Client {
                progress: Stage::Silent(Instant::now()),
                evict: evict.clone(),
            },
        );
        Presence {
            id,
            registry: self.clone(),
            evict,
        }
    }

    /// Asks the client whose progress is oldest to close; false when none
    /// has been idle for [`MIN_IDLE`]. A quiet client (its frames whole)
    /// is chosen only with `quiet`: the listener asks for one only after a
    /// wait of [`MIN_IDLE`] found no silent or unfinished client to close.
    pub fn make_room(&self, quiet: bool) -> bool {
        let clients = self.clients();
        let chosen = choose(
            clients
                .clients
                .iter()
                .filter(|(_, client)| !client.evict.is_cancelled())
                .map(|(id, client)| (*id, client.progress)),
            Instant::now(),
            quiet,
        );
        match chosen.and_then(|id| clients.clients.get(&id)) {
            Some(client) => {
                client.evict.cancel();
                self.evicted.add(1);
                true
            }
            None => false,
        }
    }

    /// The clients, locked (clients may be served on several threads);
    /// taken even when a thread panicked holding it, each change being
    /// one assignment or map operation.
    fn clients(&self) -> MutexGuard<'_, Clients> {
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new `frame_timeout`, for frames begun from now on (a reload's).
    pub fn set_frame_timeout(&self, frame_timeout: Option<Duration>) {
        self.clients().frame_timeout = frame_timeout;
    }

    /// Clients closed to make room, so far.
    pub fn evicted(&self) -> u64 {
        self.evicted.total()
    }

    /// Clients closed for a frame left unfinished, so far.
    pub fn timed_out(&self) -> u64 {
        self.timed_out.total()
    }
}

/// One client's place among its input's clients; leaves it when dropped.
pub struct Presence {
    id: u64,
    registry: Registry,
    evict: CancellationToken,
}

impl Presence {
    /// After taking what a read brought: whether it `completed` a frame,
    /// and whether a `partial` one waits for more bytes.
    pub fn progress(&self, completed: bool, partial: bool) {
        let now = Instant::now();
        let mut clients = self.registry.clients();
        let Some(client) = clients.clients.get_mut(&self.id) else {
            return;
        };
        client.progress = match (client.progress, completed, partial) {
            (Stage::Partial(since), false, true) => Stage::Partial(since),
            (_, _, true) => Stage::Partial(now),
            (_, true, false) => Stage::Quiet(now),
            (unchanged, false, false) => unchanged,
        };
    }

    /// The frame under way is not ours to time: the input itself holds
    /// the client back (a full window), so it cannot complete.
    pub fn held_back(&self) {
        let mut clients = self.registry.clients();
        if let Some(client) = clients.clients.get_mut(&self.id)
            && let Stage::Partial(_) = client.progress
        {
            client.progress = Stage::Quiet(Instant::now());
        }
    }

    /// Resolves when the client must be closed, and counts why (its
    /// frame's deadline is read when called: call it again after
    /// [`Presence::progress`]).
    pub async fn closing(&self) -> Closing {
        let deadline = {
            let clients = self.registry.clients();
            match clients.clients.get(&self.id).map(|client| client.progress) {
                Some(Stage::Partial(since)) => clients.frame_timeout.map(|timeout| since + timeout),
                _ => None,
            }
        };
        let timed_out = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.evict.cancelled() => Closing::Evicted,
            () = timed_out => {
                self.registry.timed_out.add(1);
                Closing::TimedOut
            }
        }
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.registry.clients().clients.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, seconds: u64) -> Instant {
        start + Duration::from_secs(seconds)
    }

    #[test]
    fn the_oldest_without_progress_goes_first_and_quiet_ones_last() {
        let start = Instant::now();
        let now = at(start, 100);
        let clients = [
            (1, Stage::Quiet(at(start, 0))),
            (2, Stage::Partial(at(start, 50))),
            (3, Stage::Silent(at(start, 40))),
            (
                4,
                Stage::Partial(at(start, 99) + Duration::from_millis(500)),
            ),
        ];
        assert_eq!(choose(clients.into_iter(), now, true), Some(3));
        assert_eq!(
            choose(clients.into_iter().filter(|(id, _)| *id != 3), now, true),
            Some(2)
        );
        // Only the quiet one and one too fresh: the quiet one, when asked.
        let quiet_and_fresh = || clients.into_iter().filter(|(id, _)| *id == 1 || *id == 4);
        assert_eq!(choose(quiet_and_fresh(), now, false), None);
        assert_eq!(choose(quiet_and_fresh(), now, true), Some(1));
        // Nobody idle long enough: nobody.
        assert_eq!(choose([(4, clients[3].1)].into_iter(), now, true), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_not_completed_in_time_closes_the_client_and_a_quiet_one_stays() {
        let registry = Registry::new("input", Some(Duration::from_secs(5)));
        let slow = registry.join();
        let quiet = registry.join();
        slow.progress(false, true);
        quiet.progress(true, false);
        // A byte a second: no frame completes, the deadline stays.
        for _ in 0..4 {
            tokio::time::advance(Duration::from_secs(1)).await;
            slow.progress(false, true);
        }
        let closing = tokio::time::timeout(Duration::from_secs(2), slow.closing()).await;
        assert_eq!(closing, Ok(Closing::TimedOut));
        assert_eq!(registry.timed_out(), 1);
        let quiet_closing = tokio::time::timeout(Duration::from_secs(3600), quiet.closing()).await;
        assert!(quiet_closing.is_err(), "a quiet client is never timed out");
        // A completed frame moves the deadline: a new frame starts now.
        slow.progress(true, true);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(
            tokio::time::timeout(Duration::ZERO, slow.closing())
                .await
                .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn making_room_evicts_the_chosen_client_once() {
        let registry = Registry::new("input", None);
        let silent = registry.join();
        let working = registry.join();
        assert!(!registry.make_room(true), "nobody idle for a second yet");
        tokio::time::advance(Duration::from_secs(2)).await;
        working.progress(true, false);
        assert!(registry.make_room(false));
        assert_eq!(silent.closing().await, Closing::Evicted);
        assert!(
            !registry.make_room(true),
            "the working one was heard from just now"
        );
        assert_eq!(registry.evicted(), 1);
        drop(silent);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!registry.make_room(false), "quiet: only when asked");
        assert!(registry.make_room(true));
        assert_eq!(working.closing().await, Closing::Evicted);
    }
}
