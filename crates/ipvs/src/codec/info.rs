//! `IPVS_INFO_ATTR_*` (reply to `IPVS_CMD_GET_INFO`), the timeouts (`IPVS_CMD_ATTR_TIMEOUT_*`,
//! reply to `IPVS_CMD_GET_CONFIG`) and the generic-netlink controller's family lookup.

use crate::error::DecodeError;
use crate::model::{Info, Timeouts};

use super::attr::{put_u32, AttrIter};
use super::cmd_attr;

/// `IPVS_INFO_ATTR_VERSION` (u32).
pub const INFO_VERSION: u16 = 1;
/// `IPVS_INFO_ATTR_CONN_TAB_SIZE` (u32).
pub const INFO_CONN_TAB_SIZE: u16 = 2;

/// `CTRL_CMD_NEWFAMILY`: the controller's reply.
pub const CTRL_CMD_NEWFAMILY: u8 = 1;
/// `CTRL_CMD_GETFAMILY`.
pub const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID` (u16).
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME` (string).
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;

/// Decodes the attributes of a `GET_INFO` reply (`ip_vs_genl_get_cmd`).
pub fn decode_info(attrs: &[u8]) -> Result<Info, DecodeError> {
    let mut version = None;
    let mut size = None;
    for a in AttrIter::new(attrs) {
        let a = a?;
        match a.ty {
            INFO_VERSION => version = Some(a.u32("IPVS_INFO_ATTR_VERSION")?),
            INFO_CONN_TAB_SIZE => size = Some(a.u32("IPVS_INFO_ATTR_CONN_TAB_SIZE")?),
            _ => {}
        }
    }
    Ok(Info {
        version: version.ok_or(DecodeError::Missing {
            context: "IPVS_INFO_ATTR_VERSION",
        })?,
        conn_tab_size: size.ok_or(DecodeError::Missing {
            context: "IPVS_INFO_ATTR_CONN_TAB_SIZE",
        })?,
    })
}

/// Appends the three timeout attributes (a `SET_CONFIG` request or a `GET_CONFIG` reply).
pub fn encode_timeouts(buf: &mut Vec<u8>, t: &Timeouts) {
    put_u32(buf, cmd_attr::TIMEOUT_TCP, t.tcp);
    put_u32(buf, cmd_attr::TIMEOUT_TCP_FIN, t.tcp_fin);
    put_u32(buf, cmd_attr::TIMEOUT_UDP, t.udp);
}

/// Decodes the attributes of a `GET_CONFIG` reply; a missing timeout reads as 0.
pub fn decode_timeouts(attrs: &[u8]) -> Result<Timeouts, DecodeError> {
    let mut t = Timeouts::default();
    for a in AttrIter::new(attrs) {
        let a = a?;
        match a.ty {
            cmd_attr::TIMEOUT_TCP => t.tcp = a.u32("IPVS_CMD_ATTR_TIMEOUT_TCP")?,
            cmd_attr::TIMEOUT_TCP_FIN => t.tcp_fin = a.u32("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN")?,
            cmd_attr::TIMEOUT_UDP => t.udp = a.u32("IPVS_CMD_ATTR_TIMEOUT_UDP")?,
            _ => {}
        }
    }
    Ok(t)
}

/// Decodes `CTRL_ATTR_FAMILY_ID` from a controller `NEWFAMILY` reply.
pub fn decode_family_id(attrs: &[u8]) -> Result<u16, DecodeError> {
    for a in AttrIter::new(attrs) {
        let a = a?;
        if a.ty == CTRL_ATTR_FAMILY_ID {
            return a.u16("CTRL_ATTR_FAMILY_ID");
        }
    }
    Err(DecodeError::Missing {
        context: "CTRL_ATTR_FAMILY_ID",
    })
}
