//! The agent's pull-only registry of delivered images, on 127.0.0.1, pulled from by podman (a
//! real OCI Distribution client: containers/image) into a throwaway store: a deal's own image
//! by digest pulls and matches; another deal's repository, a wrong token, a tag, a blob the
//! deal's image does not list and any push are refused.

use podchain_agent::{images::Images, registry};
use podchain_cluster::kube::repository;
use podchain_image::store::BlobStore;
use podchain_manifest::digest_text;
use podchain_testkit::http_get;
use std::{path::Path, process::Command, sync::Arc};

mod support;

use support::{archive, deliver, LIMITS};

const KEY: [u8; 32] = [9; 32];
/// The name the archives' images get in the host's podman store while built.
const IMAGE: &str = "localhost/team/web:registry-test";
/// Status and body bytes of `GET path` on 127.0.0.1:`port`.
fn fetch(port: u16, path: &str) -> (u16, Vec<u8>) {
	use std::io::{Read, Write};
	let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
	write!(stream, "GET {path} HTTP/1.0\r\nHost: registry\r\n\r\n").unwrap();
	let mut response = Vec::new();
	stream.read_to_end(&mut response).unwrap();
	let end = response.windows(4).position(|w| w == b"\r\n\r\n").expect("headers end");
	let head = String::from_utf8_lossy(&response[..end]);
	let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
	(status, response[end + 4..].to_vec())
}

/// `podman pull` of `reference` into the throwaway store under `dir`: success, and its output.
fn pull(dir: &Path, reference: &str) -> (bool, String) {
	let out = Command::new("podman")
		.args(["--root", &dir.join("root").to_string_lossy()])
		.args(["--runroot", &dir.join("run").to_string_lossy()])
		.args(["--storage-driver", "vfs", "pull", "--tls-verify=false", reference])
		.env("CONTAINERS_CONF", "/dev/null")
		.output()
		.expect("podman runs");
	let text =
		format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
	(out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_pulls_a_deals_image_and_nothing_else() {
	let work = tempfile::Builder::new().prefix("podchain-registry-").tempdir_in("/tmp").unwrap();
	let one = archive(work.path(), "one.oci.tar", "registry one", IMAGE);
	let two = archive(work.path(), "two.oci.tar", "registry two", IMAGE);
	let dir = work.path().join("images");
	{
		let store = BlobStore::open(&dir, LIMITS).unwrap();
		deliver(&store, 7, &one);
		deliver(&store, 8, &two);
		assert!(store.image_complete(7, &one.manifest_digest()));
		assert!(store.image_complete(8, &two.manifest_digest()));
	}
	// The agent's store, reopened as after a restart; deal 7 may pull its image, deal 8
	// (closing, say) nothing.
	let images = Images::open(&dir, LIMITS).unwrap();
	let digest_one = one.manifest_digest();
	let pulls = images.pulls(move |deal| if deal == 7 { vec![digest_one] } else { Vec::new() });
	let (addr, server) =
		registry::serve("127.0.0.1:0".parse().unwrap(), KEY, Arc::new(pulls)).await.unwrap();
	let host = addr.to_string();
	let seven = repository(&KEY, 7);
	let digest = digest_text(&digest_one);

	let pulled = work.path().join("pulled");
	let (ok, out) = pull(&pulled, &format!("{host}/{seven}/team/web@{digest}"));
	assert!(ok, "the deal's image pulls: {out}");
	let inspected = Command::new("podman")
		.args(["--root", &pulled.join("root").to_string_lossy()])
		.args(["--runroot", &pulled.join("run").to_string_lossy()])
		.args(["--storage-driver", "vfs", "image", "inspect", "--format", "{{.Digest}}"])
		.arg(format!("{host}/{seven}/team/web@{digest}"))
		.env("CONTAINERS_CONF", "/dev/null")
		.output()
		.unwrap();
	assert_eq!(String::from_utf8_lossy(&inspected.stdout).trim(), digest, "the very image pinned");

	let refused = |reference: String, why: &str| {
		let (ok, out) = pull(&work.path().join("refused"), &reference);
		assert!(!ok, "{why}: {reference} must not pull:\n{out}");
	};
	refused(format!("{host}/{seven}/team/web:latest"), "by tag");
	refused(
		format!("{host}/{}/team/web@{digest}", seven.replace("deal-7-", "deal-8-")),
		"deal 7's token for deal 8",
	);
	refused(format!("{host}/{}/team/web@{digest}", repository(&[1; 32], 7)), "another key's token");
	let eight = repository(&KEY, 8);
	refused(
		format!("{host}/{eight}/team/web@{}", digest_text(&two.manifest_digest())),
		"a deal that may not pull",
	);
	refused(format!("{host}/{eight}/team/web@{digest}"), "another deal's image");

	// Blobs: one deal 7's image lists is served; deal 8's top layer is not, through 7.
	let port = addr.port();
	let listed = one.blobs().last().unwrap().digest;
	let (status, body) = fetch(port, &format!("/v2/{seven}/web/blobs/{}", digest_text(&listed)));
	assert_eq!(status, 200);
	assert_eq!(podchain_image::sha256(&body), listed, "the blob's very bytes");
	let foreign = two.blobs().last().unwrap().digest;
	assert_ne!(foreign, listed);
	let (status, body) =
		http_get(port, &format!("/v2/{seven}/web/blobs/{}", digest_text(&foreign))).unwrap();
	assert_eq!(status, 404, "{body}");
	assert!(body.contains("BLOB_UNKNOWN"), "{body}");
	let (status, body) = http_get(port, "/v2/_catalog").unwrap();
	assert_eq!(status, 404, "{body}");
	// podman cannot push to it either.
	let push = Command::new("podman")
		.args(["--root", &pulled.join("root").to_string_lossy()])
		.args(["--runroot", &pulled.join("run").to_string_lossy()])
		.args(["--storage-driver", "vfs", "push", "--tls-verify=false"])
		.arg(format!("{host}/{seven}/team/web@{digest}"))
		.arg(format!("docker://{host}/{seven}/team/pushed:1"))
		.env("CONTAINERS_CONF", "/dev/null")
		.output()
		.unwrap();
	assert!(!push.status.success(), "a push is refused");
	server.abort();
	let _ = Command::new("podman")
		.args(["--root", &pulled.join("root").to_string_lossy()])
		.args(["--runroot", &pulled.join("run").to_string_lossy()])
		.args(["--storage-driver", "vfs", "system", "reset", "--force"])
		.env("CONTAINERS_CONF", "/dev/null")
		.output();
}
