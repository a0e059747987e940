// Transport on loopback: round trip of one 8 KiB hidden state (n_embd 2048,
// f32) with p50/p99, and throughput of 1 MiB messages, each encrypted and in the
// benchmark-only plaintext mode. Plus the one-core cost of encode+seal+open+decode.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "transport/asio_link.h"
#include "transport/codec.h"

namespace zen::transport {
namespace {
using namespace std::chrono_literals;

// One echo server and one connected client, each with its own io thread.
struct Loopback {
  IoThread server_io, client_io;
  std::unique_ptr<Listener> listener;
  std::shared_ptr<Link> client, server_side;
  std::atomic<uint64_t> server_bytes{0};
  std::mutex mu;
  std::condition_variable cv;
  uint64_t echoes = 0;

  explicit Loopback(bool plaintext, bool echo) {
    ClusterSecret s = generate_cluster_secret();
    LinkOptions o;
    o.insecure_plaintext_for_benchmark = plaintext;
    o.keepalive_interval = 0ms;
    std::promise<std::shared_ptr<Link>> accepted;
    listener = std::make_unique<Listener>(
        server_io.context(), asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0),
        Credentials{generate_keypair(), s, {}}, o, [&](std::shared_ptr<Link> l) { accepted.set_value(l); });
    client = connect_blocking(client_io.context(), "127.0.0.1", listener->port(), {generate_keypair(), s, {}}, o);
    server_side = accepted.get_future().get();
    Link* raw = server_side.get();
    server_side->start({[this, raw, echo](Message&& m) {
                          if (echo) {
                            raw->send(m);
                          } else if (auto* f = std::get_if<Forward>(&m)) {
                            server_bytes += f->hidden.bytes.size();
                          }
                        },
                        [](const std::string&) {}});
    client->start({[this](Message&&) {
                     std::lock_guard lk(mu);
                     ++echoes;
                     cv.notify_one();
                   },
                   [](const std::string&) {}});
  }
  ~Loopback() {
    client->close("bench over");
    server_side->close("bench over");
    std::this_thread::sleep_for(20ms);
  }
};

Forward hidden_state(uint32_t rows, uint32_t n_embd) {
  std::vector<float> v(size_t{rows} * n_embd);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 1000) * 0.001f;
  Forward f;
  f.request_id = 1;
  f.seq_ids.assign(rows, 1);
  f.positions.assign(rows, 0);
  f.hidden = encode_activations(v, {rows, n_embd}, DType::f32);
  return f;
}

void BM_RoundTrip8KiB(benchmark::State& state) {
  Loopback lb(state.range(0) == 0, true);
  Forward msg = hidden_state(1, 2048);  // 8 KiB of f32
  std::vector<double> us;
  uint64_t expect = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    lb.client->send(msg);
    ++expect;
    std::unique_lock lk(lb.mu);
    lb.cv.wait(lk, [&] { return lb.echoes >= expect; });
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[us.size() * 99 / 100];
  state.SetLabel(state.range(0) == 0 ? "plaintext (benchmark only)" : "encrypted");
}
BENCHMARK(BM_RoundTrip8KiB)->Arg(1)->Arg(0)->Iterations(5000)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_Throughput1MiB(benchmark::State& state) {
  Loopback lb(state.range(0) == 0, false);
  Forward msg = hidden_state(128, 2048);  // 1 MiB of f32
  const uint64_t per_iter = 64;
  uint64_t sent_bytes = 0;
  for (auto _ : state) {
    for (uint64_t i = 0; i < per_iter; ++i) {
      while (lb.client->send(msg) == SendResult::queue_full) std::this_thread::yield();
      sent_bytes += msg.hidden.bytes.size();
    }
    while (lb.server_bytes.load() < sent_bytes) std::this_thread::yield();
  }
  state.SetBytesProcessed(static_cast<int64_t>(sent_bytes));
  state.SetLabel(state.range(0) == 0 ? "plaintext (benchmark only)" : "encrypted");
}
BENCHMARK(BM_Throughput1MiB)->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);

// One core, no sockets: the sender's work (encode + seal) and the receiver's
// (open + decode) for an 8 KiB and a 1 MiB hidden state, each on its own.
struct ChannelPair {
  std::unique_ptr<SecureChannel> a, b;
  ChannelPair() {
    ClusterSecret s = generate_cluster_secret();
    HandshakeConfig ci{generate_keypair(), s, {}, {}, false, kProtocolVersion};
    HandshakeConfig cr{generate_keypair(), s, {}, {}, false, kProtocolVersion};
    Handshake i(Handshake::Role::initiator, ci), r(Handshake::Role::responder, cr);
    r.read_msg1(i.write_msg1());
    i.read_msg2(r.write_msg2());
    r.read_msg3(i.write_msg3());
    a = std::make_unique<SecureChannel>(i.keys(), 64 << 20);
    b = std::make_unique<SecureChannel>(r.keys(), 64 << 20);
    b->accept_peer_header(a->local_header());
  }
};

void BM_EncodeSeal(benchmark::State& state) {
  ChannelPair p;
  Forward msg = hidden_state(static_cast<uint32_t>(state.range(0)), 2048);
  std::vector<std::byte> frame, plain;
  for (auto _ : state) {
    frame.clear();
    encode_into(msg, plain, 0);
    p.a->seal(plain, false, frame);
    benchmark::DoNotOptimize(frame.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.hidden.bytes.size()));
}
// Arg: rows of n_embd 2048 f32: 1 = 8 KiB, 128 = 1 MiB.
BENCHMARK(BM_EncodeSeal)->Arg(1)->Arg(128)->Unit(benchmark::kMicrosecond);

void BM_OpenDecode(benchmark::State& state) {
  ChannelPair p;
  Forward msg = hidden_state(static_cast<uint32_t>(state.range(0)), 2048);
  std::vector<std::vector<std::byte>> frames(64);
  for (auto& f : frames) p.a->seal(encode(msg), false, f);
  std::vector<std::byte> plain;
  size_t i = 0;
  for (auto _ : state) {
    if (i == frames.size()) {  // the stream cannot rewind: refill untimed
      state.PauseTiming();
      p = ChannelPair();
      for (auto& f : frames) {
        f.clear();
        p.a->seal(encode(msg), false, f);
      }
      i = 0;
      state.ResumeTiming();
    }
    auto& f = frames[i++];
    std::span<const std::byte, kFrameHeaderBytes> prefix(f.data(), kFrameHeaderBytes);
    auto opened = p.b->open(prefix, std::span(f).subspan(kFrameHeaderBytes), plain);
    DecodeResult d = decode(plain);
    if (!opened.ok || !d.ok()) state.SkipWithError("open/decode failed");
    benchmark::DoNotOptimize(d);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.hidden.bytes.size()));
}
BENCHMARK(BM_OpenDecode)->Arg(1)->Arg(128)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace zen::transport
