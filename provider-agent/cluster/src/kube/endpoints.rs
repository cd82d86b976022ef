//! Where the agent's gateway reaches a deal's pods on Kubernetes: the deal's ClusterIP Service
//! for the port. The Service address is only routable from inside the cluster, so this serves a
//! gateway that runs in the cluster (see the agent's deploy files); an agent outside it serves
//! HTTP through the deal's Ingress instead.

use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::Service;

use super::KubeBackend;
use crate::{
	objects::{http_service_name, namespace_name},
	ClusterError, DealId,
};

/// The deal's Service for `port`, as one address; none if the deal has no such Service (yet).
pub(super) async fn endpoints(
	backend: &KubeBackend,
	deal: DealId,
	port: u16,
) -> Result<Vec<SocketAddr>, ClusterError> {
	let api: ::kube::Api<Service> =
		::kube::Api::namespaced(backend.client.clone(), &namespace_name(deal));
	let name = http_service_name(port);
	let Some(service) = backend.call_allowing("read service", api.get(&name), &[404]).await? else {
		return Ok(Vec::new());
	};
	let address = service
		.spec
		.and_then(|spec| spec.cluster_ip)
		.and_then(|ip| ip.parse::<IpAddr>().ok())
		.map(|ip| SocketAddr::new(ip, port));
	Ok(address.into_iter().collect())
}
