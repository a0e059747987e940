// Layer-range slices: a pipeline of slices gives bit-identical logits to one full run, and
// loading a slice touches only that slice's pages of the file.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <algorithm>
#include <cstring>
#include <filesystem>

#include "engine/forward.h"
#include "engine/synth.h"
#include "kernels/repack.h"
#include "tests/engine/testdata.h"

namespace zen::engine {
namespace {

namespace fs = std::filesystem;

std::string make_model(const std::string& name, const std::string& arch, Mix mix, int n_layer = 4) {
  fs::path p = fs::temp_directory_path() / ("zen-slices-" + std::to_string(::getpid()) + "-" + name + ".gguf");
  SynthParams s;
  s.arch = arch;
  s.n_embd = 256;
  s.n_layer = n_layer;
  s.n_head = 8;
  s.n_head_kv = 2;
  s.n_ff = 512;
  s.n_vocab = 300;
  s.mix = mix;
  s.threads = 2;
  write_synth_model(s, p.string());
  return p.string();
}

// Runs `ids` (prompt as a batch, then 4 single-token steps) through the given stage
// boundaries, passing hidden states from stage to stage like the cluster does.
std::vector<float> run_pipeline(const std::string& path, const std::vector<int>& bounds, const std::vector<int32_t>& ids) {
  auto file = GgufModelFile::open(path);
  std::vector<std::unique_ptr<Context>> stages;
  for (size_t s = 0; s + 1 < bounds.size(); ++s) {
    SliceSpec spec{bounds[s], bounds[s + 1], s == 0, s + 2 == bounds.size()};
    ContextParams cp;
    cp.n_ctx = 64;
    cp.n_threads = 2;
    stages.push_back(std::make_unique<Context>(Model::load(file, spec), cp));
  }
  std::vector<float> all;
  auto step = [&](std::vector<BatchRow> rows) {
    std::vector<float> h, next;
    for (size_t s = 0; s < stages.size(); ++s) {
      const bool last = s + 1 == stages.size();
      if (!last) for (auto& r : rows) r.output = true;  // a middle stage hands every row on
      stages[s]->forward(rows, s == 0 ? nullptr : h.data(), next, !last);
      h.swap(next);
    }
    all.insert(all.end(), h.begin(), h.end());
  };
  std::vector<BatchRow> prompt;
  for (size_t i = 0; i < ids.size(); ++i) prompt.push_back({0, static_cast<int32_t>(i), ids[i], true});
  step(prompt);
  for (int k = 0; k < 4; ++k) step({{0, static_cast<int32_t>(ids.size()) + k, (k * 13 + 5) % 300, true}});
  return all;
}

class SplitEqualsWhole : public ::testing::TestWithParam<std::tuple<std::string, Mix>> {};

TEST_P(SplitEqualsWhole, BitIdentical) {
  const auto [arch, mix] = GetParam();
  const std::string path = make_model(arch + "-" + mix_name(mix), arch, mix);
  const std::vector<int32_t> ids = {1, 7, 99, 45, 200, 3, 17, 280};
  const auto whole = run_pipeline(path, {0, 4}, ids);
  for (const auto& bounds : std::vector<std::vector<int>>{{0, 1, 4}, {0, 2, 4}, {0, 3, 4}, {0, 1, 2, 3, 4}, {0, 0, 4}}) {
    const auto split = run_pipeline(path, bounds, ids);
    ASSERT_EQ(split.size(), whole.size());
    EXPECT_EQ(0, std::memcmp(split.data(), whole.data(), whole.size() * sizeof(float)))
        << "bounds size " << bounds.size() << " max diff " << test::diff(split, whole).max_abs;
  }
  fs::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Archs, SplitEqualsWhole,
                         ::testing::Values(std::make_tuple("llama", Mix::F32), std::make_tuple("qwen2", Mix::Q8_0),
                                           std::make_tuple("qwen3", Mix::Q4_K_M)));

// Loading layers [2, 4) of an 8-layer file and running them never faults in the pages of
// the other layers' weights.
TEST(Slices, OnlyTheSlicePagesAreTouched) {
  const std::string path = make_model("pages", "llama", Mix::F32, 8);
  {  // evict the file from the page cache
    int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ::fdatasync(fd);
    ASSERT_EQ(0, ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED));
    ::close(fd);
  }
  auto file = GgufModelFile::open(path);
  auto model = Model::load(file, {2, 4, false, false});
  ContextParams cp;
  cp.n_ctx = 16;
  ::usleep(100000);  // let the slice's prefetch finish
  Context ctx(model, cp);
  std::vector<float> hidden(256 * 2, 0.5f), out;
  std::vector<BatchRow> rows = {{0, 0, 0, true}, {0, 1, 0, true}};
  ctx.forward(rows, hidden.data(), out);

  const auto bytes = file->map().bytes();
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  auto* base = const_cast<std::byte*>(bytes.data());
  std::vector<unsigned char> vec((bytes.size() + page - 1) / page);
  ASSERT_EQ(0, ::mincore(base, bytes.size(), vec.data()));
  const GgufFile& g = file->gguf();
  size_t in_slice_resident = 0, outside_resident = 0;
  for (const TensorInfo& t : g.tensors) {
    const size_t a = g.data_offset + t.offset, b = a + t.bytes;
    const bool mine = t.name.rfind("blk.2.", 0) == 0 || t.name.rfind("blk.3.", 0) == 0;
    // count only pages entirely inside this tensor (boundary pages are shared)
    for (size_t p = (a + page - 1) / page; (p + 1) * page <= b; ++p) {
      if (vec[p] & 1) (mine ? in_slice_resident : outside_resident)++;
    }

  }
  EXPECT_GT(in_slice_resident, 0u);
  EXPECT_EQ(outside_resident, 0u) << "pages of other layers were read";
  fs::remove(path);
}

// On a level with faster load-time layouts (AVX-512: Q4_K_X4, Q6_K_LANES), Q4_K and Q6_K
// matrices are repacked at load; ZEN_REPACK=0 keeps the file's layout. Every repacked matrix
// computes what the file's layout does up to float summation order, checked matrix by matrix
// on the same activations (1e-5 of the largest output; a misplaced level, scale or min costs
// far more). End to end the logits stay close, but not that close: a last-bit difference can
// move one activation across a Q8_K rounding step (about 1e-4 of a hidden state), which later
// layers carry to the logits; so there the bound is the same argmax and 1e-2 of the largest
// logit.
TEST(Slices, RepackedWeightsKeepTheLogits) {
  const std::string path = make_model("repack", "llama", Mix::Q4_K_M);
  const std::vector<int32_t> ids = {1, 17, 42, 99, 7, 250};
  ::setenv("ZEN_REPACK", "0", 1);
  const auto plain_model = Model::load(path);
  const std::vector<float> plain = run_pipeline(path, {0, 4}, ids);
  ::unsetenv("ZEN_REPACK");
  EXPECT_EQ(plain_model->repacked_count(), 0);
  EXPECT_EQ(plain_model->layers()[0].wq.mat.type, kernels::DType::Q4_K);
  const auto model = Model::load(path);
  const Weight& wq = model->layers()[0].wq;
  const auto target = kernels::repack_target(kernels::DType::Q4_K, kernels::active_isa(), wq.mat.rows);
  if (!target) {
    EXPECT_EQ(model->repacked_count(), 0);
    GTEST_SKIP() << "no load-time layout at " << kernels::isa_name(kernels::active_isa());
  }
  EXPECT_GT(model->repacked_count(), 0);
  EXPECT_EQ(wq.mat.type, *target);
  EXPECT_EQ(model->weight_bytes(), plain_model->weight_bytes());

  kernels::ThreadPool pool(2);
  kernels::MatmulScratch scratch;
  int compared = 0;
  auto same_matmul = [&](const Weight& repacked, const Weight& file) {
    if (repacked.mat.type == file.mat.type) return;
    ++compared;
    const int64_t rows = file.mat.rows, cols = file.mat.cols;
    std::vector<float> x(static_cast<size_t>(cols) * 6), got(static_cast<size_t>(rows) * 6), want(got.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) + 0.25f * std::cos(0.011f * static_cast<float>(i));
    for (const int64_t n : {1, 4, 6}) {
      kernels::matmul(repacked.mat, x.data(), n, got.data(), pool, scratch);
      kernels::matmul(file.mat, x.data(), n, want.data(), pool, scratch);
      float max_abs = 0;
      for (int64_t i = 0; i < rows * n; ++i) max_abs = std::max(max_abs, std::fabs(want[i]));
      for (int64_t i = 0; i < rows * n; ++i)
        ASSERT_NEAR(got[i], want[i], 1e-5f * max_abs) << file.name << " (" << kernels::type_name(repacked.mat.type) << ") rows " << n << " i " << i;
    }
  };
  for (size_t l = 0; l < model->layers().size(); ++l) {
    const Layer& a = model->layers()[l];
    const Layer& b = plain_model->layers()[l];
    for (auto w : {&Layer::wq, &Layer::wk, &Layer::wv, &Layer::wo, &Layer::ffn_gate, &Layer::ffn_up, &Layer::ffn_down}) same_matmul(a.*w, b.*w);
  }
  same_matmul(model->output(), plain_model->output());
  EXPECT_EQ(compared, model->repacked_count());

  const std::vector<float> got = run_pipeline(path, {0, 4}, ids);
  ASSERT_EQ(got.size(), plain.size());
  float max_abs = 0;
  for (float v : plain) max_abs = std::max(max_abs, std::fabs(v));
  size_t differ = 0;
  const size_t vocab = plain.size() / (ids.size() + 4);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], plain[i], 1e-2f * max_abs) << "logit " << i;
    differ += got[i] != plain[i];
  }
  for (size_t r = 0; r < got.size() / vocab; ++r) {
    const auto row = [&](const std::vector<float>& v) { return std::max_element(v.begin() + r * vocab, v.begin() + (r + 1) * vocab) - v.begin(); };
    EXPECT_EQ(row(got), row(plain)) << "argmax of row " << r;
  }
  EXPECT_GT(differ, 0u) << "the repacked kernels ran (their summation order differs)";
  fs::remove(path);
}

}  // namespace
}  // namespace zen::engine
