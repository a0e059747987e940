#include <atomic>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <string>

#include "kernels/ops.h"

#if defined(ZEN_ARCH_ARM) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace zen::kernels {
namespace {

bool cpu_has_avx2() {
#if defined(ZEN_ARCH_X86)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(ZEN_ARCH_X86)
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

// AArch64 Linux reports the optional extensions in the auxiliary vector (bit numbers from the
// kernel's uapi asm/hwcap.h).
bool cpu_has_neon_dotprod() {
#if defined(ZEN_ARCH_ARM) && defined(__linux__)
  constexpr unsigned long kHwcapAsimdDp = 1ul << 20;  // HWCAP_ASIMDDP
  return (::getauxval(AT_HWCAP) & kHwcapAsimdDp) != 0;
#else
  return false;
#endif
}

bool cpu_has_neon_i8mm() {
#if defined(ZEN_ARCH_ARM) && defined(__linux__)
  constexpr unsigned long kHwcap2I8mm = 1ul << 13;  // HWCAP2_I8MM
  return cpu_has_neon_dotprod() && (::getauxval(AT_HWCAP2) & kHwcap2I8mm) != 0;
#else
  return false;
#endif
}

struct Tables {
  OpsTable by_level[std::size(kAllIsas)];
  Tables() {
    OpsTable t{};
    fill_legacy_scalar(t);
    fill_kquants_scalar(t);
    fill_lanes_scalar(t);
    by_level[static_cast<int>(Isa::Scalar)] = t;
#if defined(ZEN_ARCH_X86)
    // The fill functions live in ISA-flagged files: call them only on a CPU that has the ISA
    // (even their table stores may be compiled to VEX/EVEX instructions).
    if (!cpu_has_avx2()) return;
    fill_legacy_avx2(t);
    fill_kquants_avx2(t);
    by_level[static_cast<int>(Isa::Avx2)] = t;
    if (!cpu_has_avx512()) return;
    fill_legacy_avx512(t);
    fill_kquants_avx512(t);
    fill_lanes_avx512(t);
    by_level[static_cast<int>(Isa::Avx512)] = t;
#endif
#if defined(ZEN_ARCH_ARM)
    fill_legacy_neon(t);
    fill_kquants_neon(t);
    by_level[static_cast<int>(Isa::Neon)] = t;
    if (!cpu_has_neon_dotprod()) return;
    fill_legacy_neon_dotprod(t);
    fill_kquants_neon_dotprod(t);
    by_level[static_cast<int>(Isa::NeonDotprod)] = t;
    if (!cpu_has_neon_i8mm()) return;
    fill_legacy_neon_i8mm(t);
    fill_kquants_neon_i8mm(t);
    by_level[static_cast<int>(Isa::NeonI8mm)] = t;
#endif
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

Isa initial_isa() {
  Isa isa = detected_isa();
  if (const char* env = std::getenv("ZEN_ISA")) {
    for (Isa cand : kAllIsas)
      if (std::strcmp(env, isa_name(cand)) == 0 && isa_supported(cand)) isa = cand;
  }
  return isa;
}

std::atomic<int>& active_level() {
  static std::atomic<int> level{static_cast<int>(initial_isa())};
  return level;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Neon: return "neon";
    case Isa::NeonDotprod: return "neon-dotprod";
    case Isa::NeonI8mm: return "neon-i8mm";
  }
  return "?";
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2: return cpu_has_avx2();
    case Isa::Avx512: return cpu_has_avx512();
    case Isa::Neon:
#if defined(ZEN_ARCH_ARM)
      return true;
#else
      return false;
#endif
    case Isa::NeonDotprod: return cpu_has_neon_dotprod();
    case Isa::NeonI8mm: return cpu_has_neon_i8mm();
  }
  return false;
}

Isa detected_isa() {
  if (isa_supported(Isa::NeonI8mm)) return Isa::NeonI8mm;
  if (isa_supported(Isa::NeonDotprod)) return Isa::NeonDotprod;
  if (isa_supported(Isa::Neon)) return Isa::Neon;
  if (isa_supported(Isa::Avx512)) return Isa::Avx512;
  if (isa_supported(Isa::Avx2)) return Isa::Avx2;
  return Isa::Scalar;
}

Isa active_isa() { return static_cast<Isa>(active_level().load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
  if (!isa_supported(isa)) throw std::runtime_error(std::string("ISA not supported by this CPU: ") + isa_name(isa));
  active_level().store(static_cast<int>(isa), std::memory_order_relaxed);
}

const OpsTable& ops_table() { return ops_table(active_isa()); }

const OpsTable& ops_table(Isa isa) {
  if (!isa_supported(isa)) throw std::runtime_error(std::string("ISA not supported by this CPU: ") + isa_name(isa));
  return tables().by_level[static_cast<int>(isa)];
}

}  // namespace zen::kernels
