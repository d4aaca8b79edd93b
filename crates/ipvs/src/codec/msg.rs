//! Netlink message framing: `struct nlmsghdr` (`include/uapi/linux/netlink.h`) followed by
//! `struct genlmsghdr` (`include/uapi/linux/genetlink.h`), many messages per buffer.
//!
//! ```text
//! +----------+----------+-----------+---------+---------+ +-----+---------+----------+-------+
//! | len u32  | type u16 | flags u16 | seq u32 | pid u32 | | cmd | version | reserved | attrs |
//! +----------+----------+-----------+---------+---------+ +-----+---------+----------+-------+
//!            nlmsghdr (16 bytes)                             genlmsghdr (4 bytes)
//! ```

use crate::error::DecodeError;

use super::attr::align4;

/// `NLMSG_HDRLEN`.
pub const NLMSG_HDRLEN: usize = 16;
/// `GENL_HDRLEN`.
pub const GENL_HDRLEN: usize = 4;
/// `NLMSG_NOOP`.
pub const NLMSG_NOOP: u16 = 1;
/// `NLMSG_ERROR`: an ack (error 0) or an error.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`.
pub const NLMSG_OVERRUN: u16 = 4;
/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_MULTI`: part of a multipart reply.
pub const NLM_F_MULTI: u16 = 0x2;
/// `NLM_F_ACK`: ask for an ack.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLM_F_DUMP_INTR`: never set by IPVS (its dumps resume by position).
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// `GENL_ID_CTRL`: the generic-netlink controller family.
pub const GENL_ID_CTRL: u16 = 0x10;

/// Starts a request: writes the netlink and generic-netlink headers (length patched by
/// [`finish`]) and returns the message's offset.
pub fn begin(buf: &mut Vec<u8>, family: u16, flags: u16, seq: u32, cmd: u8, version: u8) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&family.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&[cmd, version, 0, 0]);
    at
}

/// Finishes the message started at `at`: writes its length and pads the buffer to 4 bytes.
pub fn finish(buf: &mut Vec<u8>, at: usize) {
    let len = buf.len().saturating_sub(at) as u32;
    if let Some(slot) = buf.get_mut(at..at + 4) {
        slot.copy_from_slice(&len.to_ne_bytes());
    }
    let target = align4(buf.len());
    buf.resize(target, 0);
}

/// One netlink message read from a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// `nlmsg_type`: a family id, or `NLMSG_ERROR` / `NLMSG_DONE` / ...
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`.
    pub pid: u32,
    /// Everything after the netlink header.
    pub payload: &'a [u8],
}

/// A generic-netlink payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Genl<'a> {
    /// `genlmsghdr.cmd`: the `IPVS_CMD_*` the kernel answers with (or was sent).
    pub cmd: u8,
    /// `genlmsghdr.version`: the IPVS generic-netlink version (`IPVS_GENL_VERSION`, 1).
    pub version: u8,
    /// The attribute bytes after the 4-byte generic-netlink header (walk with `AttrIter`).
    pub attrs: &'a [u8],
}

/// The body of an `NLMSG_ERROR` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckBody {
    /// 0 for an ack, else a negative errno.
    pub error: i32,
    /// The sequence number of the request it answers (from the echoed header).
    pub req_seq: Option<u32>,
}

impl<'a> Message<'a> {
    /// The generic-netlink header and attributes.
    pub fn genl(&self) -> Result<Genl<'a>, DecodeError> {
        match self.payload {
            [cmd, version, _, _, attrs @ ..] => Ok(Genl {
                cmd: *cmd,
                version: *version,
                attrs,
            }),
            _ => Err(DecodeError::Truncated {
                context: "genlmsghdr",
                need: GENL_HDRLEN,
                have: self.payload.len(),
            }),
        }
    }

    /// The error code and echoed request of an `NLMSG_ERROR` (or the status of `NLMSG_DONE`).
    pub fn ack(&self) -> Result<AckBody, DecodeError> {
        let code = self
            .payload
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .ok_or(DecodeError::Truncated {
                context: "nlmsgerr",
                need: 4,
                have: self.payload.len(),
            })?;
        let req_seq = self
            .payload
            .get(12..16)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_ne_bytes);
        Ok(AckBody {
            error: i32::from_ne_bytes(code),
            req_seq,
        })
    }
}

/// A checked iterator over the netlink messages in a buffer; yields one `Err` then stops on a
/// malformed header.
#[derive(Debug, Clone)]
pub struct MessageIter<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> MessageIter<'a> {
    /// Iterates the messages in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        MessageIter { buf, failed: false }
    }
}

impl<'a> Iterator for MessageIter<'a> {
    type Item = Result<Message<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        let Some(hdr) = self.buf.get(..NLMSG_HDRLEN) else {
            self.failed = true;
            return Some(Err(DecodeError::Truncated {
                context: "nlmsghdr",
                need: NLMSG_HDRLEN,
                have: self.buf.len(),
            }));
        };
        let word = |i: usize| {
            hdr.get(i..i + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_ne_bytes)
                .unwrap_or(0)
        };
        let half = |i: usize| {
            hdr.get(i..i + 2)
                .and_then(|b| <[u8; 2]>::try_from(b).ok())
                .map(u16::from_ne_bytes)
                .unwrap_or(0)
        };
        let len = word(0) as usize;
        let payload = match self.buf.get(NLMSG_HDRLEN..len) {
            Some(p) if len >= NLMSG_HDRLEN => p,
            _ => {
                self.failed = true;
                return Some(Err(DecodeError::BadLength {
                    context: "nlmsg_len",
                    len,
                }));
            }
        };
        let msg = Message {
            ty: half(4),
            flags: half(6),
            seq: word(8),
            pid: word(12),
            payload,
        };
        let next = align4(len).min(self.buf.len());
        self.buf = self.buf.get(next..).unwrap_or_default();
        Some(Ok(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::attr::put_u32;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        let at = begin(&mut buf, 0x25, NLM_F_REQUEST | NLM_F_ACK, 7, 1, 1);
        put_u32(&mut buf, 4, 9);
        finish(&mut buf, at);
        let at = begin(&mut buf, 0x25, NLM_F_REQUEST, 8, 17, 1);
        finish(&mut buf, at);
        let msgs: Vec<_> = MessageIter::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].seq, 7);
        assert_eq!(msgs[0].flags, NLM_F_REQUEST | NLM_F_ACK);
        let g = msgs[0].genl().unwrap();
        assert_eq!((g.cmd, g.version, g.attrs.len()), (1, 1, 8));
        assert_eq!(msgs[1].genl().unwrap().cmd, 17);
        for cut in 1..buf.len() {
            let r: Result<Vec<_>, _> = MessageIter::new(&buf[..cut]).collect();
            if cut != 28 {
                assert!(r.is_err(), "cut {cut}");
            }
        }
    }

    #[test]
    fn ack_bodies() {
        // nlmsgerr: error -17 then the echoed request header (seq 42).
        let mut p = Vec::new();
        p.extend_from_slice(&(-17i32).to_ne_bytes());
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&42u32.to_ne_bytes());
        p.extend_from_slice(&[0; 4]);
        let m = Message {
            ty: NLMSG_ERROR,
            flags: 0,
            seq: 42,
            pid: 0,
            payload: &p,
        };
        assert_eq!(
            m.ack().unwrap(),
            AckBody {
                error: -17,
                req_seq: Some(42)
            }
        );
        let short = Message {
            payload: &p[..3],
            ..m
        };
        assert!(short.ack().is_err());
    }
}
