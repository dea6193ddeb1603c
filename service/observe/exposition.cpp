#include "observe/exposition.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace syncd::observe {

std::string exposition(const prometheus::Registry& registry) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry.Collect());
  return out.str();
}

}  // namespace syncd::observe
