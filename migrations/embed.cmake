# Writes OUT: a C++ source holding every migration file's text, so that
# `syncd migrate` needs no files beside the binary.
file(GLOB files "${SRC}/*.sql")
list(SORT files)
set(body "// Generated from migrations/*.sql by migrations/embed.cmake.\n#include \"store/embedded_migrations.h\"\n\nnamespace syncd::migrations {\n\nconst std::vector<EmbeddedFile>& embedded_files() {\n  static const std::vector<EmbeddedFile> files = {\n")
foreach(f IN LISTS files)
  get_filename_component(name "${f}" NAME)
  file(READ "${f}" text)
  string(APPEND body "    {\"${name}\", R\"sqlmigration(${text})sqlmigration\"},\n")
endforeach()
string(APPEND body "  };\n  return files;\n}\n\n}  // namespace syncd::migrations\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
