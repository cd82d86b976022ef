//! `podchain account`: the publisher's sr25519 key, kept in a file only its owner can read.

use crate::{error::CliError, units::format_pod, Context};
use podchain_chain::{runtime, AccountId, AccountKey, AtBlock};
use serde_json::json;
use std::{io::Write, path::Path};

/// Writes `secret` to `path`, readable by its owner only; refuses to replace a key unless
/// `force`.
fn write_key(path: &Path, secret: &str, force: bool) -> Result<(), CliError> {
	if path.exists() && !force {
		return Err(CliError::input(format!(
			"{} already holds a key; pass --force to replace it (the old key is lost)",
			path.display()
		)));
	}
	if let Some(dir) = path.parent() {
		std::fs::create_dir_all(dir)
			.map_err(|e| CliError::input(format!("cannot create {}: {e}", dir.display())))?;
	}
	let mut options = std::fs::OpenOptions::new();
	options.write(true).create(true).truncate(true);
	#[cfg(unix)]
	{
		use std::os::unix::fs::OpenOptionsExt;
		options.mode(0o600);
	}
	let mut file = options
		.open(path)
		.map_err(|e| CliError::input(format!("cannot write {}: {e}", path.display())))?;
	#[cfg(unix)]
	{
		use std::os::unix::fs::PermissionsExt;
		// An existing file keeps its mode on open: tighten it.
		let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
	}
	writeln!(file, "{secret}")
		.map_err(|e| CliError::input(format!("cannot write {}: {e}", path.display())))
}

/// `account new`: a fresh 12-word secret phrase.
pub fn new(ctx: &Context, force: bool) -> Result<(), CliError> {
	let phrase = bip39::Mnemonic::generate(12)
		.map_err(|e| CliError::input(format!("cannot generate a secret phrase: {e}")))?
		.to_string();
	let key = AccountKey::from_secret(&phrase).map_err(CliError::input)?;
	write_key(&ctx.key_file, &phrase, force)?;
	let address = key.account_id().to_string();
	ctx.out.result(json!({ "address": address, "key_file": ctx.key_file, "phrase": phrase }), || {
		format!(
			"new account {address}\nkey file    {}\nsecret phrase (write it down; anyone with it controls the account):\n  {phrase}",
			ctx.key_file.display()
		)
	});
	Ok(())
}

/// `account import`: a secret phrase or URI (`//Alice` on a dev chain), from the argument or
/// the first line of stdin.
pub fn import(ctx: &Context, secret: Option<String>, force: bool) -> Result<(), CliError> {
	let secret = match secret {
		Some(secret) => secret,
		None => {
			let mut line = String::new();
			std::io::stdin()
				.read_line(&mut line)
				.map_err(|e| CliError::input(format!("cannot read the secret from stdin: {e}")))?;
			line
		}
	};
	let secret = secret.trim();
	let key = AccountKey::from_secret(secret).map_err(CliError::input)?;
	write_key(&ctx.key_file, secret, force)?;
	let address = key.account_id().to_string();
	ctx.out.result(json!({ "address": address, "key_file": ctx.key_file }), || {
		format!("imported account {address}\nkey file         {}", ctx.key_file.display())
	});
	Ok(())
}

/// Free and reserved balance of `who`.
async fn balances(at: &AtBlock, who: &AccountId) -> Result<(u128, u128), CliError> {
	let account = at
		.storage()
		.try_fetch(runtime::storage().system().account(), (*who,))
		.await
		.map_err(CliError::chain)?;
	match account {
		Some(value) => {
			let data = value.decode().map_err(CliError::chain)?.data;
			Ok((data.free, data.reserved))
		}
		None => Ok((0, 0)),
	}
}

/// The free balance of `who`.
pub async fn free_balance(at: &AtBlock, who: &AccountId) -> Result<u128, CliError> {
	Ok(balances(at, who).await?.0)
}

/// `account show`: the address and its balance.
pub async fn show(ctx: &Context) -> Result<(), CliError> {
	let key = ctx.key()?;
	let node = ctx.connect().await?;
	let at = node.finalized().await?;
	let (free, reserved) = balances(&at, &key.account_id()).await?;
	let (unpaid_deals, unpaid) = unpaid_debts(&at, &key.account_id()).await?;
	let address = key.account_id().to_string();
	ctx.out.result(
		json!({ "address": address, "free": free.to_string(), "reserved": reserved.to_string(),
			"unpaid_debt": { "deals": unpaid_deals, "amount": unpaid.to_string() } }),
		|| {
			let mut text = format!(
				"account   {address}\nfree      {}\nreserved  {} (deposits; escrow sits in the market's account)",
				format_pod(free),
				format_pod(reserved)
			);
			if unpaid_deals > 0 {
				text.push_str(&format!(
					"\nunpaid    {} written off over {unpaid_deals} deal(s) (providers can see this)",
					format_pod(unpaid)
				));
			}
			text
		},
	);
	Ok(())
}

/// Debt `who`'s deals left unpaid when they ended: (deals, amount).
pub async fn unpaid_debts(at: &AtBlock, who: &AccountId) -> Result<(u32, u128), CliError> {
	let debts =
		at.storage().entry(runtime::storage().market().unpaid_debts()).map_err(CliError::chain)?;
	let Some(value) = debts.try_fetch((*who,)).await.map_err(CliError::chain)? else {
		return Ok((0, 0));
	};
	let record = value.decode().map_err(CliError::chain)?;
	Ok((record.deals, record.amount))
}
