//! The escrow account: every deal's escrow sits in one pallet account, so billing a batch of
//! reports moves money once per call (to the provider and the treasury) instead of twice per
//! report.

use crate::*;
use frame_support::{
	ensure,
	pallet_prelude::*,
	traits::{
		fungible::{Inspect, Mutate, MutateHold},
		tokens::{Fortitude, Precision, Preservation, Restriction},
	},
};
use sp_runtime::traits::{AccountIdConversion, Saturating, Zero};

/// What a call owes providers and the treasury out of the escrow account, paid at its end.
/// Consecutive charges to the same provider (every report of a batch) become one transfer.
pub(crate) struct Payout<T: Config> {
	provider: Option<(T::AccountId, BalanceOf<T>)>,
	fee: BalanceOf<T>,
}

impl<T: Config> Payout<T> {
	pub(crate) fn new() -> Self {
		Self { provider: None, fee: Zero::zero() }
	}

	/// Owes `net` to `provider` and `fee` to the treasury.
	pub(crate) fn add(&mut self, provider: &T::AccountId, net: BalanceOf<T>, fee: BalanceOf<T>) {
		if self.provider.as_ref().is_some_and(|(p, _)| p != provider) {
			self.pay_provider();
		}
		let owed = self.provider.get_or_insert_with(|| (provider.clone(), Zero::zero()));
		owed.1 = owed.1.saturating_add(net);
		self.fee = self.fee.saturating_add(fee);
	}

	fn pay_provider(&mut self) {
		let Some((provider, amount)) = self.provider.take() else { return };
		if !Pallet::<T>::pay_out(&provider, amount) {
			// Only a provider account below the existential deposit can refuse; the treasury
			// takes what it cannot.
			if !Pallet::<T>::pay_out(&T::TreasuryAccount::get(), amount) {
				log::warn!(target: "runtime::market", "payout to {provider:?} stays in escrow");
			}
		}
	}

	/// Makes the transfers owed.
	pub(crate) fn pay(mut self) {
		let fee = core::mem::take(&mut self.fee);
		// The treasury may not exist yet (a fee below the existential deposit): then the
		// provider gets the fee rather than leaving it stranded.
		if !fee.is_zero() && !Pallet::<T>::pay_out(&T::TreasuryAccount::get(), fee) {
			if let Some((_, owed)) = self.provider.as_mut() {
				*owed = owed.saturating_add(fee);
			}
		}
		self.pay_provider();
	}
}

impl<T: Config> Pallet<T> {
	/// The account holding every deal's escrow. Created at genesis with the existential
	/// deposit, which never leaves it, so escrow can always be paid out in full.
	pub fn escrow_account() -> T::AccountId {
		T::PalletId::get().into_account_truncating()
	}

	/// Moves `amount` from `who` into escrow, keeping `who` alive.
	pub(crate) fn take_into_escrow(who: &T::AccountId, amount: BalanceOf<T>) -> DispatchResult {
		let spendable =
			T::Currency::reducible_balance(who, Preservation::Preserve, Fortitude::Polite);
		ensure!(spendable >= amount, Error::<T>::InsufficientBalance);
		T::Currency::transfer(who, &Self::escrow_account(), amount, Preservation::Preserve)
			.map_err(|_| Error::<T>::InsufficientBalance)?;
		Ok(())
	}

	/// Pays `amount` out of escrow to `to`; false if `to` cannot receive it.
	pub(crate) fn pay_out(to: &T::AccountId, amount: BalanceOf<T>) -> bool {
		amount.is_zero()
			|| T::Currency::transfer(&Self::escrow_account(), to, amount, Preservation::Preserve)
				.is_ok()
	}

	/// Returns `amount` of escrow to `publisher`. An account emptied meanwhile cannot take
	/// less than the existential deposit: then the treasury gets it rather than the escrow
	/// account keeping it.
	pub(crate) fn refund(publisher: &T::AccountId, amount: BalanceOf<T>) -> BalanceOf<T> {
		if Self::pay_out(publisher, amount) {
			return amount;
		}
		if !Self::pay_out(&T::TreasuryAccount::get(), amount) {
			log::warn!(target: "runtime::market", "refund to {publisher:?} stays in escrow");
		}
		Zero::zero()
	}

	/// Moves up to `amount` of the name deposit `publisher` has held into escrow, to pay a
	/// debt; returns what moved.
	pub(crate) fn seize_name_deposit(
		publisher: &T::AccountId,
		amount: BalanceOf<T>,
	) -> BalanceOf<T> {
		if amount.is_zero() {
			return amount;
		}
		T::Currency::transfer_on_hold(
			&HoldReason::NameDeposit.into(),
			publisher,
			&Self::escrow_account(),
			amount,
			Precision::BestEffort,
			Restriction::Free,
			Fortitude::Force,
		)
		.unwrap_or_else(|_| Zero::zero())
	}
}
