// syncd token: signs a JWT in the claims format syncd checks, for testing
// and for scripts. Production tokens come from your identity provider.

#include <boost/program_options.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "auth/jwt.h"
#include "cli/commands.h"

namespace syncd::cli {

namespace po = boost::program_options;

int token(int argc, char** argv) {
  std::string key_file, alg = "HS256", sub, iss, aud;
  std::vector<std::string> read, write;
  long ttl = 3600;
  po::options_description flags(
      "Usage: syncd token --key-file FILE --sub SUBJECT [--read PATTERN]... [--write PATTERN]... [flags]\n\n"
      "Prints a signed JWT. Patterns are channel names or prefixes ending in '*' (\"user-42:*\").\n\n"
      "Example:\n"
      "  syncd token --key-file secret --sub alice --read lobby --read 'alice:*' --write 'alice:*'\n\nFlags");
  flags.add_options()("help,h", "show this help")(
      "key-file", po::value(&key_file), "HS*: the shared secret file (as given to serve --jwt-secret-file); "
                                        "RS*/ES*: a PEM private key")(
      "alg", po::value(&alg)->default_value(alg), "HS256, HS384, HS512, RS256, ..., ES256, ...")(
      "sub", po::value(&sub), "the subject: who the token speaks for (patches' clientId)")(
      "read", po::value(&read)->composing(), "a channel pattern the subject may read (repeat)")(
      "write", po::value(&write)->composing(), "a channel pattern the subject may write (repeat)")(
      "ttl", po::value(&ttl)->default_value(ttl), "seconds until it expires")(
      "iss", po::value(&iss), "issuer claim")("aud", po::value(&aud), "audience claim");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, flags), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "syncd token: " << e.what() << "\n\n" << flags << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << flags << "\n";
    return 0;
  }
  if (key_file.empty() || sub.empty() || ttl <= 0) {
    std::cerr << "syncd token: needs --key-file, --sub and a positive --ttl (see --help)\n";
    return 2;
  }
  std::ifstream in(key_file, std::ios::binary);
  std::ostringstream key;
  key << in.rdbuf();
  if (!in || key.str().empty()) {
    std::cerr << "syncd token: cannot read --key-file " << key_file << "\n";
    return 2;
  }
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  nlohmann::json claims = {{"sub", sub}, {"iat", now}, {"exp", now + ttl},
                           {"sync", {{"read", read}, {"write", write}}}};
  if (!iss.empty()) claims["iss"] = iss;
  if (!aud.empty()) claims["aud"] = aud;
  if (alg == "none") {
    std::cerr << "syncd token: unsigned tokens are refused by syncd; pick a signing algorithm\n";
    return 2;
  }
  auto token = auth::sign_token(alg, key.str(), claims.dump());
  if (!token.ok()) {
    std::cerr << "syncd token: " << token.status().message() << "\n";
    return 1;
  }
  std::cout << *token << "\n";
  return 0;
}

}  // namespace syncd::cli
