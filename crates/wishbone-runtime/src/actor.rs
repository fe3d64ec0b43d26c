use actix::prelude::*;
use tokio::sync::oneshot;

use crate::{Module, ModuleContext, ModuleError};

/// The actix actor that hosts one module for its whole life: it runs the
/// module's future in its context and stops when the module returns,
/// reporting the outcome to the server.
pub struct ModuleActor {
    name: String,
    parts: Option<(Box<dyn Module>, ModuleContext)>,
    done: Option<oneshot::Sender<Result<(), ModuleError>>>,
}

impl ModuleActor {
    /// An actor for one module; `done` receives the module's outcome.
    pub fn new(
        module: Box<dyn Module>,
        context: ModuleContext,
        done: oneshot::Sender<Result<(), ModuleError>>,
    ) -> Self {
        Self {
            name: context.name().to_string(),
            parts: Some((module, context)),
            done: Some(done),
        }
    }
}

impl Actor for ModuleActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some((module, context)) = self.parts.take() else {
            return;
        };
        tracing::debug!(module = %self.name, "module started");
        context.options().readiness.started(&self.name);
        let run = actix::fut::wrap_future::<_, Self>(module.run(context));
        ctx.spawn(run.map(|outcome, actor, ctx| {
            if let Some(done) = actor.done.take() {
                let _ = done.send(outcome);
            }
            ctx.stop();
        }));
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        tracing::debug!(module = %self.name, "module stopped");
        if let Some(done) = self.done.take() {
            let _ = done.send(Err(ModuleError::Other(
                "the module's actor stopped before the module finished".into(),
            )));
        }
    }
}
