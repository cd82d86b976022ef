//! Builds the web console (`console/`, TypeScript through Vite) and embeds its files in the
//! `podchain` binary, so `podchain console` serves it with nothing else installed.
//!
//! The built files go to `OUT_DIR`, never into the source tree. `PODCHAIN_CONSOLE_DIST` points
//! at an already built console instead (packagers, machines without Node.js).

use std::{
	env, fs,
	path::{Path, PathBuf},
	process::Command,
};

fn main() {
	let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
	let console = manifest_dir.join("../console");
	let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
	println!("cargo:rerun-if-env-changed=PODCHAIN_CONSOLE_DIST");
	let dist = match env::var_os("PODCHAIN_CONSOLE_DIST") {
		Some(dist) => PathBuf::from(dist),
		None => {
			for input in [
				"src",
				"index.html",
				"package.json",
				"package-lock.json",
				"vite.config.ts",
				"tsconfig.json",
			] {
				println!("cargo:rerun-if-changed={}", console.join(input).display());
			}
			let dist = out_dir.join("console-dist");
			build_console(&console, &dist);
			dist
		}
	};
	let mut files = Vec::new();
	collect(&dist, &dist, &mut files);
	files.sort();
	if !files.iter().any(|(path, _)| path == "/index.html") {
		fail(&format!("{} holds no index.html: not a built console", dist.display()));
	}
	let mut code = String::from("/// The console's files: URL path, content type, bytes.\npub static ASSETS: &[(&str, &str, &[u8])] = &[\n");
	for (path, file) in &files {
		code.push_str(&format!(
			"\t({path:?}, {:?}, include_bytes!({:?})),\n",
			content_type(path),
			file.display().to_string()
		));
	}
	code.push_str("];\n");
	fs::write(out_dir.join("console_assets.rs"), code).expect("write console_assets.rs");
}

/// `npm ci` (when the lock file changed since the last install) and `npm run build`.
fn build_console(console: &Path, dist: &Path) {
	let installed = console.join("node_modules/.package-lock.json");
	let lock = console.join("package-lock.json");
	let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
	if modified(&installed).is_none() || modified(&installed) < modified(&lock) {
		run(
			Command::new("npm")
				.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
				.current_dir(console),
			"npm ci",
		);
	}
	run(
		Command::new("npm")
			.args(["run", "build", "--", "--outDir"])
			.arg(dist)
			.args(["--emptyOutDir", "--logLevel", "warn"])
			.current_dir(console),
		"npm run build",
	);
}

fn run(command: &mut Command, what: &str) {
	match command.status() {
		Ok(status) if status.success() => {},
		Ok(status) => fail(&format!("`{what}` in console/ failed ({status}); see its output above")),
		Err(e) => fail(&format!(
			"cannot run `{what}` ({e}): building podchain's CLI builds its web console, which needs Node.js 20+ and npm \
			 (or set PODCHAIN_CONSOLE_DIST to a console built elsewhere)"
		)),
	}
}

fn fail(message: &str) -> ! {
	eprintln!("error: {message}");
	std::process::exit(1);
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
	let entries =
		fs::read_dir(dir).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", dir.display())));
	for entry in entries.flatten() {
		let path = entry.path();
		if path.is_dir() {
			collect(root, &path, files);
		} else if let Ok(relative) = path.strip_prefix(root) {
			let url = format!("/{}", relative.to_string_lossy().replace('\\', "/"));
			files.push((url, path.canonicalize().unwrap_or(path)));
		}
	}
}

fn content_type(path: &str) -> &'static str {
	match path.rsplit('.').next() {
		Some("html") => "text/html; charset=utf-8",
		Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
		Some("css") => "text/css; charset=utf-8",
		Some("svg") => "image/svg+xml",
		Some("png") => "image/png",
		Some("json") => "application/json",
		Some("wasm") => "application/wasm",
		Some("ico") => "image/x-icon",
		_ => "application/octet-stream",
	}
}
