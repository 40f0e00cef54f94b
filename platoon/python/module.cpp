// platoon's Python bindings (pybind11): the module platoon._platoon, which
// platoon/__init__.py re-exports. Zero-copy: parameters are the caller's
// numpy float32 arrays, and the central values are a numpy view of the
// mapped segment. The GIL is released around every call that may wait
// (requests, syncs, locks, serve()) and taken only to call into Python.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "platoon/collective/collective.hpp"
#include "platoon/common/error.hpp"
#include "platoon/common/params.hpp"
#include "platoon/lieutenant.hpp"
#include "platoon/shm/shared_segment.hpp"
#include "platoon/soldier.hpp"
#include "platoon/sync/sync_policy.hpp"
#include "platoon/sync/sync_rules.hpp"

namespace py = pybind11;
using nlohmann::json;

namespace platoon::python {

namespace {

// "list", "ndarray": a value's type, for messages.
std::string type_name(py::handle value) { return py::type::of(value).attr("__name__").cast<std::string>(); }

// ---- JSON <-> Python ----

json to_json(py::handle value, int depth = 0) {
  if (depth > 64) throw Error("a Python value nested more than 64 levels cannot become JSON");
  if (value.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(value)) return value.cast<bool>();
  if (py::isinstance<py::int_>(value)) return value.cast<std::int64_t>();
  if (py::isinstance<py::float_>(value)) return value.cast<double>();
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  if (py::isinstance<py::dict>(value)) {
    json out = json::object();
    for (auto item : value.cast<py::dict>()) {
      if (!py::isinstance<py::str>(item.first))
        throw Error(str_cat("a JSON object's keys are strings, not ", type_name(item.first)));
      out[item.first.cast<std::string>()] = to_json(item.second, depth + 1);
    }
    return out;
  }
  if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    json out = json::array();
    for (auto item : value) out.push_back(to_json(item, depth + 1));
    return out;
  }
  throw Error(str_cat("a ", type_name(value),
                      " cannot be sent as JSON (use None, bool, int, float, str, list, tuple or dict)"));
}

py::object to_python(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return py::none();
    case json::value_t::boolean: return py::bool_(value.get<bool>());
    case json::value_t::number_integer: return py::int_(value.get<std::int64_t>());
    case json::value_t::number_unsigned: return py::int_(value.get<std::uint64_t>());
    case json::value_t::number_float: return py::float_(value.get<double>());
    case json::value_t::string: return py::str(value.get_ref<const std::string&>());
    case json::value_t::array: {
      py::list out;
      for (const json& item : value) out.append(to_python(item));
      return out;
    }
    case json::value_t::object: {
      py::dict out;
      for (const auto& [key, item] : value.items()) out[py::str(key)] = to_python(item);
      return out;
    }
    default: return py::none();
  }
}

// A request and its reply as Python values, sent with the GIL released
// (send_req, send_req_collective).
template <class Send>
py::object json_request(const py::object& req, const py::object& req_info, Send&& send) {
  const json r = to_json(req), info = to_json(req_info);
  json reply;
  {
    py::gil_scoped_release unlocked;
    reply = send(r, info);
  }
  return to_python(reply);
}

std::chrono::milliseconds seconds(double s) { return std::chrono::milliseconds(static_cast<long long>(s * 1000)); }

// ---- Parameters ----

// A named float32 array, checked: C-contiguous, writeable, at least one element.
ParamView param_of(const std::string& name, const py::handle& object) {
  if (!py::isinstance<py::array>(object))
    throw LayoutError(str_cat("parameter '", name, "' is a ", type_name(object),
                              ", not a numpy array"));
  py::array array = py::reinterpret_borrow<py::array>(object);
  if (!array.dtype().is(py::dtype::of<float>()))
    throw LayoutError(str_cat("parameter '", name, "' has dtype ", py::str(array.dtype()).cast<std::string>(),
                              ": platoon shares float32 arrays only (astype(numpy.float32))"));
  if (!(array.flags() & py::array::c_style))
    throw LayoutError(str_cat("parameter '", name, "' is not C-contiguous: sharing it would need a copy "
                              "(numpy.ascontiguousarray gives one to keep)"));
  if (!array.writeable()) throw LayoutError(str_cat("parameter '", name, "' is read-only"));
  std::vector<std::size_t> shape;
  for (py::ssize_t i = 0; i < array.ndim(); ++i) shape.push_back(static_cast<std::size_t>(array.shape(i)));
  if (shape.empty()) shape.push_back(1);
  return ParamView{name, static_cast<float*>(array.mutable_data()), shape};
}

// The memory of a float32 array that platoon writes into (read_center,
// all_reduce): C-contiguous and writeable, never a converted copy, which
// would take the result and drop it.
std::span<float> writeable_floats(const py::handle& object, const char* what) {
  if (!py::isinstance<py::array>(object))
    throw Error(str_cat(what, " needs a numpy float32 array, not a ", type_name(object)));
  py::array array = py::reinterpret_borrow<py::array>(object);
  if (!array.dtype().is(py::dtype::of<float>()))
    throw Error(str_cat(what, " needs a float32 array, not ", py::str(array.dtype()).cast<std::string>(),
                        ": the result would go into a converted copy"));
  if (!(array.flags() & py::array::c_style)) throw Error(str_cat(what, " needs a C-contiguous array"));
  if (!array.writeable()) throw Error(str_cat(what, " needs a writeable array"));
  return {static_cast<float*>(array.mutable_data()), static_cast<std::size_t>(array.size())};
}

// What a synchronous worker shares with its group, and the arrays behind
// it, kept alive as long as this object (which the Soldier keeps).
struct PyGroupState {
  Soldier::GroupState state;
  py::list arrays;
};

// The named arrays of a dict (in its order) or of a list of (name, array).
std::vector<std::pair<std::string, py::object>> named_arrays(const py::object& params) {
  std::vector<std::pair<std::string, py::object>> out;
  if (py::isinstance<py::dict>(params)) {
    for (auto item : params.cast<py::dict>())
      out.emplace_back(py::str(item.first).cast<std::string>(), py::reinterpret_borrow<py::object>(item.second));
  } else {
    for (auto item : params) {
      auto pair = item.cast<py::tuple>();
      if (pair.size() != 2) throw Error("parameters are a dict {name: array} or a list of (name, array) pairs");
      out.emplace_back(pair[0].cast<std::string>(), py::reinterpret_borrow<py::object>(pair[1]));
    }
  }
  return out;
}

// A fresh C++ rule for the Soldier to own, from the Python rule object.
std::unique_ptr<SyncRule> own_rule(const py::object& rule) {
  if (py::isinstance<EASGD>(rule)) return std::make_unique<EASGD>(rule.cast<EASGD&>().alpha());
  if (py::isinstance<ASGD>(rule)) return std::make_unique<ASGD>();
  if (py::isinstance<WeightedAverage>(rule)) {
    const WeightedAverage& w = rule.cast<WeightedAverage&>();
    return std::make_unique<WeightedAverage>(w.alpha(), w.beta());
  }
  throw Error(str_cat("init_shared_params needs platoon.EASGD, platoon.ASGD or platoon.WeightedAverage, not ",
                      type_name(rule)));
}

// ---- Lieutenant, subclassable in Python ----

class PyLieutenant : public Lieutenant {
 public:
  using Lieutenant::Lieutenant;

  json handle_control(const json& req, const WorkerInfo& worker, const json& req_info) override {
    py::gil_scoped_acquire gil;
    try {
      py::function override = py::get_override(static_cast<const Lieutenant*>(this), "handle_control");
      if (!override) throw Error("a platoon.Lieutenant subclass must define handle_control(req, worker, req_info)");
      return to_json(override(to_python(req), worker, to_python(req_info)));
    } catch (py::error_already_set& e) {
      // The Python error becomes the worker's error reply; nothing of it
      // outlives the GIL.
      throw std::runtime_error(e.what());
    }
  }
  void on_worker_joined(const WorkerInfo& worker) override { call_hook("on_worker_joined", worker); }
  void on_worker_left(const WorkerInfo& worker) override { call_hook("on_worker_left", worker); }
  void on_worker_lost(const WorkerInfo& worker, const std::string& reason) override {
    py::gil_scoped_acquire gil;
    if (py::function f = py::get_override(static_cast<const Lieutenant*>(this), "on_worker_lost")) {
      try {
        f(worker, reason);
      } catch (py::error_already_set& e) {
        log().error("on_worker_lost raised: ", e.what());
      }
      return;
    }
    Lieutenant::on_worker_lost(worker, reason);
  }
  void on_tick() override { call_hook("on_tick"); }

  using Lieutenant::log;

 private:
  template <class... Args>
  void call_hook(const char* name, const Args&... args) {
    py::gil_scoped_acquire gil;
    if (py::function f = py::get_override(static_cast<const Lieutenant*>(this), name)) {
      try {
        f(args...);
      } catch (py::error_already_set& e) {
        log().error(name, " raised: ", e.what());
      }
    }
  }
};

Lieutenant::Options lieutenant_options(const py::kwargs& kw) {
  // handle_signals stays on, as in C++: SIGINT (Ctrl-C) and SIGTERM end
  // serve() cleanly, read through a signalfd on the serving thread.
  Lieutenant::Options o;
  for (auto item : kw) {
    const std::string key = item.first.cast<std::string>();
    const py::handle v = item.second;
    if (key == "job_id") o.job_id = v.cast<std::string>();
    else if (key == "tick") o.tick = seconds(v.cast<double>());
    else if (key == "handle_signals") o.handle_signals = v.cast<bool>();
    else if (key == "worker_timeout") o.worker_timeout = seconds(v.cast<double>());
    else if (key == "job_key") o.job_key = v.cast<std::string>();
    else if (key == "write_job_key_file") o.write_job_key_file = v.cast<bool>();
    else if (key == "checkpoint_path") o.checkpoint_path = v.cast<std::string>();
    else if (key == "checkpoint_interval") o.checkpoint_interval = seconds(v.cast<double>());
    else if (key == "resume_path") o.resume_path = v.cast<std::string>();
    else if (key == "reclaim_dead_segments") o.reclaim_dead_segments = v.cast<bool>();
    else if (key == "group_size") o.group_size = v.cast<int>();
    else if (key == "param_server_endpoint") o.param_server_endpoint = v.cast<std::string>();
    else if (key == "remote_endpoint") o.remote_endpoint = v.cast<std::string>();
    else throw Error(str_cat("platoon.Lieutenant has no option '", key, "'"));
  }
  return o;
}

Soldier::Options soldier_options(const py::kwargs& kw) {
  Soldier::Options o;
  for (auto item : kw) {
    const std::string key = item.first.cast<std::string>();
    const py::handle v = item.second;
    if (key == "endpoint") o.endpoint = v.cast<std::string>();
    else if (key == "port") o.endpoint = loopback_endpoint(v.cast<int>());
    else if (key == "name") o.name = v.cast<std::string>();
    else if (key == "timeout") o.timeout = seconds(v.cast<double>());
    else if (key == "connect_timeout") o.connect_timeout = seconds(v.cast<double>());
    else if (key == "lock_timeout") o.lock_timeout = seconds(v.cast<double>());
    else if (key == "params_timeout") o.params_timeout = seconds(v.cast<double>());
    else if (key == "collective_timeout") o.collective_timeout = seconds(v.cast<double>());
    else if (key == "group_timeout") o.group_timeout = seconds(v.cast<double>());
    else if (key == "job_key") o.job_key = v.cast<std::string>();
    else if (key == "chunk_elements") o.chunk_elements = v.cast<std::size_t>();
    else if (key == "sync_threads") o.sync_threads = v.cast<std::size_t>();
    else if (key == "heartbeat_interval") o.heartbeat_interval = seconds(v.cast<double>());
    else if (key == "heartbeat_timeout") o.heartbeat_timeout = seconds(v.cast<double>());
    else if (key == "on_controller_lost") {
      const std::string what = v.cast<std::string>();
      if (what == "exit") o.on_controller_lost = Soldier::Options::OnControllerLost::exit_process;
      else if (what == "raise") o.on_controller_lost = Soldier::Options::OnControllerLost::throw_error;
      else throw Error(str_cat("on_controller_lost is 'exit' or 'raise', not '", what, "'"));
    } else if (key == "transport") {
      const std::string what = v.cast<std::string>();
      if (what == "automatic") o.transport = Soldier::Options::Transport::automatic;
      else if (what == "shared_memory") o.transport = Soldier::Options::Transport::shared_memory;
      else if (what == "tcp") o.transport = Soldier::Options::Transport::tcp;
      else throw Error(str_cat("transport is 'automatic', 'shared_memory' or 'tcp', not '", what, "'"));
    } else if (key == "param_server") o.param_server = v.cast<std::string>();
    else throw Error(str_cat("platoon.Soldier has no option '", key, "'"));
  }
  if (o.endpoint.empty()) throw Error("platoon.Soldier needs endpoint='tcp://HOST:PORT' or port=PORT");
  return o;
}

// `with soldier.lock():` holds every chunk lock of the center.
class CenterGuard {
 public:
  explicit CenterGuard(SegmentLock lock) : lock_(std::move(lock)) {}
  void release() { lock_.release(); }
  [[nodiscard]] bool held() const { return lock_.held(); }

 private:
  SegmentLock lock_;
};

}  // namespace
}  // namespace platoon::python

using namespace platoon;
using namespace platoon::python;

PYBIND11_MODULE(_platoon, m) {
  m.doc() = "platoon: EASGD and synchronous data parallelism over shared memory and ZeroMQ";

  // ---- Errors: platoon.Error and its subclasses ----
  py::object base = py::reinterpret_borrow<py::object>(PyExc_Exception);
  auto error = py::exception<Error>(m, "Error", base.ptr());
  auto timeout = py::exception<TimeoutError>(m, "TimeoutError", error.ptr());
  auto protocol_error = py::exception<ProtocolError>(m, "ProtocolError", error.ptr());
  auto error_reply = py::exception<ErrorReply>(m, "ErrorReply", protocol_error.ptr());
  auto layout = py::exception<LayoutError>(m, "LayoutError", error.ptr());
  auto resource = py::exception<ResourceError>(m, "ResourceError", error.ptr());
  auto file = py::exception<FileError>(m, "FileError", error.ptr());
  auto peer_lost = py::exception<PeerLostError>(m, "PeerLostError", error.ptr());
  auto job_over = py::exception<JobOverError>(m, "JobOverError", error.ptr());
  py::register_exception_translator([](std::exception_ptr p) {
    // Most derived first; ErrorReply carries its kind.
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ErrorReply& e) {
      py::object type = py::module_::import("platoon._platoon").attr("ErrorReply");
      py::object instance = type(e.what());
      instance.attr("kind") = e.kind();
      PyErr_SetObject(type.ptr(), instance.ptr());
    } catch (const TimeoutError& e) {
      PyErr_SetString(py::module_::import("platoon._platoon").attr("TimeoutError").ptr(), e.what());
    } catch (const LayoutError& e) {
      PyErr_SetString(py::module_::import("platoon._platoon").attr("LayoutError").ptr(), e.what());
    } catch (const ProtocolError& e) {
      PyErr_SetString(py::module_::import("platoon._platoon").attr("ProtocolError").ptr(), e.what());
    } catch (const ResourceError& e) {
      PyErr_SetString(py::module_::import("platoon._platoon").attr("ResourceError").ptr(), e.what());
    } catch (const FileError& e) {
      PyErr_SetString(py::module_::import("platoon._platoon").attr("FileError").ptr(), e.what());
    } catch (const PeerLostError& e) {
      PyErr_SetString(py::module_::import("platoon._platoon").attr("PeerLostError").ptr(), e.what());
    } catch (const JobOverError& e) {
      PyErr_SetString(py::module_::import("platoon._platoon").attr("JobOverError").ptr(), e.what());
    } catch (const Error& e) {
      PyErr_SetString(py::module_::import("platoon._platoon").attr("Error").ptr(), e.what());
    }
  });
  (void)timeout, (void)error_reply, (void)layout, (void)resource, (void)file, (void)peer_lost, (void)job_over;

  // ---- Sync rules ----
  py::class_<SyncRule>(m, "SyncRule", "A sync rule (EASGD, ASGD, WeightedAverage).")
      .def("describe", &SyncRule::describe);
  py::class_<EASGD, SyncRule>(m, "EASGD", "Elastic averaging: d = alpha * (local - center); local -= d; center += d.")
      .def(py::init<float>(), py::arg("alpha"))
      .def_property("alpha", &EASGD::alpha, &EASGD::set_alpha)
      .def("set_alpha", &EASGD::set_alpha, py::arg("alpha"));
  py::class_<ASGD, SyncRule>(m, "ASGD", "center += local - last; local = last = center.").def(py::init<>());
  py::class_<WeightedAverage, SyncRule>(m, "WeightedAverage", "center = alpha * center + beta * local; local = center.")
      .def(py::init<float, float>(), py::arg("alpha"), py::arg("beta"))
      .def_property_readonly("alpha", &WeightedAverage::alpha)
      .def_property_readonly("beta", &WeightedAverage::beta);

  // ---- Sync policies ----
  py::class_<SyncPolicy>(m, "SyncPolicy", "When to sync: call maybe_sync(soldier.sync_params) once per minibatch.")
      .def("should_sync", &SyncPolicy::should_sync)
      .def(
          "record_sync", [](SyncPolicy& p, double s) { p.record_sync(std::chrono::nanoseconds(static_cast<long long>(s * 1e9))); },
          py::arg("seconds"))
      .def(
          "maybe_sync", [](SyncPolicy& p, const py::function& sync) { return p.maybe_sync([&] { sync(); }); },
          py::arg("sync"), "Calls sync() when it is time, timing it; returns whether it did.")
      .def_property_readonly("syncs", &SyncPolicy::syncs)
      .def_property_readonly("minibatches", &SyncPolicy::minibatches);
  py::class_<EveryN, SyncPolicy>(m, "EveryN", "Syncs every n minibatches.").def(py::init<std::size_t>(), py::arg("n"));
  py::class_<RateLimited, SyncPolicy>(m, "RateLimited", "Syncs while the share of time spent syncing stays under maximum_rate.")
      .def(py::init<double, std::size_t, double>(), py::arg("maximum_rate"), py::arg("every_n") = 1,
           py::arg("decay") = 0.9);

  // ---- Workers as the controller sees them ----
  py::class_<WorkerInfo>(m, "WorkerInfo")
      .def_readonly("id", &WorkerInfo::id)
      .def_readonly("name", &WorkerInfo::name)
      .def_readonly("host", &WorkerInfo::host)
      .def_property_readonly("pid", [](const WorkerInfo& w) { return w.process.pid; })
      .def_readonly("creator", &WorkerInfo::creator)
      .def("label", &WorkerInfo::label)
      .def("__repr__", [](const WorkerInfo& w) { return str_cat("<platoon.WorkerInfo ", w.label(), ">"); });

  // ---- Lieutenant ----
  py::class_<Lieutenant, PyLieutenant>(m, "Lieutenant",
                                       "Subclass it and define handle_control(req, worker, req_info).")
      .def(py::init([](const py::kwargs& kw) { return std::make_unique<PyLieutenant>(lieutenant_options(kw)); }))
      .def("init_control", py::overload_cast<int>(&Lieutenant::init_control), py::arg("port"))
      .def("init_control", py::overload_cast<const std::string&>(&Lieutenant::init_control), py::arg("endpoint"))
      .def("serve", &Lieutenant::serve, py::call_guard<py::gil_scoped_release>(),
           "Serves until the job is over (the GIL is released meanwhile).")
      .def("stop", &Lieutenant::stop)
      .def("end_job", &Lieutenant::end_job)
      .def_property_readonly("job_ending", &Lieutenant::job_ending)
      .def_property_readonly("params_ready", &Lieutenant::params_ready)
      .def_property_readonly("endpoint", &Lieutenant::endpoint)
      .def_property_readonly("port", &Lieutenant::port)
      .def_property_readonly("job_id", &Lieutenant::job_id)
      .def_property_readonly("job_key", &Lieutenant::job_key)
      .def_property_readonly("param_server_endpoint", &Lieutenant::param_server_endpoint)
      .def("workers", &Lieutenant::workers);

  // ---- Synchronous groups ----
  py::enum_<ReduceOp>(m, "ReduceOp", "How all_reduce combines the ranks' values.")
      .value("sum", ReduceOp::sum)
      .value("mean", ReduceOp::mean);
  py::class_<GroupPosition>(m, "GroupPosition", "Where a worker stands in its group.")
      .def_readonly("epoch", &GroupPosition::epoch)
      .def_readonly("rank", &GroupPosition::rank)
      .def_readonly("size", &GroupPosition::size)
      .def("__repr__", [](const GroupPosition& p) {
        return str_cat("<platoon.GroupPosition epoch ", p.epoch, " rank ", p.rank, " of ", p.size, ">");
      });
  py::class_<PyGroupState>(m, "GroupState",
                           "What a synchronous worker shares with its group: parameters, optimizer state, progress.")
      .def(py::init([](const py::object& params, const py::object& state, const py::object& progress) {
             auto group = std::make_unique<PyGroupState>();
             for (const auto& [name, array] : named_arrays(params)) {
               group->state.params.push_back(param_of(name, array));
               group->arrays.append(array);
             }
             std::size_t i = 0;
             for (py::handle array : state) {
               group->state.state.push_back(writeable_floats(array, str_cat("GroupState state[", i++, "]").c_str()));
               group->arrays.append(array);
             }
             group->state.progress = to_json(progress);
             if (!group->state.progress.is_object()) throw Error("GroupState's progress is a dict, e.g. {\"step\": 0}");
             return group;
           }),
           py::arg("params"), py::arg("state") = py::list(), py::arg("progress") = py::dict())
      .def_property(
          "progress", [](const PyGroupState& g) { return to_python(g.state.progress); },
          [](PyGroupState& g, const py::object& value) {
            json progress = to_json(value);
            if (!progress.is_object()) throw Error("GroupState's progress is a dict, e.g. {\"step\": 0}");
            g.state.progress = std::move(progress);
          },
          "Where training stands (a copy: assign a whole dict to change it); rank 0's replaces the others' when a "
          "group forms.");

  // ---- Soldier ----
  py::class_<CenterGuard>(m, "CenterLock", "Every chunk lock of the center, until released.")
      .def("__enter__", [](CenterGuard& g) -> CenterGuard& { return g; }, py::return_value_policy::reference)
      .def("__exit__", [](CenterGuard& g, const py::args&) { g.release(); })
      .def("release", &CenterGuard::release)
      .def_property_readonly("held", &CenterGuard::held);

  py::class_<Soldier>(m, "Soldier", py::dynamic_attr(), "A worker of a platoon job.")
      .def(py::init([](const py::kwargs& kw) {
        Soldier::Options options = soldier_options(kw);
        py::gil_scoped_release unlocked;
        return std::make_unique<Soldier>(std::move(options));
      }))
      .def(
          "send_req",
          [](Soldier& s, const py::object& req, const py::object& req_info) {
            return json_request(req, req_info, [&](const json& r, const json& info) { return s.send_req(r, info); });
          },
          py::arg("req"), py::arg("req_info") = py::none())
      .def(
          "init_shared_params",
          [](py::object self, const py::object& params, const py::object& rule, bool cleanup) {
            Soldier& s = self.cast<Soldier&>();
            std::vector<ParamView> views;
            py::list kept;
            for (const auto& [name, array] : named_arrays(params)) {
              views.push_back(param_of(name, array));
              kept.append(py::make_tuple(name, array));
            }
            std::unique_ptr<SyncRule> owned = own_rule(rule);
            {
              py::gil_scoped_release unlocked;
              s.init_shared_params(std::move(views), std::move(owned), cleanup);
            }
            self.attr("_params") = kept;  // the (name, array) pairs live as long as the Soldier
          },
          py::arg("params"), py::arg("rule"), py::arg("cleanup") = true)
      .def("sync_params", &Soldier::sync_params, py::call_guard<py::gil_scoped_release>())
      .def("copy_center_to_local", &Soldier::copy_center_to_local, py::call_guard<py::gil_scoped_release>())
      .def(
          "read_center",
          [](Soldier& s, const py::object& out) {
            const std::span<float> span = writeable_floats(out, "read_center");
            py::gil_scoped_release unlocked;
            s.read_center(span);
          },
          py::arg("out"))
      .def(
          "lock",
          [](Soldier& s) {
            py::gil_scoped_release unlocked;
            return CenterGuard(s.lock());
          },
          "Holds every chunk lock: `with soldier.lock(): ...`")
      .def(
          "central_values",
          [](py::object self) {
            Soldier& s = self.cast<Soldier&>();
            const std::size_t size = s.central_values().size();  // Error before init or over TCP
            // The view has a mapping of its own, freed with the view: it stays
            // valid after close(), and after the job removed the segment's name.
            std::vector<ParamView> views;
            for (const auto& [name, array] : named_arrays(self.attr("_params"))) views.push_back(param_of(name, array));
            const Layout layout = Layout::of(views);
            std::unique_ptr<SharedSegment> mapping;
            {
              py::gil_scoped_release unlocked;
              mapping = std::make_unique<SharedSegment>(
                  SharedSegment::attach(s.segment_name(), layout, std::chrono::seconds(10)));
            }
            float* data = mapping->values().data();
            py::capsule owner(mapping.release(), [](void* p) { delete static_cast<SharedSegment*>(p); });
            return py::array_t<float>({static_cast<py::ssize_t>(size)}, {sizeof(float)}, data, owner);
          },
          "The central values as a float32 numpy view (shared memory only), with a mapping of its own that lives "
          "as long as the view; hold lock() while using it.")
      .def(
          "init_group",
          [](const py::object& self, PyGroupState& group) {
            Soldier& s = self.cast<Soldier&>();
            bool joined = false;
            {
              py::gil_scoped_release unlocked;
              joined = s.init_group(group.state);
            }
            return joined;
          },
          py::arg("group"), py::keep_alive<1, 2>(),
          "Joins the synchronous group; takes rank 0's parameters, state and progress. False: the job is ending.")
      .def("regroup", &Soldier::regroup, py::call_guard<py::gil_scoped_release>(),
           "After PeerLostError: joins the next epoch, with rank 0's state. False: the job is ending.")
      .def(
          "gradients",
          [](py::object self) {
            const std::span<float> g = self.cast<Soldier&>().gradients();
            // A view of this worker's group slot; it keeps the Soldier alive,
            // and close() refuses while it lives (close() unmaps the slot).
            py::array_t<float> view({static_cast<py::ssize_t>(g.size())}, {sizeof(float)}, g.data(), self);
            if (!py::hasattr(self, "_gradient_views")) self.attr("_gradient_views") = py::list();
            self.attr("_gradient_views").cast<py::list>().append(py::module_::import("weakref").attr("ref")(view));
            return view;
          },
          "The flat gradient buffer in shared memory, as a float32 numpy view that all_reduce reduces in place.")
      .def(
          "all_reduce",
          [](Soldier& s, const py::object& data, ReduceOp op) {
            const std::span<float> span = writeable_floats(data, "all_reduce");
            py::gil_scoped_release unlocked;
            s.all_reduce(span, op);
          },
          py::arg("data"), py::arg("op") = ReduceOp::mean,
          "Combines a float32 array over the group in place, the same bits on every rank. PeerLostError when a "
          "peer dies or stalls.")
      .def(
          "send_req_collective",
          [](Soldier& s, const py::object& req, const py::object& req_info) {
            return json_request(req, req_info,
                                [&](const json& r, const json& info) { return s.send_req_collective(r, info); });
          },
          py::arg("req"), py::arg("req_info") = py::none(),
          "A control request for the whole group (rank 0 asks); every rank gets the same reply. None: the job "
          "ended while regrouping.")
      .def_property_readonly("group_position", &Soldier::group_position)
      .def(
          "_time_syncs",
          [](Soldier& s, int n) {
            // The benchmark's reference: the same call, made from C++.
            std::vector<double> seconds;
            py::gil_scoped_release unlocked;
            for (int i = 0; i < n; ++i) {
              const auto t0 = std::chrono::steady_clock::now();
              s.sync_params();
              seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            }
            return seconds;
          },
          py::arg("n"), "Times n sync_params() calls made from C++ (for platoon's benchmark).")
      .def("rule", &Soldier::rule, py::return_value_policy::reference_internal)
      .def_property_readonly("worker_id", &Soldier::worker_id)
      .def_property_readonly("job_id", &Soldier::job_id)
      .def_property_readonly("first", &Soldier::first)
      .def_property_readonly("remote", &Soldier::remote)
      .def_property_readonly("controller_lost", &Soldier::controller_lost)
      .def(
          "close",
          [](py::object self) {
            if (py::hasattr(self, "_gradient_views"))
              for (py::handle ref : self.attr("_gradient_views").cast<py::list>())
                if (!ref().is_none())
                  throw Error("close() would unmap the gradients, and a numpy view of gradients() (or a slice of "
                              "one) is still alive: del it first");
            py::gil_scoped_release unlocked;
            self.cast<Soldier&>().close();
          },
          "Leaves the job (idempotent). Views of central_values() stay valid; views of gradients() must be gone.");
}
