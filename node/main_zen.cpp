// `zen`: run, inspect, benchmark and make models from the command line.
#include <cstdio>
#include <exception>

#include "node/cli.h"

int main(int argc, char** argv) {
  CLI::App app{"zen: run large language models on the devices you own"};
  app.require_subcommand(1);
  zen::cli::add_run(app);
  zen::cli::add_logits(app);
  zen::cli::add_info(app);
  zen::cli::add_bench(app);
  zen::cli::add_synth(app);
  zen::cli::add_quantize(app);
  zen::cli::add_tokenize(app);
  zen::cli::add_chat(app);
  zen::cli::add_keygen(app);
  zen::cli::add_convert(app);
  zen::cli::add_perplexity(app);
  zen::cli::add_plan(app);
  zen::cli::add_serve(app);
  zen::cli::add_submit(app);
  zen::cli::add_sim(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zen: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
