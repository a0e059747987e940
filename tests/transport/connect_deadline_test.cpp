// A dial to a peer that never answers ends within the handshake deadline, also when the TCP
// connect itself gets no answer (a listener whose accept queue is full drops new SYNs, as a
// host gone from the network does): a worker retries its coordinator on its own schedule, not
// after the kernel's minutes of SYN retries.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/transport/loopback_util.h"

namespace zen::transport::testing {
namespace {

TEST(ConnectDeadline, UnansweredDialEndsWithinTheHandshakeDeadline) {
  // A listener that never accepts, with its accept queue filled by raw connections.
  const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(lfd, 0), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const uint16_t port = ntohs(addr.sin_port);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fillers.push_back(fd);
  }
  std::this_thread::sleep_for(100ms);

  IoThread io;
  Credentials c{generate_keypair(), generate_cluster_secret(), {}};
  const auto t0 = std::chrono::steady_clock::now();
  std::string error;
  try {
    connect_blocking(io.context(), "127.0.0.1", port, c, fast_options());
  } catch (const std::runtime_error& e) {
    error = e.what();
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(error.empty()) << "the dial succeeded against a listener that never accepts";
  EXPECT_LT(ms, 1500) << error;  // deadline 300 ms; the first SYN retry alone comes after 1 s
  EXPECT_TRUE(error.find("within 300 ms") != std::string::npos || error.find("deadline") != std::string::npos) << error;
  for (int fd : fillers) ::close(fd);
  ::close(lfd);
}

}  // namespace
}  // namespace zen::transport::testing
