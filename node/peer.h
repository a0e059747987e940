// Helpers shared by the coordinator and the workers: credentials from the config, link
// options, a send that waits out backpressure, and logging.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "node/config.h"
#include "transport/asio_link.h"

namespace zen::node {

transport::Credentials credentials(const NodeConfig& cfg);
transport::LinkOptions link_options(const NodeConfig& cfg);

// Sends, retrying while the link's queue is full (backpressure), up to `timeout`.
// Returns false when the link is closed or the timeout passes.
bool send_wait(transport::Link& link, const transport::Message& m,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));

// One line on stderr: "zen-node <name>: <text>".
void log_line(const std::string& node, const std::string& text);

}  // namespace zen::node
