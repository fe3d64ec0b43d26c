//! The running modules of a server and the queues between them, and how a
//! reload changes them ([`Plan`]): modules that stop are told to stop and
//! waited for (within the drain timeout), the queues that last are handed
//! from the modules that stop to the ones that start, and the new modules
//! start downstream first. Kept modules and their queues are not touched.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::LocalBoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use wishbone_bootstrap::{Bootstrap, Validated};
use wishbone_event::RESERVED_QUEUES;
use wishbone_event::queue::{self, Receiver, Rewiring, Sender, WeakSender};

use crate::order::{components, downstream_first};
use crate::threads::Threads;
use crate::{
    ListenAddress, Loaded, Module, ModuleActor, ModuleContext, ModuleError, Plan, QueueTable,
    RuntimeOptions,
};

/// How long modules get to return once aborted.
pub(crate) const ABORT_GRACE: Duration = Duration::from_secs(5);

/// Modules built, by name.
type Built = Vec<(String, Box<dyn Module>)>;

/// A module that returned.
pub(crate) struct Finished {
    pub name: String,
    generation: u64,
    pub outcome: Result<(), ModuleError>,
}

/// What the server holds of one running module.
struct Handle {
    generation: u64,
    stop: CancellationToken,
    abort: CancellationToken,
    listens: Option<ListenAddress>,
    keep_listener: Arc<AtomicBool>,
    /// Where new values of its live arguments go.
    updating: Arc<tokio::sync::watch::Sender<wishbone_bootstrap::Arguments>>,
}

/// What a reload did.
pub(crate) struct Changed {
    pub plan: Plan,
    /// Kept modules that returned meanwhile, for the supervisor.
    pub finished: Vec<Finished>,
    /// Stopping modules that failed or were aborted.
    pub failures: Vec<(String, ModuleError)>,
}

/// The modules of one bootstrap, running.
pub(crate) struct Pipeline {
    options: Arc<RuntimeOptions>,
    table: QueueTable,
    stop: CancellationToken,
    abort: CancellationToken,
    bootstrap: Bootstrap,
    handles: HashMap<String, Handle>,
    /// The queue into each connected incoming queue of a running module
    /// (`module.queue`); weak, so that a queue closes once the modules
    /// feeding it are gone.
    queues: HashMap<String, WeakSender>,
    /// How to point each connected outgoing queue of a running module
    /// (`module.queue`) at another queue, when a reload keeps the module
    /// and the route leads elsewhere.
    outgoing: HashMap<String, Rewiring>,
    running: FuturesUnordered<LocalBoxFuture<'static, Finished>>,
    generation: u64,
    /// Modules a reload removed, draining on their own (by generation):
    /// nothing waits for them; they are aborted past their deadline.
    draining: HashMap<u64, Draining>,
    /// The threads modules run on (none with `threads: 1`: the server's).
    threads: Threads,
}

/// A removed module draining in the background.
struct Draining {
    name: String,
    abort: CancellationToken,
    /// When it is aborted; once aborted, when it is given up on.
    deadline: tokio::time::Instant,
    aborted: bool,
}

impl Pipeline {
    pub(crate) fn new(
        bootstrap: Bootstrap,
        options: RuntimeOptions,
        table: QueueTable,
        stop: CancellationToken,
        abort: CancellationToken,
    ) -> Self {
        let threads = Threads::new(options.threads);
        Self {
            options: Arc::new(options),
            table,
            stop,
            abort,
            bootstrap,
            handles: HashMap::new(),
            queues: HashMap::new(),
            outgoing: HashMap::new(),
            running: FuturesUnordered::new(),
            generation: 0,
            draining: HashMap::new(),
            threads,
        }
    }

    /// Starts every module of the bootstrap: `built`, those its validation
    /// built.
    pub(crate) fn start_all(
        &mut self,
        mut built: HashMap<String, Box<dyn Module>>,
    ) -> Result<(), (String, String)> {
        let names = self.module_names();
        let built = take_built(&mut built, &names)?;
        self.start(built, HashMap::new());
        for route in &self.bootstrap.routes {
            tracing::info!(route = %route, "queue connected");
        }
        Ok(())
    }

    /// The running bootstrap's modules' names, in file order.
    fn module_names(&self) -> Vec<String> {
        self.bootstrap
            .modules
            .iter()
            .map(|decl| decl.name.clone())
            .collect()
    }

    /// The bootstrap running now.
    pub(crate) fn bootstrap(&self) -> &Bootstrap {
        &self.bootstrap
    }

    /// Whether every module returned.
    pub(crate) fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Modules still running.
    pub(crate) fn len(&self) -> usize {
        self.running.len()
    }

    /// The next module to return, but for removed modules draining on
    /// their own, which are reported here.
    pub(crate) async fn next_finished(&mut self) -> Option<Finished> {
        loop {
            let finished = self.running.next().await?;
            if let Some(finished) = self.unless_draining(finished) {
                return Some(finished);
            }
        }
    }

    /// A module that returned, unless it is one a reload removed: that one
    /// is reported (an error, or what it left undelivered) and forgotten.
    fn unless_draining(&mut self, finished: Finished) -> Option<Finished> {
        let Some(draining) = self.draining.remove(&finished.generation) else {
            return Some(finished);
        };
        match finished.outcome {
            Ok(()) => {
                tracing::info!(module = %draining.name, "a module removed by a reload drained")
            }
            Err(error) => {
                tracing::error!(module = %draining.name, %error, undelivered = error.undelivered(), "a module stopped by the reload ended with an error")
            }
        }
        None
    }

    /// When the next removed module is due to be aborted (or given up on).
    pub(crate) fn drain_deadline(&self) -> Option<tokio::time::Instant> {
        self.draining
            .values()
            .map(|draining| draining.deadline)
            .min()
    }

    /// Aborts the removed modules past their drain timeout; gives up on
    /// those that did not return within the grace after it.
    pub(crate) fn abort_overdue(&mut self, now: tokio::time::Instant) {
        let mut given_up = Vec::new();
        for (generation, draining) in &mut self.draining {
            if draining.deadline > now {
                continue;
            }
            if draining.aborted {
                tracing::error!(module = %draining.name, "a module removed by a reload did not finish after the abort; giving up on it");
                given_up.push(*generation);
                continue;
            }
            tracing::warn!(module = %draining.name, drain_timeout = ?self.options.drain_timeout, "a module removed by a reload did not drain in time: aborting it");
            draining.abort.cancel();
            draining.aborted = true;
            draining.deadline = now + ABORT_GRACE;
        }
        for generation in given_up {
            self.draining.remove(&generation);
        }
    }

    /// Wires the queues of `built` (of the current bootstrap) and starts
    /// them, downstream first. The queue into a replaced module comes from
    /// `handed` (with a sender of it); the queue into a kept module stays
    /// its own. A kept module whose route leads to another queue now is
    /// pointed at it, once every new module holds its senders, so that no
    /// queue a module keeps receiving from closes meanwhile.
    fn start(&mut self, built: Built, handed: HashMap<String, (Sender, Receiver)>) {
        let starting: HashSet<String> = built.iter().map(|(name, _)| name.clone()).collect();
        let mut contexts: HashMap<String, ModuleContext> = starting
            .iter()
            .map(|name| {
                let context = ModuleContext::new(
                    name.clone(),
                    self.stop.child_token(),
                    self.abort.child_token(),
                    self.options.clone(),
                    self.table.clone(),
                );
                (name.clone(), context)
            })
            .collect();
        self.wire(&starting, &mut contexts, handed);
        let mut built: HashMap<String, Box<dyn Module>> = built.into_iter().collect();
        let names = self.module_names();
        let links: Vec<(&str, &str)> = self
            .bootstrap
            .routes
            .iter()
            .map(|route| (route.from.module.as_str(), route.to.module.as_str()))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let order: Vec<String> = downstream_first(&names, &links)
            .into_iter()
            .map(str::to_string)
            .collect();
        let pipelines: HashMap<String, String> = components(&names, &links)
            .into_iter()
            .map(|(module, first)| (module.to_string(), first.to_string()))
            .collect();
        for name in order {
            if let (Some(module), Some(context)) = (built.remove(&name), contexts.remove(&name)) {
                let pipeline = pipelines
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| name.clone());
                self.launch(name, module, context, &pipeline);
            }
        }
    }

    /// Connects the queues of the starting modules' contexts, keeps each
    /// queue's weak sender, and points kept modules' outgoing queues at the
    /// queues their routes lead into now.
    fn wire(
        &mut self,
        starting: &HashSet<String>,
        contexts: &mut HashMap<String, ModuleContext>,
        mut handed: HashMap<String, (Sender, Receiver)>,
    ) {
        let mut rewirings: Vec<(Rewiring, Sender, &wishbone_bootstrap::QueueRef)> = Vec::new();
        for route in &self.bootstrap.routes {
            let inbox = route.to.to_string();
            let outbox = route.from.to_string();
            let (sender, receiver) = match handed.remove(&inbox) {
                Some((sender, receiver)) => (sender, Some(receiver)),
                None => match self.queues.get(&inbox).and_then(WeakSender::upgrade) {
                    Some(sender) if !starting.contains(&route.to.module) => (sender, None),
                    _ => {
                        let (sender, receiver) = queue::channel(self.options.queue_size);
                        (sender, Some(receiver))
                    }
                },
            };
            if let Some(context) = contexts.get_mut(&route.to.module)
                && let Some(receiver) = receiver
            {
                context.connect_incoming(&route.to.queue, receiver);
            }
            if let Some(context) = contexts.get_mut(&route.from.module) {
                context.connect_outgoing(&route.from.queue, sender.clone());
                self.outgoing.insert(outbox, sender.rewiring());
            } else if let Some(rewiring) = self.outgoing.get(&outbox)
                && !rewiring.sends_like(&sender)
            {
                rewirings.push((rewiring.clone(), sender.clone(), &route.from));
            }
            self.queues.insert(inbox, sender.downgrade());
        }
        for (rewiring, sender, from) in &rewirings {
            if rewiring.to(sender) {
                self.table.set(&from.module, &from.queue, sender.stats());
                tracing::debug!(queue = %from, "queue rewired");
            }
        }
        drop(rewirings);
        for decl in &self.bootstrap.modules {
            if let Some(context) = contexts.get_mut(&decl.name) {
                for queue in decl.queues.outgoing.iter().chain(RESERVED_QUEUES.iter()) {
                    context.outgoing(queue);
                }
            }
        }
    }

    /// Starts one module's actor, on the thread of `pipeline`, and follows
    /// its outcome.
    fn launch(
        &mut self,
        name: String,
        module: Box<dyn Module>,
        mut context: ModuleContext,
        pipeline: &str,
    ) {
        self.generation += 1;
        let generation = self.generation;
        self.handles.insert(
            name.clone(),
            Handle {
                generation,
                stop: context.stopping(),
                abort: context.aborting(),
                listens: module.listens(),
                keep_listener: context.listener_kept(),
                updating: context.updating(),
            },
        );
        let (done, outcome) = oneshot::channel();
        self.options.readiness.starting(&name);
        let home = self.threads.place(pipeline, module.cpu_bound());
        context.set_spread(self.threads.spread(home));
        self.threads
            .start(ModuleActor::new(module, context, done), home);
        self.running.push(Box::pin(async move {
            let outcome = outcome
                .await
                .unwrap_or_else(|_| Err(ModuleError::Other("the module vanished".into())));
            Finished {
                name,
                generation,
                outcome,
            }
        }));
    }

    /// Changes the running pipeline into `new`'s, as [`Plan`] says. A
    /// module of the new file that cannot be built refuses the whole
    /// reload before anything running is touched.
    pub(crate) async fn reload(&mut self, loaded: Loaded) -> Result<Changed, String> {
        let (new, plan, built) = self.plan(loaded)?;
        for decl in &new.modules {
            if plan.updated.contains(&decl.name)
                && let Some(handle) = self.handles.get(&decl.name)
            {
                handle.updating.send_replace(decl.arguments.clone());
            }
        }
        let stopping: Vec<String> = plan.stopping().cloned().collect();
        // Every queue into a module of the new file stays open meanwhile;
        // those into replaced modules are handed over. Every queue is held
        // before any hand-over is asked for: a module on another thread
        // returns as soon as it is asked, dropping its senders.
        let held: Vec<(&wishbone_bootstrap::QueueRef, Sender)> = new
            .routes
            .iter()
            .filter_map(|route| {
                let sender = self.queues.get(&route.to.to_string())?.upgrade()?;
                Some((&route.to, sender))
            })
            .collect();
        let answers: Vec<(String, Sender, oneshot::Receiver<Receiver>)> = held
            .iter()
            .filter(|(to, _)| plan.replaced.contains(&to.module))
            .filter_map(|(to, sender)| {
                let answer = sender.hand_over()?;
                Some((to.to_string(), sender.clone(), answer))
            })
            .collect();
        let held: Vec<Sender> = held.into_iter().map(|(_, sender)| sender).collect();
        let listening: HashMap<&String, Option<ListenAddress>> = built
            .iter()
            .map(|(name, module)| (name, module.listens()))
            .collect();
        let mut waiting = self.stop_modules(&stopping, &plan, &listening);
        let (finished, failures) = self.wait_for(&mut waiting).await;
        let mut handed = HashMap::new();
        for (key, sender, answer) in answers {
            match tokio::time::timeout(Duration::from_secs(1), answer).await {
                Ok(Ok(receiver)) => {
                    handed.insert(key, (sender, receiver));
                }
                _ => {
                    tracing::error!(queue = %key, "a queue was not handed over: its events wait in a module that did not return")
                }
            }
        }
        self.queues.retain(|inbox, _| {
            new.routes
                .iter()
                .any(|route| route.to.to_string() == *inbox)
        });
        self.outgoing.retain(|outbox, _| {
            new.routes
                .iter()
                .any(|route| route.from.to_string() == *outbox)
        });
        self.bootstrap = new;
        self.start(built, handed);
        drop(held);
        Ok(Changed {
            plan,
            finished,
            failures,
        })
    }

    /// What a reload to `loaded` changes, and the modules it starts (taken
    /// from those validation built; the others, kept running, are dropped
    /// unrun). A replaced module that refuses its replacement refuses the
    /// reload.
    fn plan(&self, loaded: Loaded) -> Result<(Bootstrap, Plan, Built), String> {
        let Validated {
            bootstrap: new,
            mut built,
        } = loaded;
        let plan = Plan::new(&self.bootstrap, &new, |decl| {
            built
                .get(&decl.name)
                .map_or(&[], |module| module.live_arguments())
        });
        let starting: HashSet<&String> = plan.starting().collect();
        let starting: Vec<String> = new
            .modules
            .iter()
            .map(|decl| decl.name.clone())
            .filter(|name| starting.contains(name))
            .collect();
        let built = take_built(&mut built, &starting)
            .map_err(|(module, problem)| format!("module `{module}`: {problem}"))?;
        for (name, module) in &built {
            let previous = self
                .bootstrap
                .modules
                .iter()
                .find(|decl| &decl.name == name);
            if let Some(previous) = previous.filter(|_| plan.replaced.contains(name)) {
                module
                    .may_replace(&previous.arguments)
                    .map_err(|problem| format!("module `{name}`: {problem}"))?;
            }
        }
        Ok((new, plan, built))
    }

    /// Tells the stopping modules to stop. A replaced module is returned,
    /// to be waited for: its replacement takes its queues (and its socket)
    /// once it returns. A removed one drains on its own, and nothing waits
    /// for it ([`Pipeline::abort_overdue`]).
    fn stop_modules(
        &mut self,
        stopping: &[String],
        plan: &Plan,
        listening: &HashMap<&String, Option<ListenAddress>>,
    ) -> HashMap<String, (u64, CancellationToken)> {
        let mut waiting = HashMap::new();
        let drain_until = tokio::time::Instant::now() + self.options.drain_timeout;
        for name in stopping {
            let Some(handle) = self.handles.remove(name) else {
                continue;
            };
            let same_address = handle.listens.is_some()
                && listening.get(name).cloned().flatten() == handle.listens;
            handle.keep_listener.store(same_address, Ordering::SeqCst);
            handle.stop.cancel();
            self.table.remove_module(name);
            self.options.readiness.remove(name);
            if plan.replaced.contains(name) {
                waiting.insert(name.clone(), (handle.generation, handle.abort));
            } else {
                let draining = Draining {
                    name: name.clone(),
                    abort: handle.abort,
                    deadline: drain_until,
                    aborted: false,
                };
                self.draining.insert(handle.generation, draining);
            }
        }
        waiting
    }

    /// Waits for the stopping modules (by name: their generation and abort
    /// signal) to return, aborting them after the drain timeout; also
    /// collects the other modules that return meanwhile.
    async fn wait_for(
        &mut self,
        waiting: &mut HashMap<String, (u64, CancellationToken)>,
    ) -> (Vec<Finished>, Vec<(String, ModuleError)>) {
        let mut others = Vec::new();
        let mut failures = Vec::new();
        let began = Instant::now();
        let drain = tokio::time::sleep(self.options.drain_timeout);
        tokio::pin!(drain);
        let mut aborted = false;
        while !waiting.is_empty() {
            tokio::select! {
                finished = self.running.next() => {
                    let Some(finished) = finished else { break };
                    if waiting.get(&finished.name).map(|(generation, _)| *generation) == Some(finished.generation) {
                        waiting.remove(&finished.name);
                        if let Err(error) = finished.outcome {
                            failures.push((finished.name, error));
                        }
                    } else if let Some(finished) = self.unless_draining(finished) {
                        others.push(finished);
                    }
                }
                () = &mut drain => {
                    if aborted {
                        tracing::error!(modules = ?waiting.keys().collect::<Vec<_>>(), "modules did not finish after the abort; the reload goes on without them");
                        break;
                    }
                    tracing::warn!(drain_timeout = ?self.options.drain_timeout, modules = ?waiting.keys().collect::<Vec<_>>(), "modules did not drain in time: aborting them");
                    waiting.values().for_each(|(_, abort)| abort.cancel());
                    aborted = true;
                    drain.as_mut().reset(tokio::time::Instant::now() + ABORT_GRACE);
                }
            }
        }
        tracing::debug!(elapsed = ?began.elapsed(), "stopping modules returned");
        (others, failures)
    }
}

/// The modules named, in that order, taken from those validation built.
fn take_built(
    built: &mut HashMap<String, Box<dyn Module>>,
    names: &[String],
) -> Result<Built, (String, String)> {
    names
        .iter()
        .map(|name| match built.remove(name) {
            Some(module) => Ok((name.clone(), module)),
            None => Err((name.clone(), "was not built by validation".to_string())),
        })
        .collect()
}
