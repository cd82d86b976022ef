//! # Block time pallet
//!
//! Holds the chain's slot duration, fixed at genesis. One runtime then serves both a fast
//! single-node development chain (1 s blocks) and a multi-validator network (6 s blocks): Aura
//! reads the slot duration through [`SlotDuration`], the timestamp pallet its minimum period
//! through [`MinimumPeriod`].
//!
//! ## Invariants
//! - The slot duration never changes after genesis: Aura's slot arithmetic depends on it. There
//!   is no call to change it.
//! - It is never zero: a genesis value of zero (or none) leaves storage empty and the runtime's
//!   [`Config::DefaultSlotDuration`] applies.

#![cfg_attr(not(feature = "std"), no_std)]

pub use pallet::*;

use frame_support::traits::Get;

#[cfg(test)]
mod tests;

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::pallet_prelude::*;
	use frame_system::pallet_prelude::*;

	#[pallet::pallet]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config {
		/// Slot duration in milliseconds used when genesis set none.
		#[pallet::constant]
		type DefaultSlotDuration: Get<u64>;
	}

	/// Slot duration in milliseconds, set at genesis. Zero means "not set": the default applies.
	#[pallet::storage]
	pub type SlotDurationMillis<T> = StorageValue<_, u64, ValueQuery>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// Slot (block) duration in milliseconds. Zero keeps the runtime's default.
		pub slot_duration_millis: u64,
		#[serde(skip)]
		pub _config: core::marker::PhantomData<T>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			if self.slot_duration_millis != 0 {
				SlotDurationMillis::<T>::put(self.slot_duration_millis);
			}
		}
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn integrity_test() {
			assert!(
				T::DefaultSlotDuration::get() > 0,
				"the default slot duration must be positive"
			);
		}
	}
}

impl<T: Config> Pallet<T> {
	/// The chain's slot duration in milliseconds.
	pub fn slot_duration() -> u64 {
		match SlotDurationMillis::<T>::get() {
			0 => T::DefaultSlotDuration::get(),
			set => set,
		}
	}
}

/// The slot duration in milliseconds, for `pallet_aura::Config::SlotDuration`.
pub struct SlotDuration<T>(core::marker::PhantomData<T>);

impl<T: Config, M: From<u64>> Get<M> for SlotDuration<T> {
	fn get() -> M {
		Pallet::<T>::slot_duration().into()
	}
}

/// Half the slot duration, for `pallet_timestamp::Config::MinimumPeriod`: two blocks can never
/// be closer together than one slot.
pub struct MinimumPeriod<T>(core::marker::PhantomData<T>);

impl<T: Config, M: From<u64>> Get<M> for MinimumPeriod<T> {
	fn get() -> M {
		(Pallet::<T>::slot_duration() / 2).into()
	}
}
