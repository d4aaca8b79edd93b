//! Netlink attributes (`struct nlattr`, `include/uapi/linux/netlink.h`): a writer that appends to
//! a caller's `Vec<u8>` and a checked iterator over a byte slice.
//!
//! ```text
//!  0               2               4
//! +---------------+---------------+-----------------------+-----------+
//! | nla_len (u16) | nla_type (u16)| value (nla_len - 4)   | pad to 4  |
//! +---------------+---------------+-----------------------+-----------+
//! ```
//! `nla_type` carries two flag bits: `NLA_F_NESTED` (0x8000) and `NLA_F_NET_BYTEORDER` (0x4000).
//! Every read checks its length first; nothing here can panic on any input.

use serde::Serialize;

use crate::error::DecodeError;

/// `NLA_HDRLEN`: the size of `struct nlattr`.
pub const NLA_HDRLEN: usize = 4;
/// `NLA_F_NESTED`.
pub const NLA_F_NESTED: u16 = 0x8000;
/// `NLA_F_NET_BYTEORDER`.
pub const NLA_F_NET_BYTEORDER: u16 = 0x4000;
/// `NLA_TYPE_MASK`: the type without the flag bits.
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

/// Rounds up to the netlink alignment of 4 bytes (`NLA_ALIGN`), saturating.
pub fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

fn pad(buf: &mut Vec<u8>) {
    let target = align4(buf.len());
    buf.resize(target, 0);
}

/// Appends an attribute with a raw value (and its padding).
pub fn put_bytes(buf: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let len = (NLA_HDRLEN + value.len()) as u16;
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(value);
    pad(buf);
}

/// Appends a `u8` attribute.
pub fn put_u8(buf: &mut Vec<u8>, ty: u16, v: u8) {
    put_bytes(buf, ty, &[v]);
}

/// Appends a `u16` attribute in host byte order.
pub fn put_u16(buf: &mut Vec<u8>, ty: u16, v: u16) {
    put_bytes(buf, ty, &v.to_ne_bytes());
}

/// Appends a `__be16` attribute (network byte order: ports).
pub fn put_be16(buf: &mut Vec<u8>, ty: u16, v: u16) {
    put_bytes(buf, ty, &v.to_be_bytes());
}

/// Appends a `u32` attribute in host byte order.
pub fn put_u32(buf: &mut Vec<u8>, ty: u16, v: u32) {
    put_bytes(buf, ty, &v.to_ne_bytes());
}

/// Appends a NUL-terminated string attribute (`NLA_NUL_STRING`).
pub fn put_str(buf: &mut Vec<u8>, ty: u16, s: &str) {
    let len = (NLA_HDRLEN + s.len() + 1) as u16;
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
    pad(buf);
}

/// Starts a nested attribute flagged `NLA_F_NESTED` (as ipvsadm's libnl sends them); returns
/// its offset for [`nest_end`].
pub fn nest_start(buf: &mut Vec<u8>, ty: u16) -> usize {
    nest_start_noflag(buf, ty | NLA_F_NESTED)
}

/// Starts a nested attribute without `NLA_F_NESTED`, as the kernel writes IPVS replies
/// (`nla_nest_start_noflag` in `ip_vs_ctl.c`).
pub fn nest_start_noflag(buf: &mut Vec<u8>, ty: u16) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&0u16.to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    at
}

/// Ends a nested attribute started at `at`, writing its length.
pub fn nest_end(buf: &mut [u8], at: usize) {
    let len = buf.len().saturating_sub(at) as u16;
    if let Some(slot) = buf.get_mut(at..at + 2) {
        slot.copy_from_slice(&len.to_ne_bytes());
    }
}

/// One attribute read from a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// The type without flag bits.
    pub ty: u16,
    /// The raw type field (with `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER`).
    pub raw_ty: u16,
    /// The value (without padding).
    pub value: &'a [u8],
}

/// An attribute this crate does not know, kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawAttr {
    /// The raw type field, flag bits included.
    pub ty: u16,
    /// The payload after the 4-byte `nlattr` header, padding excluded (`nla_len` - 4 bytes).
    pub value: Vec<u8>,
}

impl<'a> Attr<'a> {
    /// Keeps this attribute raw.
    pub fn to_raw(&self) -> RawAttr {
        RawAttr {
            ty: self.raw_ty,
            value: self.value.to_vec(),
        }
    }

    fn fixed<const N: usize>(&self, context: &'static str) -> Result<[u8; N], DecodeError> {
        // The kernel's `nla_get_*` read exactly N bytes; a longer value is tolerated as netlink
        // does, a shorter one is an error.
        self.value
            .get(..N)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or(DecodeError::Truncated {
                context,
                need: N,
                have: self.value.len(),
            })
    }

    /// The value as `u8`.
    pub fn u8(&self, context: &'static str) -> Result<u8, DecodeError> {
        Ok(self.fixed::<1>(context)?[0])
    }

    /// The value as a host-order `u16`.
    pub fn u16(&self, context: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_ne_bytes(self.fixed(context)?))
    }

    /// The value as a network-order `u16` (ports).
    pub fn be16(&self, context: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.fixed(context)?))
    }

    /// The value as a host-order `u32`.
    pub fn u32(&self, context: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_ne_bytes(self.fixed(context)?))
    }

    /// The value as a host-order `u64`.
    pub fn u64(&self, context: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_ne_bytes(self.fixed(context)?))
    }

    /// The first `N` bytes of the value.
    pub fn array<const N: usize>(&self, context: &'static str) -> Result<[u8; N], DecodeError> {
        self.fixed(context)
    }

    /// The value as a string, up to the first NUL.
    pub fn str(&self, context: &'static str) -> Result<String, DecodeError> {
        self.str_ref(context).map(str::to_string)
    }

    /// The value as a borrowed string, up to its first NUL (no allocation: decoding a dump reads
    /// one scheduler name per service).
    pub fn str_ref(&self, context: &'static str) -> Result<&'a str, DecodeError> {
        let end = self
            .value
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.value.len());
        let bytes = self.value.get(..end).unwrap_or_default();
        std::str::from_utf8(bytes).map_err(|_| DecodeError::Utf8 { context })
    }

    /// An iterator over the attributes nested in this one.
    pub fn nested(&self) -> AttrIter<'a> {
        AttrIter::new(self.value)
    }
}

/// A checked iterator over the attributes in a buffer. Yields `Err` once (then stops) on a
/// malformed header or length.
#[derive(Debug, Clone)]
pub struct AttrIter<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> AttrIter<'a> {
    /// Iterates the attributes in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        AttrIter { buf, failed: false }
    }
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = Result<Attr<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        let hdr = match self.buf.get(..NLA_HDRLEN) {
            Some(h) => h,
            None => {
                self.failed = true;
                return Some(Err(DecodeError::Truncated {
                    context: "attribute header",
                    need: NLA_HDRLEN,
                    have: self.buf.len(),
                }));
            }
        };
        let len = u16::from_ne_bytes([hdr[0], hdr[1]]) as usize;
        let raw_ty = u16::from_ne_bytes([hdr[2], hdr[3]]);
        let value = match self.buf.get(NLA_HDRLEN..len) {
            Some(v) if len >= NLA_HDRLEN => v,
            _ => {
                self.failed = true;
                return Some(Err(DecodeError::BadLength {
                    context: "attribute length",
                    len,
                }));
            }
        };
        let next = align4(len).min(self.buf.len());
        self.buf = self.buf.get(next..).unwrap_or_default();
        Some(Ok(Attr {
            ty: raw_ty & NLA_TYPE_MASK,
            raw_ty,
            value,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_pads_and_iterator_reads_back() {
        let mut buf = Vec::new();
        put_u8(&mut buf, 1, 7);
        put_be16(&mut buf, 2, 8080);
        put_str(&mut buf, 3, "wlc");
        let at = nest_start(&mut buf, 4);
        put_u32(&mut buf, 5, 0x1234);
        nest_end(&mut buf, at);
        assert_eq!(buf.len() % 4, 0);
        let attrs: Vec<_> = AttrIter::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(attrs.len(), 4);
        assert_eq!(attrs[0].u8("a").unwrap(), 7);
        assert_eq!(attrs[1].value, &[0x1f, 0x90]);
        assert_eq!(attrs[1].be16("p").unwrap(), 8080);
        assert_eq!(attrs[2].str("s").unwrap(), "wlc");
        let inner: Vec<_> = attrs[3].nested().collect::<Result<_, _>>().unwrap();
        assert_eq!(inner[0].u32("x").unwrap(), 0x1234);
    }

    #[test]
    fn every_truncation_is_an_error_or_a_shorter_list() {
        let mut buf = Vec::new();
        put_u32(&mut buf, 1, 1);
        put_u32(&mut buf, 2, 2);
        for cut in 1..buf.len() {
            let r: Result<Vec<_>, _> = AttrIter::new(&buf[..cut]).collect();
            if cut != 8 {
                assert!(r.is_err(), "cut {cut}");
            }
        }
    }

    #[test]
    fn short_values_are_errors() {
        let a = Attr {
            ty: 1,
            raw_ty: 1,
            value: &[1, 2],
        };
        assert!(a.u32("x").is_err());
        assert!(a.u64("x").is_err());
        assert_eq!(a.u16("x").unwrap(), u16::from_ne_bytes([1, 2]));
    }
}
