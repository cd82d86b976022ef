//! Syntax of the names a manifest holds. Each check returns why a name is refused, for a person.

use crate::limits::{MAX_ENV_NAME_LEN, MAX_IMAGE_LEN, MAX_PATH_LEN, MAX_SECRET_KEY_LEN};

/// An RFC 1123 label as Kubernetes uses for names: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, 1 to 63.
pub(crate) fn is_dns_label(s: &str) -> bool {
	let b = s.as_bytes();
	let ok_end = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
	(1..=63).contains(&b.len())
		&& b.first().is_some_and(ok_end)
		&& b.last().is_some_and(ok_end)
		&& b.iter().all(|c| ok_end(c) || *c == b'-')
}

/// The message for a value that is not a DNS label; `what` names it (`name`, `host`).
pub(crate) fn dns_label_error(value: &str, what: &str) -> String {
	format!(
		"{value:?} is not a valid {what}: use 1 to 63 lowercase letters, digits or '-', starting \
		 and ending with a letter or digit"
	)
}

/// A C identifier, as shells accept for variable names: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn check_env_name(name: &str) -> Result<(), String> {
	let mut chars = name.chars();
	let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
	if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
		return Err(format!(
			"{name:?} is not a valid environment variable name (letters, digits and '_', not \
			 starting with a digit)"
		));
	}
	if name.len() > MAX_ENV_NAME_LEN {
		return Err(format!("environment variable name longer than {MAX_ENV_NAME_LEN} bytes"));
	}
	Ok(())
}

/// A key of a secret's data, as Kubernetes accepts: `[-._a-zA-Z0-9]+`, not `.` or `..`.
pub(crate) fn check_secret_key(key: &str) -> Result<(), String> {
	let chars_ok = key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
	if key.is_empty() || !chars_ok || key == "." || key == ".." {
		return Err(format!(
			"{key:?} is not a valid secret key (letters, digits, '-', '.' and '_')"
		));
	}
	if key.len() > MAX_SECRET_KEY_LEN {
		return Err(format!("secret key longer than {MAX_SECRET_KEY_LEN} bytes"));
	}
	Ok(())
}

/// An absolute path in a container, in one spelling only (no `.`, `..`, empty components or
/// trailing `/`), so that two mounts cannot name the same place differently.
pub(crate) fn check_mount_path(path: &str) -> Result<(), String> {
	let reason = if !path.starts_with('/') {
		"must be absolute (start with '/')"
	} else if path == "/" {
		"must not be the container's root"
	} else if path.len() > MAX_PATH_LEN {
		"is too long (at most 1024 bytes)"
	} else if path.chars().any(|c| c.is_control()) {
		"must not contain control characters"
	} else if path.contains([':', ',']) {
		// Both separate options in podman's `-v` and `--mount` arguments.
		"must not contain ':' or ','"
	} else if path[1..].split('/').any(|c| c.is_empty() || c == "." || c == "..") {
		"must not contain empty, '.' or '..' components or end with '/'"
	} else {
		return Ok(());
	};
	Err(format!("mount path {path:?} {reason}"))
}

/// A container image reference as Docker and podman read it:
/// `[domain[:port]/]path[:tag][@algorithm:digest]`, the path in lower case.
pub(crate) fn check_image(image: &str) -> Result<(), String> {
	let reason = image_problem(image);
	match reason {
		None => Ok(()),
		Some(reason) => Err(format!(
			"{image:?} is not a valid image reference: {reason} (examples: \
			 localhost/app:latest, docker.io/library/nginx:1.27)"
		)),
	}
}

/// Repository prefix under which providers keep the images publishers deliver
/// (`localhost/podchain-deal-7/app`): a reference may not name it, so no deal can run another
/// deal's delivered image.
pub const DELIVERED_PREFIX: &str = "podchain-deal-";

/// Problems of a registry reference that is well formed but unsafe on a shared container
/// store: it names the delivered images' repositories, or could be read as an image id (a
/// container store looks up all-hex names and `sha256:<id>` by id too).
pub(crate) fn check_reference_scope(image: &str) -> Result<(), String> {
	let name = image.split(['@']).next().unwrap_or(image);
	let local_path = name.strip_prefix("localhost/").or_else(|| {
		let first = name.split('/').next().unwrap_or(name);
		(!first.contains(['.', ':'])).then_some(name)
	});
	if local_path.is_some_and(|path| path.starts_with(DELIVERED_PREFIX)) {
		return Err(format!(
			"{image:?} names a repository the provider reserves for delivered images \
			 ({DELIVERED_PREFIX}*); to run your own image, name its archive or digest"
		));
	}
	let id_like = image.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
		|| image.starts_with("sha256:");
	if id_like {
		return Err(format!(
			"{image:?} could be read as an image id on the provider; add a tag \
			 ({image}:latest) or a registry (docker.io/library/{image})"
		));
	}
	Ok(())
}

/// A delivered image's name: lowercase path components separated by '/', at most 128 bytes,
/// no registry, tag or digest.
pub(crate) fn check_repository_name(name: &str) -> Result<(), String> {
	let ok = !name.is_empty() && name.len() <= 128 && name.split('/').all(is_path_component);
	if ok {
		Ok(())
	} else {
		Err(format!(
			"{name:?} is not a repository name: lowercase letters and digits separated by '.', \
			 '_', '__' or '-', components separated by '/', at most 128 bytes, no tag or digest"
		))
	}
}

fn image_problem(image: &str) -> Option<&'static str> {
	if image.is_empty() {
		return Some("it is empty");
	}
	if image.len() > MAX_IMAGE_LEN {
		return Some("it is longer than 512 bytes");
	}
	if !image.bytes().all(|b| b.is_ascii_graphic()) {
		return Some("it may only contain printable ASCII without spaces");
	}
	let (name_tag, digest) = match image.split_once('@') {
		Some((name_tag, digest)) => (name_tag, Some(digest)),
		None => (image, None),
	};
	if let Some(digest) = digest {
		if !is_digest(digest) {
			return Some("the digest after '@' must look like sha256:<64 lowercase hex digits>");
		}
	}
	// A ':' after the last '/' starts the tag; before it, it is a registry's port.
	let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
	let (name, tag) = match name_tag[last_slash..].rfind(':') {
		Some(i) => (&name_tag[..last_slash + i], Some(&name_tag[last_slash + i + 1..])),
		None => (name_tag, None),
	};
	if let Some(tag) = tag {
		if !is_tag(tag) {
			return Some("the tag must be 1 to 128 letters, digits, '_', '.' or '-'");
		}
	}
	if name.len() > 255 {
		return Some("the name is longer than 255 bytes");
	}
	let mut components: Vec<&str> = name.split('/').collect();
	if components.len() > 1 {
		let first = components[0];
		if first.contains(['.', ':']) || first == "localhost" {
			if !is_domain(first) {
				return Some("the registry must be a host name with an optional :port");
			}
			components.remove(0);
		}
	}
	if components.iter().any(|c| c.bytes().any(|b| b.is_ascii_uppercase())) {
		return Some("the repository path must be lowercase");
	}
	if !components.iter().all(|c| is_path_component(c)) {
		return Some(
			"path components are lowercase letters and digits, separated by '.', '_', '__' or '-'",
		);
	}
	None
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
	let b = c.as_bytes();
	let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
	if !b.first().is_some_and(alnum) || !b.last().is_some_and(alnum) {
		return false;
	}
	let mut i = 0;
	while i < b.len() {
		if alnum(&b[i]) {
			i += 1;
			continue;
		}
		let start = i;
		while i < b.len() && !alnum(&b[i]) {
			i += 1;
		}
		let sep = &c[start..i];
		let dashes = sep.bytes().all(|x| x == b'-');
		if !(sep == "." || sep == "_" || sep == "__" || dashes) {
			return false;
		}
	}
	true
}

/// `host[:port]`: labels of letters, digits and inner '-', separated by '.'.
fn is_domain(d: &str) -> bool {
	let (host, port) = match d.split_once(':') {
		Some((host, port)) => (host, Some(port)),
		None => (d, None),
	};
	let port_ok =
		port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
	let label_ok = |l: &str| {
		let b = l.as_bytes();
		!b.is_empty()
			&& b.len() <= 63
			&& b[0].is_ascii_alphanumeric()
			&& b[b.len() - 1].is_ascii_alphanumeric()
			&& b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
	};
	port_ok && host.split('.').all(label_ok)
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn is_tag(t: &str) -> bool {
	let b = t.as_bytes();
	(1..=128).contains(&b.len())
		&& (b[0].is_ascii_alphanumeric() || b[0] == b'_')
		&& b.iter().all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

/// `algorithm:encoded`, with sha256 digests held to their exact form.
fn is_digest(d: &str) -> bool {
	let Some((algorithm, encoded)) = d.split_once(':') else { return false };
	let algorithm_ok = !algorithm.is_empty()
		&& algorithm.split(['+', '.', '_', '-']).all(|p| {
			!p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
		});
	let encoded_ok = encoded.len() >= 32
		&& encoded.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
	let sha256_ok = algorithm != "sha256"
		|| (encoded.len() == 64
			&& encoded.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
	algorithm_ok && encoded_ok && sha256_ok
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn dns_labels() {
		for ok in ["a", "web", "web-1", "0", &"a".repeat(63)] {
			assert!(is_dns_label(ok), "{ok}");
		}
		for bad in ["", "-a", "a-", "Web", "a_b", "a.b", "é", &"a".repeat(64)] {
			assert!(!is_dns_label(bad), "{bad}");
		}
	}

	#[test]
	fn env_names() {
		for ok in ["A", "_x", "PORT_8080", "a1"] {
			assert_eq!(check_env_name(ok), Ok(()), "{ok}");
		}
		for bad in ["", "1A", "A-B", "A B", "É"] {
			assert!(check_env_name(bad).is_err(), "{bad}");
		}
		assert!(check_env_name(&"A".repeat(129)).is_err());
	}

	#[test]
	fn secret_keys() {
		for ok in ["password", "tls.crt", "a-b_c", ".env"] {
			assert_eq!(check_secret_key(ok), Ok(()), "{ok}");
		}
		for bad in ["", ".", "..", "a/b", "a b"] {
			assert!(check_secret_key(bad).is_err(), "{bad}");
		}
	}

	#[test]
	fn mount_paths() {
		for ok in ["/data", "/var/lib/app", "/a b", "/.config"] {
			assert_eq!(check_mount_path(ok), Ok(()), "{ok}");
		}
		for bad in ["data", "/", "/a/", "//a", "/a/../b", "/a/./b", "/a:ro", "/a,b", "/a\nb"] {
			assert!(check_mount_path(bad).is_err(), "{bad}");
		}
	}

	#[test]
	fn images() {
		let digest = format!("sha256:{}", "a".repeat(64));
		for ok in [
			"busybox".to_string(),
			"localhost/podchain-demo:latest".into(),
			"docker.io/library/nginx:1.27".into(),
			"registry.example.com:5000/team/app_x__y.z---w:v1.0-rc_1".into(),
			"ghcr.io/Org-Name/app".to_lowercase(),
			format!("nginx@{digest}"),
			format!("nginx:1.27@{digest}"),
			"localhost:5000/app".into(),
			"MyRegistry.example.com/app".into(),
		] {
			assert_eq!(check_image(&ok), Ok(()), "{ok}");
		}
		for (bad, reason) in [
			("", "it is empty"),
			("nginx latest", "printable ASCII"),
			("Nginx", "must be lowercase"),
			("nginx:", "the tag"),
			("nginx:-x", "the tag"),
			("nginx@sha256:abc", "the digest"),
			("my_registry.com/app", "the registry"),
			("localhost:port/app", "the registry"),
			("a//b", "path components"),
			("a/-b", "path components"),
			("a/b_", "path components"),
			("a___b", "path components"),
			("a/b:c:d", "path components"),
		] {
			let err = check_image(bad).unwrap_err();
			assert!(err.contains(reason), "{bad}: {err}");
		}
		assert!(check_image(&"a".repeat(256)).unwrap_err().contains("longer than 255"));
	}
}
