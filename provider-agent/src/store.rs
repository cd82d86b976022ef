//! The agent's crash-safe state (redb): deals' manifests, encrypted at rest, the usage
//! integrated since each deal's last report, and the report batch in flight.
//!
//! Each change is one ACID transaction, so a crash at any point leaves either the old state
//! or the new one. Usage moves out of a meter only once its report is final on chain
//! ([`Store::commit_report`]); a report that never made it stays in the meters.

use crate::metering::{Meter, Usage};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Sealed manifests by deal id.
const MANIFESTS: TableDefinition<u64, &[u8]> = TableDefinition::new("manifests");
/// Meters (serde JSON) by deal id.
const METERS: TableDefinition<u64, &[u8]> = TableDefinition::new("meters");
/// The report batch in flight (serde JSON), under key 0.
const IN_FLIGHT: TableDefinition<u8, &[u8]> = TableDefinition::new("in_flight");
/// Which chain the state belongs to, and how far it was followed.
const CHAIN: TableDefinition<&str, &[u8]> = TableDefinition::new("chain");
/// Key of the chain's genesis hash in [`CHAIN`].
const GENESIS: &str = "genesis";
/// Key of the highest finalized block acted on in [`CHAIN`] (u32 little endian).
const HIGHEST: &str = "highest_finalized";

/// One deal's line in a report batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportLine {
	/// The deal.
	pub deal: u64,
	/// First block of the period (the deal's `settled_until` on chain).
	pub period_start: u32,
	/// Block after the period.
	pub period_end: u32,
	/// What the line bills (the measured usage capped at what the chain allows).
	pub usage: Usage,
	/// What leaves the meter when the line is final: the billed usage, and any excess beyond
	/// one period's cap; the rest of the excess is carried to the next line.
	pub measured: Usage,
}

/// A `report_usage` batch submitted but not yet known to be final.
///
/// Its fate is only decided once it is known: either the provider account's nonce on chain
/// has moved past `nonce` (this transaction, or another with the same nonce, is in a finalized
/// block: each deal's `settled_until` then tells which lines were billed), or the finalized
/// chain is past `valid_until` (the mortal transaction can no longer be included: nothing was
/// billed). Deciding earlier could leave a pending transaction to bill usage that is reported
/// again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
	/// The provider account's nonce the transaction was signed with.
	pub nonce: u64,
	/// The last block the transaction can be included in (its mortality).
	pub valid_until: u32,
	/// The lines of the batch.
	pub lines: Vec<ReportLine>,
}

/// A failure of the state store.
#[derive(Debug, thiserror::Error)]
#[error("agent state store: {0}")]
pub struct StoreError(String);

fn err(e: impl std::fmt::Display) -> StoreError {
	StoreError(e.to_string())
}

/// The agent's state on disk.
pub struct Store {
	db: Database,
}

impl Store {
	/// Opens (or creates) the store at `path`.
	pub fn open(path: &Path) -> Result<Self, StoreError> {
		let db = Database::create(path).map_err(err)?;
		let txn = db.begin_write().map_err(err)?;
		// Tables exist from the start so reads never meet a missing table.
		txn.open_table(MANIFESTS).map_err(err)?;
		txn.open_table(METERS).map_err(err)?;
		txn.open_table(IN_FLIGHT).map_err(err)?;
		txn.open_table(CHAIN).map_err(err)?;
		txn.commit().map_err(err)?;
		Ok(Self { db })
	}

	/// Binds the state to the chain with `genesis` on first use; afterwards, whether `genesis`
	/// is that chain. State of one chain must never be reconciled against another.
	pub fn is_same_chain(&self, genesis: &[u8; 32]) -> Result<bool, StoreError> {
		let txn = self.db.begin_write().map_err(err)?;
		let same = {
			let mut table = txn.open_table(CHAIN).map_err(err)?;
			let known = table.get(GENESIS).map_err(err)?.map(|v| v.value().to_vec());
			match known {
				Some(known) => known == genesis,
				None => {
					table.insert(GENESIS, genesis.as_slice()).map_err(err)?;
					true
				}
			}
		};
		txn.commit().map_err(err)?;
		Ok(same)
	}

	/// Records that finalized block `number` is being acted on, unless a higher one was: then
	/// returns `false` (the node serving this block is behind what the agent already saw, and
	/// deals it lacks may well exist).
	pub fn advance_to(&self, number: u32) -> Result<bool, StoreError> {
		let txn = self.db.begin_write().map_err(err)?;
		let ahead = {
			let mut table = txn.open_table(CHAIN).map_err(err)?;
			let highest = table
				.get(HIGHEST)
				.map_err(err)?
				.and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
				.map_or(0, u32::from_le_bytes);
			if number >= highest {
				table.insert(HIGHEST, number.to_le_bytes().as_slice()).map_err(err)?;
			}
			number >= highest
		};
		txn.commit().map_err(err)?;
		Ok(ahead)
	}

	/// Keeps a deal's sealed manifest, replacing an older one.
	pub fn put_manifest(&self, deal: u64, sealed: &[u8]) -> Result<(), StoreError> {
		let txn = self.db.begin_write().map_err(err)?;
		txn.open_table(MANIFESTS).map_err(err)?.insert(deal, sealed).map_err(err)?;
		txn.commit().map_err(err)
	}

	/// A deal's sealed manifest.
	pub fn manifest(&self, deal: u64) -> Result<Option<Vec<u8>>, StoreError> {
		let txn = self.db.begin_read().map_err(err)?;
		let table = txn.open_table(MANIFESTS).map_err(err)?;
		Ok(table.get(deal).map_err(err)?.map(|v| v.value().to_vec()))
	}

	/// A deal's meter (empty if it has none yet).
	pub fn meter(&self, deal: u64) -> Result<Meter, StoreError> {
		let txn = self.db.begin_read().map_err(err)?;
		let table = txn.open_table(METERS).map_err(err)?;
		match table.get(deal).map_err(err)? {
			Some(bytes) => serde_json::from_slice(bytes.value()).map_err(err),
			None => Ok(Meter::default()),
		}
	}

	/// Changes a deal's meter in one transaction (reading and writing it separately could
	/// lose a change made in between, such as a committed report).
	pub fn update_meter(
		&self,
		deal: u64,
		change: impl FnOnce(&mut Meter),
	) -> Result<(), StoreError> {
		let txn = self.db.begin_write().map_err(err)?;
		{
			let mut table = txn.open_table(METERS).map_err(err)?;
			let mut meter: Meter = match table.get(deal).map_err(err)? {
				Some(bytes) => serde_json::from_slice(bytes.value()).map_err(err)?,
				None => Meter::default(),
			};
			change(&mut meter);
			let bytes = serde_json::to_vec(&meter).map_err(err)?;
			table.insert(deal, bytes.as_slice()).map_err(err)?;
		}
		txn.commit().map_err(err)
	}

	/// Records a batch about to be submitted. Fails if another one is still in flight: the
	/// agent settles that one first, so nothing is reported twice.
	pub fn begin_report(&self, batch: &InFlight) -> Result<(), StoreError> {
		let bytes = serde_json::to_vec(batch).map_err(err)?;
		let txn = self.db.begin_write().map_err(err)?;
		{
			let mut table = txn.open_table(IN_FLIGHT).map_err(err)?;
			if table.get(0).map_err(err)?.is_some() {
				return Err(StoreError("a report batch is already in flight".into()));
			}
			table.insert(0, bytes.as_slice()).map_err(err)?;
		}
		txn.commit().map_err(err)
	}

	/// The batch in flight, if any (after a restart: settle it before anything else).
	pub fn in_flight(&self) -> Result<Option<InFlight>, StoreError> {
		let txn = self.db.begin_read().map_err(err)?;
		let table = txn.open_table(IN_FLIGHT).map_err(err)?;
		match table.get(0).map_err(err)? {
			Some(bytes) => Ok(Some(serde_json::from_slice(bytes.value()).map_err(err)?)),
			None => Ok(None),
		}
	}

	/// Closes the batch in flight: the measured usage of the lines in `billed` (final on
	/// chain) leaves their meters, in the same transaction; the others stay to be reported
	/// again.
	pub fn commit_report(&self, billed: &[ReportLine]) -> Result<(), StoreError> {
		let txn = self.db.begin_write().map_err(err)?;
		{
			let mut meters = txn.open_table(METERS).map_err(err)?;
			for line in billed {
				let mut meter: Meter = match meters.get(line.deal).map_err(err)? {
					Some(bytes) => serde_json::from_slice(bytes.value()).map_err(err)?,
					None => continue,
				};
				meter.take(&line.measured);
				let bytes = serde_json::to_vec(&meter).map_err(err)?;
				meters.insert(line.deal, bytes.as_slice()).map_err(err)?;
			}
			txn.open_table(IN_FLIGHT).map_err(err)?.remove(0).map_err(err)?;
		}
		txn.commit().map_err(err)
	}

	/// Forgets a deal that ended: its manifest and meter.
	pub fn forget(&self, deal: u64) -> Result<(), StoreError> {
		let txn = self.db.begin_write().map_err(err)?;
		txn.open_table(MANIFESTS).map_err(err)?.remove(deal).map_err(err)?;
		txn.open_table(METERS).map_err(err)?.remove(deal).map_err(err)?;
		txn.commit().map_err(err)
	}

	/// Deals the store holds anything for.
	pub fn deals(&self) -> Result<Vec<u64>, StoreError> {
		let txn = self.db.begin_read().map_err(err)?;
		let mut deals = Vec::new();
		for table in [MANIFESTS, METERS] {
			let table = txn.open_table(table).map_err(err)?;
			for entry in table.iter().map_err(err)? {
				deals.push(entry.map_err(err)?.0.value());
			}
		}
		deals.sort_unstable();
		deals.dedup();
		Ok(deals)
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::metering::Sample;

	fn meter_with_cpu_seconds(seconds: u64) -> Meter {
		let mut meter = Meter::default();
		meter.record("web", Sample { at_millis: 0, ..Default::default() });
		let cpu_nanos = seconds * 1_000_000_000;
		meter.record("web", Sample { at_millis: 1000, cpu_nanos, ..Default::default() });
		meter
	}

	#[test]
	fn state_survives_reopening() {
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("agent.redb");
		{
			let store = Store::open(&path).unwrap();
			store.put_manifest(7, b"sealed").unwrap();
			store.update_meter(7, |m| *m = meter_with_cpu_seconds(2)).unwrap();
		}
		let store = Store::open(&path).unwrap();
		assert_eq!(store.manifest(7).unwrap().as_deref(), Some(&b"sealed"[..]));
		assert_eq!(store.meter(7).unwrap().pending().cpu_millicore_seconds, 2_000);
		assert_eq!(store.deals().unwrap(), vec![7]);
		store.forget(7).unwrap();
		assert!(store.deals().unwrap().is_empty());
	}

	#[test]
	fn state_is_bound_to_one_chain_and_never_goes_back() {
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("agent.redb");
		{
			let store = Store::open(&path).unwrap();
			assert!(store.is_same_chain(&[1; 32]).unwrap());
			assert!(store.advance_to(10).unwrap());
			assert!(store.advance_to(10).unwrap(), "the same block again is fine");
		}
		let store = Store::open(&path).unwrap();
		assert!(store.is_same_chain(&[1; 32]).unwrap());
		assert!(!store.is_same_chain(&[2; 32]).unwrap(), "another network");
		assert!(!store.advance_to(9).unwrap(), "a node behind what was seen");
		assert!(store.advance_to(11).unwrap());
	}

	#[test]
	fn usage_leaves_a_meter_only_when_its_report_is_committed() {
		let dir = tempfile::tempdir().unwrap();
		let store = Store::open(&dir.path().join("agent.redb")).unwrap();
		store.update_meter(1, |m| *m = meter_with_cpu_seconds(3)).unwrap();
		store.update_meter(2, |m| *m = meter_with_cpu_seconds(5)).unwrap();
		let line = |deal, cpu| ReportLine {
			deal,
			period_start: 10,
			period_end: 20,
			usage: Usage { cpu_millicore_seconds: cpu, ..Default::default() },
			measured: Usage { cpu_millicore_seconds: cpu, ..Default::default() },
		};
		let batch =
			InFlight { nonce: 4, valid_until: 84, lines: vec![line(1, 3_000), line(2, 5_000)] };
		store.begin_report(&batch).unwrap();
		assert!(store.begin_report(&batch).is_err(), "one batch at a time");
		assert_eq!(store.in_flight().unwrap(), Some(batch));
		// Only deal 1's line became final on chain.
		store.commit_report(&[line(1, 3_000)]).unwrap();
		assert_eq!(store.in_flight().unwrap(), None);
		assert_eq!(store.meter(1).unwrap().pending().cpu_millicore_seconds, 0);
		assert_eq!(store.meter(2).unwrap().pending().cpu_millicore_seconds, 5_000);
	}
}
