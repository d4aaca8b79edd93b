//! Whole requests: one [`Op`] or one query, appended to a caller's buffer so that many can share
//! one `sendmsg`. Each request asks for an ack (`NLM_F_ACK`); dumps end with `NLMSG_DONE`.

use crate::error::OpKind;
use crate::model::ServiceKey;
use crate::ops::Op;

use super::attr::put_str;
use super::daemon::{encode_daemon, encode_daemon_state};
use super::dest::{encode_dest, encode_dest_key};
use super::info::{encode_timeouts, CTRL_ATTR_FAMILY_NAME, CTRL_CMD_GETFAMILY};
use super::msg::{begin, finish, GENL_ID_CTRL, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
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

/// Appends the controller request that resolves the family "IPVS" (`CTRL_CMD_GETFAMILY`).
pub fn encode_get_family(buf: &mut Vec<u8>, seq: u32) {
    let at = begin(
        buf,
        GENL_ID_CTRL,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        CTRL_CMD_GETFAMILY,
        1,
    );
    put_str(buf, CTRL_ATTR_FAMILY_NAME, IPVS_GENL_NAME);
    finish(buf, at);
}
