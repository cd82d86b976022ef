//! How a deal's pods are reached: Services and the Ingress.

use super::{
	names::{http_service_name, is_dns_name, tcp_service_name, Common},
	BuildError, BuildOptions, DealSpec, INGRESS_NAME,
};
use k8s_openapi::{
	api::{
		core::v1::{Service, ServicePort, ServiceSpec},
		networking::v1::{
			HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
			IngressServiceBackend, IngressSpec, ServiceBackendPort,
		},
	},
	apimachinery::pkg::util::intstr::IntOrString,
};
use podchain_manifest::{Exposure, Manifest};

/// The deal's public HTTP route: its registered host to one container port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct HttpRoute {
	pub host: String,
	pub port: u16,
}

/// The HTTP route of a deal, if it has a registered host and an HTTP exposure for it.
///
/// A deal owns one name on chain, so the ingress serves only [`DealSpec::http_host`]: an
/// exposure without `host` is served there, and one whose `host` is that name's label too.
/// An exposure naming another label is not routed (it keeps its in-cluster Service): serving
/// it would let a tenant claim a host it does not own on the shared ingress controller.
pub(super) fn http_route(spec: &DealSpec) -> Result<Option<HttpRoute>, BuildError> {
	let Some(host) = &spec.http_host else { return Ok(None) };
	if !is_dns_name(host) {
		return Err(BuildError::InvalidHost(host.clone()));
	}
	let registered = host.split('.').next().unwrap_or_default();
	let mut route: Option<HttpRoute> = None;
	for exposure in &spec.manifest.expose {
		let Exposure::Http { host: label, port } = exposure else { continue };
		if label.as_deref().is_some_and(|l| l != registered) {
			continue;
		}
		match &route {
			None => route = Some(HttpRoute { host: host.clone(), port: *port }),
			Some(r) if r.port == *port => {}
			Some(r) => {
				return Err(BuildError::ConflictingHttpPorts {
					host: host.clone(),
					first: r.port,
					second: *port,
				})
			}
		}
	}
	Ok(route)
}

/// The exposed ports of one kind, each once, in the manifest's order.
fn ports(manifest: &Manifest, http: bool) -> Vec<u16> {
	let mut ports = Vec::new();
	for exposure in &manifest.expose {
		if matches!(exposure, Exposure::Http { .. }) == http && !ports.contains(&exposure.port()) {
			ports.push(exposure.port());
		}
	}
	ports
}

/// A ClusterIP Service per HTTP port (the ingress controller's backend) and a public Service
/// per TCP port, of [`BuildOptions::tcp_service_type`].
pub(super) fn services(
	common: &Common,
	manifest: &Manifest,
	options: &BuildOptions,
) -> Vec<Service> {
	let http = ports(manifest, true).into_iter().map(|p| (http_service_name(p), p, "ClusterIP"));
	let tcp = ports(manifest, false)
		.into_iter()
		.map(|p| (tcp_service_name(p), p, options.tcp_service_type.as_str()));
	http.chain(tcp)
		.map(|(name, port, type_)| Service {
			metadata: common.meta(&name),
			spec: Some(ServiceSpec {
				type_: Some(type_.into()),
				selector: Some(common.selector.clone()),
				ports: Some(vec![ServicePort {
					name: Some(name.clone()),
					port: i32::from(port),
					target_port: Some(IntOrString::Int(i32::from(port))),
					protocol: Some("TCP".into()),
					..ServicePort::default()
				}]),
				..ServiceSpec::default()
			}),
			..Service::default()
		})
		.collect()
}

/// The Ingress of the deal's HTTP route, if it has one.
pub(super) fn ingress(
	common: &Common,
	route: &Option<HttpRoute>,
	options: &BuildOptions,
) -> Option<Ingress> {
	let route = route.as_ref()?;
	let backend = IngressServiceBackend {
		name: http_service_name(route.port),
		port: Some(ServiceBackendPort { number: Some(i32::from(route.port)), name: None }),
	};
	Some(Ingress {
		metadata: common.meta(INGRESS_NAME),
		spec: Some(IngressSpec {
			ingress_class_name: Some(options.ingress_class.clone()),
			rules: Some(vec![IngressRule {
				host: Some(route.host.clone()),
				http: Some(HTTPIngressRuleValue {
					paths: vec![HTTPIngressPath {
						path: Some("/".into()),
						path_type: "Prefix".into(),
						backend: IngressBackend { service: Some(backend), resource: None },
					}],
				}),
			}]),
			..IngressSpec::default()
		}),
		..Ingress::default()
	})
}
