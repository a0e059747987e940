// `zen chat` driven through a pseudo-terminal: two turns on stories260K with the simple
// template, then Ctrl-D ends the session cleanly.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "tests/engine/testdata.h"

namespace zen::test {
namespace {

// Reads from the terminal until `needle` appears `count` times or the timeout passes.
bool read_until(int fd, std::string& screen, const std::string& needle, size_t count, int timeout_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto occurrences = [&] {
    size_t n = 0;
    for (size_t at = screen.find(needle); at != std::string::npos; at = screen.find(needle, at + 1)) ++n;
    return n;
  };
  while (occurrences() < count) {
    const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()).count());
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    screen.append(buf, static_cast<size_t>(n));
  }
  return true;
}

TEST(ChatPty, TwoTurnsOnStories260K) {
  ZEN_REQUIRE_TESTDATA();
  const std::string zen = std::string(ZEN_BINARY_DIR) + "/bin/zen";
  const std::string model = (testdata_dir() / "models" / "stories260K.gguf").string();
  int fd = -1;
  const pid_t pid = ::forkpty(&fd, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl(zen.c_str(), zen.c_str(), "chat", "-m", model.c_str(), "--chat-template", "simple", "-n", "24", "--temp",
            "0", "-t", "1", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::string screen;
  ASSERT_TRUE(read_until(fd, screen, "> ", 1, 20000)) << screen;
  const std::string turn1 = "Once upon a time\n";
  ASSERT_EQ(::write(fd, turn1.data(), turn1.size()), static_cast<ssize_t>(turn1.size()));
  ASSERT_TRUE(read_until(fd, screen, "> ", 2, 20000)) << screen;
  const size_t answer1_at = screen.find(turn1.substr(0, turn1.size() - 1));
  const std::string turn2 = "Lily went to the park\n";
  ASSERT_EQ(::write(fd, turn2.data(), turn2.size()), static_cast<ssize_t>(turn2.size()));
  ASSERT_TRUE(read_until(fd, screen, "> ", 3, 20000)) << screen;
  const char eot = 4;  // Ctrl-D
  ASSERT_EQ(::write(fd, &eot, 1), 1);
  int status = 0;
  for (int i = 0; i < 100 && ::waitpid(pid, &status, WNOHANG) == 0; ++i) ::usleep(50000);
  ::close(fd);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << screen;
  // Each turn got an answer: text between the echoed line and the next prompt.
  ASSERT_NE(answer1_at, std::string::npos) << screen;
  const size_t p2 = screen.find("> ", answer1_at);
  const size_t p3 = screen.find("> ", p2 + 2);
  ASSERT_NE(p3, std::string::npos) << screen;
  const std::string answer1 = screen.substr(answer1_at + turn1.size(), p2 - answer1_at - turn1.size());
  const std::string answer2 = screen.substr(screen.find("park", p2) + 4, p3 - screen.find("park", p2) - 4);
  EXPECT_GT(answer1.find_first_not_of(" \r\n"), 0u);
  EXPECT_NE(answer1.find_first_not_of(" \r\n"), std::string::npos) << "empty first answer:\n" << screen;
  EXPECT_NE(answer2.find_first_not_of(" \r\n"), std::string::npos) << "empty second answer:\n" << screen;
}

}  // namespace
}  // namespace zen::test
