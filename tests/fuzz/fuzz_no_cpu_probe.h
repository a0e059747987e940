// Force-included into kernels/dispatch.cpp in the fuzz build only: clang 14 does not know
// every feature name the CPU probe asks about (e.g. "f16c"). The fuzz targets exercise
// parsers, not kernels, so the probe answers "no" and the portable kernels run.
#pragma once
#define __builtin_cpu_supports(feature) 0
