//! kube-rs errors as [`ClusterError`]s: whether a retry can help.

use crate::ClusterError;
use ::kube::Error;

/// Maps the error of the request described by `what`.
///
/// Transient ([`ClusterError::Unavailable`]): no connection, no answer, server errors, and
/// the client errors that say "not now" rather than "not this": 401 (credentials expire and are
/// renewed), 404 (a namespace deleted or an API not served yet), 408, 409 and 429. A status
/// without a code is taken as transient too: kube-rs reads any JSON error body as a status, so
/// a proxy's JSON error page arrives that way, code lost. Every other 4xx is the cluster
/// refusing the objects (invalid, forbidden, over quota, admission):
/// [`ClusterError::Refused`].
pub(super) fn map(what: &str, err: Error) -> ClusterError {
	match err {
		Error::Api(status) => {
			let text = format!("{what}: {} ({}, {})", status.message, status.reason, status.code);
			match status.code {
				0 | 401 | 404 | 408 | 409 | 429 | 500..=599 => ClusterError::Unavailable(text),
				400..=499 => ClusterError::Refused(text),
				_ => ClusterError::Other(text),
			}
		}
		Error::HyperError(_) | Error::Service(_) | Error::Auth(_) | Error::ReadEvents(_) => {
			ClusterError::Unavailable(format!("{what}: {err}"))
		}
		other => ClusterError::Other(format!("{what}: {other}")),
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use ::kube::core::Status;

	fn api(code: u16) -> ClusterError {
		map("apply", Error::Api(Status::failure("nope", "Reason").with_code(code).boxed()))
	}

	#[test]
	fn status_codes() {
		for code in [0, 401, 404, 408, 409, 429, 500, 502, 503, 504] {
			assert!(matches!(api(code), ClusterError::Unavailable(_)), "{code}");
		}
		for code in [400, 403, 410, 413, 422] {
			assert!(matches!(api(code), ClusterError::Refused(_)), "{code}");
		}
		assert!(matches!(api(302), ClusterError::Other(_)));
		assert_eq!(
			api(422).to_string(),
			"cluster refused the deal's objects: apply: nope (Reason, 422)"
		);
	}

	#[test]
	fn parse_errors_are_other() {
		let err = serde_json::from_str::<u8>("x").expect_err("not json");
		assert!(matches!(map("list", Error::SerdeError(err)), ClusterError::Other(_)));
	}
}
