#pragma once
// Process set-up every tool does first.

namespace ane {

// OpenMP threads that spin while they wait are fast on an idle machine and catastrophic on a
// busy one (two processes of spinning threads on two cores run a tiny model 50x slower).
// Sleeping waits cost nothing measurable on our kernels, but libgomp reads OMP_WAIT_POLICY
// only when it loads: so when the user has not chosen a policy, this sets "passive" and
// re-executes the program once. Returns normally otherwise. An ANE_MAX_CPU_ISA it does not
// know (see src/device/cpu_features.hpp) ends the program with a one-line error.
void prepare_runtime(int argc, char** argv);

}  // namespace ane
