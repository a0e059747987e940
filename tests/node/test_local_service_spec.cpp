// Speculative decoding in LocalService: greedy output is token-identical to plain greedy
// decoding for both drafters (prompt lookup; a draft model, good or bad), alone and with other
// requests in the batch; a draft that is the model itself is always accepted (the verify rows
// of a batch give the same logits as one-token steps); sampled requests run to completion.
#include <gtest/gtest.h>

#include "engine/synth.h"
#include "node/local_service.h"
#include "tests/node/test_local_service_model.h"

namespace zen {
namespace {

using node::CompletionRequest;
using node::LocalService;
using node::LocalServiceOptions;
using test::Collected;

// A one-layer synthetic model next to the test model (written once).
std::string small_model(const std::string& suffix, int n_vocab, uint64_t seed) {
  const std::string p = test::synth_model_path() + suffix;
  if (std::filesystem::exists(p)) return p;
  engine::SynthParams sp;
  sp.n_embd = 64;
  sp.n_layer = 1;
  sp.n_head = 4;
  sp.n_head_kv = 2;
  sp.n_ff = 128;
  sp.n_vocab = n_vocab;
  sp.n_ctx = 512;
  sp.seed = seed;
  engine::write_synth_model(sp, p);
  return p;
}

// The same vocabulary size with other weights: a poor draft, mostly rejected.
std::string other_model_path() { return small_model(".other.gguf", 512, 4242); }

CompletionRequest request(std::vector<int32_t> prompt, int max_tokens, float temperature = 0, uint64_t seed = 1) {
  CompletionRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = temperature;
  r.sampling.seed = seed;
  return r;
}

// Prompts that repeat themselves (lookup has something to copy) and one that does not.
std::vector<std::vector<int32_t>> prompts() {
  std::vector<int32_t> rep = {1};
  for (int i = 0; i < 6; ++i)
    for (int32_t t : {40, 41, 42, 43, 44, 45, 46}) rep.push_back(t);
  std::vector<int32_t> rep2 = {1};
  for (int i = 0; i < 20; ++i) rep2.push_back(100 + (i % 3));
  return {rep, rep2, {1, 300, 7, 99, 12, 480, 5}};
}

std::unique_ptr<LocalService> service(const std::string& mode, const std::string& draft = "", int max_seqs = 4,
                                      const std::string& model = test::synth_model_path()) {
  LocalServiceOptions o;
  o.n_ctx = 512;
  o.n_threads = 2;
  o.max_seqs = max_seqs;
  o.max_chunk = 64;
  o.max_batch_tokens = 128;
  o.speculative = mode;
  o.draft_model = draft;
  o.spec_k_max = 6;
  return std::make_unique<LocalService>(engine::Model::load(model), o, "synth");
}

// The prompts' outputs; `one_by_one`: each request waits for the one before (speculation runs
// only while at most two sequences generate), else all at once.
std::vector<std::vector<int32_t>> run_all(LocalService& svc, int max_tokens, std::vector<node::TokenEvent>* last = nullptr,
                                          bool one_by_one = false) {
  const auto ps = prompts();
  std::vector<Collected> got(ps.size());
  if (one_by_one) {
    for (size_t i = 0; i < ps.size(); ++i) {
      svc.submit(request(ps[i], max_tokens), got[i].callback());
      EXPECT_TRUE(got[i].wait());
    }
  } else {  // all in the scheduler's first step, however busy the machine
    std::vector<std::pair<CompletionRequest, std::function<bool(const node::TokenEvent&)>>> all;
    for (size_t i = 0; i < ps.size(); ++i) all.emplace_back(request(ps[i], max_tokens), got[i].callback());
    svc.submit_all(std::move(all));
  }
  std::vector<std::vector<int32_t>> out;
  for (auto& g : got) {
    EXPECT_TRUE(g.wait());
    EXPECT_NE(g.last.finish_reason, "error") << g.last.error;
    out.push_back(g.tokens);
    if (last) last->push_back(g.last);
  }
  return out;
}

TEST(LocalServiceSpec, GreedyOutputIsUnchangedByEveryDrafter) {
  auto plain = service("off");
  const auto ref = run_all(*plain, 48);
  for (const auto& [mode, draft] : std::vector<std::pair<std::string, std::string>>{
           {"lookup", ""}, {"draft", test::synth_model_path()}, {"draft", other_model_path()}}) {
    SCOPED_TRACE(mode + " " + draft);
    auto svc = service(mode, draft);
    std::vector<node::TokenEvent> last;
    EXPECT_EQ(run_all(*svc, 48, &last, true), ref);
    const auto st = svc->stats().speculative;
    EXPECT_GT(st.passes, 0u) << "never speculated";
    EXPECT_GT(st.drafted, 0u);
    EXPECT_EQ(st.emitted, st.passes + st.accepted);
    uint64_t per_request = 0;
    for (const auto& ev : last) per_request += ev.speculative.drafted;
    EXPECT_EQ(per_request, st.drafted) << "the final events carry each request's statistics";
    if (draft == test::synth_model_path()) {
      EXPECT_EQ(st.accepted, st.drafted) << "the model drafting for itself must always agree";
    }
  }
}

// A model that copies its context (zen synth --copier): prompt lookup's drafts are right, so
// nearly every draft is kept and a pass yields several tokens; the text is still plain greedy's.
TEST(LocalServiceSpec, LookupOnAModelThatCopiesKeepsItsDrafts) {
  const std::string copier = test::synth_model_path() + ".copier.gguf";
  if (!std::filesystem::exists(copier)) {
    engine::SynthParams sp{.n_embd = 1088, .n_layer = 3, .n_head = 4, .n_head_kv = 4, .n_ff = 32, .n_vocab = 512,
                           .n_ctx = 512, .head_dim = 64, .copier = true};
    engine::write_synth_model(sp, copier);
  }
  std::vector<int32_t> prompt = {1};
  for (int i = 0; i < 3; ++i)
    for (int32_t t : {40, 41, 42, 43, 44, 45, 46, 47, 48}) prompt.push_back(t);
  auto plain = service("off", "", 4, copier);
  auto lookup = service("lookup", "", 4, copier);
  Collected a, b;
  plain->submit(request(prompt, 60), a.callback());
  lookup->submit(request(prompt, 60), b.callback());
  ASSERT_TRUE(a.wait());
  ASSERT_TRUE(b.wait());
  ASSERT_EQ(a.tokens.size(), 60u);
  for (size_t i = 0; i < a.tokens.size(); ++i) ASSERT_EQ(a.tokens[i], 40 + static_cast<int32_t>(i % 9)) << "token " << i;
  EXPECT_EQ(b.tokens, a.tokens);
  const auto st = lookup->stats().speculative;
  ASSERT_GT(st.drafted, 0u);
  EXPECT_GE(st.acceptance(), 0.9) << st.accepted << " of " << st.drafted << " drafts kept";
  EXPECT_GE(st.tokens_per_pass(), 3.0);
}

TEST(LocalServiceSpec, OneAtATimeEqualsConcurrent) {
  auto svc = service("lookup", "", 1);  // one slot: requests run alone
  auto conc = service("lookup", "", 4);
  EXPECT_EQ(run_all(*svc, 40), run_all(*conc, 40));
  EXPECT_GT(svc->stats().speculative.passes, 0u);
  // Three generating at once: no drafting until only two are left (all stop at 40 tokens here).
  EXPECT_EQ(conc->stats().speculative.passes, 0u);
}

TEST(LocalServiceSpec, SampledRequestsComplete) {
  for (const std::string mode : {"lookup", "draft"}) {
    auto svc = service(mode, mode == "draft" ? other_model_path() : "");
    Collected c;
    svc->submit(request(prompts()[0], 40, 0.8f, 7), c.callback());
    ASSERT_TRUE(c.wait());
    EXPECT_EQ(c.last.finish_reason, "length") << c.last.error;
    EXPECT_EQ(c.tokens.size(), 40u);
    for (int32_t t : c.tokens) EXPECT_TRUE(t >= 0 && t < 512);
  }
}

TEST(LocalServiceSpec, RefusesBadOptions) {
  EXPECT_THROW(service("sometimes"), std::invalid_argument);
  EXPECT_THROW(service("draft", ""), std::invalid_argument);
  // A draft with another vocabulary size cannot draft for this model.
  EXPECT_THROW(service("draft", small_model(".vocab.gguf", 300, 1)), std::invalid_argument);
}

}  // namespace
}  // namespace zen
