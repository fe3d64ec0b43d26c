use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;
use wishbone_event::RESERVED_QUEUES;
use wishbone_event::queue::{self, Receiver, Sender};

use wishbone_bootstrap::Arguments;

use crate::{QueueTable, RuntimeOptions, Spread};

/// What a running module gets from the runtime: its queues, the stop and
/// abort signals, and the server's settings.
#[derive(Debug)]
pub struct ModuleContext {
    name: String,
    /// Connected incoming queues, in routing-table order.
    incoming: Vec<(String, Receiver)>,
    /// Outgoing queues: every connected one in routing-table order, then the
    /// declared ones no route connects (they drop and count).
    outgoing: Vec<(String, Sender)>,
    stop: CancellationToken,
    abort: CancellationToken,
    options: Arc<RuntimeOptions>,
    table: QueueTable,
    /// Set by a reload that replaces this module with one listening on the
    /// same address: its listening socket goes to the new one.
    keep_listener: Arc<AtomicBool>,
    /// New arguments from reloads that change only live ones.
    updates: tokio::sync::watch::Receiver<Arguments>,
    /// Where the runtime sends them.
    updating: Arc<tokio::sync::watch::Sender<Arguments>>,
    /// The threads the module may spread its work over (none with one).
    spread: Option<Spread>,
}

impl ModuleContext {
    pub(crate) fn new(
        name: String,
        stop: CancellationToken,
        abort: CancellationToken,
        options: Arc<RuntimeOptions>,
        table: QueueTable,
    ) -> Self {
        let (updating, updates) = tokio::sync::watch::channel(Arguments::default());
        Self {
            name,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            stop,
            abort,
            options,
            table,
            keep_listener: Arc::default(),
            updates,
            updating: Arc::new(updating),
            spread: None,
        }
    }

    /// The threads this module may spread its own work over (a listening
    /// input its clients): `None` with `--threads 1`.
    pub fn spread(&self) -> Option<Spread> {
        self.spread.clone()
    }

    /// Gives the module the threads it may spread its work over.
    pub(crate) fn set_spread(&mut self, spread: Option<Spread>) {
        self.spread = spread;
    }

    /// Where a reload sends this module new arguments.
    pub(crate) fn updating(&self) -> Arc<tokio::sync::watch::Sender<Arguments>> {
        self.updating.clone()
    }

    /// The arguments a reload gives this module while it runs, when only
    /// its [`Module::live_arguments`](crate::Module::live_arguments) changed:
    /// the whole new `arguments:` block, marked changed each time.
    pub fn updates(&self) -> tokio::sync::watch::Receiver<Arguments> {
        self.updates.clone()
    }

    /// The flag a reload sets when this module's listening socket must
    /// outlive it.
    pub(crate) fn listener_kept(&self) -> Arc<AtomicBool> {
        self.keep_listener.clone()
    }

    /// A context with no connected queues, for testing a module alone: attach
    /// queues with [`ModuleContext::connect_incoming`] and
    /// [`ModuleContext::connect_outgoing`].
    pub fn detached(name: &str, options: RuntimeOptions) -> Self {
        Self::new(
            name.to_string(),
            CancellationToken::new(),
            CancellationToken::new(),
            Arc::new(options),
            QueueTable::default(),
        )
    }

    /// Attaches the receiving end of a queue under `name`.
    pub fn connect_incoming(&mut self, name: &str, receiver: Receiver) {
        self.table.add(&self.name, name, receiver.stats().clone());
        self.incoming.push((name.to_string(), receiver));
    }

    /// Attaches the sending end of a queue under `name`.
    pub fn connect_outgoing(&mut self, name: &str, sender: Sender) {
        self.table.add(&self.name, name, sender.stats().clone());
        self.outgoing.retain(|(existing, _)| existing != name);
        let connected = self
            .outgoing
            .iter()
            .take_while(|(_, sender)| sender.is_connected())
            .count();
        let position = if sender.is_connected() {
            connected
        } else {
            self.outgoing.len()
        };
        self.outgoing.insert(position, (name.to_string(), sender));
    }

    /// The instance name from the bootstrap, for logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes the receiver of an incoming queue; one no route feeds is
    /// already closed.
    pub fn take_incoming(&mut self, name: &str) -> Receiver {
        match self.incoming.iter().position(|(queue, _)| queue == name) {
            Some(index) => self.incoming.remove(index).1,
            None => queue::closed(self.options.queue_size),
        }
    }

    /// Takes the receivers of every connected incoming queue, in
    /// routing-table order (a funnel's inbound queues).
    pub fn take_all_incoming(&mut self) -> Vec<(String, Receiver)> {
        std::mem::take(&mut self.incoming)
    }

    /// The sender of an outgoing queue. One no route connects drops what is
    /// put on it and counts it in `dropped_total`.
    pub fn outgoing(&mut self, name: &str) -> Sender {
        if let Some((_, sender)) = self.outgoing.iter().find(|(queue, _)| queue == name) {
            return sender.clone();
        }
        let sender = queue::unconnected();
        self.connect_outgoing(name, sender.clone());
        sender
    }

    /// The sender of an outgoing queue where the module's configuration
    /// leaves events it chose not to pass on (a filter's `rejected`). One no
    /// route connects discards what is put on it and counts it in
    /// `discarded_total`, apart from `dropped_total`.
    pub fn discards(&mut self, name: &str) -> Sender {
        if let Some((_, sender)) = self
            .outgoing
            .iter()
            .find(|(queue, sender)| queue == name && sender.is_connected())
        {
            return sender.clone();
        }
        let sender = queue::discarding();
        self.table.set(&self.name, name, sender.stats());
        self.outgoing.retain(|(queue, _)| queue != name);
        self.outgoing.push((name.to_string(), sender.clone()));
        sender
    }

    /// Every connected outgoing queue other than the reserved ones (`failed`,
    /// `success`), in routing-table order: a round robin's
    /// destinations.
    pub fn destinations(&self) -> Vec<(String, Sender)> {
        self.outgoing
            .iter()
            .filter(|(queue, sender)| {
                sender.is_connected() && !RESERVED_QUEUES.contains(&queue.as_str())
            })
            .cloned()
            .collect()
    }

    /// Fires when the server stops. A source stops producing and returns;
    /// other modules keep draining until their incoming queues close.
    pub fn stopping(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Fires when draining took longer than the server allows: return now,
    /// and say what was left undelivered.
    pub fn aborting(&self) -> CancellationToken {
        self.abort.clone()
    }

    /// How this module tells `/ready` whether it is ready: ready once it
    /// runs, unless it says it waits (an output, for its first
    /// connection).
    pub fn readiness(&self) -> crate::ModuleReadiness {
        crate::ModuleReadiness::new(&self.name, self.options.readiness.clone())
    }

    /// The server's settings.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// The listening socket for `address`: the one the launcher of
    /// `--instances` bound for this module, or a new one.
    pub fn listener(
        &self,
        address: &crate::ListenAddress,
    ) -> std::io::Result<tokio::net::TcpListener> {
        let listener = match self.options.listeners.take(&self.name) {
            Some(inherited) => inherited,
            None => crate::bind(address)?,
        };
        listener.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(listener)
    }

    /// Gives back the listening socket once the module stops serving: when
    /// a reload replaces the module with one listening on the same address,
    /// the socket stays open for it (clients wait in its backlog, never
    /// refused); otherwise it closes.
    pub fn release_listener(&self, listener: tokio::net::TcpListener) {
        if self.keep_listener.load(Ordering::SeqCst)
            && let Ok(listener) = listener.into_std()
        {
            self.options.listeners.put(&self.name, listener);
        }
    }
}
