//! One test case on modules of its own: the bootstrap's processing and
//! flow modules (not its inputs, outputs or metrics), wired as its routing
//! table says, with every queue they put events on recorded. The case's
//! events go on its input queue; once every module has finished (each
//! queue closes after the last event), what each queue carried is the
//! result.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use wishbone_bootstrap::{Bootstrap, ModuleDecl};
use wishbone_event::RESERVED_QUEUES;
use wishbone_runtime::queue::{self, Receiver, Sender};
use wishbone_runtime::{Event, ModuleContext, ModuleKind, ModuleSet, QueueSpec, RuntimeOptions};

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

/// Runs one case: `events` on `input`; what every queue carried.
pub async fn run(
    bootstrap: &Bootstrap,
    set: &ModuleSet,
    input: &str,
    events: &[String],
) -> Result<Recorded, String> {
    let options = RuntimeOptions::default();
    let tested: Vec<(&ModuleDecl, &ModuleKind)> = bootstrap
        .modules
        .iter()
        .filter_map(|decl| Some((decl, kind_of(set, decl)?)))
        .collect();
    let mut contexts: HashMap<&str, ModuleContext> = HashMap::new();
    let mut modules = Vec::new();
    for (decl, kind) in &tested {
        let module = (kind.build)(&decl.arguments)
            .map_err(|error| format!("module `{}`: {error}", decl.name))?;
        contexts.insert(
            decl.name.as_str(),
            ModuleContext::detached(&decl.name, options.clone()),
        );
        modules.push((decl.name.as_str(), module));
    }
    // The queue into each incoming queue of a tested module.
    let mut inboxes: HashMap<String, Sender> = HashMap::new();
    let mut connect_inbox =
        |contexts: &mut HashMap<&str, ModuleContext>, module: &str, queue: &str| {
            inboxes
                .entry(format!("{module}.{queue}"))
                .or_insert_with(|| {
                    let (sender, receiver) = queue::channel(options.queue_size);
                    if let Some(context) = contexts.get_mut(module) {
                        context.connect_incoming(queue, receiver);
                    }
                    sender
                })
                .clone()
        };
    let (input_module, input_queue) = input.split_once('.').unwrap_or((input, ""));
    let feed = connect_inbox(&mut contexts, input_module, input_queue);
    let recorded: Rc<RefCell<Recorded>> = Rc::default();
    let mut relays: Vec<LocalBoxFuture<'static, ()>> = Vec::new();
    for ((decl, kind), (_, module)) in tested.iter().zip(&modules) {
        let mut queues: Vec<String> = kind.queues.outgoing.iter().map(|q| q.to_string()).collect();
        queues.extend(module.outgoing_queues().unwrap_or_default());
        queues.extend(RESERVED_QUEUES.iter().map(|q| q.to_string()));
        for route in bootstrap
            .routes
            .iter()
            .filter(|route| route.from.module == decl.name)
        {
            queues.push(route.from.queue.clone());
        }
        let mut seen = std::collections::HashSet::new();
        queues.retain(|queue| seen.insert(queue.clone()));
        for queue in queues {
            let next = bootstrap
                .routes
                .iter()
                .find(|route| route.from.module == decl.name && route.from.queue == queue)
                .filter(|route| contexts.contains_key(route.to.module.as_str()))
                .map(|route| connect_inbox(&mut contexts, &route.to.module, &route.to.queue));
            let (sender, receiver) = queue::channel(options.queue_size);
            if let Some(context) = contexts.get_mut(decl.name.as_str()) {
                context.connect_outgoing(&queue, sender);
            }
            let name = format!("{}.{queue}", decl.name);
            relays.push(Box::pin(relay(receiver, next, name, recorded.clone())));
        }
    }
    drop(inboxes);
    let mut running: Vec<LocalBoxFuture<'static, ()>> = Vec::new();
    for (name, module) in modules {
        let context = contexts.remove(name).expect("a context per module");
        let name = name.to_string();
        running.push(Box::pin(async move {
            if let Err(error) = module.run(context).await {
                tracing::warn!(module = %name, %error, "a module ended with an error");
            }
        }));
    }
    let batch: Vec<Event> = events
        .iter()
        .map(|event| Event::new(Bytes::from(event.clone())))
        .collect();
    let everything = async move {
        let handles: Vec<_> = running
            .into_iter()
            .chain(relays)
            .map(actix_rt::spawn)
            .collect();
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
        })??;
    let recorded = recorded.borrow().clone();
    Ok(recorded)
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
