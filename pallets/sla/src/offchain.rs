//! The off-chain worker: probes tenants' health checks through their providers' gateways and
//! submits signed verdicts.
//!
//! Runs on validator nodes whose keystore holds a prober key listed in [`Probers`]. In the
//! first half of each probe window (so verdicts land in the window they are for) it requests
//! up to [`Config::MaxProbesPerBlock`] health checks per block, all at once with one timeout.
//!
//! Only providers with tracked SLA deals ([`ProviderDeals`]) are walked. A window is decided by
//! a majority of all probers, so they must probe the same deals: each window's walk starts at
//! a point derived from the window index (the same for every prober), and each provider's
//! deals are [`Pallet::sample`]d the same way on every node and on chain. A node's own
//! position is kept in its local storage.
//!
//! A deal's check is `GET <gateway URL><health path>` with `Host: <deal name>.<ingress domain>`;
//! up when the answer has the expected status and, if one is set, its body (read up to
//! [`MAX_BODY_BYTES`]) contains the expected text. A deal without a registered name is not
//! probed. A gateway on a loopback, private or link-local address is not requested (a
//! provider must not point probers at their own node) unless [`AllowLocalTargets`] is set, as
//! on development chains: its deals are found down.

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

/// Local storage key of the walk through the providers.
const CURSOR_KEY: &[u8] = b"podchain::sla::cursor";
/// Local storage key of the lock that keeps two workers from probing at once.
const LOCK_KEY: &[u8] = b"podchain::sla::lock";
/// Most bytes of a health check's body read to look for the expected text.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

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

/// Where a node is in its walk through the providers with SLA deals.
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

/// One health-check request to make.
struct Target {
	/// The URL requested, `None` when the deal cannot be probed (no name).
	url: Option<Vec<u8>>,
	/// The `Host` header sent.
	host: Vec<u8>,
	/// What an up tenant answers.
	check: podchain_primitives::HealthCheck,
}

/// A provider's sampled deals and what to request for each.
struct ProviderTargets<AccountId> {
	provider: AccountId,
	deals: Vec<(DealId, Target)>,
}

impl<T: Config> Pallet<T> {
	/// One worker run: probes the next providers' sampled deals and submits the verdicts.
	/// Returns how many probes were submitted.
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

		let mut submitted = 0;
		for (provider, verdicts) in Self::fetch_health(targets) {
			let Ok(verdicts) = verdicts.try_into() else { continue };
			let probe = Probe { provider, window, prober: index, verdicts };
			if Self::submit(probe, &key) {
				submitted += 1;
			}
		}
		Ok(submitted)
	}

	/// Where every prober starts its walk in `window`: a pseudo-random point, the same for all.
	fn window_start_point(window: WindowIndex) -> Option<T::AccountId> {
		let seed = sp_io::hashing::blake2_256(&(b"podchain::sla::start", window).encode());
		T::AccountId::decode(&mut TrailingZeroInput::new(&seed)).ok()
	}

	/// Up to `count` providers with SLA deals following `after` in storage order.
	fn providers_after(after: Option<&T::AccountId>, count: u32) -> Vec<T::AccountId> {
		let keys = match after {
			Some(after) => {
				ProviderDeals::<T>::iter_keys_from(ProviderDeals::<T>::hashed_key_for(after))
			}
			None => ProviderDeals::<T>::iter_keys(),
		};
		keys.take(count as usize).collect()
	}

	/// The next providers to probe with their sampled deals' requests, advancing `cursor`: as
	/// many as fit in [`Config::MaxProbesPerBlock`] requests (at least one provider), skipping
	/// providers this prober has voted on in `window`.
	fn next_targets(
		cursor: &mut Cursor<T::AccountId>,
		window: WindowIndex,
		index: u32,
	) -> Vec<ProviderTargets<T::AccountId>> {
		let budget = T::MaxProbesPerBlock::get() as usize;
		let mut targets: Vec<ProviderTargets<T::AccountId>> = Vec::new();
		let mut requests = 0usize;
		let mut wrapped = false;
		loop {
			let mut batch = Self::providers_after(cursor.last.as_ref(), 8);
			if batch.is_empty() {
				if wrapped {
					cursor.done = true;
					return targets;
				}
				wrapped = true;
				batch = Self::providers_after(None, 8);
				if batch.is_empty() {
					cursor.done = true;
					return targets;
				}
			}
			for provider in batch {
				if cursor.first.as_ref() == Some(&provider) {
					cursor.done = true;
					return targets;
				}
				if Self::has_voted(&provider, window, index) {
					cursor.first.get_or_insert_with(|| provider.clone());
					cursor.last = Some(provider);
					continue;
				}
				let sample = Self::sample(&provider, window);
				if !targets.is_empty() && requests + sample.len() > budget {
					return targets;
				}
				cursor.first.get_or_insert_with(|| provider.clone());
				cursor.last = Some(provider.clone());
				requests += sample.len();
				let gateway = T::Targets::gateway(&provider);
				let deals = sample
					.into_iter()
					.filter_map(|id| Some((id, Self::target(id, gateway.as_ref())?)))
					.collect();
				targets.push(ProviderTargets { provider, deals });
				if requests >= budget {
					return targets;
				}
			}
		}
	}

	/// What to request for deal `id` through `gateway`; `None` if it is no longer tracked.
	fn target(id: DealId, gateway: Option<&(Vec<u8>, Vec<u8>)>) -> Option<Target> {
		let deal = Tracked::<T>::get(id)?;
		let check = deal.terms.health;
		let name = T::Deals::name(id);
		let (url, host) = match (name, gateway) {
			(Some(name), Some((base, domain))) => {
				let mut url = base.clone();
				while url.last() == Some(&b'/') {
					url.pop();
				}
				url.extend_from_slice(&check.path);
				let mut host = name;
				host.push(b'.');
				host.extend_from_slice(domain);
				(Some(url), host)
			}
			// A deal without a name cannot be probed; a provider that left the registry has no
			// gateway, and its deals are down.
			(None, _) => (None, Vec::new()),
			(Some(_), None) => (Some(Vec::new()), Vec::new()),
		};
		Some(Target { url, host, check })
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

	/// Requests every target's health check at once and judges the answers within
	/// [`Config::ProbeTimeoutMillis`]. A URL that is not UTF-8, or local where that is not
	/// allowed, is down without a request.
	fn fetch_health(
		targets: Vec<ProviderTargets<T::AccountId>>,
	) -> Vec<(T::AccountId, Vec<(DealId, Verdict)>)> {
		let deadline =
			sp_io::offchain::timestamp().add(Duration::from_millis(T::ProbeTimeoutMillis::get()));
		let allow_local = AllowLocalTargets::<T>::get();
		let mut verdicts: Vec<(T::AccountId, Vec<(DealId, Verdict)>)> = Vec::new();
		// Where each request's verdict goes (provider, deal), and what it must answer.
		let mut waiting = Vec::new();
		let mut requests = Vec::new();
		for (p, target) in targets.into_iter().enumerate() {
			let mut deals = Vec::new();
			for (d, (id, t)) in target.deals.into_iter().enumerate() {
				let Some(url) = t.url else {
					deals.push((id, Verdict::NotProbed));
					continue;
				};
				deals.push((id, Verdict::Down));
				let request = core::str::from_utf8(&url)
					.ok()
					.filter(|url| allow_local || !host::is_local_url(url))
					.zip(core::str::from_utf8(&t.host).ok())
					.and_then(|(url, host)| {
						http::Request::get(url)
							.add_header("Host", host)
							.deadline(deadline)
							.send()
							.ok()
					});
				if let Some(pending) = request {
					waiting.push((p, d, t.check));
					requests.push(pending);
				}
			}
			verdicts.push((target.provider, deals));
		}
		let results = http::PendingRequest::try_wait_all(requests, deadline);
		for ((p, d, check), result) in waiting.into_iter().zip(results) {
			let up = match result {
				Ok(Ok(response)) => Self::judge(response, &check, deadline),
				_ => false,
			};
			if up {
				verdicts[p].1[d].1 = Verdict::Up;
			}
		}
		verdicts
	}

	/// Whether `response` is what `check` expects: its status, and its body (read up to
	/// [`MAX_BODY_BYTES`] before `deadline`) containing the expected text.
	fn judge(
		response: http::Response,
		check: &podchain_primitives::HealthCheck,
		deadline: sp_runtime::offchain::Timestamp,
	) -> bool {
		if response.code != check.expect_status {
			return false;
		}
		if check.expect_body.is_empty() {
			return true;
		}
		let mut body = response.body();
		body.deadline(deadline);
		let read: Vec<u8> = body.by_ref().take(MAX_BODY_BYTES).collect();
		body.error().is_none() && is_up(response.code, &read, check)
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

/// Whether an answer with `status` and (the first [`MAX_BODY_BYTES`] of) `body` is what
/// `check` expects of an up tenant.
pub fn is_up(status: u16, body: &[u8], check: &podchain_primitives::HealthCheck) -> bool {
	let needle = &check.expect_body[..];
	let body = &body[..body.len().min(MAX_BODY_BYTES)];
	status == check.expect_status
		&& (needle.is_empty() || body.windows(needle.len()).any(|w| w == needle))
}
