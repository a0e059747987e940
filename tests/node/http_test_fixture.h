// The HTTP API test fixture: a LocalService on the small synthetic model behind an HttpApi on
// an ephemeral port, and clients for it.
#pragma once
#include <gtest/gtest.h>
#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "engine/model.h"
#include "node/http_api.h"
#include "node/local_service.h"
#include "tests/node/test_local_service_model.h"

namespace zen {

class HttpApiTest : public ::testing::Test {
 protected:
  void start(node::HttpApiOptions o = {}, int n_ctx = 256, node::LocalServiceOptions so = {}) {
    so.n_ctx = n_ctx;
    so.max_seqs = 4;
    so.max_chunk = 32;
    svc_ = std::make_unique<node::LocalService>(engine::Model::load(test::synth_model_path()), so, "synth");
    o.port = 0;
    api_ = std::make_unique<node::HttpApi>(*svc_, o);
    api_->start();
    ASSERT_GT(api_->port(), 0);
  }
  std::unique_ptr<httplib::Client> client() {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", api_->port());
    c->set_read_timeout(20, 0);
    return c;
  }
  httplib::Result post(const std::string& path, const nlohmann::json& body, const httplib::Headers& h = {}) {
    return client()->Post(path.c_str(), h, body.dump(), "application/json");
  }
  void TearDown() override {
    if (api_) api_->stop();
  }
  std::unique_ptr<node::LocalService> svc_;
  std::unique_ptr<node::HttpApi> api_;
};

}  // namespace zen
