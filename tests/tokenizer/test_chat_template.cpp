// Chat templates: each named format renders a system/user/assistant/user conversation to the
// prompt written out by hand below; detection from Jinja sources; clear errors.
#include <gtest/gtest.h>

#include <stdexcept>

#include "engine/chat_template.h"
#include "engine/gguf_writer.h"

namespace zen::test {
namespace {

using engine::ChatMessage;
using engine::render_chat;

const std::vector<ChatMessage> kChat = {
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}};

struct Case {
  const char* name;
  const char* expected;
};

// DeepSeek markers spelled out: <｜end▁of▁sentence｜>, <｜User｜>, <｜Assistant｜>.
#define DS_EOS "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"
#define DS_USER "<\xEF\xBD\x9CUser\xEF\xBD\x9C>"
#define DS_ASSISTANT "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>"

const Case kCases[] = {
    {"chatml",
     "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
     "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"},
    {"llama3",
     "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi"
     "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user"
     "<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama2", "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]"},
    {"mistral", "[INST] Be brief.\n\nHi [/INST]Hello!</s>[INST] Bye [/INST]"},
    {"gemma",
     "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
     "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"},
    {"phi3", "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\nBye<|end|>\n<|assistant|>\n"},
    {"zephyr", "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|user|>\nBye</s>\n<|assistant|>\n"},
    {"deepseek", "Be brief.\n\nUser: Hi\n\nAssistant: Hello!" DS_EOS "User: Bye\n\nAssistant:"},
    {"deepseek3", "Be brief." DS_USER "Hi" DS_ASSISTANT "Hello!" DS_EOS DS_USER "Bye" DS_ASSISTANT},
    {"deepseek-coder", "Be brief.### Instruction:\nHi\n### Response:\nHello!\n<|EOT|>\n### Instruction:\nBye\n### Response:\n"},
    {"simple", "System: Be brief.\nUser: Hi\nAssistant: Hello!\nUser: Bye\nAssistant:"},
};

TEST(ChatTemplate, RendersEachNamedTemplate) {
  for (const Case& c : kCases) EXPECT_EQ(render_chat(c.name, kChat, true), c.expected) << c.name;
  EXPECT_EQ(engine::known_chat_templates().size(), std::size(kCases)) << "every template has a case here";
}

TEST(ChatTemplate, GenerationPromptIsOptional) {
  const std::vector<ChatMessage> one = {{"user", "Hi"}};
  EXPECT_EQ(render_chat("chatml", one, false), "<|im_start|>user\nHi<|im_end|>\n");
  EXPECT_EQ(render_chat("gemma", one, false), "<start_of_turn>user\nHi<end_of_turn>\n");
  EXPECT_EQ(render_chat("llama3", one, false), "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
}

TEST(ChatTemplate, UnknownNameListsKnownOnes) {
  try {
    render_chat("vicuna-9000", kChat, true);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("vicuna-9000"), std::string::npos) << msg;
    for (const auto& n : engine::known_chat_templates()) EXPECT_NE(msg.find(n), std::string::npos) << n;
  }
  EXPECT_THROW(engine::chat_template_stop_strings("nope"), std::invalid_argument);
  EXPECT_THROW(render_chat("chatml", {{"tool", "x"}}, true), std::invalid_argument);
}

TEST(ChatTemplate, DetectsFormatsFromJinjaSources) {
  using engine::detect_chat_template_source;
  EXPECT_EQ(detect_chat_template_source("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n'}}"), "chatml");
  EXPECT_EQ(detect_chat_template_source("{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' }}"), "llama3");
  EXPECT_EQ(detect_chat_template_source("{{ bos_token + '[INST] ' + '<<SYS>>\\n' }}"), "llama2");
  EXPECT_EQ(detect_chat_template_source("{{ bos_token }}{{ '[INST] ' + m['content'] + ' [/INST]' }}"), "mistral");
  EXPECT_EQ(detect_chat_template_source("{{ '<start_of_turn>' + role + '\\n' }}"), "gemma");
  EXPECT_EQ(detect_chat_template_source("{{'<|user|>' + '\\n'}}{{'<|end|>'}}{{'<|assistant|>'}}"), "phi3");
  EXPECT_EQ(detect_chat_template_source("{{ '<|user|>\\n' + message['content'] + eos_token }}"), "zephyr");
  EXPECT_EQ(detect_chat_template_source("{{'" DS_ASSISTANT "' + content}}"), "deepseek3");
  EXPECT_EQ(detect_chat_template_source("{{'### Instruction:\\n'}}{{'<|EOT|>'}}"), "deepseek-coder");
  EXPECT_EQ(detect_chat_template_source("{{ 'User: ' + content + '\\n\\n' }}{{ 'Assistant:' }}"), "deepseek");
  EXPECT_THROW(detect_chat_template_source("{{ messages | tojson }}"), std::invalid_argument);
}

TEST(ChatTemplate, FromGgufMetadata) {
  engine::GgufWriter w;
  w.set_string("general.name", "x");
  auto bytes = w.to_bytes();
  EXPECT_FALSE(engine::has_chat_template(engine::GgufFile::parse(bytes, "a.gguf")));
  EXPECT_EQ(engine::detect_chat_template(engine::GgufFile::parse(bytes, "a.gguf")), "simple");
  w.set_string("tokenizer.chat_template", "{{'<|im_start|>'}}");
  bytes = w.to_bytes();
  EXPECT_EQ(engine::detect_chat_template(engine::GgufFile::parse(bytes, "b.gguf")), "chatml");
}

TEST(ChatTemplate, StopStrings) {
  EXPECT_EQ(engine::chat_template_stop_strings("chatml"), std::vector<std::string>{"<|im_end|>"});
  EXPECT_EQ(engine::chat_template_stop_strings("llama3"), std::vector<std::string>{"<|eot_id|>"});
  EXPECT_EQ(engine::chat_template_stop_strings("gemma"), std::vector<std::string>{"<end_of_turn>"});
  EXPECT_EQ(engine::chat_template_stop_strings("simple"), std::vector<std::string>{"\nUser:"});
}

}  // namespace
}  // namespace zen::test
