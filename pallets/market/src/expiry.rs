//! The deadline queue: deals whose escrow runs out, whose grace period ends or whose
//! settlement window closes at a block.
//!
//! Each block has pages of at most [`Config::MaxExpiriesPerBlock`] entries, as many pages as
//! deadlines fall there, so no deadline is ever dropped. The hook works through them in order
//! from [`ExpiryCursor`], a bounded amount per block: when more deadlines fall in one block
//! than it can take, the rest are handled in the next blocks, each at the block it fell
//! (deals are advanced lazily to that block, see `lifecycle::advance`).

use crate::*;
use frame_support::pallet_prelude::*;
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::traits::{One, Saturating};

/// Most blocks without deadlines the hook steps over in one block when it lags behind.
pub const MAX_EMPTY_BLOCKS_STEPPED: u32 = 16;

/// What one run of the hook did, for its weight.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct HookWork {
	/// Deadlines looked at.
	pub entries: u32,
	/// Blocks stepped over.
	pub blocks: u32,
	/// Deployments inside rents that ended.
	pub ended_in_rents: u32,
}

impl<T: Config> Pallet<T> {
	/// Queues deal `id` to be looked at when block `at` comes (the next block, if `at` is not
	/// after the current one). Public for benchmarks that build large queues; queuing a deal
	/// whose deadline has not come changes nothing when its entry is handled.
	pub fn schedule_expiry(at: BlockNumberFor<T>, id: DeploymentId) {
		let next = frame_system::Pallet::<T>::block_number().saturating_add(One::one());
		let at = at.max(next);
		let pages = ExpiryPages::<T>::get(at);
		let last = pages.saturating_sub(1);
		let pushed = pages > 0 && Expiries::<T>::mutate(at, last, |page| page.try_push(id).is_ok());
		if !pushed {
			let page = BoundedVec::truncate_from(alloc::vec![id]);
			Expiries::<T>::insert(at, pages, page);
			ExpiryPages::<T>::insert(at, pages.saturating_add(1));
		}
	}

	/// Handles the deadlines due by `now`, at most [`Config::MaxExpiriesPerBlock`] of them
	/// and [`MAX_EMPTY_BLOCKS_STEPPED`] blocks without any.
	pub(crate) fn process_expiries(now: BlockNumberFor<T>) -> HookWork {
		let mut work = HookWork::default();
		let (mut block, mut page) = match ExpiryCursor::<T>::get() {
			Some(cursor) => cursor,
			None => (now, 0),
		};
		let budget = T::MaxExpiriesPerBlock::get();
		while block <= now {
			let pages = ExpiryPages::<T>::get(block);
			if page < pages {
				let len = Expiries::<T>::decode_len(block, page).unwrap_or(0) as u32;
				if work.entries > 0 && work.entries.saturating_add(len) > budget {
					break;
				}
				for id in Expiries::<T>::take(block, page) {
					work.entries.saturating_inc();
					if let Some(ended) = Self::expire(id, block) {
						work.ended_in_rents.saturating_accrue(ended);
					}
				}
				page.saturating_inc();
				continue;
			}
			if pages > 0 {
				ExpiryPages::<T>::remove(block);
			}
			if work.blocks >= MAX_EMPTY_BLOCKS_STEPPED {
				break;
			}
			work.blocks.saturating_inc();
			block.saturating_inc();
			page = 0;
		}
		ExpiryCursor::<T>::put((block, page));
		work
	}

	/// Checks that every queued page is within its block's page count and not behind the
	/// cursor.
	#[cfg(any(feature = "try-runtime", feature = "std", test))]
	pub(crate) fn try_state_expiries() -> Result<(), sp_runtime::TryRuntimeError> {
		let cursor = ExpiryCursor::<T>::get();
		for (block, page, entries) in Expiries::<T>::iter() {
			ensure!(!entries.is_empty(), "an empty page is queued");
			ensure!(page < ExpiryPages::<T>::get(block), "a page is beyond its block's count");
			if let Some(cursor) = cursor {
				ensure!((block, page) >= cursor, "a page is behind the cursor");
			}
		}
		Ok(())
	}
}
