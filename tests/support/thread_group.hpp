// A collective group whose ranks are threads of this process, for tests of
// the collective layer and of what is built on it.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "platoon/collective/shm_collective.hpp"
#include "platoon/shm/shm_object.hpp"
#include "test_support.hpp"

namespace platoon::testing {

// A group segment of `ranks` members, all this process (one thread each),
// each with its own slot.
struct ThreadGroup {
  ThreadGroup(int ranks, std::size_t slot_elements) : name(unique_name("platoon-test-group")) {
    std::vector<GroupMember> members;
    for (int r = 0; r < ranks; ++r) {
      slots.push_back(create_slot(str_cat(name, ".slot", r), slot_elements, ProcessId::self()));
      members.push_back({ProcessId::self(), slots.back().name(), slot_elements});
    }
    segment.emplace(GroupSegment::create(name, "test-job", 7, members, ProcessId::self()));
  }
  ~ThreadGroup() {
    GroupSegment::remove(name);
    for (const ShmObject& slot : slots) ShmObject::remove(slot.name());
  }
  std::unique_ptr<ShmCollective> attach(int rank, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return ShmCollective::attach(name, rank, slots[rank], timeout);
  }
  std::string name;
  std::vector<ShmObject> slots;
  std::optional<GroupSegment> segment;
};

}  // namespace platoon::testing
