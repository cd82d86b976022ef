//! Checks manifest files and prints, for each, its problems or its hash, reservation and
//! canonical form: `cargo run --example check -- fixtures/web.yaml`.

use std::{path::Path, process::ExitCode};

use podchain_manifest::Manifest;

fn main() -> ExitCode {
	let mut failed = false;
	for arg in std::env::args().skip(1) {
		match Manifest::from_path(Path::new(&arg)) {
			Ok(manifest) => {
				let hash: String = manifest.hash().iter().map(|b| format!("{b:02x}")).collect();
				println!("{arg}: ok");
				println!("  manifest_hash: 0x{hash}");
				match manifest.resources() {
					Ok(r) => println!(
						"  reserves: {} millicores, {} MiB, {} GiB, {} GPUs",
						r.cpu_millicores, r.memory_mib, r.storage_gib, r.gpus
					),
					Err(e) => println!("  reserves: {e}"),
				}
				// The canonical form holds secret values: print it only for manifests without.
				if manifest.secrets.is_empty() {
					println!(
						"  canonical: {}",
						String::from_utf8_lossy(&manifest.canonical_bytes())
					);
				}
			}
			Err(e) => {
				failed = true;
				eprintln!("{e}");
			}
		}
	}
	if failed {
		ExitCode::FAILURE
	} else {
		ExitCode::SUCCESS
	}
}
