// syncd: the sync service. `syncd serve` runs it; `syncd migrate` manages
// its PostgreSQL schema; `syncd token` mints test tokens.

#include <cstdio>
#include <cstring>

#include "cli/commands.h"

namespace {

constexpr const char* kUsage = R"(syncd - real-time sync service on PostgreSQL

Usage:
  syncd serve   [flags]            run the gRPC service (see: syncd serve --help)
  syncd migrate up|down|status     manage the database schema (see: syncd migrate --help)
  syncd token   [flags]            mint a signed JWT for testing (see: syncd token --help)
  syncd --help                     this text

Configuration comes from flags or the environment (DATABASE_URL, PORT).
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (std::strcmp(argv[1], "serve") == 0) return syncd::cli::serve(argc - 1, argv + 1);
  if (std::strcmp(argv[1], "migrate") == 0) return syncd::cli::migrate(argc - 1, argv + 1);
  if (std::strcmp(argv[1], "token") == 0) return syncd::cli::token(argc - 1, argv + 1);
  std::fprintf(stderr, "syncd: unknown command \"%s\"\n\n%s", argv[1], kUsage);
  return 2;
}
