// Plain structs -> Cap'n Proto envelope -> bytes.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/io.h>

#include <cstring>
#include <stdexcept>

#include "transport/codec.h"
#include "transport/schema/zen.capnp.h"

namespace zen::transport {
namespace {

capnp::Data::Reader as_data(const void* p, size_t n) {
  return capnp::Data::Reader(static_cast<const kj::byte*>(p), n);
}

template <class List, class Vec>
void set_list(List builder_list, const Vec& v) {
  for (size_t i = 0; i < v.size(); ++i) builder_list.set(static_cast<unsigned>(i), v[i]);
}

size_t payload_bytes(const TensorBuf& t) { return t.bytes.size(); }

void put_tensor(wire::TensorBuf::Builder b, const TensorBuf& t) {
  t.validate();
  b.setDtype(static_cast<wire::DType>(t.dtype));
  set_list(b.initShape(static_cast<unsigned>(t.shape.size())), t.shape);
  b.setBytes(as_data(t.bytes.data(), t.bytes.size()));
}

void check_rows(size_t a, size_t b, const char* what) {
  if (a != b) throw std::invalid_argument(std::string("encode: ") + what + " lists differ in length");
}

struct Writer {
  wire::Envelope::Body::Builder body;

  void operator()(const Hello& m) {
    auto b = body.initHello();
    b.setNodeName(m.node_name);
    b.setStaticKey(as_data(m.static_key.data(), m.static_key.size()));
    b.setRamBytes(m.ram_bytes);
    b.setThreads(m.threads);
    b.setCpuFeatures(m.cpu_features);
    b.setKernelGbps(m.kernel_gbps);
    b.setModelDigest(as_data(m.model_digest.data(), m.model_digest.size()));
    b.setListenAddress(m.listen_address);
  }
  void operator()(const Plan& m) {
    auto b = body.initPlan();
    b.setPlanId(m.plan_id);
    b.setModelDigest(as_data(m.model_digest.data(), m.model_digest.size()));
    b.setActivationDtype(static_cast<wire::DType>(m.activation_dtype));
    auto stages = b.initStages(static_cast<unsigned>(m.stages.size()));
    for (size_t i = 0; i < m.stages.size(); ++i) {
      auto s = stages[static_cast<unsigned>(i)];
      s.setNodeName(m.stages[i].node_name);
      s.setFirstLayer(m.stages[i].first_layer);
      s.setEndLayer(m.stages[i].end_layer);
      s.setAddress(m.stages[i].address);
      if (m.stages[i].node_key) s.setNodeKey(as_data(m.stages[i].node_key->data(), 32));
    }
    b.setPredictedTokensPerS(m.predicted_tokens_per_s);
  }
  void operator()(const StartRequest& m) {
    auto b = body.initStartRequest();
    b.setRequestId(m.request_id);
    set_list(b.initSeqIds(static_cast<unsigned>(m.seq_ids.size())), m.seq_ids);
    auto s = b.initSampling();
    s.setTemperature(m.sampling.temperature);
    s.setTopK(m.sampling.top_k);
    s.setTopP(m.sampling.top_p);
    s.setMinP(m.sampling.min_p);
    s.setRepeatPenalty(m.sampling.repeat_penalty);
    s.setRepeatLastN(m.sampling.repeat_last_n);
    s.setSeed(m.sampling.seed);
    set_list(b.initHistory(static_cast<unsigned>(m.history.size())), m.history);
    b.setTokensSampled(m.tokens_sampled);
  }
  void operator()(const Forward& m) {
    check_rows(m.seq_ids.size(), m.positions.size(), "forward seq_ids/positions");
    if (!m.tokens.empty()) check_rows(m.seq_ids.size(), m.tokens.size(), "forward seq_ids/tokens");
    auto b = body.initForward();
    b.setRequestId(m.request_id);
    set_list(b.initSeqIds(static_cast<unsigned>(m.seq_ids.size())), m.seq_ids);
    set_list(b.initPositions(static_cast<unsigned>(m.positions.size())), m.positions);
    set_list(b.initTokens(static_cast<unsigned>(m.tokens.size())), m.tokens);
    put_tensor(b.initHidden(), m.hidden);
    b.setWantLogits(m.want_logits);
    b.setLastChunk(m.last_chunk);
    if (m.draft.size() >= m.seq_ids.size() && !m.draft.empty())
      throw std::invalid_argument("forward: a draft needs a row before it");
    set_list(b.initDraft(static_cast<unsigned>(m.draft.size())), m.draft);
  }
  void operator()(const SampledTokens& m) {
    check_rows(m.seq_ids.size(), m.tokens.size(), "sampled seq_ids/tokens");
    auto b = body.initSampledTokens();
    b.setRequestId(m.request_id);
    set_list(b.initSeqIds(static_cast<unsigned>(m.seq_ids.size())), m.seq_ids);
    set_list(b.initTokens(static_cast<unsigned>(m.tokens.size())), m.tokens);
    b.setHasLogits(m.has_logits);
    put_tensor(b.initLogits(), m.logits);
  }
  void operator()(const ClearSequence& m) {
    auto b = body.initClearSequence();
    b.setRequestId(m.request_id);
    set_list(b.initSeqIds(static_cast<unsigned>(m.seq_ids.size())), m.seq_ids);
  }
  void operator()(const WeightRequest& m) {
    auto b = body.initWeightRequest();
    b.setSliceDigest(as_data(m.slice_digest.data(), m.slice_digest.size()));
    b.setOffset(m.offset);
  }
  void operator()(const WeightChunk& m) {
    auto b = body.initWeightChunk();
    b.setSliceDigest(as_data(m.slice_digest.data(), m.slice_digest.size()));
    b.setOffset(m.offset);
    b.setTotal(m.total);
    b.setBytes(as_data(m.bytes.data(), m.bytes.size()));
  }
  void operator()(const Heartbeat& m) {
    auto b = body.initHeartbeat();
    b.setSentNs(m.sent_ns);
    b.setBusy(m.busy);
    b.setKvBytes(m.kv_bytes);
    b.setBusySeconds(m.busy_seconds);
    b.setPasses(m.passes);
  }
  void operator()(const Ping& m) {
    auto b = body.initPing();
    b.setNonce(m.nonce);
    b.setSentNs(m.sent_ns);
    if (!m.padding.empty()) b.setPadding(as_data(m.padding.data(), m.padding.size()));
  }
  void operator()(const Pong& m) {
    auto b = body.initPong();
    b.setNonce(m.nonce);
    b.setPingSentNs(m.ping_sent_ns);
    b.setSentNs(m.sent_ns);
  }
  void operator()(const Error& m) {
    auto b = body.initError();
    b.setCode(static_cast<uint32_t>(m.code));
    b.setMessage(m.message);
  }
  void operator()(const Goodbye& m) { body.initGoodbye().setReason(m.reason); }
  void operator()(const StageReady& m) {
    auto b = body.initStageReady();
    b.setPlanId(m.plan_id);
    b.setOk(m.ok);
    b.setMessage(m.message);
  }
};

// Large payloads (tensors, weight chunks) dominate; size the first segment so
// the whole message lands in one segment and is copied exactly once.
size_t bulk_bytes(const Message& m) {
  return std::visit(
      [](const auto& v) -> size_t {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Forward>) {
          return payload_bytes(v.hidden) + 4 * (v.seq_ids.size() + v.positions.size() + v.tokens.size());
        } else if constexpr (std::is_same_v<T, SampledTokens>) {
          return payload_bytes(v.logits) + 4 * (v.seq_ids.size() + v.tokens.size());
        } else if constexpr (std::is_same_v<T, WeightChunk>) {
          return v.bytes.size();
        } else {
          return 0;
        }
      },
      m);
}

}  // namespace

void encode_into(const Message& m, std::vector<std::byte>& out, size_t reserve_front) {
  size_t first_words = bulk_bytes(m) / sizeof(capnp::word) + 256;
  capnp::MallocMessageBuilder builder(static_cast<unsigned>(std::min<size_t>(first_words, 1u << 28)),
                                      capnp::AllocationStrategy::FIXED_SIZE);
  auto env = builder.initRoot<wire::Envelope>();
  env.setProtocolVersion(kProtocolVersion);
  std::visit(Writer{env.initBody()}, m);

  size_t words = capnp::computeSerializedSizeInWords(builder);
  out.resize(reserve_front + words * sizeof(capnp::word));
  std::memset(out.data(), 0, reserve_front);
  kj::ArrayOutputStream stream(kj::arrayPtr(reinterpret_cast<kj::byte*>(out.data()) + reserve_front,
                                            words * sizeof(capnp::word)));
  capnp::writeMessage(stream, builder);
}

std::vector<std::byte> encode(const Message& m) {
  std::vector<std::byte> out;
  encode_into(m, out, 0);
  return out;
}

std::string_view message_name(const Message& m) {
  static constexpr std::string_view names[] = {"hello",          "plan",          "start_request", "forward",
                                               "sampled_tokens", "clear_sequence", "weight_request", "weight_chunk",
                                               "heartbeat",      "ping",          "pong",          "error",
                                               "goodbye",        "stage_ready"};
  static_assert(std::size(names) == std::variant_size_v<Message>);
  return names[m.index()];
}

}  // namespace zen::transport
