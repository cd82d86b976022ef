//! The off-chain worker: probes providers' health URLs and submits signed verdicts.
//!
//! Runs on validator nodes whose keystore holds a prober key listed in [`Probers`]. In the
//! first half of each probe window (so verdicts land in the window they are for) it fetches up
//! to [`Config::MaxProbesPerBlock`] health URLs per block, all at once with one timeout.
//!
//! A provider's window is decided by a majority of all probers, so they must probe the same
//! providers: each window starts at a point of the registry's provider list derived from the
//! window index (the same for every prober) and walks on round-robin, so with more providers
//! than a window's probes every provider still gets its turn. A node's own position is kept in
//! its local storage.
//!
//! Health URLs on loopback, private or link-local addresses are not fetched (a provider must
//! not point probers at their own node) unless [`AllowLocalTargets`] is set, as on development
//! chains: such a provider is found down.

use crate::*;
use alloc::vec::Vec;
use codec::{Decode, Encode};
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
	traits::TrailingZeroInput,
	RuntimeAppPublic,
};

/// Local storage key of the walk through the provider list.
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
	/// Every provider has had its turn this window.
	Done,
}

impl core::fmt::Display for Idle {
	fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
		f.write_str(match self {
			Idle::NotValidator => "not a validator",
			Idle::LateInWindow => "late in the probe window",
			Idle::NoProberKey => "no prober key in the keystore",
			Idle::Locked => "another worker is probing",
			Idle::Done => "every provider probed this window",
		})
	}
}

/// Where a node is in its walk through the provider list.
#[derive(Encode, Decode, Default)]
struct Cursor<AccountId> {
	/// The window of the walk.
	window: WindowIndex,
	/// The first provider probed in the window: meeting it again ends the walk.
	first: Option<AccountId>,
	/// The last provider probed.
	last: Option<AccountId>,
	/// Whether the walk went round.
	done: bool,
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
		let timeout = T::ProbeTimeoutMillis::get();
		let mut lock = StorageLock::<Time>::with_deadline(
			LOCK_KEY,
			Duration::from_millis(timeout.saturating_mul(2)),
		);
		let _guard = lock.try_lock().map_err(|_| Idle::Locked)?;

		let store = StorageValueRef::persistent(CURSOR_KEY);
		let mut cursor = store
			.get::<Cursor<T::AccountId>>()
			.ok()
			.flatten()
			.filter(|c| c.window == window)
			.unwrap_or(Cursor {
				window,
				first: None,
				last: Self::window_start_point(window),
				done: false,
			});
		if cursor.done {
			return Err(Idle::Done);
		}
		let targets = Self::next_targets(&mut cursor, window, index);
		store.set(&cursor);

		let verdicts = Self::fetch_health(&targets);
		let mut submitted = 0;
		for (provider, up) in verdicts {
			let probe = Probe { provider, window, prober: index, up };
			if Self::submit(probe, &key) {
				submitted += 1;
			}
		}
		Ok(submitted)
	}

	/// Where every prober starts its walk in `window`: a pseudo-random point of the list, the
	/// same for all.
	fn window_start_point(window: WindowIndex) -> Option<T::AccountId> {
		let seed = sp_io::hashing::blake2_256(&(b"podchain::sla::start", window).encode());
		T::AccountId::decode(&mut TrailingZeroInput::new(&seed)).ok()
	}

	/// The next providers to probe with their health URLs, advancing `cursor`: up to
	/// [`Config::MaxProbesPerBlock`] that this prober has not voted on in `window`.
	fn next_targets(
		cursor: &mut Cursor<T::AccountId>,
		window: WindowIndex,
		index: u32,
	) -> Vec<(T::AccountId, Vec<u8>)> {
		let max = T::MaxProbesPerBlock::get();
		let mut targets = Vec::new();
		let mut wrapped = false;
		while (targets.len() as u32) < max {
			let mut batch = T::Targets::providers_after(cursor.last.as_ref(), max);
			if batch.is_empty() {
				if wrapped {
					// Nothing registered at all.
					cursor.done = true;
					break;
				}
				wrapped = true;
				batch = T::Targets::providers_after(None, max);
				if batch.is_empty() {
					cursor.done = true;
					break;
				}
			}
			for provider in batch {
				if cursor.first.as_ref() == Some(&provider) {
					cursor.done = true;
					return targets;
				}
				if cursor.first.is_none() {
					cursor.first = Some(provider.clone());
				}
				cursor.last = Some(provider.clone());
				if Self::has_voted(&provider, window, index) {
					continue;
				}
				if let Some(url) = T::Targets::health_url(&provider) {
					targets.push((provider, url));
				}
				if targets.len() as u32 >= max {
					break;
				}
			}
		}
		targets
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

	/// GETs every target's health URL at once: up when it answers 2xx within
	/// [`Config::ProbeTimeoutMillis`]. A URL that is not UTF-8, or local where that is not
	/// allowed, is down without a request.
	fn fetch_health(targets: &[(T::AccountId, Vec<u8>)]) -> Vec<(T::AccountId, bool)> {
		let deadline =
			sp_io::offchain::timestamp().add(Duration::from_millis(T::ProbeTimeoutMillis::get()));
		let allow_local = AllowLocalTargets::<T>::get();
		let mut verdicts = Vec::new();
		let mut waiting = Vec::new();
		for (provider, url) in targets {
			let request = core::str::from_utf8(url)
				.ok()
				.filter(|url| allow_local || !is_local_url(url))
				.and_then(|url| http::Request::get(url).deadline(deadline).send().ok());
			match request {
				Some(pending) => waiting.push((provider.clone(), pending)),
				None => verdicts.push((provider.clone(), false)),
			}
		}
		let (providers, requests): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
		let results = http::PendingRequest::try_wait_all(requests, deadline);
		for (provider, result) in providers.into_iter().zip(results) {
			let up = matches!(result, Ok(Ok(response)) if (200..300).contains(&response.code));
			verdicts.push((provider, up));
		}
		verdicts
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

/// Whether `url`'s host is a name or literal address of this machine or a private network:
/// `localhost`, IPv4 loopback, private, link-local, unspecified and shared ranges, IPv6
/// loopback, unique-local and link-local. (A public name that resolves to such an address is
/// not caught here.)
pub fn is_local_url(url: &str) -> bool {
	let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
	let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
	let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
	let host = if let Some(v6) = host_port.strip_prefix('[') {
		v6.split(']').next().unwrap_or("")
	} else {
		host_port.split(':').next().unwrap_or("")
	};
	let host = host.trim_end_matches('.').to_ascii_lowercase();
	if host == "localhost" || host.ends_with(".localhost") || host.is_empty() {
		return true;
	}
	if let Some(octets) = ipv4(&host) {
		return match octets {
			[0, ..] | [10, ..] | [127, ..] => true,
			[169, 254, ..] | [192, 168, ..] => true,
			[172, b, ..] => (16..32).contains(&b),
			[100, b, ..] => (64..128).contains(&b),
			_ => false,
		};
	}
	if host.contains(':') {
		return host == "::1"
			|| host == "::"
			|| host.starts_with("fc")
			|| host.starts_with("fd")
			|| host.starts_with("fe80")
			|| host.starts_with("::ffff:");
	}
	false
}

fn ipv4(host: &str) -> Option<[u8; 4]> {
	let mut octets = [0u8; 4];
	let mut parts = host.split('.');
	for octet in &mut octets {
		*octet = parts.next()?.parse().ok()?;
	}
	parts.next().is_none().then_some(octets)
}
