//! Errors the CLI reports, each with its exit code.

use std::fmt;

/// Why a command failed. The exit code tells scripts the kind of failure.
#[derive(Debug)]
pub struct CliError {
	/// What to tell the user.
	pub message: String,
	/// Exit code: see [`CliError::code`].
	kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
	/// Bad input: arguments, a manifest, a key file.
	Input,
	/// The node could not be reached or answered badly.
	Chain,
	/// The chain refused the transaction, or the deal is not in the state asked for.
	Refused,
	/// The provider could not be reached or refused over libp2p.
	Provider,
	/// Waited too long.
	Timeout,
}

impl CliError {
	/// Bad input (exit 2).
	pub fn input(message: impl fmt::Display) -> Self {
		Self { message: message.to_string(), kind: Kind::Input }
	}

	/// The node failed (exit 3).
	pub fn chain(message: impl fmt::Display) -> Self {
		Self { message: message.to_string(), kind: Kind::Chain }
	}

	/// The chain refused (exit 4).
	pub fn refused(message: impl fmt::Display) -> Self {
		Self { message: message.to_string(), kind: Kind::Refused }
	}

	/// The provider failed (exit 5).
	pub fn provider(message: impl fmt::Display) -> Self {
		Self { message: message.to_string(), kind: Kind::Provider }
	}

	/// A wait ran out (exit 6).
	pub fn timeout(message: impl fmt::Display) -> Self {
		Self { message: message.to_string(), kind: Kind::Timeout }
	}

	/// Whether a wait ran out.
	pub fn is_timeout(&self) -> bool {
		self.kind == Kind::Timeout
	}

	/// The same error, naming the deal it concerns (so a script can find the deal it made).
	pub fn about_deal(mut self, id: u64) -> Self {
		self.message = format!("deal {id}: {}", self.message);
		self
	}

	/// The process exit code.
	pub fn code(&self) -> u8 {
		match self.kind {
			Kind::Input => 2,
			Kind::Chain => 3,
			Kind::Refused => 4,
			Kind::Provider => 5,
			Kind::Timeout => 6,
		}
	}
}

impl fmt::Display for CliError {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		f.write_str(&self.message)
	}
}

impl From<podchain_chain::ChainError> for CliError {
	fn from(e: podchain_chain::ChainError) -> Self {
		let text = e.to_string();
		// A dispatch error names the pallet's error: the chain said no, the node is fine.
		match dispatch_error(&text) {
			Some(name) => CliError::refused(explain(name)),
			None if text.contains("Inability to pay some fees") => CliError::refused(
				"insufficient balance: the account cannot pay the transaction fee",
			),
			None => CliError::chain(text),
		}
	}
}

/// The `Pallet::Error` a transaction failed with, if the text carries one.
fn dispatch_error(text: &str) -> Option<&str> {
	["Market", "Registry", "Balances", "System"].iter().find_map(|pallet| {
		let start = text.find(&format!("{pallet}::"))?;
		let rest = &text[start..];
		let end = rest
			.find(|c: char| !(c.is_alphanumeric() || c == ':' || c == '_'))
			.unwrap_or(rest.len());
		Some(&rest[..end])
	})
}

/// A sentence for the chain errors users meet most.
fn explain(error: &str) -> String {
	let hint = match error.rsplit("::").next().unwrap_or(error) {
		"InsufficientBalance" | "FundsUnavailable" => {
			"insufficient balance: the account cannot pay the deposit and the fee"
		}
		"ProviderUnavailable" => "the provider is not registered or takes no new deals",
		"InsufficientCapacity" => "the provider has no room for these resources",
		"DepositTooLow" => "the deposit is below the chain's minimum",
		"NotPublisher" => "this account is not the deal's publisher",
		"NotActive" => "the deal is not running",
		"UnknownDeployment" => "no such deal",
		"NameTaken" => "that name is taken",
		"InvalidName" => "not a valid name: lowercase letters, digits and '-', at most 63",
		"SameManifest" => "the deal already runs that manifest",
		_ => "",
	};
	if hint.is_empty() {
		format!("the chain refused the transaction: {error}")
	} else {
		format!("{hint} ({error})")
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn dispatch_errors_are_named_and_explained() {
		let text =
			"podchain node request failed: transaction failed: Market::InsufficientBalance (x)";
		assert_eq!(dispatch_error(text), Some("Market::InsufficientBalance"));
		assert!(explain("Market::InsufficientBalance").starts_with("insufficient balance"));
		assert_eq!(dispatch_error("connection refused"), None);
	}
}
