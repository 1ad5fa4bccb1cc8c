//! `bank`: transfers between a few accounts and reads of all of them; every read must
//! see the constant total, and no balance may go negative.
//!
//! A transfer reads both balances, then writes both with compare-and-set in one
//! transaction, so it commits only if neither changed in between. Accounts are named
//! `0`…`N-1`; reads return `{"0": balance, …}`.

use std::sync::Arc;

use faultline_checker::bank::BankOptions;
use faultline_checker::checkers::Bank;
use faultline_checker::history::Process;
use faultline_generator::{Generator, OpSpec, clients, each_thread, from_fn, once, until_ok};
use serde_json::{Map, Value, json};

use super::{Completion, InvokeFuture, Workload, WorkloadClient, WorkloadOptions};
use crate::store::{Micro, Store, StoreError};

/// Transfers move at most this much.
const MAX_AMOUNT: u64 = 5;

pub(super) fn workload(options: &WorkloadOptions) -> Result<Workload, String> {
    let accounts = options.accounts;
    if accounts < 2 {
        return Err(format!("bank: needs at least 2 accounts, got {accounts}"));
    }
    if options.total < 0 {
        return Err(format!(
            "bank: the total must not be negative, got {}",
            options.total
        ));
    }
    let names: Vec<String> = (0..accounts).map(|a| a.to_string()).collect();
    let n = accounts as u64;
    let generator = from_fn(move |ctx| {
        Some(if ctx.random_below(2) == 0 {
            OpSpec::new("read", Value::Null)
        } else {
            let from = ctx.random_below(n);
            let to = (from + 1 + ctx.random_below(n - 1)) % n;
            let amount = 1 + ctx.random_below(MAX_AMOUNT);
            OpSpec::new(
                "transfer",
                json!({"from": from, "to": to, "amount": amount}),
            )
        })
    });
    let final_reads = clients(each_thread(|_| {
        until_ok(once(OpSpec::new("read", Value::Null)))
    }));
    // Opening balances: the total spread evenly, the remainder in the first account.
    let share = options.total / accounts as i64;
    let remainder = options.total - share * accounts as i64;
    let setup = names
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let balance = share + if i == 0 { remainder } else { 0 };
            Micro::Write(account_key(a), json!(balance))
        })
        .collect();
    Ok(Workload {
        name: "bank",
        generator: generator.boxed(),
        final_generator: Some(final_reads.boxed()),
        setup: vec![setup],
        client: Box::new(BankClient {
            accounts: names.clone(),
        }),
        checker: Arc::new(Bank::new(BankOptions {
            total: options.total,
            accounts: Some(names),
            negative_allowed: false,
        })),
    })
}

/// An account's store key.
pub(super) fn account_key(account: &str) -> String {
    format!("bank{account}")
}

struct BankClient {
    accounts: Vec<String>,
}

impl BankClient {
    async fn read(&self, store: &mut dyn Store, op: &OpSpec) -> Completion {
        let micros: Vec<Micro> = self
            .accounts
            .iter()
            .map(|a| Micro::Read(account_key(a)))
            .collect();
        let accounts = &self.accounts;
        super::run_txn(store, &op.value, &micros, |values| {
            let balances: Map<String, Value> = accounts.iter().cloned().zip(values).collect();
            Value::Object(balances)
        })
        .await
    }

    async fn transfer(&self, store: &mut dyn Store, op: &OpSpec) -> Completion {
        let field = |name: &str| op.value.get(name).and_then(Value::as_u64);
        let (Some(from), Some(to), Some(amount)) = (field("from"), field("to"), field("amount"))
        else {
            return Completion::malformed(op);
        };
        let (from, to) = (account_key(&from.to_string()), account_key(&to.to_string()));
        let amount = amount as i64;
        let read = [Micro::Read(from.clone()), Micro::Read(to.clone())];
        let balances = match store.txn(&read).await {
            Ok(ok) => ok,
            // A read changes nothing: whatever happened to it, the transfer did not.
            Err(StoreError::Fail { error, node } | StoreError::Info { error, node }) => {
                return Completion::fail(op.value.clone(), error, node);
            }
        };
        let (Some(a), Some(b)) = (
            balances.values.first().and_then(Value::as_i64),
            balances.values.get(1).and_then(Value::as_i64),
        ) else {
            return Completion::fail(op.value.clone(), "missing-balance", Some(balances.node));
        };
        if a < amount {
            return Completion::fail(op.value.clone(), "insufficient-funds", Some(balances.node));
        }
        let write = [
            Micro::Cas(from, json!(a), json!(a - amount)),
            Micro::Cas(to, json!(b), json!(b + amount)),
        ];
        super::run_txn(store, &op.value, &write, |_| op.value.clone()).await
    }
}

impl WorkloadClient for BankClient {
    fn invoke<'a>(
        &'a self,
        store: &'a mut dyn Store,
        _process: Process,
        op: &'a OpSpec,
    ) -> InvokeFuture<'a> {
        Box::pin(async move {
            match op.f.as_str() {
                "read" => self.read(store, op).await,
                "transfer" => self.transfer(store, op).await,
                _ => Completion::malformed(op),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::testing::{MemStore, block_on};
    use faultline_checker::history::OpType;

    #[test]
    fn transfers_keep_the_total_and_refuse_overdrafts() {
        let w = workload(&WorkloadOptions::default()).unwrap();
        let mut store = MemStore::default();
        for txn in &w.setup {
            block_on(crate::store::Store::txn(&mut store, txn)).unwrap();
        }
        let p = Process::Client(0);
        let t = OpSpec::new("transfer", json!({"from": 0, "to": 1, "amount": 5}));
        assert_eq!(
            block_on(w.client.invoke(&mut store, p, &t)).op_type,
            OpType::Ok
        );
        let read = block_on(
            w.client
                .invoke(&mut store, p, &OpSpec::new("read", Value::Null)),
        );
        assert_eq!(
            read.value,
            json!({"0": 15, "1": 25, "2": 20, "3": 20, "4": 20})
        );
        let t = OpSpec::new("transfer", json!({"from": 0, "to": 1, "amount": 16}));
        let done = block_on(w.client.invoke(&mut store, p, &t));
        assert_eq!(
            (done.op_type, done.error.as_deref()),
            (OpType::Fail, Some("insufficient-funds"))
        );
        assert!(
            workload(&WorkloadOptions {
                accounts: 1,
                ..WorkloadOptions::default()
            })
            .is_err()
        );
    }
}
