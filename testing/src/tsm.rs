//! A stand-in for the kernel's configfs-tsm report directory, for machines without TDX: a
//! directory tree laid out like `/sys/kernel/config/tsm/report`, and a "kernel" thread that
//! fills each entry made in it as the kernel would (`provider`, `generation`), and answers
//! report data written to an entry's `inblob` with a prepared quote in its `outblob`.

use std::{
	collections::HashSet,
	fs,
	path::{Path, PathBuf},
	sync::{
		atomic::{AtomicBool, Ordering},
		Arc, Mutex,
	},
	thread::JoinHandle,
	time::Duration,
};

/// How the fake kernel behaves.
#[derive(Clone, Debug)]
pub struct FakeTsmOptions {
	/// What `provider` reads (`tdx_guest` on a TDX guest).
	pub provider: String,
	/// The quote `outblob` returns.
	pub quote: Vec<u8>,
	/// Extra writes another process makes to each entry while its quote is made (bumping
	/// `generation`).
	pub concurrent_writes: u64,
}

/// A fake configfs-tsm report directory, served until dropped.
pub struct FakeTsm {
	dir: tempfile::TempDir,
	inblobs: Arc<Mutex<Vec<Vec<u8>>>>,
	stop: Arc<AtomicBool>,
	kernel: Option<JoinHandle<()>>,
}

impl FakeTsm {
	/// A TDX guest whose quotes are `quote`.
	pub fn tdx(quote: Vec<u8>) -> Self {
		Self::start(FakeTsmOptions { provider: "tdx_guest".into(), quote, concurrent_writes: 0 })
	}

	/// A fake kernel behaving as `options` say.
	pub fn start(options: FakeTsmOptions) -> Self {
		let dir = tempfile::Builder::new().prefix("podchain-tsm-").tempdir().expect("a directory");
		fs::create_dir_all(dir.path().join("tsm/report")).expect("the report directory");
		fs::create_dir_all(dir.path().join("staging")).expect("a staging directory");
		let inblobs = Arc::new(Mutex::new(Vec::new()));
		let stop = Arc::new(AtomicBool::new(false));
		let kernel = {
			let (report_dir, staging, inblobs, stop) = (
				dir.path().join("tsm/report"),
				dir.path().join("staging"),
				inblobs.clone(),
				stop.clone(),
			);
			std::thread::spawn(move || {
				let mut served = Served::default();
				while !stop.load(Ordering::Relaxed) {
					serve_entries(&report_dir, &staging, &options, &inblobs, &mut served);
					std::thread::sleep(Duration::from_millis(2));
				}
			})
		};
		Self { dir, inblobs, stop, kernel: Some(kernel) }
	}

	/// The report directory, to give the agent (`--tsm-report-dir`).
	pub fn report_dir(&self) -> PathBuf {
		self.dir.path().join("tsm/report")
	}

	/// Every report data written so far, in order.
	pub fn inblobs(&self) -> Vec<Vec<u8>> {
		self.inblobs.lock().map(|i| i.clone()).unwrap_or_default()
	}

	/// The entries present now.
	pub fn entries(&self) -> Vec<String> {
		fs::read_dir(self.report_dir())
			.map(|dir| {
				dir.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
					.collect()
			})
			.unwrap_or_default()
	}
}

impl Drop for FakeTsm {
	fn drop(&mut self) {
		self.stop.store(true, Ordering::Relaxed);
		if let Some(kernel) = self.kernel.take() {
			let _ = kernel.join();
		}
	}
}

/// The entries the fake kernel made attributes for, and those whose report it answered: each
/// once, as the kernel does (and never again while the agent removes them).
#[derive(Default)]
struct Served {
	made: HashSet<PathBuf>,
	answered: HashSet<PathBuf>,
}

/// One pass of the fake kernel over the entries.
fn serve_entries(
	report_dir: &Path,
	staging: &Path,
	options: &FakeTsmOptions,
	inblobs: &Mutex<Vec<Vec<u8>>>,
	served: &mut Served,
) {
	let Ok(entries) = fs::read_dir(report_dir) else { return };
	let write = |entry: &Path, name: &str, bytes: &[u8]| {
		// Staged and renamed, so that a reader sees all of it or nothing.
		let staged = staging.join(name);
		if fs::write(&staged, bytes).is_ok() && fs::rename(&staged, entry.join(name)).is_err() {
			let _ = fs::remove_file(&staged);
		}
	};
	for entry in entries.filter_map(Result::ok) {
		let entry = entry.path();
		if !entry.is_dir() {
			continue;
		}
		// The kernel makes the attributes with the entry; `provider` last, since the agent
		// reads it first.
		if served.made.insert(entry.clone()) {
			write(&entry, "generation", b"0\n");
			write(&entry, "inblob", b"");
			write(&entry, "provider", format!("{}\n", options.provider).as_bytes());
			continue;
		}
		if served.answered.contains(&entry) {
			continue;
		}
		// configfs takes a binary attribute's bytes whole once the writer closes it.
		let Ok(inblob) = fs::read(entry.join("inblob")) else { continue };
		if inblob.len() != 64 {
			continue;
		}
		served.answered.insert(entry.clone());
		if let Ok(mut seen) = inblobs.lock() {
			seen.push(inblob);
		}
		let generation = 1 + options.concurrent_writes;
		write(&entry, "generation", format!("{generation}\n").as_bytes());
		write(&entry, "outblob", &options.quote);
	}
}
