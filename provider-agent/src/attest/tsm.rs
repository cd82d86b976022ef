//! TDX quotes from the kernel's configfs-tsm interface (Linux
//! `Documentation/ABI/testing/configfs-tsm`): a report is a directory made under
//! `/sys/kernel/config/tsm/report`; the report data is written to its `inblob`, the quote read
//! from its `outblob`, and `generation` counts the writes, so a concurrent writer shows.

use std::{
	io::ErrorKind,
	path::{Path, PathBuf},
	sync::atomic::{AtomicU32, Ordering},
	time::{Duration, Instant},
};

/// Where the kernel serves TSM reports.
pub const DEFAULT_REPORT_DIR: &str = "/sys/kernel/config/tsm/report";
/// Bytes of report data a TDX quote carries.
pub const REPORT_DATA_LEN: usize = 64;
/// The provider name of Intel TDX guests.
const TDX_PROVIDER: &str = "tdx_guest";
/// Smallest TDX quote: header (48), TD report (584), signature data length (4).
const MIN_TDX_QUOTE_LEN: usize = 48 + 584 + 4;
/// TEE type of TDX in a quote's header.
const TEE_TYPE_TDX: u32 = 0x81;
/// Attempts when another writer changes the entry meanwhile.
const ATTEMPTS: u32 = 3;
/// How long an attribute may take to appear after the entry is made: configfs creates them
/// with the directory, an emulation of it (the tests' tree, a userspace shim) just after.
const ATTRIBUTE_WAIT: Duration = Duration::from_secs(2);
/// How long the quote may take to appear after the report data is written (the kernel answers
/// the read itself once the host's quote generation service replied).
const QUOTE_WAIT: Duration = Duration::from_secs(30);

/// Why no quote was obtained.
#[derive(Debug, thiserror::Error)]
pub enum TsmError {
	/// The report directory does not exist.
	#[error(
		"configfs-tsm is not available at {dir}: mount configfs (`mount -t configfs none /sys/kernel/config`) \
		 on a confidential VM whose kernel has TSM reports (CONFIG_TSM_REPORTS) and the tdx_guest driver"
	)]
	NotAvailable {
		/// The report directory.
		dir: String,
	},
	/// The agent may not use the report directory.
	#[error("permission denied on {path}: the agent needs write access to configfs-tsm (run it as root in the TD)")]
	Permission {
		/// What was refused.
		path: String,
	},
	/// The TSM provider is not Intel TDX.
	#[error("this machine's TSM provider is {provider:?}, not tdx_guest: the agent attests Intel TDX guests only")]
	NotTdx {
		/// The provider the kernel names.
		provider: String,
	},
	/// Another process wrote to the report entry while the quote was made.
	#[error("another writer changed report entry {entry} meanwhile (generation {before} to {after}), {ATTEMPTS} times")]
	Conflict {
		/// The entry.
		entry: String,
		/// Generation before the report data was written.
		before: u64,
		/// Generation after the quote was read.
		after: u64,
	},
	/// The kernel returned no usable quote.
	#[error("the TEE returned {len} bytes, not a TDX quote: {reason}")]
	BadQuote {
		/// Bytes returned.
		len: usize,
		/// What is wrong with them.
		reason: String,
	},
	/// The quote could not be read: on TDX it comes from the host's quote generation service.
	#[error(
		"reading the quote from {path}: {source} (is the host's quote generation service running and reachable from the TD?)"
	)]
	Quote {
		/// The `outblob` read.
		path: String,
		/// What went wrong.
		#[source]
		source: std::io::Error,
	},
	/// Another file operation failed.
	#[error("{op} {path}: {source}")]
	Io {
		/// What was done.
		op: &'static str,
		/// On what.
		path: String,
		/// What went wrong.
		#[source]
		source: std::io::Error,
	},
}

/// The configfs-tsm report interface at a directory.
#[derive(Clone, Debug)]
pub struct Tsm {
	report_dir: PathBuf,
}

impl Tsm {
	/// The interface at `report_dir` (usually [`DEFAULT_REPORT_DIR`]).
	pub fn new(report_dir: impl Into<PathBuf>) -> Self {
		Self { report_dir: report_dir.into() }
	}

	/// Its report directory.
	pub fn report_dir(&self) -> &Path {
		&self.report_dir
	}

	/// A TDX quote carrying `report_data`. Blocks (file I/O): call it off the async runtime.
	pub fn tdx_quote(&self, report_data: &[u8; REPORT_DATA_LEN]) -> Result<Vec<u8>, TsmError> {
		if !self.report_dir.is_dir() {
			return Err(TsmError::NotAvailable { dir: self.report_dir.display().to_string() });
		}
		let mut attempt = 1;
		loop {
			match self.quote_once(report_data) {
				Err(TsmError::Conflict { entry, before, after }) if attempt < ATTEMPTS => {
					tracing::warn!(%entry, before, after, "report entry changed meanwhile: retrying");
					attempt += 1;
				}
				result => return result,
			}
		}
	}

	fn quote_once(&self, report_data: &[u8; REPORT_DATA_LEN]) -> Result<Vec<u8>, TsmError> {
		let entry = Entry::create(&self.report_dir)?;
		let provider = entry.read_text("provider", ATTRIBUTE_WAIT)?;
		if provider != TDX_PROVIDER {
			return Err(TsmError::NotTdx { provider });
		}
		let before = entry.generation()?;
		entry.write("inblob", report_data)?;
		let quote = entry.read("outblob", QUOTE_WAIT).map_err(|e| match e {
			TsmError::Io { path, source, .. } => TsmError::Quote { path, source },
			other => other,
		})?;
		let after = entry.generation()?;
		if after != before + 1 {
			return Err(TsmError::Conflict { entry: entry.name(), before, after });
		}
		check_tdx_quote(&quote)?;
		tracing::debug!(entry = %entry.name(), bytes = quote.len(), "quote read from configfs-tsm");
		Ok(quote)
	}
}

/// Refuses what is not a TDX quote (the chain verifies the rest).
fn check_tdx_quote(quote: &[u8]) -> Result<(), TsmError> {
	let bad = |reason: &str| TsmError::BadQuote { len: quote.len(), reason: reason.to_owned() };
	if quote.len() < MIN_TDX_QUOTE_LEN {
		return Err(bad("shorter than a TDX quote's header and TD report"));
	}
	if quote.len() > podchain_attestation::MAX_QUOTE_LEN as usize {
		return Err(bad("larger than the chain takes"));
	}
	let version = u16::from_le_bytes([quote[0], quote[1]]);
	let tee_type = u32::from_le_bytes([quote[4], quote[5], quote[6], quote[7]]);
	if tee_type != TEE_TYPE_TDX || !(4..=5).contains(&version) {
		return Err(bad(&format!("version {version}, TEE type {tee_type:#x}: not a TDX quote")));
	}
	Ok(())
}

/// A report entry, removed when dropped (also when making the quote failed).
struct Entry {
	path: PathBuf,
}

impl Entry {
	fn create(report_dir: &Path) -> Result<Self, TsmError> {
		static NEXT: AtomicU32 = AtomicU32::new(0);
		let name = format!(
			"podchain-agent-{}-{}",
			std::process::id(),
			NEXT.fetch_add(1, Ordering::Relaxed)
		);
		let path = report_dir.join(name);
		std::fs::create_dir(&path).map_err(|source| match source.kind() {
			ErrorKind::PermissionDenied => {
				TsmError::Permission { path: report_dir.display().to_string() }
			}
			ErrorKind::NotFound => TsmError::NotAvailable { dir: report_dir.display().to_string() },
			_ => TsmError::Io {
				op: "creating report entry",
				path: path.display().to_string(),
				source,
			},
		})?;
		Ok(Self { path })
	}

	fn name(&self) -> String {
		self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
	}

	/// Reads attribute `name`, waiting up to `wait` for it to appear.
	fn read(&self, name: &str, wait: Duration) -> Result<Vec<u8>, TsmError> {
		let path = self.path.join(name);
		let deadline = Instant::now() + wait;
		loop {
			match std::fs::read(&path) {
				Err(e) if e.kind() == ErrorKind::NotFound && Instant::now() < deadline => {
					std::thread::sleep(Duration::from_millis(5));
				}
				Ok(bytes) => return Ok(bytes),
				Err(source) => return Err(io_error("reading", &path, source)),
			}
		}
	}

	fn read_text(&self, name: &str, wait: Duration) -> Result<String, TsmError> {
		let bytes = self.read(name, wait)?;
		Ok(String::from_utf8_lossy(&bytes).trim().to_owned())
	}

	fn generation(&self) -> Result<u64, TsmError> {
		let text = self.read_text("generation", ATTRIBUTE_WAIT)?;
		text.parse().map_err(|_| TsmError::Io {
			op: "reading",
			path: self.path.join("generation").display().to_string(),
			source: std::io::Error::new(ErrorKind::InvalidData, format!("not a number: {text:?}")),
		})
	}

	/// Writes attribute `name` in one write, as configfs binary attributes want.
	fn write(&self, name: &str, bytes: &[u8]) -> Result<(), TsmError> {
		use std::io::Write;
		let path = self.path.join(name);
		let mut file = std::fs::OpenOptions::new()
			.write(true)
			.open(&path)
			.map_err(|source| io_error("opening", &path, source))?;
		file.write_all(bytes).map_err(|source| io_error("writing", &path, source))
	}
}

impl Drop for Entry {
	fn drop(&mut self) {
		// configfs removes an entry's attributes with it; a tree that only emulates configfs
		// keeps them as files, which must go first.
		let removed = std::fs::remove_dir(&self.path).or_else(|e| match e.kind() {
			ErrorKind::DirectoryNotEmpty => std::fs::remove_dir_all(&self.path),
			_ => Err(e),
		});
		if let Err(e) = removed {
			tracing::warn!(entry = %self.path.display(), error = %e, "cannot remove the report entry");
		}
	}
}

fn io_error(op: &'static str, path: &Path, source: std::io::Error) -> TsmError {
	match source.kind() {
		ErrorKind::PermissionDenied => TsmError::Permission { path: path.display().to_string() },
		_ => TsmError::Io { op, path: path.display().to_string(), source },
	}
}
