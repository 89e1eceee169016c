//! Process-wide memories of immutable objects: data files are never
//! overwritten (each write names its own) and a record is known by its
//! entity tag, so what was read or written once stays true and spares a
//! request the next time. Each memory is bounded by a weight (bytes, or one
//! per entry); the oldest entries go first.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

pub struct Memo<V> {
    inner: Mutex<Inner<V>>,
    budget: usize,
    weight: fn(&V) -> usize,
}

struct Inner<V> {
    map: BTreeMap<String, V>,
    order: VecDeque<String>,
    used: usize,
}

impl<V: Clone> Memo<V> {
    pub const fn new(budget: usize, weight: fn(&V) -> usize) -> Self {
        Memo {
            inner: Mutex::new(Inner {
                map: BTreeMap::new(),
                order: VecDeque::new(),
                used: 0,
            }),
            budget,
            weight,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        // A panic elsewhere leaves the map consistent: entries are whole.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<V> {
        self.lock().map.get(key).cloned()
    }

    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.order.clear();
        inner.used = 0;
    }

    /// Keeps `value` under `key` unless it alone is over the budget.
    pub fn put(&self, key: &str, value: V) {
        let w = (self.weight)(&value);
        if w > self.budget {
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.map.remove(key) {
            inner.used -= (self.weight)(&old);
            inner.order.retain(|k| k != key);
        }
        while inner.used + w > self.budget {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.map.remove(&oldest) {
                inner.used -= (self.weight)(&old);
            }
        }
        inner.used += w;
        inner.order.push_back(key.to_string());
        inner.map.insert(key.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::Memo;

    #[test]
    fn oldest_entries_go_first_and_oversized_ones_are_not_kept() {
        let memo: Memo<Vec<u8>> = Memo::new(10, Vec::len);
        memo.put("a", vec![0; 4]);
        memo.put("b", vec![0; 4]);
        memo.put("c", vec![0; 4]);
        assert!(memo.get("a").is_none());
        assert_eq!(memo.get("b").map(|v| v.len()), Some(4));
        memo.put("huge", vec![0; 11]);
        assert!(memo.get("huge").is_none());
        // Replacing an entry does not count it twice: b (4) and c (6) fit.
        memo.put("c", vec![0; 6]);
        assert_eq!(memo.get("b").map(|v| v.len()), Some(4));
        assert_eq!(memo.get("c").map(|v| v.len()), Some(6));
        memo.put("c", vec![0; 7]);
        assert!(memo.get("b").is_none());
        assert_eq!(memo.get("c").map(|v| v.len()), Some(7));
    }
}
