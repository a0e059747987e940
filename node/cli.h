// The `zen` command line: one function per subcommand, each in node/cmd_<name>.cpp.
#pragma once
#include <CLI/CLI.hpp>

#include "engine/sampler.h"

namespace zen::cli {

void add_run(CLI::App& app);       // zen run
// Shared by commands that sample: --temp --top-k --top-p --min-p --repeat-penalty --seed
void add_sampling_options(CLI::App* cmd, engine::SamplerParams& s);
void add_logits(CLI::App& app);    // zen logits
void add_info(CLI::App& app);      // zen info
void add_bench(CLI::App& app);     // zen bench
void add_synth(CLI::App& app);     // zen synth
void add_quantize(CLI::App& app);  // zen quantize
void add_tokenize(CLI::App& app);  // zen tokenize
void add_chat(CLI::App& app);      // zen chat
void add_keygen(CLI::App& app);    // zen keygen
void add_convert(CLI::App& app);   // zen convert
void add_perplexity(CLI::App& app);  // zen perplexity
void add_plan(CLI::App& app);      // zen plan
void add_serve(CLI::App& app);     // zen serve
void add_submit(CLI::App& app);    // zen submit
void add_sim(CLI::App& app);       // zen sim (defined in node/cmd_sim.cpp, built on sim/)

}  // namespace zen::cli
