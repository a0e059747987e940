// NEON + dotprod + i8mm (SMMLA) tile kernels.
#include <arm_neon.h>

#include "kernels/ops.h"

namespace zen::kernels {

void fill_legacy_neon_i8mm(OpsTable& t) {}
void fill_kquants_neon_i8mm(OpsTable& t) {}

}  // namespace zen::kernels
