//! One test case on modules of its own: the bootstrap's processing and
//! flow modules (not its inputs, outputs or metrics), wired as its routing
//! table says, with every queue they put events on recorded. The case's
//! events go on its input queue; once every module has finished (each
//! queue closes after the last event), what each queue carried is the
//! result.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use wishbone_bootstrap::{Bootstrap, ModuleDecl};
use wishbone_event::RESERVED_QUEUES;
use wishbone_runtime::queue::{self, Receiver, Sender};
use wishbone_runtime::{
    Event, Module, ModuleContext, ModuleKind, ModuleSet, QueueSpec, RuntimeOptions,
};

/// How long the modules of one case may take to finish.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// The events each queue (`module.queue`) carried, in order.
pub type Recorded = BTreeMap<String, Vec<Bytes>>;

/// Whether a kind processes or routes events (takes and puts them): the
/// modules a case runs.
fn is_tested(spec: &QueueSpec) -> bool {
    (spec.any_incoming || !spec.incoming.is_empty())
        && (spec.any_outgoing || !spec.outgoing.is_empty())
}

fn kind_of<'a>(set: &'a ModuleSet, decl: &ModuleDecl) -> Option<&'a ModuleKind> {
    set.find(decl.kind).filter(|kind| is_tested(&kind.queues))
}

/// Checks that `queue` is an incoming queue of a module a case runs.
pub fn check_input(bootstrap: &Bootstrap, set: &ModuleSet, queue: &str) -> Result<(), String> {
    let (module, name) = queue
        .split_once('.')
        .ok_or_else(|| format!("`{queue}` is not module.queue"))?;
    let decl = bootstrap
        .modules
        .iter()
        .find(|decl| decl.name == module)
        .ok_or_else(|| format!("no module `{module}` in the bootstrap file"))?;
    let kind = kind_of(set, decl).ok_or_else(|| {
        format!("`{module}` ({}) is an input, output or metrics module: a test starts at a processing or flow module's queue", decl.kind)
    })?;
    match kind.queues.has_incoming(name) {
        true => Ok(()),
        false => Err(format!(
            "`{module}` ({}) has no incoming queue `{name}`",
            decl.kind
        )),
    }
}

/// The modules of one case and the queues between them, being wired.
struct Wiring<'a> {
    bootstrap: &'a Bootstrap,
    queue_size: usize,
    contexts: HashMap<&'a str, ModuleContext>,
    /// The queue into each incoming queue of a tested module.
    inboxes: HashMap<String, Sender>,
    recorded: Rc<RefCell<Recorded>>,
    relays: Vec<LocalBoxFuture<'static, ()>>,
}

impl<'a> Wiring<'a> {
    /// A sender into `module.queue`, made (and connected) the first time.
    fn inbox(&mut self, module: &str, queue: &str) -> Sender {
        let (contexts, size) = (&mut self.contexts, self.queue_size);
        self.inboxes
            .entry(format!("{module}.{queue}"))
            .or_insert_with(|| {
                let (sender, receiver) = queue::channel(size);
                if let Some(context) = contexts.get_mut(module) {
                    context.connect_incoming(queue, receiver);
                }
                sender
            })
            .clone()
    }

    /// Connects every queue the module may put events on to a recording
    /// relay, which passes them on where a route leads to a tested module.
    fn record_outgoing(&mut self, decl: &'a ModuleDecl, kind: &ModuleKind, module: &dyn Module) {
        let mut queues: Vec<String> = kind.queues.outgoing.iter().map(|q| q.to_string()).collect();
        queues.extend(module.outgoing_queues().unwrap_or_default());
        queues.extend(RESERVED_QUEUES.iter().map(|q| q.to_string()));
        let from_here = || {
            self.bootstrap
                .routes
                .iter()
                .filter(|route| route.from.module == decl.name)
        };
        queues.extend(from_here().map(|route| route.from.queue.clone()));
        let mut seen = HashSet::new();
        queues.retain(|queue| seen.insert(queue.clone()));
        for queue in queues {
            let next = from_here()
                .find(|route| route.from.queue == queue)
                .filter(|route| self.contexts.contains_key(route.to.module.as_str()))
                .map(|route| (route.to.module.clone(), route.to.queue.clone()));
            let next = next.map(|(module, queue)| self.inbox(&module, &queue));
            let (sender, receiver) = queue::channel(self.queue_size);
            if let Some(context) = self.contexts.get_mut(decl.name.as_str()) {
                context.connect_outgoing(&queue, sender);
            }
            let name = format!("{}.{queue}", decl.name);
            self.relays
                .push(Box::pin(relay(receiver, next, name, self.recorded.clone())));
        }
    }
}

/// Runs one case: `events` on `input`; what every queue carried.
pub async fn run(
    bootstrap: &Bootstrap,
    set: &ModuleSet,
    input: &str,
    events: &[String],
) -> Result<Recorded, String> {
    let options = RuntimeOptions::default();
    let mut wiring = Wiring {
        bootstrap,
        queue_size: options.queue_size,
        contexts: HashMap::new(),
        inboxes: HashMap::new(),
        recorded: Rc::default(),
        relays: Vec::new(),
    };
    let mut modules = Vec::new();
    for decl in &bootstrap.modules {
        let Some(kind) = kind_of(set, decl) else {
            continue;
        };
        let module = (kind.build)(&decl.arguments)
            .map_err(|error| format!("module `{}`: {error}", decl.name))?;
        let context = ModuleContext::detached(&decl.name, options.clone());
        wiring.contexts.insert(decl.name.as_str(), context);
        modules.push((decl, kind, module));
    }
    let (input_module, input_queue) = input.split_once('.').unwrap_or((input, ""));
    let feed = wiring.inbox(input_module, input_queue);
    for (decl, kind, module) in &modules {
        wiring.record_outgoing(decl, kind, module.as_ref());
    }
    let Wiring {
        mut contexts,
        recorded,
        relays,
        inboxes,
        ..
    } = wiring;
    // Only the relays and the case's feed may keep a module's inbox open.
    drop(inboxes);
    let running = modules.into_iter().map(|(decl, _, module)| {
        let context = contexts
            .remove(decl.name.as_str())
            .expect("a context per module");
        let name = decl.name.clone();
        Box::pin(async move {
            if let Err(error) = module.run(context).await {
                tracing::warn!(module = %name, %error, "a module ended with an error");
            }
        }) as LocalBoxFuture<'static, ()>
    });
    let handles: Vec<_> = running.chain(relays).map(actix_rt::spawn).collect();
    let batch: Vec<Event> = events
        .iter()
        .map(|event| Event::new(Bytes::from(event.clone())))
        .collect();
    finish(feed, batch, handles).await?;
    let recorded = recorded.borrow().clone();
    Ok(recorded)
}

/// Puts the case's events on its queue, closes it, and waits for every
/// module and relay to finish.
async fn finish(
    feed: Sender,
    batch: Vec<Event>,
    handles: Vec<actix_rt::task::JoinHandle<()>>,
) -> Result<(), String> {
    let everything = async move {
        if feed.send(batch).await.is_err() {
            return Err("the input queue's module did not take the events".to_string());
        }
        drop(feed);
        for handle in handles {
            let _ = handle.await;
        }
        Ok(())
    };
    tokio::time::timeout(CASE_TIMEOUT, everything)
        .await
        .map_err(|_| {
            format!(
                "the modules did not finish within {} s",
                CASE_TIMEOUT.as_secs()
            )
        })?
}

/// Records what a module put on one queue, passing it on to the next
/// module when a route leads to one; closes that route when done.
async fn relay(
    mut from: Receiver,
    next: Option<Sender>,
    name: String,
    recorded: Rc<RefCell<Recorded>>,
) {
    while let Some(batch) = from.recv().await {
        recorded
            .borrow_mut()
            .entry(name.clone())
            .or_default()
            .extend(batch.iter().map(|event| event.data().clone()));
        if let Some(next) = &next
            && next.send(batch).await.is_err()
        {
            return;
        }
    }
}
