//! VIP failover between directors: VRRPv3 (RFC 9568, formerly RFC 5798) and VRRPv2 (RFC 3768).
#![forbid(unsafe_code)]
