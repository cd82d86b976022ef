//! A pull-only OCI Distribution endpoint (`/v2/`) serving the images publishers delivered, for a
//! Kubernetes cluster's nodes to pull deals' images from.
//!
//! - Only `GET` and `HEAD` of `/v2/`, `/v2/<repository>/manifests/<digest>` and
//!   `/v2/<repository>/blobs/<digest>`: nothing can be pushed, listed or looked up by tag.
//! - A repository is `deal-<id>-<token>/<name>`: the token is a keyed hash of the deal id
//!   under the agent's secret ([`podchain_cluster::kube::repository`]), so only the deal's pod
//!   specs name it. A wrong token is an unknown repository.
//! - A deal's repository serves only the image manifests that deal's held manifest pins while
//!   the deal may run, and only the blobs those images list ([`ImageSource`]).
//!
//! It speaks plain HTTP: bind it where only the nodes reach it, and map its host in the nodes'
//! containerd configuration (docs/provider-guide.md).

use std::{convert::Infallible, net::SocketAddr, path::PathBuf, sync::Arc};

use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::{
	body::{Bytes, Frame},
	header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE},
	server::conn::http1,
	service::service_fn,
	Method, Request, Response, StatusCode,
};
use hyper_util::rt::TokioIo;
use podchain_cluster::kube::deal_of_repository;
use tokio::{io::AsyncReadExt, net::TcpListener};

use crate::manifests::ImageDigest;

/// What the registry may serve to a deal's repository.
pub trait ImageSource: Send + Sync {
	/// Image manifest `digest`, if `deal` may pull it now: its media type and bytes.
	fn manifest(&self, deal: u64, digest: &ImageDigest) -> Option<(String, Vec<u8>)>;
	/// Blob `digest` (a config or layer of an image `deal` may pull now): its file and size.
	fn blob(&self, deal: u64, digest: &ImageDigest) -> Option<(PathBuf, u64)>;
}

/// Size of the pieces a blob is sent in.
const CHUNK: usize = 256 << 10;

type Body = BoxBody<Bytes, std::io::Error>;

/// Binds `addr` and serves pulls until the task is dropped.
pub async fn serve(
	addr: SocketAddr,
	key: [u8; 32],
	source: Arc<dyn ImageSource>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
	let listener = TcpListener::bind(addr).await?;
	let local = listener.local_addr()?;
	tracing::info!(addr = %local, "serving delivered images to the cluster's nodes (pull only)");
	let task = tokio::spawn(async move {
		loop {
			let Ok((stream, peer)) = listener.accept().await else {
				// Out of file descriptors, usually: let some close before trying again.
				tokio::time::sleep(std::time::Duration::from_millis(100)).await;
				continue;
			};
			let source = source.clone();
			tokio::spawn(async move {
				let service = service_fn(move |request| {
					let source = source.clone();
					async move { Ok::<_, Infallible>(answer(&request, &key, &*source, peer).await) }
				});
				let serving = http1::Builder::new()
					.timer(hyper_util::rt::TokioTimer::new())
					.header_read_timeout(std::time::Duration::from_secs(10))
					.serve_connection(TokioIo::new(stream), service);
				if let Err(e) = serving.await {
					tracing::debug!(%peer, error = %e, "registry connection ended");
				}
			});
		}
	});
	Ok((local, task))
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
	/// `/v2/`: the API version check.
	Base,
	/// An image manifest by digest.
	Manifest { deal: u64, digest: ImageDigest },
	/// A blob by digest.
	Blob { deal: u64, digest: ImageDigest },
}

/// Why a request is not served: an OCI Distribution error.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
	status: StatusCode,
	code: &'static str,
	message: &'static str,
}

const UNKNOWN_NAME: Refusal =
	Refusal { status: StatusCode::NOT_FOUND, code: "NAME_UNKNOWN", message: "no such repository" };

fn parse(method: &Method, path: &str, key: &[u8; 32]) -> Result<Asked, Refusal> {
	if method != Method::GET && method != Method::HEAD {
		return Err(Refusal {
			status: StatusCode::METHOD_NOT_ALLOWED,
			code: "UNSUPPORTED",
			message: "this registry only serves pulls",
		});
	}
	if path == "/v2/" || path == "/v2" {
		return Ok(Asked::Base);
	}
	let rest = path.strip_prefix("/v2/").ok_or(UNKNOWN_NAME)?;
	let (repository, kind, reference) = match rest.rsplitn(3, '/').collect::<Vec<_>>()[..] {
		[reference, kind, repository] => (repository, kind, reference),
		_ => return Err(UNKNOWN_NAME),
	};
	let deal = deal_of_repository(key, repository.split('/').next().unwrap_or_default())
		.ok_or(UNKNOWN_NAME)?;
	let digest = podchain_manifest::parse_digest(reference);
	match (kind, digest) {
		("manifests", Some(digest)) => Ok(Asked::Manifest { deal, digest }),
		("manifests", None) => Err(Refusal {
			status: StatusCode::NOT_FOUND,
			code: "MANIFEST_UNKNOWN",
			message: "images are served by sha256 digest only",
		}),
		("blobs", Some(digest)) => Ok(Asked::Blob { deal, digest }),
		("blobs", None) => Err(Refusal {
			status: StatusCode::NOT_FOUND,
			code: "DIGEST_INVALID",
			message: "blobs are served by sha256 digest",
		}),
		_ => Err(UNKNOWN_NAME),
	}
}

async fn answer<B>(
	request: &Request<B>,
	key: &[u8; 32],
	source: &dyn ImageSource,
	peer: SocketAddr,
) -> Response<Body> {
	let head = request.method() == Method::HEAD;
	let asked = parse(request.method(), request.uri().path(), key);
	let response = match asked {
		Ok(Asked::Base) => Ok(respond(StatusCode::OK, "application/json", full(b"{}".to_vec()))),
		Ok(Asked::Manifest { deal, digest }) => match source.manifest(deal, &digest) {
			Some((media_type, bytes)) => {
				let mut response = respond(StatusCode::OK, &media_type, full(bytes));
				set(
					&mut response,
					"Docker-Content-Digest",
					&podchain_manifest::digest_text(&digest),
				);
				Ok(response)
			}
			None => Err(Refusal {
				status: StatusCode::NOT_FOUND,
				code: "MANIFEST_UNKNOWN",
				message: "the deal does not run this image",
			}),
		},
		Ok(Asked::Blob { deal, digest }) => match source.blob(deal, &digest) {
			Some((path, size)) => match file_body(path, size, head).await {
				Ok(body) => {
					let mut response = respond(StatusCode::OK, "application/octet-stream", body);
					set(&mut response, CONTENT_LENGTH.as_str(), &size.to_string());
					set(
						&mut response,
						"Docker-Content-Digest",
						&podchain_manifest::digest_text(&digest),
					);
					Ok(response)
				}
				Err(e) => {
					tracing::error!(deal, error = %e, "cannot read a delivered image's blob");
					Err(Refusal {
						status: StatusCode::INTERNAL_SERVER_ERROR,
						code: "UNKNOWN",
						message: "the blob cannot be read",
					})
				}
			},
			None => Err(Refusal {
				status: StatusCode::NOT_FOUND,
				code: "BLOB_UNKNOWN",
				message: "the deal does not run an image with this blob",
			}),
		},
		Err(refusal) => Err(refusal),
	};
	response.unwrap_or_else(|refusal| {
		tracing::debug!(%peer, path = %request.uri().path(), code = refusal.code, "registry request refused");
		let body = serde_json::json!({
			"errors": [{ "code": refusal.code, "message": refusal.message }]
		});
		respond(refusal.status, "application/json", full(body.to_string().into_bytes()))
	})
}

fn full(bytes: Vec<u8>) -> Body {
	Full::new(Bytes::from(bytes)).map_err(|never| match never {}).boxed()
}

/// The blob's bytes, read as they are sent (never whole in memory); nothing for `HEAD`.
async fn file_body(path: PathBuf, size: u64, head: bool) -> std::io::Result<Body> {
	if head {
		return Ok(Empty::new().map_err(|never| match never {}).boxed());
	}
	let file = tokio::fs::File::open(&path).await?;
	let frames = futures::stream::unfold((file, size), |(mut file, left)| async move {
		if left == 0 {
			return None;
		}
		let mut buffer = vec![0u8; CHUNK.min(usize::try_from(left).unwrap_or(CHUNK))];
		match file.read(&mut buffer).await {
			// The store's blobs never change: a short file is an error, not a shorter blob.
			Ok(0) => Some((Err(std::io::ErrorKind::UnexpectedEof.into()), (file, 0))),
			Ok(n) => {
				buffer.truncate(n);
				Some((Ok(Frame::data(Bytes::from(buffer))), (file, left - n as u64)))
			}
			Err(e) => Some((Err(e), (file, 0))),
		}
	});
	Ok(StreamBody::new(frames).boxed())
}

/// A response with `body` (hyper sends none for `HEAD`, keeping the length it knows).
fn respond(status: StatusCode, content_type: &str, body: Body) -> Response<Body> {
	let mut response = Response::new(body);
	*response.status_mut() = status;
	set(&mut response, CONTENT_TYPE.as_str(), content_type);
	set(&mut response, "Docker-Distribution-API-Version", "registry/2.0");
	response
}

fn set(response: &mut Response<Body>, name: &str, value: &str) {
	if let (Ok(name), Ok(value)) =
		(hyper::header::HeaderName::try_from(name), HeaderValue::from_str(value))
	{
		response.headers_mut().insert(name, value);
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use podchain_cluster::kube::repository;

	const KEY: [u8; 32] = [3; 32];
	const DIGEST: &str = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

	#[test]
	fn only_pulls_by_digest_from_a_deals_own_repository() {
		let repo = repository(&KEY, 7);
		let digest = podchain_manifest::parse_digest(DIGEST).unwrap();
		let get = |path: &str| parse(&Method::GET, path, &KEY);
		assert_eq!(get("/v2/"), Ok(Asked::Base));
		assert_eq!(
			get(&format!("/v2/{repo}/team/web/manifests/{DIGEST}")),
			Ok(Asked::Manifest { deal: 7, digest })
		);
		assert_eq!(
			get(&format!("/v2/{repo}/web/blobs/{DIGEST}")),
			Ok(Asked::Blob { deal: 7, digest })
		);
		assert_eq!(
			get(&format!("/v2/{repo}/web/manifests/latest")).unwrap_err().code,
			"MANIFEST_UNKNOWN"
		);
		assert_eq!(
			get(&format!("/v2/{repo}/web/blobs/sha512:00")).unwrap_err().code,
			"DIGEST_INVALID"
		);
		// Another deal's id with this token, another key's token, no token: unknown.
		let other = repo.replace("deal-7-", "deal-8-");
		assert_eq!(get(&format!("/v2/{other}/web/manifests/{DIGEST}")), Err(UNKNOWN_NAME));
		let foreign = repository(&[4; 32], 7);
		assert_eq!(get(&format!("/v2/{foreign}/web/manifests/{DIGEST}")), Err(UNKNOWN_NAME));
		assert_eq!(get(&format!("/v2/deal-7/web/manifests/{DIGEST}")), Err(UNKNOWN_NAME));
		assert_eq!(get("/v2/_catalog"), Err(UNKNOWN_NAME));
		assert_eq!(get(&format!("/v2/{repo}/web/tags/list")), Err(UNKNOWN_NAME));
		// Nothing but pulls.
		for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
			let refused = parse(&method, &format!("/v2/{repo}/web/blobs/uploads/"), &KEY);
			assert_eq!(refused.unwrap_err().status, StatusCode::METHOD_NOT_ALLOWED);
		}
		assert_eq!(
			parse(&Method::HEAD, &format!("/v2/{repo}/w/blobs/{DIGEST}"), &KEY),
			Ok(Asked::Blob { deal: 7, digest })
		);
	}
}
