#include "kernels/ops.h"

namespace zen::kernels {
void fill_kquants_avx512(OpsTable& t) { (void)t; }
}  // namespace zen::kernels
