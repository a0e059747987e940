// zen keygen [--key FILE] [--secret FILE]
// Makes a node identity key file (X25519, mode 0600) and/or a new cluster secret
// (32 random bytes, base64). With no option it prints a fresh cluster secret.
#include <cstdio>

#include "node/cli.h"
#include "transport/keys.h"

namespace zen::cli {

void add_keygen(CLI::App& app) {
  auto key = std::make_shared<std::string>();
  auto secret = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("keygen", "make a node key file and/or a cluster secret");
  cmd->add_option("--key", *key, "write a new node identity key file here (refuses to overwrite)");
  cmd->add_option("--secret", *secret, "write a new cluster secret file here (mode 0600; refuses to overwrite)");
  cmd->callback([key, secret] {
    if (!key->empty()) {
      const transport::KeyPair kp = transport::generate_keypair();
      transport::write_key_file(*key, kp);
      std::printf("key file %s\npublic key %s\n", key->c_str(), transport::format_public_key(kp.public_key).c_str());
    }
    const transport::ClusterSecret s = transport::generate_cluster_secret();
    if (!secret->empty()) {
      transport::write_cluster_secret_file(*secret, s);
      std::printf("cluster secret written to %s\n", secret->c_str());
    } else if (key->empty()) {
      std::printf("%s\n", transport::format_cluster_secret(s).c_str());
    }
  });
}

}  // namespace zen::cli
