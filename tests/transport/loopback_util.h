// Helpers for the loopback tests: a listening server that records links,
// refusals and log lines, and a hand-driven client that can misbehave.
#pragma once

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "transport/asio_link.h"
#include "transport/codec.h"

namespace zen::transport::testing {

using namespace std::chrono_literals;

inline LinkOptions fast_options() {
  LinkOptions o;
  o.handshake_timeout = 300ms;
  o.read_timeout = 300ms;
  o.keepalive_interval = 50ms;
  o.max_frame_bytes = 1 << 20;
  return o;
}

// Thread-safe record of everything that happened on the server side.
struct Events {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> rejects, closes, log;
  std::vector<Message> messages;
  std::vector<std::shared_ptr<Link>> links;

  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout = 3000ms) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, timeout, [&] { return pred(*this); });
  }
  void add(std::vector<std::string>& to, std::string s) {
    std::lock_guard lk(mu);
    to.push_back(std::move(s));
    cv.notify_all();
  }
  bool logged(const std::string& needle) {
    std::lock_guard lk(mu);
    for (auto& l : log)
      if (l.find(needle) != std::string::npos) return true;
    return false;
  }
};

// A listener on 127.0.0.1 that echoes every message back and records events.
struct Server {
  Credentials creds;
  std::shared_ptr<Events> ev = std::make_shared<Events>();
  IoThread io;
  std::unique_ptr<Listener> listener;

  explicit Server(ClusterSecret secret, LinkOptions opts = fast_options(), std::vector<PublicKey> allow = {}) {
    creds.identity = generate_keypair();
    creds.cluster_secret = secret;
    creds.allow_list = std::move(allow);
    auto ev_ = ev;
    opts.log = [ev_](std::string_view line) { ev_->add(ev_->log, std::string(line)); };
    listener = std::make_unique<Listener>(
        io.context(), asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), creds, opts,
        [ev_](std::shared_ptr<Link> link) {
          std::weak_ptr<Link> weak = link;
          link->start({[ev_, weak](Message&& m) {
                         if (auto l = weak.lock()) l->send(m);
                         std::lock_guard lk(ev_->mu);
                         ev_->messages.push_back(std::move(m));
                         ev_->cv.notify_all();
                       },
                       [ev_](const std::string& reason) { ev_->add(ev_->closes, reason); }});
          std::lock_guard lk(ev_->mu);
          ev_->links.push_back(link);
          ev_->cv.notify_all();
        },
        [ev_](const std::string&, const std::string& reason) { ev_->add(ev_->rejects, reason); });
  }
  ~Server() {
    listener->close();
    std::vector<std::shared_ptr<Link>> links;
    {
      std::lock_guard lk(ev->mu);
      links.swap(ev->links);  // the links' handlers hold ev: break the cycle
    }
    for (auto& l : links) l->close("test over");
  }
  uint16_t port() const { return listener->port(); }
  size_t n_rejects() {
    std::lock_guard lk(ev->mu);
    return ev->rejects.size();
  }
  std::string last_reject() {
    std::lock_guard lk(ev->mu);
    return ev->rejects.empty() ? "" : ev->rejects.back();
  }
  std::string wait_close() {
    EXPECT_TRUE(ev->wait([](Events& e) { return !e.closes.empty(); })) << "server link never closed";
    std::lock_guard lk(ev->mu);
    return ev->closes.empty() ? "" : ev->closes.back();
  }
  std::string wait_reject(size_t before) {
    EXPECT_TRUE(ev->wait([before](Events& e) { return e.rejects.size() > before; })) << "no refusal recorded";
    return last_reject();
  }
};

// A client driven by hand with blocking sockets: it can run the real handshake
// (or a wrong one) and then write arbitrary bytes.
struct RawClient {
  asio::io_context io;
  asio::ip::tcp::socket sock{io};
  std::unique_ptr<SecureChannel> channel;

  explicit RawClient(uint16_t port) { sock.connect({asio::ip::make_address("127.0.0.1"), port}); }

  void write(std::span<const uint8_t> b) { asio::write(sock, asio::buffer(b.data(), b.size())); }
  void write_bytes(std::span<const std::byte> b) { asio::write(sock, asio::buffer(b.data(), b.size())); }
  std::vector<uint8_t> read(size_t n) {
    std::vector<uint8_t> b(n);
    asio::read(sock, asio::buffer(b));
    return b;
  }
  // Full initiator handshake; returns normally only on success.
  void handshake(HandshakeConfig cfg, size_t max_frame = 1 << 20) {
    Handshake hs(Handshake::Role::initiator, std::move(cfg));
    write(hs.write_msg1());
    hs.read_msg2(read(kMsg2Bytes));
    auto m3 = hs.write_msg3();
    auto keys = hs.keys();
    channel = std::make_unique<SecureChannel>(keys, max_frame);
    m3.insert(m3.end(), channel->local_header().begin(), channel->local_header().end());
    write(m3);
    if (!channel->accept_peer_header(read(kStreamHeaderBytes))) throw std::runtime_error("bad stream header");
  }
  std::vector<std::byte> frame(const Message& m, bool final = false) {
    std::vector<std::byte> f;
    channel->seal(encode(m), final, f);
    return f;
  }
  // True when the server closed the connection (read returns EOF/reset), within the deadline.
  bool server_hung_up(std::chrono::milliseconds within = 3000ms) {
    auto end = std::chrono::steady_clock::now() + within;
    sock.non_blocking(true);
    uint8_t b[4096];
    while (std::chrono::steady_clock::now() < end) {
      std::error_code ec;
      sock.read_some(asio::buffer(b), ec);
      if (ec == asio::error::would_block) {
        std::this_thread::sleep_for(5ms);
        continue;
      }
      if (ec) return true;
    }
    return false;
  }
};

inline HandshakeConfig client_config(const ClusterSecret& s, KeyPair id = generate_keypair()) {
  HandshakeConfig c;
  c.identity = std::move(id);
  c.cluster_secret = s;
  return c;
}

}  // namespace zen::transport::testing
