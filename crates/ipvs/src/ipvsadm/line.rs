//! One restore line's options -> one operation: each option at most once, only the options
//! the command takes (ipvsadm's `commands_v_options`), ipvsadm's defaults and value ranges
//! (`ipvsadm.c`: `parse_options`, `process_options`, `generic_opt_check`, `tunnel_opt_check`).
//! The text around it (lines, comments, every bad line collected) is `restore`'s.

use std::net::{IpAddr, Ipv4Addr};

use super::args::{Item, Opt};
use super::lex::{parse_addr_port, parse_fwmark, parse_u32_in};
use crate::model::{
    AddressFamily, DestKey, Destination, Forwarding, Netmask, Protocol, Scheduler, Service,
    ServiceFlags, ServiceKey, Timeouts, Tunnel, TunnelFlags, TunnelType,
};
use crate::ops::Op;

/// ipvsadm's `MAX_TIMEOUT`: 31 days.
const MAX_TIMEOUT: u32 = 86_400 * 31;
/// libipvs' `IPVS_SVC_PERSISTENT_TIMEOUT`: the timeout of `-p` without a value.
const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;

/// The options of one line, each at most once.
#[derive(Debug, Default)]
pub(super) struct Line<'a> {
    pub(super) cmd: Option<Opt>,
    cmd_spelled: &'static str,
    seen: u64,
    service: Option<(Opt, &'a str)>,
    ipv6: bool,
    scheduler: Option<&'a str>,
    persistent: Option<Option<&'a str>>,
    netmask: Option<&'a str>,
    pe: Option<&'a str>,
    ops: bool,
    sched_flags: Option<&'a str>,
    real: Option<&'a str>,
    fwd: Option<Forwarding>,
    weight: Option<&'a str>,
    u_threshold: Option<&'a str>,
    l_threshold: Option<&'a str>,
    tun_type: Option<&'a str>,
    tun_port: Option<&'a str>,
    tun_flag: Option<(Opt, TunnelFlags)>,
}

impl<'a> Line<'a> {
    pub(super) fn take(&mut self, item: &Item<'a>) -> Result<(), String> {
        let v = item.value;
        let once = |seen: &mut u64, opt: Opt| {
            if *seen & opt.bit() != 0 {
                Err(format!("option `{}` given twice", item.spelled))
            } else {
                *seen |= opt.bit();
                Ok(())
            }
        };
        match item.opt {
            Opt::NotHere(name) => {
                return Err(format!(
                    "`{name}` cannot be used in a restore file (only -A, -E, -D, -C, -a, -e, -d, -Z and --set)"
                ))
            }
            c @ (Opt::AddService
            | Opt::EditService
            | Opt::DelService
            | Opt::Clear
            | Opt::AddServer
            | Opt::EditServer
            | Opt::DelServer
            | Opt::Zero
            | Opt::Set) => {
                if self.cmd.is_some() {
                    return Err(format!(
                        "more than one command (`{}` and `{}`)",
                        self.cmd_spelled, item.spelled
                    ));
                }
                self.cmd = Some(c);
                self.cmd_spelled = item.spelled;
            }
            o @ (Opt::Tcp | Opt::Udp | Opt::Sctp | Opt::Fwmark) => {
                if self.service.is_some() {
                    return Err("more than one service (-t, -u, --sctp-service, -f)".into());
                }
                self.service = Some((o, v.unwrap_or("")));
            }
            Opt::Ipv6 => {
                once(&mut self.seen, Opt::Ipv6)?;
                self.ipv6 = true;
            }
            o @ (Opt::Gatewaying | Opt::Ipip | Opt::Masquerading) => {
                if self.fwd.is_some() {
                    return Err("more than one forwarding method (-g, -i, -m)".into());
                }
                self.fwd = Some(match o {
                    Opt::Ipip => Forwarding::Tunnel,
                    Opt::Masquerading => Forwarding::Masq,
                    _ => Forwarding::DirectRoute,
                });
            }
            o @ (Opt::TunNocsum | Opt::TunCsum | Opt::TunRemcsum) => {
                if let Some((prev, _)) = self.tun_flag {
                    if prev != o {
                        return Err(
                            "only one of --tun-nocsum, --tun-csum, --tun-remcsum may be given"
                                .into(),
                        );
                    }
                }
                once(&mut self.seen, o)?;
                let bits = match o {
                    Opt::TunCsum => TunnelFlags::CSUM,
                    Opt::TunRemcsum => TunnelFlags::REMCSUM,
                    _ => TunnelFlags::empty(),
                };
                self.tun_flag = Some((o, bits));
            }
            o => {
                once(&mut self.seen, o)?;
                let slot = match o {
                    Opt::Scheduler => &mut self.scheduler,
                    Opt::Netmask => &mut self.netmask,
                    Opt::Pe => &mut self.pe,
                    Opt::SchedFlags => {
                        self.sched_flags = Some(v.unwrap_or(""));
                        return Ok(());
                    }
                    Opt::RealServer => &mut self.real,
                    Opt::Weight => &mut self.weight,
                    Opt::UThreshold => &mut self.u_threshold,
                    Opt::LThreshold => &mut self.l_threshold,
                    Opt::TunType => &mut self.tun_type,
                    Opt::TunPort => &mut self.tun_port,
                    Opt::Persistent => {
                        self.persistent = Some(v);
                        return Ok(());
                    }
                    Opt::Ops => {
                        self.ops = true;
                        return Ok(());
                    }
                    _ => return Err(format!("option `{}` is not supported here", item.spelled)),
                };
                *slot = v;
            }
        }
        Ok(())
    }

    /// Rejects options that make no sense with the command (ipvsadm's `commands_v_options`).
    /// A service is allowed when `Opt::Tcp` is, any forwarding method when `Opt::Gatewaying` is,
    /// any tunnel checksum option when `Opt::TunNocsum` is.
    fn check_allowed(&self, allowed: &[Opt]) -> Result<(), String> {
        let present: [(bool, Opt, &str); 16] = [
            (
                self.service.is_some(),
                Opt::Tcp,
                "a service (-t/-u/--sctp-service/-f)",
            ),
            (self.ipv6, Opt::Tcp, "-6"),
            (self.scheduler.is_some(), Opt::Scheduler, "-s"),
            (self.persistent.is_some(), Opt::Persistent, "-p"),
            (self.netmask.is_some(), Opt::Netmask, "-M"),
            (self.pe.is_some(), Opt::Pe, "--pe"),
            (self.ops, Opt::Ops, "-o"),
            (self.sched_flags.is_some(), Opt::SchedFlags, "-b"),
            (self.real.is_some(), Opt::RealServer, "-r"),
            (self.fwd.is_some(), Opt::Gatewaying, "-g/-i/-m"),
            (self.weight.is_some(), Opt::Weight, "-w"),
            (self.u_threshold.is_some(), Opt::UThreshold, "-x"),
            (self.l_threshold.is_some(), Opt::LThreshold, "-y"),
            (self.tun_type.is_some(), Opt::TunType, "--tun-type"),
            (self.tun_port.is_some(), Opt::TunPort, "--tun-port"),
            (
                self.tun_flag.is_some(),
                Opt::TunNocsum,
                "--tun-nocsum/--tun-csum/--tun-remcsum",
            ),
        ];
        for (_, opt, name) in present.iter().filter(|p| p.0) {
            if !allowed.contains(opt) {
                return Err(format!(
                    "option {name} cannot be used with `{}`",
                    self.cmd_spelled
                ));
            }
        }
        Ok(())
    }

    fn key(&self) -> Result<ServiceKey, String> {
        let Some((kind, text)) = self.service else {
            return Err(format!(
                "`{}` needs a service: -t, -u, --sctp-service or -f",
                self.cmd_spelled
            ));
        };
        let protocol = match kind {
            Opt::Fwmark => {
                let mark = parse_fwmark(text)?;
                let af = if self.ipv6 {
                    AddressFamily::Inet6
                } else {
                    AddressFamily::Inet
                };
                return Ok(ServiceKey::Fwmark { af, mark });
            }
            Opt::Udp => Protocol::Udp,
            Opt::Sctp => Protocol::Sctp,
            _ => Protocol::Tcp,
        };
        if self.ipv6 {
            return Err("-6 is only for a firewall-mark service (-f MARK -6)".into());
        }
        let (addr, port) =
            parse_addr_port(text).map_err(|e| format!("virtual service `{text}`: {e}"))?;
        Ok(ServiceKey::Inet {
            protocol,
            addr,
            port: port.unwrap_or(0),
        })
    }

    pub(super) fn build(&self, cmd: Opt, bare: &[&str]) -> Result<Op, String> {
        use Opt as O;
        const SVC: &[Opt] = &[
            O::Tcp,
            O::Scheduler,
            O::Persistent,
            O::Netmask,
            O::Pe,
            O::Ops,
            O::SchedFlags,
        ];
        const DEST: &[Opt] = &[
            O::Tcp,
            O::RealServer,
            O::Gatewaying,
            O::Weight,
            O::UThreshold,
            O::LThreshold,
            O::TunType,
            O::TunPort,
            O::TunNocsum,
        ];
        match cmd {
            O::Clear => {
                self.check_allowed(&[])?;
                Ok(Op::Flush)
            }
            O::Set => {
                self.check_allowed(&[])?;
                let [tcp, fin, udp] = bare else {
                    return Err("--set needs three timeouts: TCP TCPFIN UDP".into());
                };
                let t = |s: &str, what: &str| {
                    parse_u32_in(s, 0, MAX_TIMEOUT)
                        .ok_or_else(|| format!("invalid {what} timeout `{s}` (0..{MAX_TIMEOUT})"))
                };
                Ok(Op::SetTimeouts(Timeouts {
                    tcp: t(tcp, "tcp")?,
                    tcp_fin: t(fin, "tcpfin")?,
                    udp: t(udp, "udp")?,
                }))
            }
            O::Zero => {
                self.check_allowed(&[O::Tcp])?;
                match self.service {
                    Some(_) => Ok(Op::Zero(Some(self.key()?))),
                    None => Ok(Op::Zero(None)),
                }
            }
            O::DelService => {
                self.check_allowed(&[O::Tcp])?;
                Ok(Op::DelService(self.key()?))
            }
            O::AddService | O::EditService => {
                self.check_allowed(SVC)?;
                let svc = self.service_def()?;
                Ok(if cmd == O::AddService {
                    Op::AddService(svc)
                } else {
                    Op::EditService(svc)
                })
            }
            O::DelServer => {
                self.check_allowed(&[O::Tcp, O::RealServer])?;
                let key = self.key()?;
                let (addr, port) = self.real_server(&key)?;
                Ok(Op::DelDest(key, DestKey { addr, port }))
            }
            _ => {
                self.check_allowed(DEST)?;
                let key = self.key()?;
                let d = self.dest_def(&key)?;
                Ok(if cmd == O::AddServer {
                    Op::AddDest(key, d)
                } else {
                    Op::EditDest(key, d)
                })
            }
        }
    }

    fn service_def(&self) -> Result<Service, String> {
        let key = self.key()?;
        let sched_name = self.scheduler.unwrap_or("wlc");
        if sched_name.is_empty() {
            return Err("empty scheduler name (-s)".into());
        }
        let mut svc = Service::new(key, Scheduler::from_name(sched_name));
        let (is_fwmark, port, protocol) = match key {
            ServiceKey::Fwmark { .. } => (true, 0, None),
            ServiceKey::Inet { port, protocol, .. } => (false, port, Some(protocol)),
        };
        if let Some(t) = self.persistent {
            svc.flags = svc.flags.with(ServiceFlags::PERSISTENT, true);
            svc.timeout = match t {
                None => DEFAULT_PERSISTENT_TIMEOUT,
                Some(s) => parse_u32_in(s, 1, MAX_TIMEOUT).ok_or_else(|| {
                    format!("invalid persistence timeout `{s}` (1..{MAX_TIMEOUT} seconds)")
                })?,
            };
        }
        if let Some(m) = self.netmask {
            svc.netmask = match key.af() {
                AddressFamily::Inet => Netmask::Inet(m.parse::<Ipv4Addr>().map_err(|_| {
                    format!("invalid persistence netmask `{m}` (an IPv4 mask like 255.255.255.0)")
                })?),
                AddressFamily::Inet6 => Netmask::Inet6(
                    parse_u32_in(m, 1, 128)
                        .and_then(|p| u8::try_from(p).ok())
                        .ok_or_else(|| format!("invalid IPv6 prefix length `{m}` (1..128)"))?,
                ),
            };
        }
        if let Some(pe) = self.pe {
            svc.pe_name = Some(pe.to_string());
        }
        if self.ops {
            if !is_fwmark && protocol != Some(Protocol::Udp) {
                return Err("one-packet scheduling (-o) is only for UDP services".into());
            }
            svc.flags = svc.flags.with(ServiceFlags::ONEPACKET, true);
        }
        if let Some(list) = self.sched_flags {
            if list.is_empty() {
                // `ipvsadm -Sn` prints an empty `-b ` for the one flag sh and mh leave unnamed.
                if sched_name != "sh" && sched_name != "mh" {
                    return Err("-b needs scheduler flags (e.g. sh-fallback,sh-port)".into());
                }
                svc.flags = svc.flags.with(ServiceFlags::SCHED3, true);
            }
            for name in list.split(',').filter(|_| !list.is_empty()) {
                let bit = ServiceFlags::sched_flag_from_name(name)
                    .ok_or_else(|| format!("invalid scheduler flag `{name}`"))?;
                let fits = match name.split_once('-').map(|(p, _)| p) {
                    Some("sh") => sched_name == "sh",
                    Some("mh") => sched_name == "mh",
                    _ => true,
                };
                if !fits {
                    return Err(format!(
                        "scheduler flag `{name}` does not fit scheduler `{sched_name}`"
                    ));
                }
                svc.flags = svc.flags.with(bit, true);
            }
        }
        if !is_fwmark && port == 0 && !svc.flags.persistent() {
            return Err("port 0 is only allowed for a persistent service (-p)".into());
        }
        Ok(svc.normalised())
    }

    fn real_server(&self, key: &ServiceKey) -> Result<(IpAddr, u16), String> {
        let text = self
            .real
            .ok_or_else(|| format!("`{}` needs a real server (-r)", self.cmd_spelled))?;
        let (addr, port) =
            parse_addr_port(text).map_err(|e| format!("real server `{text}`: {e}"))?;
        let svc_port = match key {
            ServiceKey::Inet { port, .. } => *port,
            ServiceKey::Fwmark { .. } => 0,
        };
        Ok((addr, port.unwrap_or(svc_port)))
    }

    fn dest_def(&self, key: &ServiceKey) -> Result<Destination, String> {
        let (addr, port) = self.real_server(key)?;
        let fwd = self.fwd.unwrap_or(Forwarding::DirectRoute);
        if AddressFamily::of(&addr) != key.af() && fwd != Forwarding::Tunnel {
            return Err(format!(
                "real server `{addr}` is {} but the service is {}: mixed families need tunnelling (-i)",
                AddressFamily::of(&addr),
                key.af()
            ));
        }
        let mut d = Destination::new(addr, port, fwd);
        if let Some(w) = self.weight {
            d.weight = parse_u32_in(w, 0, 65_535)
                .and_then(|w| i32::try_from(w).ok())
                .ok_or_else(|| format!("invalid weight `{w}` (0..65535)"))?;
        }
        let thr = |s: &str, what: &str| {
            parse_u32_in(s, 0, i32::MAX as u32)
                .ok_or_else(|| format!("invalid {what} threshold `{s}` (0..{})", i32::MAX))
        };
        if let Some(x) = self.u_threshold {
            d.upper_threshold = thr(x, "upper")?;
        }
        if let Some(y) = self.l_threshold {
            d.lower_threshold = thr(y, "lower")?;
        }
        let tun_opts =
            self.tun_type.is_some() || self.tun_port.is_some() || self.tun_flag.is_some();
        if tun_opts && fwd != Forwarding::Tunnel {
            return Err("tunnel options (--tun-*) need tunnelling (-i)".into());
        }
        if fwd == Forwarding::Tunnel {
            d.tunnel = self.tunnel()?;
        }
        // ipvsadm's rules (direct routing and tunnels take the service's port), in the model.
        Ok(d.normalised_for(key))
    }

    /// ipvsadm's `tunnel_types_v_options`: ipip takes no option; gue needs --tun-port and takes
    /// one checksum option; gre takes --tun-nocsum or --tun-csum.
    fn tunnel(&self) -> Result<Tunnel, String> {
        let kind = match self.tun_type.unwrap_or("ipip") {
            "ipip" => TunnelType::Ipip,
            "gue" => TunnelType::Gue,
            "gre" => TunnelType::Gre,
            other => return Err(format!("invalid tunnel type `{other}` (ipip, gue or gre)")),
        };
        let mut t = Tunnel {
            kind,
            ..Tunnel::default()
        };
        match kind {
            TunnelType::Ipip => {
                if self.tun_port.is_some() || self.tun_flag.is_some() {
                    return Err("tunnel type ipip takes no --tun-port or checksum option".into());
                }
            }
            TunnelType::Gue => {
                let p = self.tun_port.ok_or("tunnel type gue needs --tun-port")?;
                t.port = parse_u32_in(p, 1, 65_535)
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| format!("invalid tunnel port `{p}` (1..65535)"))?;
            }
            _ => {
                if self.tun_port.is_some() {
                    return Err("tunnel type gre takes no --tun-port".into());
                }
                if matches!(self.tun_flag, Some((Opt::TunRemcsum, _))) {
                    return Err("tunnel type gre takes no --tun-remcsum".into());
                }
            }
        }
        if let Some((_, bits)) = self.tun_flag {
            t.flags = bits;
        }
        Ok(t)
    }
}
