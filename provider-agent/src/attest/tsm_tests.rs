//! configfs-tsm against a tree laid out like the kernel's, served by a fake kernel thread.

use super::tsm::{Tsm, TsmError};
use podchain_testkit::{tsm::FakeTsmOptions, FakeTsm};

const SAMPLE_QUOTE: &[u8] = include_bytes!("../../../primitives/attestation/fixtures/tdx_quote");

fn report_data() -> [u8; 64] {
	let mut data = [0u8; 64];
	data[..32].copy_from_slice(&[7u8; 32]);
	data
}

#[test]
fn the_quote_carries_the_report_data_written_and_the_entry_goes() {
	let kernel = FakeTsm::tdx(SAMPLE_QUOTE.to_vec());
	let quote = Tsm::new(kernel.report_dir()).tdx_quote(&report_data()).unwrap();
	assert_eq!(quote, SAMPLE_QUOTE);
	assert_eq!(kernel.inblobs(), vec![report_data().to_vec()]);
	assert!(kernel.entries().is_empty(), "entry left behind: {:?}", kernel.entries());
}

#[test]
fn another_provider_than_tdx_is_refused() {
	let kernel = FakeTsm::start(FakeTsmOptions {
		provider: "sev_guest".into(),
		quote: SAMPLE_QUOTE.to_vec(),
		concurrent_writes: 0,
	});
	let err = Tsm::new(kernel.report_dir()).tdx_quote(&report_data()).unwrap_err();
	assert!(matches!(&err, TsmError::NotTdx { provider } if provider == "sev_guest"), "{err}");
	assert!(err.to_string().contains("not tdx_guest"), "{err}");
	assert!(kernel.inblobs().is_empty(), "report data written to a non-TDX provider");
	assert!(kernel.entries().is_empty(), "entry left behind on error");
}

#[test]
fn a_concurrent_writer_is_detected_and_named() {
	let kernel = FakeTsm::start(FakeTsmOptions {
		provider: "tdx_guest".into(),
		quote: SAMPLE_QUOTE.to_vec(),
		concurrent_writes: 1,
	});
	let err = Tsm::new(kernel.report_dir()).tdx_quote(&report_data()).unwrap_err();
	assert!(matches!(err, TsmError::Conflict { before: 0, after: 2, .. }), "{err}");
	assert_eq!(kernel.inblobs().len(), 3, "retried before giving up");
	assert!(kernel.entries().is_empty());
}

#[test]
fn a_short_or_foreign_quote_is_refused() {
	let kernel = FakeTsm::tdx(SAMPLE_QUOTE[..100].to_vec());
	let err = Tsm::new(kernel.report_dir()).tdx_quote(&report_data()).unwrap_err();
	assert!(matches!(err, TsmError::BadQuote { len: 100, .. }), "{err}");
	assert!(kernel.entries().is_empty());

	let sgx = include_bytes!("../../../primitives/attestation/fixtures/sgx_quote");
	let kernel = FakeTsm::tdx(sgx.to_vec());
	let err = Tsm::new(kernel.report_dir()).tdx_quote(&report_data()).unwrap_err();
	assert!(err.to_string().contains("not a TDX quote"), "{err}");
}

#[test]
fn no_configfs_and_no_permission_are_told_apart() {
	let dir = tempfile::tempdir().unwrap();
	let err = Tsm::new(dir.path().join("tsm/report")).tdx_quote(&report_data()).unwrap_err();
	assert!(matches!(err, TsmError::NotAvailable { .. }), "{err}");
	assert!(err.to_string().contains("mount -t configfs"), "{err}");

	// Root ignores directory modes: the permission case is only observable as another user.
	if std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n") {
		return;
	}
	use std::os::unix::fs::PermissionsExt;
	let report = dir.path().join("report");
	std::fs::create_dir(&report).unwrap();
	std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o500)).unwrap();
	let err = Tsm::new(&report).tdx_quote(&report_data()).unwrap_err();
	assert!(matches!(err, TsmError::Permission { .. }), "{err}");
}
