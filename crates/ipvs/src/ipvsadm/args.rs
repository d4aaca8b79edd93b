//! Splitting one `ipvsadm -R` line into options, as ipvsadm's popt table accepts them.
//!
//! ipvsadm 1.31 `ipvsadm.c` (`parse_options`): short options may be clustered (`-At`), a short
//! option's value may be attached (`-srr`) or follow as the next word, a long option's value may
//! follow `=` (`--scheduler=rr`) or come as the next word, and `-p`/`--persistent` takes its
//! timeout only when the next word does not start with `-`.

/// Every option a restore line may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Opt {
    /// `-A`, `--add-service`.
    AddService,
    /// `-E`, `--edit-service`.
    EditService,
    /// `-D`, `--delete-service`.
    DelService,
    /// `-C`, `--clear`.
    Clear,
    /// `-a`, `--add-server`.
    AddServer,
    /// `-e`, `--edit-server`.
    EditServer,
    /// `-d`, `--delete-server`.
    DelServer,
    /// `-Z`, `--zero`.
    Zero,
    /// `--set TCP TCPFIN UDP`.
    Set,
    /// `-t`, `--tcp-service`.
    Tcp,
    /// `-u`, `--udp-service`.
    Udp,
    /// `--sctp-service`.
    Sctp,
    /// `-f`, `--fwmark-service`.
    Fwmark,
    /// `-6`, `--ipv6` (with `-f`).
    Ipv6,
    /// `-s`, `--scheduler`.
    Scheduler,
    /// `-p`, `--persistent [timeout]`.
    Persistent,
    /// `-M`, `--netmask`.
    Netmask,
    /// `--pe`.
    Pe,
    /// `-o`, `--ops`.
    Ops,
    /// `-b`, `--sched-flags`.
    SchedFlags,
    /// `-r`, `--real-server`.
    RealServer,
    /// `-g`, `--gatewaying`.
    Gatewaying,
    /// `-i`, `--ipip`.
    Ipip,
    /// `-m`, `--masquerading`.
    Masquerading,
    /// `-w`, `--weight`.
    Weight,
    /// `-x`, `--u-threshold`.
    UThreshold,
    /// `-y`, `--l-threshold`.
    LThreshold,
    /// `--tun-type`.
    TunType,
    /// `--tun-port`.
    TunPort,
    /// `--tun-nocsum`.
    TunNocsum,
    /// `--tun-csum`.
    TunCsum,
    /// `--tun-remcsum`.
    TunRemcsum,
    /// An ipvsadm option that has no meaning in a restore file (`-L`, `-S`, `-n`, ...).
    NotHere(&'static str),
}

/// Whether an option takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    None,
    Required,
    Optional,
}

/// (short, long, value, option), in ipvsadm's table order.
const TABLE: &[(Option<&str>, &str, Arg, Opt)] = &[
    (Some("-A"), "--add-service", Arg::None, Opt::AddService),
    (Some("-E"), "--edit-service", Arg::None, Opt::EditService),
    (Some("-D"), "--delete-service", Arg::None, Opt::DelService),
    (Some("-C"), "--clear", Arg::None, Opt::Clear),
    (Some("-a"), "--add-server", Arg::None, Opt::AddServer),
    (Some("-e"), "--edit-server", Arg::None, Opt::EditServer),
    (Some("-d"), "--delete-server", Arg::None, Opt::DelServer),
    (Some("-Z"), "--zero", Arg::None, Opt::Zero),
    (None, "--set", Arg::None, Opt::Set),
    (Some("-t"), "--tcp-service", Arg::Required, Opt::Tcp),
    (Some("-u"), "--udp-service", Arg::Required, Opt::Udp),
    (None, "--sctp-service", Arg::Required, Opt::Sctp),
    (Some("-f"), "--fwmark-service", Arg::Required, Opt::Fwmark),
    (Some("-6"), "--ipv6", Arg::None, Opt::Ipv6),
    (Some("-s"), "--scheduler", Arg::Required, Opt::Scheduler),
    (Some("-p"), "--persistent", Arg::Optional, Opt::Persistent),
    (Some("-M"), "--netmask", Arg::Required, Opt::Netmask),
    (None, "--pe", Arg::Required, Opt::Pe),
    (Some("-o"), "--ops", Arg::None, Opt::Ops),
    // Required in ipvsadm, but `ipvsadm -Sn` prints `-b ` with nothing after it for sh's and
    // mh's unnamed flag-3: optional here so that such a line reads back.
    (Some("-b"), "--sched-flags", Arg::Optional, Opt::SchedFlags),
    (Some("-r"), "--real-server", Arg::Required, Opt::RealServer),
    (Some("-g"), "--gatewaying", Arg::None, Opt::Gatewaying),
    (Some("-i"), "--ipip", Arg::None, Opt::Ipip),
    (Some("-m"), "--masquerading", Arg::None, Opt::Masquerading),
    (Some("-w"), "--weight", Arg::Required, Opt::Weight),
    (Some("-x"), "--u-threshold", Arg::Required, Opt::UThreshold),
    (Some("-y"), "--l-threshold", Arg::Required, Opt::LThreshold),
    (None, "--tun-type", Arg::Required, Opt::TunType),
    (None, "--tun-port", Arg::Required, Opt::TunPort),
    (None, "--tun-nocsum", Arg::None, Opt::TunNocsum),
    (None, "--tun-csum", Arg::None, Opt::TunCsum),
    (None, "--tun-remcsum", Arg::None, Opt::TunRemcsum),
    (Some("-L"), "--list", Arg::None, Opt::NotHere("-L")),
    (Some("-l"), "--list", Arg::None, Opt::NotHere("-l")),
    (Some("-S"), "--save", Arg::None, Opt::NotHere("-S")),
    (Some("-R"), "--restore", Arg::None, Opt::NotHere("-R")),
    (Some("-h"), "--help", Arg::None, Opt::NotHere("-h")),
    (Some("-v"), "--version", Arg::None, Opt::NotHere("-v")),
    (Some("-n"), "--numeric", Arg::None, Opt::NotHere("-n")),
    (Some("-c"), "--connection", Arg::None, Opt::NotHere("-c")),
    (Some("-X"), "--exact", Arg::None, Opt::NotHere("--exact")),
    (
        None,
        "start-daemon",
        Arg::Required,
        Opt::NotHere("--start-daemon"),
    ),
    (
        None,
        "stop-daemon",
        Arg::Required,
        Opt::NotHere("--stop-daemon"),
    ),
    (None, "--timeout", Arg::None, Opt::NotHere("--timeout")),
    (None, "--daemon", Arg::None, Opt::NotHere("--daemon")),
    (None, "--stats", Arg::None, Opt::NotHere("--stats")),
    (None, "--rate", Arg::None, Opt::NotHere("--rate")),
];

/// One parsed option with its value and how the line spelled it (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item<'a> {
    /// The option.
    pub opt: Opt,
    /// Its value, if it takes one and one was given.
    pub value: Option<&'a str>,
    /// The option as written, e.g. `-s` or `--scheduler`.
    pub spelled: &'static str,
}

/// The options of one line plus its bare words (the `--set` values).
#[derive(Debug, Default)]
pub(crate) struct OptionList<'a> {
    /// Options in the order given.
    pub items: Vec<Item<'a>>,
    /// Words that belong to no option.
    pub bare: Vec<&'a str>,
}

/// For each ASCII character, 1 + the index in [`TABLE`] of the short option it names (0: none).
const SHORT_INDEX: [u8; 128] = {
    let mut idx = [0u8; 128];
    let mut i = 0;
    while i < TABLE.len() {
        if let Some(s) = TABLE[i].0 {
            let c = s.as_bytes()[1] as usize;
            if c < 128 && idx[c] == 0 {
                idx[c] = (i + 1) as u8;
            }
        }
        i += 1;
    }
    idx
};

fn short_entry(c: char) -> Option<&'static (Option<&'static str>, &'static str, Arg, Opt)> {
    let i = *SHORT_INDEX.get(c as usize)?;
    TABLE.get(usize::from(i).checked_sub(1)?)
}

impl Opt {
    /// A bit of its own for every option that may appear once per line.
    pub(crate) fn bit(self) -> u64 {
        let i = match self {
            Opt::AddService => 0,
            Opt::EditService => 1,
            Opt::DelService => 2,
            Opt::Clear => 3,
            Opt::AddServer => 4,
            Opt::EditServer => 5,
            Opt::DelServer => 6,
            Opt::Zero => 7,
            Opt::Set => 8,
            Opt::Tcp => 9,
            Opt::Udp => 10,
            Opt::Sctp => 11,
            Opt::Fwmark => 12,
            Opt::Ipv6 => 13,
            Opt::Scheduler => 14,
            Opt::Persistent => 15,
            Opt::Netmask => 16,
            Opt::Pe => 17,
            Opt::Ops => 18,
            Opt::SchedFlags => 19,
            Opt::RealServer => 20,
            Opt::Gatewaying => 21,
            Opt::Ipip => 22,
            Opt::Masquerading => 23,
            Opt::Weight => 24,
            Opt::UThreshold => 25,
            Opt::LThreshold => 26,
            Opt::TunType => 27,
            Opt::TunPort => 28,
            Opt::TunNocsum => 29,
            Opt::TunCsum => 30,
            Opt::TunRemcsum => 31,
            Opt::NotHere(_) => 32,
        };
        1 << i
    }
}

/// Splits a line's words into options. Errors name the offending word.
#[cfg(test)]
pub(crate) fn parse_words<'a>(words: &[&'a str]) -> Result<OptionList<'a>, String> {
    let mut out = OptionList::default();
    parse_words_into(words, &mut out)?;
    Ok(out)
}

/// [`parse_words`] into `out` (cleared first), so one buffer serves every line of a file.
pub(crate) fn parse_words_into<'a>(
    words: &[&'a str],
    out: &mut OptionList<'a>,
) -> Result<(), String> {
    out.items.clear();
    out.bare.clear();
    let mut i = 0usize;
    while let Some(&w) = words.get(i) {
        i += 1;
        if let Some(long) = w.strip_prefix("--") {
            if long.is_empty() {
                // `--` ends the options: the rest are bare words.
                out.bare.extend(words.iter().skip(i).copied());
                break;
            }
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let Some(&(_, spelled, arg, opt)) = TABLE.iter().find(|e| e.1.get(2..) == Some(name))
            else {
                return Err(format!("unknown option `--{name}`"));
            };
            let value = match (arg, attached) {
                (Arg::None, Some(_)) => {
                    return Err(format!("option `{spelled}` takes no value"));
                }
                (Arg::None, None) => None,
                (_, Some(v)) => Some(v),
                (Arg::Required, None) => match words.get(i) {
                    Some(v) => {
                        i += 1;
                        Some(*v)
                    }
                    None => return Err(format!("option `{spelled}` needs a value")),
                },
                (Arg::Optional, None) => match words.get(i) {
                    Some(v) if !v.starts_with('-') => {
                        i += 1;
                        Some(*v)
                    }
                    _ => None,
                },
            };
            out.items.push(Item {
                opt,
                value,
                spelled,
            });
        } else if let Some(cluster) = w.strip_prefix('-').filter(|c| !c.is_empty()) {
            for (pos, c) in cluster.char_indices() {
                let Some(&(Some(spelled), _, arg, opt)) = short_entry(c) else {
                    return Err(format!("unknown option `-{c}`"));
                };
                let rest = cluster.get(pos + c.len_utf8()..).unwrap_or("");
                let value = match arg {
                    Arg::None => None,
                    _ if !rest.is_empty() => {
                        // The rest of the word is the value: `-srr`, `-p300`.
                        out.items.push(Item {
                            opt,
                            value: Some(rest),
                            spelled,
                        });
                        break;
                    }
                    Arg::Required => match words.get(i) {
                        Some(v) => {
                            i += 1;
                            Some(*v)
                        }
                        None => return Err(format!("option `{spelled}` needs a value")),
                    },
                    Arg::Optional => match words.get(i) {
                        Some(v) if !v.starts_with('-') => {
                            i += 1;
                            Some(*v)
                        }
                        _ => None,
                    },
                };
                out.items.push(Item {
                    opt,
                    value,
                    spelled,
                });
                if arg != Arg::None {
                    break;
                }
            }
        } else {
            out.bare.push(w);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(line: &str) -> Vec<(Opt, Option<String>)> {
        let words: Vec<&str> = line.split_whitespace().collect();
        parse_words(&words)
            .map(|p| {
                p.items
                    .into_iter()
                    .map(|i| (i.opt, i.value.map(str::to_string)))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn short_long_clustered_and_attached() {
        assert_eq!(
            opts("-At 10.0.0.9:80 -srr"),
            vec![
                (Opt::AddService, None),
                (Opt::Tcp, Some("10.0.0.9:80".into())),
                (Opt::Scheduler, Some("rr".into()))
            ]
        );
        assert_eq!(
            opts("--add-service --tcp-service=1.2.3.4:80 --scheduler sh"),
            vec![
                (Opt::AddService, None),
                (Opt::Tcp, Some("1.2.3.4:80".into())),
                (Opt::Scheduler, Some("sh".into()))
            ]
        );
    }

    #[test]
    fn persistent_takes_its_value_only_when_it_is_not_an_option() {
        assert_eq!(
            opts("-p -M 255.0.0.0"),
            vec![
                (Opt::Persistent, None),
                (Opt::Netmask, Some("255.0.0.0".into()))
            ]
        );
        assert_eq!(opts("-p 30"), vec![(Opt::Persistent, Some("30".into()))]);
        assert_eq!(opts("-p30"), vec![(Opt::Persistent, Some("30".into()))]);
    }

    #[test]
    fn errors_name_the_word() {
        let e = parse_words(&["-A", "-q"]).err().unwrap_or_default();
        assert_eq!(e, "unknown option `-q`");
        let e = parse_words(&["-A", "-t"]).err().unwrap_or_default();
        assert_eq!(e, "option `-t` needs a value");
        let e = parse_words(&["--bogus"]).err().unwrap_or_default();
        assert_eq!(e, "unknown option `--bogus`");
        let e = parse_words(&["--ops=1"]).err().unwrap_or_default();
        assert_eq!(e, "option `--ops` takes no value");
    }
}
