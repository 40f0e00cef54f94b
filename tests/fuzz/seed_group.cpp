// Writes seeds for fuzz_group into a folder: the bytes of a real group
// segment (2 members), of a real slot and of a real shared data set, made by
// the library itself so that the seeds follow the format.
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <string>

#include "platoon/collective/shm_collective.hpp"
#include "platoon/common/log.hpp"
#include "platoon/shm/shared_dataset.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: seed_group FOLDER\n";
    return 2;
  }
  const std::string dir = argv[1];
  const std::string prefix = platoon::str_cat("platoon-fuzz-seed-", ::getpid());
  const platoon::ProcessId self = platoon::ProcessId::self();
  platoon::ShmObject a = platoon::create_slot(prefix + ".slot-a", 16, self);
  platoon::ShmObject b = platoon::create_slot(prefix + ".slot-b", 16, self);
  platoon::GroupSegment group = platoon::GroupSegment::create(
      prefix + ".group-0", "fuzz", 0, {{self, a.name(), 16}, {self, b.name(), 16}}, self);
  const platoon::ShmObject mapped = platoon::ShmObject::open(group.name(), false);
  std::ofstream(dir + "/group-2-ranks", std::ios::binary)
      .write(static_cast<const char*>(mapped.data()), static_cast<std::streamsize>(mapped.size()));
  std::ofstream(dir + "/slot-16", std::ios::binary)
      .write(static_cast<const char*>(a.data()), static_cast<std::streamsize>(a.size()));
  {
    const platoon::SharedDataset data = platoon::SharedDataset::open_or_create(
        prefix, "seed", {{"files", {{{"path", "/data/x.idx"}, {"bytes", 64}, {"mtime_ns", 1}}}}},
        {{"x", "float32", {4, 4}}, {"y", "uint8", {4}}}, [](platoon::SharedDataset::Writer&) {}, self,
        std::chrono::seconds(5));
    const platoon::ShmObject raw = platoon::ShmObject::open(data.name(), false);
    std::ofstream(dir + "/dataset-2-arrays", std::ios::binary)
        .write(static_cast<const char*>(raw.data()), static_cast<std::streamsize>(raw.size()));
    platoon::ShmObject::remove(data.name());
  }
  platoon::GroupSegment::remove(group.name());
  platoon::ShmObject::remove(a.name());
  platoon::ShmObject::remove(b.name());
  std::cout << "seeds written: " << mapped.size() << " and " << a.size() << " bytes\n";
  return 0;
}
