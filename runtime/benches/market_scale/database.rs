//! The filled state in a ParityDB database opened as the node opens its own (sc-client-db, with
//! the node's default trie cache), and runtime code timed against it.
//!
//! The in-memory externalities of the rest of the benchmark keep the whole trie in a hash map
//! and cache nothing: each read walks the trie from its root, and at a million deals that map
//! no longer fits the processor's caches. The node instead reads ParityDB through a shared
//! trie cache. Timing the same code here tells the backend's cost from the market's.

use podchain_runtime::{opaque::Block, VERSION};
use sc_client_api::backend::TrieCacheContext;
use sc_client_api::backend::{Backend as _, BlockImportOperation as _, NewBlockState};
use sc_client_db::{Backend, BlocksPruning, DatabaseSettings, DatabaseSource, PruningMode};
use sp_runtime::traits::{Block as BlockT, Hash as _, Header as _};
use sp_state_machine::{Ext, OverlayedChanges};
use sp_storage::Storage;
use std::{path::PathBuf, time::Instant};

/// The node's default trie cache (`--trie-cache-size`).
const TRIE_CACHE_BYTES: usize = 1024 * 1024 * 1024;

type Hash = <Block as BlockT>::Hash;

/// A ParityDB database holding one state as its genesis block.
pub struct Database {
	path: PathBuf,
	genesis: Hash,
	_dir: tempfile::TempDir,
}

impl Database {
	/// Writes `storage` as the genesis state of a new database in a temporary directory.
	pub fn create(storage: Storage) -> Self {
		let dir = tempfile::Builder::new()
			.prefix("podchain-market-scale-")
			.tempdir_in(std::env::temp_dir())
			.expect("a temporary directory");
		let path = dir.path().join("paritydb");
		let backend = open(&path);
		let mut op = backend.begin_operation().expect("an import operation");
		let state_version = VERSION.state_version();
		let root = op.reset_storage(storage, state_version).expect("the state is written");
		let extrinsics_root =
			<<Block as BlockT>::Header as sp_runtime::traits::Header>::Hashing::trie_root(
				Vec::new(),
				state_version,
			);
		let header = <Block as BlockT>::Header::new(
			0,
			extrinsics_root,
			root,
			Default::default(),
			Default::default(),
		);
		let genesis = header.hash();
		op.set_block_data(header, Some(Vec::new()), None, None, NewBlockState::Final, true)
			.expect("the genesis block");
		backend.commit_operation(op).expect("the genesis block is committed");
		Database { path, genesis, _dir: dir }
	}

	/// Runs `f` against the database, rolled back each time: the first run on a freshly
	/// opened database (cold: nothing cached but what the operating system keeps), then
	/// `warm_runs` more on the same state. Returns the cold time and the median warm time, in
	/// microseconds.
	pub fn time<R>(&self, warm_runs: usize, mut f: impl FnMut() -> R) -> (f64, f64) {
		let backend = open(&self.path);
		let state =
			backend.state_at(self.genesis, TrieCacheContext::Trusted).expect("the genesis state");
		let mut once = || {
			let mut overlay = OverlayedChanges::default();
			let mut ext = Ext::new(&mut overlay, &state, None);
			let started = Instant::now();
			sp_externalities::set_and_run_with_externalities(&mut ext, || {
				super::rolled_back(&mut f);
			});
			started.elapsed().as_secs_f64() * 1e6
		};
		let cold = once();
		let mut warm: Vec<f64> = (0..warm_runs).map(|_| once()).collect();
		warm.sort_by(|a, b| a.total_cmp(b));
		(cold, warm.get(warm.len() / 2).copied().unwrap_or(cold))
	}
}

/// Opens (creating it if needed) the ParityDB database at `path` as the node does.
fn open(path: &std::path::Path) -> Backend<Block> {
	let settings = DatabaseSettings {
		trie_cache_maximum_size: Some(TRIE_CACHE_BYTES),
		state_pruning: Some(PruningMode::ArchiveAll),
		source: DatabaseSource::ParityDb { path: path.to_owned() },
		blocks_pruning: BlocksPruning::KeepAll,
		pruning_filters: Vec::new(),
		metrics_registry: None,
	};
	Backend::new(settings, 0).expect("the database opens")
}
