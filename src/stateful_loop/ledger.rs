//! Memory accounting for `StatefulLoop.buffer()`.
//!
//! A buffer is identified by its call position within one iteration; each
//! position accumulates the byte size of the frames appended to it and is
//! flushed when it reaches its limit (or when the loop says so, on the last
//! item). The frames themselves stay in Python; only their sizes come here.

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct PositionUsage {
    pub bytes: u64,
    pub frames: u64,
}

#[derive(Default, Debug)]
pub struct BufferLedger {
    positions: Vec<PositionUsage>,
}

impl BufferLedger {
    /// Records `frames` frames totalling `bytes` at `position` and tells
    /// whether the position must flush now. The limit is inclusive: reaching
    /// it flushes. The counters restart only once the caller confirms the
    /// flush with [`BufferLedger::flushed`], so a failed concatenation keeps
    /// the accounting right.
    pub fn add(
        &mut self,
        position: usize,
        bytes: u64,
        frames: u64,
        limit: u64,
        force: bool,
    ) -> bool {
        if position >= self.positions.len() {
            self.positions
                .resize(position + 1, PositionUsage::default());
        }
        let usage = &mut self.positions[position];
        usage.bytes = usage.bytes.saturating_add(bytes);
        usage.frames += frames;
        force || usage.bytes >= limit
    }

    /// The frames of `position` were handed out: restart its counters.
    pub fn flushed(&mut self, position: usize) {
        if let Some(usage) = self.positions.get_mut(position) {
            *usage = PositionUsage::default();
        }
    }

    pub fn usage(&self, position: usize) -> PositionUsage {
        self.positions.get(position).copied().unwrap_or_default()
    }

    /// Bytes held by all positions together.
    pub fn total_bytes(&self) -> u64 {
        self.positions.iter().map(|p| p.bytes).sum()
    }

    pub fn clear(&mut self) {
        self.positions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_on_reaching_the_limit() {
        let mut ledger = BufferLedger::default();
        assert!(!ledger.add(0, 140, 1, 420, false));
        assert!(!ledger.add(0, 140, 1, 420, false));
        assert_eq!(
            ledger.usage(0),
            PositionUsage {
                bytes: 280,
                frames: 2
            }
        );
        assert!(ledger.add(0, 140, 1, 420, false));
        assert_eq!(
            ledger.usage(0),
            PositionUsage {
                bytes: 420,
                frames: 3
            }
        );
        ledger.flushed(0);
        assert_eq!(ledger.usage(0), PositionUsage::default());
    }

    #[test]
    fn positions_are_independent_and_force_flushes() {
        let mut ledger = BufferLedger::default();
        assert!(!ledger.add(2, 10, 1, 100, false));
        assert!(!ledger.add(0, 50, 1, 100, false));
        assert_eq!(ledger.total_bytes(), 60);
        assert!(ledger.add(2, 0, 0, 100, true));
        ledger.flushed(2);
        assert_eq!(ledger.usage(2).bytes, 0);
        assert_eq!(ledger.usage(0).bytes, 50);
        assert!(
            ledger.add(1, 0, 0, 0, false),
            "a zero limit flushes every call"
        );
        ledger.clear();
        assert_eq!(ledger.total_bytes(), 0);
    }
}
