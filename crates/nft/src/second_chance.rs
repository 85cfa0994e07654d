//! The second-chance ruleset, pure: which nf_tables objects make a node hand the
//! packets of TCP connections it does not know to the node that does.
//!
//! Why: an ECMP router keeps no per-connection state. When it adds or removes a next
//! hop (a node drains, fails or comes back), it re-hashes every packet onto the new
//! set, so packets of a connection open on one node arrive at another, which resets
//! it. The cure is on the nodes (the "second chance" of Maglev-style balancers, GLB
//! Director's second chance): a node that receives a packet of a connection it does
//! not know hands a copy to the others, and the one that knows it answers.
//!
//! How, per address family (table `ip oxlb` / `ip6 oxlb`, hook prerouting at priority
//! -150: after conntrack, before kube-proxy's DNAT), for TCP to the pools' prefixes:
//!
//! 1. A packet of a connection this node knows (conntrack established/related) is
//!    accepted. If it is another node's copy (it came as a link-layer broadcast or
//!    multicast), this node also tells the sender "mine" with a copy marked by TTL /
//!    hop limit 0 (set to 1, the copy's own decrement makes it 0; the packet keeps its
//!    TTL), and accepts it as if sent to this host.
//! 2. A SYN is a new connection: this node's.
//! 3. A copy from another node: a "mine" answer refreshes `claimed` for that
//!    connection; any other copy of a connection unknown here is dropped (never copied
//!    on: no loops, no resets from nodes that do not know it).
//! 4. A packet from the router of a connection unknown here: if another node claimed
//!    it (`claimed`) or it was first seen less than 500 ms ago (`tried_recent`, the
//!    time a claim has to come back), a copy goes to every node on the link it came in
//!    on (the link's IPv4 directed broadcast, IPv6 ff02::1) and the packet is dropped here. Seen
//!    before and nobody claimed it (`tried`): it is nobody's, and the kernel answers
//!    it as without oxlb (a reset) — so a connection that no node knows (its node
//!    died) is reset after about half a second instead of hanging, and a connection
//!    open on this very node from before the ruleset existed is picked up by
//!    conntrack on its first retransmission after that.
//! 5. Copies sent stay under a rate (packets per second, with a burst of a tenth).
//!
//! Copies are plain link-layer broadcasts of the client's packet: every node on the
//! link receives them; routers and hosts without this ruleset drop them (Linux drops
//! an IP packet for another host that came as a link-layer broadcast, RFC 1122
//! §3.3.6; a TCP segment not addressed to the host's MAC is never delivered). Nodes in
//! other layer 2 domains are out of reach (documented in docs/weighted-ecmp-and-drain.md).

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::expr::{Base, CmpOp, Csum, Expr, MetaKey, Reg, SetOp, Verdict, list};
use crate::netlink::{Attrs, Batch, Family, MsgType, NLM_F_APPEND, NLM_F_CREATE};

/// The table's name in both families (`nft list table ip oxlb`).
pub const TABLE: &str = "oxlb";
const PREROUTING: &str = "prerouting";
const SECOND_CHANCE: &str = "second_chance";
const RESCUE: &str = "rescue";
const CLAIMED: &str = "claimed";
const TRIED: &str = "tried";
const TRIED_RECENT: &str = "tried_recent";
/// After conntrack (-200), before NAT (-100, kube-proxy's DNAT): "mangle".
const PRIORITY: i32 = -150;
/// A claim lasts this long after the last copy its owner answered.
const CLAIM_MS: u64 = 60_000;
/// How long a first copy waits for a claim before the connection counts as nobody's.
const CLAIM_WAIT_MS: u64 = 500;
/// How long a connection nobody claimed is left to the kernel before it is tried again.
const TRIED_MS: u64 = 5_000;
/// At most this many connections in each set (a dynamic set needs a bound).
const SET_SIZE: u32 = 65_536;

/// What the ruleset covers: the prefixes of the address pools, and the rate at which
/// copies may be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub ipv4: Vec<Ipv4Net>,
    pub ipv6: Vec<Ipv6Net>,
    pub copies_per_second: u32,
    /// The IPv4 links copies can be sent on, with their broadcast address. IPv4 copies
    /// go to the link's directed broadcast: Linux resolves a copy to the limited
    /// broadcast 255.255.255.255 as if it were sent to the packet's own destination
    /// (a unicast ARP for the service IP, answered by any node that has it; seen on
    /// 6.18), while a directed broadcast is sent to ff:ff:ff:ff:ff:ff. A packet that
    /// came in on a link without a broadcast address gets no second chance.
    pub links: Vec<Link>,
}

/// An interface with an IPv4 broadcast address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Link {
    pub index: u32,
    pub broadcast: std::net::Ipv4Addr,
}

impl Plan {
    /// The plan for these prefixes, each family aggregated (overlaps and neighbours
    /// merged, so no packet jumps twice).
    pub fn new(prefixes: impl IntoIterator<Item = IpNet>, copies_per_second: u32) -> Plan {
        let (mut ipv4, mut ipv6) = (Vec::new(), Vec::new());
        for net in prefixes {
            match net.trunc() {
                IpNet::V4(n) => ipv4.push(n),
                IpNet::V6(n) => ipv6.push(n),
            }
        }
        Plan {
            ipv4: Ipv4Net::aggregate(&ipv4),
            ipv6: Ipv6Net::aggregate(&ipv6),
            copies_per_second,
            links: Vec::new(),
        }
    }

    /// The same plan for these links (sorted, so equal sets compare equal).
    pub fn with_links(mut self, mut links: Vec<Link>) -> Plan {
        links.sort();
        links.dedup();
        self.links = links;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ipv4.is_empty() && self.ipv6.is_empty()
    }
}

/// One request of a batch, for error messages ("set claimed of table ip oxlb").
pub type Step = String;

/// The batch that makes the tables exactly `plan` (replacing what an earlier run left,
/// in one transaction: no instant without the rules, conntrack never unhooked), or
/// removes them for a family without prefixes. With the steps, in sequence order.
pub fn install(plan: &Plan, first_seq: u32) -> (Batch, Vec<Step>) {
    let mut out = Out::new(first_seq);
    let v4: Vec<IpNet> = plan.ipv4.iter().copied().map(IpNet::V4).collect();
    let v6: Vec<IpNet> = plan.ipv6.iter().copied().map(IpNet::V6).collect();
    for (layout, prefixes) in [(Layout::V4, v4), (Layout::V6, v6)] {
        out.replace_table(layout.family);
        if !prefixes.is_empty() {
            out.table(&layout, &prefixes, plan);
        }
    }
    (out.batch, out.steps)
}

/// The batch that removes both tables (if present).
pub fn remove(first_seq: u32) -> (Batch, Vec<Step>) {
    install(&Plan::new([], 0), first_seq)
}

/// Where one family keeps what the rules read.
struct Layout {
    family: Family,
    /// Address length and where the source and destination addresses are.
    addr_len: u32,
    saddr: u32,
    daddr: u32,
    /// The TTL / hop limit: where, and how a write keeps the header right.
    ttl: u32,
    /// IPv6: the all-nodes address of a link, where copies go.
    all_nodes: &'static [u8],
}

const IPV6_ALL_NODES: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

impl Layout {
    const V4: Layout = Layout {
        family: Family::Ipv4,
        addr_len: 4,
        saddr: 12,
        daddr: 16,
        ttl: 8,
        all_nodes: &[255, 255, 255, 255],
    };
    const V6: Layout = Layout {
        family: Family::Ipv6,
        addr_len: 16,
        saddr: 8,
        daddr: 24,
        ttl: 7,
        all_nodes: &IPV6_ALL_NODES,
    };

    fn name(&self) -> &'static str {
        match self.family {
            Family::Ipv4 => "ip",
            Family::Ipv6 => "ip6",
        }
    }

    /// The connection's key, source address . source port . destination address .
    /// destination port, loaded as nft loads a concatenation: each part from the next
    /// 32-bit register on (ports padded to 4 bytes).
    fn flow_key(&self) -> Vec<Expr> {
        let words = self.addr_len / 4;
        let at = |word: u32| if word == 0 { Reg::R1 } else { Reg::word(word) };
        vec![
            load(Base::Network, self.saddr, self.addr_len, at(0)),
            load(Base::Transport, 0, 2, at(words)),
            load(Base::Network, self.daddr, self.addr_len, at(words + 1)),
            load(Base::Transport, 2, 2, at(2 * words + 1)),
        ]
    }

    fn key_len(&self) -> u32 {
        2 * self.addr_len + 8
    }

    /// nft's datatype numbers for the key, so `nft list` shows it as written
    /// (ipv4_addr 7 / ipv6_addr 8, inet_service 13, 6 bits each in a concatenation).
    fn key_type(&self) -> u32 {
        let addr = match self.family {
            Family::Ipv4 => 7,
            Family::Ipv6 => 8,
        };
        [addr, 13, addr, 13].iter().fold(0, |acc, t| (acc << 6) | t)
    }

    /// Marks a copy with TTL 1 (0 once sent: the copy's own decrement), keeping the
    /// packet's TTL in R2 to put it back.
    fn mark_copy(&self) -> Vec<Expr> {
        match self.family {
            // TTL and protocol as one 16-bit word, so the header checksum is updated
            // on a word boundary (as `nft ... ip ttl set 1` writes it).
            Family::Ipv4 => vec![
                load(Base::Network, self.ttl, 2, Reg::R2),
                Expr::Bitwise {
                    sreg: Reg::R2,
                    dreg: Reg::R1,
                    mask: vec![0, 0xff],
                    xor: vec![1, 0],
                },
                self.write_ttl(Reg::R1),
            ],
            Family::Ipv6 => vec![
                load(Base::Network, self.ttl, 1, Reg::R2),
                Expr::Data {
                    dreg: Reg::R1,
                    data: vec![1],
                },
                self.write_ttl(Reg::R1),
            ],
        }
    }

    fn write_ttl(&self, from: Reg) -> Expr {
        match self.family {
            Family::Ipv4 => Expr::Write {
                base: Base::Network,
                offset: self.ttl,
                len: 2,
                sreg: from,
                csum: Csum::Inet { offset: 10 },
            },
            Family::Ipv6 => Expr::Write {
                base: Base::Network,
                offset: self.ttl,
                len: 1,
                sreg: from,
                csum: Csum::None,
            },
        }
    }

    /// The ways to send a copy to every node on the link a packet came in on: IPv6
    /// one for all (ff02::1 out of the incoming interface); IPv4 one per link, each
    /// matching its interface first (see [`Plan::links`]).
    fn copies(&self, links: &[Link]) -> Vec<Vec<Expr>> {
        match self.family {
            Family::Ipv6 => vec![vec![
                Expr::Data {
                    dreg: Reg::R3,
                    data: self.all_nodes.to_vec(),
                },
                Expr::Meta {
                    key: MetaKey::Iif,
                    dreg: Reg::R4,
                },
                Expr::Dup {
                    addr: Reg::R3,
                    dev: Reg::R4,
                },
            ]],
            Family::Ipv4 => links
                .iter()
                .map(|link| {
                    vec![
                        meta(MetaKey::Iif),
                        cmp(CmpOp::Eq, &link.index.to_ne_bytes()),
                        Expr::Data {
                            dreg: Reg::R3,
                            data: link.broadcast.octets().to_vec(),
                        },
                        Expr::Data {
                            dreg: Reg::R4,
                            data: link.index.to_ne_bytes().to_vec(),
                        },
                        Expr::Dup {
                            addr: Reg::R3,
                            dev: Reg::R4,
                        },
                    ]
                })
                .collect(),
        }
    }

    fn set_id(&self, set: &str) -> u32 {
        let base = match self.family {
            Family::Ipv4 => 10,
            Family::Ipv6 => 20,
        };
        base + match set {
            CLAIMED => 1,
            TRIED => 2,
            _ => 3,
        }
    }
}

fn load(base: Base, offset: u32, len: u32, dreg: Reg) -> Expr {
    Expr::Load {
        base,
        offset,
        len,
        dreg,
    }
}

fn cmp(op: CmpOp, data: &[u8]) -> Expr {
    Expr::Cmp {
        sreg: Reg::R1,
        op,
        data: data.to_vec(),
    }
}

fn meta(key: MetaKey) -> Expr {
    Expr::Meta { key, dreg: Reg::R1 }
}

/// "The packet came to this host's link-layer address" (PACKET_HOST is 0).
fn pkttype_is_host() -> [Expr; 2] {
    [meta(MetaKey::PktType), cmp(CmpOp::Eq, &[0])]
}

fn pkttype_not_host() -> [Expr; 2] {
    [meta(MetaKey::PktType), cmp(CmpOp::Neq, &[0])]
}

/// conntrack knows the connection: state established or related.
fn known() -> [Expr; 3] {
    [
        Expr::CtState { dreg: Reg::R1 },
        Expr::Bitwise {
            sreg: Reg::R1,
            dreg: Reg::R1,
            mask: 6u32.to_ne_bytes().to_vec(),
            xor: vec![0; 4],
        },
        cmp(CmpOp::Neq, &[0; 4]),
    ]
}

fn verdict(v: Verdict) -> Expr {
    Expr::Verdict(v)
}

fn prefix_match(layout: &Layout, net: &IpNet) -> Vec<Expr> {
    let (addr, mask): (Vec<u8>, Vec<u8>) = match net {
        IpNet::V4(n) => (n.network().octets().to_vec(), n.netmask().octets().to_vec()),
        IpNet::V6(n) => (n.network().octets().to_vec(), n.netmask().octets().to_vec()),
    };
    let mut exprs = vec![load(Base::Network, layout.daddr, layout.addr_len, Reg::R1)];
    if net.prefix_len() < net.max_prefix_len() {
        exprs.push(Expr::Bitwise {
            sreg: Reg::R1,
            dreg: Reg::R1,
            mask,
            xor: vec![0; addr.len()],
        });
    }
    exprs.push(cmp(CmpOp::Eq, &addr));
    exprs
}

struct Out {
    batch: Batch,
    steps: Vec<Step>,
}

impl Out {
    fn new(first_seq: u32) -> Out {
        Out {
            batch: Batch::new(first_seq),
            steps: Vec::new(),
        }
    }

    fn push(&mut self, kind: MsgType, family: Family, flags: u16, attrs: Attrs, step: String) {
        self.batch.push(kind, family, flags, attrs);
        self.steps.push(step);
    }

    /// Create-if-absent then delete: afterwards the table is gone whether or not it
    /// existed (what `nft destroy table` does on newer kernels).
    fn replace_table(&mut self, family: Family) {
        let name = Attrs::new().string(1, TABLE);
        let what = format!("table {} {TABLE}", family_name(family));
        self.push(
            MsgType::NewTable,
            family,
            NLM_F_CREATE,
            name.clone(),
            what.clone(),
        );
        self.push(MsgType::DelTable, family, 0, name, format!("delete {what}"));
    }

    fn table(&mut self, layout: &Layout, prefixes: &[IpNet], plan: &Plan) {
        let family = layout.family;
        let table = format!("table {} {TABLE}", layout.name());
        self.push(
            MsgType::NewTable,
            family,
            NLM_F_CREATE,
            Attrs::new().string(1, TABLE).be32(2, 0),
            table.clone(),
        );
        for (set, timeout) in [
            (CLAIMED, CLAIM_MS),
            (TRIED, TRIED_MS),
            (TRIED_RECENT, CLAIM_WAIT_MS),
        ] {
            // NFTA_SET_TABLE 1, NAME 2, FLAGS 3 (TIMEOUT 0x10 | EVAL 0x20: "dynamic,
            // timeout"), KEY_TYPE 4, KEY_LEN 5, DESC 9 { SIZE 1 }, ID 10, TIMEOUT 11.
            let attrs = Attrs::new()
                .string(1, TABLE)
                .string(2, set)
                .be32(3, 0x30)
                .be32(4, layout.key_type())
                .be32(5, layout.key_len())
                .nested(9, Attrs::new().be32(1, SET_SIZE))
                .be32(10, layout.set_id(set))
                .be64(11, timeout);
            self.push(
                MsgType::NewSet,
                family,
                NLM_F_CREATE,
                attrs,
                format!("set {set} of {table}"),
            );
        }
        for chain in [SECOND_CHANCE, RESCUE] {
            let attrs = Attrs::new().string(1, TABLE).string(3, chain);
            self.push(
                MsgType::NewChain,
                family,
                NLM_F_CREATE,
                attrs,
                format!("chain {chain} of {table}"),
            );
        }
        // NFTA_CHAIN_HOOK 4 { HOOKNUM 1 (NF_INET_PRE_ROUTING 0), PRIORITY 2 },
        // POLICY 5 (accept), TYPE 7.
        let hook = Attrs::new().be32(1, 0).be32(2, PRIORITY as u32);
        let base = Attrs::new()
            .string(1, TABLE)
            .string(3, PREROUTING)
            .nested(4, hook)
            .be32(5, 1)
            .string(7, "filter");
        self.push(
            MsgType::NewChain,
            family,
            NLM_F_CREATE,
            base,
            format!("chain {PREROUTING} of {table}"),
        );
        for (chain, rules) in [
            (SECOND_CHANCE, second_chance_rules(layout, &plan.links)),
            (RESCUE, rescue_rules(layout, plan)),
            (
                PREROUTING,
                prefixes
                    .iter()
                    .map(|net| {
                        let mut rule = prefix_match(layout, net);
                        rule.push(verdict(Verdict::Jump(SECOND_CHANCE.into())));
                        rule
                    })
                    .collect(),
            ),
        ] {
            for (n, rule) in rules.iter().enumerate() {
                // NFTA_RULE_TABLE 1, CHAIN 2, EXPRESSIONS 4.
                let attrs = Attrs::new()
                    .string(1, TABLE)
                    .string(2, chain)
                    .nested(4, list(rule));
                self.push(
                    MsgType::NewRule,
                    family,
                    NLM_F_CREATE | NLM_F_APPEND,
                    attrs,
                    format!("rule {} of chain {chain} of {table}", n + 1),
                );
            }
        }
    }
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ip",
        Family::Ipv6 => "ip6",
    }
}

fn lookup(layout: &Layout, set: &str) -> Expr {
    Expr::Lookup {
        set: set.into(),
        set_id: layout.set_id(set),
        sreg: Reg::R1,
    }
}

fn dynset(layout: &Layout, set: &str, op: SetOp, timeout_ms: u64) -> Expr {
    Expr::Dynset {
        set: set.into(),
        set_id: layout.set_id(set),
        op,
        sreg: Reg::R1,
        timeout_ms,
    }
}

fn rule(parts: Vec<Vec<Expr>>) -> Vec<Expr> {
    parts.into_iter().flatten().collect()
}

/// The rules of chain `second_chance`, in order (see the module's description).
fn second_chance_rules(layout: &Layout, links: &[Link]) -> Vec<Vec<Expr>> {
    let key = layout.flow_key();
    // 1. Known here, another node's copy: answer "mine" on the link it came from,
    // take it as sent here.
    let claims = layout.copies(links).into_iter().map(|copy| {
        rule(vec![
            known().to_vec(),
            copy_marked(layout, copy),
            vec![
                Expr::Data {
                    dreg: Reg::R1,
                    data: vec![0],
                },
                Expr::MetaSet {
                    key: MetaKey::PktType,
                    sreg: Reg::R1,
                },
                Expr::Counter,
                verdict(Verdict::Accept),
            ],
        ])
    });
    let head = vec![
        // Not TCP: not ours to decide.
        vec![
            meta(MetaKey::L4Proto),
            cmp(CmpOp::Neq, &[6]),
            verdict(Verdict::Return),
        ],
        // 1. Known here, sent here.
        rule(vec![
            known().to_vec(),
            pkttype_is_host().to_vec(),
            vec![verdict(Verdict::Accept)],
        ]),
    ];
    let tail = vec![
        // 2. SYN without ACK: a new connection, this node's.
        vec![
            load(Base::Transport, 13, 1, Reg::R1),
            Expr::Bitwise {
                sreg: Reg::R1,
                dreg: Reg::R1,
                mask: vec![0x12],
                xor: vec![0],
            },
            cmp(CmpOp::Eq, &[0x02]),
            verdict(Verdict::Return),
        ],
        // 3. Another node's "mine".
        rule(vec![
            pkttype_not_host().to_vec(),
            vec![
                load(Base::Network, layout.ttl, 1, Reg::R1),
                cmp(CmpOp::Eq, &[0]),
            ],
            key.clone(),
            vec![
                dynset(layout, CLAIMED, SetOp::Update, 0),
                verdict(Verdict::Drop),
            ],
        ]),
        // 3. Another node's copy of a connection unknown here.
        rule(vec![
            pkttype_not_host().to_vec(),
            vec![verdict(Verdict::Drop)],
        ]),
        // 4. Claimed by another node, or still waiting for a claim: copy it.
        rule(vec![
            key.clone(),
            vec![
                lookup(layout, CLAIMED),
                verdict(Verdict::Goto(RESCUE.into())),
            ],
        ]),
        rule(vec![
            key.clone(),
            vec![
                lookup(layout, TRIED_RECENT),
                verdict(Verdict::Goto(RESCUE.into())),
            ],
        ]),
        // 4. Nobody claimed it: the kernel answers as without oxlb.
        rule(vec![
            key.clone(),
            vec![
                lookup(layout, TRIED),
                Expr::Counter,
                verdict(Verdict::Return),
            ],
        ]),
        // 4. First seen: copy it and wait for a claim.
        rule(vec![
            key,
            vec![
                dynset(layout, TRIED, SetOp::Add, TRIED_MS),
                dynset(layout, TRIED_RECENT, SetOp::Add, CLAIM_WAIT_MS),
                verdict(Verdict::Goto(RESCUE.into())),
            ],
        ]),
    ];
    head.into_iter().chain(claims).chain(tail).collect()
}

/// A copy marked as "mine" (TTL 0 once sent), the packet's own TTL put back after.
/// The copy's interface match (IPv4) comes first, so no other link's copy is marked.
fn copy_marked(layout: &Layout, copy: Vec<Expr>) -> Vec<Expr> {
    let split = copy
        .iter()
        .position(|e| matches!(e, Expr::Data { .. }))
        .unwrap_or(0);
    let (matching, sending) = copy.split_at(split);
    rule(vec![
        matching.to_vec(),
        layout.mark_copy(),
        sending.to_vec(),
        vec![layout.write_ttl(Reg::R2)],
    ])
}

/// The rules of chain `rescue`: copies under the rate, to every node of the link.
fn rescue_rules(layout: &Layout, plan: &Plan) -> Vec<Vec<Expr>> {
    let limit = vec![
        Expr::LimitOver {
            per_second: u64::from(plan.copies_per_second.max(1)),
            burst: (plan.copies_per_second / 10).max(5),
        },
        verdict(Verdict::Drop),
    ];
    std::iter::once(limit)
        .chain(
            layout
                .copies(&plan.links)
                .into_iter()
                .map(|copy| rule(vec![copy, vec![Expr::Counter, verdict(Verdict::Drop)]])),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_aggregated_per_family() {
        let plan = Plan::new(
            [
                "10.0.0.0/25".parse().unwrap(),
                "10.0.0.128/25".parse().unwrap(),
                "10.0.0.7/32".parse().unwrap(),
                "fd00::1/64".parse().unwrap(),
            ],
            100,
        );
        assert_eq!(plan.ipv4, vec!["10.0.0.0/24".parse::<Ipv4Net>().unwrap()]);
        assert_eq!(plan.ipv6, vec!["fd00::/64".parse::<Ipv6Net>().unwrap()]);
    }

    #[test]
    fn a_family_without_prefixes_only_loses_its_table() {
        let (batch, steps) = install(&Plan::new(["10.1.0.0/16".parse().unwrap()], 10), 1);
        assert_eq!(batch.acked().len(), steps.len());
        assert_eq!(steps[0], "table ip oxlb");
        assert_eq!(steps[1], "delete table ip oxlb");
        let v6: Vec<&Step> = steps.iter().filter(|s| s.contains("ip6")).collect();
        assert_eq!(v6, ["table ip6 oxlb", "delete table ip6 oxlb"]);
        let (_, removal) = remove(1);
        assert_eq!(removal.len(), 4);
    }

    #[test]
    fn the_key_type_is_nfts_concatenation() {
        // nft shows `type ipv4_addr . inet_service . ipv4_addr . inet_service`.
        assert_eq!(Layout::V4.key_type(), (((7 << 6 | 13) << 6 | 7) << 6) | 13);
        assert_eq!(Layout::V4.key_len(), 16);
        assert_eq!(Layout::V6.key_len(), 40);
    }
}
