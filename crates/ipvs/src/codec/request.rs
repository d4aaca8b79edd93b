//! Whole requests: one [`Op`] or one query, appended to a caller's buffer so that many can share
//! one `sendmsg`. Each request asks for an ack (`NLM_F_ACK`); dumps end with `NLMSG_DONE`.

use crate::error::OpKind;
use crate::model::ServiceKey;
use crate::ops::Op;

use super::daemon::{encode_daemon, encode_daemon_state};
use super::dest::{encode_dest, encode_dest_key};
use super::info::encode_timeouts;
use super::msg::{begin, finish, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use super::service::{encode_key, encode_service};
use super::{cmd, IPVS_GENL_NAME, IPVS_GENL_VERSION};

/// The command an operation is sent as.
pub fn op_cmd(op: &Op) -> u8 {
    match op {
        Op::AddService(_) => cmd::NEW_SERVICE,
        Op::EditService(_) => cmd::SET_SERVICE,
        Op::DelService(_) => cmd::DEL_SERVICE,
        Op::AddDest(..) => cmd::NEW_DEST,
        Op::EditDest(..) => cmd::SET_DEST,
        Op::DelDest(..) => cmd::DEL_DEST,
        Op::Zero(_) => cmd::ZERO,
        Op::Flush => cmd::FLUSH,
        Op::SetTimeouts(_) => cmd::SET_CONFIG,
        Op::StartDaemon(_) => cmd::NEW_DAEMON,
        Op::StopDaemon(_) => cmd::DEL_DAEMON,
    }
}

/// The kind of object an operation acts on (it picks the meaning of an errno).
pub fn op_kind(op: &Op) -> OpKind {
    match op {
        Op::AddService(_) | Op::EditService(_) => OpKind::Service,
        Op::DelService(_) | Op::Zero(_) | Op::Flush => OpKind::ServiceKey,
        Op::AddDest(..) | Op::EditDest(..) | Op::DelDest(..) => OpKind::Dest,
        Op::SetTimeouts(_) => OpKind::Config,
        Op::StartDaemon(_) | Op::StopDaemon(_) => OpKind::Daemon,
    }
}

/// Appends the request for `op` with sequence number `seq` to `buf`.
pub fn encode_op(buf: &mut Vec<u8>, family: u16, seq: u32, op: &Op) {
    let at = begin(
        buf,
        family,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        op_cmd(op),
        IPVS_GENL_VERSION,
    );
    match op {
        Op::AddService(s) | Op::EditService(s) => encode_service(buf, s),
        Op::DelService(k) | Op::Zero(Some(k)) => encode_key(buf, k),
        Op::AddDest(k, d) | Op::EditDest(k, d) => {
            encode_key(buf, k);
            encode_dest(buf, d);
        }
        Op::DelDest(k, d) => {
            encode_key(buf, k);
            encode_dest_key(buf, d);
        }
        Op::Zero(None) | Op::Flush => {}
        Op::SetTimeouts(t) => encode_timeouts(buf, t),
        Op::StartDaemon(d) => encode_daemon(buf, d),
        Op::StopDaemon(s) => encode_daemon_state(buf, *s),
    }
    finish(buf, at);
}

/// Appends a dump request of every service (`IPVS_CMD_GET_SERVICE`, `NLM_F_DUMP`).
pub fn encode_dump_services(buf: &mut Vec<u8>, family: u16, seq: u32) {
    let at = begin(
        buf,
        family,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        cmd::GET_SERVICE,
        IPVS_GENL_VERSION,
    );
    finish(buf, at);
}

/// Appends a dump request of one service's destinations (`IPVS_CMD_GET_DEST`, `NLM_F_DUMP`).
pub fn encode_dump_dests(buf: &mut Vec<u8>, family: u16, seq: u32, key: &ServiceKey) {
    let at = begin(
        buf,
        family,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        cmd::GET_DEST,
        IPVS_GENL_VERSION,
    );
    encode_key(buf, key);
    finish(buf, at);
}

/// Appends a request for one service by key (`IPVS_CMD_GET_SERVICE` without `NLM_F_DUMP`,
/// handled by `ip_vs_genl_get_cmd`): one reply, the service or an error (ESRCH when there is no
/// such service). No `NLM_F_ACK`, so that each request has exactly one reply and many can be
/// in flight.
pub fn encode_get_service(buf: &mut Vec<u8>, family: u16, seq: u32, key: &ServiceKey) {
    let at = begin(
        buf,
        family,
        NLM_F_REQUEST,
        seq,
        cmd::GET_SERVICE,
        IPVS_GENL_VERSION,
    );
    encode_key(buf, key);
    finish(buf, at);
}

/// Appends a dump request of the sync daemons (`IPVS_CMD_GET_DAEMON`, `NLM_F_DUMP`).
pub fn encode_dump_daemons(buf: &mut Vec<u8>, family: u16, seq: u32) {
    let at = begin(
        buf,
        family,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        cmd::GET_DAEMON,
        IPVS_GENL_VERSION,
    );
    finish(buf, at);
}

/// Appends a `GET_INFO` or `GET_CONFIG` request (one reply, then an ack).
pub fn encode_get(buf: &mut Vec<u8>, family: u16, seq: u32, command: u8) {
    let at = begin(
        buf,
        family,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        command,
        IPVS_GENL_VERSION,
    );
    finish(buf, at);
}

/// Appends (at a 4-byte aligned end of `buf`, as every netlink message starts) the controller
/// request that resolves the family "IPVS" (`CTRL_CMD_GETFAMILY`,
/// version 1, with `NLM_F_ACK`: the request libnl's `genl_ctrl_resolve` sends for ipvsadm), built
/// with neli's message types (`genl_ctrl_getfamily` in the kernel's `net/netlink/genetlink.c`
/// answers it). The only request of this crate not packed by hand: it is sent once per
/// connection, never in a batch.
pub fn encode_get_family(buf: &mut Vec<u8>, seq: u32) -> Result<(), EncodeError> {
    use neli::consts::genl::{CtrlAttr, CtrlCmd};
    use neli::consts::nl::{GenlId, NlmF};
    use neli::genl::{AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, NlattrBuilder};
    use neli::nl::{NlPayload, NlmsghdrBuilder};
    use neli::types::GenlBuffer;
    use neli::ToBytes;

    let err = |e: &dyn std::fmt::Display| EncodeError(format!("CTRL_CMD_GETFAMILY: {e}"));
    let name = NlattrBuilder::default()
        .nla_type(
            AttrTypeBuilder::default()
                .nla_type(CtrlAttr::FamilyName)
                .build()
                .map_err(|e| err(&e))?,
        )
        .nla_payload(IPVS_GENL_NAME)
        .build()
        .map_err(|e| err(&e))?;
    let genl: Genlmsghdr<CtrlCmd, CtrlAttr> = GenlmsghdrBuilder::default()
        .cmd(CtrlCmd::Getfamily)
        .version(1)
        .attrs(std::iter::once(name).collect::<GenlBuffer<_, _>>())
        .build()
        .map_err(|e| err(&e))?;
    let msg = NlmsghdrBuilder::default()
        .nl_type(GenlId::Ctrl)
        .nl_flags(NlmF::REQUEST | NlmF::ACK)
        .nl_seq(seq)
        .nl_pid(0)
        .nl_payload(NlPayload::Payload(genl))
        .build()
        .map_err(|e| err(&e))?;
    let mut cursor = std::io::Cursor::new(std::mem::take(buf));
    cursor.set_position(cursor.get_ref().len() as u64);
    let r = msg.to_bytes(&mut cursor).map_err(|e| err(&e));
    *buf = cursor.into_inner();
    r
}

/// A request that could not be encoded (only neli's builders can fail; this crate's own
/// encoders write into a `Vec` and cannot).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("encoding a request: {0}")]
pub struct EncodeError(pub String);

#[cfg(test)]
mod family_tests {
    use super::encode_get_family;

    /// The bytes libnl's `genl_ctrl_resolve` sends (and the plain-C floor's `resolve`): header,
    /// `CTRL_CMD_GETFAMILY` version 1, `CTRL_ATTR_FAMILY_NAME` = "IPVS\0" padded to 4 bytes.
    #[test]
    fn get_family_request_bytes() {
        // Appended after what is there (netlink messages start 4-byte aligned).
        let mut buf = vec![0xAA; 4];
        encode_get_family(&mut buf, 0x0102_0304).expect("encodes");
        let want: Vec<u8> = [
            &[0xAA; 4][..],
            &32u32.to_ne_bytes(),
            &0x10u16.to_ne_bytes(),
            &0x05u16.to_ne_bytes(), // NLM_F_REQUEST | NLM_F_ACK
            &0x0102_0304u32.to_ne_bytes(),
            &0u32.to_ne_bytes(),
            &[3, 1, 0, 0], // cmd, version, reserved
            &9u16.to_ne_bytes(),
            &2u16.to_ne_bytes(),
            b"IPVS\0\0\0\0",
        ]
        .concat();
        assert_eq!(buf, want);
    }
}
