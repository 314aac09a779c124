//! The accept loop's connection tasks, each at a slot number of its own.
//!
//! The loop keeps every task's handle, to cancel what is left at the
//! shutdown deadline, and frees it when the task says it is done (by its
//! slot number). A `HashMap<u64, Task>` of them kept a 17-byte bucket per
//! connection at a load of 50–87%, all of it touched (~29 bytes per
//! connection at 19,000); here a handle is 8 bytes in a vector, and a freed
//! slot is taken by the next connection. A slot is freed only on its own
//! task's notice, which it sends once, as it ends, so a number is never
//! taken for another task while the first still runs.

use async_executor::Task;

#[derive(Default)]
pub(crate) struct TaskSlab {
    slots: Vec<Option<Task<()>>>,
    /// Freed slots, taken last freed first.
    free: Vec<u32>,
    len: usize,
}

impl TaskSlab {
    /// The slot number the next [`TaskSlab::insert`] uses, for the task
    /// to be told before it is spawned.
    pub(crate) fn next_id(&self) -> u32 {
        match self.free.last() {
            Some(&i) => i,
            None => u32::try_from(self.slots.len()).expect("fewer than 2^32 connections at once"),
        }
    }

    /// Keeps `task` at [`TaskSlab::next_id`]'s slot.
    pub(crate) fn insert(&mut self, task: Task<()>) {
        match self.free.pop() {
            Some(i) => self.slots[i as usize] = Some(task),
            None => self.slots.push(Some(task)),
        }
        self.len += 1;
    }

    /// Forgets the task at `id` (it has ended); an unknown `id` is ignored.
    pub(crate) fn remove(&mut self, id: u64) {
        let Some(slot) = usize::try_from(id).ok().and_then(|i| self.slots.get_mut(i)) else {
            return;
        };
        if slot.take().is_some() {
            self.len -= 1;
            // Slot numbers fit a u32: there are fewer tasks than that.
            self.free.push(id as u32);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tasks still running.
    pub(crate) fn into_tasks(self) -> impl Iterator<Item = Task<()>> {
        self.slots.into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_slot_is_taken_by_the_next_task_and_only_running_tasks_are_left() {
        let ex = async_executor::Executor::new();
        let mut slab = TaskSlab::default();
        let ids: Vec<u32> = (0..3)
            .map(|_| {
                let id = slab.next_id();
                slab.insert(ex.spawn(async {}));
                id
            })
            .collect();
        assert_eq!(ids, [0, 1, 2]);
        slab.remove(1);
        slab.remove(1);
        slab.remove(99);
        assert_eq!(slab.len(), 2);
        assert_eq!(slab.next_id(), 1, "the freed slot first");
        slab.insert(ex.spawn(async {}));
        assert_eq!(slab.next_id(), 3);
        for id in [0, 1, 2] {
            slab.remove(id);
        }
        assert!(slab.is_empty());
        assert_eq!(slab.into_tasks().count(), 0);
    }
}
