// LAN discovery over UDP: sends this node's beacon (discovery_beacon.h) every interval to a
// list of targets (IPv4 broadcast, multicast groups or unicast addresses) and reports
// verified beacons from other cluster members. Discovery only says where a node is; the
// TCP handshake still proves the cluster secret (and the allow list) before any link.
//
// Threading: everything runs on the given io_context (IoThread); on_peer runs there and must
// not block. set_targets()/announce_now()/stop() may be called from any thread.
#pragma once

#include <asio.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "transport/discovery_beacon.h"

namespace zen::transport {

struct DiscoveryOptions {
  std::string bind_address = "0.0.0.0";
  uint16_t port = 7701;  // UDP port to receive on (and the default target port); 0: any free port
  // "ip" or "ip:port" (port defaults to `port`). Multicast groups are joined for receiving.
  std::vector<std::string> targets{"255.255.255.255"};
  std::chrono::milliseconds interval{2000};
  std::chrono::milliseconds max_skew{30000};
  // Where refusals and errors go (rate-limited); default: one line on stderr.
  std::function<void(std::string_view)> log;
};

// What this node announces.
struct LocalAnnouncement {
  std::string name;
  BeaconRole role = BeaconRole::worker;
  uint16_t tcp_port = 0;
  PublicKey public_key{};
};

struct DiscoveredPeer {
  std::string name;
  BeaconRole role = BeaconRole::worker;
  std::string host;       // the beacon's source IP address
  uint16_t tcp_port = 0;  // from the beacon
  PublicKey public_key{};
  bool first_seen = false;  // first beacon from this key, or its address changed
  std::string address() const;  // "host:tcp_port"
};

struct DiscoveryStats {
  uint64_t sent = 0, send_errors = 0, received = 0, accepted = 0, own = 0;
  std::array<uint64_t, 6> rejected{};  // indexed by BeaconStatus
};

class DiscoveryService {
 public:
  using OnPeer = std::function<void(const DiscoveredPeer&)>;
  // Binds the UDP socket now (throws std::system_error if it cannot), then starts sending and
  // receiving on the io thread. The first beacon goes out at once.
  DiscoveryService(asio::io_context& io, const ClusterSecret& secret, LocalAnnouncement self, DiscoveryOptions opts,
                   OnPeer on_peer);
  ~DiscoveryService();  // stop()
  DiscoveryService(const DiscoveryService&) = delete;
  DiscoveryService& operator=(const DiscoveryService&) = delete;

  uint16_t port() const { return port_; }  // the bound UDP port
  // Replaces the target list (throws std::invalid_argument on a bad address).
  void set_targets(const std::vector<std::string>& targets);
  void announce_now();
  // Closes the socket; on_peer is never called after stop() returns.
  void stop();
  DiscoveryStats stats() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
  uint16_t port_ = 0;
};

// "ip" or "ip:port" -> endpoint (IPv4 only); throws std::invalid_argument.
asio::ip::udp::endpoint parse_discovery_target(std::string_view text, uint16_t default_port);

}  // namespace zen::transport
