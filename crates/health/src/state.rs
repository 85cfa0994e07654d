//! The rise/fall state machine of one check (pure).
//!
//! Start: `Pending` — nothing announced until a check has said yes, so a control-plane
//! VIP comes up only once the first API server passes (bootstrap). The first result
//! decides at once (a pass announces without waiting `rise` passes, a failure keeps it
//! withdrawn); after that, `fall` failures in a row withdraw and `rise` passes in a row
//! announce again (hysteresis against flapping).

/// Serialized into status reports; the label is the metric's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckState {
    /// No result yet: not announced.
    Pending,
    Up,
    Down,
}

impl CheckState {
    pub fn label(self) -> &'static str {
        match self {
            CheckState::Pending => "pending",
            CheckState::Up => "up",
            CheckState::Down => "down",
        }
    }

    /// Whether the Service may be announced by this node.
    pub fn passes(self) -> bool {
        self == CheckState::Up
    }
}

impl std::fmt::Display for CheckState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    rise: u32,
    fall: u32,
    state: CheckState,
    /// Results in a row that disagree with the state.
    streak: u32,
}

impl Machine {
    pub fn new(rise: u32, fall: u32) -> Machine {
        Machine {
            rise: rise.max(1),
            fall: fall.max(1),
            state: CheckState::Pending,
            streak: 0,
        }
    }

    pub fn state(&self) -> CheckState {
        self.state
    }

    /// Feeds one result; returns the new state when it changed.
    pub fn observe(&mut self, passed: bool) -> Option<CheckState> {
        let next = match (self.state, passed) {
            (CheckState::Pending, true) => CheckState::Up,
            (CheckState::Pending, false) => CheckState::Down,
            (CheckState::Up, true) | (CheckState::Down, false) => {
                self.streak = 0;
                return None;
            }
            (CheckState::Up, false) => {
                self.streak += 1;
                if self.streak < self.fall {
                    return None;
                }
                CheckState::Down
            }
            (CheckState::Down, true) => {
                self.streak += 1;
                if self.streak < self.rise {
                    return None;
                }
                CheckState::Up
            }
        };
        self.state = next;
        self.streak = 0;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(machine: &mut Machine, results: &[bool]) -> Vec<Option<CheckState>> {
        results.iter().map(|r| machine.observe(*r)).collect()
    }

    #[test]
    fn the_first_result_decides_at_once() {
        let mut m = Machine::new(3, 2);
        assert_eq!(m.state(), CheckState::Pending);
        assert!(!m.state().passes());
        assert_eq!(m.observe(true), Some(CheckState::Up));
        let mut m = Machine::new(3, 2);
        assert_eq!(m.observe(false), Some(CheckState::Down));
    }

    #[test]
    fn fall_failures_in_a_row_withdraw_and_a_pass_resets_the_count() {
        let mut m = Machine::new(3, 2);
        m.observe(true);
        assert_eq!(run(&mut m, &[false, true, false]), vec![None, None, None]);
        assert_eq!(m.state(), CheckState::Up);
        assert_eq!(m.observe(false), Some(CheckState::Down));
    }

    #[test]
    fn rise_passes_in_a_row_announce_again() {
        let mut m = Machine::new(3, 2);
        m.observe(false);
        assert_eq!(
            run(&mut m, &[true, true, false, true, true]),
            vec![None, None, None, None, None]
        );
        assert_eq!(m.observe(true), Some(CheckState::Up));
        assert!(m.state().passes());
    }

    #[test]
    fn counts_of_one_follow_every_result() {
        let mut m = Machine::new(1, 1);
        assert_eq!(
            run(&mut m, &[true, false, true, true, false]),
            vec![
                Some(CheckState::Up),
                Some(CheckState::Down),
                Some(CheckState::Up),
                None,
                Some(CheckState::Down)
            ]
        );
    }
}
