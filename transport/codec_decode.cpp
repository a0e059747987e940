// Untrusted bytes -> Cap'n Proto envelope (with limits) -> plain structs.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <memory>
#include <stdexcept>

#include "transport/codec.h"
#include "transport/schema/zen.capnp.h"

namespace zen::transport {
namespace {

// Thrown inside decode() only, caught before returning.
struct Refused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string text(capnp::Text::Reader t, size_t cap, const char* field) {
  if (t.size() > cap) {
    throw Refused(std::string(field) + " is " + std::to_string(t.size()) + " bytes, cap " + std::to_string(cap));
  }
  return std::string(t.cStr(), t.size());
}

std::vector<uint8_t> digest(capnp::Data::Reader d, const char* field) {
  if (d.size() > 64) throw Refused(std::string(field) + " is " + std::to_string(d.size()) + " bytes, at most 64");
  return std::vector<uint8_t>(d.begin(), d.end());
}

template <class T, class L>
std::vector<T> list(L l) {
  std::vector<T> v;
  v.reserve(l.size());  // bounded: a primitive list occupies its bytes in the message
  for (auto x : l) v.push_back(x);
  return v;
}

DType dtype(wire::DType t) {
  switch (t) {
    case wire::DType::F32: return DType::f32;
    case wire::DType::F16: return DType::f16;
    case wire::DType::BF16: return DType::bf16;
  }
  throw Refused("unknown dtype " + std::to_string(static_cast<unsigned>(t)));
}

TensorBuf tensor(wire::TensorBuf::Reader r, const DecodeLimits& lim) {
  TensorBuf t;
  t.dtype = dtype(r.getDtype());
  auto shape = r.getShape();
  if (shape.size() > lim.max_rank) throw Refused("tensor rank " + std::to_string(shape.size()) + " over cap");
  t.shape = list<uint32_t>(shape);
  auto bytes = r.getBytes();
  // Check shape against the bytes actually present before copying anything.
  try {
    TensorBuf probe{t.dtype, t.shape, {}};
    size_t n = probe.element_count();
    if (n > bytes.size() / dtype_size(t.dtype) || n * dtype_size(t.dtype) != bytes.size()) {
      throw Refused("tensor shape needs " + std::to_string(n) + " " + std::string(dtype_name(t.dtype)) +
                    " elements but " + std::to_string(bytes.size()) + " bytes were sent");
    }
  } catch (const std::length_error& e) {
    throw Refused(std::string("tensor shape: ") + e.what());
  }
  t.bytes.resize(bytes.size());
  if (!t.bytes.empty()) std::memcpy(t.bytes.data(), bytes.begin(), bytes.size());
  return t;
}

void same_rows(size_t a, size_t b, const char* what) {
  if (a != b) throw Refused(std::string(what) + " lists differ in length (" + std::to_string(a) + " vs " +
                            std::to_string(b) + ")");
}

Message read_body(wire::Envelope::Body::Reader body, const DecodeLimits& lim) {
  using W = wire::Envelope::Body;
  switch (body.which()) {
    case W::HELLO: {
      auto r = body.getHello();
      Hello m;
      m.node_name = text(r.getNodeName(), 256, "hello.node_name");
      auto key = r.getStaticKey();
      if (key.size() != m.static_key.size()) throw Refused("hello.static_key is not 32 bytes");
      std::memcpy(m.static_key.data(), key.begin(), key.size());
      m.ram_bytes = r.getRamBytes();
      m.threads = r.getThreads();
      m.cpu_features = text(r.getCpuFeatures(), lim.max_text, "hello.cpu_features");
      m.kernel_gbps = r.getKernelGbps();
      m.model_digest = digest(r.getModelDigest(), "hello.model_digest");
      m.listen_address = text(r.getListenAddress(), 256, "hello.listen_address");
      return m;
    }
    case W::PLAN: {
      auto r = body.getPlan();
      Plan m;
      m.plan_id = r.getPlanId();
      m.model_digest = digest(r.getModelDigest(), "plan.model_digest");
      m.activation_dtype = dtype(r.getActivationDtype());
      auto stages = r.getStages();
      if (stages.size() > lim.max_stages) throw Refused("plan has " + std::to_string(stages.size()) + " stages");
      for (auto s : stages) {
        Stage st{text(s.getNodeName(), 256, "plan.stage.node_name"), s.getFirstLayer(), s.getEndLayer(),
                 text(s.getAddress(), 256, "plan.stage.address"), std::nullopt};
        auto key = s.getNodeKey();
        if (key.size() == 32) {
          st.node_key.emplace();
          std::memcpy(st.node_key->data(), key.begin(), 32);
        } else if (key.size() != 0) {
          throw Refused("plan.stage.node_key is not 32 bytes");
        }
        m.stages.push_back(std::move(st));
      }
      m.predicted_tokens_per_s = r.getPredictedTokensPerS();
      return m;
    }
    case W::START_REQUEST: {
      auto r = body.getStartRequest();
      StartRequest m;
      m.request_id = r.getRequestId();
      m.seq_ids = list<uint32_t>(r.getSeqIds());
      auto s = r.getSampling();
      m.sampling = {s.getTemperature(), s.getTopK(),        s.getTopP(), s.getMinP(),
                    s.getRepeatPenalty(), s.getRepeatLastN(), s.getSeed()};
      m.history = list<int32_t>(r.getHistory());
      m.tokens_sampled = r.getTokensSampled();
      return m;
    }
    case W::FORWARD: {
      auto r = body.getForward();
      Forward m;
      m.request_id = r.getRequestId();
      m.seq_ids = list<uint32_t>(r.getSeqIds());
      m.positions = list<int32_t>(r.getPositions());
      m.tokens = list<int32_t>(r.getTokens());
      same_rows(m.seq_ids.size(), m.positions.size(), "forward seq_ids/positions");
      if (!m.tokens.empty()) same_rows(m.seq_ids.size(), m.tokens.size(), "forward seq_ids/tokens");
      m.hidden = tensor(r.getHidden(), lim);
      m.want_logits = r.getWantLogits();
      m.last_chunk = r.getLastChunk();
      m.draft = list<int32_t>(r.getDraft());
      if (!m.draft.empty() && m.draft.size() >= m.seq_ids.size())
        throw Refused("forward: " + std::to_string(m.draft.size()) + " draft tokens need more than that many rows");
      return m;
    }
    case W::SAMPLED_TOKENS: {
      auto r = body.getSampledTokens();
      SampledTokens m;
      m.request_id = r.getRequestId();
      m.seq_ids = list<uint32_t>(r.getSeqIds());
      m.tokens = list<int32_t>(r.getTokens());
      same_rows(m.seq_ids.size(), m.tokens.size(), "sampled seq_ids/tokens");
      m.has_logits = r.getHasLogits();
      m.logits = tensor(r.getLogits(), lim);
      return m;
    }
    case W::CLEAR_SEQUENCE: {
      auto r = body.getClearSequence();
      return ClearSequence{r.getRequestId(), list<uint32_t>(r.getSeqIds())};
    }
    case W::WEIGHT_REQUEST: {
      auto r = body.getWeightRequest();
      return WeightRequest{digest(r.getSliceDigest(), "weight_request.slice_digest"), r.getOffset()};
    }
    case W::WEIGHT_CHUNK: {
      auto r = body.getWeightChunk();
      WeightChunk m;
      m.slice_digest = digest(r.getSliceDigest(), "weight_chunk.slice_digest");
      m.offset = r.getOffset();
      m.total = r.getTotal();
      auto b = r.getBytes();
      if (m.offset > m.total || b.size() > m.total - m.offset) {
        throw Refused("weight_chunk [" + std::to_string(m.offset) + ", +" + std::to_string(b.size()) +
                      ") exceeds total " + std::to_string(m.total));
      }
      m.bytes.resize(b.size());
      if (b.size()) std::memcpy(m.bytes.data(), b.begin(), b.size());
      return m;
    }
    case W::HEARTBEAT: {
      auto r = body.getHeartbeat();
      return Heartbeat{r.getSentNs(), r.getBusy(), r.getKvBytes(), r.getBusySeconds(), r.getPasses()};
    }
    case W::PING: {
      auto r = body.getPing();
      Ping m{r.getNonce(), r.getSentNs(), {}};
      auto pad = r.getPadding();
      m.padding.resize(pad.size());
      if (pad.size()) std::memcpy(m.padding.data(), pad.begin(), pad.size());
      return m;
    }
    case W::PONG: {
      auto r = body.getPong();
      return Pong{r.getNonce(), r.getPingSentNs(), r.getSentNs()};
    }
    case W::ERROR: {
      auto r = body.getError();
      uint32_t code = r.getCode();
      if (code > static_cast<uint32_t>(ErrorCode::model_mismatch)) throw Refused("unknown error code " + std::to_string(code));
      return Error{static_cast<ErrorCode>(code), text(r.getMessage(), lim.max_text, "error.message")};
    }
    case W::GOODBYE:
      return Goodbye{text(body.getGoodbye().getReason(), lim.max_text, "goodbye.reason")};
    case W::STAGE_READY: {
      auto r = body.getStageReady();
      return StageReady{r.getPlanId(), r.getOk(), text(r.getMessage(), lim.max_text, "stage_ready.message")};
    }
  }
  throw Refused("unknown message type " + std::to_string(static_cast<unsigned>(body.which())));
}

}  // namespace

DecodeResult decode(std::span<const std::byte> bytes, const DecodeLimits& limits) {
  DecodeResult res;
  constexpr size_t W = sizeof(capnp::word);
  if (bytes.size() > limits.max_bytes) {
    res.error = "message of " + std::to_string(bytes.size()) + " bytes exceeds cap " + std::to_string(limits.max_bytes);
    return res;
  }
  if (bytes.size() < 2 * W || bytes.size() % W != 0) {
    res.error = "message length " + std::to_string(bytes.size()) + " is not a whole number of 8-byte words";
    return res;
  }
  // Cap'n Proto reads words in place; copy when the caller's bytes are unaligned.
  std::unique_ptr<capnp::word[]> aligned;
  const void* data = bytes.data();
  if (reinterpret_cast<uintptr_t>(data) % alignof(capnp::word) != 0) {
    aligned.reset(new capnp::word[bytes.size() / W]);
    std::memcpy(aligned.get(), bytes.data(), bytes.size());
    data = aligned.get();
  }
  auto words = kj::arrayPtr(static_cast<const capnp::word*>(data), bytes.size() / W);
  try {
    capnp::ReaderOptions opts;
    opts.traversalLimitInWords = words.size() * 2 + 1024;  // each word is read once; slack for the envelope
    opts.nestingLimit = limits.nesting_limit;
    capnp::FlatArrayMessageReader reader(words, opts);
    if (reader.getEnd() != words.end()) {
      res.error = "trailing bytes after the message";
      return res;
    }
    auto env = reader.getRoot<wire::Envelope>();
    uint16_t v = env.getProtocolVersion();
    if (v != kProtocolVersion) {
      res.error = "message protocol version " + std::to_string(v) + " is not supported (this node speaks version " +
                  std::to_string(kProtocolVersion) + ")";
      return res;
    }
    res.message = read_body(env.getBody(), limits);
  } catch (const Refused& e) {
    res.error = e.what();
  } catch (const kj::Exception& e) {
    res.error = "malformed message: " + std::string(e.getDescription().cStr());
  } catch (const std::exception& e) {
    res.error = std::string("malformed message: ") + e.what();
  }
  if (!res.error.empty()) res.message.reset();
  return res;
}

}  // namespace zen::transport
