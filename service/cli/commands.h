#pragma once
// The syncd subcommands. Each parses its own flags and returns the exit code.

namespace syncd::cli {

int serve(int argc, char** argv);
int migrate(int argc, char** argv);
int token(int argc, char** argv);

// DATABASE_URL from the flag or the environment; empty when neither is set.
const char* database_url_env();

}  // namespace syncd::cli
