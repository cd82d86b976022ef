//! Storage read in bulk at one block, through the node's `state_*` RPC.
//!
//! The typed client reads each storage item with a request of its own. Reading a provider's
//! deals one by one took a round 100 ms per deal when each request was a `chainHead_v1`
//! operation (about 44 ms each on loopback, see `podchain_chain::connect`); here the round reads
//! the index in pages and every deal in one request, so a round's chain reads cost a few
//! requests whatever the number of deals.
//!
//! The requests are sent one after the other: two in flight at once on the connection made one
//! of them wait about 40 ms (measured on loopback: 0 to 2 ms for the three requests in a row,
//! 43 ms with two of them joined).

use podchain_chain::{
	subxt::{
		self,
		ext::{codec::Decode, scale_decode::DecodeAsType},
		storage::Address,
	},
	AtBlock, ChainError, Node,
};
use std::collections::HashMap;

/// An answer that does not read as expected.
fn unexpected(message: String) -> ChainError {
	ChainError::rpc(subxt::Error::Other(message.into()))
}

/// Keys read per page of an index, and values per request: a request and its answer stay far
/// below the node's and the client's size limits (a deal is a few hundred bytes).
const PAGE: u32 = 1000;

/// Where an entry's values are decoded from: its value type in the block's metadata.
fn value_type<Addr: Address>(at: &AtBlock, address: &Addr) -> Result<u32, ChainError> {
	at.metadata_ref()
		.pallet_by_name(address.pallet_name())
		.and_then(|pallet| pallet.storage())
		.and_then(|storage| storage.entry_by_name(address.entry_name()))
		.map(|entry| entry.value_ty())
		.ok_or_else(|| {
			unexpected(format!(
				"no storage {}.{} in the chain's metadata",
				address.pallet_name(),
				address.entry_name()
			))
		})
}

/// The raw keys under `prefix` at `at`, page by page.
pub async fn keys_under(
	node: &Node,
	at: &AtBlock,
	prefix: &[u8],
) -> Result<Vec<Vec<u8>>, ChainError> {
	let mut keys: Vec<Vec<u8>> = Vec::new();
	loop {
		let start = keys.last().map(Vec::as_slice);
		let page = node
			.rpc
			.state_get_keys_paged(prefix, PAGE, start, Some(at.block_hash()))
			.await
			.map_err(ChainError::rpc)?;
		let full = page.len() == PAGE as usize;
		keys.extend(page);
		if !full {
			return Ok(keys);
		}
	}
}

/// The raw values of `keys` at `at`, a request per [`PAGE`] keys; `None` where there is none.
pub async fn raw_values(
	node: &Node,
	at: &AtBlock,
	keys: &[Vec<u8>],
) -> Result<Vec<Option<Vec<u8>>>, ChainError> {
	let mut found: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
	for page in keys.chunks(PAGE as usize) {
		let sets = node
			.rpc
			.state_query_storage_at(page.iter().map(Vec::as_slice), Some(at.block_hash()))
			.await
			.map_err(ChainError::rpc)?;
		for set in sets {
			for (key, value) in set.changes {
				if let Some(value) = value {
					found.insert(key.0, value.0);
				}
			}
		}
	}
	Ok(keys.iter().map(|key| found.remove(key)).collect())
}

/// Decodes raw `values` of the storage entry at `address`.
pub fn decode_values<Addr: Address>(
	at: &AtBlock,
	address: &Addr,
	values: Vec<Option<Vec<u8>>>,
) -> Result<Vec<Option<Addr::Value>>, ChainError> {
	let ty = value_type(at, address)?;
	let types = at.metadata_ref().types();
	values
		.into_iter()
		.map(|value| {
			value
				.map(|bytes| {
					Addr::Value::decode_as_type(&mut bytes.as_slice(), ty, types).map_err(|e| {
						unexpected(format!(
							"{}.{}: cannot decode a value: {e}",
							address.pallet_name(),
							address.entry_name()
						))
					})
				})
				.transpose()
		})
		.collect()
}

/// The SCALE-encoded answer of runtime API `function` (no arguments) at `at`, decoded.
pub async fn runtime_call<T: Decode>(
	node: &Node,
	at: &AtBlock,
	function: &str,
) -> Result<T, ChainError> {
	let bytes = node
		.rpc
		.state_call(function, None, Some(at.block_hash()))
		.await
		.map_err(ChainError::rpc)?;
	T::decode(&mut bytes.as_slice())
		.map_err(|e| unexpected(format!("{function}: cannot decode its answer: {e}")))
}
