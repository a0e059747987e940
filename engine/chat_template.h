// Chat prompt formats. A model's tokenizer.chat_template (Jinja source) is recognised by its
// markers and mapped to one of the built-in renderers below; nothing executes Jinja.
//
// The rendered text leaves out the leading BOS: tokenize it with add_special = true (the
// tokenizer adds BOS when the model wants one) and parse_special = true (so "<|im_start|>" and
// friends become their control tokens).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "engine/gguf.h"
#include "engine/tokenizer.h"

namespace zen::engine {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// Names: chatml, llama3, llama2, mistral, gemma, phi3, zephyr, deepseek, deepseek3,
// deepseek-coder, simple. "simple" is the fallback for a model without any template:
//   "System: ...\n" (if any) "User: ...\n" "Assistant: ...\n" ... and "Assistant:" as prompt.
std::vector<std::string> known_chat_templates();

// Throws std::invalid_argument for an unknown name or role (the message lists the known ones).
std::string render_chat(std::string_view template_name, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt);

// The template name for a model: recognised from tokenizer.chat_template, "simple" when the
// model has no template at all (has_chat_template() tells the caller to say so). A template
// that is present but not recognised is an error naming the known templates.
std::string detect_chat_template(const GgufFile& gguf);
std::string detect_chat_template_source(std::string_view jinja);  // the same, on the source text
bool has_chat_template(const GgufFile& gguf);

// Text that ends an assistant turn in this format (the end-of-turn token texts, or for
// "simple" the start of the next user line). A chat loop stops on a generated token whose
// text is one of these, on an end-of-generation token, or when the output ends with one.
std::vector<std::string> chat_template_stop_strings(std::string_view template_name);
// The ids a chat loop stops on: the tokenizer's end-of-generation ids plus every stop string
// that is a single token of this vocabulary. Sorted, without duplicates.
std::vector<int32_t> chat_template_stop_tokens(std::string_view template_name, const Tokenizer& tok);

}  // namespace zen::engine
