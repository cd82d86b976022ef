//! Checks of the text a provider registers: country codes, libp2p peer ids and multiaddrs,
//! gateway URLs, ingress domains and labels. Each returns `false` on bad input; the pallet turns that into a
//! named error.

use core::str::FromStr;

/// ISO 3166-1 alpha-2 codes officially assigned, sorted.
const COUNTRY_CODES: [[u8; 2]; 249] = [
	*b"AD", *b"AE", *b"AF", *b"AG", *b"AI", *b"AL", *b"AM", *b"AO", *b"AQ", *b"AR", *b"AS", *b"AT",
	*b"AU", *b"AW", *b"AX", *b"AZ", *b"BA", *b"BB", *b"BD", *b"BE", *b"BF", *b"BG", *b"BH", *b"BI",
	*b"BJ", *b"BL", *b"BM", *b"BN", *b"BO", *b"BQ", *b"BR", *b"BS", *b"BT", *b"BV", *b"BW", *b"BY",
	*b"BZ", *b"CA", *b"CC", *b"CD", *b"CF", *b"CG", *b"CH", *b"CI", *b"CK", *b"CL", *b"CM", *b"CN",
	*b"CO", *b"CR", *b"CU", *b"CV", *b"CW", *b"CX", *b"CY", *b"CZ", *b"DE", *b"DJ", *b"DK", *b"DM",
	*b"DO", *b"DZ", *b"EC", *b"EE", *b"EG", *b"EH", *b"ER", *b"ES", *b"ET", *b"FI", *b"FJ", *b"FK",
	*b"FM", *b"FO", *b"FR", *b"GA", *b"GB", *b"GD", *b"GE", *b"GF", *b"GG", *b"GH", *b"GI", *b"GL",
	*b"GM", *b"GN", *b"GP", *b"GQ", *b"GR", *b"GS", *b"GT", *b"GU", *b"GW", *b"GY", *b"HK", *b"HM",
	*b"HN", *b"HR", *b"HT", *b"HU", *b"ID", *b"IE", *b"IL", *b"IM", *b"IN", *b"IO", *b"IQ", *b"IR",
	*b"IS", *b"IT", *b"JE", *b"JM", *b"JO", *b"JP", *b"KE", *b"KG", *b"KH", *b"KI", *b"KM", *b"KN",
	*b"KP", *b"KR", *b"KW", *b"KY", *b"KZ", *b"LA", *b"LB", *b"LC", *b"LI", *b"LK", *b"LR", *b"LS",
	*b"LT", *b"LU", *b"LV", *b"LY", *b"MA", *b"MC", *b"MD", *b"ME", *b"MF", *b"MG", *b"MH", *b"MK",
	*b"ML", *b"MM", *b"MN", *b"MO", *b"MP", *b"MQ", *b"MR", *b"MS", *b"MT", *b"MU", *b"MV", *b"MW",
	*b"MX", *b"MY", *b"MZ", *b"NA", *b"NC", *b"NE", *b"NF", *b"NG", *b"NI", *b"NL", *b"NO", *b"NP",
	*b"NR", *b"NU", *b"NZ", *b"OM", *b"PA", *b"PE", *b"PF", *b"PG", *b"PH", *b"PK", *b"PL", *b"PM",
	*b"PN", *b"PR", *b"PS", *b"PT", *b"PW", *b"PY", *b"QA", *b"RE", *b"RO", *b"RS", *b"RU", *b"RW",
	*b"SA", *b"SB", *b"SC", *b"SD", *b"SE", *b"SG", *b"SH", *b"SI", *b"SJ", *b"SK", *b"SL", *b"SM",
	*b"SN", *b"SO", *b"SR", *b"SS", *b"ST", *b"SV", *b"SX", *b"SY", *b"SZ", *b"TC", *b"TD", *b"TF",
	*b"TG", *b"TH", *b"TJ", *b"TK", *b"TL", *b"TM", *b"TN", *b"TO", *b"TR", *b"TT", *b"TV", *b"TW",
	*b"TZ", *b"UA", *b"UG", *b"UM", *b"US", *b"UY", *b"UZ", *b"VA", *b"VC", *b"VE", *b"VG", *b"VI",
	*b"VN", *b"VU", *b"WF", *b"WS", *b"YE", *b"YT", *b"ZA", *b"ZM", *b"ZW",
];

/// Whether `code` is an assigned ISO 3166-1 alpha-2 country code (upper case).
pub fn is_country_code(code: &[u8; 2]) -> bool {
	COUNTRY_CODES.binary_search(code).is_ok()
}

const BASE58_ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Decodes base58btc text into at most `N` bytes; `None` on a bad character or overflow.
fn base58_decode<const N: usize>(text: &[u8]) -> Option<([u8; N], usize)> {
	// Big-endian number in `out[N - len..]`, grown digit by digit.
	let mut out = [0u8; N];
	let mut len = 0usize;
	for &ch in text {
		let mut carry = BASE58_ALPHABET.iter().position(|&a| a == ch)? as u32;
		for byte in out[N - len..].iter_mut().rev() {
			carry += (*byte as u32) * 58;
			*byte = (carry & 0xff) as u8;
			carry >>= 8;
		}
		while carry > 0 {
			if len == N {
				return None;
			}
			len += 1;
			out[N - len] = (carry & 0xff) as u8;
			carry >>= 8;
		}
	}
	// Each leading '1' stands for a leading zero byte.
	let zeros = text.iter().take_while(|&&c| c == b'1').count();
	let total = len.checked_add(zeros).filter(|&t| t <= N)?;
	let mut decoded = [0u8; N];
	decoded[zeros..total].copy_from_slice(&out[N - len..]);
	Some((decoded, total))
}

/// Whether `text` is a libp2p peer id in base58 form: either an inlined public key (identity
/// multihash of a protobuf-encoded ed25519 or secp256k1 key, "12D3KooW..." / "16Uiu2...") or the
/// sha2-256 hash of a larger key ("Qm...").
pub fn is_peer_id(text: &[u8]) -> bool {
	let Some((bytes, len)) = base58_decode::<64>(text) else { return false };
	match &bytes[..len] {
		// identity multihash: [0x00, length, PublicKey { Type = 1, Data = key }]
		[0x00, digest_len, 0x08, key_type, 0x12, key_len, key @ ..] => {
			*digest_len as usize == key.len() + 4
				&& *key_len as usize == key.len()
				&& matches!((*key_type, key.len()), (1, 32) | (2, 33))
		}
		[0x12, 0x20, digest @ ..] => digest.len() == 32,
		_ => false,
	}
}

/// Whether `text` is a dialable multiaddr in text form, read in order: a host (`/ip4/`,
/// `/ip6/`, `/dns/`, `/dns4/`, `/dns6/`), then a transport (`/tcp/<port>` with optional `/tls`
/// and `/ws` or `/wss`; or `/udp/<port>` with `/quic-v1`, `/quic` or `/webrtc-direct`), then
/// optionally `/p2p/<peer_id>` naming this provider. `/dnsaddr/<name>` resolves to full
/// addresses by itself and may only be followed by `/p2p/`.
pub fn is_multiaddr(text: &[u8], peer_id: &[u8]) -> bool {
	let Ok(text) = core::str::from_utf8(text) else { return false };
	let Some(rest) = text.strip_prefix('/') else { return false };
	let mut parts = rest.split('/').peekable();

	let host_ok = match (parts.next(), parts.next()) {
		(Some("ip4"), Some(addr)) => core::net::Ipv4Addr::from_str(addr).is_ok(),
		(Some("ip6"), Some(addr)) => core::net::Ipv6Addr::from_str(addr).is_ok(),
		(Some("dns" | "dns4" | "dns6"), Some(name)) => is_dns_name(name),
		(Some("dnsaddr"), Some(name)) => return is_dns_name(name) && is_p2p_tail(parts, peer_id),
		_ => false,
	};
	if !host_ok {
		return false;
	}
	let transport_ok = match (parts.next(), parts.next()) {
		(Some("tcp"), Some(port)) => {
			parts.next_if_eq(&"tls");
			let _ = parts.next_if(|p| *p == "ws" || *p == "wss");
			is_port(port)
		}
		(Some("udp"), Some(port)) => {
			is_port(port)
				&& parts.next().is_some_and(|p| matches!(p, "quic-v1" | "quic" | "webrtc-direct"))
		}
		_ => false,
	};
	transport_ok && is_p2p_tail(parts, peer_id)
}

/// Whether what is left of a multiaddr is nothing, or `/p2p/<peer_id>` of this provider.
fn is_p2p_tail<'a>(mut parts: impl Iterator<Item = &'a str>, peer_id: &[u8]) -> bool {
	match parts.next() {
		None => true,
		Some("p2p") => {
			parts.next().is_some_and(|p| p.as_bytes() == peer_id) && parts.next().is_none()
		}
		Some(_) => false,
	}
}

/// Whether `port` is a TCP/UDP port number from 1 to 65535, in plain digits.
fn is_port(port: &str) -> bool {
	!port.is_empty()
		&& port.len() <= 5
		&& port.bytes().all(|b| b.is_ascii_digit())
		&& u16::from_str(port).is_ok_and(|p| p > 0)
}

/// Whether `name` is a DNS host name: dot-separated labels of letters, digits and inner hyphens.
fn is_dns_name(name: &str) -> bool {
	!name.is_empty()
		&& name.len() <= 253
		&& name.split('.').all(|label| {
			!label.is_empty()
				&& label.len() <= 63
				&& !label.starts_with('-')
				&& !label.ends_with('-')
				&& label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
		})
}

/// Whether `url` can be a gateway URL: an absolute http(s) URL in printable ASCII with a
/// non-empty host (name, IPv4, or bracketed IPv6), an optional port, no user credentials, and
/// no query or fragment (probers append deals' health paths to it).
pub fn is_gateway_url(url: &[u8]) -> bool {
	!url.contains(&b'?') && !url.contains(&b'#') && is_http_url(url)
}

/// Whether `domain` can be an ingress domain: a lower-case DNS name of at most
/// [`MAX_DOMAIN_LEN`](crate::MAX_DOMAIN_LEN) bytes whose last label is not numeric (it is a
/// name, not an address).
pub fn is_ingress_domain(domain: &[u8]) -> bool {
	let Ok(domain) = core::str::from_utf8(domain) else { return false };
	domain.len() <= crate::MAX_DOMAIN_LEN as usize
		&& !domain.bytes().any(|b| b.is_ascii_uppercase())
		&& is_dns_name(domain)
		&& !domain.rsplit('.').next().is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `url` is an absolute http(s) URL in printable ASCII: a non-empty host (name, IPv4,
/// or bracketed IPv6), an optional port, no user credentials.
fn is_http_url(url: &[u8]) -> bool {
	if !url.iter().all(|b| b.is_ascii_graphic()) {
		return false;
	}
	let Ok(url) = core::str::from_utf8(url) else { return false };
	let Some(rest) = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")) else {
		return false;
	};
	let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
	if authority.contains('@') {
		return false;
	}
	let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
		let Some((addr, after)) = bracketed.split_once(']') else { return false };
		if core::net::Ipv6Addr::from_str(addr).is_err() {
			return false;
		}
		match after {
			"" => (addr, None),
			_ => match after.strip_prefix(':') {
				Some(port) => (addr, Some(port)),
				None => return false,
			},
		}
	} else {
		match authority.split_once(':') {
			Some((host, port)) => (host, Some(port)),
			None => (authority, None),
		}
	};
	let host_ok = authority.starts_with('[')
		|| core::net::Ipv4Addr::from_str(host).is_ok()
		|| is_dns_name(host);
	host_ok && port.is_none_or(is_port)
}

/// Whether `label` is a non-empty, human-readable label (UTF-8, no control characters).
pub fn is_label(label: &[u8]) -> bool {
	core::str::from_utf8(label)
		.is_ok_and(|s| !s.trim().is_empty() && !s.chars().any(char::is_control))
}

#[cfg(test)]
mod tests {
	use super::*;

	const ED25519_PEER: &[u8] = b"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";

	#[test]
	fn country_codes_are_sorted_and_checked() {
		assert!(COUNTRY_CODES.windows(2).all(|w| w[0] < w[1]));
		assert!(is_country_code(b"DE"));
		assert!(is_country_code(b"US"));
		assert!(!is_country_code(b"de"));
		assert!(!is_country_code(b"XX"));
		assert!(!is_country_code(b"UK"));
	}

	#[test]
	fn peer_ids() {
		assert!(is_peer_id(ED25519_PEER));
		assert!(is_peer_id(b"16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY"));
		assert!(is_peer_id(b"QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"));
		assert!(!is_peer_id(b"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5S"));
		assert!(!is_peer_id(b"11"), "an empty inlined key");
		assert!(!is_peer_id(b"not-a-peer-id"));
		assert!(!is_peer_id(b"0OIl"));
		assert!(!is_peer_id(b""));
	}

	#[test]
	fn multiaddrs() {
		let ok = |a: &[u8]| is_multiaddr(a, ED25519_PEER);
		assert!(ok(b"/ip4/203.0.113.7/tcp/4001"));
		assert!(ok(b"/ip6/::1/tcp/4001/ws"));
		assert!(ok(b"/ip4/203.0.113.7/tcp/443/tls/wss"));
		assert!(ok(b"/dns4/provider.example/udp/4001/quic-v1"));
		assert!(ok(b"/dnsaddr/provider.example"));
		let with_peer = [b"/ip4/127.0.0.1/tcp/1/p2p/".as_slice(), ED25519_PEER].concat();
		assert!(ok(&with_peer));
		assert!(!is_multiaddr(&with_peer, b"12D3KooWother"));
		assert!(!ok(&[with_peer.as_slice(), b"/ws"].concat()), "p2p must come last");
		assert!(!ok(b"ip4/1.2.3.4/tcp/1"));
		assert!(!ok(b"/ip4/1.2.3/tcp/1"));
		assert!(!ok(b"/ip4/1.2.3.4/tcp/70000"));
		assert!(!ok(b"/ip4/1.2.3.4/tcp/0"));
		assert!(!ok(b"/ip4/1.2.3.4/tcp/+80"));
		assert!(!ok(b"/ip4/1.2.3.4"));
		assert!(!ok(b"/tcp/1"));
		assert!(!ok(b"/tcp/1/ip4/1.2.3.4"), "out of order");
		assert!(!ok(b"/ip4/1.2.3.4/udp/1"), "bare UDP");
		assert!(!ok(b"/ip4/1.2.3.4/tcp/1/quic-v1"), "QUIC over TCP");
		assert!(!ok(b"/ip4/1.2.3.4/ip4/5.6.7.8/tcp/1"), "two hosts");
		assert!(!ok(b"/dns4/-bad-/tcp/1"));
		assert!(!ok(b"/dnsaddr/provider.example/tcp/1"));
		assert!(!ok(b"/carrier-pigeon/1"));
	}

	#[test]
	fn gateway_urls() {
		assert!(is_gateway_url(b"https://provider.example/gateway"));
		assert!(is_gateway_url(b"http://127.0.0.1:8080"));
		assert!(is_gateway_url(b"http://[::1]:8080/"));
		assert!(is_gateway_url(b"https://provider.example"));
		assert!(!is_gateway_url(b"ftp://provider.example/"));
		assert!(!is_gateway_url(b"https:///healthz"));
		assert!(!is_gateway_url(b"https://:8080/"));
		assert!(!is_gateway_url(b"https://@/"));
		assert!(!is_gateway_url(b"https://#x"));
		assert!(!is_gateway_url(b"https://provider.example/?a=b"));
		assert!(!is_gateway_url(b"https://provider.example/#top"));
		assert!(!is_gateway_url(b"https://user:pass@provider.example/"));
		assert!(!is_gateway_url(b"https://provider.example:99999/"));
		assert!(!is_gateway_url(b"https://provider example/"));
		assert!(!is_gateway_url(b"http://[::1/healthz"));
	}

	#[test]
	fn ingress_domains() {
		assert!(is_ingress_domain(b"apps.provider.example"));
		assert!(is_ingress_domain(b"localhost"));
		assert!(is_ingress_domain(b"p1.podchain.test"));
		assert!(!is_ingress_domain(b""));
		assert!(!is_ingress_domain(b"Apps.example"));
		assert!(!is_ingress_domain(b"apps..example"));
		assert!(!is_ingress_domain(b".example"));
		assert!(!is_ingress_domain(b"-apps.example"));
		assert!(!is_ingress_domain(b"apps_1.example"));
		assert!(!is_ingress_domain(b"127.0.0.1"));
		assert!(!is_ingress_domain(b"apps.example/"));
		assert!(!is_ingress_domain(b"*.example"));
		assert!(!is_ingress_domain(&[b'a'; 190]));
	}

	#[test]
	fn labels() {
		assert!(is_label("Zürich".as_bytes()));
		assert!(!is_label(b"  "));
		assert!(!is_label(b"a\nb"));
		assert!(!is_label(&[0xff, 0xfe]));
	}
}
