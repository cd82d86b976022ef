//! Names, labels and annotations shared by every object of a deal.

use super::{BuildError, DealSpec, DEAL_LABEL, MANAGER, MANIFEST_HASH_ANNOTATION, PROVIDER_LABEL};
use crate::DealId;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// The standard label naming the tool that manages an object; its value is [`MANAGER`].
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Prefix of deal namespaces: `podchain-deal-<id>`.
pub const NAMESPACE_PREFIX: &str = "podchain-deal-";
/// Name of the Deployment running a deal's pods.
pub const DEPLOYMENT_NAME: &str = "app";
/// Name of a deal's ResourceQuota of storage, GPUs, ephemeral storage and exposures.
pub const QUOTA_NAME: &str = "reserved";
/// Name of a deal's ResourceQuota of its pods' CPU and memory.
pub const POD_QUOTA_NAME: &str = "reserved-pods";
/// Name of a deal's ResourceQuota of its storage-proof pod.
pub const SNAPSHOT_QUOTA_NAME: &str = "snapshot";
/// Name of a deal's LimitRange.
pub const LIMIT_RANGE_NAME: &str = "containers";
/// Name of a deal's NetworkPolicy.
pub const NETWORK_POLICY_NAME: &str = "isolate";
/// Name of a deal's Ingress.
pub const INGRESS_NAME: &str = "http";

/// The namespace of `deal`.
pub fn namespace_name(deal: DealId) -> String {
	format!("{NAMESPACE_PREFIX}{deal}")
}

/// The Secret holding the manifest secret `name`.
pub fn secret_name(name: &str) -> String {
	format!("secret-{name}")
}

/// The PersistentVolumeClaim of the manifest volume `name` (the pod's volume is named `name`
/// itself: pod volume names are limited to 63 characters, and manifest names already are).
pub fn claim_name(volume: &str) -> String {
	format!("vol-{volume}")
}

/// The ClusterIP Service of an HTTP exposure on `port`.
pub fn http_service_name(port: u16) -> String {
	format!("http-{port}")
}

/// The Service publishing a TCP exposure on `port`.
pub fn tcp_service_name(port: u16) -> String {
	format!("tcp-{port}")
}

/// A manifest hash as the lowercase hex of the manifest hash annotation.
pub fn manifest_hash_hex(hash: &[u8; 32]) -> String {
	hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash in a manifest hash annotation: 64 hex digits, either case.
pub fn manifest_hash_from_hex(text: &str) -> Option<[u8; 32]> {
	let bytes = text.as_bytes();
	if bytes.len() != 64 || !bytes.iter().all(u8::is_ascii_hexdigit) {
		return None;
	}
	let mut hash = [0u8; 32];
	for (byte, pair) in hash.iter_mut().zip(bytes.chunks_exact(2)) {
		let pair = std::str::from_utf8(pair).ok()?;
		*byte = u8::from_str_radix(pair, 16).ok()?;
	}
	Some(hash)
}

/// Whether `value` is a valid label value: at most 63 of `[A-Za-z0-9_.-]`, alphanumeric at both
/// ends (or empty).
pub(super) fn is_label_value(value: &str) -> bool {
	let alnum = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
	value.len() <= 63
		&& value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
		&& alnum(value.chars().next())
		&& alnum(value.chars().last())
}

/// Whether `host` is a DNS name an Ingress accepts: lowercase RFC 1123 labels joined by dots,
/// at most 253 characters.
pub(super) fn is_dns_name(host: &str) -> bool {
	let label = |l: &str| {
		!l.is_empty()
			&& l.len() <= 63
			&& l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
			&& !l.starts_with('-')
			&& !l.ends_with('-')
	};
	host.len() <= 253 && host.split('.').all(label)
}

/// The metadata every object of one deal shares.
pub(super) struct Common {
	/// The deal's namespace.
	pub namespace: String,
	/// Deal, provider and managed-by labels.
	pub labels: BTreeMap<String, String>,
	/// The manifest hash annotation.
	pub annotations: BTreeMap<String, String>,
	/// The labels selecting the deal's pods (just the deal label: a Deployment's selector is
	/// immutable, so it holds nothing that could change).
	pub selector: BTreeMap<String, String>,
}

impl Common {
	/// The metadata of `spec`'s deal; fails if its provider is not a valid label value.
	pub fn new(spec: &DealSpec) -> Result<Self, BuildError> {
		if !is_label_value(&spec.provider) {
			return Err(BuildError::InvalidLabelValue {
				what: "provider",
				value: spec.provider.clone(),
			});
		}
		let deal = spec.deal.to_string();
		let labels = BTreeMap::from([
			(DEAL_LABEL.to_owned(), deal.clone()),
			(PROVIDER_LABEL.to_owned(), spec.provider.clone()),
			(MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned()),
		]);
		let annotations = BTreeMap::from([(
			MANIFEST_HASH_ANNOTATION.to_owned(),
			manifest_hash_hex(&spec.manifest_hash),
		)]);
		Ok(Common {
			namespace: namespace_name(spec.deal),
			labels,
			annotations,
			selector: BTreeMap::from([(DEAL_LABEL.to_owned(), deal)]),
		})
	}

	/// Metadata of an object named `name` in the deal's namespace.
	pub fn meta(&self, name: &str) -> ObjectMeta {
		ObjectMeta {
			name: Some(name.to_owned()),
			namespace: Some(self.namespace.clone()),
			labels: Some(self.labels.clone()),
			annotations: Some(self.annotations.clone()),
			..ObjectMeta::default()
		}
	}
}
