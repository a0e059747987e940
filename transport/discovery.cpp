#include "transport/discovery.h"

#include <charconv>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <stdexcept>

namespace zen::transport {

using asio::ip::udp;

std::string DiscoveredPeer::address() const { return host + ":" + std::to_string(tcp_port); }

udp::endpoint parse_discovery_target(std::string_view text, uint16_t default_port) {
  std::string_view host = text, port_text;
  if (const size_t colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  std::error_code ec;
  const asio::ip::address_v4 addr = asio::ip::make_address_v4(std::string(host), ec);
  if (ec) throw std::invalid_argument("discovery target '" + std::string(text) + "' is not an IPv4 address");
  unsigned port = default_port;
  if (!port_text.empty()) {
    const auto [end, perr] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (perr != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
      throw std::invalid_argument("discovery target '" + std::string(text) + "' has a bad port");
  }
  if (port == 0) throw std::invalid_argument("discovery target '" + std::string(text) + "' needs a port");
  return udp::endpoint(addr, static_cast<uint16_t>(port));
}

struct DiscoveryService::State : std::enable_shared_from_this<DiscoveryService::State> {
  asio::io_context& io;
  asio::strand<asio::io_context::executor_type> strand;
  udp::socket socket;
  asio::steady_timer timer;
  SecretKey key;
  LocalAnnouncement self;
  DiscoveryOptions opts;
  OnPeer on_peer;
  ReplayGuard guard;
  std::vector<udp::endpoint> targets;
  std::map<PublicKey, std::string> known;  // peer key -> last source address
  std::array<uint8_t, 2048> buf{};
  udp::endpoint sender;
  bool closed = false;
  std::chrono::steady_clock::time_point last_log[8]{};  // per BeaconStatus + 1 for socket errors
  mutable std::mutex stats_mu;
  DiscoveryStats stats;

  State(asio::io_context& io_, const ClusterSecret& secret, LocalAnnouncement s, DiscoveryOptions o, OnPeer p)
      : io(io_),
        strand(asio::make_strand(io_)),
        socket(strand),
        timer(strand),
        key(derive_discovery_key(secret)),
        self(std::move(s)),
        opts(std::move(o)),
        on_peer(std::move(p)),
        guard(opts.max_skew) {}

  // At most one line per kind every 30 s: a noisy network must not flood the log.
  void log(size_t kind, const std::string& line) {
    const auto now = std::chrono::steady_clock::now();
    if (last_log[kind].time_since_epoch().count() != 0 && now - last_log[kind] < std::chrono::seconds(30)) return;
    last_log[kind] = now;
    if (opts.log) opts.log(line);
    else std::cerr << "zen discovery: " << line << "\n";
  }

  void join_groups() {
    for (const udp::endpoint& t : targets) {
      if (!t.address().is_multicast()) continue;
      std::error_code ec;
      socket.set_option(asio::ip::multicast::join_group(t.address()), ec);
      if (ec) log(7, "cannot join multicast group " + t.address().to_string() + ": " + ec.message());
    }
  }

  void send_beacon() {
    if (closed) return;
    std::shared_ptr<const std::vector<uint8_t>> bytes;
    try {
      bytes = std::make_shared<const std::vector<uint8_t>>(
          encode_beacon(make_beacon(self.name, self.role, self.tcp_port, self.public_key), key));
    } catch (const std::exception& e) {
      return log(7, std::string("cannot make a beacon: ") + e.what());
    }
    for (const udp::endpoint& t : targets) {
      socket.async_send_to(asio::buffer(*bytes), t, [self = shared_from_this(), bytes, t](std::error_code ec, size_t) {
        {
          std::lock_guard lk(self->stats_mu);
          ++(ec ? self->stats.send_errors : self->stats.sent);
        }
        if (ec && ec != asio::error::operation_aborted)
          self->log(7, "cannot send a beacon to " + t.address().to_string() + ": " + ec.message());
      });
    }
  }

  void tick() {
    if (closed) return;
    send_beacon();
    timer.expires_after(opts.interval);
    timer.async_wait([self = shared_from_this()](std::error_code ec) {
      if (!ec) self->tick();
    });
  }

  void receive() {
    if (closed) return;
    socket.async_receive_from(asio::buffer(buf), sender, [self = shared_from_this()](std::error_code ec, size_t n) {
      if (self->closed || ec == asio::error::operation_aborted) return;
      if (ec) {
        // e.g. an ICMP "port unreachable" from an earlier unicast send: keep listening.
        self->log(7, "receive: " + ec.message());
      } else {
        self->handle(std::span<const uint8_t>(self->buf.data(), n));
      }
      self->receive();
    });
  }

  void reject(BeaconStatus s, const std::string& from, const std::string& detail = {}) {
    {
      std::lock_guard lk(stats_mu);
      ++stats.rejected[static_cast<size_t>(s)];
    }
    log(static_cast<size_t>(s), "ignored a beacon from " + from + ": " + beacon_status_name(s) + detail);
  }

  void handle(std::span<const uint8_t> bytes) {
    const std::string from = sender.address().to_string();
    {
      std::lock_guard lk(stats_mu);
      ++stats.received;
    }
    BeaconCheck c = verify_beacon(bytes, key);
    if (c.status == BeaconStatus::unsupported_version)
      return reject(c.status, from, " (node '" + c.beacon.name + "' speaks " + std::to_string(c.beacon.version) +
                                        ", we speak " + std::to_string(kProtocolVersion) + ")");
    if (c.status != BeaconStatus::ok) return reject(c.status, from);
    const Beacon& b = c.beacon;
    if (b.public_key == self.public_key) {
      std::lock_guard lk(stats_mu);
      ++stats.own;
      return;
    }
    const BeaconStatus fresh = guard.check(b, unix_time_ms());
    if (fresh != BeaconStatus::ok) return reject(fresh, from, " (node '" + b.name + "')");
    DiscoveredPeer p;
    p.name = b.name;
    p.role = b.role;
    p.host = from;
    p.tcp_port = b.tcp_port;
    p.public_key = b.public_key;
    const std::string addr = p.address();
    auto it = known.find(b.public_key);
    p.first_seen = it == known.end() || it->second != addr;
    if (it == known.end() && known.size() >= 1024) known.erase(known.begin());
    known[b.public_key] = addr;
    {
      std::lock_guard lk(stats_mu);
      ++stats.accepted;
    }
    if (on_peer) on_peer(p);
  }

  void shut() {
    closed = true;
    std::error_code ec;
    timer.cancel();
    socket.close(ec);
    on_peer = nullptr;
  }
};

DiscoveryService::DiscoveryService(asio::io_context& io, const ClusterSecret& secret, LocalAnnouncement self,
                                   DiscoveryOptions opts, OnPeer on_peer) {
  if (opts.interval.count() <= 0) throw std::invalid_argument("discovery interval must be positive");
  std::vector<udp::endpoint> targets;
  for (const std::string& t : opts.targets) targets.push_back(parse_discovery_target(t, opts.port));
  std::error_code ec;
  const asio::ip::address_v4 bind_addr = asio::ip::make_address_v4(opts.bind_address, ec);
  if (ec) throw std::invalid_argument("discovery bind address '" + opts.bind_address + "' is not an IPv4 address");
  const uint16_t port = opts.port;
  state_ = std::make_shared<State>(io, secret, std::move(self), std::move(opts), std::move(on_peer));
  State& s = *state_;
  s.targets = std::move(targets);
  s.socket.open(udp::v4());
  s.socket.set_option(udp::socket::reuse_address(true));  // several nodes on one host share the port
  s.socket.set_option(asio::socket_base::broadcast(true));
  s.socket.set_option(asio::ip::multicast::enable_loopback(true), ec);
  s.socket.set_option(asio::ip::multicast::hops(1), ec);  // beacons stay on the local network
  s.socket.bind(udp::endpoint(bind_addr, port));
  port_ = s.socket.local_endpoint().port();
  asio::post(s.strand, [st = state_] {
    st->join_groups();
    st->receive();
    st->tick();
  });
}

DiscoveryService::~DiscoveryService() { stop(); }

void DiscoveryService::set_targets(const std::vector<std::string>& targets) {
  std::vector<udp::endpoint> eps;
  for (const std::string& t : targets) eps.push_back(parse_discovery_target(t, port_));
  asio::post(state_->strand, [st = state_, eps = std::move(eps)] {
    st->targets = eps;
    st->join_groups();
  });
}

void DiscoveryService::announce_now() {
  asio::post(state_->strand, [st = state_] { st->send_beacon(); });
}

void DiscoveryService::stop() {
  if (state_->strand.running_in_this_thread() || state_->io.stopped()) return state_->shut();
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  asio::post(state_->strand, [st = state_, done] {
    st->shut();
    done->set_value();
  });
  // If no thread runs the context, nothing can race us: close directly.
  if (fut.wait_for(std::chrono::seconds(2)) != std::future_status::ready) state_->shut();
}

DiscoveryStats DiscoveryService::stats() const {
  std::lock_guard lk(state_->stats_mu);
  return state_->stats;
}

}  // namespace zen::transport
