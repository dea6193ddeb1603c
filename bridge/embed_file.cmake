# Writes OUT: a C++ source defining `std::string_view NAME` in namespace
# bridge with the text of FILE, so the bridge can serve it with no files
# beside the binary.
file(READ "${FILE}" text)
set(body "// Generated from ${FILE} by bridge/embed_file.cmake.\n#include <string_view>\n\nnamespace bridge {\nextern const std::string_view ${NAME};\nconst std::string_view ${NAME} = R\"embeddedfile(${text})embeddedfile\";\n}  // namespace bridge\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
