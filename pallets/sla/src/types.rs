//! Types of the SLA pallet: offers, probes and their tallies, per-provider standing, and
//! tracked deals with their per-deal evidence.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{traits::ConstU32, BoundedVec};
use scale_info::TypeInfo;
use sp_runtime::{Permill, Saturating};

pub use podchain_primitives::{DealId, SlaTerms};

/// Index of a probe window: block number divided by [`crate::Config::ProbeWindow`].
pub type WindowIndex = u32;

/// Longest SLA measurement window, in probe windows. History keeps twice as many, so a window
/// settled late (its due queue was full) still reads its evidence.
pub const MAX_WINDOW_SPAN: u32 = 64;

/// Probe windows of history kept per provider and per deal (bits of a `u128`).
pub const HISTORY_WINDOWS: u32 = 128;

/// Most probers (validators) whose votes a tally tells apart (bits of a `u128`).
pub const MAX_PROBERS: u32 = 128;

/// Most deals one probe can judge (the bound of [`crate::Config::MaxSampledDeals`]).
pub const MAX_SAMPLED_DEALS: u32 = 16;

/// SLA terms a provider is willing to sign: a deal may carry any terms within them.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub struct SlaOffer<Balance> {
	/// Highest uptime target offered.
	pub max_uptime_target: Permill,
	/// Shortest measurement window, in blocks (a multiple of the probe window).
	pub min_window_blocks: u32,
	/// Longest measurement window, in blocks (a multiple of the probe window).
	pub max_window_blocks: u32,
	/// Highest penalty per missed window.
	pub max_penalty_per_window: Balance,
}

/// What a prober found when it requested a deal's health check through its provider's gateway.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub enum Verdict {
	/// The tenant answered with the expected status (and body) in time.
	Up,
	/// It did not: another status, an unexpected body, no answer in time, or an unreachable
	/// or refused gateway.
	Down,
	/// The deal could not be probed (it has no registered name): the vote does not count.
	NotProbed,
}

/// A validator's verdicts on the deals of one provider sampled in one probe window, signed
/// with its prober key.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct Probe<AccountId> {
	/// The provider whose deals were probed.
	pub provider: AccountId,
	/// The probe window they were probed in.
	pub window: WindowIndex,
	/// Index of the prober in [`crate::Probers`].
	pub prober: u32,
	/// One verdict per sampled deal, in the order of [`crate::Pallet::sample`].
	pub verdicts: BoundedVec<(DealId, Verdict), ConstU32<MAX_SAMPLED_DEALS>>,
}

/// What the probers decided about a provider in a window.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub enum Outcome {
	/// A majority of probers found it up.
	Up,
	/// A majority of probers found it down.
	Down,
	/// No majority either way (too few probes): the window does not count.
	Unknown,
}

/// Probe votes of the window being collected.
#[derive(
	Clone,
	Copy,
	Default,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub struct Tally {
	/// Probers that found the provider up.
	pub up: u32,
	/// Probers that found it down.
	pub down: u32,
	/// Bit `i` set: prober `i` has voted.
	pub voted: u128,
}

impl Tally {
	/// Whether prober `index` has voted.
	pub fn has_voted(&self, index: u32) -> bool {
		index < MAX_PROBERS && self.voted & (1u128 << index) != 0
	}

	/// Marks prober `index` as having voted without counting a vote either way (its probe
	/// judged nothing that counts).
	pub fn mark(&mut self, index: u32) {
		if index < MAX_PROBERS {
			self.voted |= 1u128 << index;
		}
	}

	/// Counts prober `index`'s vote.
	pub fn count(&mut self, index: u32, up: bool) {
		if index < MAX_PROBERS {
			self.voted |= 1u128 << index;
		}
		if up {
			self.up = self.up.saturating_add(1);
		} else {
			self.down = self.down.saturating_add(1);
		}
	}

	/// The outcome if `probers` probers were asked: more than half of them must agree.
	pub fn outcome(&self, probers: u32) -> Outcome {
		let majority = |votes: u32| votes.saturating_mul(2) > probers;
		if majority(self.up) {
			Outcome::Up
		} else if majority(self.down) {
			Outcome::Down
		} else {
			Outcome::Unknown
		}
	}
}

/// One bit per probe window over the last [`HISTORY_WINDOWS`] windows before `end`.
#[derive(
	Clone,
	Copy,
	Default,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub struct WindowBits {
	/// The window after the newest one recorded.
	pub end: WindowIndex,
	/// Bit `i` stands for window `end - 1 - i`.
	pub bits: u128,
}

impl WindowBits {
	/// Whether `window` is set; windows too old, or not reached yet, read as unset.
	pub fn get(&self, window: WindowIndex) -> bool {
		match self.end.checked_sub(window).and_then(|d| d.checked_sub(1)) {
			Some(age) if age < HISTORY_WINDOWS => self.bits & (1u128 << age) != 0,
			_ => false,
		}
	}

	/// Sets `window`, moving `end` past it if it is newer; a window older than the history is
	/// dropped.
	pub fn set(&mut self, window: WindowIndex) {
		self.advance_to(window.saturating_add(1));
		if let Some(age) = self.end.checked_sub(window).and_then(|d| d.checked_sub(1)) {
			if age < HISTORY_WINDOWS {
				self.bits |= 1u128 << age;
			}
		}
	}

	/// Moves `end` to `end` (never back), shifting older bits along.
	pub fn advance_to(&mut self, end: WindowIndex) {
		if end <= self.end {
			return;
		}
		let shift = end - self.end;
		self.bits = if shift >= HISTORY_WINDOWS { 0 } else { self.bits << shift };
		self.end = end;
	}
}

/// A provider's probe record: the window being collected, the decided history, and its
/// standing.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub struct ProviderRecord {
	/// The window whose votes [`Self::tally`] holds.
	pub window: WindowIndex,
	/// Votes of that window.
	pub tally: Tally,
	/// Decided windows found up.
	pub up: WindowBits,
	/// Decided windows found down (a window neither up nor down had no majority).
	pub down: WindowBits,
	/// Down windows in a row, up to the newest decided one.
	pub consecutive_failures: u32,
	/// Whether the registry stops offering the provider (until it passes a window again).
	pub quarantined: bool,
	/// Share of windows met, recent windows weighing more (an exponential moving average).
	pub reputation: Permill,
	/// Windows decided up so far.
	pub windows_up: u32,
	/// Windows decided down so far.
	pub windows_down: u32,
}

impl ProviderRecord {
	/// A provider first probed in `window`: full reputation until measured otherwise.
	pub fn new(window: WindowIndex) -> Self {
		Self {
			window,
			tally: Tally::default(),
			up: WindowBits::default(),
			down: WindowBits::default(),
			consecutive_failures: 0,
			quarantined: false,
			reputation: Permill::one(),
			windows_up: 0,
			windows_down: 0,
		}
	}

	/// The decided outcome of `window` (which must be before the collected one).
	pub fn outcome(&self, window: WindowIndex) -> Outcome {
		if self.up.get(window) {
			Outcome::Up
		} else if self.down.get(window) {
			Outcome::Down
		} else {
			Outcome::Unknown
		}
	}

	/// Moves collection on to `window`, first deciding the collected window (out of `probers`
	/// probers) if it is older. Returns the outcome decided, `None` if nothing changed.
	pub fn advance_to(
		&mut self,
		window: WindowIndex,
		probers: u32,
		weight: Permill,
		quarantine_after: u32,
	) -> Option<Outcome> {
		if self.window >= window {
			return None;
		}
		let outcome = self.tally.outcome(probers);
		self.decide(outcome, weight, quarantine_after);
		self.window = window;
		self.tally = Tally::default();
		Some(outcome)
	}

	/// Records the decided `outcome` of the collected window and updates the standing;
	/// `weight` is the newest window's share of the reputation.
	pub fn decide(&mut self, outcome: Outcome, weight: Permill, quarantine_after: u32) {
		let end = self.window.saturating_add(1);
		self.up.advance_to(end);
		self.down.advance_to(end);
		let keep = Permill::one().saturating_sub(weight);
		match outcome {
			Outcome::Up => {
				self.up.set(self.window);
				self.consecutive_failures = 0;
				self.quarantined = false;
				self.reputation = (keep * self.reputation).saturating_add(weight);
				self.windows_up.saturating_inc();
			}
			Outcome::Down => {
				self.down.set(self.window);
				self.consecutive_failures.saturating_inc();
				if self.consecutive_failures >= quarantine_after {
					self.quarantined = true;
				}
				self.reputation = keep * self.reputation;
				self.windows_down.saturating_inc();
			}
			Outcome::Unknown => {}
		}
	}
}

/// Probe votes on one deal: the window being collected and the decided history.
#[derive(
	Clone,
	Copy,
	Default,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub struct DealVotes {
	/// The window whose votes [`Self::tally`] holds.
	pub window: WindowIndex,
	/// Votes of that window.
	pub tally: Tally,
	/// Decided windows found up.
	pub up: WindowBits,
	/// Decided windows found down.
	pub down: WindowBits,
}

impl DealVotes {
	/// The decided outcome of `window` (which must be before the collected one).
	pub fn outcome(&self, window: WindowIndex) -> Outcome {
		if self.up.get(window) {
			Outcome::Up
		} else if self.down.get(window) {
			Outcome::Down
		} else {
			Outcome::Unknown
		}
	}

	/// Moves collection on to `window`, first deciding the collected window (out of
	/// `probers` probers) if it is older. Returns the window and outcome decided.
	pub fn advance_to(
		&mut self,
		window: WindowIndex,
		probers: u32,
	) -> Option<(WindowIndex, Outcome)> {
		if self.window >= window {
			return None;
		}
		let decided = self.window;
		let outcome = self.tally.outcome(probers);
		let end = decided.saturating_add(1);
		self.up.advance_to(end);
		self.down.advance_to(end);
		match outcome {
			Outcome::Up => self.up.set(decided),
			Outcome::Down => self.down.set(decided),
			Outcome::Unknown => {}
		}
		self.window = window;
		self.tally = Tally::default();
		Some((decided, outcome))
	}
}

/// Whether a deal's probe windows count.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub enum Measurement {
	/// Not yet: the provider's agent has not named the deal running since it was accepted, or
	/// since the provider acknowledged its last manifest update.
	AwaitingAgent,
	/// From this probe window on (the one after the heartbeat that named the deal).
	Since(WindowIndex),
	/// A manifest update is pending: no window counts until the provider acknowledges it and
	/// its agent names the deal again.
	UpdatePending,
}

impl Measurement {
	/// Whether probe window `window` counts.
	pub fn counts(&self, window: WindowIndex) -> bool {
		matches!(self, Self::Since(from) if window >= *from)
	}
}

/// Where a deal's next window end is queued.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub enum DueAt {
	/// In the due queue of this block; an item found in another block's queue is stale.
	Block(u32),
	/// In [`crate::DueOverflow`], which the hook drains before each block's queue.
	Overflow,
	/// Nowhere (every queue was full): queued again as soon as anything touches the deal.
	Nowhere,
}

/// A running deal with SLA terms, as the SLA pallet measures it.
#[derive(
	Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Debug,
)]
pub struct TrackedDeal<AccountId, Balance> {
	/// Who is compensated for missed windows.
	pub publisher: AccountId,
	/// Whose stake pays for them.
	pub provider: AccountId,
	/// The terms measured.
	pub terms: SlaTerms<Balance>,
	/// First probe window of measurement window 0 (the first whole one after acceptance).
	pub first_window: WindowIndex,
	/// Measurement windows settled so far: the next one to settle.
	pub settled_windows: u32,
	/// Whether probe windows count now.
	pub measurement: Measurement,
	/// Probers' votes on the deal.
	pub votes: DealVotes,
	/// Probe windows in which the provider's agent named this deal in a heartbeat.
	pub heartbeats: WindowBits,
	/// What the publisher had paid for the deal at the last settlement (or acceptance): the
	/// windows settled next cost at most the bill multiple of what it paid since.
	pub paid_at_settlement: Balance,
	/// Penalties held by open storage challenges: taken from the same bill-bounded budget as
	/// missed windows, so both together never cost more than the bill multiple allows.
	pub penalty_held: Balance,
	/// Penalties of failed storage challenges since the last settlement, out of that budget.
	pub penalty_spent: Balance,
	/// Where the deal's next window end is queued.
	pub due_at: DueAt,
}

impl<AccountId, Balance> TrackedDeal<AccountId, Balance> {
	/// Probe windows per measurement window (at least one).
	pub fn span(&self, probe_window_blocks: u32) -> u32 {
		(self.terms.window_blocks / probe_window_blocks.max(1)).max(1)
	}

	/// Probe windows `[start, end)` of the next measurement window to settle.
	pub fn next_window(&self, probe_window_blocks: u32) -> (WindowIndex, WindowIndex) {
		let span = self.span(probe_window_blocks);
		let start = self.first_window.saturating_add(self.settled_windows.saturating_mul(span));
		(start, start.saturating_add(span))
	}
}

/// Work due at a block: settled by the hook, at most [`crate::Config::MaxDuePerBlock`] items.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Debug,
)]
pub enum DueItem {
	/// A deal's measurement window has ended.
	WindowEnd(DealId),
}

impl From<&ProviderRecord> for Standing {
	fn from(record: &ProviderRecord) -> Self {
		Self {
			reputation: record.reputation,
			quarantined: record.quarantined,
			consecutive_failures: record.consecutive_failures,
			windows_up: record.windows_up,
			windows_down: record.windows_down,
		}
	}
}

/// A provider's standing as the runtime API shows it.
#[derive(Clone, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo, Debug)]
pub struct Standing {
	/// Share of windows met, recent windows weighing more; full when not measured yet.
	pub reputation: Permill,
	/// Whether the registry stops offering the provider.
	pub quarantined: bool,
	/// Down windows in a row.
	pub consecutive_failures: u32,
	/// Windows decided up.
	pub windows_up: u32,
	/// Windows decided down.
	pub windows_down: u32,
}
