// LocalService: continuous batching gives every request exactly what it gets alone
// (engine::generate on its own Context), cancellation frees the sequence, limits and
// stops end requests with the right reason, bad requests are refused.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/generate.h"
#include "node/local_service.h"
#include "node/local_service_text.h"
#include "tests/engine/testdata.h"
#include "tests/node/test_local_service_model.h"

namespace zen {
namespace {

using node::CompletionRequest;
using node::LocalService;
using node::LocalServiceOptions;
using test::Collected;

engine::SamplerParams greedy() {
  engine::SamplerParams s;
  s.temperature = 0;
  return s;
}

// What one request gives alone: engine::generate on a fresh single-sequence Context.
std::vector<int32_t> solo(const std::shared_ptr<const engine::Model>& model, int n_ctx, const std::vector<int32_t>& prompt,
                          int max_tokens, const engine::SamplerParams& sp, const engine::Tokenizer& tok) {
  engine::ContextParams cp;
  cp.n_ctx = n_ctx;
  cp.n_threads = 1;
  cp.max_seqs = 1;
  engine::Context ctx(model, cp);
  engine::GenerateParams gp;
  gp.n_predict = max_tokens;
  gp.sampler = sp;
  gp.is_stop = [&](int32_t id) { return tok.is_eog(id); };
  return engine::generate(ctx, 0, prompt, gp, nullptr);
}

// The service reports every generated token but an end-of-generation one.
std::vector<int32_t> shown(std::vector<int32_t> gen, const engine::Tokenizer& tok) {
  if (!gen.empty() && tok.is_eog(gen.back())) gen.pop_back();
  return gen;
}

std::vector<int32_t> random_prompt(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> p = {1};  // BOS
  while (p.size() < n) p.push_back(3 + static_cast<int32_t>(rng() % 509));
  return p;
}

CompletionRequest request(std::vector<int32_t> prompt, int max_tokens, engine::SamplerParams sp = greedy()) {
  CompletionRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling = sp;
  return r;
}

// The text a stream of ids shows (what the service sends, before stop strings).
std::string stream_text(const engine::Tokenizer& tok, const std::vector<int32_t>& ids) {
  engine::StreamDecoder dec(tok);
  std::string s;
  for (int32_t id : ids) s += dec.push(id);
  return s + dec.flush();
}

bool wait_idle(const LocalService& svc) {
  for (int i = 0; i < 2000; ++i) {
    const auto st = svc.stats();
    if (st.active == 0 && st.queued == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

class LocalServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { model_ = engine::Model::load(test::synth_model_path()); }
  std::unique_ptr<LocalService> make(int max_seqs, int max_chunk, size_t max_queue = 64, int n_ctx = 512) {
    LocalServiceOptions o;
    o.n_ctx = n_ctx;
    o.n_threads = 2;
    o.max_seqs = max_seqs;
    o.max_chunk = max_chunk;
    o.max_batch_tokens = std::max(max_seqs, 2 * max_chunk);
    o.max_queue = max_queue;
    return std::make_unique<LocalService>(model_, o, "synth");
  }
  std::shared_ptr<const engine::Model> model_;
};

TEST_F(LocalServiceTest, GreedyEqualsGenerate) {
  auto svc = make(4, 256);
  const auto prompt = svc->tokenizer().encode("Once upon a time", true, false);
  Collected c;
  svc->submit(request(prompt, 40), c.callback());
  ASSERT_TRUE(c.wait());
  const auto ref = solo(model_, 512, prompt, 40, greedy(), svc->tokenizer());
  EXPECT_EQ(c.tokens, shown(ref, svc->tokenizer()));
  EXPECT_EQ(c.last.completion_tokens, static_cast<int>(ref.size()));
  EXPECT_EQ(c.last.prompt_tokens, static_cast<int>(prompt.size()));
  EXPECT_EQ(c.last.finish_reason, ref.size() == 40 && !svc->tokenizer().is_eog(ref.back()) ? "length" : "stop");
  EXPECT_EQ(c.text, stream_text(svc->tokenizer(), shown(ref, svc->tokenizer())));
}

class ConcurrentTest : public LocalServiceTest, public ::testing::WithParamInterface<engine::Mix> {
 protected:
  void SetUp() override { model_ = engine::Model::load(test::synth_model_path(GetParam())); }
};

TEST_P(ConcurrentTest, MixedLengthsEqualSolo) {
  // 7 requests on 3 slots (the rest queue), prompts up to 300 tokens read 64 at a time while
  // the others generate; two sample with seeds. Each must equal its solo run.
  auto svc = make(3, 64);
  struct Case {
    size_t prompt_len;
    int max_tokens;
    float temp;
  };
  const std::vector<Case> cases = {{5, 30, 0}, {300, 12, 0}, {40, 50, 0}, {1, 20, 0},
                                   {130, 25, 0.9f}, {17, 60, 0}, {260, 8, 1.2f}};
  std::vector<Collected> got(cases.size());
  std::vector<CompletionRequest> reqs;
  for (size_t i = 0; i < cases.size(); ++i) {
    engine::SamplerParams sp = greedy();
    if (cases[i].temp > 0) {
      sp = engine::SamplerParams{};
      sp.temperature = cases[i].temp;
      sp.seed = 1000 + i;
    }
    reqs.push_back(request(random_prompt(cases[i].prompt_len, static_cast<uint32_t>(i)), cases[i].max_tokens, sp));
  }
  for (size_t i = 0; i < cases.size(); ++i) svc->submit(reqs[i], got[i].callback());
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(got[i].wait()) << i;
    const auto ref = solo(model_, 512, reqs[i].prompt, reqs[i].max_tokens, reqs[i].sampling, svc->tokenizer());
    EXPECT_EQ(got[i].tokens, shown(ref, svc->tokenizer())) << "request " << i;
    EXPECT_EQ(got[i].last.completion_tokens, static_cast<int>(ref.size())) << i;
  }
  const auto st = svc->stats();
  EXPECT_GE(st.max_step_seqs, 3) << "requests never shared a batch";
  EXPECT_LE(st.max_step_rows, 2 * 64 + 3);
  EXPECT_EQ(st.requests_done, cases.size());
  ASSERT_TRUE(wait_idle(*svc));
  EXPECT_EQ(svc->stats().kv_bytes, 0u);
  EXPECT_EQ(svc->stats().free_slots, 3);
}

INSTANTIATE_TEST_SUITE_P(Mix, ConcurrentTest, ::testing::Values(engine::Mix::F32, engine::Mix::Q4_K_M, engine::Mix::Q8_0),
                         [](const auto& info) { return engine::mix_name(info.param); });

TEST_F(LocalServiceTest, StoriesGreedyMatchesLlamaCpp) {
  ZEN_REQUIRE_TESTDATA();
  const auto dir = test::testdata_dir();
  const auto json = dir / "logits" / "stories260K.gen32.json";
  const auto prompt = test::json_int_array(json, "prompt_tokens");
  const auto expected = test::json_int_array(json, "generated_tokens");
  LocalServiceOptions o;
  o.n_ctx = 256;
  o.max_seqs = 4;
  auto svc = LocalService::open((dir / "models" / "stories260K.gguf").string(), o);
  // Alone, and then together with two other requests started just before it.
  Collected alone, a, b, together;
  svc->submit(request(prompt, 32), alone.callback());
  ASSERT_TRUE(alone.wait());
  EXPECT_EQ(alone.tokens, expected);
  const auto other = svc->tokenizer().encode("The little dog ran to the park and", true, false);
  svc->submit(request(other, 40), a.callback());
  svc->submit(request(random_prompt(90, 5), 20), b.callback());
  svc->submit(request(prompt, 32), together.callback());
  ASSERT_TRUE(together.wait() && a.wait() && b.wait());
  EXPECT_EQ(together.tokens, expected);
  std::ifstream in(json);
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(together.text, j.at("generated_text").get<std::string>());
}

TEST_F(LocalServiceTest, CallbackFalseFreesTheSequence) {
  auto svc = make(2, 256);
  Collected c;
  svc->submit(request(random_prompt(20, 9), 400), c.callback(/*stop_after=*/3));
  ASSERT_TRUE(c.wait());
  ASSERT_TRUE(wait_idle(*svc));
  EXPECT_EQ(c.tokens.size(), 3u);
  EXPECT_EQ(c.events, 3) << "no event after the callback said stop";
  const auto st = svc->stats();
  EXPECT_EQ(st.kv_bytes, 0u);
  EXPECT_EQ(st.free_slots, 2);
  EXPECT_LT(st.tokens_generated, 10u);
}

TEST_F(LocalServiceTest, CancelRunningAndQueued) {
  auto svc = make(1, 256);
  Collected running, queued, after;
  std::atomic<uint64_t> running_id{0};
  std::atomic<int> seen{0};
  // The running request (slowed to 2 ms a token) is cancelled through cancel() from another
  // thread after 2 tokens.
  auto cb = running.callback();
  std::thread canceller;
  const uint64_t id = svc->submit(request(random_prompt(10, 1), 400), [&](const node::TokenEvent& ev) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (++seen == 2)
      canceller = std::thread([&svc, &running_id] {
        while (running_id == 0) std::this_thread::yield();
        svc->cancel(running_id);
      });
    return cb(ev);
  });
  running_id = id;
  const uint64_t qid = svc->submit(request(random_prompt(10, 2), 5), queued.callback());
  svc->cancel(qid);
  ASSERT_TRUE(queued.wait());
  EXPECT_EQ(queued.last.finish_reason, "cancelled");
  EXPECT_TRUE(queued.tokens.empty());
  ASSERT_TRUE(running.wait());
  canceller.join();
  EXPECT_EQ(running.last.finish_reason, "cancelled");
  EXPECT_LT(running.tokens.size(), 50u);
  ASSERT_TRUE(wait_idle(*svc));
  EXPECT_EQ(svc->stats().kv_bytes, 0u);
  // The slot is free for the next request, which runs normally.
  svc->submit(request(random_prompt(10, 3), 5), after.callback());
  ASSERT_TRUE(after.wait());
  EXPECT_EQ(after.last.completion_tokens, static_cast<int>(solo(model_, 512, random_prompt(10, 3), 5, greedy(), svc->tokenizer()).size()));
}

TEST_F(LocalServiceTest, StopTokensStringsAndLimits) {
  auto svc = make(2, 256);
  const auto& tok = svc->tokenizer();
  const auto prompt = random_prompt(12, 4);
  const auto ref = shown(solo(model_, 512, prompt, 30, greedy(), tok), tok);
  ASSERT_GE(ref.size(), 12u) << "the synthetic model stopped too early for this test";

  // A stop token: the request ends before it, reason "stop".
  auto r = request(prompt, 30);
  r.stop_tokens = {ref[5]};
  const size_t first = static_cast<size_t>(std::find(ref.begin(), ref.end(), ref[5]) - ref.begin());
  Collected a;
  svc->submit(r, a.callback());
  ASSERT_TRUE(a.wait());
  EXPECT_EQ(a.last.finish_reason, "stop");
  EXPECT_EQ(a.tokens, std::vector<int32_t>(ref.begin(), ref.begin() + static_cast<std::ptrdiff_t>(first)));

  // A stop string spanning tokens: the text is cut just before it.
  const std::string full = stream_text(tok, ref);
  const size_t at = full.size() / 2;
  const std::string stop = full.substr(at, 3);
  r = request(prompt, 30);
  r.stop = {stop};
  Collected b;
  svc->submit(r, b.callback());
  ASSERT_TRUE(b.wait());
  EXPECT_EQ(b.last.finish_reason, "stop");
  EXPECT_EQ(b.text, full.substr(0, full.find(stop)));

  // max_tokens.
  Collected c;
  svc->submit(request(prompt, 7), c.callback());
  ASSERT_TRUE(c.wait());
  EXPECT_EQ(c.last.finish_reason, "length");
  EXPECT_EQ(c.last.completion_tokens, 7);
  EXPECT_EQ(c.tokens, std::vector<int32_t>(ref.begin(), ref.begin() + 7));

  // The context: a prompt of n_ctx - 1 tokens leaves room for the same tokens as generate().
  auto small = make(1, 16, 4, /*n_ctx=*/64);
  const auto longp = random_prompt(63, 8);
  const auto lref = solo(model_, 64, longp, 100, greedy(), tok);
  Collected d;
  small->submit(request(longp, 100), d.callback());
  ASSERT_TRUE(d.wait());
  EXPECT_EQ(d.last.completion_tokens, static_cast<int>(lref.size()));
  if (!tok.is_eog(lref.back())) {
    EXPECT_EQ(d.last.finish_reason, "length");
  }
}

TEST_F(LocalServiceTest, RefusesBadAndOverload) {
  auto svc = make(1, 256, /*max_queue=*/1, /*n_ctx=*/64);
  auto noop = [](const node::TokenEvent&) { return true; };
  EXPECT_THROW(svc->submit(request({}, 5), noop), node::RequestError);
  EXPECT_THROW(svc->submit(request(random_prompt(64, 1), 5), noop), node::RequestError);
  EXPECT_THROW(svc->submit(request({1, 512}, 5), noop), node::RequestError);
  EXPECT_THROW(svc->submit(request({1, -3}, 5), noop), node::RequestError);
  EXPECT_THROW(svc->submit(request({1, 5}, 0), noop), node::RequestError);
  EXPECT_NO_THROW(svc->submit(request(random_prompt(63, 1), 5), noop)) << "a 63-token prompt fits 64 positions";
  ASSERT_TRUE(wait_idle(*svc));
  // One slot and a queue of one: while the slot and the queue are taken, a third is refused.
  Collected hold;
  std::mutex gate;
  std::unique_lock<std::mutex> closed(gate);
  auto held = hold.callback();
  svc->submit(request(random_prompt(10, 2), 50), [&](const node::TokenEvent& ev) {
    std::lock_guard<std::mutex> wait_for_test(gate);  // blocks the scheduler until released
    return held(ev);
  });
  Collected q;
  svc->submit(request(random_prompt(10, 3), 3), q.callback());
  EXPECT_THROW(svc->submit(request(random_prompt(10, 4), 3), noop), node::OverloadedError);
  closed.unlock();
  ASSERT_TRUE(hold.wait() && q.wait());
  EXPECT_EQ(q.last.finish_reason, "length");
}

TEST_F(LocalServiceTest, DestructorEndsOpenRequests) {
  Collected a, b;
  {
    auto svc = make(1, 256);
    auto slow = a.callback();
    svc->submit(request(random_prompt(10, 2), 400), [&](const node::TokenEvent& ev) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return slow(ev);
    });
    svc->submit(request(random_prompt(10, 3), 400), b.callback());
  }
  ASSERT_TRUE(a.done && b.done);
  EXPECT_EQ(a.last.finish_reason, "cancelled");
  EXPECT_EQ(b.last.finish_reason, "cancelled");
}

}  // namespace
}  // namespace zen

namespace zen {
namespace {

TEST(FairShares, EqualPartsAndWhatIsLeftGoesToTheOthers) {
  auto shares = [](std::vector<size_t> want, size_t budget) {
    node::fair_shares(want, budget);
    return want;
  };
  EXPECT_EQ(shares({300, 10}, 64), (std::vector<size_t>{54, 10}));
  EXPECT_EQ(shares({300, 300, 300}, 100), (std::vector<size_t>{34, 33, 33}));
  EXPECT_EQ(shares({5, 5}, 100), (std::vector<size_t>{5, 5}));
  EXPECT_EQ(shares({0, 50}, 10), (std::vector<size_t>{0, 10}));
  EXPECT_EQ(shares({7, 7, 7}, 0), (std::vector<size_t>{0, 0, 0}));
  EXPECT_EQ(shares({100, 3, 40, 100}, 90), (std::vector<size_t>{29, 3, 29, 29}));
  EXPECT_EQ(shares({100, 3, 25, 100}, 90), (std::vector<size_t>{31, 3, 25, 31}));
  EXPECT_EQ(shares({}, 10), (std::vector<size_t>{}));
}

// A short prompt that arrives behind a long one shares the steps with it: its first token comes
// while the long prompt is still being read (first come, first served would make it wait).
TEST_F(LocalServiceTest, ShortPromptIsNotStuckBehindALongOne) {
  LocalServiceOptions o;
  o.n_ctx = 512;
  o.n_threads = 2;
  o.max_seqs = 4;
  o.max_chunk = 64;
  o.max_batch_tokens = 64;  // the long prompt alone would fill every step
  LocalService svc(model_, o, "synth");
  std::atomic<int> order{0};
  std::atomic<int> long_first{-1}, short_first{-1};
  auto first_token = [&order](std::atomic<int>& at) {
    return [&order, &at](const node::TokenEvent& ev) {
      if (!ev.done && at.load() < 0) at = order++;
      return true;
    };
  };
  Collected long_done, short_done;
  auto both = [](auto a, auto b) { return [a, b](const node::TokenEvent& ev) { a(ev); return b(ev); }; };
  svc.submit(request(random_prompt(448, 7), 4), both(first_token(long_first), long_done.callback()));
  svc.submit(request(random_prompt(8, 8), 4), both(first_token(short_first), short_done.callback()));
  ASSERT_TRUE(long_done.wait());
  ASSERT_TRUE(short_done.wait());
  ASSERT_GE(short_first.load(), 0);
  ASSERT_GE(long_first.load(), 0);
  EXPECT_LT(short_first.load(), long_first.load()) << "the short prompt waited for the long one";
}

TEST(StopText, HoldsBackPrefixesAndCutsAtTheFirstStop) {
  node::StopText t({"\nUser:", "END", ""});
  EXPECT_EQ(t.push("Hello"), "Hello");
  EXPECT_EQ(t.push(" wor"), " wor");
  EXPECT_EQ(t.push("ld\nUs"), "ld");  // "\nUs" may start "\nUser:"
  EXPECT_EQ(t.push("ually"), "\nUsually");
  EXPECT_EQ(t.push(" E"), " ");
  EXPECT_EQ(t.push("N"), "");
  EXPECT_EQ(t.push("Dless\nUser: x"), "");  // "END" completes first
  EXPECT_TRUE(t.stopped());
  EXPECT_EQ(t.push("more"), "");
  EXPECT_EQ(t.finish(), "");

  node::StopText u({"abc"});
  EXPECT_EQ(u.push("xxab"), "xx");
  EXPECT_FALSE(u.stopped());
  EXPECT_EQ(u.finish(), "ab");  // the generation ended: a partial stop string is plain text
  node::StopText none({});
  EXPECT_EQ(none.push("anything"), "anything");
}

}  // namespace
}  // namespace zen
