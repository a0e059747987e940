// Load-time layouts (kernels/repack.h): their definitions, portable entries and the repack.
// The AVX-512 kernels that read them are in kernels/x86/avx512/kquants.cpp (vec_dot) and
// kquants_gemm.cpp (tiles).
//
// Q4_K_LANES: Q4_K with each super-block's 128 level bytes reordered so that the AVX-512 VNNI
// kernels read four level vectors with no shuffle, and one 32-bit lane of all four belongs to
// one sub-block. Same 144-byte block: d, dmin and the 12-byte scale field are unchanged; only
// qs moves. Level t (0..31) of sub-block j (0..7), with unit u = t / 4, sits at byte
//   64 * (u / 4) + 8 * j + 4 * (u % 2) + t % 4,  low nibble if (u / 2) % 2 == 0, else high.
// So the low (high) nibbles of bytes 64h .. 64h+63 form level vector W[2h] (W[2h+1]), and
// 32-bit lane 2j + e of W[i] holds levels 8i + 4e .. 8i + 4e + 3 of sub-block j.
// Its activations are Q8_K in the matching order (relayout_q8_K_lanes16): activation
// 32j + 8i + m (m < 8) moves to byte 64i + 8j + m, so X[i] = bytes 64i .. 64i+63 meets W[i]
// lane for lane; bsums[j] becomes the sum of sub-block j's 32 activations (bsums[8..15] = 0).
//
// Q4_K_X4: Q4_K_LANES blocks with rows in groups of 4 (a group takes the bytes of its 4 rows),
// in the order a 4-row gemm tile reads them, two super-blocks per row at a time: blocks 2s and
// 2s+1 of rows 0, 1, 2, 3, then 2s+2 and 2s+3 of each, ...; a last odd block of each row comes
// alone. The tile then reads one sequential stream, and its level vectors hold all 4 rows,
// 16 bytes of each (kernels/repack.h). Each such step stores its blocks' d, dmin
// and scale fields together, repacked so that the tile decodes all of them with a few vector
// instructions instead of each row's in turn (kernels/repack.h has the step's layout). Only
// gemm reads it; its activations are Q4_K_LANES's.
//
// Q6_K_LANES: Q6_K (same 210-byte block, same scales and d) whose 6-bit levels (stored as
// q + 32) form four vectors W[i] with 32-bit lane l holding levels 4i .. 4i+3 of sub-block l
// (16 levels): the low 4 bits of W[i] byte p (= 4l + t % 4) are nibble i % 2 of ql[64 * (i / 2)
// + p], the high 2 bits are bits 2i, 2i+1 of qh[p]. Its activations: element 16l + 4i + m
// (m < 4) at byte 64i + 4l + m (relayout_q8_K_q6lanes; bsums unchanged).
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/half.h"
#include "kernels/ops.h"
#include "kernels/quant_k.h"
#include "kernels/repack.h"

namespace zen::kernels {
namespace {

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
void store_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

constexpr uint32_t kNibbles = 0x0f0f0f0fu;

// Q4_K stores sub-block j's levels in bytes 32 * (j / 2) .. +31, nibble j % 2; unit u of it is
// the 4 bytes at 32 * (j / 2) + 4u.
uint32_t q4_K_unit(const uint8_t* qs, int j, int u) { return (load_u32(qs + 32 * (j / 2) + 4 * u) >> (4 * (j % 2))) & kNibbles; }

void to_lanes(const uint8_t* qs, uint8_t* out) {
  for (int j = 0; j < 8; ++j)
    for (int h = 0; h < 2; ++h)
      for (int e = 0; e < 2; ++e)
        store_u32(out + 64 * h + 8 * j + 4 * e, q4_K_unit(qs, j, 4 * h + e) | q4_K_unit(qs, j, 4 * h + 2 + e) << 4);
}

void from_lanes(const uint8_t* qs, uint8_t* out) {
  std::memset(out, 0, QK_K / 2);
  for (int j = 0; j < 8; ++j)
    for (int u = 0; u < 8; ++u) {
      const uint32_t word = load_u32(qs + 64 * (u / 4) + 8 * j + 4 * (u % 2));
      const uint32_t levels = (word >> (4 * ((u / 2) % 2))) & kNibbles;
      uint8_t* dst = out + 32 * (j / 2) + 4 * u;
      store_u32(dst, load_u32(dst) | levels << (4 * (j % 2)));
    }
}

void dequantize_q4_K_lanes(const void* src, float* dst, int64_t n) {
  const auto* w = static_cast<const BlockQ4_K*>(src);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    BlockQ4_K plain = w[b];
    from_lanes(w[b].qs, plain.qs);
    kq::dequantize_q4_K(&plain, dst + QK_K * b, QK_K);
  }
}

// Reference dot product straight from the layout definition (exact integer sums per
// sub-block, one float step per super-block).
float vec_dot_q4_K_lanes(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ4_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  float sum = 0;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int32_t sumi = 0, summ = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      kq::scale_min_k4(j, w[b].scales, &sc, &m);
      int32_t s = 0;
      for (int t = 0; t < 32; ++t) {
        const int u = t / 4;
        const uint8_t byte = w[b].qs[64 * (u / 4) + 8 * j + 4 * (u % 2) + t % 4];
        const int level = ((u / 2) % 2 ? byte >> 4 : byte) & 0x0f;
        s += level * x[b].qs[64 * (t / 8) + 8 * j + t % 8];
      }
      sumi += sc * s;
      summ += m * x[b].bsums[j];
    }
    sum += x[b].d * (fp16_to_fp32(w[b].d) * static_cast<float>(sumi) - fp16_to_fp32(w[b].dmin) * static_cast<float>(summ));
  }
  return sum;
}

// Q6_K_LANES: the stored level (0..63) of element e.
int q6_lanes_level(const BlockQ6_K& b, int e) {
  const int l = e / 16, i = (e % 16) / 4, p = 4 * l + e % 4;
  return ((b.ql[64 * (i / 2) + p] >> (4 * (i % 2))) & 0x0f) | ((b.qh[p] >> (2 * i)) & 3) << 4;
}

// Four elements at a time (a repack reads every weight at load): elements e .. e+3 (e a
// multiple of 4) sit in Q6_K at 4 consecutive ql bytes (one nibble each) and 4 consecutive qh
// bytes (one bit pair each): for half h = e / 128 and k = e % 128, ql byte 64h + 32 * (k % 64
// >= 32) + k % 32, high nibble when k >= 64; qh byte 32h + k % 32, bits 2 * (k / 32).
void to_q6_lanes(const BlockQ6_K& in, BlockQ6_K& out) {
  uint32_t ql[32] = {}, qh[16] = {};
  for (int l = 0; l < 16; ++l)
    for (int i = 0; i < 4; ++i) {
      const int e = 16 * l + 4 * i, h = e / 128, k = e % 128;
      const uint32_t nib = (load_u32(in.ql + 64 * h + (k % 64 >= 32 ? 32 : 0) + k % 32) >> (k >= 64 ? 4 : 0)) & kNibbles;
      const uint32_t pair = (load_u32(in.qh + 32 * h + k % 32) >> (2 * (k / 32))) & 0x03030303u;
      ql[16 * (i / 2) + l] |= nib << (4 * (i % 2));  // ql' byte 64 (i / 2) + 4l: word 16 (i / 2) + l
      qh[l] |= pair << (2 * i);
    }
  std::memcpy(out.ql, ql, sizeof ql);
  std::memcpy(out.qh, qh, sizeof qh);
  std::memcpy(out.scales, in.scales, sizeof out.scales);
  out.d = in.d;
}

void dequantize_q6_K_lanes(const void* src, float* dst, int64_t n) {
  const auto* w = static_cast<const BlockQ6_K*>(src);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float d = fp16_to_fp32(w[b].d);
    for (int e = 0; e < QK_K; ++e) *dst++ = d * w[b].scales[e / 16] * static_cast<float>(q6_lanes_level(w[b], e) - 32);
  }
}

float vec_dot_q6_K_lanes(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ6_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  float sum = 0;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int32_t sumi = 0;
    for (int l = 0; l < 16; ++l) {
      int32_t s = 0;
      for (int t = 0; t < 16; ++t)
        s += (q6_lanes_level(w[b], 16 * l + t) - 32) * x[b].qs[64 * (t / 4) + 4 * l + t % 4];
      sumi += w[b].scales[l] * s;
    }
    sum += x[b].d * fp16_to_fp32(w[b].d) * static_cast<float>(sumi);
  }
  return sum;
}

void relayout_q8_K_q6lanes(void* xv, int64_t n) {
  auto* x = static_cast<BlockQ8_K*>(xv);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int8_t in[QK_K];
    std::memcpy(in, x[b].qs, QK_K);
    for (int l = 0; l < 16; ++l)
      for (int i = 0; i < 4; ++i) std::memcpy(x[b].qs + 64 * i + 4 * l, in + 16 * l + 4 * i, 4);
  }
}

}  // namespace

void relayout_q8_K_lanes16(void* xv, int64_t n) {
  auto* x = static_cast<BlockQ8_K*>(xv);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int8_t in[QK_K];
    std::memcpy(in, x[b].qs, QK_K);
    for (int j = 0; j < 8; ++j)
      for (int i = 0; i < 4; ++i) std::memcpy(x[b].qs + 64 * i + 8 * j, in + 32 * j + 8 * i, 8);
    for (int j = 0; j < 8; ++j) x[b].bsums[j] = static_cast<int16_t>(x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
    for (int j = 8; j < 16; ++j) x[b].bsums[j] = 0;
  }
}

X4Place x4_place(int64_t i, int64_t b, int64_t nb) {
  const int64_t s = b / 2;  // the tile's step; every step before it is a full one
  const int64_t offset = s * kX4StepBlocks * static_cast<int64_t>(sizeof(BlockQ4_K));
  if (2 * s + 1 < nb) return {offset, 8, static_cast<int>(2 * i + b % 2)};  // a pair of blocks per row
  return {offset, 4, static_cast<int>(i)};                                    // the lone last block of each row
}

namespace {

// One step of S blocks (in Q4_K_LANES form, block k at blocks[k]) in Q4_K_X4's layout.
void write_x4_step(const BlockQ4_K* const* blocks, int S, uint8_t* out) {
  uint8_t sc[8][8], mn[8][8];
  for (int k = 0; k < S; ++k)
    for (int j = 0; j < 8; ++j) kq::scale_min_k4(j, blocks[k]->scales, &sc[k][j], &mn[k][j]);
  auto* dd = reinterpret_cast<uint16_t*>(out);
  uint8_t *lo = out + 4 * S, *hi = out + 12 * S;
  for (int k = 0; k < S; ++k) {
    std::memcpy(dd + k, &blocks[k]->d, 2);
    std::memcpy(dd + S + k, &blocks[k]->dmin, 2);
    for (int v = 0; v < 8; ++v) std::memcpy(out + x4_piece(k, v, S), blocks[k]->qs + 16 * v, 16);
  }
  uint8_t min_at[64];
  for (int k = 0; k < S; ++k)
    for (int j = 0; j < 8; ++j) min_at[x4_min_slot(k, j, S)] = mn[k][j];
  const auto scale = [&](int p) { return sc[p / 8][p % 8]; };
  for (int p = 0; p < 8 * S; ++p) lo[p] = static_cast<uint8_t>((scale(p) & 15) | (min_at[p] & 15) << 4);
  for (int q = 0; q < 4 * S; ++q)
    hi[q] = static_cast<uint8_t>(scale(q) >> 4 | (scale(q + 4 * S) >> 4) << 2 | (min_at[q] >> 4) << 4 | (min_at[q + 4 * S] >> 4) << 6);
}

// Q4_K's 12-byte field from 8 six-bit scales and mins (kq::scale_min_k4 reads it back).
void pack_scales_mins(const uint8_t* sc, const uint8_t* mn, uint8_t* out) {
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>(sc[j] | (sc[j + 4] >> 4) << 6);
    out[j + 4] = static_cast<uint8_t>(mn[j] | (mn[j + 4] >> 4) << 6);
    out[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
  }
}

}  // namespace

BlockQ4_K x4_get(const void* group, int64_t i, int64_t b, int64_t nb) {
  const X4Place at = x4_place(i, b, nb);
  const int S = at.S, k = at.k;
  const uint8_t* step = static_cast<const uint8_t*>(group) + at.offset;
  const uint8_t *lo = step + 4 * S, *hi = step + 12 * S;
  BlockQ4_K out;
  std::memcpy(&out.d, step + 2 * k, 2);
  std::memcpy(&out.dmin, step + 2 * (S + k), 2);
  for (int v = 0; v < 8; ++v) std::memcpy(out.qs + 16 * v, step + x4_piece(k, v, S), 16);
  const auto top = [&](int p, int field) {  // field 0: scale, 1: min
    const int q = p % (4 * S), pos = 2 * (p / (4 * S)) + 4 * field;
    return static_cast<uint8_t>(((hi[q] >> pos) & 3) << 4);
  };
  uint8_t sc[8], mn[8];
  for (int j = 0; j < 8; ++j) {
    const int ps = 8 * k + j, pm = x4_min_slot(k, j, S);
    sc[j] = static_cast<uint8_t>((lo[ps] & 15) | top(ps, 0));
    mn[j] = static_cast<uint8_t>((lo[pm] >> 4) | top(pm, 1));
  }
  pack_scales_mins(sc, mn, out.scales);
  return out;
}

namespace {

// Portable gemm of Q4_K_X4: each row of a group gathered into plain Q4_K_LANES, then vec_dot.
void gemm_q4_K_x4(int64_t n, int64_t nr, int64_t nc, const void* w, size_t ws, const void* x, size_t xs, float* y,
                  size_t ldy) {
  if (nr % 4 != 0) throw std::invalid_argument("q4_K_x4: rows come in groups of 4");
  const int64_t nb = n / QK_K;
  std::vector<BlockQ4_K> row(static_cast<size_t>(nb));
  for (int64_t g = 0; g < nr / 4; ++g) {
    const uint8_t* group = static_cast<const uint8_t*>(w) + ws * static_cast<size_t>(4 * g);
    for (int64_t i = 0; i < 4; ++i) {
      for (int64_t b = 0; b < nb; ++b) row[static_cast<size_t>(b)] = x4_get(group, i, b, nb);
      for (int64_t c = 0; c < nc; ++c)
        y[ldy * static_cast<size_t>(c) + static_cast<size_t>(4 * g + i)] =
            vec_dot_q4_K_lanes(n, row.data(), static_cast<const uint8_t*>(x) + xs * static_cast<size_t>(c));
    }
  }
}

void repack_block(const BlockQ4_K& in, BlockQ4_K& out) {
  out.d = in.d;
  out.dmin = in.dmin;
  std::memcpy(out.scales, in.scales, K_SCALE_SIZE);
  to_lanes(in.qs, out.qs);
}

}  // namespace

void fill_lanes_scalar(OpsTable& t) {
  TypeOps& e = entry(t, DType::Q4_K_LANES);
  e.dequantize = dequantize_q4_K_lanes;
  e.vec_dot = vec_dot_q4_K_lanes;
  e.relayout_x = relayout_q8_K_lanes16;
  TypeOps& x4 = entry(t, DType::Q4_K_X4);
  x4.gemm = gemm_q4_K_x4;
  x4.relayout_x = relayout_q8_K_lanes16;
  TypeOps& q6 = entry(t, DType::Q6_K_LANES);
  q6.dequantize = dequantize_q6_K_lanes;
  q6.vec_dot = vec_dot_q6_K_lanes;
  q6.relayout_x = relayout_q8_K_q6lanes;
}

int row_group(DType t) { return t == DType::Q4_K_X4 ? 4 : 1; }

// Only a level with its own tiles gains (the portable entries are for correctness): the
// LANES types have no portable gemm, and a level that fills Q4_K_LANES fills Q4_K_X4 too.
std::optional<DType> repack_target(DType w_type, Isa isa, int64_t rows, bool row_access) {
  if (w_type == DType::Q6_K && ops(DType::Q6_K_LANES, isa).gemm) return DType::Q6_K_LANES;
  if (w_type != DType::Q4_K || !ops(DType::Q4_K_LANES, isa).gemm) return std::nullopt;
  return !row_access && rows % 4 == 0 ? DType::Q4_K_X4 : DType::Q4_K_LANES;
}

void repack(DType from, DType to, const void* src, void* dst, int64_t rows, int64_t n) {
  if (from == DType::Q6_K && to == DType::Q6_K_LANES) {
    const auto* in = static_cast<const BlockQ6_K*>(src);
    auto* out = static_cast<BlockQ6_K*>(dst);
    for (int64_t b = 0; b < rows * (n / QK_K); ++b) to_q6_lanes(in[b], out[b]);
    return;
  }
  if (from != DType::Q4_K || (to != DType::Q4_K_LANES && to != DType::Q4_K_X4))
    throw std::invalid_argument(std::string("no repacking from ") + type_name(from) + " to " + type_name(to));
  if (rows % row_group(to) != 0)
    throw std::invalid_argument(std::string(type_name(to)) + " needs a multiple of " + std::to_string(row_group(to)) + " rows");
  const int64_t nb = n / QK_K;
  const auto* in = static_cast<const BlockQ4_K*>(src);
  auto* out = static_cast<BlockQ4_K*>(dst);
  if (to == DType::Q4_K_LANES) {
    for (int64_t b = 0; b < rows * nb; ++b) repack_block(in[b], out[b]);
    return;
  }
  BlockQ4_K lanes[kX4StepBlocks];
  const BlockQ4_K* blocks[kX4StepBlocks];
  for (int64_t g = 0; g < rows / 4; ++g)
    for (int64_t b = 0; b < nb; b += 2) {
      const X4Place at = x4_place(0, b, nb);
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t e = 0; e < at.S / 4; ++e) {
          const int k = x4_place(i, b + e, nb).k;
          repack_block(in[(4 * g + i) * nb + b + e], lanes[k]);
          blocks[k] = &lanes[k];
        }
      write_x4_step(blocks, at.S, reinterpret_cast<uint8_t*>(out + 4 * g * nb) + at.offset);
    }
}

}  // namespace zen::kernels
