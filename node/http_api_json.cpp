#include "node/http_api_json.h"

#include <algorithm>

#include "engine/chat_template.h"

namespace zen::node::api {

using nlohmann::json;

json error_body(const std::string& message, const std::string& type, const std::string& code) {
  return {{"error", {{"message", message}, {"type", type}, {"code", code}, {"param", nullptr}}}};
}

ApiError bad_request(const std::string& message, const std::string& code) {
  return ApiError(400, "invalid_request_error", code, message);
}

namespace {

// Typed field access: absent or null gives false; a value of the wrong type is a 400.
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

[[noreturn]] void wrong_type(const char* name, const char* want) {
  throw bad_request(std::string("'") + name + "' must be " + want, "invalid_type");
}

bool get_number(const json& body, const char* name, double lo, double hi, double& out) {
  const json* v = field(body, name);
  if (!v) return false;
  if (!v->is_number()) wrong_type(name, "a number");
  const double d = v->get<double>();
  if (!(d >= lo && d <= hi))
    throw bad_request(std::string("'") + name + "' must be in [" + json(lo).dump() + ", " + json(hi).dump() + "]");
  out = d;
  return true;
}

bool get_int(const json& body, const char* name, int64_t lo, int64_t hi, int64_t& out) {
  const json* v = field(body, name);
  if (!v) return false;
  if (!v->is_number_integer()) wrong_type(name, "an integer");
  const int64_t i = v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                        ? INT64_MAX : v->get<int64_t>();
  if (i < lo || i > hi)
    throw bad_request(std::string("'") + name + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  out = i;
  return true;
}

bool get_bool(const json& body, const char* name, bool& out) {
  const json* v = field(body, name);
  if (!v) return false;
  if (!v->is_boolean()) wrong_type(name, "a boolean");
  out = v->get<bool>();
  return true;
}

// Fields we do not implement are refused unless they ask for nothing (their neutral value).
void refuse_unsupported(const json& body) {
  double d = 0;
  for (const char* name : {"presence_penalty", "frequency_penalty"})
    if (get_number(body, name, -2, 2, d) && d != 0)
      throw bad_request(std::string("'") + name + "' is not supported (only 0)", "unsupported_parameter");
  int64_t n = 1;
  for (const char* name : {"n", "best_of"})
    if (get_int(body, name, 1, 1 << 30, n) && n != 1)
      throw bad_request(std::string("'") + name + "' is not supported (only 1)", "unsupported_parameter");
  bool b = false;
  if (get_bool(body, "echo", b) && b) throw bad_request("'echo' is not supported", "unsupported_parameter");
  if (const json* v = field(body, "logprobs"); v && !(v->is_boolean() && !v->get<bool>()))
    throw bad_request("'logprobs' is not supported", "unsupported_parameter");
  if (const json* v = field(body, "suffix"); v && !(v->is_string() && v->get_ref<const std::string&>().empty()))
    throw bad_request("'suffix' is not supported", "unsupported_parameter");
  for (const char* name : {"tools", "functions", "logit_bias"})
    if (const json* v = field(body, name); v && !v->empty())
      throw bad_request(std::string("'") + name + "' is not supported", "unsupported_parameter");
  if (const json* v = field(body, "response_format")) {
    if (!v->is_object()) wrong_type("response_format", "an object");
    auto t = v->find("type");
    if (t != v->end() && *t != "text")
      throw bad_request("response_format: only {\"type\": \"text\"} is supported", "unsupported_parameter");
  }
}

std::vector<std::string> get_stop(const json& body) {
  const json* v = field(body, "stop");
  if (!v) return {};
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array()) wrong_type("stop", "a string or an array of strings");
  if (v->size() > 16) throw bad_request("'stop' may have at most 16 strings");
  std::vector<std::string> out;
  for (const json& s : *v) {
    if (!s.is_string()) wrong_type("stop", "a string or an array of strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

std::string message_content(const json& m, size_t i) {
  const std::string where = "messages[" + std::to_string(i) + "].content";
  auto c = m.find("content");
  if (c == m.end() || c->is_null()) return "";
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array()) throw bad_request("'" + where + "' must be a string or an array of text parts", "invalid_type");
  std::string text;
  for (const json& part : *c) {
    if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") || !part["text"].is_string())
      throw bad_request("'" + where + "': only parts of the form {\"type\": \"text\", \"text\": \"...\"} are supported",
                        "invalid_type");
    text += part["text"].get<std::string>();
  }
  return text;
}

std::vector<engine::ChatMessage> get_messages(const json& body) {
  const json* v = field(body, "messages");
  if (!v) throw bad_request("'messages' is required", "missing_required_parameter");
  if (!v->is_array()) wrong_type("messages", "an array");
  if (v->empty()) throw bad_request("'messages' must not be empty");
  std::vector<engine::ChatMessage> out;
  for (size_t i = 0; i < v->size(); ++i) {
    const json& m = (*v)[i];
    if (!m.is_object()) throw bad_request("'messages[" + std::to_string(i) + "]' must be an object", "invalid_type");
    auto r = m.find("role");
    if (r == m.end() || !r->is_string())
      throw bad_request("'messages[" + std::to_string(i) + "].role' must be a string", "invalid_type");
    std::string role = r->get<std::string>();
    if (role == "developer") role = "system";  // the newer name of the same thing
    if (role != "system" && role != "user" && role != "assistant")
      throw bad_request("'messages[" + std::to_string(i) + "].role' is '" + r->get<std::string>() +
                        "'; supported roles: system (or developer), user, assistant", "invalid_role");
    out.push_back({role, message_content(m, i)});
  }
  return out;
}

std::vector<int32_t> get_prompt(const json& body, const engine::Tokenizer& tok) {
  const json* v = field(body, "prompt");
  if (!v) throw bad_request("'prompt' is required", "missing_required_parameter");
  if (v->is_array() && v->size() == 1 && (*v)[0].is_string()) v = &(*v)[0];
  if (v->is_string()) return tok.encode(v->get_ref<const std::string&>(), /*add_special=*/true, /*parse_special=*/false);
  if (v->is_array() && !v->empty() && std::all_of(v->begin(), v->end(), [](const json& t) { return t.is_number_integer(); })) {
    std::vector<int32_t> ids;
    for (const json& t : *v) {
      const int64_t id = t.get<int64_t>();
      if (id < 0 || id >= tok.n_vocab())
        throw bad_request("prompt token " + std::to_string(id) + " is out of range [0, " + std::to_string(tok.n_vocab()) + ")");
      ids.push_back(static_cast<int32_t>(id));
    }
    return ids;
  }
  if (v->is_array()) throw bad_request("'prompt': several prompts in one request are not supported", "unsupported_parameter");
  wrong_type("prompt", "a string, an array of one string, or an array of token ids");
}

}  // namespace

ParsedRequest parse_request(std::string_view text, Endpoint endpoint, const InferenceService& svc,
                            const engine::SamplerParams& defaults, uint64_t random_seed) {
  json body;
  try {
    body = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number too big (1e999)
    throw bad_request(std::string("the body is not valid JSON: ") + e.what(), "invalid_json");
  }
  if (!body.is_object()) throw bad_request("the body must be a JSON object", "invalid_json");
  if (const json* m = field(body, "model"); m && !m->is_string()) wrong_type("model", "a string");
  refuse_unsupported(body);

  ParsedRequest p;
  p.endpoint = endpoint;
  CompletionRequest& r = p.req;
  const int n_ctx = svc.n_ctx();
  const engine::Tokenizer& tok = svc.tokenizer();
  if (endpoint == Endpoint::chat) {
    const std::string tmpl = svc.chat_template();
    std::string prompt;
    try {
      prompt = engine::render_chat(tmpl, get_messages(body), /*add_generation_prompt=*/true);
    } catch (const std::invalid_argument& e) {
      throw bad_request(e.what());
    }
    r.prompt = tok.encode(prompt, /*add_special=*/true, /*parse_special=*/true);
    r.stop_tokens = engine::chat_template_stop_tokens(tmpl, tok);
    r.stop = engine::chat_template_stop_strings(tmpl);
  } else {
    r.prompt = get_prompt(body, tok);
  }
  if (r.prompt.empty()) throw bad_request("the prompt is empty");
  if (r.prompt.size() >= static_cast<size_t>(n_ctx))
    throw bad_request("the prompt has " + std::to_string(r.prompt.size()) + " tokens but the context holds " +
                      std::to_string(n_ctx) + " (a prompt may have at most " + std::to_string(n_ctx - 1) + ")",
                      "context_length_exceeded");

  // OpenAI's defaults: 16 tokens for completions, the rest of the context for chat.
  int64_t max_tokens = endpoint == Endpoint::chat ? n_ctx - static_cast<int64_t>(r.prompt.size()) + 1 : 16;
  const bool has_mct = endpoint == Endpoint::chat && get_int(body, "max_completion_tokens", 1, n_ctx, max_tokens);
  if (!has_mct) get_int(body, "max_tokens", 1, n_ctx, max_tokens);
  r.max_tokens = static_cast<int>(max_tokens);

  r.sampling = defaults;
  double d = 0;
  int64_t i = 0;
  if (get_number(body, "temperature", 0, 2, d)) r.sampling.temperature = static_cast<float>(d);
  if (get_number(body, "top_p", 0, 1, d)) r.sampling.top_p = static_cast<float>(d);
  if (get_number(body, "min_p", 0, 1, d)) r.sampling.min_p = static_cast<float>(d);
  if (get_int(body, "top_k", 0, 1 << 20, i)) r.sampling.top_k = static_cast<int>(i);
  if (get_number(body, "repeat_penalty", 0.01, 100, d)) r.sampling.repeat_penalty = static_cast<float>(d);
  r.sampling.seed = random_seed;
  if (get_int(body, "seed", INT64_MIN, INT64_MAX, i)) r.sampling.seed = static_cast<uint64_t>(i);

  for (auto& s : get_stop(body)) r.stop.push_back(std::move(s));
  get_bool(body, "stream", p.stream);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) wrong_type("stream_options", "an object");
    get_bool(*so, "include_usage", p.include_usage);
  }
  return p;
}

json usage_json(const TokenEvent& ev) {
  json u = {{"prompt_tokens", ev.prompt_tokens},
            {"completion_tokens", ev.completion_tokens},
            {"total_tokens", ev.prompt_tokens + ev.completion_tokens}};
  const engine::SpecStats& s = ev.speculative;
  if (s.passes > 0)
    u["speculative"] = {{"passes", s.passes},
                        {"drafted_tokens", s.drafted},
                        {"accepted_tokens", s.accepted},
                        {"acceptance_rate", s.acceptance()},
                        {"tokens_per_pass", s.tokens_per_pass()}};
  return u;
}

namespace {
json head(const ResponseMeta& m, const char* object) {
  return {{"id", m.id}, {"object", object}, {"created", m.created}, {"model", m.model}, {"system_fingerprint", "zen"}};
}
json reason_or_null(const std::string& r) { return r.empty() ? json(nullptr) : json(r); }
}  // namespace

json completion_json(const ResponseMeta& m, const std::string& text, const TokenEvent& ev) {
  const std::string& finish_reason = ev.finish_reason;
  const bool chat = m.endpoint == Endpoint::chat;
  json out = head(m, chat ? "chat.completion" : "text_completion");
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", reason_or_null(finish_reason)}};
  if (chat) choice["message"] = {{"role", "assistant"}, {"content", text}};
  else choice["text"] = text;
  out["choices"] = json::array({choice});
  out["usage"] = usage_json(ev);
  return out;
}

json chunk_json(const ResponseMeta& m, const std::string& text, const std::string& finish_reason, bool role_only) {
  const bool chat = m.endpoint == Endpoint::chat;
  json out = head(m, chat ? "chat.completion.chunk" : "text_completion");
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", reason_or_null(finish_reason)}};
  if (chat) {
    json delta = json::object();
    if (role_only) delta = {{"role", "assistant"}, {"content", ""}};
    else if (!text.empty()) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  out["choices"] = json::array({choice});
  return out;
}

json usage_chunk_json(const ResponseMeta& m, const TokenEvent& ev) {
  json out = head(m, m.endpoint == Endpoint::chat ? "chat.completion.chunk" : "text_completion");
  out["choices"] = json::array();
  out["usage"] = usage_json(ev);
  return out;
}

json model_json(const std::string& model, int64_t created) {
  return {{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "zen"}};
}

json models_json(const std::string& model, int64_t created) {
  return {{"object", "list"}, {"data", json::array({model_json(model, created)})}};
}

}  // namespace zen::node::api
