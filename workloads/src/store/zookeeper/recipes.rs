//! ZooKeeper's own recipes on [`ZookeeperStore`] (see the parent module's
//! documentation): a set is a znode with a child per element, a lock a znode with an
//! ephemeral sequential child per waiter.

use super::*;

impl ZookeeperStore {
    /// Creates the persistent znode `parent` if it does not exist (another client may
    /// make it first). It is no element and no lock: when its creation's outcome is
    /// unknown the caller has still done nothing, so every error is a `Fail`.
    async fn ensure_parent(
        &mut self,
        client: &zk::Client,
        parent: &str,
        deadline: Instant,
    ) -> Result<(), StoreError> {
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        match self
            .step(deadline, client.create(parent, b"", &persistent))
            .await
        {
            Ok(_) | Err(StepError::Zk(zk::Error::NodeExists)) => Ok(()),
            Err(e) => Err(self.fail(format!("parent: {}", reason(&e)))),
        }
    }

    /// Adds `element` to the set `key`: a `create` of the child znode
    /// `/faultline-KEY/e-ELEMENT` (of the set's znode first, when it is the first
    /// element). `NodeExists` means the element is already there (an earlier add whose
    /// outcome was unknown took effect): `ok`.
    pub(super) async fn set_add(
        &mut self,
        key: &str,
        element: &Value,
    ) -> Result<TxnOk, StoreError> {
        let deadline = Instant::now() + self.timeout;
        let client = self.session(deadline).await?;
        let parent = path(key);
        let child = format!("{parent}/{}", element_name(element));
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let mut result = self
            .step(deadline, client.create(&child, b"", &persistent))
            .await
            .map(drop);
        if let Err(StepError::Zk(zk::Error::NoNode)) = result {
            self.ensure_parent(&client, &parent, deadline).await?;
            result = self
                .step(deadline, client.create(&child, b"", &persistent))
                .await
                .map(drop);
        }
        match result {
            Ok(()) | Err(StepError::Zk(zk::Error::NodeExists)) => Ok(self.one(Value::Null)),
            Err(e) => Err(self.commit_error(&e)),
        }
    }

    /// The elements of the set `key`: `getChildren` of its znode (after a `sync` in
    /// [`ReadMode::Linearizable`]); `null` when the set's znode does not exist.
    pub(super) async fn set_read(&mut self, key: &str) -> Result<TxnOk, StoreError> {
        let deadline = Instant::now() + self.timeout;
        let client = self.session(deadline).await?;
        if self.read_mode == ReadMode::Linearizable {
            if let Err(e) = self.step(deadline, client.sync("/")).await {
                return Err(self.fail(format!("sync: {}", reason(&e))));
            }
        }
        let children = match self.step(deadline, client.list_children(&path(key))).await {
            Ok(children) => children,
            Err(StepError::Zk(zk::Error::NoNode)) => return Ok(self.one(Value::Null)),
            Err(e) => return Err(self.fail(reason(&e))),
        };
        let mut elements = Vec::with_capacity(children.len());
        for child in &children {
            match element_of(child) {
                Some(element) => elements.push(element),
                None => return Err(self.fail("bad-value")),
            }
        }
        Ok(self.one(Value::Array(elements)))
    }

    /// Takes the lock `key` for `owner` with ZooKeeper's lock recipe: `create` an
    /// ephemeral sequential child `/faultline-KEY/lock-N`, list the children, and hold
    /// the lock when ours is the lowest; otherwise watch the child just before ours
    /// and look again when it changes (it went away), until the call's time is nearly
    /// out. Then our child is withdrawn (`delete`): `Fail` `busy` when that is certain,
    /// `Info` when the delete's outcome is unknown (our child may still be there, and
    /// may even have become the lowest, until the session ends).
    ///
    /// The lock belongs to the session: if the session ends (expires on a partition or
    /// a pause, or is dropped after a lost connection) ZooKeeper deletes the child and
    /// another client can take the lock while `owner` believes it still holds it. That
    /// is ZooKeeper's documented hazard and is left in plain view: the mutex checker
    /// may find two holders. `owner`'s next `acquire` or `release` of it then fails
    /// `lock-lost` (once), when this store saw the session go; a `release` also when
    /// ZooKeeper answers that the child is gone.
    pub(super) async fn acquire(&mut self, key: &str, owner: &Value) -> Result<TxnOk, StoreError> {
        let deadline = Instant::now() + self.timeout;
        if self.held.contains_key(key) {
            return Err(self.fail("already-held"));
        }
        if self.lost.get(key) == Some(owner) {
            // The holder hears first that its lock went with its session.
            self.lost.remove(key);
            return Err(self.fail("lock-lost"));
        }
        let client = self.session(deadline).await?;
        let parent = path(key);
        let prefix = format!("{parent}/{LOCK_PREFIX}");
        let ephemeral = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let mut created = self
            .step(deadline, client.create(&prefix, b"", &ephemeral))
            .await;
        if let Err(StepError::Zk(zk::Error::NoNode)) = created {
            self.ensure_parent(&client, &parent, deadline).await?;
            created = self
                .step(deadline, client.create(&prefix, b"", &ephemeral))
                .await;
        }
        let sequence = match created {
            Ok((_, sequence)) => sequence,
            // Nothing certain was made: a definite error is a `Fail`, a lost answer
            // an `Info` (the session is dropped, and the child with it).
            Err(e) => return Err(self.commit_error(&e)),
        };
        let ours = sequence.into_i64();
        let node = format!("{prefix}{sequence}");
        let wait_until = deadline - (self.timeout / 5).min(WITHDRAW_RESERVE);
        let why = loop {
            let children = match self.step(wait_until, client.list_children(&parent)).await {
                Ok(children) => children,
                Err(e) => break reason(&e),
            };
            let before = match predecessor(&children, ours) {
                Ok(None) => {
                    self.lost.remove(key);
                    self.held.insert(
                        key.to_string(),
                        Held {
                            owner: owner.clone(),
                            node,
                        },
                    );
                    return Ok(self.one(Value::Null));
                }
                Ok(Some(before)) => before,
                // Our child is gone: its session ended (and every lock it held), and
                // this acquire holds nothing.
                Err(()) => {
                    self.drop_session();
                    return Err(self.fail("session-ended"));
                }
            };
            let watched = self
                .step(
                    wait_until,
                    client.check_and_watch_stat(&format!("{parent}/{before}")),
                )
                .await;
            match watched {
                // Gone already: look again.
                Ok((None, _)) => continue,
                Ok((Some(_), watcher)) => {
                    if tokio::time::timeout_at(wait_until, watcher.changed())
                        .await
                        .is_err()
                    {
                        break "busy".to_string();
                    }
                }
                Err(e) => break reason(&e),
            }
        };
        // Withdraw: our child must not take the lock after we gave up.
        if self.client.is_none() {
            // The session was dropped: the child goes with it, but not yet for sure.
            return Err(StoreError::Info {
                error: why,
                node: Some(self.name.clone()),
            });
        }
        match self.step(deadline, client.delete(&node, None)).await {
            Ok(()) | Err(StepError::Zk(zk::Error::NoNode)) => Err(self.fail(why)),
            Err(e) => Err(StoreError::Info {
                error: format!("{why}, then withdrawing: {}", reason(&e)),
                node: Some(self.name.clone()),
            }),
        }
    }

    /// Releases the lock `key` that `owner` holds: `delete` of our child. `Fail`
    /// `not-held` when `owner` does not hold it through this session, `lock-lost` when
    /// it did but the session (and so the child) has gone since.
    pub(super) async fn release(&mut self, key: &str, owner: &Value) -> Result<TxnOk, StoreError> {
        let deadline = Instant::now() + self.timeout;
        let node = match self.held.get(key) {
            Some(held) if held.owner == *owner => held.node.clone(),
            _ => {
                let lost = self.lost.get(key) == Some(owner);
                if lost {
                    self.lost.remove(key);
                }
                return Err(self.fail(if lost { "lock-lost" } else { "not-held" }));
            }
        };
        let client = self.session(deadline).await?;
        match self.step(deadline, client.delete(&node, None)).await {
            Ok(()) => {
                self.held.remove(key);
                Ok(self.one(Value::Null))
            }
            // The child is gone without our delete: the session that owned it ended.
            Err(StepError::Zk(zk::Error::NoNode | zk::Error::SessionExpired)) => {
                self.drop_session();
                self.lost.remove(key);
                Err(self.fail("lock-lost"))
            }
            Err(e) => {
                let error = self.commit_error(&e);
                if matches!(error, StoreError::Info { .. }) {
                    // Dropped with the session (or about to be): no longer ours.
                    self.held.remove(key);
                    self.lost.remove(key);
                }
                Err(error)
            }
        }
    }
}

/// The name of a set's child znode for `element`: `e-` and its JSON text, escaped.
pub(super) fn element_name(element: &Value) -> String {
    format!("{ELEMENT_PREFIX}{}", escape(&element.to_string()))
}

/// The element a set's child znode holds, from its name; `None` for a name that
/// [`element_name`] did not write.
pub(super) fn element_of(name: &str) -> Option<Value> {
    let text = unescape(name.strip_prefix(ELEMENT_PREFIX)?)?;
    serde_json::from_str(&text).ok()
}

/// The sequence number of a lock's child znode (`lock-0000000007` → 7); `None` for
/// any other name.
pub(super) fn lock_sequence(name: &str) -> Option<i64> {
    let digits = name.strip_prefix(LOCK_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Where `ours` (a sequence number) stands among a lock's `children`: `Ok(None)` when
/// it is the lowest (the lock is ours), `Ok(Some(name))` for the child just before it
/// (the one to wait for), `Err(())` when ours is not among them (our znode is gone:
/// its session ended). Names that are not lock children are ignored.
pub(super) fn predecessor(children: &[String], ours: i64) -> Result<Option<String>, ()> {
    if !children.iter().any(|c| lock_sequence(c) == Some(ours)) {
        return Err(());
    }
    Ok(children
        .iter()
        .filter_map(|c| lock_sequence(c).map(|n| (n, c)))
        .filter(|(n, _)| *n < ours)
        .max_by_key(|(n, _)| *n)
        .map(|(_, c)| c.clone()))
}
