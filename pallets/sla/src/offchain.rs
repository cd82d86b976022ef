//! The off-chain worker: probes providers' health URLs and submits signed verdicts.
//!
//! Runs on validator nodes whose keystore holds a prober key listed in [`Probers`]. In the
//! first half of each probe window (so verdicts land in the window they are for) it fetches
//! up to [`Config::MaxProbesPerBlock`] health URLs per block, taking providers round-robin
//! from a cursor kept in the node's local storage, and skipping those it has voted on.

use crate::*;
use alloc::vec::Vec;
use codec::Encode;
use frame_support::traits::Get;
use frame_system::{
	offchain::{CreateBare, SubmitTransaction},
	pallet_prelude::BlockNumberFor,
};
use sp_runtime::{
	offchain::{
		http,
		storage::StorageValueRef,
		storage_lock::{StorageLock, Time},
		Duration,
	},
	RuntimeAppPublic,
};

/// Local storage key of the round-robin cursor: the last provider probed.
const CURSOR_KEY: &[u8] = b"podchain::sla::cursor";
/// Local storage key of the lock that keeps two workers from probing at once.
const LOCK_KEY: &[u8] = b"podchain::sla::lock";

/// Why a worker run probed nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum Idle {
	/// Not a validator node.
	NotValidator,
	/// Past the first half of the window: verdicts might land in the next one.
	LateInWindow,
	/// No prober key of this node is listed in [`Probers`].
	NoProberKey,
	/// Another worker run holds the lock.
	Locked,
}

impl core::fmt::Display for Idle {
	fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
		f.write_str(match self {
			Idle::NotValidator => "not a validator",
			Idle::LateInWindow => "late in the probe window",
			Idle::NoProberKey => "no prober key in the keystore",
			Idle::Locked => "another worker is probing",
		})
	}
}

impl<T: Config> Pallet<T> {
	/// One worker run: probes the next providers and submits the verdicts. Returns how many
	/// were submitted.
	pub fn probe_providers(now: BlockNumberFor<T>) -> Result<u32, Idle> {
		if !sp_io::offchain::is_validator() {
			return Err(Idle::NotValidator);
		}
		let window = Self::window_of(now);
		let probe_window = T::ProbeWindow::get().max(1);
		if Self::blocks_left_in_window(now) * 2 <= probe_window {
			return Err(Idle::LateInWindow);
		}
		let (index, key) = Self::local_prober().ok_or(Idle::NoProberKey)?;
		let mut lock = StorageLock::<Time>::with_deadline(
			LOCK_KEY,
			Duration::from_millis(
				T::ProbeTimeoutMillis::get()
					.saturating_mul(u64::from(T::MaxProbesPerBlock::get()).saturating_add(1)),
			),
		);
		let _guard = lock.try_lock().map_err(|_| Idle::Locked)?;

		let cursor = StorageValueRef::persistent(CURSOR_KEY);
		let mut last: Option<T::AccountId> = cursor.get().ok().flatten();
		let max = T::MaxProbesPerBlock::get();
		let mut submitted = 0u32;
		let mut batch = T::Targets::providers_after(last.as_ref(), max.saturating_mul(2));
		if batch.is_empty() && last.is_some() {
			// End of the list: wrap around.
			batch = T::Targets::providers_after(None, max.saturating_mul(2));
		}
		for provider in batch {
			if submitted >= max {
				break;
			}
			last = Some(provider.clone());
			if Self::has_voted(&provider, window, index) {
				continue;
			}
			let Some(url) = T::Targets::health_url(&provider) else { continue };
			let up = Self::fetch_health(&url);
			let probe = Probe { provider, window, prober: index, up };
			if Self::submit(probe, &key) {
				submitted += 1;
			}
		}
		if let Some(last) = &last {
			cursor.set(last);
		}
		Ok(submitted)
	}

	/// This node's prober key and its index in [`Probers`].
	fn local_prober() -> Option<(u32, T::AuthorityId)> {
		let probers = Probers::<T>::get();
		let local: Vec<T::AuthorityId> = T::AuthorityId::all();
		probers
			.iter()
			.enumerate()
			.find(|(_, key)| local.contains(key))
			.map(|(index, key)| (index as u32, key.clone()))
	}

	fn has_voted(provider: &T::AccountId, window: WindowIndex, index: u32) -> bool {
		Records::<T>::get(provider).is_some_and(|r| r.window == window && r.tally.has_voted(index))
	}

	/// GETs `url`: up when it answers 2xx within [`Config::ProbeTimeoutMillis`].
	fn fetch_health(url: &[u8]) -> bool {
		let Ok(url) = core::str::from_utf8(url) else { return false };
		let deadline =
			sp_io::offchain::timestamp().add(Duration::from_millis(T::ProbeTimeoutMillis::get()));
		let Ok(pending) = http::Request::get(url).deadline(deadline).send() else {
			return false;
		};
		match pending.try_wait(deadline) {
			Ok(Ok(response)) => (200..300).contains(&response.code),
			_ => false,
		}
	}

	/// Signs `probe` and hands it to the transaction pool.
	fn submit(probe: Probe<T::AccountId>, key: &T::AuthorityId) -> bool {
		let Some(signature) = key.sign(&probe.encode()) else { return false };
		let provider = probe.provider.clone();
		let call = Call::<T>::submit_probe { probe, signature };
		let xt = <T as CreateBare<Call<T>>>::create_bare(call.into());
		let sent = SubmitTransaction::<T, Call<T>>::submit_transaction(xt).is_ok();
		if !sent {
			log::warn!(target: "runtime::sla", "probe of {provider:?} refused by the pool");
		}
		sent
	}
}
