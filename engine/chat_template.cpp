#include "engine/chat_template.h"

#include <algorithm>
#include <functional>
#include <stdexcept>

namespace zen::engine {

namespace {

// DeepSeek's full-width markers: <｜end▁of▁sentence｜>, <｜User｜>, <｜Assistant｜>.
const std::string kDsEos = "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>";
const std::string kDsUser = "<\xEF\xBD\x9CUser\xEF\xBD\x9C>";
const std::string kDsAssistant = "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>";

std::string trim(std::string_view s) {
  const char* ws = " \t\n\r\v\f";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

void check_role(const ChatMessage& m) {
  if (m.role != "system" && m.role != "user" && m.role != "assistant") {
    throw std::invalid_argument("chat message role '" + m.role + "' is not one of system, user, assistant");
  }
}

// Formats that have no system turn put the system text in front of the first user message.
std::vector<ChatMessage> fold_system(const std::vector<ChatMessage>& msgs, std::string_view joiner) {
  std::vector<ChatMessage> out;
  std::string pending;
  for (const ChatMessage& m : msgs) {
    if (m.role == "system") {
      pending += m.content;
      continue;
    }
    ChatMessage c = m;
    if (!pending.empty() && c.role == "user") {
      c.content = pending + std::string(joiner) + c.content;
      pending.clear();
    }
    out.push_back(std::move(c));
  }
  if (!pending.empty()) out.push_back({"user", pending});
  return out;
}

using Renderer = std::function<std::string(const std::vector<ChatMessage>&, bool)>;

std::string chatml(const std::vector<ChatMessage>& msgs, bool gen) {
  std::string s;
  for (const auto& m : msgs) s += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (gen) s += "<|im_start|>assistant\n";
  return s;
}

std::string llama3(const std::vector<ChatMessage>& msgs, bool gen) {
  std::string s;
  for (const auto& m : msgs) s += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
  if (gen) s += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return s;
}

// Llama 2: "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {answer} </s><s>[INST] ..."
std::string llama2(const std::vector<ChatMessage>& msgs, bool) {
  std::string s, system;
  bool first_user = true;
  for (const auto& m : msgs) {
    if (m.role == "system") {
      system = trim(m.content);
    } else if (m.role == "user") {
      if (!first_user) s += "<s>";
      s += "[INST] ";
      if (first_user && !system.empty()) s += "<<SYS>>\n" + system + "\n<</SYS>>\n\n";
      s += trim(m.content) + " [/INST]";
      first_user = false;
    } else {
      s.append(" ").append(trim(m.content)).append(" </s>");
    }
  }
  return s;
}

// Mistral Instruct: "[INST] {user} [/INST]{answer}</s>[INST] ..." (system folded into the first user turn).
std::string mistral(const std::vector<ChatMessage>& msgs, bool) {
  std::string s;
  for (const auto& m : fold_system(msgs, "\n\n")) {
    if (m.role == "user") s += "[INST] " + m.content + " [/INST]";
    else s += m.content + "</s>";
  }
  return s;
}

std::string gemma(const std::vector<ChatMessage>& msgs, bool gen) {
  std::string s;
  for (const auto& m : fold_system(msgs, "\n\n")) {
    s += "<start_of_turn>" + std::string(m.role == "assistant" ? "model" : "user") + "\n" + trim(m.content) +
         "<end_of_turn>\n";
  }
  if (gen) s += "<start_of_turn>model\n";
  return s;
}

std::string phi3(const std::vector<ChatMessage>& msgs, bool gen) {
  std::string s;
  for (const auto& m : msgs) s += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
  if (gen) s += "<|assistant|>\n";
  return s;
}

std::string zephyr(const std::vector<ChatMessage>& msgs, bool gen) {
  std::string s;
  for (const auto& m : msgs) s += "<|" + m.role + "|>\n" + m.content + "</s>\n";
  if (gen) s += "<|assistant|>\n";
  return s;
}

// DeepSeek LLM chat: "{system}\n\nUser: {user}\n\nAssistant: {answer}<｜end▁of▁sentence｜>User: ..."
std::string deepseek(const std::vector<ChatMessage>& msgs, bool gen) {
  std::string s;
  for (const auto& m : msgs) {
    if (m.role == "system") s += m.content + "\n\n";
    else if (m.role == "user") s += "User: " + m.content + "\n\n";
    else s += "Assistant: " + m.content + kDsEos;
  }
  if (gen) s += "Assistant:";
  return s;
}

// DeepSeek V3 / R1: "{system}<｜User｜>{user}<｜Assistant｜>{answer}<｜end▁of▁sentence｜>"
std::string deepseek3(const std::vector<ChatMessage>& msgs, bool gen) {
  std::string s;
  for (const auto& m : msgs) {
    if (m.role == "system") s += m.content;
    else if (m.role == "user") s += kDsUser + m.content;
    else s += kDsAssistant + m.content + kDsEos;
  }
  if (gen) s += kDsAssistant;
  return s;
}

// DeepSeek Coder instruct: "{system}### Instruction:\n{user}\n### Response:\n{answer}\n<|EOT|>\n"
std::string deepseek_coder(const std::vector<ChatMessage>& msgs, bool gen) {
  std::string s;
  for (const auto& m : msgs) {
    if (m.role == "system") s += m.content;
    else if (m.role == "user") s += "### Instruction:\n" + m.content + "\n";
    else s += "### Response:\n" + m.content + "\n<|EOT|>\n";
  }
  if (gen) s += "### Response:\n";
  return s;
}

std::string simple(const std::vector<ChatMessage>& msgs, bool gen) {
  std::string s;
  for (const auto& m : msgs) {
    const char* who = m.role == "system" ? "System" : m.role == "user" ? "User" : "Assistant";
    s += std::string(who) + ": " + m.content + "\n";
  }
  if (gen) s += "Assistant:";
  return s;
}

struct Template {
  const char* name;
  Renderer render;
  std::vector<std::string> stops;
};

const std::vector<Template>& templates() {
  static const std::vector<Template> t = {
      {"chatml", chatml, {"<|im_end|>"}},
      {"llama3", llama3, {"<|eot_id|>"}},
      {"llama2", llama2, {"</s>"}},
      {"mistral", mistral, {"</s>"}},
      {"gemma", gemma, {"<end_of_turn>"}},
      {"phi3", phi3, {"<|end|>"}},
      {"zephyr", zephyr, {"</s>"}},
      {"deepseek", deepseek, {kDsEos}},
      {"deepseek3", deepseek3, {kDsEos}},
      {"deepseek-coder", deepseek_coder, {"<|EOT|>"}},
      {"simple", simple, {"\nUser:"}},
  };
  return t;
}

std::string known_list() {
  std::string s;
  for (const auto& t : templates()) s += (s.empty() ? "" : ", ") + std::string(t.name);
  return s;
}

const Template& lookup(std::string_view name) {
  for (const auto& t : templates()) {
    if (name == t.name) return t;
  }
  throw std::invalid_argument("unknown chat template '" + std::string(name) + "'; known templates: " + known_list());
}

bool has(std::string_view s, std::string_view needle) { return s.find(needle) != std::string_view::npos; }

}  // namespace

std::vector<std::string> known_chat_templates() {
  std::vector<std::string> names;
  for (const auto& t : templates()) names.emplace_back(t.name);
  return names;
}

std::string render_chat(std::string_view template_name, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt) {
  const Template& t = lookup(template_name);
  for (const auto& m : messages) check_role(m);
  return t.render(messages, add_generation_prompt);
}

std::vector<std::string> chat_template_stop_strings(std::string_view template_name) {
  return lookup(template_name).stops;
}

std::vector<int32_t> chat_template_stop_tokens(std::string_view template_name, const Tokenizer& tok) {
  std::vector<int32_t> ids = tok.eog_ids();
  for (const std::string& s : chat_template_stop_strings(template_name)) {
    if (const int32_t id = tok.find_token(s); id >= 0) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::string detect_chat_template_source(std::string_view j) {
  if (has(j, "<|im_start|>")) return "chatml";
  if (has(j, "<|start_header_id|>") && has(j, "<|end_header_id|>")) return "llama3";
  if (has(j, "<start_of_turn>")) return "gemma";
  if (has(j, "<|assistant|>") && has(j, "<|end|>")) return "phi3";
  if (has(j, "<|user|>")) return "zephyr";
  if (has(j, kDsAssistant)) return "deepseek3";
  if (has(j, "### Instruction:") && has(j, "<|EOT|>")) return "deepseek-coder";
  if (has(j, "[INST]")) return has(j, "<<SYS>>") ? "llama2" : "mistral";
  if (has(j, "User: ") && has(j, "Assistant:")) return "deepseek";
  throw std::invalid_argument("the model's chat template is not one of the known formats (" + known_list() +
                              "); choose one with --chat-template NAME");
}

bool has_chat_template(const GgufFile& gguf) {
  const auto t = gguf.get_string("tokenizer.chat_template");
  return t && !t->empty();
}

std::string detect_chat_template(const GgufFile& gguf) {
  if (!has_chat_template(gguf)) return "simple";
  return detect_chat_template_source(*gguf.get_string("tokenizer.chat_template"));
}

}  // namespace zen::engine
