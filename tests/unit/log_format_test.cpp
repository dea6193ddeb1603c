// --log-format json: one JSON object per line, whatever the message holds.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "observe/log_format.h"

namespace {

TEST(LogFormat, JsonLinesParseAndKeepTheMessage) {
  std::ostringstream out;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out)));
  std::string error;
  ASSERT_TRUE(syncd::observe::set_log_format("json", &error)) << error;
  spdlog::warn("café \"quoted\" back\\slash\ttab\nnewline");
  spdlog::info("bad utf-8: \xff\xc3 end");
  spdlog::set_default_logger(previous);

  std::istringstream lines(out.str());
  std::string line;
  std::vector<nlohmann::json> parsed;
  while (std::getline(lines, line)) parsed.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(parsed.size(), 2u) << out.str();
  EXPECT_EQ(parsed[0]["level"], "warning");
  EXPECT_EQ(parsed[0]["msg"], "café \"quoted\" back\\slash\ttab\nnewline");
  EXPECT_EQ(parsed[1]["msg"], "bad utf-8: \xef\xbf\xbd\xef\xbf\xbd end");
  EXPECT_EQ(parsed[0]["time"].get<std::string>().back(), 'Z');
}

TEST(LogFormat, UnknownFormatsAreRefused) {
  std::string error;
  EXPECT_TRUE(syncd::observe::set_log_format("text", &error));
  EXPECT_FALSE(syncd::observe::set_log_format("xml", &error));
  EXPECT_NE(error.find("text or json"), std::string::npos) << error;
}

}  // namespace
