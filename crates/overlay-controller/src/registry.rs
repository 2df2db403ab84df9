//! Every enclave's [`EnclaveView`], indexed by id and by name.

use std::collections::HashMap;

use proto::Name;

use crate::model::EnclaveView;

/// The enclaves the controller knows, as of the last applied change.
#[derive(Default)]
pub struct Registry {
    enclaves: HashMap<i64, EnclaveView>,
    by_name: HashMap<Name, i64>,
    member_enclave: HashMap<i64, i64>,
}

impl Registry {
    /// Adds an enclave unless it is already known.
    pub fn insert(&mut self, view: EnclaveView) {
        if self.enclaves.contains_key(&view.id) {
            return;
        }
        self.by_name.insert(view.name.clone(), view.id);
        for id in view.member_ids() {
            self.member_enclave.insert(id, view.id);
        }
        self.enclaves.insert(view.id, view);
    }

    /// Removes an enclave; returns it.
    pub fn remove(&mut self, id: i64) -> Option<EnclaveView> {
        let view = self.enclaves.remove(&id)?;
        self.by_name.remove(&view.name);
        for m in view.member_ids() {
            self.member_enclave.remove(&m);
        }
        Some(view)
    }

    /// The enclave with this id.
    pub fn get(&self, id: i64) -> Option<&EnclaveView> {
        self.enclaves.get(&id)
    }

    /// The enclave with this id, mutably.
    pub fn get_mut(&mut self, id: i64) -> Option<&mut EnclaveView> {
        self.enclaves.get_mut(&id)
    }

    /// The enclave with this name.
    pub fn by_name(&self, name: &Name) -> Option<&EnclaveView> {
        self.by_name.get(name).and_then(|id| self.enclaves.get(id))
    }

    /// The enclave a member belongs to.
    pub fn enclave_of(&self, member: i64) -> Option<&EnclaveView> {
        self.member_enclave
            .get(&member)
            .and_then(|e| self.enclaves.get(e))
    }

    /// Records which enclave a member is in (on join).
    pub fn set_member_enclave(&mut self, member: i64, enclave: i64) {
        self.member_enclave.insert(member, enclave);
    }

    /// Forgets a member's enclave (on removal).
    pub fn forget_member(&mut self, member: i64) {
        self.member_enclave.remove(&member);
    }

    /// Every enclave.
    pub fn iter(&self) -> impl Iterator<Item = &EnclaveView> {
        self.enclaves.values()
    }
}
