// sim/: everything `zen sim` prints for one topology and workload: the plan, memory per device,
// the simulated speed, physics warnings and advice; as text or JSON.
#pragma once

#include <string>
#include <vector>

#include "sim/simulate.h"
#include "sim/topology.h"

namespace zen::sim {

struct Report {
  Topology topology;
  Workload workload;
  partition::Plan plan;
  SimResult single;   // one request alone: TTFT and single-stream speed
  SimResult loaded;   // workload.requests at once: aggregate speed and the busiest resource
  std::vector<std::string> warnings;
  std::vector<Advice> advice;  // best first
};

// Plans, simulates and advises. When the plan does not fit, single/loaded/advice stay empty
// except for advice that makes it fit.
Report make_report(const Topology&, const Workload&);
std::string format_text(const Report&);
std::string format_json(const Report&);

}  // namespace zen::sim
