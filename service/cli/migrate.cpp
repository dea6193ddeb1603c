#include <boost/program_options.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "store/migrator.h"

namespace syncd::cli {

namespace po = boost::program_options;

const char* database_url_env() {
  const char* url = std::getenv("DATABASE_URL");
  return url != nullptr ? url : "";
}

int migrate(int argc, char** argv) {
  po::options_description flags(
      "Usage: syncd migrate up|down|status [flags]\n\n"
      "  up      apply every pending migration (safe to run again)\n"
      "  down    revert the newest applied migration\n"
      "  status  list migrations and whether each is applied\n\n"
      "The schema_migrations table is dbmate's, so dbmate and syncd migrate\n"
      "can be used interchangeably on one database.\n\nFlags");
  flags.add_options()("help,h", "show this help")(
      "database-url", po::value<std::string>()->default_value(database_url_env(), "$DATABASE_URL"),
      "PostgreSQL connection URL, e.g. postgres://user:pass@host:5432/db");
  po::options_description hidden;
  hidden.add_options()("action", po::value<std::string>());
  po::options_description all;
  all.add(flags).add(hidden);
  po::positional_options_description positional;
  positional.add("action", 1);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "syncd migrate: " << e.what() << "\n\n" << flags << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << flags << "\n";
    return 0;
  }
  const std::string action = vm.count("action") ? vm["action"].as<std::string>() : "";
  const std::string url = vm["database-url"].as<std::string>();
  if (action != "up" && action != "down" && action != "status") {
    std::cerr << "syncd migrate: say up, down or status\n\n" << flags << "\n";
    return 2;
  }
  if (url.empty()) {
    std::cerr << "syncd migrate: no database; pass --database-url or set DATABASE_URL\n";
    return 2;
  }

  auto migrations = store::bundled_migrations();
  if (!migrations.ok()) {
    std::cerr << "syncd migrate: " << migrations.status().message() << "\n";
    return 1;
  }
  store::Migrator migrator(url, *std::move(migrations));
  auto progress = [](const std::string& line) { std::cout << line << std::endl; };

  if (action == "status") {
    auto status = migrator.status();
    if (!status.ok()) {
      std::cerr << "syncd migrate: cannot read the schema: " << status.status().message() << "\n";
      return 1;
    }
    for (const auto& m : *status) std::cout << (m.applied ? "[applied] " : "[pending] ") << m.name << "\n";
    return 0;
  }
  auto ran = action == "up" ? migrator.up(progress) : migrator.down(progress);
  if (!ran.ok()) {
    std::cerr << "syncd migrate " << action << " failed: " << ran.status().message() << "\n";
    return 1;
  }
  if (action == "up") {
    std::cout << (*ran == 0 ? "schema is up to date" : "applied " + std::to_string(*ran) + " migration(s)")
              << "\n";
  } else {
    std::cout << (*ran == 0 ? "nothing to revert" : "reverted 1 migration") << "\n";
  }
  return 0;
}

}  // namespace syncd::cli
