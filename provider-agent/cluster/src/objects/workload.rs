//! What the deal runs: its secrets, volumes and the Deployment of its pods.

use super::{
	names::{claim_name, secret_name, Common},
	policy::{bytes, quantity},
	BuildError, BuildOptions, DEPLOYMENT_NAME,
};
use k8s_openapi::{
	api::{
		apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy},
		core::v1::{
			Affinity, Capabilities, Container, ContainerPort, EnvVar, EnvVarSource,
			PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
			PodAffinity, PodAffinityTerm, PodSecurityContext, PodSpec, PodTemplateSpec,
			ResourceRequirements, SeccompProfile, Secret, SecretKeySelector, SecurityContext,
			Volume, VolumeMount, VolumeResourceRequirements,
		},
	},
	apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta},
	ByteString,
};
use podchain_manifest::{Container as ManifestContainer, EnvValue, Image, Manifest, Protocol};
use std::collections::BTreeMap;

/// One Secret per manifest secret. Written as `data` rather than `stringData`: the API server
/// folds `stringData` into `data` on write, so with server-side apply a key removed from the
/// manifest would linger in `data`; owning `data` itself lets apply remove it.
pub(super) fn secrets(common: &Common, manifest: &Manifest) -> Vec<Secret> {
	manifest
		.secrets
		.iter()
		.map(|secret| Secret {
			metadata: common.meta(&secret_name(&secret.name)),
			type_: Some("Opaque".into()),
			data: Some(
				secret
					.data
					.iter()
					.map(|(key, value)| {
						(key.clone(), ByteString(value.expose().as_bytes().to_vec()))
					})
					.collect(),
			),
			..Secret::default()
		})
		.collect()
}

/// One `ReadWriteOnce` claim per manifest volume, of the manifest's exact size.
pub(super) fn claims(
	common: &Common,
	manifest: &Manifest,
	options: &BuildOptions,
) -> Vec<PersistentVolumeClaim> {
	manifest
		.volumes
		.iter()
		.map(|volume| PersistentVolumeClaim {
			metadata: common.meta(&claim_name(&volume.name)),
			spec: Some(PersistentVolumeClaimSpec {
				access_modes: Some(vec!["ReadWriteOnce".into()]),
				storage_class_name: options.storage_class.clone(),
				resources: Some(VolumeResourceRequirements {
					requests: Some(BTreeMap::from([("storage".to_owned(), bytes(volume.size))])),
					limits: None,
				}),
				..PersistentVolumeClaimSpec::default()
			}),
			..PersistentVolumeClaim::default()
		})
		.collect()
}

/// The Deployment: `replicas.min` pods of the manifest's containers; a deal that scales to
/// zero starts with its one pod (the agent's gateway stops it when idle, see
/// [`IDLE_SECONDS_LABEL`](super::IDLE_SECONDS_LABEL)).
///
/// Rollouts `Recreate` the pods: the quota is the reservation, which usually leaves no CPU or
/// memory for a new pod beside an old one, and a new pod on another node could not attach the
/// `ReadWriteOnce` volumes anyway. The Kubernetes backend switches to a rolling update with no
/// downtime when the quota has room for it (see `kube/rollout.rs`). The pod template carries
/// the manifest hash, so a new manifest rolls the pods even when only a secret changed.
pub(super) fn deployment(
	common: &Common,
	manifest: &Manifest,
	images: &BTreeMap<[u8; 32], String>,
	options: &BuildOptions,
) -> Result<Deployment, BuildError> {
	let containers = manifest
		.containers
		.iter()
		.map(|c| container(c, images, options))
		.collect::<Result<Vec<_>, _>>()?;
	let volumes: Vec<Volume> = manifest
		.volumes
		.iter()
		.map(|v| Volume {
			name: v.name.clone(),
			persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
				claim_name: claim_name(&v.name),
				read_only: None,
			}),
			..Volume::default()
		})
		.collect();
	let user = options.run_as_user;
	let pod = PodSpec {
		containers,
		volumes: (!volumes.is_empty()).then_some(volumes),
		affinity: colocate(common, manifest),
		automount_service_account_token: Some(false),
		// Service environment variables would leak the namespace's services into every
		// container and can collide with the manifest's own variables.
		enable_service_links: Some(false),
		security_context: Some(PodSecurityContext { fs_group: Some(user), ..restricted_pod(user) }),
		..PodSpec::default()
	};
	Ok(Deployment {
		metadata: common.meta(DEPLOYMENT_NAME),
		spec: Some(DeploymentSpec {
			replicas: Some(i32::try_from(start_replicas(manifest)).unwrap_or(i32::MAX)),
			revision_history_limit: Some(2),
			selector: LabelSelector {
				match_labels: Some(common.selector.clone()),
				..LabelSelector::default()
			},
			strategy: Some(DeploymentStrategy {
				type_: Some("Recreate".into()),
				rolling_update: None,
			}),
			template: PodTemplateSpec {
				metadata: Some(ObjectMeta {
					labels: Some(template_labels(common, manifest)),
					annotations: Some(common.annotations.clone()),
					..ObjectMeta::default()
				}),
				spec: Some(pod),
			},
			..DeploymentSpec::default()
		}),
		..Deployment::default()
	})
}

/// Pods the Deployment starts with: `replicas.min`, or `replicas.max` for a deal that scales
/// to zero (it runs until idle).
pub(super) fn start_replicas(manifest: &Manifest) -> u32 {
	if manifest.replicas.scales_to_zero() {
		manifest.replicas.max
	} else {
		manifest.replicas.min
	}
}

/// The pods' labels: the deal's, and its idle time if it scales to zero.
fn template_labels(common: &Common, manifest: &Manifest) -> BTreeMap<String, String> {
	let mut labels = common.labels.clone();
	if let Some(idle) = manifest.replicas.idle_seconds {
		labels.insert(super::IDLE_SECONDS_LABEL.to_owned(), idle.to_string());
	}
	labels
}

/// Replicas sharing `ReadWriteOnce` volumes must run on one node: a pod affinity to the deal's
/// own pods by node. (The first pod matches its own selector, so it can start anywhere.)
fn colocate(common: &Common, manifest: &Manifest) -> Option<Affinity> {
	if manifest.volumes.is_empty() || manifest.replicas.max < 2 {
		return None;
	}
	Some(Affinity {
		pod_affinity: Some(PodAffinity {
			required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
				label_selector: Some(LabelSelector {
					match_labels: Some(common.selector.clone()),
					..LabelSelector::default()
				}),
				topology_key: "kubernetes.io/hostname".into(),
				..PodAffinityTerm::default()
			}]),
			..PodAffinity::default()
		}),
		..Affinity::default()
	})
}

/// The reference `c` runs by: its own, or the one its delivered image was staged under.
fn image(c: &ManifestContainer, images: &BTreeMap<[u8; 32], String>) -> Result<String, BuildError> {
	match &c.image {
		Image::Reference(reference) => Ok(reference.clone()),
		Image::Delivered(delivered) => images.get(&delivered.digest).cloned().ok_or_else(|| {
			BuildError::ImageNotStaged { container: c.name.clone(), image: c.image.to_string() }
		}),
		Image::Archive(_) => Err(BuildError::UnresolvedImage(c.name.clone())),
	}
}

/// One container: requests equal to limits, exactly the manifest's quantities, and
/// [`BuildOptions::ephemeral_storage`] of node-local disk, so that a container filling it is
/// evicted instead of the node's disk filling up and other tenants' pods being evicted.
fn container(
	c: &ManifestContainer,
	images: &BTreeMap<[u8; 32], String>,
	options: &BuildOptions,
) -> Result<Container, BuildError> {
	let mut resources = BTreeMap::from([
		("cpu".to_owned(), quantity(c.resources.cpu.to_string())),
		("memory".to_owned(), bytes(c.resources.memory)),
		("ephemeral-storage".to_owned(), bytes(options.ephemeral_storage)),
	]);
	if c.resources.gpus > 0 {
		let gpu = options
			.gpu_resource
			.as_ref()
			.ok_or_else(|| BuildError::NoGpuResource { container: c.name.clone() })?;
		resources.insert(gpu.clone(), quantity(c.resources.gpus.to_string()));
	}
	let env: Vec<EnvVar> = c.env.iter().map(|(name, value)| env_var(name, value)).collect();
	let ports: Vec<ContainerPort> = c
		.ports
		.iter()
		.map(|p| ContainerPort {
			container_port: i32::from(p.port),
			protocol: Some(
				match p.protocol {
					Protocol::Tcp => "TCP",
					Protocol::Udp => "UDP",
				}
				.into(),
			),
			..ContainerPort::default()
		})
		.collect();
	let mounts: Vec<VolumeMount> = c
		.mounts
		.iter()
		.map(|m| VolumeMount {
			name: m.volume.clone(),
			mount_path: m.path.clone(),
			read_only: m.read_only.then_some(true),
			..VolumeMount::default()
		})
		.collect();
	let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
	Ok(Container {
		name: c.name.clone(),
		image: Some(image(c, images)?),
		command: some(&c.command),
		args: some(&c.args),
		env: (!env.is_empty()).then_some(env),
		ports: (!ports.is_empty()).then_some(ports),
		volume_mounts: (!mounts.is_empty()).then_some(mounts),
		resources: Some(ResourceRequirements {
			requests: Some(resources.clone()),
			limits: Some(resources),
			..ResourceRequirements::default()
		}),
		security_context: Some(restricted_container()),
		// A crashing container's last log lines become its termination message, which the
		// status of a failed deal reports.
		termination_message_policy: Some("FallbackToLogsOnError".into()),
		..Container::default()
	})
}

/// What Pod Security `restricted` asks of a pod running as `user` (and its group).
pub(super) fn restricted_pod(user: i64) -> PodSecurityContext {
	PodSecurityContext {
		run_as_non_root: Some(true),
		run_as_user: Some(user),
		run_as_group: Some(user),
		seccomp_profile: Some(SeccompProfile {
			type_: "RuntimeDefault".into(),
			localhost_profile: None,
		}),
		..PodSecurityContext::default()
	}
}

/// What Pod Security `restricted` asks of a container: no privilege escalation, no
/// capabilities.
pub(super) fn restricted_container() -> SecurityContext {
	SecurityContext {
		allow_privilege_escalation: Some(false),
		capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: None }),
		..SecurityContext::default()
	}
}

fn env_var(name: &str, value: &EnvValue) -> EnvVar {
	match value {
		EnvValue::Value(value) => {
			EnvVar { name: name.into(), value: Some(value.clone()), value_from: None }
		}
		EnvValue::Secret { secret, key } => EnvVar {
			name: name.into(),
			value: None,
			value_from: Some(EnvVarSource {
				secret_key_ref: Some(SecretKeySelector {
					name: secret_name(secret),
					key: key.clone(),
					optional: None,
				}),
				..EnvVarSource::default()
			}),
		},
	}
}
