//! Which gateway URLs probers refuse to fetch: hosts that name this machine or a private
//! network, however they are spelt.
//!
//! A host is parsed the way URL parsers and HTTP clients read it, so no spelling slips past:
//! bracketed IPv6 in any form (`[0::1]`, `[0:0:0:0:0:0:0:1]`, IPv4-mapped), IPv4 in dotted,
//! shortened (`127.1`), whole-number (`2130706433`), hex (`0x7f.1`) and octal (`0177.0.0.1`)
//! forms. A name whose last label is numeric is read as an IPv4 address and fetched only when
//! it is a public address spelt as a dotted quad: every other numeric spelling is refused. Names with anything but letters, digits, `-` and `.` are refused.

use core::net::{Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

/// Whether probers must not fetch `url`: its host is missing, unparseable, `localhost`, or an
/// address in a loopback, private, link-local, unique-local, shared, unspecified, multicast or
/// reserved range. (A public name that resolves to such an address is not caught here.)
pub fn is_local_url(url: &str) -> bool {
	let Some(host) = host_of(url) else { return true };
	is_local_host(&host)
}

/// The host part of `url`, lower case, without brackets or a trailing dot; `None` if there is
/// none.
fn host_of(url: &str) -> Option<alloc::string::String> {
	let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
	let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
	let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
	let host = if let Some(v6) = host_port.strip_prefix('[') {
		let (inside, after) = v6.split_once(']')?;
		if !(after.is_empty() || after.starts_with(':')) {
			return None;
		}
		alloc::format!("[{inside}]")
	} else {
		host_port.split(':').next().unwrap_or("").into()
	};
	let host = host.strip_suffix('.').unwrap_or(&host).to_ascii_lowercase();
	(!host.is_empty()).then_some(host)
}

/// Whether `host` (as [`host_of`] returns it) must not be fetched.
fn is_local_host(host: &str) -> bool {
	if let Some(inside) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
		// A zone id (`%eth0`) only ever names a local interface.
		return Ipv6Addr::from_str(inside).map_or(true, is_local_v6);
	}
	if !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
		return true;
	}
	if host == "localhost" || host.ends_with(".localhost") {
		return true;
	}
	let last = host.rsplit('.').next().unwrap_or(host);
	if is_numeric_part(last) {
		// URL parsers read such a host as an IPv4 address. Only the dotted-quad spelling of a
		// public address is fetched: shortened, whole-number, hex and octal spellings are
		// refused outright, as is anything that is not an address at all.
		return match parse_ipv4(host) {
			Some(ip) => alloc::string::ToString::to_string(&ip) != host || is_local_v4(ip),
			None => true,
		};
	}
	false
}

/// Whether a label reads as a number to URL parsers: decimal, `0x` hex, or empty hex.
fn is_numeric_part(part: &str) -> bool {
	let digits = part.strip_prefix("0x").unwrap_or(part);
	if part.starts_with("0x") {
		digits.bytes().all(|b| b.is_ascii_hexdigit())
	} else {
		!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
	}
}

/// An IPv4 address in any of the forms URL parsers accept: one to four parts, each decimal,
/// `0x` hex or `0`-prefixed octal, the last filling the remaining bytes.
pub(crate) fn parse_ipv4(host: &str) -> Option<Ipv4Addr> {
	let parts: alloc::vec::Vec<&str> = host.split('.').collect();
	if parts.is_empty() || parts.len() > 4 {
		return None;
	}
	let mut numbers = alloc::vec::Vec::with_capacity(parts.len());
	for part in &parts {
		numbers.push(parse_ipv4_part(part)?);
	}
	let (last, leading) = numbers.split_last()?;
	if leading.iter().any(|n| *n > 255) {
		return None;
	}
	let last_bits = 8 * (5 - parts.len() as u32);
	if last_bits < 32 && *last >= 1u64 << last_bits {
		return None;
	}
	if *last > u64::from(u32::MAX) {
		return None;
	}
	let mut value = *last;
	for (i, n) in leading.iter().enumerate() {
		value |= n << (8 * (3 - i as u32));
	}
	Some(Ipv4Addr::from(u32::try_from(value).ok()?))
}

fn parse_ipv4_part(part: &str) -> Option<u64> {
	if let Some(hex) = part.strip_prefix("0x") {
		if hex.is_empty() {
			return Some(0);
		}
		return u64::from_str_radix(hex, 16).ok().filter(|_| hex.len() <= 16);
	}
	if part.len() > 1 && part.starts_with('0') {
		return u64::from_str_radix(&part[1..], 8).ok().filter(|_| part.len() <= 23);
	}
	if part.is_empty() || part.len() > 20 {
		return None;
	}
	part.parse().ok()
}

/// IPv4 ranges that are not the public internet.
fn is_local_v4(ip: Ipv4Addr) -> bool {
	let [a, b, c, _] = ip.octets();
	ip.is_unspecified()
		|| ip.is_loopback()
		|| ip.is_private()
		|| ip.is_link_local()
		|| ip.is_broadcast()
		|| ip.is_multicast()
		|| ip.is_documentation()
		|| a == 0
		// Shared address space (carrier-grade NAT), 100.64.0.0/10.
		|| (a == 100 && (64..128).contains(&b))
		// IETF protocol assignments, 192.0.0.0/24.
		|| (a == 192 && b == 0 && c == 0)
		// Benchmarking, 198.18.0.0/15.
		|| (a == 198 && (b & 0xfe) == 18)
		// Reserved, 240.0.0.0/4.
		|| a >= 240
}

/// IPv6 ranges that are not the public internet, and IPv4 addresses embedded in IPv6 ones.
fn is_local_v6(ip: Ipv6Addr) -> bool {
	let s = ip.segments();
	if let Some(v4) = ip.to_ipv4_mapped() {
		return is_local_v4(v4);
	}
	// IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks) and NAT64
	// (64:ff9b::/96) addresses carry an IPv4 address in their last 32 bits.
	let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
	if s[..6] == [0; 6] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
		return ip.is_unspecified() || ip.is_loopback() || is_local_v4(embedded);
	}
	ip.is_multicast()
		// Unique local, fc00::/7.
		|| (s[0] & 0xfe00) == 0xfc00
		// Link-local, fe80::/10 (all of it: fe80:: to febf::), and the old site-local fec0::/10.
		|| (s[0] & 0xffc0) == 0xfe80
		|| (s[0] & 0xffc0) == 0xfec0
		// Documentation, 2001:db8::/32.
		|| (s[0] == 0x2001 && s[1] == 0x0db8)
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn local_hosts_are_refused_in_every_spelling() {
		for url in [
			"http://127.0.0.1:9615/metrics",
			"http://localhost:9944/health",
			"https://LOCALHOST./x",
			"http://a.localhost/",
			"http://10.1.2.3/",
			"http://172.20.0.1:80/",
			"http://192.168.1.1/",
			"http://169.254.169.254/latest/meta-data",
			"http://0.0.0.0:8080/",
			"http://100.64.0.1/",
			"http://user@127.0.0.1/",
			// Shortened and numeric IPv4.
			"http://127.1/",
			"http://127.0.1/",
			"http://2130706433/",
			"http://0x7f000001/",
			"http://0x7f.1/",
			"http://0177.0.0.1/",
			"http://017700000001/",
			"http://10.0x10203/",
			"http://0/",
			"http://127.0.0.1./",
			// Numeric last label that is not an address: refused, not resolved.
			"http://1.2.3.4.5/",
			"http://example.123/",
			"http://256.1.1.1/",
			"http://4294967296/",
			"http://99999999999999999999999/",
			// A public address in a numeric spelling: refused all the same.
			"http://134744072/",
			"http://8.8.2056/",
			// IPv6, bracketed, all spellings.
			"http://[::1]:8080/",
			"http://[0:0:0:0:0:0:0:1]:9944/",
			"http://[0::1]/",
			"http://[0000:0000::0001]/",
			"http://[::]/",
			"http://[fd00::1]/",
			"http://[fc00::1]/",
			"http://[fe80::1]/",
			"http://[febf::1]/",
			"http://[FEBF::1]/",
			"http://[fec0::1]/",
			"http://[ff02::1]/",
			"http://[::ffff:127.0.0.1]/",
			"http://[::ffff:7f00:1]/",
			"http://[::ffff:10.0.0.1]:80/",
			"http://[::127.0.0.1]/",
			"http://[64:ff9b::192.168.0.1]/",
			"http://[fe80::1%25eth0]/",
			// Unparseable hosts.
			"http://[::1/healthz",
			"http://[not-an-ip]/",
			"http:///x",
			"http://%31%32%37.0.0.1/",
			"http://exa_mple.com/",
		] {
			assert!(is_local_url(url), "{url} must be refused");
		}
	}

	#[test]
	fn public_hosts_are_fetched() {
		for url in [
			"https://provider.example/healthz",
			"http://8.8.8.8/",
			"http://172.32.0.1/",
			"http://100.128.0.1/",
			"http://[2a00:1450::1]:80/",
			"http://[::ffff:8.8.8.8]/",
			"http://127.example.com/",
			"http://1a.example/",
			"https://gw-1.provider.example:8443/",
		] {
			assert!(!is_local_url(url), "{url} is public");
		}
	}

	#[test]
	fn ipv4_forms_parse_like_url_parsers() {
		let ip = |s: &str| parse_ipv4(s).map(|ip| ip.octets());
		assert_eq!(ip("127.1"), Some([127, 0, 0, 1]));
		assert_eq!(ip("127.0.1"), Some([127, 0, 0, 1]));
		assert_eq!(ip("2130706433"), Some([127, 0, 0, 1]));
		assert_eq!(ip("0x7f.0.0.0x1"), Some([127, 0, 0, 1]));
		assert_eq!(ip("0177.0.0.01"), Some([127, 0, 0, 1]));
		assert_eq!(ip("1.2.3.4"), Some([1, 2, 3, 4]));
		assert_eq!(ip("1.2.3.4.5"), None);
		assert_eq!(ip("1.256"), Some([1, 0, 1, 0]));
		assert_eq!(ip("1.2.65536"), None);
		assert_eq!(ip("256.1"), None);
		assert_eq!(ip("08"), None, "8 is not an octal digit");
	}
}
