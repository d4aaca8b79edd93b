//! A typed, async library for the Linux kernel's IPVS generic-netlink interface.
//!
//! The kernel side lives in `net/netfilter/ipvs/ip_vs_ctl.c` (family `"IPVS"`, attributes in
//! `include/uapi/linux/ip_vs.h`).
#![forbid(unsafe_code)]
