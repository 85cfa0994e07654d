//! The nf_tables expressions the second-chance ruleset is made of, encoded as the
//! kernel reads them (linux/netfilter/nf_tables.h; `nft --debug=netlink` prints the
//! same expressions in the form quoted in the comments).

use crate::netlink::Attrs;

/// Registers (`enum nft_registers`): the verdict register, the four 16-byte ones and
/// the 32-bit views of them (NFT_REG32_00 = 8 starts where NFT_REG_1 starts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(pub u32);

impl Reg {
    pub const VERDICT: Reg = Reg(0);
    pub const R1: Reg = Reg(1);
    pub const R2: Reg = Reg(2);
    pub const R3: Reg = Reg(3);
    pub const R4: Reg = Reg(4);

    /// The 32-bit register `n` words into the register file (concatenated keys).
    pub fn word(n: u32) -> Reg {
        Reg(8 + n)
    }
}

/// Where `payload` reads or writes (`enum nft_payload_bases`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Network = 1,
    Transport = 2,
}

/// `meta` keys (`enum nft_meta_keys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    Iif = 4,
    L4Proto = 16,
    PktType = 19,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq = 0,
    Neq = 1,
}

/// Verdicts (`NF_DROP`, `NF_ACCEPT`, `enum nft_verdicts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Drop,
    Accept,
    Return,
    Jump(String),
    Goto(String),
}

impl Verdict {
    fn code(&self) -> i32 {
        match self {
            Verdict::Drop => 0,
            Verdict::Accept => 1,
            Verdict::Jump(_) => -3,
            Verdict::Goto(_) => -4,
            Verdict::Return => -5,
        }
    }
}

/// `dynset` operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    /// Add if absent (an existing element keeps its expiry).
    Add = 0,
    /// Add, or refresh the expiry of an existing element.
    Update = 1,
}

/// The checksum a payload write keeps right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Csum {
    None,
    /// The Internet checksum at this offset of the header written (IPv4's is at 10).
    Inet {
        offset: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `[ payload load LEN b @ BASE header + OFFSET => reg DREG ]`
    Load {
        base: Base,
        offset: u32,
        len: u32,
        dreg: Reg,
    },
    /// `[ payload write reg SREG => LEN b @ BASE header + OFFSET csum_type .. ]`
    Write {
        base: Base,
        offset: u32,
        len: u32,
        sreg: Reg,
        csum: Csum,
    },
    /// `[ meta load KEY => reg DREG ]`
    Meta { key: MetaKey, dreg: Reg },
    /// `[ meta set KEY with reg SREG ]`
    MetaSet { key: MetaKey, sreg: Reg },
    /// `[ ct load state => reg DREG ]` (4 bytes of `NF_CT_STATE_*_BIT`).
    CtState { dreg: Reg },
    /// `[ cmp OP reg SREG DATA ]` (compares `data.len()` bytes).
    Cmp { sreg: Reg, op: CmpOp, data: Vec<u8> },
    /// `[ bitwise reg DREG = ( reg SREG & MASK ) ^ XOR ]`
    Bitwise {
        sreg: Reg,
        dreg: Reg,
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    /// `[ immediate reg DREG DATA ]`
    Data { dreg: Reg, data: Vec<u8> },
    /// `[ immediate reg 0 VERDICT ]`
    Verdict(Verdict),
    /// `[ lookup reg SREG set NAME ]`
    Lookup { set: String, set_id: u32, sreg: Reg },
    /// `[ dynset OP reg_key SREG set NAME timeout MS ]`
    Dynset {
        set: String,
        set_id: u32,
        op: SetOp,
        sreg: Reg,
        timeout_ms: u64,
    },
    /// `[ limit rate over RATE/second burst BURST type packets ]`: matches only packets
    /// beyond the rate (the inverted limit).
    LimitOver { per_second: u64, burst: u32 },
    /// `[ dup sreg_addr ADDR sreg_dev DEV ]`
    Dup { addr: Reg, dev: Reg },
    /// `[ counter ]`
    Counter,
}

fn data_value(bytes: &[u8]) -> Attrs {
    // NFTA_DATA_VALUE
    Attrs::new().bytes(1, bytes)
}

impl Expr {
    fn name(&self) -> &'static str {
        match self {
            Expr::Load { .. } | Expr::Write { .. } => "payload",
            Expr::Meta { .. } | Expr::MetaSet { .. } => "meta",
            Expr::CtState { .. } => "ct",
            Expr::Cmp { .. } => "cmp",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Data { .. } | Expr::Verdict(_) => "immediate",
            Expr::Lookup { .. } => "lookup",
            Expr::Dynset { .. } => "dynset",
            Expr::LimitOver { .. } => "limit",
            Expr::Dup { .. } => "dup",
            Expr::Counter => "counter",
        }
    }

    fn data(&self) -> Attrs {
        match self {
            // NFTA_PAYLOAD_DREG 1, BASE 2, OFFSET 3, LEN 4
            Expr::Load {
                base,
                offset,
                len,
                dreg,
            } => Attrs::new()
                .be32(1, dreg.0)
                .be32(2, *base as u32)
                .be32(3, *offset)
                .be32(4, *len),
            // NFTA_PAYLOAD_SREG 5, CSUM_TYPE 6, CSUM_OFFSET 7, CSUM_FLAGS 8
            Expr::Write {
                base,
                offset,
                len,
                sreg,
                csum,
            } => {
                let (kind, at) = match csum {
                    Csum::None => (0, 0),
                    Csum::Inet { offset } => (1, *offset),
                };
                Attrs::new()
                    .be32(5, sreg.0)
                    .be32(2, *base as u32)
                    .be32(3, *offset)
                    .be32(4, *len)
                    .be32(6, kind)
                    .be32(7, at)
                    .be32(8, 0)
            }
            // NFTA_META_DREG 1, KEY 2, SREG 3
            Expr::Meta { key, dreg } => Attrs::new().be32(2, *key as u32).be32(1, dreg.0),
            Expr::MetaSet { key, sreg } => Attrs::new().be32(2, *key as u32).be32(3, sreg.0),
            // NFTA_CT_DREG 1, KEY 2 (NFT_CT_STATE 0)
            Expr::CtState { dreg } => Attrs::new().be32(2, 0).be32(1, dreg.0),
            // NFTA_CMP_SREG 1, OP 2, DATA 3
            Expr::Cmp { sreg, op, data } => Attrs::new()
                .be32(1, sreg.0)
                .be32(2, *op as u32)
                .nested(3, data_value(data)),
            // NFTA_BITWISE_SREG 1, DREG 2, LEN 3, MASK 4, XOR 5
            Expr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => Attrs::new()
                .be32(1, sreg.0)
                .be32(2, dreg.0)
                .be32(3, mask.len() as u32)
                .nested(4, data_value(mask))
                .nested(5, data_value(xor)),
            // NFTA_IMMEDIATE_DREG 1, DATA 2
            Expr::Data { dreg, data } => Attrs::new().be32(1, dreg.0).nested(2, data_value(data)),
            Expr::Verdict(verdict) => {
                // NFTA_VERDICT_CODE 1, NFTA_VERDICT_CHAIN 2, inside NFTA_DATA_VERDICT 2.
                let mut inner = Attrs::new().be32(1, verdict.code() as u32);
                if let Verdict::Jump(chain) | Verdict::Goto(chain) = verdict {
                    inner = inner.string(2, chain);
                }
                Attrs::new()
                    .be32(1, Reg::VERDICT.0)
                    .nested(2, Attrs::new().nested(2, inner))
            }
            // NFTA_LOOKUP_SET 1, SREG 2, SET_ID 4
            Expr::Lookup { set, set_id, sreg } => {
                Attrs::new().string(1, set).be32(2, sreg.0).be32(4, *set_id)
            }
            // NFTA_DYNSET_SET_NAME 1, SET_ID 2, OP 3, SREG_KEY 4, TIMEOUT 6
            Expr::Dynset {
                set,
                set_id,
                op,
                sreg,
                timeout_ms,
            } => Attrs::new()
                .string(1, set)
                .be32(2, *set_id)
                .be32(3, *op as u32)
                .be32(4, sreg.0)
                .be64(6, *timeout_ms),
            // NFTA_LIMIT_RATE 1, UNIT 2 (seconds), BURST 3, TYPE 4 (packets), FLAGS 5 (INV)
            Expr::LimitOver { per_second, burst } => Attrs::new()
                .be64(1, *per_second)
                .be64(2, 1)
                .be32(3, *burst)
                .be32(4, 0)
                .be32(5, 1),
            // NFTA_DUP_SREG_ADDR 1, SREG_DEV 2
            Expr::Dup { addr, dev } => Attrs::new().be32(1, addr.0).be32(2, dev.0),
            Expr::Counter => Attrs::new(),
        }
    }

    /// The expression as one element of NFTA_RULE_EXPRESSIONS: NFTA_EXPR_NAME 1,
    /// NFTA_EXPR_DATA 2.
    pub fn encode(&self) -> Attrs {
        let data = self.data();
        let attrs = Attrs::new().string(1, self.name());
        if matches!(self, Expr::Counter) {
            attrs
        } else {
            attrs.nested(2, data)
        }
    }
}

/// A rule's expressions as NFTA_RULE_EXPRESSIONS wants them (NFTA_LIST_ELEM 1 each).
pub fn list(exprs: &[Expr]) -> Attrs {
    exprs
        .iter()
        .fold(Attrs::new(), |list, e| list.nested(1, e.encode()))
}
