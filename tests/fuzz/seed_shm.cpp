// Writes seeds for the shared-memory and file fuzz targets, made by the
// library itself so that they follow the formats:
//   FOLDER/group/       a group segment (2 members), a slot, a shared data set (fuzz_group)
//   FOLDER/segment/     a parameter segment (fuzz_segment)
//   FOLDER/checkpoint/  a checkpoint file (fuzz_checkpoint)
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "platoon/collective/shm_collective.hpp"
#include "platoon/common/log.hpp"
#include "platoon/shm/checkpoint.hpp"
#include "platoon/shm/shared_dataset.hpp"
#include "platoon/shm/shared_segment.hpp"

namespace {

void write_bytes(const std::filesystem::path& path, const platoon::ShmObject& object) {
  std::ofstream(path, std::ios::binary)
      .write(static_cast<const char*>(object.data()), static_cast<std::streamsize>(object.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: seed_shm FOLDER\n";
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  for (const char* sub : {"group", "segment", "checkpoint"}) std::filesystem::create_directories(dir / sub);
  const std::string prefix = platoon::str_cat("platoon-fuzz-seed-", ::getpid());
  const platoon::ProcessId self = platoon::ProcessId::self();

  // Collective objects.
  platoon::ShmObject a = platoon::create_slot(prefix + ".slot-a", 16, self);
  platoon::ShmObject b = platoon::create_slot(prefix + ".slot-b", 16, self);
  platoon::GroupSegment group = platoon::GroupSegment::create(
      prefix + ".group-0", "fuzz", 0, {{self, a.name(), 16}, {self, b.name(), 16}}, self);
  write_bytes(dir / "group" / "group-2-ranks", platoon::ShmObject::open(group.name(), false));
  write_bytes(dir / "group" / "slot-16", a);
  {
    const platoon::SharedDataset data = platoon::SharedDataset::open_or_create(
        prefix, "seed", {{"files", {{{"path", "/data/x.idx"}, {"bytes", 64}, {"mtime_ns", 1}}}}},
        {{"x", "float32", {4, 4}}, {"y", "uint8", {4}}}, [](platoon::SharedDataset::Writer&) {}, self,
        std::chrono::seconds(5));
    write_bytes(dir / "group" / "dataset-2-arrays", platoon::ShmObject::open(data.name(), false));
    platoon::ShmObject::remove(data.name());
  }
  platoon::GroupSegment::remove(group.name());
  platoon::ShmObject::remove(a.name());
  platoon::ShmObject::remove(b.name());

  // A parameter segment and a checkpoint of two parameters.
  std::vector<float> w(12, 0.5f), bias(3, -1.0f);
  const platoon::Layout layout =
      platoon::Layout::of(std::vector<platoon::ParamView>{{"w", w.data(), {4, 3}}, {"b", bias.data(), {3}}});
  {
    platoon::SharedSegment segment = platoon::SharedSegment::create(prefix, "fuzz", layout, self, 8);
    segment.mark_ready();
    write_bytes(dir / "segment" / "segment-2-params", platoon::ShmObject::open(prefix, false));
    platoon::SharedSegment::remove(prefix);
  }
  std::vector<float> flat(w);
  flat.insert(flat.end(), bias.begin(), bias.end());
  platoon::save_checkpoint(dir / "checkpoint" / "checkpoint-2-params", layout, flat, {{"step", 3}});
  std::cout << "seeds written to " << dir.string() << "\n";
  return 0;
}
