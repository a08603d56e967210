//! The router write engine: one link to one router per change, its read,
//! write and undo, and the repair of a write that got no clear answer.

use crate::mikrotik::entities::mikrotik_router;
use crate::mikrotik::pool::{self, PooledClient, RouterPool};
use crate::mikrotik::pppoe::service::SecretValues;
use crate::mikrotik::routeros::{self, Client, Row};
use crate::mikrotik::service::MikrotikError;

/// One router, through a connection borrowed from the pool on first use
/// and kept while the link lives (a change's read, write and undo go over
/// one login). A failure that breaks the connection drops it and counts
/// towards the router's back-off, as [`RouterPool::run`] does; what follows
/// on the same link (the repair of an unclear write, an undo) then gets a
/// new connection even while the router is backed off.
pub(crate) struct RouterLink<'a> {
    router: &'a mikrotik_router::Model,
    pool: &'a RouterPool,
    pooled: Option<PooledClient>,
    /// Whether the router answered on `pooled`: a connection that did is
    /// not stale.
    answered: bool,
    /// Set by a failure (or from the start, for an undo): connect even
    /// while the router is backed off.
    setting_right: bool,
}

/// Whether a command may be sent again on a new connection when a pooled
/// one turns out to be stale: a read or a `set` of every field may; an
/// `add` or a `remove` could be applied twice.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Safe,
    Never,
}

impl<'a> RouterLink<'a> {
    pub(crate) fn new(router: &'a mikrotik_router::Model, pool: &'a RouterPool) -> Self {
        RouterLink {
            router,
            pool,
            pooled: None,
            answered: false,
            setting_right: false,
        }
    }

    /// A link for undoing changes already made: tried even while the
    /// router is backed off.
    pub(crate) fn to_set_right(router: &'a mikrotik_router::Model, pool: &'a RouterPool) -> Self {
        RouterLink {
            setting_right: true,
            ..RouterLink::new(router, pool)
        }
    }

    /// What follows undoes a change already made: tried even if the
    /// router gets backed off meanwhile.
    pub(crate) fn undoing(&mut self) {
        self.setting_right = true;
    }

    async fn connection(&mut self) -> Result<PooledClient, MikrotikError> {
        if let Some(pooled) = self.pooled.take() {
            if !pooled.client().is_closed() {
                return Ok(pooled);
            }
        }
        self.answered = false;
        if self.setting_right {
            self.pool.get_despite_backoff(self.router).await
        } else {
            self.pool.get(self.router).await
        }
    }

    /// Runs one command on the link's connection and tells the pool how it
    /// went.
    async fn call<T, F, Fut>(&mut self, repeat: Repeat, command: F) -> Result<T, MikrotikError>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, routeros::Error>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let pooled = self.connection().await?;
            let first_answer = !self.answered;
            match command(pooled.client().clone()).await {
                Ok(value) => {
                    self.pool.record_success(&pooled);
                    self.answered = true;
                    self.pooled = Some(pooled);
                    return Ok(value);
                }
                Err(err) if pool::breaks_connection(&err) => {
                    if attempt == 1
                        && first_answer
                        && repeat == Repeat::Safe
                        && pool::is_stale(&pooled, &err)
                    {
                        tracing::debug!(router = %self.router.name, error = %err, "a pooled connection had gone stale; reconnecting");
                        pooled.discard();
                        continue;
                    }
                    let err = self.fail(err);
                    self.pool.record_failure(pooled, &err);
                    self.setting_right = true;
                    return Err(err);
                }
                Err(err) => {
                    // A `!trap` is an answer: the connection stays.
                    self.answered = true;
                    self.pooled = Some(pooled);
                    return Err(self.fail(err));
                }
            }
        }
    }

    fn fail(&self, err: routeros::Error) -> MikrotikError {
        MikrotikError::from_client(&self.router.name, err)
    }

    async fn print_secrets(&mut self, query: &str) -> Result<Vec<Row>, MikrotikError> {
        self.call(Repeat::Safe, |client| async move {
            client.print("/ppp/secret", &[], &[query]).await
        })
        .await
    }

    /// The secret with this name, if any: its id and values.
    pub(crate) async fn find_secret(
        &mut self,
        name: &str,
    ) -> Result<Option<(String, SecretValues)>, MikrotikError> {
        let rows = self.print_secrets(&format!("?name={name}")).await?;
        Ok(rows.into_iter().find_map(|row| {
            let id = row.get(".id")?.clone();
            Some((id, SecretValues::from_row(&row)))
        }))
    }

    pub(crate) async fn find_secret_by_id(
        &mut self,
        id: &str,
    ) -> Result<Option<SecretValues>, MikrotikError> {
        let rows = self.print_secrets(&format!("?.id={id}")).await?;
        Ok(rows.first().map(SecretValues::from_row))
    }

    pub(crate) async fn add_secret(
        &mut self,
        values: &SecretValues,
    ) -> Result<String, MikrotikError> {
        let args = values.args(None);
        let args: &[(&str, &str)] = &args
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>();
        self.call(Repeat::Never, |client| async move {
            client.add("/ppp/secret", args).await
        })
        .await
    }

    /// Sets the secret `id`, which now holds `current`, to `values`.
    pub(crate) async fn set_secret(
        &mut self,
        id: &str,
        values: &SecretValues,
        current: &SecretValues,
    ) -> Result<(), MikrotikError> {
        let mut args = values.args(Some(current));
        args.insert(0, (".id", id.to_string()));
        let args: &[(&str, &str)] = &args
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>();
        self.call(Repeat::Safe, |client| async move {
            client
                .command("/ppp/secret/set", args, &[])
                .await
                .map(|_| ())
        })
        .await
    }

    pub(crate) async fn remove_secret(&mut self, id: &str) -> Result<(), MikrotikError> {
        self.call(Repeat::Never, |client| async move {
            client
                .command("/ppp/secret/remove", &[(".id", id)], &[])
                .await
                .map(|_| ())
        })
        .await
    }

    /// Adds a secret. An unclear failure (no answer, broken connection) is
    /// checked on the router: a secret that did arrive is removed again, so
    /// that a failed add leaves nothing behind.
    pub(crate) async fn add_or_nothing(
        &mut self,
        values: &SecretValues,
    ) -> Result<String, MikrotikError> {
        match self.add_secret(values).await {
            Ok(id) => Ok(id),
            Err(err) if err.is_ambiguous() => {
                let repaired = async {
                    // Only the secret this add made: another request's
                    // secret of the same name is left alone.
                    if let Some((id, found)) = self.find_secret(&values.name).await? {
                        if found == *values {
                            self.remove_secret(&id).await?;
                        }
                    }
                    Ok::<_, MikrotikError>(())
                }
                .await;
                self.report_repair("add", &values.name, repaired);
                Err(err)
            }
            Err(err) => Err(err),
        }
    }

    /// Sets a secret to `new`; on an unclear failure, sets `old` back.
    pub(crate) async fn set_or_nothing(
        &mut self,
        id: &str,
        old: &SecretValues,
        new: &SecretValues,
    ) -> Result<(), MikrotikError> {
        match self.set_secret(id, new, old).await {
            Ok(()) => Ok(()),
            Err(err) if err.is_ambiguous() => {
                let repaired = async {
                    let current = self.find_secret_by_id(id).await?;
                    if current.as_ref() != Some(old) {
                        self.set_secret(id, old, current.as_ref().unwrap_or(new))
                            .await?;
                    }
                    Ok::<_, MikrotikError>(())
                }
                .await;
                self.report_repair("set", &old.name, repaired);
                Err(err)
            }
            Err(err) => Err(err),
        }
    }

    /// Removes a secret; on an unclear failure, adds it back if it is gone.
    pub(crate) async fn remove_or_nothing(
        &mut self,
        id: &str,
        old: &SecretValues,
    ) -> Result<(), MikrotikError> {
        match self.remove_secret(id).await {
            Ok(()) => Ok(()),
            Err(err) if err.is_ambiguous() => {
                let repaired = async {
                    if self.find_secret(&old.name).await?.is_none() {
                        self.add_secret(old).await?;
                    }
                    Ok::<_, MikrotikError>(())
                }
                .await;
                self.report_repair("remove", &old.name, repaired);
                Err(err)
            }
            Err(err) => Err(err),
        }
    }

    fn report_repair(&self, verb: &str, secret: &str, repaired: Result<(), MikrotikError>) {
        if let Err(err) = repaired {
            tracing::error!(
                mikrotik_router.id = self.router.id,
                router = %self.router.name,
                secret,
                error = %err,
                "a {verb} of a PPP secret got no clear answer and the router could not be checked: \
                 it may differ from the database until the next change or sync"
            );
        }
    }
}
